//! Child processes of a control plane, their logs, and the watchdog that ends them when the test
//! binary goes away without running destructors (statics, `std::process::exit`, SIGKILL).

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::error::{Error, Result};

/// Reads process ids from standard input, one a line. At end of input (the test binary closed the pipe
/// or died, which the kernel turns into end of input) it kills them all, waits until they are gone
/// and removes the scratch folder given as `$1`.
const WATCHDOG_SCRIPT: &str = r#"
trap '' HUP INT TERM
pids=""
while read -r pid; do pids="$pids $pid"; done
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
i=0
while [ "$i" -lt 50 ]; do
  alive=""
  for p in $pids; do
    if [ -r "/proc/$p/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$p/stat" 2>/dev/null; then alive=1; fi
  done
  [ -z "$alive" ] && break
  sleep 0.1
  i=$((i + 1))
done
rm -rf "$1"
"#;

/// One spawned program with its log file.
pub(crate) struct Process {
    pub name: &'static str,
    pub child: Child,
}

impl Process {
    /// Starts `program` with `args`, standard output and error appended to `log`.
    pub fn spawn(name: &'static str, program: &Path, args: &[String], log: &Path) -> Result<Process> {
        let out = File::create(log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", program.display()), e))?;
        Ok(Process { name, child })
    }

    /// `Some(description)` when the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited early ({status})", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{} cannot be waited for: {e}", self.name)),
        }
    }

    pub fn kill(&mut self) {
        // Errors mean it is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sh` process that kills the registered processes and removes the scratch folder once our end of
/// its standard input closes: when [`Watchdog`] is dropped, or when the test binary exits or dies.
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    pub fn spawn(scratch: &Path) -> Result<Watchdog> {
        let mut child = Command::new("sh")
            // Its own process group: Ctrl-C, `timeout` and `kill -- -<group>` end the test binary, not
            // the watchdog, which then cleans up (it also ignores those signals, see the script).
            .process_group(0)
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("kfp-testenv-watchdog")
            .arg(scratch)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting the watchdog process (sh)", e))?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// Registers a process to kill when the test binary goes away.
    pub fn watch(&mut self, pid: u32) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::Invalid("the watchdog is already stopped".to_string()))?;
        writeln!(stdin, "{pid}")
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io("registering a process with the watchdog", e))
    }

    /// Stops the watchdog without letting it act: the owner cleans up itself, and must do so only
    /// after this, so that the watchdog never kills a process id that has been reused.
    pub fn disarm(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }
}

/// `count` distinct free TCP ports on 127.0.0.1 (free when asked; the caller binds them soon after).
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("finding a free loopback port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("finding a free loopback port", e))
}

/// The last `lines` lines of a log file, or a note that it cannot be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => last_lines(&String::from_utf8_lossy(&bytes), lines),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
