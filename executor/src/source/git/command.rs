//! Running the `git` CLI for one fetch: a controlled environment, one deadline shared by every
//! command, the whole process group killed when it passes, output captured for classification.

use std::{
    env,
    ffi::{OsStr, OsString},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::Command;

use super::super::{SourceError, Step, credentials::GitAuth};

/// Inherited `GIT_*` variables that are kept: they only configure TLS and proxies. Every
/// other one is dropped, because it could redirect git (`GIT_DIR`, `GIT_INDEX_FILE`), prompt
/// (`GIT_ASKPASS`) or print credentials (`GIT_TRACE_CURL`, `GIT_CURL_VERBOSE`).
const KEPT_GIT_VARS: &[&str] = &[
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_PROXY_SSL_CAINFO",
    "GIT_HTTP_PROXY_AUTHMETHOD",
    "GIT_EXEC_PATH",
];

/// What a finished git command printed.
#[derive(Debug)]
pub(crate) struct GitOutput {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The git CLI as used by one fetch: its credentials, settings and deadline.
#[derive(Debug)]
pub(crate) struct Git {
    deadline: Instant,
    budget: Duration,
    auth: GitAuth,
    config: Vec<String>,
}

impl Git {
    /// `budget` bounds the whole fetch; `config` adds `-c` settings to the credentials' own.
    pub(crate) fn new(budget: Duration, auth: GitAuth, config: Vec<String>) -> Self {
        Self {
            deadline: Instant::now() + budget,
            budget,
            auth,
            config,
        }
    }

    /// Time left before the deadline, `None` once it has passed.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// The error for the deadline passing during `step`.
    pub(crate) fn timeout(&self, step: Step) -> SourceError {
        SourceError::Timeout {
            step,
            deadline: self.budget,
        }
    }

    /// `text` without this fetch's secrets.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.auth.scrubber.scrub(text)
    }

    /// A scrubbed summary of a failed command's stderr.
    pub(crate) fn summarise(&self, stderr: &str) -> String {
        self.auth.scrubber.summarise(stderr)
    }

    /// Runs `git --git-dir=<git_dir> <args>` with `extra_env`, killed at the deadline.
    /// A non-zero exit is not an error here: callers decide what it means.
    pub(crate) async fn run(
        &self,
        step: Step,
        git_dir: &Path,
        args: &[&str],
        extra_env: &[(&str, &Path)],
    ) -> Result<GitOutput, SourceError> {
        let remaining = self.remaining().ok_or_else(|| self.timeout(step))?;
        let mut command = self.command(git_dir, args);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child = command.spawn().map_err(SourceError::GitMissing)?;
        let pid = child.id();
        let result = tokio::time::timeout(remaining, child.wait_with_output()).await;
        tracing::debug!(%step, subcommand = args.first().copied().unwrap_or_default(),
            elapsed_ms = started.elapsed().as_millis() as u64, "git command finished");
        match result {
            Ok(Ok(output)) => Ok(GitOutput {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }),
            Ok(Err(e)) => Err(SourceError::Git {
                step,
                detail: format!("cannot collect git's output: {e}"),
            }),
            Err(_) => {
                // git itself is already killed (kill_on_drop); its helpers are not.
                if let Some(pid) = pid {
                    kill_group(pid).await;
                }
                Err(self.timeout(step))
            }
        }
    }

    fn command(&self, git_dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        for (key, _) in env::vars_os() {
            if is_dropped(&key) {
                command.env_remove(key);
            }
        }
        let mut git_dir_arg = OsString::from("--git-dir=");
        git_dir_arg.push(git_dir);
        command
            // Never wait for a person: fail instead of prompting on a terminal.
            .env("GIT_TERMINAL_PROMPT", "0")
            // English messages: failures are classified by their text.
            .env("LC_ALL", "C")
            .envs(self.auth.env.iter().map(|(k, v)| (*k, v)))
            .args(
                self.auth
                    .config
                    .iter()
                    .chain(&self.config)
                    .flat_map(|c| ["-c", c.as_str()]),
            )
            .arg(git_dir_arg)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Own process group, so a timeout can end git's helpers (git-remote-http, ssh,
            // upload-pack) too: killing git alone leaves them blocked on the network.
            .process_group(0);
        command
    }
}

fn is_dropped(key: &OsStr) -> bool {
    let key = key.to_string_lossy();
    (key.starts_with("GIT_") && !KEPT_GIT_VARS.contains(&key.as_ref()))
        || key == "SSH_ASKPASS"
        || key == "SSH_ASKPASS_REQUIRE"
}

/// SIGKILLs every process of the group led by `pid` (git and the helpers it forked).
async fn kill_group(pid: u32) {
    let group = nix::unistd::Pid::from_raw(pid as i32);
    if let Err(e) = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL) {
        tracing::warn!(pid, error = %e, "cannot kill git's process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_steering_and_tracing_variables_keeps_tls() {
        assert!(is_dropped(OsStr::new("GIT_DIR")));
        assert!(is_dropped(OsStr::new("GIT_TRACE_CURL")));
        assert!(is_dropped(OsStr::new("GIT_ASKPASS")));
        assert!(is_dropped(OsStr::new("SSH_ASKPASS")));
        assert!(!is_dropped(OsStr::new("GIT_SSL_CAINFO")));
        assert!(!is_dropped(OsStr::new("HTTPS_PROXY")));
    }

    #[tokio::test]
    async fn an_expired_budget_fails_before_spawning() {
        let git = Git::new(Duration::ZERO, GitAuth::default(), vec![]);
        let err = git
            .run(Step::Fetch, Path::new("/nonexistent"), &["version"], &[])
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            SourceError::Timeout {
                step: Step::Fetch,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn runs_git_and_captures_output() {
        let git = Git::new(Duration::from_secs(30), GitAuth::default(), vec![]);
        let out = git
            .run(Step::Resolve, Path::new("/nonexistent"), &["version"], &[])
            .await
            .unwrap();
        assert!(out.success);
        assert!(out.stdout.starts_with("git version"), "{}", out.stdout);
    }
}
