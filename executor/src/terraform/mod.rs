//! The terraform/tofu runner: one [`Session`] per execution runs the commands of that
//! execution in its workspace, sharing one deadline and one cancellation token. Every command
//! runs with `TF_IN_AUTOMATION=1`, `-input=false`, `-no-color` and (where state is locked)
//! `-lock-timeout`; secrets travel as environment variables, never as arguments.

pub mod discover;
pub mod events;
pub mod mirror;
pub mod plugin_cache;
pub mod process;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use self::process::{Finished, Invocation, ProcessError};
use crate::scrub::Scrubber;

/// A terraform command failed.
#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    /// It could not run to completion (spawn failure, deadline, cancellation).
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// It ran and failed; `summary` is the scrubbed error text terraform printed.
    #[error("`{command}` failed: {summary}")]
    Failed {
        /// Command summary.
        command: String,
        /// Scrubbed error text.
        summary: String,
        /// All of terraform's error output, scrubbed and bounded: for callers that must read
        /// every diagnostic (one per failed import), not just the first few in `summary`.
        detail: String,
    },
    /// Waiting for another `init` on the shared plugin cache failed or timed out.
    #[error(transparent)]
    CacheLock(#[from] plugin_cache::CacheLockError),
    /// Its JSON output could not be parsed.
    #[error("`{command}` printed invalid JSON: {source}")]
    Json {
        /// Command summary.
        command: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

impl TerraformError {
    /// Whether trying again later may help: interrupted runs, lock contention, network.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Process(ProcessError::Spawn { .. }) | Self::Json { .. } => false,
            Self::Process(_) => true,
            Self::CacheLock(e) => !matches!(e, plugin_cache::CacheLockError::Io { .. }),
            Self::Failed { summary, .. } => {
                let s = summary.to_ascii_lowercase();
                [
                    "error acquiring the state lock",
                    "connection refused",
                    "timeout",
                    "i/o timeout",
                    "throttl",
                    "service unavailable",
                ]
                .iter()
                .any(|needle| s.contains(needle))
            }
        }
    }
}

/// How terraform is run on this machine.
#[derive(Clone, Debug)]
pub struct Terraform {
    /// `terraform` or `tofu` binary.
    pub binary: PathBuf,
    /// CLI configuration (provider mirror, plugin cache).
    pub cli_config: PathBuf,
    /// Time an interrupted command gets to release its lock before it is killed.
    pub grace: Duration,
    /// How long to wait for a state lock held by someone else.
    pub lock_timeout: Duration,
}

/// The commands of one execution in one workspace.
pub struct Session<'a> {
    tf: &'a Terraform,
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
    deadline: Instant,
    cancel: CancellationToken,
    scrub: &'a Scrubber,
}

impl<'a> Session<'a> {
    /// A session in `dir` that must finish by `deadline`. `env` carries credentials and
    /// sensitive variables (`TF_VAR_*`); `scrub` removes their values from error text.
    pub fn new(
        tf: &'a Terraform,
        dir: &Path,
        env: Vec<(OsString, OsString)>,
        deadline: Instant,
        cancel: CancellationToken,
        scrub: &'a Scrubber,
    ) -> Self {
        Self {
            tf,
            dir: dir.to_path_buf(),
            env,
            deadline,
            cancel,
            scrub,
        }
    }

    /// `init`; `reconfigure` when the backend changed (state is never migrated implicitly:
    /// pointing a template at another backend means using that backend's state).
    /// Holds the plugin cache's lock while it runs: concurrent `init`s race in the cache.
    pub async fn init(&self, reconfigure: bool) -> Result<(), TerraformError> {
        let mut args = vec!["init", "-input=false", "-no-color"];
        args.push(if reconfigure {
            "-reconfigure"
        } else {
            "-upgrade=false"
        });
        let _held = match self.plugin_cache() {
            Some(cache) => {
                let within = self.deadline.saturating_duration_since(Instant::now());
                Some(plugin_cache::lock(&cache, within, &self.cancel).await?)
            }
            None => None,
        };
        self.ok(&args).await
    }

