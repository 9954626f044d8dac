//! Drift in status: a check's finding (bounded), the episode it belongs to
//! (`firstDetectedTime`, history), and its end (remediated by an apply, or reverted).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pangea_api::{
    common::{Severity, condition},
    report::{AttributeDrift, DriftReport, DriftedResource},
    template::{DriftHistoryEntry, DriftStatus},
};

use super::{Change, Finished, reason, stamp};
use crate::{conditions, decide::BlockReason, schedule};

/// Drifted resources kept in status, most severe first.
pub const MAX_RESOURCES: usize = 20;
/// Attributes kept per drifted resource.
pub const MAX_ATTRIBUTES: usize = 10;
/// Characters kept of an expected or actual value.
pub const MAX_VALUE_CHARS: usize = 256;
/// Past episodes kept, newest first.
pub const MAX_HISTORY: usize = 10;
/// Resource addresses named in the `Drifted` message.
const NAMED_IN_MESSAGE: usize = 5;

/// A drift check finished: record its finding and the episode transition.
pub(super) fn checked(c: &mut Change, f: &Finished) {
    let report = f.result.drift.clone().unwrap_or_default();
    let interval = std::time::Duration::from(f.spec.drift_detection.interval);
    let next = schedule::add(schedule::add(c.now.0, interval), f.jitter);
    let drift = c.status.drift.get_or_insert_with(Default::default);
    drift.last_check_time = Some(c.now.clone());
    drift.next_check_time = Some(stamp(next));
    if report.detected() {
        detected(c, &report);
    } else {
        nothing_found(c);
    }
    c.clear(
        condition::STALLED,
        "Succeeded",
        "the last execution succeeded",
    );
}

/// An apply succeeded: drift, if any, is gone because of it.
pub(super) fn remediated(c: &mut Change, f: &Finished) {
    let Some(drift) = c.status.drift.as_mut().filter(|d| d.detected) else {
        return;
    };
    let summary = episode_summary(drift);
    end_episode(drift, &c.now, "remediated");
    c.set(
        condition::DRIFTED,
        false,
        "Remediated",
        &format!("drift was remediated by {}", f.name()),
    );
    c.inform(
        reason::DRIFT_REMEDIATED,
        format!("{summary} remediated by {}", f.name()),
    );
}

fn detected(c: &mut Change, report: &DriftReport) {
    let (resources, omitted) = bound_resources(report);
    let severity = report.severity().unwrap_or_default();
    let count = drifted_count(report);
    let now = c.now.clone();
    let drift = c.status.drift.get_or_insert_with(Default::default);
    let continuing = drift.detected;
    let different = !continuing
        || drift.severity != Some(severity)
        || addresses(&drift.resources) != addresses(&resources)
        || drift.resources_omitted != omitted;
    if !continuing || drift.first_detected_time.is_none() {
        drift.first_detected_time = Some(now.clone());
    }
    let first = drift.first_detected_time.clone().unwrap_or(now);
    drift.detected = true;
    drift.severity = Some(severity);
    drift.resources = resources;
    drift.resources_omitted = omitted;
    record_history(drift, first, severity, count);
    let message = summary_message(drift, count);
    c.set(condition::DRIFTED, true, "DriftDetected", &message);
    // Reality no longer matches the template: not Ready until remediated or reverted.
    c.set(condition::READY, false, "Drifted", &message);
    if different {
        c.warn(reason::DRIFT_DETECTED, message);
    }
}

fn nothing_found(c: &mut Change) {
    let now = c.now.clone();
    let drift = c.status.drift.get_or_insert_with(Default::default);
    if !drift.detected {
        if conditions::find(&c.status.conditions, condition::DRIFTED).is_none() {
            c.set(condition::DRIFTED, false, "NoDrift", "no drift found");
        }
        return;
    }
    let summary = episode_summary(drift);
    end_episode(drift, &now, "reverted");
    let ready_lost_to_drift = conditions::find(&c.status.conditions, condition::READY)
        .is_some_and(|cond| cond.status == "False" && cond.reason == "Drifted");
    if ready_lost_to_drift {
        c.set(
            condition::READY,
            true,
            "NoDrift",
            "the drift is gone; infrastructure matches the template",
        );
    }
    c.set(
        condition::DRIFTED,
        false,
        "Reverted",
        &format!("{summary} is gone without an apply"),
    );
    // A refused remediation has nothing left to remediate.
    let refusal = conditions::find(&c.status.conditions, condition::REMEDIATION_BLOCKED)
        .is_some_and(|cond| cond.status == "True" && !BlockReason::is_decided_reason(&cond.reason));
    if refusal {
        c.set(
            condition::REMEDIATION_BLOCKED,
            false,
            "DriftResolved",
            "the drift the refused apply would have remediated is gone",
        );
    }
}

