//! Per-execution overhead of the Job execution backend against the local one (a benchmark,
//! not a test). One cluster with a node, two operators in release mode, each watching its
//! own namespace: one running executor Jobs, one running the executor in-process. Both hold
//! the same `terraform_data`-only template (no cloud calls) with drift checks and periodic
//! reconciles off, so the only executions are the applies this bench causes by changing
//! the template's input, alternating between the backends, `PANGEA_BENCH_RUNS` rounds
//! (default 7) after one warm-up apply each.
//!
//! Every span is reported as median (min-max) minus the executor's own wall time (the
//! result's `durationSeconds`, read exactly from the `pangea_execution_duration_seconds`
//! sum), so what remains is what the backend adds:
//! - spec patched -> result recorded in status: the same span for both backends (the
//!   operator's watch, reconcile and status writes included), and the ratio;
//! - the start of the execution -> recorded: from the Job's creation for the Job backend,
//!   from the `Running` status written right after the in-process start for the local one
//!   (a mark later than the start, so it can come out a few milliseconds negative);
//! - for the Job backend, where the time goes: Job -> pod -> container started -> result
//!   delivered -> pod succeeded -> Job complete -> recorded.
//!
//! Every moment is when this process's watches saw it (milliseconds; status and object
//! timestamps carry whole seconds only).
//!
//! Run: `cargo bench -p pangea-operator --bench job_overhead` (needs `scripts/bootstrap.sh`
//! and `scripts/build-images.sh`).

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{ConfigMap, Pod},
};
use kube::{
    Api, Resource,
    api::{Patch, PatchParams},
    runtime::watcher,
};
use pangea_api::{PangeaTemplate, exec::ExecutionKind, template::ExecutionPhase};
use pangea_e2e::{JobCluster, OperatorProcess, TestNamespace};
use pangea_executor::result_codec::RESULT_KEY;
use pangea_operator::backend::job::build::{EXECUTION_ID, job_name, result_name};

const TEMPLATE: &str = "bench";
/// Longest wait for one execution (a cold node starting its first pod included).
const WAIT: Duration = Duration::from_secs(300);
const SUM: &str = r#"pangea_execution_duration_seconds_sum{kind="apply"}"#;
const COUNT: &str = r#"pangea_execution_duration_seconds_count{kind="apply"}"#;

/// What the watches saw of one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mark {
    /// The bench patched the spec (or created the template).
    Patched,
    /// Its Job exists.
    JobCreated,
    /// Its pod exists.
    PodCreated,
    /// Its container runs (or already ran).
    ContainerStarted,
    /// The executor delivered its result to the result ConfigMap.
    ResultDelivered,
    /// Its pod succeeded.
    PodSucceeded,
    /// Its Job has condition `Complete`.
    JobComplete,
    /// The status shows it running.
    Running,
    /// The status records it as succeeded.
    Succeeded,
    /// The status records it as failed or timed out.
    Failed,
}

/// First sighting of each (execution id or Job name, mark), and how many watches have
/// listed once.
#[derive(Default)]
struct Sightings {
    seen: HashMap<(String, Mark), Instant>,
    synced: usize,
}

type Log = Arc<Mutex<Sightings>>;

fn lock(log: &Log) -> std::sync::MutexGuard<'_, Sightings> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The execution (or, for a result ConfigMap, the Job) an object shows, and its marks.
type Marks = Option<(String, Vec<Mark>)>;

/// Records the first sighting of each mark `marks` finds in the objects of `api`'s watch,
/// for as long as the bench runs.
fn watch<K>(api: Api<K>, log: Log, marks: fn(&K) -> Marks)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = stream.next().await {
            let at = Instant::now();
            match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                    let Some((id, found)) = marks(&obj) else {
                        continue;
                    };
                    let mut log = lock(&log);
                    for mark in found {
                        log.seen.entry((id.clone(), mark)).or_insert(at);
                    }
                }
                Ok(watcher::Event::InitDone) => lock(&log).synced += 1,
                _ => {}
            }
        }
    });
}

/// The template's last execution and its phase.
fn template_marks(t: &PangeaTemplate) -> Marks {
    let e = t.status.as_ref()?.last_execution.as_ref()?;
    let mark = match e.phase {
        ExecutionPhase::Running => Mark::Running,
        ExecutionPhase::Succeeded => Mark::Succeeded,
        ExecutionPhase::Failed | ExecutionPhase::TimedOut => Mark::Failed,
    };
    Some((e.id.clone(), vec![mark]))
}

/// The execution a Job or its pod runs (an annotation of both).
fn annotated_id<K: Resource>(obj: &K) -> Option<String> {
    let annotations = obj.meta().annotations.as_ref()?;
    annotations.get(EXECUTION_ID).cloned()
}

