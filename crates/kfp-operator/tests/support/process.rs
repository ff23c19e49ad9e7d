//! `kfp-operator run` as a child process: configured only through `KFP_OPERATOR_*` variables the caller gives
//! (nothing inherited), its stderr collected, ready when `/readyz` answers 200, its memory read from `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running operator process; killed when dropped.
pub struct OperatorProcess {
    pub child: Child,
    /// `http://IP:PORT` of its health and metrics server.
    pub base_url: String,
    /// `http://IP:PORT` of its run-completion feed.
    pub feed_url: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A free TCP port on loopback (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The CPU seconds (user + system) process `pid` has used so far, from `/proc/<pid>/stat` (clock ticks of
/// `USER_HZ`, 100 on Linux); 0 when the process is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces), from field 3 (state) on: utime is 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set so far, KiB.
    pub peak_kib: u64,
    /// `RssAnon`: the anonymous part of `VmRSS` (heap, stacks), KiB.
    pub anon_kib: u64,
    /// `RssFile`: the file-backed part of `VmRSS` (the executable's pages that were touched), KiB.
    pub file_kib: u64,
}

impl OperatorProcess {
    /// Starts `binary run` against the cluster of `kubeconfig` with `env` (`KFP_OPERATOR_*` keys and the like). The
    /// health and metrics server and the run-completion feed listen on free loopback ports (tests and benchmarks
    /// run side by side); stdout is discarded.
    pub fn start(binary: &Path, kubeconfig: &Path, env: &[(&str, &str)]) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let feed_port = free_port().to_string();
        let mut command = Command::new(binary);
        command.arg("run");
        // Only the caller's configuration: no inherited overrides, no pod identity (the replica names itself).
        for (key, _) in std::env::vars() {
            if key.starts_with("KFP_OPERATOR_")
                || key == "POD_NAME"
                || key == "POD_NAMESPACE"
                || key == "RUST_LOG"
            {
                command.env_remove(key);
            }
        }
        command
            .env("KUBECONFIG", kubeconfig)
            .env("KFP_OPERATOR_SYSTEM_HEALTHADDRESS", &address)
            .env("KFP_OPERATOR_SYSTEM_METRICSADDRESS", &address)
            .env("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_ADDRESS", "127.0.0.1")
            .env("KFP_OPERATOR_SPEC_RUNCOMPLETIONFEED_PORT", &feed_port);
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            base_url: format!("http://{address}"),
            feed_url: format!("http://127.0.0.1:{feed_port}"),
            stderr,
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The lines the process wrote to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// GET `path` on the health/metrics server: status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let response = reqwest::get(format!("{}{path}", self.base_url))
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|e| e.to_string())?))
    }

    /// Waits until `/readyz` answers 200; panics with the last answer and the stderr otherwise.
    pub async fn wait_ready(&self, timeout: Duration) {
        let last = Mutex::new(None);
        kfp_testenv::wait_for("/readyz to answer 200", timeout, || async {
            let answer = self.get("/readyz").await;
            let ready = matches!(&answer, Ok((200, _)));
            *last.lock().unwrap() = Some(answer);
            Ok::<_, String>(ready.then_some(()))
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}; last answer {:?}\nstderr:\n{}",
                last.lock().unwrap(),
                self.stderr()
            )
        });
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Ok((200, text)) => text,
            other => panic!("/metrics answered {other:?}\nstderr:\n{}", self.stderr()),
        }
    }

    /// Current and peak resident memory of the process.
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the operator process is running")
    }

    pub fn memory(&self) -> Memory {
        let pid = self.child.id().expect("the operator process is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let pid = self.child.id().expect("the operator process is running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit after SIGTERM\nstderr:\n{}", self.stderr()))
            .unwrap();
        exit.code()
    }
}
