//! The reconcile core driven the way production drives it — `core::step` then
//! `core::carry_out` with effects of the simulation's own (a backend that holds results until
//! they are acknowledged, a status store, an Event list) — over simulated time, with
//! executor results from `fixtures/`. Each scenario asserts what a user sees: executions
//! run, status, Events, and how many status writes happened.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use futures::{FutureExt, executor::block_on, future::BoxFuture};
use jiff::{SignedDuration, Timestamp};
use pangea_api::{
    PangeaTemplate, PangeaTemplateStatus,
    common::{Severity, condition},
    exec::{ExecutionKind, ExecutionResult},
    template::DeletionPolicy,
};
use pangea_operator::{
    conditions::{find, is_true},
    core::{
        Effects, Execution, Finished, Inputs, Next, Observed, Start, StartError, carry_out, step,
    },
    decide::{RunningExecution, Trigger},
    schedule::jitter_for,
    status::{Emit, content_changed},
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

/// What the effects change: the stored status, the backend's books, Events, writes.
#[derive(Default)]
struct World {
    status: PangeaTemplateStatus,
    running: Option<Execution>,
    finished: VecDeque<Finished>,
    executed: Vec<(ExecutionKind, Trigger, Option<String>)>,
    events: Vec<Emit>,
    writes: usize,
    /// The next this many status writes fail (an apiserver error).
    failing_writes: usize,
    /// The next this many starts are refused (budget full).
    refused_starts: usize,
    /// The running execution does not finish (yet).
    hold_running: bool,
}

/// One template under a simulated runtime. The executor is a queue of fixture results;
/// running out of them fails the test (an execution nobody expected).
struct Sim {
    template: PangeaTemplate,
    now: Timestamp,
    paused: bool,
    annotation: Option<String>,
    deleting: Option<DeletionPolicy>,
    invalid: Option<String>,
    results: VecDeque<ExecutionResult>,
    /// Answers for any execution of a kind when `results` is empty.
    always: Vec<ExecutionResult>,
    world: Mutex<World>,
}

impl Effects for Sim {
    type Error = String;

    fn start<'a>(&'a self, start: &'a Start) -> BoxFuture<'a, Result<(), StartError>> {
        let mut w = self.w();
        let outcome = if w.refused_starts > 0 {
            w.refused_starts -= 1;
            Err(StartError("budget full".into()))
        } else {
            assert!(w.running.is_none(), "two executions at once");
            let r = &start.execution.running;
            w.executed
                .push((r.kind, r.trigger, start.approved_plan_id.clone()));
            w.running = Some(start.execution.clone());
            Ok(())
        };
        async move { outcome }.boxed()
    }

    fn write_status<'a>(
        &'a self,
        status: &'a PangeaTemplateStatus,
    ) -> BoxFuture<'a, Result<(), String>> {
        let mut w = self.w();
        let outcome = if w.failing_writes > 0 {
            w.failing_writes -= 1;
            Err("the apiserver is unavailable".to_owned())
        } else {
            if content_changed(&w.status, status) {
                w.writes += 1;
                // What the API server stores and returns.
                w.status = serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap();
            }
            Ok(())
        };
        async move { outcome }.boxed()
    }

    fn ack<'a>(&'a self, execution_id: &'a str) -> BoxFuture<'a, ()> {
        self.w().finished.retain(|f| f.result.id != execution_id);
        async {}.boxed()
    }

    fn publish<'a>(&'a self, emits: &'a [Emit]) -> BoxFuture<'a, ()> {
        self.w().events.extend(emits.iter().cloned());
        async {}.boxed()
    }
}

impl Sim {
    fn new(fixture: &str) -> Self {
        Self {
            template: template(fixture),
            now: "2025-06-11T12:00:00Z".parse().unwrap(),
            paused: false,
            annotation: None,
            deleting: None,
            invalid: None,
            results: VecDeque::new(),
            always: Vec::new(),
            world: Mutex::default(),
        }
    }