fn job_marks(j: &Job) -> Marks {
    let complete = j
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        });
    let mut marks = vec![Mark::JobCreated];
    marks.extend(complete.then_some(Mark::JobComplete));
    Some((annotated_id(j)?, marks))
}

fn pod_marks(p: &Pod) -> Marks {
    let status = p.status.as_ref();
    let state = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref());
    let started = state.is_some_and(|s| s.running.is_some() || s.terminated.is_some());
    let succeeded = status.and_then(|s| s.phase.as_deref()) == Some("Succeeded");
    let mut marks = vec![Mark::PodCreated];
    marks.extend(started.then_some(Mark::ContainerStarted));
    marks.extend(succeeded.then_some(Mark::PodSucceeded));
    Some((annotated_id(p)?, marks))
}

/// A result ConfigMap, by its Job's name, once the executor filled it.
fn result_marks(cm: &ConfigMap) -> Marks {
    let name = cm.metadata.name.as_deref()?;
    let job = name.strip_suffix(&result_name(""))?;
    let delivered = cm
        .binary_data
        .as_ref()
        .is_some_and(|d| d.contains_key(RESULT_KEY));
    delivered.then(|| (job.to_owned(), vec![Mark::ResultDelivered]))
}

/// One operator, its namespace, and the applies measured there.
struct Backend<'a> {
    name: &'static str,
    ns: &'a TestNamespace,
    operator: &'a OperatorProcess,
    samples: Vec<Sample>,
}

/// One apply: when each mark was seen, and the executor's own seconds.
#[derive(Debug)]
struct Sample {
    at: HashMap<Mark, Instant>,
    executor: f64,
}

impl Sample {
    /// Seconds from `from` to `to`, minus the executor's own time when `net`.
    fn span(&self, from: Mark, to: Mark, net: bool) -> Option<f64> {
        let seconds = self.at.get(&to)?.duration_since(*self.at.get(&from)?);
        Some(seconds.as_secs_f64() - if net { self.executor } else { 0.0 })
    }
}

/// The template at input `round`: each round changes the resource, so each is an apply.
fn spec(round: usize) -> serde_json::Value {
    let inline = format!(
        "template :data do\n  resource :terraform_data, :marker do\n    input \"v{round}\"\n  end\nend\n"
    );
    serde_json::json!({
        "source": {"inline": inline},
        "pangea": {"autoApprove": true},
        "reconciliation": {"mode": "event-driven"},
        "driftDetection": {"enabled": false},
    })
}

