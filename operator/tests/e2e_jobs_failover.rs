//! Two operator replicas with leader election on the real node: the standby reconciles nothing
//! and writes no status while the leader works; the leader is killed (SIGKILL, no release)
//! while its executor Job applies; the standby takes over once the Lease expires, adopts the
//! running Job instead of starting another, records its result, and every status write it
//! sends changes the status. A restarted replica stands by; a graceful stop hands over.
//! Ignored by a plain `cargo test`; `scripts/test.sh` runs it.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::{batch::v1::Job, coordination::v1::Lease};
use kube::{
    Api,
    runtime::{WatchStreamExt, watcher},
};
use pangea_api::PangeaTemplate;
use pangea_e2e::{
    JobCluster, OperatorProcess,
    chart::OPERATOR_NAMESPACE,
    job_cluster::{WAIT, execution_id, job_has, job_name},
};

const LEASE_SECONDS: &str = "8";
const LEASE: &str = "pangea-operator-leader";

/// Enough creates that the apply is still running when the leader is killed.
fn template() -> String {
    "template :params do\n  provider :aws do\n    region \"us-east-1\"\n  end\n  \
     (1..40).each do |i|\n    resource :aws_ssm_parameter, :\"p#{i}\" do\n      \
     name \"/e2e/failover/p#{i}\"\n      type \"String\"\n      value \"v#{i}\"\n    end\n  \
     end\nend\n"
        .to_owned()
}

/// Every status the template had, in order (a status-only write changes only this).
type Statuses = Arc<Mutex<Vec<serde_json::Value>>>;

fn record_statuses(api: Api<PangeaTemplate>) -> Statuses {
    let seen: Statuses = Arc::default();
    let sink = seen.clone();
    let config = watcher::Config::default().fields("metadata.name=params");
    tokio::spawn(async move {
        let mut stream = watcher(api, config).applied_objects().boxed();
        while let Some(Ok(tpl)) = stream.next().await {
            let status = serde_json::to_value(&tpl.status).unwrap_or_default();
            let mut seen = sink.lock().unwrap();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
        }
    });
    seen
}

async fn until_leading(who: &OperatorProcess, what: &str) -> Result<Duration> {
    let start = Instant::now();
    while who.metric("pangea_leader") < 1.0 {
        if start.elapsed() > WAIT {
            bail!("{what} did not lead; log:\n{}", who.log_tail(40));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(start.elapsed())
}

async fn holder(s: &JobCluster) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(s.cp.client(), OPERATOR_NAMESPACE);
    Ok(leases
        .get_opt(LEASE)
        .await?
        .and_then(|l| l.spec)
        .and_then(|spec| spec.holder_identity))
}

fn applies(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .filter(|j| job_name(j).starts_with("params-apply-"))
        .filter_map(execution_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn the_standby_takes_over_a_killed_leader_and_adopts_its_running_job() -> Result<()> {
    let binary = Path::new(env!("CARGO_BIN_EXE_pangea-operator"));
    let flags = [
        "--leader-elect",
        // The release namespace, where the chart's RBAC lets the operator keep its Lease.
        "--leader-election-namespace",
        OPERATOR_NAMESPACE,
        "--leader-lease-seconds",
        LEASE_SECONDS,
    ];
    let mut s = JobCluster::start(binary, "failover", &flags).await?;
    let first = s.operator.take().expect("the first replica");
    until_leading(&first, "the first replica").await?;
    // Ready as a standby: a rollout never waits for a replica to lead.
    let standby = s.start_operator().await?;
    assert_eq!(standby.metric("pangea_leader"), 0.0);

    let statuses = record_statuses(s.api());
    s.create(
        "params",
        serde_json::json!({"source": {"inline": template()}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    let running = s
        .job_until("applying", |j| {
            job_name(j).starts_with("params-apply-")
                && j.status.as_ref().and_then(|st| st.active) == Some(1)
        })
        .await?;
    let adopted = execution_id(&running).expect("an execution id");
    // Both alive, one acting: the standby has reconciled nothing and written no status.
    assert!(first.metric("pangea_status_writes_total") >= 1.0);
    assert_eq!(standby.metric("pangea_status_writes_total"), 0.0);
    assert_eq!(standby.metric("pangea_templates"), 0.0);

    first.kill_hard();
    let killed = Instant::now();
    let written_before = statuses.lock().unwrap().len();
    let took_over = until_leading(&standby, "the standby").await?;
    println!(
        "failover: the standby led {:.1}s after the leader was killed (lease {LEASE_SECONDS}s)",
        took_over.as_secs_f64()
    );
    assert!(killed.elapsed() >= Duration::from_secs(1));

    let mut jobs = Vec::new();
    let ready = s
        .until("params", "Ready after the takeover", &mut jobs, |t| {
            pangea_e2e::ready_and_checked(t)
        })
        .await?;
    // The adopted apply's result is the one recorded: it created every parameter.
    let resources = ready.status.and_then(|st| st.resources).expect("counts");
    assert_eq!((resources.total, resources.created), (40, 40));
    let all = s.jobs().await?;
    let apply_ids = applies(&all);
    assert_eq!(
        apply_ids,
        vec![adopted.clone()],
        "one apply Job, the one running at the kill: {:?}",
        all.iter().map(job_name).collect::<Vec<_>>()
    );
    assert!(
        all.iter()
            .any(|j| job_has(j, "Complete") && execution_id(j).as_deref() == Some(&adopted))
    );

    // Every status write the new leader sent changed the status (at most one more change: a
    // write the killed leader had in flight).
    let writes = standby.metric("pangea_status_writes_total") as usize;
    let changes = statuses.lock().unwrap().len() - written_before;
    assert!(writes >= 1, "the new leader recorded the result");
    assert!(
        writes <= changes && changes <= writes + 1,
        "status writes {writes}, status changes {changes}"
    );

    // A replica started again stands by; a graceful stop releases the Lease at once.
    let again = s.start_operator().await?;
    assert_eq!(again.metric("pangea_leader"), 0.0);
    let before = holder(&s).await?;
    let stopping = Instant::now();
    assert!(standby.stop(), "the leader stops within its grace period");
    let handed = until_leading(&again, "the restarted replica").await?;
    println!(
        "handover: the restarted replica led {:.1}s after the leader was asked to stop ({:.1}s of it waiting for the stop)",
        stopping.elapsed().as_secs_f64(),
        (stopping.elapsed() - handed).as_secs_f64()
    );
    assert_ne!(holder(&s).await?, before);
    s.operator = Some(again);
    Ok(())
}
