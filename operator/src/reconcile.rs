//! Reconcile of one PangeaTemplate: read the inputs (the object, what the execution backend
//! holds for it, the references it makes) → [`core::step`] (pure) → [`core::carry_out`]
//! (start → write status → acknowledge the recorded result → publish Events).
//! Deletion runs the same step through the finalizer: `Orphan` lets go, `Destroy` runs a
//! destroy execution first.

use std::{sync::Mutex, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, ResourceExt,
    runtime::{
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
        reflector::ObjectRef,
    },
};
use pangea_api::{PangeaTemplate, PangeaTemplateStatus, template::DeletionPolicy};

use crate::{
    backend::{PodOverrides, TemplateKey},
    context::{Context, WriteError},
    core::{self, Effects, Finished, Inputs, Next, Observed, Start, StartError},
    request::{self, Intent},
    resolve::{self, Resolved},
    schedule,
    status::{Emit, reason},
};

/// Finalizer that guards deletion.
pub const FINALIZER: &str = "pangea.io/finalizer";
/// Annotation that stops all changes (drift checks continue).
pub const PAUSE_ANNOTATION: &str = "pangea.io/pause";
/// Annotation that approves a plan by id.
pub const APPROVE_ANNOTATION: &str = "pangea.io/approve";
/// Event reason for references the schema cannot check.
pub use crate::core::INVALID_SPEC;

/// Reconcile failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing status failed (the result it recorded is offered again).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Deletion waits (for a destroy execution, its backoff, or a person); look again then.
    #[error("deletion in progress")]
    DeletionPending(Option<Duration>),
}