    fn w(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap()
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

    fn status(&self) -> PangeaTemplateStatus {
        self.w().status.clone()
    }

    /// One reconcile exactly as production runs it: observe the backend, `step`, then
    /// `carry_out`. An execution started by an earlier reconcile has finished by now (it
    /// takes 20 simulated seconds) and its result waits in the backend until acknowledged.
    /// Returns when to look again, or the write error.
    fn try_reconcile(&mut self) -> Result<Next, String> {
        let finishes = {
            let w = self.w();
            w.running.is_some() && !w.hold_running
        };
        if finishes {
            self.finish();
        }
        let (status, running, finished) = {
            let w = self.w();
            (
                w.status.clone(),
                w.running.clone(),
                Vec::from(w.finished.clone()),
            )
        };
        let name = self.template.metadata.name.clone().unwrap();
        let namespace = self.template.metadata.namespace.clone().unwrap();
        let observed = Observed {
            namespace: &namespace,
            name: &name,
            spec: &self.template.spec,
            generation: self.generation(),
            status: &status,
            paused: self.paused,
            approved_by_annotation: self.annotation.as_deref(),
            forget_orphans: None,
            jitter: self.jitter(),
            running: running.as_ref(),
            inputs: match &self.invalid {
                Some(message) => Inputs::Invalid(message),
                None => Inputs::Resolved {
                    source_revision: None,
                },
            },
        };
        let outcome = step(&observed, &finished, self.deleting, self.now);
        block_on(carry_out(outcome, &*self, self.now))
    }

    fn reconcile(&mut self) -> Next {
        self.try_reconcile().expect("status write")
    }

    /// Reconciles until nothing runs and no result waits to be recorded: the chain of
    /// reconciles that finishing executions trigger.
    fn settle(&mut self) -> Next {
        loop {
            let next = self.reconcile();
            let w = self.w();
            if w.running.is_none() && w.finished.is_empty() {
                return next;
            }
        }
    }

    /// The running execution ends after 20 seconds with the next fixture result.
    fn finish(&mut self) {
        let execution = self.w().running.take().unwrap();
        let running = &execution.running;
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
        self.w().finished.push_back(Finished { execution, result });
    }

    /// An execution the backend runs that the status does not show (the write recording
    /// its start failed); it keeps running until `hold_running` is lifted.
    fn run_unrecorded(&mut self, kind: ExecutionKind, trigger: Trigger) {
        let execution = Execution {
            running: RunningExecution {
                id: format!("team-a.web.{}.{}", kind.as_str(), self.now.as_second()),
                kind,
                trigger,
                started: self.now,
            },
            generation: self.generation(),
        };
        let mut w = self.w();
        w.executed.push((kind, trigger, None));
        w.running = Some(execution);
        w.hold_running = true;
    }

    /// Reconciles whenever the last reconcile asked to, until `span` has passed.
    fn run_for(&mut self, span: Duration) {
        self.run_until(self.now + SignedDuration::try_from(span).unwrap());
    }

    /// Reconciles whenever the last reconcile asked to, until `end`.
    fn run_until(&mut self, end: Timestamp) {
        while self.now < end {
            let Next::Requeue(wait) = self.settle() else {
                break;
            };
            let next = self.now + SignedDuration::try_from(wait).unwrap();
            self.now = next.min(end);
        }
    }

    fn executed(&self) -> Vec<(ExecutionKind, Trigger, Option<String>)> {
        self.w().executed.clone()
    }

    fn kinds(&self) -> Vec<(ExecutionKind, Trigger)> {
        self.w().executed.iter().map(|(k, t, _)| (*k, *t)).collect()
    }

    fn event_reasons(&self) -> Vec<&'static str> {
        self.w().events.iter().map(|e| e.reason).collect()
    }

