//! The pure core driven the way the runtime drives it — decide, record the decision, start,
//! finish — over simulated time, with executor results from `fixtures/`. Each scenario asserts
//! what a user sees: executions run, status, Events, and how many status writes happened.

use std::{collections::VecDeque, time::Duration};

use jiff::{SignedDuration, Timestamp};
use pangea_api::{
    PangeaTemplate, PangeaTemplateStatus,
    common::{Severity, condition},
    exec::{ExecutionKind, ExecutionResult},
};
use pangea_operator::{
    conditions::{find, is_true},
    decide::{BlockReason, Observed, RunningExecution, Step, Trigger, decide},
    schedule::jitter_for,
    status::{self, Emit, content_changed},
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn template(name: &str) -> PangeaTemplate {
    serde_yaml::from_str(&fixture(name)).unwrap()
}

fn result(name: &str) -> ExecutionResult {
    serde_yaml::from_str(&fixture(name)).unwrap()
}

/// One template under a simulated runtime. The executor is a queue of fixture results;
/// running out of them fails the test (an execution nobody expected).
struct Sim {
    template: PangeaTemplate,
    status: PangeaTemplateStatus,
    now: Timestamp,
    paused: bool,
    annotation: Option<String>,
    running: Option<(RunningExecution, i64)>,
    results: VecDeque<ExecutionResult>,
    /// Answers for any execution of a kind when `results` is empty.
    always: Vec<ExecutionResult>,
    executed: Vec<(ExecutionKind, Trigger, Option<String>)>,
    events: Vec<Emit>,
    writes: usize,
    counter: u32,
}

impl Sim {
    fn new(fixture: &str) -> Self {
        Self {
            template: template(fixture),
            status: PangeaTemplateStatus::default(),
            now: "2025-06-11T12:00:00Z".parse().unwrap(),
            paused: false,
            annotation: None,
            running: None,
            results: VecDeque::new(),
            always: Vec::new(),
            executed: Vec::new(),
            events: Vec::new(),
            writes: 0,
            counter: 0,
        }
    }

    fn expect(&mut self, fixtures: &[&str]) {
        self.results
            .extend(fixtures.iter().map(|name| result(name)));
    }

    fn always(&mut self, fixture: &str) {
        self.always.push(result(fixture));
    }

    fn expect_result(&mut self, result: ExecutionResult) {
        self.results.push_back(result);
    }

    fn generation(&self) -> i64 {
        self.template.metadata.generation.unwrap()
    }

    fn jitter(&self) -> Duration {
        let uid = self.template.metadata.uid.as_deref().unwrap();
        jitter_for(uid, self.template.spec.drift_detection.interval.into())
    }

    fn write(&mut self, new: PangeaTemplateStatus) {
        if content_changed(&self.status, &new) {
            self.writes += 1;
            // What the API server stores and returns.
            self.status = serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        }
    }

    /// One reconcile: decide, record, and run an execution to completion (20s).
    fn reconcile(&mut self) -> Step {
        let running = self.running.as_ref().map(|(r, _)| r.clone());
        let step = decide(&Observed {
            spec: &self.template.spec,
            generation: self.generation(),
            status: &self.status,
            paused: self.paused,
            approved_by_annotation: self.annotation.as_deref(),
            running: running.as_ref(),
            jitter: self.jitter(),
            now: self.now,
            source_revision: None,
        });
        let (decided, emits) = status::on_decided(&self.status, &step, self.generation(), self.now);
        self.events.extend(emits);
        self.write(decided);
        if let Step::Execute {
            kind,
            trigger,
            approved_plan_id,
        } = &step
        {
            self.start(*kind, *trigger, approved_plan_id.clone());
            self.finish();
        }
        step
    }

    fn start(&mut self, kind: ExecutionKind, trigger: Trigger, approved: Option<String>) {
        self.counter += 1;
        let running = RunningExecution {
            id: format!("x{}", self.counter),
            kind,
            trigger,
            started: self.now,
        };
        self.executed.push((kind, trigger, approved));
        let started = status::on_started(&self.status, &running, self.generation(), self.now);
        self.write(started);
        self.running = Some((running, self.generation()));
    }

    fn finish(&mut self) {
        let (running, generation) = self.running.take().unwrap();
        self.now += SignedDuration::from_secs(20);
        let fallback = || self.always.iter().find(|r| r.kind == running.kind).cloned();
        let mut result = self
            .results
            .pop_front()
            .or_else(fallback)
            .unwrap_or_else(|| {
                panic!(
                    "unexpected {:?} ({:?}) at {}",
                    running.kind, running.trigger, self.now
                )
            });
        assert_eq!(
            result.kind, running.kind,
            "the next result answers another kind"
        );
        result.id = running.id.clone();
        let (finished, emits) = status::on_finished(
            &self.status,
            &self.template.spec,
            generation,
            &result,
            running.trigger,
            self.jitter(),
            self.now,
        );
        self.events.extend(emits);
        self.write(finished);
    }

    /// Reconciles whenever the last step asked to, until `span` has passed.
    fn run_for(&mut self, span: Duration) {
        self.run_until(self.now + SignedDuration::try_from(span).unwrap());
    }

    /// Reconciles whenever the last step asked to, until `end`.
    fn run_until(&mut self, end: Timestamp) {
        while self.now < end {
            let wait = match self.reconcile() {
                Step::Execute { .. } => continue,
                Step::Idle { requeue_after } | Step::Blocked { requeue_after, .. } => requeue_after,
                Step::AwaitExecution { requeue_after } => Some(requeue_after),
            };
            let Some(wait) = wait else { break };
            let next = self.now + SignedDuration::try_from(wait).unwrap();
            self.now = next.min(end);
        }
    }

    fn kinds(&self) -> Vec<(ExecutionKind, Trigger)> {
        self.executed.iter().map(|(k, t, _)| (*k, *t)).collect()
    }

    fn event_reasons(&self) -> Vec<&'static str> {
        self.events.iter().map(|e| e.reason).collect()
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let c = find(&self.status.conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
        (c.status.clone(), c.reason.clone())
    }
}

fn true_(reason: &str) -> (String, String) {
    ("True".into(), reason.into())
}

fn false_(reason: &str) -> (String, String) {
    ("False".into(), reason.into())
}

#[test]
fn create_detect_drift_and_remediate_immediately() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.reconcile(); // apply
    sim.reconcile(); // first drift check right after
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.status.resources.as_ref().unwrap().total, 2);
    assert!(!sim.status.drift.as_ref().unwrap().detected);

    // Someone opens the security group; the next check finds it, the apply reverts it.
    sim.expect(&[
        "result-drift-sg.yaml",
        "result-apply.yaml",
        "result-drift-none.yaml",
    ]);
    sim.run_for(Duration::from_secs(5 * 60));
    assert_eq!(
        sim.kinds(),
        [
            (ExecutionKind::Apply, Trigger::SpecChanged),
            (ExecutionKind::Drift, Trigger::DriftCheckDue),
            (ExecutionKind::Drift, Trigger::DriftCheckDue),
            (ExecutionKind::Apply, Trigger::RemediateDrift),
            (ExecutionKind::Drift, Trigger::DriftCheckDue),
        ]
    );
    assert_eq!(
        sim.event_reasons(),
        [
            "PlanApplied",
            "DriftDetected",
            "PlanApplied",
            "DriftRemediated"
        ]
    );
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.condition(condition::DRIFTED), false_("Remediated"));
    let history = &sim.status.drift.as_ref().unwrap().history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].severity, Severity::Critical);
    assert_eq!(history[0].resolution.as_deref(), Some("remediated"));
}

