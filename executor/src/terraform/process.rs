//! Runs one terraform/tofu command under a deadline and a cancellation token. On either, the
//! child gets SIGINT first — terraform then stops gracefully, persists state and releases its
//! lock — and SIGKILL only after a grace period. Output is captured for parsing and for
//! error summaries.

use std::{
    ffi::OsString,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use std::os::unix::fs::OpenOptionsExt;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Why a command did not complete normally.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// Program path.
        program: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The deadline passed; the child was interrupted.
    #[error("`{command}` exceeded its deadline of {}s and was interrupted; it said: {said}", deadline.as_secs())]
    TimedOut {
        /// Command summary (no values).
        command: String,
        /// The deadline.
        deadline: Duration,
        /// The last lines it printed (how far it got, whether it released its lock).
        said: String,
    },
    /// The caller cancelled (e.g. shutdown); the child was interrupted.
    #[error("`{command}` was cancelled and interrupted; it said: {said}")]
    Cancelled {
        /// Command summary (no values).
        command: String,
        /// The last lines it printed.
        said: String,
    },
    /// Reading the child's output failed.
    #[error("reading output of `{command}`: {source}")]
    Io {
        /// Command summary.
        command: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The same error with other last words (e.g. rendered from a JSON event stream).
    pub fn with_said(self, said: String) -> Self {
        match self {
            Self::TimedOut {
                command, deadline, ..
            } => Self::TimedOut {
                command,
                deadline,
                said,
            },
            Self::Cancelled { command, .. } => Self::Cancelled { command, said },
            other => other,
        }
    }
}

/// A command to run: program, arguments, working directory and extra environment.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Binary.
    pub program: PathBuf,
    /// Arguments (never secrets: those travel in `env`).
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Write stdout to this file and leave it there (an event log someone reads after the
    /// command, even after this process died); a private temporary file when `None`.
    pub stdout_file: Option<PathBuf>,
}

impl Invocation {
    /// `terraform <subcommand>` for messages: the subcommand only, never flags or values.
    pub fn summary(&self) -> String {
        let program = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let sub = self.args.first().map(|a| a.to_string_lossy().into_owned());
        [program, sub]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Finished {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `inv` until it exits, the deadline passes or `cancel` fires. `grace` is how long an
/// interrupted child may take to release its lock before it is killed.
///
/// The child writes into files, not pipes, and sits in its own process group: if this process
/// dies (a crash, `kill -9`), terraform is not hit by a broken pipe or the terminal's Ctrl-C
/// mid-apply, finishes, persists state and releases its lock, so the next run can go on.
pub async fn run(
    inv: &Invocation,
    deadline: Duration,
    grace: Duration,
    cancel: &CancellationToken,
) -> Result<Finished, ProcessError> {
    let command = inv.summary();
    let started = Instant::now();
    let io_err = |source| ProcessError::Io {
        command: command.clone(),
        source,
    };
    let output = OutputFiles::create(&inv.cwd, inv.stdout_file.as_deref()).map_err(io_err)?;
    let (stdout, stderr) = output.handles().map_err(io_err)?;
    let mut child = Command::new(&inv.program)
        .args(&inv.args)
        .current_dir(&inv.cwd)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: inv.program.display().to_string(),
            source,
        })?;
    let timed_out = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(io_err)?;
            let (out, err) = output.read().map_err(io_err)?;
            return Ok(Finished { code: status.code(), stdout: out, stderr: err, elapsed: started.elapsed() });
        }
        () = tokio::time::sleep(deadline) => true,
        () = cancel.cancelled() => false,
    };
    interrupt(&mut child, grace, &command).await;
    let said = output.read().map_or_else(
        |_| "(output unavailable)".to_owned(),
        |(out, err)| last_lines(&err, &out),
    );
    Err(if timed_out {
        ProcessError::TimedOut {
            command,
            deadline,
            said,
        }
    } else {
        ProcessError::Cancelled { command, said }
    })
}

/// The two files a child writes to, removed once read (stdout only when it is ours).
struct OutputFiles {
    out: PathBuf,
    err: PathBuf,
    keep_out: bool,
}

impl OutputFiles {
    fn create(dir: &std::path::Path, out: Option<&std::path::Path>) -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let stem = format!(".pangea-run-{}-{nanos}", std::process::id());
        if let Some(out) = out {
            // A log left by an earlier run is not this command's output.
            match std::fs::remove_file(out) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(Self {
            out: out.map_or_else(
                || dir.join(format!("{stem}.out")),
                std::path::Path::to_path_buf,
            ),
            err: dir.join(format!("{stem}.err")),
            keep_out: out.is_some(),
        })
    }

    fn handles(&self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        let open = |path: &PathBuf| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
        };
        Ok((open(&self.out)?, open(&self.err)?))
    }

    fn read(&self) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((std::fs::read(&self.out)?, std::fs::read(&self.err)?))
    }
}

impl Drop for OutputFiles {
    fn drop(&mut self) {
        if !self.keep_out {
            let _ = std::fs::remove_file(&self.out);
        }
        let _ = std::fs::remove_file(&self.err);
    }
}

/// The last few non-empty lines of stderr, or of stdout when stderr is empty, on one line.
pub fn last_lines(err: &[u8], out: &[u8]) -> String {
    let text = if err.iter().all(u8::is_ascii_whitespace) {
        out
    } else {
        err
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

/// SIGINT, wait up to `grace`, then SIGKILL.
async fn interrupt(child: &mut tokio::process::Child, grace: Duration, command: &str) {
    if let Some(pid) = child.id() {
        tracing::warn!(
            command,
            pid,
            "interrupting (SIGINT) so terraform releases its lock"
        );
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGINT);
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(
            command,
            "did not stop within {}s of SIGINT: killing",
            grace.as_secs()
        );
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str) -> Invocation {
        Invocation {
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![("GREETING".into(), "hello".into())],
            stdout_file: None,
        }
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let done = run(
            &bash("echo $GREETING; echo oops >&2; exit 3"),
            Duration::from_secs(10),
            Duration::from_secs(1),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(done.code, Some(3));
        assert_eq!(done.stdout, b"hello\n");
        assert_eq!(done.stderr, b"oops\n");
    }

    #[tokio::test]
    async fn deadline_sends_sigint_first() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("got-int");
        let script = format!(
            "trap 'touch {}; echo stopping >&2; exit 130' INT; echo working; while true; do sleep 0.05; done",
            marker.display()
        );
        let err = run(
            &bash(&script),
            Duration::from_millis(300),
            Duration::from_secs(5),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        let ProcessError::TimedOut { said, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(said, "stopping", "its last words are kept");
        assert!(marker.exists(), "the child did not see SIGINT");
    }

    #[tokio::test]
    async fn ignored_sigint_is_followed_by_kill() {
        let started = Instant::now();
        let err = run(
            &bash("trap '' INT; sleep 30"),
            Duration::from_millis(200),
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the child was not killed"
        );
    }

    #[tokio::test]
    async fn cancellation_interrupts() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let err = run(
            &bash("sleep 30"),
            Duration::from_secs(60),
            Duration::from_secs(5),
            &cancel,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProcessError::Cancelled { .. }));
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let mut inv = bash("");
        inv.program = "/nonexistent/terraform".into();
        let err = run(
            &inv,
            Duration::from_secs(1),
            Duration::from_secs(1),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/terraform"), "{err}");
    }
}
