//! An operator restarted over a settled fleet starts nothing that was not due: 100 cheap
//! templates run their first apply and drift check as executor Jobs, then the operator is
//! stopped (gracefully, then with kill -9) and started again. Every template's schedule
//! comes from timestamps in its status, so the new process must reconcile all of them
//! (its `pangea_templates` gauge reaches 100) without creating a Job or touching a status,
//! then and for a short while after. Ignored by a plain `cargo test`; `scripts/test.sh`
//! runs it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use pangea_api::template::ExecutionStatus;
use pangea_e2e::{JobCluster, job_cluster::job_name, operator::metric};
use pangea_operator::{core::START_RETRY, decide::MIN_REQUEUE};

const TEMPLATES: usize = 100;
/// Executor pods at once: enough to overlap pod start-up with work, few enough that two
/// cores still serve the apiserver, the kubelet and the operator promptly.
const BUDGET: &str = "6";
/// Longest wait for the whole fleet to settle (200 executor pods on a cold, busy machine).
const SETTLE: Duration = Duration::from_secs(45 * 60);
/// Longest wait for a restarted operator to reconcile every template.
const RECONCILED: Duration = Duration::from_secs(300);

/// Nothing is due for an hour after the first cycle: no drift check, no periodic reconcile.
fn spec(i: usize) -> serde_json::Value {
    let inline = format!(
        "template :data do\n  resource :terraform_data, :marker do\n    input \"{i}\"\n  end\nend\n"
    );
    serde_json::json!({
        "source": {"inline": inline},
        "pangea": {"autoApprove": true},
        "reconciliation": {"interval": "1h"},
        "driftDetection": {"interval": "1h"},
    })
}

/// What a restart must leave alone: the executor Jobs and each template's last execution.
#[derive(Debug, PartialEq)]
struct Fleet {
    jobs: BTreeSet<String>,
    last_execution: BTreeMap<String, Option<ExecutionStatus>>,
}

async fn fleet(s: &JobCluster) -> Result<Fleet> {
    let jobs = s
        .jobs()
        .await?
        .iter()
        .map(|j| job_name(j).to_owned())
        .collect();
    let templates = s.api().list(&Default::default()).await?.items;
    let last_execution = templates
        .into_iter()
        .map(|t| {
            let name = t.metadata.name.clone().unwrap_or_default();
            (name, t.status.and_then(|st| st.last_execution))
        })
        .collect();
    Ok(Fleet {
        jobs,
        last_execution,
    })
}

/// Polls until every template is Ready and drift-checked.
async fn settled(s: &JobCluster) -> Result<()> {
    let start = Instant::now();
    loop {
        let templates = s.api().list(&Default::default()).await?.items;
        let waiting: Vec<String> = templates
            .iter()
            .filter(|t| !pangea_e2e::ready_and_checked(t))
            .filter_map(|t| t.metadata.name.clone())
            .collect();
        if templates.len() == TEMPLATES && waiting.is_empty() {
            return Ok(());
        }
        if start.elapsed() > SETTLE {
            let what = format!("{} templates not settled: {waiting:?}", waiting.len());
            return Err(s.timed_out_after(&what, SETTLE).into());
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Polls the running operator's metrics until it has reconciled every template; returns
/// the metrics text of that moment.
async fn all_reconciled(s: &JobCluster) -> Result<String> {
    let operator = s.operator.as_ref().expect("a running operator");
    let start = Instant::now();
    loop {
        let text = operator.metrics();
        if metric(&text, "pangea_templates") >= TEMPLATES as f64 {
            return Ok(text);
        }
        if start.elapsed() > RECONCILED {
            let what = format!("the restarted operator did not reconcile every template:\n{text}");
            return Err(s.timed_out_after(&what, RECONCILED).into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long a restarted operator is watched after it reconciled every template: a decision
/// can also come back as a requeue (at least `MIN_REQUEUE`) or a start retried after
/// `START_RETRY`, so an undue execution may start that much later.
const QUIET: Duration = START_RETRY.saturating_add(MIN_REQUEUE);

/// Starts a new operator and checks that it changed nothing of `before`.
async fn restart_changes_nothing(s: &mut JobCluster, before: &Fleet, how: &str) -> Result<()> {
    let restarted = Instant::now();
    s.operator = Some(s.start_operator().await?);
    let metrics = all_reconciled(s).await?;
    println!(
        "after {how}: every template reconciled {:.1}s after the restart ({} reconciles)",
        restarted.elapsed().as_secs_f64(),
        metric(&metrics, "pangea_reconcile_duration_seconds_count")
    );
    let quiet = Instant::now();
    loop {
        unchanged(before, &fleet(s).await?, how)?;
        if quiet.elapsed() > QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let text = s.operator.as_ref().expect("a running operator").metrics();
    ensure!(
        text.contains("pangea_status_writes_total"),
        "no metrics: {text:?}"
    );
    let writes = metric(&text, "pangea_status_writes_total");
    ensure!(
        writes == 0.0,
        "after {how}, {writes} status writes of unchanged templates"
    );
    Ok(())
}

/// No Job that `before` did not have, and every last execution as it was.
fn unchanged(before: &Fleet, after: &Fleet, how: &str) -> Result<()> {
    let new_jobs: Vec<&String> = after.jobs.difference(&before.jobs).collect();
    ensure!(
        new_jobs.is_empty(),
        "after {how}, executions that were not due started: {new_jobs:?}"
    );
    for (name, last) in &before.last_execution {
        ensure!(
            after.last_execution.get(name) == Some(last),
            "after {how}, {name}'s last execution changed: {last:?} -> {:?}",
            after.last_execution.get(name)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_restarted_operator_starts_no_execution_that_was_not_due() -> Result<()> {
    let began = Instant::now();
    let binary = Path::new(env!("CARGO_BIN_EXE_pangea-operator"));
    let flags = ["--max-concurrent-executions", BUDGET];
    let mut s = JobCluster::start(binary, "jobs-restart", &flags).await?;
    for i in 0..TEMPLATES {
        s.create(&format!("data-{i:03}"), spec(i)).await?;
    }
    settled(&s).await?;
    let before = fleet(&s).await?;
    println!(
        "{TEMPLATES} templates settled in {:.0}s with {} executor Jobs",
        began.elapsed().as_secs_f64(),
        before.jobs.len()
    );
    // Recorded Jobs stay until their TTL: the record a new Job would be told apart from.
    ensure!(
        before.jobs.len() >= 2 * TEMPLATES,
        "expected an apply and a drift Job per template: {:?}",
        before.jobs
    );

    let stopped = s.operator.take().expect("operator").stop();
    ensure!(stopped, "the operator did not stop within its grace period");
    restart_changes_nothing(&mut s, &before, "a graceful stop").await?;

    s.operator.take().expect("operator").kill_hard();
    restart_changes_nothing(&mut s, &before, "kill -9").await?;
    println!("total {:.0}s", began.elapsed().as_secs_f64());
    Ok(())
}
