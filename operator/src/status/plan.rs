//! Successful plans, applies and destroys: the plan summary, resource counts, `Ready`, and
//! the Events `PlanPending` / `PlanApplied`.

use pangea_api::{
    common::condition,
    report::PlanReport,
    template::{PlanStatus, ResourceCounts},
};

use super::{Change, Finished, drift, reason};
use crate::decide::BlockReason;

/// A plan was published: it is pending when it has changes.
pub(super) fn planned(c: &mut Change, f: &Finished) {
    let report = f.result.plan.clone().unwrap_or_default();
    let new = plan_status(&report, f, report.has_changes());
    let old = c.status.plan.replace(new.clone());
    let id = new.id.as_deref().unwrap_or("(none)");
    let counts = counts(&report);
    if new.pending {
        c.set(
            condition::READY,
            false,
            "PlanPending",
            &format!("plan {id} ({counts}) waits to be applied"),
        );
        let newly_pending = old.is_none_or(|o| !o.pending || o.id != new.id);
        if newly_pending {
            c.inform(
                reason::PLAN_PENDING,
                format!(
                    "plan {id} ({counts}) waits to be applied; approve it with spec.approvePlan \
                     or annotation pangea.io/approve={id}"
                ),
            );
        }
    } else {
        c.set(
            condition::READY,
            true,
            "UpToDate",
            "the infrastructure matches the template: no changes to apply",
        );
    }
    c.clear(
        condition::STALLED,
        "Succeeded",
        "the last execution succeeded",
    );
    // A stale approval is answered by publishing the current plan.
    let stale = crate::conditions::find(&c.status.conditions, condition::REMEDIATION_BLOCKED)
        .is_some_and(|cond| {
            cond.status == "True" && cond.reason == BlockReason::StaleApproval.as_str()
        });
    if stale {
        c.set(
            condition::REMEDIATION_BLOCKED,
            false,
            "Replanned",
            &format!("the current plan is {id}"),
        );
    }
}

/// A plan was applied: the infrastructure now matches the template, so any drift is gone.
pub(super) fn applied(c: &mut Change, f: &Finished) {
    let report = f.result.plan.clone().unwrap_or_default();
    let new = plan_status(&report, f, false);
    let id = new.id.clone().unwrap_or_else(|| "(none)".into());
    c.status.plan = Some(new);
    let total = f
        .result
        .resources_total
        .or(c.status.resources.as_ref().map(|r| r.total))
        .unwrap_or(0);
    c.status.resources = Some(ResourceCounts {
        total,
        created: report.add,
        modified: report.change,
        deleted: report.destroy,
    });
    c.status.outputs = f.result.outputs.clone();
    c.set(
        condition::READY,
        true,
        "Applied",
        &format!("applied plan {id} ({})", counts(&report)),
    );
    c.clear(
        condition::STALLED,
        "Succeeded",
        "the last execution succeeded",
    );
    c.clear(
        condition::REMEDIATION_BLOCKED,
        "Applied",
        &format!("plan {id} was applied"),
    );
    if report.has_changes() {
        c.inform(
            reason::PLAN_APPLIED,
            format!(
                "applied plan {id} ({}; {})",
                counts(&report),
                f.trigger.as_str()
            ),
        );
    }
    adopted(c, f);
    drift::remediated(c, f);
}

/// Resources the apply imported instead of creating them twice: a person should know.
fn adopted(c: &mut Change, f: &Finished) {
    if f.result.adopted.is_empty() {
        return;
    }
    let each: Vec<String> = f
        .result
        .adopted
        .iter()
        .map(|a| format!("{} (id {})", a.address, a.import_id))
        .collect();
    c.warn(
        reason::ORPHANS_ADOPTED,
        format!(
            "imported {} resource(s) an interrupted apply had created outside state: {}",
            each.len(),
            each.join(", ")
        ),
    );
}

/// Everything was destroyed (deletion with `deletionPolicy: Destroy`).
pub(super) fn destroyed(c: &mut Change, f: &Finished) {
    let report = f.result.plan.clone().unwrap_or_default();
    c.status.resources = Some(ResourceCounts {
        total: 0,
        created: 0,
        modified: 0,
        deleted: report.destroy,
    });
    c.status.plan = None;
    c.status.outputs.clear();
    c.set(
        condition::READY,
        false,
        "Destroyed",
        &format!("{} destroyed {} resource(s)", f.name(), report.destroy),
    );
}

fn plan_status(report: &PlanReport, f: &Finished, pending: bool) -> PlanStatus {
    PlanStatus {
        id: Some(report.id.clone()).filter(|id| !id.is_empty()),
        pending,
        add: report.add,
        change: report.change,
        destroy: report.destroy,
        source_revision: f.result.source_revision.clone(),
        state_serial: report.state_serial,
        state_lineage: report.state_lineage.clone(),
    }
}

fn counts(report: &PlanReport) -> String {
    format!(
        "{} to add, {} to change, {} to destroy",
        report.add, report.change, report.destroy
    )
}