/// Clears the current drift and closes its history entry.
fn end_episode(drift: &mut DriftStatus, now: &Time, resolution: &str) {
    if let Some(open) = drift
        .history
        .first_mut()
        .filter(|h| h.resolved_time.is_none())
    {
        open.resolved_time = Some(now.clone());
        open.resolution = Some(resolution.to_owned());
    }
    drift.detected = false;
    drift.severity = None;
    drift.first_detected_time = None;
    drift.resources.clear();
    drift.resources_omitted = 0;
}

/// Opens a history entry for a new episode, or raises the open one to the peak seen.
fn record_history(drift: &mut DriftStatus, first: Time, severity: Severity, count: u32) {
    match drift
        .history
        .first_mut()
        .filter(|h| h.resolved_time.is_none())
    {
        Some(open) => {
            open.severity = open.severity.max(severity);
            open.resources = open.resources.max(count);
        }
        None => {
            drift.history.insert(
                0,
                DriftHistoryEntry {
                    detected_time: first,
                    resolved_time: None,
                    severity,
                    resources: count,
                    resolution: None,
                },
            );
            drift.history.truncate(MAX_HISTORY);
        }
    }
}

/// The most severe resources (stable among equals), attributes and values cut to size.
fn bound_resources(report: &DriftReport) -> (Vec<DriftedResource>, u32) {
    let mut resources = report.resources.clone();
    resources.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let cut = resources.len().saturating_sub(MAX_RESOURCES);
    resources.truncate(MAX_RESOURCES);
    for r in &mut resources {
        bound_attributes(r);
    }
    let omitted = report.resources_omitted.saturating_add(to_u32(cut));
    (resources, omitted)
}

fn bound_attributes(r: &mut DriftedResource) {
    let cut = r.attributes.len().saturating_sub(MAX_ATTRIBUTES);
    r.attributes.truncate(MAX_ATTRIBUTES);
    r.attributes_omitted = r.attributes_omitted.saturating_add(to_u32(cut));
    for a in &mut r.attributes {
        bound_values(a);
    }
}

fn bound_values(a: &mut AttributeDrift) {
    for value in [&mut a.expected, &mut a.actual].into_iter().flatten() {
        *value = conditions::bound(value, MAX_VALUE_CHARS);
    }
}

fn drifted_count(report: &DriftReport) -> u32 {
    report.drifted_count()
}

fn addresses(resources: &[DriftedResource]) -> Vec<&str> {
    resources.iter().map(|r| r.address.as_str()).collect()
}

/// `3 resource(s) drifted (critical): a, b, c` — stable for the same drift.
fn summary_message(drift: &DriftStatus, count: u32) -> String {
    let severity = drift.severity.unwrap_or_default();
    let mut named: Vec<&str> = drift
        .resources
        .iter()
        .filter(|r| r.mirror_of.is_none())
        .take(NAMED_IN_MESSAGE)
        .map(|r| r.address.as_str())
        .collect();
    let more = count.saturating_sub(to_u32(named.len()));
    let more_text = format!("and {more} more");
    if more > 0 {
        named.push(&more_text);
    }
    format!(
        "{count} resource(s) drifted, highest severity {severity}: {}",
        named.join(", ")
    )
}

/// `drift of 2 resource(s) (critical) first seen at ...` for Events and messages.
fn episode_summary(drift: &DriftStatus) -> String {
    let count = to_u32(drift.resources.len()).saturating_add(drift.resources_omitted);
    let severity = drift.severity.unwrap_or_default();
    match &drift.first_detected_time {
        Some(t) => format!(
            "drift of {count} resource(s) ({severity}) first seen at {}",
            t.0
        ),
        None => format!("drift of {count} resource(s) ({severity})"),
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
