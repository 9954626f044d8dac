//! One execution, start to end: [`Executor::execute`] takes a typed [`Request`] and always
//! returns a typed [`ExecutionResult`] — failures included, classified and scrubbed of
//! secrets. Used in-process by the operator's local backend and by `pangea-executor run` in a
//! Job pod.

mod adopt;
mod error;
mod kinds;
mod prepare;
mod progress;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use pangea_api::exec::{ExecutionKind, ExecutionResult, InFlightCreate, Outcome, Request};
use tokio_util::sync::CancellationToken;

pub use self::{
    error::ExecError,
    progress::{ProgressSink, SinkFuture},
};
use crate::{compile::Compiler, orphans::journal::Journal, scrub::Scrubber, workspace::Workspace};

/// Machine-level settings shared by every execution.
#[derive(Clone, Debug)]
pub struct Executor {
    /// Workspaces, source cache, plugin cache, CLI config live here.
    pub cache_dir: PathBuf,
    /// The Pangea compiler.
    pub compiler: Compiler,
    /// Point every AWS provider at this endpoint (LocalStack, moto); `None` for real AWS.
    pub aws_endpoint: Option<String>,
    /// Kubeconfig for the `kubernetes` state backend; in-cluster credentials when `None`.
    pub kubeconfig: Option<PathBuf>,
    /// Time an interrupted terraform gets to release its lock.
    pub grace: Duration,
    /// How long terraform waits for a lock held by another run.
    pub lock_timeout: Duration,
}

/// Per-execution state shared by the steps.
pub(crate) struct RunContext<'a> {
    deadline: Instant,
    cancel: CancellationToken,
    scrub: &'a Scrubber,
    progress: progress::Recorder<'a>,
}

impl RunContext<'_> {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// What a successful run produced; turned into the contract's result.
#[derive(Default)]
struct Produced {
    revision: Option<String>,
    drift: Option<pangea_api::report::DriftReport>,
    plan: Option<pangea_api::report::PlanReport>,
    resources_total: Option<u32>,
    outputs: std::collections::BTreeMap<String, serde_json::Value>,
    adopted: Vec<pangea_api::exec::AdoptedOrphan>,
}

impl Executor {
    /// Runs `req` to completion, its deadline, or `cancel`. Never panics on bad input; every
    /// failure is in the result.
    pub async fn execute(&self, req: &Request, cancel: CancellationToken) -> ExecutionResult {
        self.execute_recording(req, cancel, None).await
    }

    /// [`Executor::execute`], publishing its [`pangea_api::exec::Progress`] to `sink` on the
    /// way (a Job pod's result ConfigMap), so a sudden death leaves a trace outside the pod.
    #[tracing::instrument(skip_all, fields(id = %req.id, template = %req.template, kind = req.kind.as_str()))]
    pub async fn execute_recording(
        &self,
        req: &Request,
        cancel: CancellationToken,
        sink: Option<&dyn ProgressSink>,
    ) -> ExecutionResult {
        let started = Instant::now();
        let (sensitive, scrub) = match read_sensitive(req) {
            Ok(values) => {
                let scrub = Scrubber::new(values.iter().map(|(_, v)| v.as_str()));
                (values, scrub)
            }
            Err(e) => return failed(req, &e, &Scrubber::default(), started, None),
        };
        let ctx = RunContext {
            deadline: started + Duration::from_secs(req.timeout_seconds),
            cancel,
            scrub: &scrub,
            progress: progress::Recorder::new(sink),
        };
        let mut revision = None;
        let run = async {
            self.journal_handed_back(req)?;
            let fetched =
                crate::source::fetch(&req.source, &self.cache_dir, ctx.remaining()).await?;
            // Known from here on, failures included: the operator records which revision
            // failed, so a failure does not read as a source change to retry.
            revision = Some(fetched.revision.clone());
            let prepared = self.prepare(req, fetched, &sensitive, &ctx).await?;
            ctx.progress.lock(prepared.state_lock.clone()).await;
            self.run_kind(req, &prepared, &ctx).await
        };
        let mut result = self.finish(req, run.await, &scrub, started, revision);
        result.in_flight_creates = self.still_in_flight(req);
        result
    }