#[test]
fn a_refused_remediation_is_not_retried_in_a_loop() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&[
        "result-apply.yaml",
        "result-drift-sg.yaml",
        "result-refused-destroy.yaml",
    ]);
    sim.reconcile();
    sim.reconcile();
    sim.reconcile();
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("DestroyNotAllowed")
    );

    // Two hours: the drift stays, checks go on every 2 minutes and periodic plans every 5
    // (they show the delete), and no apply is attempted again.
    sim.always("result-drift-sg.yaml");
    sim.always("result-plan-destroy.yaml");
    sim.run_for(Duration::from_secs(2 * 3600));
    let count = |kind| sim.kinds().iter().filter(|(k, _)| *k == kind).count();
    assert_eq!(
        count(ExecutionKind::Apply),
        2,
        "the create and the refused remediation"
    );
    // A check cycle is 2m + jitter (up to 12s) + the 20s a simulated execution takes.
    assert!(
        (45..=52).contains(&count(ExecutionKind::Drift)),
        "{}",
        count(ExecutionKind::Drift)
    );
    assert!(
        (20..=24).contains(&count(ExecutionKind::Plan)),
        "{}",
        count(ExecutionKind::Plan)
    );
    let blocked_events = sim
        .event_reasons()
        .iter()
        .filter(|r| **r == "RemediationBlocked")
        .count();
    assert_eq!(blocked_events, 1);
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("DestroyNotAllowed")
    );
    assert!(sim.status.drift.as_ref().unwrap().detected);

    // Allowing destroys is a spec change: it is applied.
    sim.template.spec.safety.allow_destroy = true;
    sim.template.metadata.generation = Some(2);
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Apply, Trigger::SpecChanged)
    );
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        false_("Applied")
    );
    assert_eq!(sim.condition(condition::DRIFTED), false_("Remediated"));
}