    fn writes(&self) -> usize {
        self.w().writes
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let status = self.status();
        let c = find(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
        (c.status.clone(), c.reason.clone())
    }

    fn condition_message(&self, type_: &str) -> String {
        let status = self.status();
        find(&status.conditions, type_)
            .map(|c| c.message.clone())
            .unwrap_or_default()
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
    sim.settle(); // the apply, then the first drift check right after
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.status().resources.as_ref().unwrap().total, 2);
    assert!(!sim.status().drift.as_ref().unwrap().detected);

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
    let history = &sim.status().drift.unwrap().history;
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
    sim.settle();
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
    assert!(sim.status().drift.unwrap().detected);

    // Allowing destroys is a spec change: it is applied.
    sim.template.spec.safety.allow_destroy = true;
    sim.template.metadata.generation = Some(2);
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Apply, Trigger::SpecChanged)
    );
    sim.w().hold_running = false;
    sim.expect(&["result-drift-none.yaml"]);
    sim.reconcile(); // records the apply, starts the check that follows it
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
    let next = sim.settle();
    assert!(matches!(next, Next::Requeue(_)), "{next:?}");
    assert_eq!(sim.condition(condition::READY), false_("PlanPending"));
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("AwaitingApproval")
    );
    assert_eq!(sim.event_reasons(), ["PlanPending", "RemediationBlocked"]);

    sim.annotation = Some("plan-a".into());
    sim.expect(&["result-apply.yaml"]);
    sim.settle();
    assert_eq!(
        sim.executed().last().unwrap(),
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
    assert!(!sim.status().plan.unwrap().pending);
    // The approval annotation stays, but there is nothing left to approve.
    let runs = sim.executed().len();
    sim.settle();
    assert_eq!(sim.executed().len(), runs);
}

#[test]
fn a_stale_approval_publishes_the_current_plan() {
    let mut sim = Sim::new("template-manual.yaml");
    sim.expect(&["result-plan-pending.yaml", "result-drift-none.yaml"]);
    sim.settle();
    sim.annotation = Some("plan-a".into());
    // The executor re-plans, finds plan-b and refuses; the operator plans again to show it.
    let mut plan_b = result("result-plan-pending.yaml");
    plan_b.plan.as_mut().unwrap().id = "plan-b".into();
    sim.expect(&["result-refused-stale.yaml"]);
    sim.expect_result(plan_b);
    sim.settle();
    assert_eq!(
        sim.kinds()[2..],
        [
            (ExecutionKind::Apply, Trigger::Approved),
            (ExecutionKind::Plan, Trigger::StaleApproval),
        ]
    );
    assert_eq!(sim.status().plan.unwrap().id.as_deref(), Some("plan-b"));
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("StaleApproval")
    );
    let message = sim.condition_message(condition::REMEDIATION_BLOCKED);
    assert!(message.contains("current plan is plan-b"), "{message}");
    sim.annotation = Some("plan-b".into());
    sim.expect(&["result-apply.yaml"]);
    sim.settle();
    assert_eq!(
        sim.executed().last().unwrap(),
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
            sim.settle();
            sim.w().writes = 0;
            sim
        })
        .collect();
    // Three minutes of reconciles every 10 seconds (watch events, resyncs): nothing is due.
    for _ in 0..18 {
        for sim in &mut fleet {
            sim.now += SignedDuration::from_secs(10);
            assert!(matches!(sim.reconcile(), Next::Requeue(_)));
        }
    }
    assert_eq!(fleet.iter().map(Sim::writes).sum::<usize>(), 0);
    assert!(fleet.iter().all(|sim| sim.executed().len() == 2));
}

#[test]
fn a_restart_rechecks_nothing_that_is_not_due() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    // The operator restarts a minute later: only the persisted status is known.
    sim.now += SignedDuration::from_secs(60);
    let Next::Requeue(wait) = sim.reconcile() else {
        panic!("expected a requeue")
    };
    assert!(wait <= Duration::from_secs(60 + 12), "{wait:?}");
    assert!(wait >= Duration::from_secs(60), "{wait:?}");
    assert_eq!(sim.executed().len(), 2);
}

