//! Second half of an execution, one function per kind. Drift reads the two states inside the
//! saved refresh-only plan instead of `terraform show -json` (which costs as much again);
//! applies run exactly the reviewed saved plan, after the safety checks, and then settle the
//! state with a refresh-only apply so the next drift check starts clean.

use std::{collections::BTreeMap, time::SystemTime};

use pangea_api::{exec::Request, report::PlanReport};
use serde_json::Value;

use super::{ExecError, Produced, RunContext, adopt, prepare::Prepared};
use crate::{
    orphans::{
        self,
        journal::{APPLY_LOG, Journal},
    },
    report::{self, DEFAULT_MAX_CHANGES, DriftOptions, StateV4},
    terraform::{TerraformError, process::ProcessError},
};

const DRIFT_PLAN: &str = "drift.tfplan";
const PLAN: &str = "changes.tfplan";

/// Refresh-only plan → attribute-level drift report.
pub(super) async fn drift(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Produced, ExecError> {
    let session = ctx.session(p);
    let plan_file = p.workspace.path(DRIFT_PLAN);
    session.plan(&plan_file, true).await?;
    let (prev, refreshed) = report::read_states(&plan_file)?;
    let options = DriftOptions::default()
        .with_severity_rules(&req.severity_rules)?
        .with_ignore_rules(&req.ignore, SystemTime::now())?
        .with_sensitive_values(ctx.scrub.secrets());
    let drift = report::build_drift_report(&prev, &refreshed, &options);
    Ok(Produced {
        drift: Some(drift),
        resources_total: Some(managed_count(&refreshed)),
        ..Produced::default()
    })
}

/// Normal plan → pending changes and the plan id an approval names. Made exactly as the
/// apply will make it (with the same imports of orphans), so an approved id still matches.
pub(super) async fn plan(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Produced, ExecError> {
    let planned = adopt::plan_adopting(req, p, ctx).await?;
    p.workspace.write_imports(None)?;
    Ok(Produced {
        plan: Some(planned.plan),
        resources_total: Some(managed_count(&planned.state)),
        ..Produced::default()
    })
}

/// Plan (adopting orphans) → safety checks and approval → apply that plan, journaling its
/// creates → settle → outputs.
pub(super) async fn apply(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Produced, ExecError> {
    let planned = adopt::plan_adopting(req, p, ctx).await?;
    let plan = planned.plan;
    check_limits(req, &plan)?;
    let session = ctx.session(p);
    if plan.has_changes() || !planned.adopting.is_empty() {
        let journal = Journal::new(p.workspace.dir());
        let listed = journal.before_apply(orphans::planned_creates(&planned.shown))?;
        ctx.progress.in_flight(listed).await?;
        let applied = session
            .apply_plan_logged(&p.workspace.path(PLAN), &p.workspace.path(APPLY_LOG))
            .await;
        match &applied {
            Err(TerraformError::Process(e)) if !matches!(e, ProcessError::Spawn { .. }) => {
                journal.interrupted()?;
            }
            _ => journal.finished()?,
        }
        applied?;
        p.workspace.write_imports(None)?;
        if !planned.adopting.is_empty() {
            tracing::info!(adopted = ?planned.adopting.iter().map(|a| &a.address).collect::<Vec<_>>(), "adopted orphans of an interrupted apply");
        }
    }
    session.apply_refresh_only().await?;
    let state = session.state_pull().await?;
    let outputs = public_outputs(&session.outputs().await?, ctx);
    Ok(Produced {
        plan: Some(plan),
        resources_total: Some(count_in_state_json(&state)),
        outputs,
        adopted: planned.adopting,
        ..Produced::default()
    })
}

/// Destroy plan → apply it. Requires `allowDestroy`.
pub(super) async fn destroy(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Produced, ExecError> {
    if !req.limits.allow_destroy {
        return Err(refused(
            "DestroyNotAllowed",
            "destroy refused: safety.allowDestroy is false".into(),
        ));
    }
    let session = ctx.session(p);
    let plan_file = p.workspace.path("destroy.tfplan");
    session.plan_destroy(&plan_file).await?;
    let shown = session.show_plan_json(&plan_file).await?;
    let plan = report::build_plan_report(&shown, DEFAULT_MAX_CHANGES);
    session.apply_plan(&plan_file).await?;
    Ok(Produced {
        plan: Some(plan),
        resources_total: Some(0),
        ..Produced::default()
    })
}

/// A normal saved plan, its report and its `show -json`; the id binds plan content, state
/// identity (lineage + serial of the state it was made against) and source revision.
pub(super) async fn make_plan(
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<(PlanReport, StateV4, Value), ExecError> {
    let session = ctx.session(p);
    let plan_file = p.workspace.path(PLAN);
    session.plan(&plan_file, false).await?;
    let shown = session.show_plan_json(&plan_file).await?;
    let (_, refreshed) = report::read_states(&plan_file)?;
    let mut plan = report::build_plan_report(&shown, DEFAULT_MAX_CHANGES);
    report::stamp_plan(&mut plan, &shown, &refreshed, &p.revision);
    Ok((plan, refreshed, shown))
}

fn check_limits(req: &Request, plan: &PlanReport) -> Result<(), ExecError> {
    if let Some(approved) = &req.approved_plan_id
        && approved != &plan.id
    {
        return Err(refused(
            "StaleApproval",
            format!(
                "approval for plan {approved} is stale: the current plan is {} (the configuration, state or source changed)",
                plan.id
            ),
        ));
    }
    if plan.destroy > 0 && !req.limits.allow_destroy {
        return Err(refused(
            "DestroyNotAllowed",
            format!(
                "the plan deletes or replaces {} resource(s) and safety.allowDestroy is false",
                plan.destroy
            ),
        ));
    }
    let touched = plan.add + plan.change + plan.destroy;
    if let Some(max) = req.limits.max_changes
        && touched > max
    {
        return Err(refused(
            "TooManyChanges",
            format!("the plan changes {touched} resources, more than safety.maxChanges ({max})"),
        ));
    }
    Ok(())
}

fn refused(reason: &'static str, message: String) -> ExecError {
    ExecError::Refused { reason, message }
}

/// Non-sensitive outputs from `terraform output -json`, values scrubbed as a last resort.
fn public_outputs(outputs: &Value, ctx: &RunContext<'_>) -> BTreeMap<String, Value> {
    let Some(map) = outputs.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .filter(|(_, o)| !o.get("sensitive").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|(name, o)| {
            let value = o.get("value")?;
            let scrubbed = ctx.scrub.scrub(&value.to_string());
            Some((
                name.clone(),
                serde_json::from_str(&scrubbed).unwrap_or(Value::String(scrubbed)),
            ))
        })
        .collect()
}

fn managed_count(state: &StateV4) -> u32 {
    state.managed_instances().len() as u32
}

fn count_in_state_json(state: &Value) -> u32 {
    serde_json::from_value::<StateV4>(state.clone())
        .map(|s| managed_count(&s))
        .unwrap_or(0)
}
