//! Child processes owned by a test: started in their own process group with output in a log
//! file, stopped by PID when dropped (SIGTERM to the group, a grace period, then SIGKILL), and
//! their log printed when the owning test panics.

use std::{
    fs::File,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{Error, Result, io_err};

/// A running server owned by the harness.
pub struct ManagedProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    grace: Duration,
    stopped: bool,
}

impl ManagedProcess {
    /// Starts `cmd` with stdout and stderr appended to `log_path`, in a new process group so
    /// helpers it forks are stopped with it.
    pub fn spawn(name: &str, mut cmd: Command, log_path: &Path, grace: Duration) -> Result<Self> {
        let log =
            File::create(log_path).map_err(io_err(format!("creating {}", log_path.display())))?;
        let log_err = log.try_clone().map_err(io_err("cloning log handle"))?;
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            name: name.to_owned(),
            source,
        })?;
        tracing::debug!(name, pid = child.id(), "started");
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path: log_path.to_path_buf(),
            grace,
            stopped: false,
        })
    }

    /// Process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Component name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of its log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }

    /// Polls `probe` every 100 ms until it returns true; fails when the process exits or
    /// `timeout` passes, with the end of the log in the error.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut() -> bool,
    ) -> Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if probe() {
                return Ok(start.elapsed());
            }
            if !self.is_running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(Error::NotReady {
            name: self.name.clone(),
            seconds: start.elapsed().as_secs(),
            log_tail: self.log_tail(40),
        })
    }

    /// Waits up to `timeout` for the process to exit by itself and returns its status. On
    /// timeout it keeps running (dropping the handle stops it).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if start.elapsed() >= timeout {
                return Err(Error::TimedOut(format!(
                    "{} still running after {}s",
                    self.name,
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to the process group, wait up to the grace period, then SIGKILL. Idempotent.
    /// Returns whether it exited on its own within the grace period.
    pub fn stop(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.stopped = true;
        let group = Pid::from_raw(self.child.id() as i32);
        let mut graceful = !self.is_running();
        if !graceful {
            let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline && self.is_running() {
                std::thread::sleep(Duration::from_millis(50));
            }
            graceful = !self.is_running();
        }
        // Also reaches helpers that outlived the leader but stayed in its group.
        let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        tracing::debug!(name = %self.name, graceful, "stopped");
        graceful
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "----- {} log ({}) -----",
                self.name,
                self.log_path.display()
            );
            let _ = writeln!(err, "{}", self.log_tail(60));
        }
        self.stop();
    }
}

/// Whether `pid` is a live process. Zombies count as dead: they hold no ports or files, and
/// in some sandboxes PID 1 never reaps orphans.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The last `lines` lines of a file (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_err("binding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("reading local addr"))?
        .port();
    Ok(port)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Status code of a plain-HTTP GET to 127.0.0.1:`port``path`, `None` when unreachable.
/// Enough for health probes; avoids an HTTP client dependency in the harness.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Body of a plain-HTTP GET to 127.0.0.1:`port``path`, `None` when unreachable or not 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_a_process_that_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "trap '' TERM; sleep 300 & echo $!; wait"]);
        let log = dir.path().join("log");
        let mut p =
            ManagedProcess::spawn("stubborn", cmd, &log, Duration::from_millis(300)).unwrap();
        p.wait_ready(Duration::from_secs(5), || {
            tail(&log, 1).parse::<u32>().is_ok()
        })
        .unwrap();
        let sleeper: u32 = tail(&log, 1).parse().unwrap();
        let leader = p.pid();
        assert!(is_alive(leader) && is_alive(sleeper));
        p.stop();
        // The whole group is gone, including the backgrounded sleep. SIGKILL reaches the
        // orphaned sleep asynchronously: wait for it (bounded), never for a fixed time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_alive(sleeper) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!is_alive(leader) && !is_alive(sleeper));
    }

    #[test]
    fn waits_for_an_exit_status_within_a_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let spawn = |script: &str| {
            let mut cmd = Command::new("bash");
            cmd.args(["-c", script]);
            ManagedProcess::spawn(
                "exits",
                cmd,
                &dir.path().join("log"),
                Duration::from_secs(1),
            )
            .unwrap()
        };
        let status = spawn("exit 3").wait_exit(Duration::from_secs(30)).unwrap();
        assert_eq!(status.code(), Some(3));
        let err = spawn("sleep 300")
            .wait_exit(Duration::from_millis(300))
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut(_)), "{err}");
    }

    #[test]
    fn readiness_fails_fast_when_the_process_exits() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "echo boom; exit 3"]);
        let mut p =
            ManagedProcess::spawn("dies", cmd, &dir.path().join("log"), Duration::from_secs(1))
                .unwrap();
        let err = p.wait_ready(Duration::from_secs(30), || false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("dies not ready") && text.contains("boom"),
            "{text}"
        );
    }

    #[test]
    fn free_port_is_bindable_and_closed() {
        let port = free_port().unwrap();
        assert!(!port_open(port));
        assert_eq!(http_status(port, "/"), None);
    }
}