#[test]
fn manual_approval_flow() {
    let mut sim = Sim::new("template-manual.yaml");
    // The first drift check follows the first successful reconcile, even a plan: state
    // may exist already (an adopted template).
    sim.expect(&["result-plan-pending.yaml", "result-drift-none.yaml"]);
    sim.reconcile();
    sim.reconcile();
    let step = sim.reconcile();
    assert!(
        matches!(
            step,
            Step::Blocked {
                reason: BlockReason::AwaitingApproval,
                ..
            }
        ),
        "{step:?}"
    );
    assert_eq!(sim.condition(condition::READY), false_("PlanPending"));
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("AwaitingApproval")
    );
    assert_eq!(sim.event_reasons(), ["PlanPending", "RemediationBlocked"]);

    sim.annotation = Some("plan-a".into());
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.executed.last().unwrap(),
        &(
            ExecutionKind::Apply,
            Trigger::Approved,
            Some("plan-a".into())
        )
    );
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        false_("Applied")
    );
    assert!(!sim.status.plan.as_ref().unwrap().pending);
    // The approval annotation stays, but there is nothing left to approve.
    assert!(matches!(sim.reconcile(), Step::Idle { .. }));
}

#[test]
fn a_stale_approval_publishes_the_current_plan() {
    let mut sim = Sim::new("template-manual.yaml");
    sim.expect(&["result-plan-pending.yaml", "result-drift-none.yaml"]);
    sim.reconcile();
    sim.reconcile();
    sim.annotation = Some("plan-a".into());
    // The executor re-plans, finds plan-b and refuses; the operator plans again to show it.
    let mut plan_b = result("result-plan-pending.yaml");
    plan_b.plan.as_mut().unwrap().id = "plan-b".into();
    sim.expect(&["result-refused-stale.yaml"]);
    sim.expect_result(plan_b);
    sim.reconcile();
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("StaleApproval")
    );
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Plan, Trigger::StaleApproval)
    );
    assert_eq!(
        sim.status.plan.as_ref().unwrap().id.as_deref(),
        Some("plan-b")
    );
    match sim.reconcile() {
        Step::Blocked {
            reason: BlockReason::StaleApproval,
            message,
            ..
        } => assert!(message.contains("current plan is plan-b"), "{message}"),
        other => panic!("{other:?}"),
    }
    sim.annotation = Some("plan-b".into());
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.executed.last().unwrap(),
        &(
            ExecutionKind::Apply,
            Trigger::Approved,
            Some("plan-b".into())
        )
    );
}

#[test]
fn idle_templates_are_not_written() {
    let mut fleet: Vec<Sim> = (0..20)
        .map(|i| {
            let mut sim = Sim::new("template-immediate.yaml");
            sim.template.metadata.uid = Some(format!("uid-{i}"));
            sim.template.spec.drift_detection.interval = Duration::from_secs(600).into();
            sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
            sim.reconcile();
            sim.reconcile();
            sim.writes = 0;
            sim
        })
        .collect();
    // Three minutes of reconciles every 10 seconds (watch events, resyncs): nothing is due.
    for _ in 0..18 {
        for sim in &mut fleet {
            sim.now += SignedDuration::from_secs(10);
            assert!(matches!(sim.reconcile(), Step::Idle { .. }));
        }
    }
    assert_eq!(fleet.iter().map(|s| s.writes).sum::<usize>(), 0);
}