#[test]
fn an_apply_killed_with_the_operator_is_run_again() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.reconcile(); // the apply starts and is recorded as running
    // kill -9 with an in-process backend: the execution is gone, the status says Running.
    sim.w().running = None;
    sim.now += SignedDuration::from_secs(300);
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    // The status already shows generation 1 as not yet evaluated, so it is a spec change.
    sim.settle();
    assert_eq!(
        sim.kinds()[..2],
        [
            (ExecutionKind::Apply, Trigger::SpecChanged),
            (ExecutionKind::Apply, Trigger::SpecChanged),
        ]
    );
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.condition(condition::RECONCILING).0, "False");

    // Killed during a later drift check: it is retried at once.
    sim.now += SignedDuration::from_secs(200);
    sim.reconcile();
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Drift, Trigger::DriftCheckDue)
    );
    sim.w().running = None;
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
    sim.expect(&["result-failed-network.yaml"; 4]);
    sim.reconcile(); // the apply
    sim.reconcile(); // recorded; the first drift check starts
    let mut waits = Vec::new();
    for _ in 0..4 {
        assert_eq!(
            sim.kinds().last().unwrap().0,
            ExecutionKind::Drift,
            "a drift check runs"
        );
        let Next::Requeue(wait) = sim.reconcile() else {
            panic!("expected a backoff")
        };
        waits.push(wait.as_secs());
        sim.now += SignedDuration::try_from(wait).unwrap();
        if waits.len() < 4 {
            sim.reconcile(); // the retry starts
        }
    }
    assert_eq!(waits, [10, 20, 40, 80]);
    assert_eq!(sim.status().last_execution.unwrap().consecutive_failures, 4);
    assert_eq!(
        sim.event_reasons()
            .iter()
            .filter(|r| **r == "ExecutionFailed")
            .count(),
        4
    );
    assert!(!is_true(&sim.status().conditions, condition::STALLED));
}

#[test]
fn scheduled_remediation_waits_for_the_window() {
    let mut sim = Sim::new("template-scheduled.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-sg.yaml"]);
    let Next::Requeue(wait) = sim.settle() else {
        panic!("expected a requeue")
    };
    // Wednesday 12:00:40Z; the drift check (30m) comes first, the window is Saturday.
    assert!(wait <= Duration::from_secs(31 * 60), "{wait:?}");
    let message = sim.condition_message(condition::REMEDIATION_BLOCKED);
    assert!(message.contains("2025-06-14T00:00:00Z"), "{message}");
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("OutsideMaintenanceWindow")
    );

    // Until Saturday 02:00 Berlin (00:00Z) only drift checks run.
    sim.always("result-drift-sg.yaml");
    let window: Timestamp = "2025-06-14T00:00:00Z".parse().unwrap();
    sim.run_until(window - SignedDuration::from_secs(60));
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
    // The window opens: the remediation applies.
    sim.always.push(result("result-apply.yaml"));
    let remediation = (ExecutionKind::Apply, Trigger::RemediateDrift);
    while !sim.kinds().contains(&remediation) {
        let Next::Requeue(wait) = sim.reconcile() else {
            panic!("expected a requeue")
        };
        // A finishing execution wakes the reconcile (after 20s here) before its deadline.
        sim.now += SignedDuration::try_from(wait.min(Duration::from_secs(20))).unwrap();
        assert!(
            sim.now < window + SignedDuration::from_secs(120),
            "no remediation: {:?} {:?} at {}",
            sim.status().conditions,
            &sim.kinds()[sim.kinds().len() - 3..],
            sim.now
        );
    }
    assert!(sim.now >= window);
    sim.w().hold_running = false;
    sim.reconcile();
    assert_eq!(sim.condition(condition::DRIFTED), false_("Remediated"));
}

// ---- The reconcile core cannot lose, repeat or double-record a result ------------------

