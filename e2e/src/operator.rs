//! The `pangea-operator` binary as a managed process against a harness control plane and
//! emulator: local execution backend, its own state directory, metrics on a free port.
//! Stopped gracefully (SIGTERM) on drop, or killed with [`OperatorProcess::kill_hard`] to
//! test crash recovery.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    AwsEmulator, ControlPlane, Result, Toolchain,
    process::{ManagedProcess, free_port, http_status},
};

/// What an operator process is started with.
#[derive(Clone, Copy, Debug)]
pub struct Launch<'a> {
    /// The `pangea-operator` binary.
    pub binary: &'a Path,
    /// Whom it acts as: the admin kubeconfig, or one of the chart's identity
    /// ([`crate::chart::operator_identity`]).
    pub kubeconfig: &'a Path,
    /// The namespace it watches (all when `None`).
    pub namespace: Option<&'a str>,
    /// Its `--state-dir` (its log goes there too).
    pub state_dir: &'a Path,
    /// Extra command-line flags.
    pub extra: &'a [&'a str],
    /// Extra environment variables.
    pub env: &'a [(String, String)],
}

/// A running operator.
pub struct OperatorProcess {
    process: ManagedProcess,
    /// Port of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_port: u16,
}

impl OperatorProcess {
    /// Starts `binary` watching `namespace` (all when `None`), with state under `state_dir`.
    pub fn start(
        binary: &Path,
        cp: &ControlPlane,
        aws: &AwsEmulator,
        namespace: Option<&str>,
        state_dir: &Path,
    ) -> Result<Self> {
        Self::start_with(binary, cp, aws, namespace, state_dir, &[])
    }

    /// [`OperatorProcess::start`] with extra command-line flags.
    pub fn start_with(
        binary: &Path,
        cp: &ControlPlane,
        aws: &AwsEmulator,
        namespace: Option<&str>,
        state_dir: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        Self::start_with_env(binary, cp, aws, namespace, state_dir, extra, &[])
    }

    /// [`OperatorProcess::start_with`] with extra environment variables (e.g. a canary that
    /// must not reach what templates can read).
    pub fn start_with_env(
        binary: &Path,
        cp: &ControlPlane,
        aws: &AwsEmulator,
        namespace: Option<&str>,
        state_dir: &Path,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        let launch = Launch {
            binary,
            kubeconfig: &cp.kubeconfig,
            namespace,
            state_dir,
            extra,
            env,
        };
        Self::launch(&launch, aws)
    }

    /// Starts the operator as `launch` says, pointed at `aws`, and waits until it is ready.
    pub fn launch(launch: &Launch<'_>, aws: &AwsEmulator) -> Result<Self> {
        let Launch {
            binary,
            kubeconfig,
            namespace,
            state_dir,
            extra,
            env,
        } = *launch;
        let tools = Toolchain::load()?;
        let metrics_port = free_port()?;
        std::fs::create_dir_all(state_dir).map_err(crate::io_err("creating operator state dir"))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--aws-endpoint")
            .arg(aws.endpoint())
            .envs(aws.aws_env())
            .env("TF_CLI_CONFIG_FILE", &tools.tf_cli_config)
            .env(
                "RUST_LOG",
                std::env::var("PANGEA_OPERATOR_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            );
        if let Some(ns) = namespace {
            cmd.arg("--namespace").arg(ns);
        }
        cmd.args(extra).envs(env.iter().map(|(k, v)| (k, v)));
        let log = state_dir.join(format!("operator-{metrics_port}.log"));
        let mut process =
            ManagedProcess::spawn("pangea-operator", cmd, &log, Duration::from_secs(60))?;
        process.wait_ready(Duration::from_secs(60), || {
            http_status(metrics_port, "/readyz") == Some(200)
        })?;
        Ok(Self {
            process,
            metrics_port,
        })
    }

    /// The default location of the binary in this workspace's target directory.
    pub fn default_binary() -> PathBuf {
        std::env::var_os("PANGEA_OPERATOR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/pangea-operator")
            })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Resident memory in KiB (from /proc).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// `/metrics` text.
    pub fn metrics(&self) -> String {
        crate::process::http_get(self.metrics_port, "/metrics").unwrap_or_default()
    }

    /// The current value of one series of `/metrics` (see [`metric`]).
    pub fn metric(&self, series: &str) -> f64 {
        metric(&self.metrics(), series)
    }

    /// Its log so far.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// How many lines of its log so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.process.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SIGKILL, no grace: a crash. Children it started (terraform) are not killed.
    pub fn kill_hard(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.process.pid() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        self.process.stop();
    }

    /// Graceful stop: SIGTERM, then the grace period (also on drop). Returns whether the
    /// operator exited on its own within it.
    pub fn stop(mut self) -> bool {
        self.process.stop()
    }
}

/// The value of `series` — a name with its labels exactly as exposed, e.g.
/// `pangea_executions_total{kind="drift",result="succeeded"}` — in Prometheus text; 0 when it
/// is absent (a counter or histogram nothing has touched yet).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_one_series_exactly() {
        let text = "# HELP pangea_x_total X.\npangea_x_total 3\npangea_y{kind=\"apply\"} 2.5\npangea_y{kind=\"drift\"} 7\n";
        assert_eq!(super::metric(text, "pangea_x_total"), 3.0);
        assert_eq!(super::metric(text, "pangea_y{kind=\"drift\"}"), 7.0);
        assert_eq!(super::metric(text, "pangea_y"), 0.0);
    }
}
