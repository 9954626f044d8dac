//! One test's world for the Job execution backend: a control plane with a node, the
//! emulator, a namespace and the operator running executor Jobs there. Tests poll it for
//! what a user sees (template status, Jobs, pods, Events) with bounded waits that report the
//! operator's and the node's logs when they run out.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::batch::v1::Job;
use kube::{Api, api::ListParams};
use pangea_api::PangeaTemplate;

use crate::{AwsEmulator, ControlPlane, Error, OperatorProcess, Result, TestNamespace};

/// Longest wait for one thing a test expects (cold, loaded machine included).
pub const WAIT: Duration = Duration::from_secs(420);

/// Field order is drop order: the operator stops before the servers it talks to.
pub struct JobCluster {
    /// The operator; `None` while a test has it stopped or killed.
    pub operator: Option<OperatorProcess>,
    /// The test's namespace.
    pub ns: TestNamespace,
    /// The AWS emulator.
    pub aws: AwsEmulator,
    /// The apiserver with its node.
    pub cp: ControlPlane,
    state: tempfile::TempDir,
    binary: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl JobCluster {
    /// Everything started, the operator (`binary`) with the Job backend plus `extra` flags.
    pub async fn start(binary: &Path, prefix: &str, extra: &[&str]) -> Result<Self> {
        Self::start_with_env(binary, prefix, extra, &[]).await
    }

    /// [`JobCluster::start`] with `env` added to the operator's environment (and kept for
    /// operators started again).
    pub async fn start_with_env(
        binary: &Path,
        prefix: &str,
        extra: &[&str],
        env: &[(String, String)],
    ) -> Result<Self> {
        let cp = ControlPlane::start_with_node().await?;
        let aws = AwsEmulator::start()?;
        let ns = cp.namespace(prefix).await?;
        let state = tempfile::tempdir().map_err(crate::io_err("creating a state dir"))?;
        let mut s = Self {
            operator: None,
            ns,
            aws,
            cp,
            state,
            binary: binary.to_owned(),
            extra: extra.iter().map(|f| (*f).to_owned()).collect(),
            env: env.to_vec(),
        };
        s.operator = Some(s.start_operator().await?);
        Ok(s)
    }

    /// Starts another operator process with the same flags (after a kill or stop).
    pub async fn start_operator(&self) -> Result<OperatorProcess> {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        OperatorProcess::start_with_jobs(
            &self.binary,
            &self.cp,
            &self.aws,
            &self.ns.name,
            self.state.path(),
            &extra,
            &self.env,
        )
        .await
    }

    /// The operator's `--state-dir` (its workspaces, secret files and log).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Templates in the namespace.
    pub fn api(&self) -> Api<PangeaTemplate> {
        self.ns.api()
    }

    /// Creates template `name` with `spec`.
    pub async fn create(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        self.ns.create_template(name, spec).await
    }

    /// Polls every second until `ok` holds for template `name`, recording the executor Jobs
    /// seen meanwhile in `jobs`.
    pub async fn until(
        &self,
        name: &str,
        what: &str,
        jobs: &mut Vec<String>,
        ok: impl Fn(&PangeaTemplate) -> bool,
    ) -> Result<PangeaTemplate> {
        let start = Instant::now();
        loop {
            for job in self.jobs().await? {
                let name = job_name(&job).to_owned();
                if !jobs.contains(&name) {
                    jobs.push(name);
                }
            }
            let tpl = self.api().get(name).await?;
            if ok(&tpl) {
                return Ok(tpl);
            }
            if start.elapsed() > WAIT {
                return Err(self.timed_out(&format!(
                    "{name}: not {what}; status: {:#?}\njobs: {jobs:?}",
                    tpl.status
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Polls every second until a Job satisfies `ok`; returns it.
    pub async fn job_until(&self, what: &str, ok: impl Fn(&Job) -> bool) -> Result<Job> {
        let start = Instant::now();
        loop {
            if let Some(job) = self.jobs().await?.into_iter().find(|j| ok(j)) {
                return Ok(job);
            }
            if start.elapsed() > WAIT {
                return Err(self.timed_out(&format!("no Job {what}")));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The executor Jobs in the namespace.
    pub async fn jobs(&self) -> Result<Vec<Job>> {
        let jobs: Api<Job> = self.ns.api();
        Ok(jobs.list(&ListParams::default()).await?.items)
    }

    /// Polls every second until the operator has logged more than `seen` lines containing
    /// `needle`; returns how many it has.
    pub async fn until_logged(&self, needle: &str, seen: usize) -> Result<usize> {
        let start = Instant::now();
        loop {
            let count = self.operator.as_ref().map_or(0, |o| o.log_count(needle));
            if count > seen {
                return Ok(count);
            }
            if start.elapsed() > WAIT {
                return Err(self.timed_out(&format!(
                    "the operator did not log {needle:?} more than {seen} times"
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Reasons of the Events about template `name`.
    pub async fn event_reasons(&self, name: &str) -> Result<Vec<String>> {
        self.ns.event_reasons(name).await
    }

    /// A wait of [`WAIT`] that ran out, with the operator's and the node's recent logs.
    pub fn timed_out(&self, what: &str) -> Error {
        self.timed_out_after(what, WAIT)
    }

    /// A wait of `waited` that ran out, with the operator's and the node's recent logs.
    pub fn timed_out_after(&self, what: &str, waited: Duration) -> Error {
        let log = self
            .operator
            .as_ref()
            .map(|o| o.log_tail(60))
            .unwrap_or_default();
        let node = self.cp.node().map(|n| n.log_tails(20)).unwrap_or_default();
        Error::TimedOut(format!(
            "{what} after {}s\noperator log:\n{log}\nnode:\n{node}",
            waited.as_secs()
        ))
    }
}

/// A Job's name.
pub fn job_name(job: &Job) -> &str {
    job.metadata.name.as_deref().unwrap_or_default()
}

/// Whether a Job has its `type` condition (`Complete`, `Failed`) true.
pub fn job_has(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// A Job's execution id (annotation).
pub fn execution_id(job: &Job) -> Option<String> {
    job.metadata
        .annotations
        .as_ref()?
        .get("pangea.io/execution-id")
        .cloned()
}
