//! An executor pod killed during an approved apply (the container dies with terraform in it),
//! on the real node: the template names the interrupted apply and what happened to the state
//! lock, the approved plan is never applied again — a fresh plan with an id of its own waits
//! for approval — and once that is approved nothing is duplicated and the lock is free.
//! Ignored by a plain `cargo test`; `scripts/test.sh` runs it.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{
    batch::v1::Job,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Pod},
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use pangea_api::{PangeaTemplate, exec::Progress};
use pangea_e2e::{
    JobCluster,
    job_cluster::{WAIT, job_name},
};

/// Enough creates that the apply is still running when the kill lands.
const PARAMETERS: usize = 60;

fn template() -> String {
    format!(
        "template :params do\n  provider :aws do\n    region \"us-east-1\"\n  end\n  \
         (1..{PARAMETERS}).each do |i|\n    resource :aws_ssm_parameter, :\"p#{{i}}\" do\n      \
         name \"/e2e/interrupt/p#{{i}}\"\n      type \"String\"\n      value \"v#{{i}}\"\n    \
         end\n  end\nend\n"
    )
}

fn plan_of(t: &PangeaTemplate) -> Option<(String, bool)> {
    let plan = t.status.as_ref()?.plan.as_ref()?;
    Some((plan.id.clone()?, plan.pending))
}

fn last_message(t: &PangeaTemplate) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.last_execution.as_ref())
        .and_then(|e| e.message.clone())
        .unwrap_or_default()
}

async fn approve(s: &JobCluster, id: &str) -> Result<()> {
    let patch = serde_json::json!({"spec": {"approvePlan": id}});
    s.api()
        .patch("params", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn is_apply(job: &Job) -> bool {
    job_name(job).starts_with("params-apply-")
}

/// The progress the apply's executor recorded, once it lists creates in flight.
async fn in_flight_recorded(s: &JobCluster, job: &str) -> Result<bool> {
    let maps: Api<ConfigMap> = s.ns.api();
    let Some(map) = maps.get_opt(&format!("{job}-result")).await? else {
        return Ok(false);
    };
    let progress: Option<Progress> = map
        .data
        .as_ref()
        .and_then(|d| d.get(pangea_executor::result_codec::PROGRESS_KEY))
        .and_then(|t| serde_json::from_str(t).ok());
    Ok(progress.is_some_and(|p| !p.in_flight_creates.is_empty()))
}

/// Who holds the template's state lock (terraform's `kubernetes` backend Lease).
async fn lock_holder(s: &JobCluster) -> Result<Option<String>> {
    let leases: Api<Lease> = s.ns.api();
    Ok(leases
        .get_opt("lock-tfstate-default-params-state")
        .await?
        .and_then(|l| l.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// SIGKILL to the executor container of Job `job`, through the node's containerd.
async fn kill_executor(s: &JobCluster, job: &str) -> Result<()> {
    let pods: Api<Pod> = s.ns.api();
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let pod = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .next()
        .context("the apply Job has no pod")?;
    let id = pod
        .status
        .and_then(|st| st.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.container_id)
        .context("the executor container has no id")?;
    let id = id.trim_start_matches("containerd://");
    let node = s.cp.node().context("no node")?;
    node.ctr()
        .kill_task(id)
        .context("killing the executor container (did the apply finish before the kill?)")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_killed_apply_pod_is_named_its_lock_released_and_its_plan_never_applied_again()
-> Result<()> {
    let binary = Path::new(env!("CARGO_BIN_EXE_pangea-operator"));
    let s = JobCluster::start(binary, "jobs-kill", &[]).await?;
    s.create(
        "params",
        serde_json::json!({"source": {"inline": template()}}),
    )
    .await?;
    let mut jobs = Vec::new();
    let planned = s
        .until("params", "planned", &mut jobs, |t| {
            plan_of(t).is_some_and(|(_, pending)| pending)
        })
        .await?;
    let (approved, _) = plan_of(&planned).expect("a pending plan");
    approve(&s, &approved).await?;

    let apply = s.job_until("applying", is_apply).await?;
    let apply = job_name(&apply).to_owned();
    let start = Instant::now();
    // Mid-apply: its creates are recorded and terraform holds the state lock (the plan before
    // it released its own).
    while !(in_flight_recorded(&s, &apply).await? && lock_holder(&s).await?.is_some()) {
        if start.elapsed() > WAIT {
            return Err(s
                .timed_out("no apply holding the lock with creates in flight")
                .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill_executor(&s, &apply).await?;

    // What a person sees: the interrupted apply, named, with its lock and creates.
    let interrupted = s
        .until("params", "interrupted", &mut jobs, |t| {
            last_message(t).contains("ApplyInterrupted")
        })
        .await?;
    let message = last_message(&interrupted);
    println!("after the kill: {message}");
    assert!(message.contains("was interrupted"), "{message}");
    assert!(message.contains("exit code 137"), "{message}");
    assert!(
        message.contains("The state lock it held") && message.contains("was released"),
        "the dead pod's lock: {message}"
    );
    assert!(message.contains("aws_ssm_parameter.p"), "{message}");
    let reasons = s.event_reasons("params").await?;
    assert!(reasons.contains(&"ExecutionFailed".into()), "{reasons:?}");

    // A fresh plan with an id of its own waits; the old approval does not apply it.
    let fresh = s
        .until("params", "re-planned", &mut jobs, |t| {
            plan_of(t).is_some_and(|(id, _)| id != approved)
        })
        .await?;
    let (fresh_id, pending) = plan_of(&fresh).expect("a plan");
    let applies = |jobs: &[String]| {
        jobs.iter()
            .filter(|j| j.starts_with("params-apply-"))
            .count()
    };
    assert_eq!(
        applies(&jobs),
        1,
        "an apply ran without a fresh approval: {jobs:?}"
    );
    assert_eq!(
        lock_holder(&s).await?,
        None,
        "the dead pod's lock is still held"
    );

    if pending {
        approve(&s, &fresh_id).await?;
    }
    let ready = s
        .until("params", "Ready", &mut jobs, |t| {
            pangea_e2e::condition_status(t, pangea_api::common::condition::READY) == Some("True")
        })
        .await?;
    let status = ready.status.expect("status");
    assert_eq!(status.resources.map(|r| r.total), Some(PARAMETERS as u32));
    assert!(status.interrupted_apply.is_none(), "cleared by the apply");
    assert!(
        status.in_flight_creates.is_empty(),
        "{:?}",
        status.in_flight_creates
    );
    let count = s
        .aws
        .out_of_band(&["count-parameters-under", "/e2e/interrupt/"])?;
    assert_eq!(
        count.trim(),
        PARAMETERS.to_string(),
        "parameters in the cloud"
    );
    println!("executor Jobs: {jobs:?}");
    if applies(&jobs) > 2 {
        bail!("more applies than the killed one and the approved one: {jobs:?}");
    }
    Ok(())
}