#[test]
fn a_result_survives_a_failed_status_write() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml"]);
    sim.reconcile(); // the apply starts
    sim.finish();
    // Its result comes back, but the apiserver refuses the write that records it.
    sim.w().failing_writes = 1;
    sim.w().hold_running = true;
    assert!(sim.try_reconcile().is_err());
    assert_eq!(sim.w().finished.len(), 1, "the result is still offered");
    assert_eq!(
        sim.condition(condition::RECONCILING),
        true_("Applying"),
        "nothing was written"
    );
    // The drift check `step` decided after the apply started (start comes before the
    // write); no second apply.
    assert_eq!(
        sim.kinds(),
        [
            (ExecutionKind::Apply, Trigger::SpecChanged),
            (ExecutionKind::Drift, Trigger::DriftCheckDue),
        ]
    );
    // The next reconcile records the apply, then the check.
    sim.w().hold_running = false;
    sim.expect(&["result-drift-none.yaml"]);
    sim.settle();
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(
        sim.kinds(),
        [
            (ExecutionKind::Apply, Trigger::SpecChanged),
            (ExecutionKind::Drift, Trigger::DriftCheckDue),
        ]
    );
    assert_eq!(
        sim.event_reasons(),
        ["PlanApplied"],
        "published once, after the write that succeeded"
    );
    assert!(sim.w().finished.is_empty());
}

#[test]
fn an_execution_whose_start_was_not_written_is_recorded_not_repeated() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.run_unrecorded(ExecutionKind::Apply, Trigger::SpecChanged);
    let next = sim.reconcile();
    assert!(matches!(next, Next::Requeue(_)), "{next:?}");
    assert_eq!(sim.condition(condition::RECONCILING), true_("Applying"));
    assert_eq!(sim.kinds().len(), 1, "no second apply while one runs");
    sim.w().hold_running = false;
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
    assert_eq!(sim.kinds().len(), 2);
}

#[test]
fn a_refused_start_is_not_recorded_as_running() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.w().refused_starts = 1;
    assert_eq!(
        sim.reconcile(),
        Next::Requeue(pangea_operator::core::START_RETRY)
    );
    assert!(sim.status().last_execution.is_none());
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    assert_eq!(sim.condition(condition::READY), true_("Applied"));
}

#[test]
fn a_missing_reference_stalls_but_a_finished_result_is_still_recorded() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.reconcile(); // the apply starts
    sim.invalid = Some("Secret team-a/db-password not found".into());
    sim.expect(&["result-apply.yaml"]);
    assert_eq!(sim.reconcile(), Next::Requeue(Duration::from_secs(60)));
    assert_eq!(sim.condition(condition::STALLED), true_("InvalidSpec"));
    assert_eq!(sim.condition(condition::READY), false_("InvalidSpec"));
    assert_eq!(
        sim.status().resources.unwrap().total,
        2,
        "the apply is recorded"
    );
    assert!(sim.w().finished.is_empty());
    // Looking again while it is missing: no new Event, no write, nothing started.
    let writes = sim.writes();
    sim.now += SignedDuration::from_secs(60);
    sim.reconcile();
    assert_eq!(sim.writes(), writes);
    assert_eq!(sim.event_reasons(), ["PlanApplied", "InvalidSpec"]);
    // The Secret appears: the stall lifts and the schedule resumes.
    sim.invalid = None;
    sim.expect(&["result-drift-none.yaml"]);
    sim.settle();
    assert_eq!(sim.condition(condition::STALLED).0, "False");
    assert_eq!(sim.kinds().last().unwrap().0, ExecutionKind::Drift);
}

/// A fixture result, as the result of a destroy.
fn destroy_result(name: &str) -> ExecutionResult {
    ExecutionResult {
        kind: ExecutionKind::Destroy,
        ..result(name)
    }
}

/// A settled template, now being deleted with `policy`.
fn deleted(mut sim: Sim, policy: DeletionPolicy) -> Sim {
    sim.template.spec.safety.deletion_policy = policy;
    sim.deleting = Some(policy);
    sim
}

#[test]
fn orphan_deletion_lets_go_at_once() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    let mut sim = deleted(sim, DeletionPolicy::Orphan);
    assert_eq!(sim.reconcile(), Next::Finalize);
    assert_eq!(
        sim.executed().len(),
        2,
        "nothing runs for an orphaned template"
    );
}