impl Backend<'_> {
    fn api(&self) -> Api<PangeaTemplate> {
        self.ns.api()
    }

    /// Sets input `round` (creating the template at round 0) and measures the apply that
    /// follows.
    async fn apply(&self, log: &Log, round: usize) -> Result<Sample> {
        let known: HashSet<String> = lock(log).seen.keys().map(|(id, _)| id.clone()).collect();
        let count = self.operator.metric(COUNT);
        let sum = self.operator.metric(SUM);
        if round == 0 {
            self.ns.create_template(TEMPLATE, spec(0)).await?;
        } else {
            let patch = serde_json::json!({"spec": spec(round)});
            self.api()
                .patch(TEMPLATE, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        let patched = Instant::now();
        let prefix = format!("{}.", self.ns.name);
        let (id, mark) = until(self.name, "the apply recorded", || {
            lock(log)
                .seen
                .keys()
                .find(|(id, mark)| {
                    id.starts_with(&prefix)
                        && !known.contains(id)
                        && matches!(mark, Mark::Succeeded | Mark::Failed)
                })
                .cloned()
        })
        .await?;
        if mark == Mark::Failed {
            bail!("{}: execution {id} failed; see its status", self.name);
        }
        // The metric is updated right after the status write that recorded the result.
        until(self.name, "the execution metric", || {
            (self.operator.metric(COUNT) > count).then_some(())
        })
        .await?;
        let job = job_name(TEMPLATE, &id, ExecutionKind::Apply);
        let mut at: HashMap<Mark, Instant> = lock(log)
            .seen
            .iter()
            .filter(|((seen, _), _)| *seen == id || *seen == job)
            .map(|((_, mark), at)| (*mark, *at))
            .collect();
        at.insert(Mark::Patched, patched);
        Ok(Sample {
            at,
            executor: self.operator.metric(SUM) - sum,
        })
    }

    /// Prints median (min–max) of each span over the samples; returns the first median.
    fn report(&self, rows: &[Row]) -> Result<f64> {
        println!("{} backend, {} applies:", self.name, self.samples.len());
        let mut first = None;
        for &(what, from, to, net) in rows {
            let spans: Option<Vec<f64>> =
                self.samples.iter().map(|s| s.span(from, to, net)).collect();
            let spans = spans.with_context(|| format!("{}: {what} not seen", self.name))?;
            let (median, min, max) = stats(spans);
            println!("  {what}: {median:.3}s ({min:.3}-{max:.3})");
            first.get_or_insert(median);
        }
        let (median, min, max) = stats(self.samples.iter().map(|s| s.executor).collect());
        println!("  the executor's own time: {median:.3}s ({min:.3}-{max:.3})");
        first.context("no rows")
    }
}

/// A span to report: label, from, to, minus the executor's own time.
type Row = (&'static str, Mark, Mark, bool);

/// Polls `found` every 20 ms (the moments themselves come from the watches) up to [`WAIT`].
async fn until<T>(who: &str, what: &str, mut found: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = found() {
            return Ok(value);
        }
        if start.elapsed() > WAIT {
            bail!("{who}: {what} not seen after {}s", WAIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Median, min and max.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

const REACTION: Row = (
    "spec patched -> recorded, minus the executor",
    Mark::Patched,
    Mark::Succeeded,
    true,
);

const JOB_ROWS: [Row; 8] = [
    REACTION,
    (
        "Job created -> recorded, minus the executor",
        Mark::JobCreated,
        Mark::Succeeded,
        true,
    ),
    (
        "  Job created -> pod created",
        Mark::JobCreated,
        Mark::PodCreated,
        false,
    ),
    (
        "  pod created -> container started",
        Mark::PodCreated,
        Mark::ContainerStarted,
        false,
    ),
    (
        "  container started -> result delivered, minus the executor",
        Mark::ContainerStarted,
        Mark::ResultDelivered,
        true,
    ),
    (
        "  result delivered -> pod succeeded",
        Mark::ResultDelivered,
        Mark::PodSucceeded,
        false,
    ),
    (
        "  pod succeeded -> Job complete",
        Mark::PodSucceeded,
        Mark::JobComplete,
        false,
    ),
    (
        "  Job complete -> recorded",
        Mark::JobComplete,
        Mark::Succeeded,
        false,
    ),
];

const LOCAL_ROWS: [Row; 2] = [
    REACTION,
    (
        "Running written -> recorded, minus the executor",
        Mark::Running,
        Mark::Succeeded,
        true,
    ),
];

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::var("PANGEA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let binary = Path::new(env!("CARGO_BIN_EXE_pangea-operator"));
    let cluster = JobCluster::start(binary, "bench-jobs", &[]).await?;
    let local_ns = cluster.cp.namespace("bench-local").await?;
    let state = tempfile::tempdir()?;
    let local = tokio::task::block_in_place(|| {
        OperatorProcess::start(
            binary,
            &cluster.cp,
            &cluster.aws,
            Some(&local_ns.name),
            state.path(),
        )
    })?;
    let log = Log::default();
    for ns in [&cluster.ns, &local_ns] {
        watch(ns.api::<PangeaTemplate>(), log.clone(), template_marks);
        watch(ns.api::<Job>(), log.clone(), job_marks);
        watch(ns.api::<Pod>(), log.clone(), pod_marks);
        watch(ns.api::<ConfigMap>(), log.clone(), result_marks);
    }
    until("bench", "the watches listed", || {
        (lock(&log).synced >= 8).then_some(())
    })
    .await?;
    let job_operator = cluster.operator.as_ref().context("the Job operator")?;
    let mut backends = [
        Backend {
            name: "job",
            ns: &cluster.ns,
            operator: job_operator,
            samples: Vec::new(),
        },
        Backend {
            name: "local",
            ns: &local_ns,
            operator: &local,
            samples: Vec::new(),
        },
    ];
    // Alternating, so both backends see the same machine load.
    for round in 0..=runs {
        for b in &mut backends {
            let sample = b.apply(&log, round).await?;
            let net = sample.span(Mark::Patched, Mark::Succeeded, true);
            println!(
                "round {round} {}: {net:.3?}s beyond the executor's own time",
                b.name
            );
            if round > 0 {
                b.samples.push(sample);
            }
        }
    }
    let [job, local_backend] = &backends;
    let job_reaction = job.report(&JOB_ROWS)?;
    let local_reaction = local_backend.report(&LOCAL_ROWS)?;
    println!(
        "The Job backend adds {:.3}s per execution (spec patched -> recorded, minus the executor: {job_reaction:.3}s against {local_reaction:.3}s, {:.0}x)",
        job_reaction - local_reaction,
        job_reaction / local_reaction
    );
    Ok(())
}
