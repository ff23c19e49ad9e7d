//! `kfp-operator run` as a child process: started with only the environment a test gives it, its stderr kept for
//! failure messages, killed if the test ends without stopping it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The operator process.
pub struct Operator {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Operator {
    /// `kfp-operator run` with `env` (after removing every inherited `KFP_OPERATOR_*`, `POD_NAME`,
    /// `POD_NAMESPACE` and `RUST_LOG`, so only the test's configuration applies).
    pub fn run(env: &[(&str, &str)]) -> Operator {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kfp-operator"));
        command.arg("run");
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
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Operator { child, stderr }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

/// A loopback port nobody listens on (for the process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