#[test]
fn destroy_deletion_runs_a_destroy_and_records_it() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    let mut sim = deleted(sim, DeletionPolicy::Destroy);
    let destroyed = destroy_result("result-apply.yaml");
    sim.expect_result(destroyed);
    assert!(matches!(sim.reconcile(), Next::Requeue(_)));
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Destroy, Trigger::Deletion)
    );
    assert_eq!(sim.condition(condition::RECONCILING), true_("Destroying"));
    assert_eq!(sim.reconcile(), Next::Finalize);
    assert_eq!(sim.condition(condition::READY), false_("Destroyed"));
    assert_eq!(sim.status().resources.unwrap().total, 0);
}

#[test]
fn a_refused_destroy_blocks_deletion_without_a_loop() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    let mut sim = deleted(sim, DeletionPolicy::Destroy);
    let refused = destroy_result("result-refused-destroy.yaml");
    sim.expect_result(refused);
    sim.reconcile(); // the destroy starts
    assert_eq!(sim.reconcile(), Next::AwaitChange, "waits for a person");
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("DeletionBlocked")
    );
    let message = sim.condition_message(condition::REMEDIATION_BLOCKED);
    assert!(message.contains("DestroyNotAllowed"), "{message}");
    // An hour of resyncs starts no destroy again and publishes no more Events.
    for _ in 0..60 {
        sim.now += SignedDuration::from_secs(60);
        assert_eq!(sim.reconcile(), Next::AwaitChange);
    }
    let destroys = |sim: &Sim| {
        sim.kinds()
            .iter()
            .filter(|(k, _)| *k == ExecutionKind::Destroy)
            .count()
    };
    assert_eq!(destroys(&sim), 1);
    let blocked = |sim: &Sim| {
        sim.event_reasons()
            .iter()
            .filter(|r| **r == "RemediationBlocked")
            .count()
    };
    assert_eq!(blocked(&sim), 1);
    // The person allows it: the destroy runs and deletion completes.
    sim.template.spec.safety.allow_destroy = true;
    sim.template.metadata.generation = Some(2);
    let destroyed = destroy_result("result-apply.yaml");
    sim.expect_result(destroyed);
    sim.reconcile();
    assert_eq!(sim.reconcile(), Next::Finalize);
    assert_eq!(destroys(&sim), 2);
}

#[test]
fn a_failed_destroy_is_retried_with_backoff() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.expect(&["result-apply.yaml", "result-drift-none.yaml"]);
    sim.settle();
    let mut sim = deleted(sim, DeletionPolicy::Destroy);
    let failed = destroy_result("result-failed-network.yaml");
    sim.expect_result(failed.clone());
    sim.reconcile(); // the destroy starts
    assert_eq!(sim.reconcile(), Next::Requeue(Duration::from_secs(10)));
    assert_eq!(
        sim.condition(condition::REMEDIATION_BLOCKED),
        true_("DeletionBlocked")
    );
    sim.now += SignedDuration::from_secs(10);
    sim.expect_result(failed);
    sim.reconcile(); // the retry starts
    assert_eq!(sim.reconcile(), Next::Requeue(Duration::from_secs(20)));
}

#[test]
fn deletion_waits_for_the_running_apply() {
    let mut sim = Sim::new("template-immediate.yaml");
    sim.reconcile(); // the apply starts
    sim.w().hold_running = true;
    let mut sim = deleted(sim, DeletionPolicy::Destroy);
    assert!(matches!(sim.reconcile(), Next::Requeue(_)));
    assert_eq!(sim.kinds().len(), 1, "no destroy while the apply runs");
    sim.w().hold_running = false;
    sim.expect(&["result-apply.yaml"]);
    let destroyed = destroy_result("result-apply.yaml");
    sim.expect_result(destroyed);
    sim.reconcile(); // the apply is recorded, the destroy starts
    assert_eq!(
        sim.kinds().last().unwrap(),
        &(ExecutionKind::Destroy, Trigger::Deletion)
    );
    assert_eq!(sim.reconcile(), Next::Finalize);
}