#[test]
fn a_restart_rechecks_nothing_that_is_not_due() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.reconcile();
    sim.reconcile();
    // The operator restarts a minute later: only the persisted status is known.
    sim.now += SignedDuration::from_secs(60);
    let step = sim.reconcile();
    let Step::Idle {
        requeue_after: Some(wait),
    } = step
    else {
        panic!("{step:?}")
    };
    assert!(wait <= Duration::from_secs(60 + 12), "{wait:?}");
    assert!(wait >= Duration::from_secs(60), "{wait:?}");
}

#[test]
fn an_apply_killed_with_the_operator_is_run_again() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.start(ExecutionKind::Apply, Trigger::SpecChanged, None);
    // kill -9: the execution is gone, the status still says Running.
    sim.running = None;
    sim.now += SignedDuration::from_secs(300);
    sim.expect(&["result-apply.yaml"]);
    // The status already shows generation 1 as not yet evaluated, so it is a spec change.
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Apply, Trigger::SpecChanged)
    );
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.condition(condition::RECONCILING).0, "False");

    // Killed during a later drift check: it is retried at once.
    sim.start(ExecutionKind::Drift, Trigger::DriftCheckDue, None);
    sim.running = None;
    sim.expect(&["result-drift-none.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Drift, Trigger::Retry)
    );
}

#[test]
fn transient_failures_back_off_exponentially() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    sim.expect(&["result-failed-network.yaml"; 4]);
    let mut waits = Vec::new();
    for _ in 0..4 {
        assert!(matches!(
            sim.reconcile(),
            Step::Execute {
                kind: ExecutionKind::Drift,
                ..
            }
        ));
        let Step::Idle {
            requeue_after: Some(wait),
        } = sim.reconcile()
        else {
            panic!("expected a backoff")
        };
        waits.push(wait.as_secs());
        sim.now += SignedDuration::try_from(wait).unwrap();
    }
    assert_eq!(waits, [10, 20, 40, 80]);
    assert_eq!(
        sim.status
            .last_execution
            .as_ref()
            .unwrap()
            .consecutive_failures,
        4
    );
    assert_eq!(
        sim.event_reasons()
            .iter()
            .filter(|r| **r == "ExecutionFailed")
            .count(),
        4
    );
    assert!(!is_true(&sim.status.conditions, condition::STALLED));
}

#[test]
fn scheduled_remediation_waits_for_the_window() {
    let mut sim = Sim::new("template-scheduled.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-sg.yaml"]);
    sim.reconcile();
    sim.reconcile();
    let step = sim.reconcile();
    let Step::Blocked {
        reason: BlockReason::OutsideMaintenanceWindow,
        requeue_after: Some(wait),
        message,
    } = step
    else {
        panic!("{step:?}")
    };
    // Wednesday 12:00:40Z; the drift check (30m) comes first, the window is Saturday.
    assert!(wait <= Duration::from_secs(31 * 60), "{wait:?}");
    assert!(message.contains("2025-06-14T00:00:00Z"), "{message}");
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("OutsideMaintenanceWindow")
    );

    // Until Saturday 02:00 Berlin (00:00Z) only drift checks run.
    sim.always("result-drift-sg.yaml");
    let window: Timestamp = "2025-06-14T00:00:00Z".parse().unwrap();
    sim.run_until(window);
    assert!(
        !sim.kinds()
            .contains(&(ExecutionKind::Apply, Trigger::RemediateDrift)),
        "no apply before the window"
    );
    let checks = sim
        .kinds()
        .iter()
        .filter(|(k, _)| *k == ExecutionKind::Drift)
        .count();
    // A check cycle is 30m + jitter + the 20s a simulated execution takes.
    assert!(
        (110..=120).contains(&checks),
        "{checks} drift checks in 60 hours"
    );
    // The last check may have started just before the window and ended inside it.
    assert!(sim.now >= window && sim.now < window + SignedDuration::from_secs(60));
    // The window opens: the remediation applies.
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Apply, Trigger::RemediateDrift)
    );
    assert_eq!(sim.condition(condition::DRIFTED), false_("Remediated"));
}
