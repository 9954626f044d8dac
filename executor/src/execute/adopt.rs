//! Plans that adopt the orphans of an interrupted apply. The candidates come from the
//! workspace's in-flight journal; a plan without imports shows which of them the
//! configuration still creates; those with a configured identity are imported with `import`
//! blocks, the rest stop the execution with a named list. An import of an object that does
//! not exist fails the plan: that create never reached the cloud, so the candidate is dropped
//! and the plan made again, a bounded number of times.

use pangea_api::{exec::AdoptedOrphan, exec::Request, report::PlanReport};
use serde_json::Value;

use super::{ExecError, RunContext, kinds::make_plan, prepare::Prepared};
use crate::{
    orphans::{self, Import, journal::Journal},
    report::{self, StateV4},
    terraform::TerraformError,
};

/// Plans made with imports before giving up: each failed attempt drops at least one
/// candidate, so this only bounds a terraform that keeps failing differently.
const MAX_IMPORT_ATTEMPTS: usize = 4;

/// A saved plan, and the orphans it imports when applied.
pub(super) struct Planned {
    pub plan: PlanReport,
    pub state: StateV4,
    pub shown: Value,
    pub adopting: Vec<AdoptedOrphan>,
}

/// The saved plan of this run, importing what the journal says may exist outside state; its
/// id is bound to the request's interrupted apply, if any (see [`report::after_interruption`]).
pub(super) async fn plan_adopting(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Planned, ExecError> {
    let mut planned = plan_adopting_unbound(req, p, ctx).await?;
    if let Some(apply) = &req.interrupted_apply {
        planned.plan.id = report::after_interruption(&planned.plan.id, apply);
    }
    Ok(planned)
}

async fn plan_adopting_unbound(
    req: &Request,
    p: &Prepared,
    ctx: &RunContext<'_>,
) -> Result<Planned, ExecError> {
    let journal = Journal::new(p.workspace.dir());
    let candidates = journal.pending()?;
    let first = planned(make_plan(p, ctx).await?, &[]);
    if candidates.is_empty() {
        return Ok(first);
    }
    let workspace = p.workspace.dir().display().to_string();
    let decision = orphans::decide(
        &candidates,
        &first.shown,
        req.limits.adopt_orphans,
        &workspace,
    );
    journal.forget(&decision.settled)?;
    if !decision.named.is_empty() {
        return Err(ExecError::Orphans(decision.named));
    }
    let mut imports = decision.import;
    for _ in 0..MAX_IMPORT_ATTEMPTS {
        if imports.is_empty() {
            p.workspace.write_imports(None)?;
            return Ok(planned(make_plan(p, ctx).await?, &[]));
        }
        p.workspace
            .write_imports(Some(&orphans::import_blocks(&imports)))?;
        match make_plan(p, ctx).await {
            Ok(made) => return Ok(planned(made, &imports)),
            // Every failed import has its own diagnostic: read them all, not the summary's few.
            Err(ExecError::Terraform(TerraformError::Failed { detail, .. }))
                if !orphans::never_created(&detail, &imports).is_empty() =>
            {
                let gone: Vec<String> = orphans::never_created(&detail, &imports)
                    .into_iter()
                    .map(|i| i.create.address.clone())
                    .collect();
                tracing::info!(?gone, "in-flight creates never reached the cloud: dropped");
                journal.forget(&gone)?;
                imports.retain(|i| !gone.contains(&i.create.address));
            }
            Err(e) => {
                p.workspace.write_imports(None)?;
                return Err(e);
            }
        }
    }
    p.workspace.write_imports(None)?;
    Err(ExecError::Adoption(format!(
        "importing {} orphan(s) of an interrupted apply still failed after {MAX_IMPORT_ATTEMPTS} plans",
        imports.len()
    )))
}

fn planned((plan, state, shown): (PlanReport, StateV4, Value), imports: &[Import]) -> Planned {
    Planned {
        plan,
        state,
        shown,
        adopting: imports
            .iter()
            .map(|i| AdoptedOrphan {
                address: i.create.address.clone(),
                resource_type: i.create.resource_type.clone(),
                import_id: i.id.clone(),
            })
            .collect(),
    }
}