    fn finish(
        &self,
        req: &Request,
        run: Result<Produced, ExecError>,
        scrub: &Scrubber,
        started: Instant,
        revision: Option<String>,
    ) -> ExecutionResult {
        match run {
            Ok(produced) => succeeded(req, produced, started),
            Err(ExecError::Refused { reason, message }) => {
                let error = ExecError::Refused {
                    reason,
                    message: message.clone(),
                };
                let mut result = failed(req, &error, scrub, started, revision);
                result.outcome = Outcome::Refused;
                result
            }
            Err(e) => {
                let mut result = failed(req, &e, scrub, started, revision);
                if let ExecError::Orphans(orphans) = e {
                    result.orphans = orphans;
                }
                result
            }
        }
    }

    /// Creates a previous executor reported in flight join this workspace's journal.
    /// Orphans a person resolved leave it first.
    fn journal_handed_back(&self, req: &Request) -> Result<(), ExecError> {
        if req.in_flight_creates.is_empty() && req.forget_orphans.is_empty() {
            return Ok(());
        }
        let workspace = Workspace::open(&self.cache_dir, &req.template)?;
        let journal = Journal::new(workspace.dir());
        if !req.forget_orphans.is_empty() {
            journal.forget(&req.forget_orphans)?;
        }
        let handed: Vec<_> = req
            .in_flight_creates
            .iter()
            .filter(|c| !req.forget_orphans.contains(&c.address))
            .cloned()
            .collect();
        journal.add(&handed)?;
        Ok(())
    }

    /// What may still exist outside state after this execution, for the next request.
    fn still_in_flight(&self, req: &Request) -> Vec<InFlightCreate> {
        let pending = Workspace::open(&self.cache_dir, &req.template)
            .map_err(ExecError::from)
            .and_then(|w| Ok(Journal::new(w.dir()).pending()?));
        pending.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "in-flight journal unreadable: handing back the request's");
            req.in_flight_creates.clone()
        })
    }

    async fn run_kind(
        &self,
        req: &Request,
        prepared: &prepare::Prepared,
        ctx: &RunContext<'_>,
    ) -> Result<Produced, ExecError> {
        let mut produced = match req.kind {
            ExecutionKind::Drift => kinds::drift(req, prepared, ctx).await?,
            ExecutionKind::Plan => kinds::plan(req, prepared, ctx).await?,
            ExecutionKind::Apply => kinds::apply(req, prepared, ctx).await?,
            ExecutionKind::Destroy => kinds::destroy(req, prepared, ctx).await?,
            ExecutionKind::Compliance => {
                return Err(ExecError::Unsupported(
                    "compliance executions are not implemented yet".into(),
                ));
            }
        };
        produced.revision = Some(prepared.revision.clone());
        Ok(produced)
    }
}

/// Sensitive variables: name and value read from the file the request names.
fn read_sensitive(req: &Request) -> Result<Vec<(String, String)>, ExecError> {
    req.sensitive_variable_files
        .iter()
        .map(|(name, path)| {
            let value =
                std::fs::read_to_string(path).map_err(|source| ExecError::SensitiveVariable {
                    name: name.clone(),
                    source,
                })?;
            // Files written by people or Secret mounts often end in a newline that is not
            // part of the value.
            Ok((
                name.clone(),
                value.strip_suffix('\n').unwrap_or(&value).to_owned(),
            ))
        })
        .collect()
}

fn succeeded(req: &Request, p: Produced, started: Instant) -> ExecutionResult {
    ExecutionResult {
        id: req.id.clone(),
        kind: req.kind,
        outcome: Outcome::Succeeded,
        source_revision: p.revision,
        drift: p.drift,
        plan: p.plan,
        compliance: None,
        resources_total: p.resources_total,
        outputs: p.outputs,
        error: None,
        duration_seconds: started.elapsed().as_secs_f64(),
        in_flight_creates: Vec::new(),
        adopted: p.adopted,
        orphans: Vec::new(),
    }
}

fn failed(
    req: &Request,
    e: &ExecError,
    scrub: &Scrubber,
    started: Instant,
    revision: Option<String>,
) -> ExecutionResult {
    let message = scrub.scrub(&e.to_string());
    tracing::warn!(reason = e.reason(), transient = e.is_transient(), %message, "execution failed");
    ExecutionResult {
        id: req.id.clone(),
        kind: req.kind,
        outcome: if e.is_timeout() {
            Outcome::TimedOut
        } else {
            Outcome::Failed
        },
        source_revision: revision,
        drift: None,
        plan: None,
        compliance: None,
        resources_total: None,
        outputs: Default::default(),
        error: Some(e.to_contract(message)),
        duration_seconds: started.elapsed().as_secs_f64(),
        in_flight_creates: Vec::new(),
        adopted: Vec::new(),
        orphans: Vec::new(),
    }
}