    /// The plugin cache this session's terraform uses, if any.
    fn plugin_cache(&self) -> Option<PathBuf> {
        let config = std::fs::read_to_string(&self.tf.cli_config).unwrap_or_default();
        let env = self
            .env
            .iter()
            .find(|(k, _)| k == "TF_PLUGIN_CACHE_DIR")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("TF_PLUGIN_CACHE_DIR"));
        plugin_cache::plugin_cache_dir(&config, env.as_ref().and_then(|v| v.to_str()))
    }

    /// `plan -out=<plan>`, refresh-only or normal.
    pub async fn plan(&self, out: &Path, refresh_only: bool) -> Result<(), TerraformError> {
        let out = format!("-out={}", out.display());
        let lock = self.lock_flag();
        let mut args = vec![
            "plan",
            "-input=false",
            "-no-color",
            lock.as_str(),
            out.as_str(),
        ];
        if refresh_only {
            args.push("-refresh-only");
        }
        self.ok(&args).await
    }

    /// `plan -destroy -out=<plan>`.
    pub async fn plan_destroy(&self, out: &Path) -> Result<(), TerraformError> {
        let out = format!("-out={}", out.display());
        let lock = self.lock_flag();
        self.ok(&[
            "plan",
            "-destroy",
            "-input=false",
            "-no-color",
            lock.as_str(),
            out.as_str(),
        ])
        .await
    }

    /// `show -json <plan>`.
    pub async fn show_plan_json(&self, plan: &Path) -> Result<serde_json::Value, TerraformError> {
        let plan = plan.display().to_string();
        self.json(&["show", "-json", "-no-color", plan.as_str()])
            .await
    }

    /// `apply <plan>`: exactly the reviewed saved plan.
    pub async fn apply_plan(&self, plan: &Path) -> Result<(), TerraformError> {
        let plan = plan.display().to_string();
        let lock = self.lock_flag();
        self.ok(&[
            "apply",
            "-input=false",
            "-no-color",
            "-auto-approve",
            lock.as_str(),
            plan.as_str(),
        ])
        .await
    }

    /// `apply -json <plan>`: exactly the reviewed saved plan, its event stream kept in `log`
    /// while it runs (the in-flight journal reads which creates started). Errors and last
    /// words are rendered from the stream as terraform's human output would show them.
    pub async fn apply_plan_logged(&self, plan: &Path, log: &Path) -> Result<(), TerraformError> {
        let plan = plan.display().to_string();
        let lock = self.lock_flag();
        let args = [
            "apply",
            "-json",
            "-input=false",
            "-no-color",
            "-auto-approve",
            lock.as_str(),
            plan.as_str(),
        ];
        let rendered = |bytes: &[u8]| events::human_text(&String::from_utf8_lossy(bytes));
        match self.run_with(&args, Some(log.to_path_buf())).await {
            Ok(mut done) => {
                done.stdout = rendered(&done.stdout).into_bytes();
                self.check(&done, "apply")
            }
            Err(TerraformError::Process(e)) => {
                let said = rendered(&std::fs::read(log).unwrap_or_default());
                Err(TerraformError::Process(
                    e.with_said(process::last_lines(b"", said.as_bytes())),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// `apply -refresh-only`: records reality in state so the next drift check starts clean.
    pub async fn apply_refresh_only(&self) -> Result<(), TerraformError> {
        let lock = self.lock_flag();
        self.ok(&[
            "apply",
            "-refresh-only",
            "-input=false",
            "-no-color",
            "-auto-approve",
            lock.as_str(),
        ])
        .await
    }

    /// `output -json`.
    pub async fn outputs(&self) -> Result<serde_json::Value, TerraformError> {
        self.json(&["output", "-json", "-no-color"]).await
    }

    /// `state pull`: the current state document (empty object when there is none).
    pub async fn state_pull(&self) -> Result<serde_json::Value, TerraformError> {
        let done = self.run(&["state", "pull"]).await?;
        self.check(&done, "state pull")?;
        if done.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_slice(&done.stdout).map_err(|source| TerraformError::Json {
            command: "state pull".into(),
            source,
        })
    }

    fn lock_flag(&self) -> String {
        format!("-lock-timeout={}s", self.tf.lock_timeout.as_secs())
    }

    async fn ok(&self, args: &[&str]) -> Result<(), TerraformError> {
        let done = self.run(args).await?;
        self.check(&done, args[0])
    }

    async fn json(&self, args: &[&str]) -> Result<serde_json::Value, TerraformError> {
        let done = self.run(args).await?;
        self.check(&done, args[0])?;
        serde_json::from_slice(&done.stdout).map_err(|source| TerraformError::Json {
            command: args[0].to_owned(),
            source,
        })
    }

    fn check(&self, done: &Finished, command: &str) -> Result<(), TerraformError> {
        if done.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&done.stderr);
        let summary = self
            .scrub
            .scrub(&summarize(&stderr, &String::from_utf8_lossy(&done.stdout)));
        let detail = self.scrub.scrub(bounded_head(&stderr, MAX_DETAIL_BYTES));
        Err(TerraformError::Failed {
            command: format!("{} {command}", self.binary_name()),
            summary,
            detail,
        })
    }

    fn binary_name(&self) -> String {
        self.tf
            .binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    async fn run(&self, args: &[&str]) -> Result<Finished, TerraformError> {
        self.run_with(args, None).await
    }

    async fn run_with(
        &self,
        args: &[&str],
        stdout_file: Option<PathBuf>,
    ) -> Result<Finished, TerraformError> {
        let mut env = vec![
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            (
                "TF_CLI_CONFIG_FILE".into(),
                self.tf.cli_config.clone().into_os_string(),
            ),
        ];
        env.extend(self.env.iter().cloned());
        let inv = Invocation {
            program: self.tf.binary.clone(),
            args: args.iter().map(OsString::from).collect(),
            cwd: self.dir.clone(),
            env,
            stdout_file,
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tracing::debug!(command = %inv.summary(), remaining_s = remaining.as_secs(), "running");
        let done = process::run(&inv, remaining, self.tf.grace, &self.cancel).await?;
        tracing::debug!(command = %inv.summary(), code = ?done.code, elapsed_ms = done.elapsed.as_millis() as u64, "finished");
        Ok(done)
    }
}

/// The part of terraform's output a person needs: its `Error:` blocks, else the last lines.
/// Error output kept in [`TerraformError::Failed`]'s `detail`: a few hundred diagnostics.
const MAX_DETAIL_BYTES: usize = 256 * 1024;

/// The first `max` bytes of `text`, cut at a character boundary.
fn bounded_head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn summarize(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches(['│', '╷', '╵', ' ']))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let from = lines
        .iter()
        .position(|l| l.starts_with("Error:"))
        .unwrap_or(lines.len().saturating_sub(8));
    let mut summary: Vec<&str> = lines[from..].iter().copied().take(12).collect();
    if summary.is_empty() {
        summary.push("(no output)");
    }
    summary.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_the_error_block() {
        let stderr = "Initializing...\n╷\n│ Error: Invalid reference\n│ \n│   on main.tf.json line 3:\n│ A reference needs a name.\n╵\n";
        assert_eq!(
            summarize(stderr, ""),
            "Error: Invalid reference | on main.tf.json line 3: | A reference needs a name."
        );
    }

    #[test]
    fn summary_falls_back_to_the_tail_and_stdout() {
        assert_eq!(summarize("", "a\nb\n"), "a | b");
        assert_eq!(summarize("", ""), "(no output)");
    }

    #[test]
    fn lock_contention_is_transient() {
        let err = TerraformError::Failed {
            command: "terraform plan".into(),
            summary: "Error: Error acquiring the state lock".into(),
            detail: String::new(),
        };
        assert!(err.is_transient());
        let err = TerraformError::Failed {
            command: "terraform plan".into(),
            summary: "Error: Unsupported argument".into(),
            detail: String::new(),
        };
        assert!(!err.is_transient());
    }
}