/// Entry point for the controller.
pub async fn reconcile(
    tpl: std::sync::Arc<PangeaTemplate>,
    ctx: std::sync::Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let api: Api<PangeaTemplate> =
        Api::namespaced(ctx.client.clone(), &tpl.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, tpl, |event| async {
        match event {
            Finalizer::Apply(tpl) => pipeline(&tpl, &ctx, None).await,
            Finalizer::Cleanup(tpl) => {
                let policy = tpl.spec.safety.deletion_policy;
                pipeline(&tpl, &ctx, Some(policy)).await
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(started.elapsed(), result.is_err());
    result
}

/// Backoff for reconcile errors (execution failures are handled by `step`, not here).
pub fn error_policy(
    tpl: std::sync::Arc<PangeaTemplate>,
    error: &Error,
    _ctx: std::sync::Arc<Context>,
) -> Action {
    use kube::runtime::finalizer::Error::CleanupFailed;
    match error {
        Error::Finalizer(inner) => match &**inner {
            CleanupFailed(Error::DeletionPending(after)) => {
                after.map_or_else(Action::await_change, Action::requeue)
            }
            other => {
                tracing::warn!(template = %tpl.name_any(), error = %other, "reconcile failed");
                Action::requeue(Duration::from_secs(30))
            }
        },
        _ => {
            tracing::warn!(template = %tpl.name_any(), %error, "reconcile failed");
            Action::requeue(Duration::from_secs(30))
        }
    }
}

#[tracing::instrument(skip_all, fields(template = %tpl.name_any(), namespace = tpl.namespace().unwrap_or_default()))]
async fn pipeline(
    tpl: &PangeaTemplate,
    ctx: &Context,
    deleting: Option<DeletionPolicy>,
) -> Result<Action, Error> {
    let key = TemplateKey {
        uid: tpl.uid().unwrap_or_default(),
        object: ObjectRef::from_obj(tpl),
    };
    let now = Timestamp::now();
    let observation = ctx.backend.observe(&key.uid).await;
    let namespace = tpl.namespace().unwrap_or_default();
    let resolution = resolve::resolve(&ctx.client, &namespace, &tpl.spec).await;
    let unresolved = resolution.as_ref().err().map(ToString::to_string);
    let inputs = match (&resolution, &unresolved) {
        (Ok(r), _) => Inputs::Resolved {
            source_revision: r.source_revision.as_deref(),
        },
        (Err(e), Some(message)) if e.needs_person() => Inputs::Invalid(message),
        (Err(_), message) => Inputs::Unavailable(message.as_deref().unwrap_or_default()),
    };
    if let Inputs::Unavailable(message) = inputs {
        tracing::warn!(message, "references could not be read; retrying");
    }
    let status = tpl.status.clone().unwrap_or_default();
    let annotations = tpl.annotations();
    let name = tpl.name_any();
    let observed = Observed {
        namespace: &namespace,
        name: &name,
        spec: &tpl.spec,
        generation: tpl.metadata.generation.unwrap_or(0),
        status: &status,
        paused: annotations.contains_key(PAUSE_ANNOTATION),
        approved_by_annotation: annotations.get(APPROVE_ANNOTATION).map(String::as_str),
        forget_orphans: annotations
            .get(core::orphans::FORGET_ORPHANS_ANNOTATION)
            .map(String::as_str),
        jitter: schedule::jitter_for(&key.uid, tpl.spec.drift_detection.interval.into()),
        running: observation.running.as_ref(),
        inputs,
    };
    let outcome = core::step(&observed, &observation.finished, deleting, now);
    tracing::debug!(start = ?outcome.start.as_ref().map(|s| &s.execution.running), next = ?outcome.next, "stepped");
    let recorded = (outcome.status.clone(), outcome.emits.clone());
    let effects = Runtime {
        tpl,
        ctx,
        key: &key,
        resolved: Mutex::new(resolution.ok()),
    };
    let next = core::carry_out(outcome, &effects, now).await?;
    // Counted after carry_out, so whatever this reconcile started already exists.
    if deleting.is_none() {
        ctx.metrics.template_reconciled(&key.uid);
    }
    for finished in &observation.finished {
        observe_finished(tpl, ctx, finished, &status, &recorded.0, &recorded.1, now);
    }
    match (next, deleting) {
        (Next::Finalize, _) => {
            ctx.forget(tpl).await;
            Ok(Action::await_change())
        }
        (Next::Requeue(after), None) => Ok(Action::requeue(after)),
        (Next::AwaitChange, None) => Ok(Action::await_change()),
        (Next::Requeue(after), Some(_)) => Err(Error::DeletionPending(Some(after))),
        (Next::AwaitChange, Some(_)) => Err(Error::DeletionPending(None)),
    }
}

/// The I/O of one reconcile.
struct Runtime<'a> {
    tpl: &'a PangeaTemplate,
    ctx: &'a Context,
    key: &'a TemplateKey,
    /// The references, taken by the one start a reconcile can make.
    resolved: Mutex<Option<Resolved>>,
}

impl Effects for Runtime<'_> {
    type Error = Error;

    fn start<'a>(&'a self, start: &'a Start) -> BoxFuture<'a, Result<(), StartError>> {
        async move {
            // Checked as late as possible: leadership can end while a reconcile runs.
            if !self.ctx.leading.holds() {
                return Err(StartError("this operator no longer leads".into()));
            }
            let resolved = self
                .resolved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .ok_or_else(|| StartError("references are not resolved".into()))?;
            let running = &start.execution.running;
            let intent = Intent {
                id: &running.id,
                kind: running.kind,
                approved_plan_id: start.approved_plan_id.clone(),
                carried: &start.carried,
            };
            let (request, files) =
                request::build(self.tpl, resolved, &intent, &self.ctx.settings.secrets_dir)
                    .map_err(|e| StartError(format!("preparing execution files: {e}")))?;
            let executor = &self.tpl.spec.executor;
            let overrides = PodOverrides {
                image: executor.image.clone(),
                service_account: executor.service_account_name.clone(),
                resources: executor.resources.clone(),
            };
            self.ctx
                .backend
                .start(self.key, &start.execution, request, files, &overrides)
                .await
                .map_err(|e| StartError(e.to_string()))?;
            tracing::info!(id = %running.id, kind = running.kind.as_str(), trigger = running.trigger.as_str(), "execution started");
            Ok(())
        }
        .boxed()
    }

    fn write_status<'a>(
        &'a self,
        status: &'a PangeaTemplateStatus,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            self.ctx.write_status(self.tpl, status).await?;
            Ok(())
        }
        .boxed()
    }

    fn ack<'a>(&'a self, execution_id: &'a str) -> BoxFuture<'a, ()> {
        self.ctx.backend.ack(&self.key.uid, execution_id)
    }

    fn publish<'a>(&'a self, emits: &'a [Emit]) -> BoxFuture<'a, ()> {
        self.ctx.publish(self.tpl, emits).boxed()
    }
}

/// Metrics of a result that is now recorded (counted once: after its write).
fn observe_finished(
    tpl: &PangeaTemplate,
    ctx: &Context,
    finished: &Finished,
    before: &PangeaTemplateStatus,
    after: &PangeaTemplateStatus,
    emits: &[Emit],
    now: Timestamp,
) {
    let result = &finished.result;
    ctx.metrics.executed(
        result.kind.as_str(),
        result.outcome,
        result.duration_seconds,
    );
    let drift = after.drift.as_ref().filter(|d| d.detected);
    ctx.metrics.drift_state(
        &tpl.uid().unwrap_or_default(),
        drift.and_then(|d| d.severity),
    );
    let since = |t: Option<&Time>| t.map(|t| (now - t.0).get_seconds() as f64);
    let prior = before.drift.as_ref();
    if emits.iter().any(|e| e.reason == reason::DRIFT_DETECTED)
        && let Some(seconds) = since(prior.and_then(|d| d.last_check_time.as_ref()))
    {
        ctx.metrics.detected_after(seconds);
    }
    if emits.iter().any(|e| e.reason == reason::DRIFT_REMEDIATED)
        && let Some(seconds) = since(prior.and_then(|d| d.first_detected_time.as_ref()))
    {
        ctx.metrics.remediated_after(seconds);
    }
}
