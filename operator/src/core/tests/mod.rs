//! `step` on the cases the scenarios do not reach: unavailable references, several results
//! waiting at once, execution ids.

use std::time::Duration;

use jiff::Timestamp;
use pangea_api::{
    PangeaTemplate, PangeaTemplateStatus,
    exec::{ExecutionKind, ExecutionResult},
};

use super::*;
use crate::decide::{RunningExecution, Trigger};

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn now() -> Timestamp {
    "2025-06-11T12:00:00Z".parse().unwrap()
}

fn finished(kind: ExecutionKind, file: &str, id: &str) -> Finished {
    let mut result: ExecutionResult = fixture(file);
    result.id = id.into();
    Finished {
        execution: Execution {
            running: RunningExecution {
                id: id.into(),
                kind,
                trigger: Trigger::SpecChanged,
                started: now(),
            },
            generation: 1,
        },
        result,
    }
}

fn observed<'a>(
    tpl: &'a PangeaTemplate,
    status: &'a PangeaTemplateStatus,
    inputs: Inputs<'a>,
) -> Observed<'a> {
    Observed {
        namespace: "team-a",
        name: "web",
        spec: &tpl.spec,
        generation: 1,
        status,
        paused: false,
        approved_by_annotation: None,
        forget_orphans: None,
        jitter: Duration::ZERO,
        running: None,
        inputs,
    }
}

#[test]
fn unreadable_references_still_record_results_and_start_nothing() {
    let tpl: PangeaTemplate = fixture("template-immediate.yaml");
    let status = PangeaTemplateStatus::default();
    let o = observed(&tpl, &status, Inputs::Unavailable("connection refused"));
    let done = [finished(ExecutionKind::Apply, "result-apply.yaml", "a1")];
    let out = step(&o, &done, None, now());
    assert_eq!(out.start, None);
    assert_eq!(out.next, Next::Requeue(UNAVAILABLE_RETRY));
    assert_eq!(out.ack, ["a1"]);
    assert_eq!(out.status.resources.unwrap().total, 2);
}

#[test]
fn every_waiting_result_is_recorded_in_order_before_deciding() {
    let tpl: PangeaTemplate = fixture("template-immediate.yaml");
    let status = PangeaTemplateStatus::default();
    let o = observed(
        &tpl,
        &status,
        Inputs::Resolved {
            source_revision: None,
        },
    );
    let done = [
        finished(ExecutionKind::Apply, "result-apply.yaml", "a1"),
        finished(ExecutionKind::Drift, "result-drift-sg.yaml", "d1"),
    ];
    let out = step(&o, &done, None, now());
    assert_eq!(out.ack, ["a1", "d1"]);
    assert_eq!(out.status.last_execution.as_ref().unwrap().id, "d1");
    assert!(out.status.drift.as_ref().unwrap().detected);
    // Decided on the status that knows both: the drift is remediated.
    let start = out.start.expect("a remediation");
    assert_eq!(start.execution.running.kind, ExecutionKind::Apply);
    assert_eq!(start.execution.running.trigger, Trigger::RemediateDrift);
}

#[test]
fn execution_ids_name_the_namespace_and_are_object_names() {
    let id = execution_id("team-a", "web", ExecutionKind::Drift, now());
    assert_eq!(id, "team-a.web.drift.1749643200");
    let other = execution_id("team-b", "web", ExecutionKind::Drift, now());
    assert_ne!(id, other);
}

#[test]
fn a_start_hands_on_the_status_this_step_writes_not_the_one_it_read() {
    let tpl: PangeaTemplate = fixture("template-immediate.yaml");
    let status = PangeaTemplateStatus::default();
    let o = observed(
        &tpl,
        &status,
        Inputs::Resolved {
            source_revision: None,
        },
    );
    let mut drift = finished(ExecutionKind::Drift, "result-drift-sg.yaml", "d1");
    let create = pangea_api::exec::InFlightCreate {
        address: "aws_s3_bucket.logs".into(),
        resource_type: "aws_s3_bucket".into(),
    };
    drift.result.in_flight_creates = vec![create.clone()];
    let done = [
        finished(ExecutionKind::Apply, "result-apply.yaml", "a1"),
        drift,
    ];
    let start = step(&o, &done, None, now()).start.expect("a remediation");
    assert_eq!(start.carried.in_flight_creates, [create]);
}
