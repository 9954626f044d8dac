//! Reconcile of one PangeaTemplate, as a short pipeline:
//! record a finished execution → resolve references → decide (pure) → act (start an
//! execution) → write status (only if it changed) → publish Events.
//! Deletion goes through the finalizer: `Orphan` forgets, `Destroy` runs a destroy execution.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    runtime::{
        controller::Action,
        finalizer::{Event as Finalizer, finalizer},
        reflector::ObjectRef,
    },
};
use pangea_api::{
    PangeaTemplate, PangeaTemplateStatus,
    common::condition,
    exec::{ExecutionKind, ExecutionResult},
    template::DeletionPolicy,
};

use crate::{
    conditions,
    context::{Context, InFlight, WriteError},
    decide::{self, Observed, RunningExecution, Step, Trigger},
    request::{self, Intent},
    resolve::{self, Resolved},
    schedule,
    status::{self, Emit, reason},
};

/// Finalizer that guards deletion.
pub const FINALIZER: &str = "pangea.io/finalizer";
/// Annotation that stops all changes (drift checks continue).
pub const PAUSE_ANNOTATION: &str = "pangea.io/pause";
/// Annotation that approves a plan by id.
pub const APPROVE_ANNOTATION: &str = "pangea.io/approve";
/// Event reason for references the schema cannot check.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// Reconcile failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing status failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Reading references failed (apiserver trouble; retried).
    #[error(transparent)]
    Resolve(#[from] resolve::ResolveError),
    /// Secret files for an execution could not be written.
    #[error("preparing execution files: {0}")]
    Files(#[from] std::io::Error),
    /// The finalizer machinery failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Deletion waits for a destroy execution (not a failure; retried soon).
    #[error("deletion in progress: {0}")]
    DeletionPending(String),
}

/// Entry point for the controller.
pub async fn reconcile(tpl: Arc<PangeaTemplate>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let api: Api<PangeaTemplate> =
        Api::namespaced(ctx.client.clone(), &tpl.namespace().unwrap_or_default());
    let result = finalizer(&api, FINALIZER, tpl, |event| async {
        match event {
            Finalizer::Apply(tpl) => apply(tpl, &ctx).await,
            Finalizer::Cleanup(tpl) => cleanup(tpl, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(started.elapsed(), result.is_err());
    result
}

/// Backoff for reconcile errors (execution failures are handled by `decide`, not here).
pub fn error_policy(tpl: Arc<PangeaTemplate>, error: &Error, _ctx: Arc<Context>) -> Action {
    match error {
        Error::Finalizer(inner)
            if matches!(
                **inner,
                kube::runtime::finalizer::Error::CleanupFailed(Error::DeletionPending(_))
            ) =>
        {
            Action::requeue(Duration::from_secs(5))
        }
        _ => {
            tracing::warn!(template = %tpl.name_any(), %error, "reconcile failed");
            Action::requeue(Duration::from_secs(30))
        }
    }
}

#[tracing::instrument(skip_all, fields(template = %tpl.name_any(), namespace = tpl.namespace().unwrap_or_default()))]
async fn apply(tpl: Arc<PangeaTemplate>, ctx: &Context) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(&*tpl);
    let generation = tpl.metadata.generation.unwrap_or(0);
    let now = Timestamp::now();
    let jitter = schedule::jitter_for(
        &tpl.uid().unwrap_or_default(),
        tpl.spec.drift_detection.interval.into(),
    );
    let mut status = tpl.status.clone().unwrap_or_default();
    let mut emits = Vec::new();
    if let Some(result) = ctx.backend.take_finished(&key) {
        record_finished(
            &tpl,
            ctx,
            &key,
            &result,
            jitter,
            now,
            &mut status,
            &mut emits,
        );
    }
    let resolved = match resolve::resolve(
        &ctx.client,
        &tpl.namespace().unwrap_or_default(),
        &tpl.spec,
    )
    .await
    {
        Ok(resolved) => {
            lift_invalid(&mut status, generation, now);
            resolved
        }
        Err(e) if e.needs_person() => {
            return invalid(&tpl, ctx, status, emits, &e.to_string(), generation, now).await;
        }
        Err(e) => return Err(e.into()),
    };
    let flight = ctx.in_flight(&key);
    let annotations = tpl.annotations();
    let step = decide::decide(&Observed {
        spec: &tpl.spec,
        generation,
        status: &status,
        paused: annotations.contains_key(PAUSE_ANNOTATION),
        approved_by_annotation: annotations.get(APPROVE_ANNOTATION).map(String::as_str),
        running: flight.as_ref().map(|f| &f.running),
        jitter,
        now,
        source_revision: resolved.source_revision.as_deref(),
    });
    tracing::debug!(?step, "decided");
    let (decided, more) = status::on_decided(&status, &step, generation, now);
    status = decided;
    emits.extend(more);
    let action = act(&tpl, ctx, step, resolved, generation, now, &mut status)?;
    ctx.write_status(&tpl, &status).await?;
    ctx.publish(&tpl, &emits).await;
    Ok(action)
}

/// Records a finished execution in status (before forgetting it: see `Observed::running`).
#[allow(clippy::too_many_arguments)]
fn record_finished(
    tpl: &PangeaTemplate,
    ctx: &Context,
    key: &ObjectRef<PangeaTemplate>,
    result: &ExecutionResult,
    jitter: Duration,
    now: Timestamp,
    status: &mut PangeaTemplateStatus,
    emits: &mut Vec<Emit>,
) {
    let flight = ctx.in_flight(key);
    let (generation, trigger) = flight.as_ref().map_or(
        (tpl.metadata.generation.unwrap_or(0), Trigger::Retry),
        |f| (f.generation, f.running.trigger),
    );
    let before = status.clone();
    let (after, more) =
        status::on_finished(&before, &tpl.spec, generation, result, trigger, jitter, now);
    ctx.finished(key);
    ctx.metrics.executed(
        result.kind.as_str(),
        result.outcome,
        result.duration_seconds,
    );
    observe_drift(tpl, ctx, &before, &after, &more, now);
    *status = after;
    emits.extend(more);
}

fn observe_drift(
    tpl: &PangeaTemplate,
    ctx: &Context,
    before: &PangeaTemplateStatus,
    after: &PangeaTemplateStatus,
    emits: &[Emit],
    now: Timestamp,
) {
    let drift = after.drift.as_ref().filter(|d| d.detected);
    ctx.metrics.drift_state(
        &tpl.uid().unwrap_or_default(),
        drift.and_then(|d| d.severity),
    );
    let since = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map(|t| (now - t.0).get_seconds() as f64)
    };
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

/// Starts what `decide` asked for; the returned action wakes the controller when needed.
fn act(
    tpl: &PangeaTemplate,
    ctx: &Context,
    step: Step,
    resolved: Resolved,
    generation: i64,
    now: Timestamp,
    status: &mut PangeaTemplateStatus,
) -> Result<Action, Error> {
    let requeue =
        |after: Option<Duration>| after.map_or_else(Action::await_change, Action::requeue);
    match step {
        Step::Idle { requeue_after } | Step::Blocked { requeue_after, .. } => {
            Ok(requeue(requeue_after))
        }
        Step::AwaitExecution { requeue_after } => Ok(Action::requeue(requeue_after)),
        Step::Execute {
            kind,
            trigger,
            approved_plan_id,
        } => {
            let running = RunningExecution {
                id: execution_id(tpl, kind, now),
                kind,
                trigger,
                started: now,
            };
            let intent = Intent {
                id: &running.id,
                kind,
                approved_plan_id,
            };
            let (request, files) =
                request::build(tpl, resolved, &intent, &ctx.settings.secrets_dir)?;
            let key = ObjectRef::from_obj(tpl);
            ctx.started(
                key.clone(),
                InFlight {
                    running: running.clone(),
                    generation,
                },
            );
            if let Err(error) = ctx.backend.start(key.clone(), request, files) {
                ctx.finished(&key);
                tracing::warn!(%error, "execution not started");
                return Ok(Action::requeue(Duration::from_secs(10)));
            }
            tracing::info!(id = %running.id, kind = kind.as_str(), trigger = trigger.as_str(), "execution started");
            *status = status::on_started(status, &running, generation, now);
            // The backend announces completion; this is only the safety net.
            Ok(Action::requeue(tpl.spec.reconciliation.timeout.into()))
        }
    }
}

/// `<name>-<kind>-<unix seconds>`: unique per template (one execution at a time) and
/// readable in logs.
fn execution_id(tpl: &PangeaTemplate, kind: ExecutionKind, now: Timestamp) -> String {
    format!("{}-{}-{}", tpl.name_any(), kind.as_str(), now.as_second())
}

/// A reference CEL cannot check is missing or wrong: `Stalled` + `Ready=False` with the cause,
/// an `InvalidSpec` Event when it is new, and a slow retry (the object may appear).
async fn invalid(
    tpl: &PangeaTemplate,
    ctx: &Context,
    mut status: PangeaTemplateStatus,
    mut emits: Vec<Emit>,
    message: &str,
    generation: i64,
    now: Timestamp,
) -> Result<Action, Error> {
    let stamp = status::stamp(now);
    let newly = conditions::set_condition(
        &mut status.conditions,
        condition::STALLED,
        true,
        INVALID_SPEC,
        message,
        generation,
        &stamp,
    );
    conditions::set_condition(
        &mut status.conditions,
        condition::READY,
        false,
        INVALID_SPEC,
        message,
        generation,
        &stamp,
    );
    if newly {
        emits.push(Emit {
            warning: true,
            reason: INVALID_SPEC,
            note: message.to_owned(),
        });
    }
    ctx.write_status(tpl, &status).await?;
    ctx.publish(tpl, &emits).await;
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// A reference problem that is now solved no longer stalls the template.
fn lift_invalid(status: &mut PangeaTemplateStatus, generation: i64, now: Timestamp) {
    let stalled_by_us = conditions::find(&status.conditions, condition::STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == INVALID_SPEC);
    if stalled_by_us {
        let stamp = status::stamp(now);
        conditions::set_condition(
            &mut status.conditions,
            condition::STALLED,
            false,
            "ReferencesResolved",
            "",
            generation,
            &stamp,
        );
    }
}

/// Deletion: `Orphan` forgets; `Destroy` runs a destroy execution and keeps the finalizer
/// until it succeeded, showing why while it cannot.
async fn cleanup(tpl: Arc<PangeaTemplate>, ctx: &Context) -> Result<Action, Error> {
    if tpl.spec.safety.deletion_policy == DeletionPolicy::Orphan {
        ctx.forget(&tpl);
        return Ok(Action::await_change());
    }
    let key = ObjectRef::from_obj(&*tpl);
    let now = Timestamp::now();
    if let Some(result) = ctx.backend.take_finished(&key) {
        ctx.finished(&key);
        if result.kind == ExecutionKind::Destroy
            && result.outcome == pangea_api::exec::Outcome::Succeeded
        {
            ctx.forget(&tpl);
            return Ok(Action::await_change());
        }
        let message = result.error.map_or_else(
            || "destroy did not succeed".to_owned(),
            |e| format!("{}: {}", e.reason, e.message),
        );
        deletion_blocked(&tpl, ctx, &message, now).await?;
        return Err(Error::DeletionPending(message));
    }
    if !ctx.backend.is_running(&key) {
        let resolved =
            resolve::resolve(&ctx.client, &tpl.namespace().unwrap_or_default(), &tpl.spec).await?;
        let id = execution_id(&tpl, ExecutionKind::Destroy, now);
        let intent = Intent {
            id: &id,
            kind: ExecutionKind::Destroy,
            approved_plan_id: None,
        };
        let (request, files) = request::build(&tpl, resolved, &intent, &ctx.settings.secrets_dir)?;
        let running = RunningExecution {
            id,
            kind: ExecutionKind::Destroy,
            trigger: Trigger::SpecChanged,
            started: now,
        };
        ctx.started(
            key.clone(),
            InFlight {
                running,
                generation: tpl.metadata.generation.unwrap_or(0),
            },
        );
        if ctx.backend.start(key.clone(), request, files).is_err() {
            ctx.finished(&key);
        }
    }
    Err(Error::DeletionPending(
        "destroying the infrastructure (deletionPolicy: Destroy)".into(),
    ))
}

async fn deletion_blocked(
    tpl: &PangeaTemplate,
    ctx: &Context,
    message: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut status = tpl.status.clone().unwrap_or_default();
    let generation = tpl.metadata.generation.unwrap_or(0);
    let stamp = status::stamp(now);
    let newly = conditions::set_condition(
        &mut status.conditions,
        condition::REMEDIATION_BLOCKED,
        true,
        "DeletionBlocked",
        message,
        generation,
        &stamp,
    );
    ctx.write_status(tpl, &status).await?;
    if newly {
        ctx.publish(
            tpl,
            &[Emit {
                warning: true,
                reason: reason::REMEDIATION_BLOCKED,
                note: format!("deletion blocked: {message}"),
            }],
        )
        .await;
    }
    Ok(())
}
