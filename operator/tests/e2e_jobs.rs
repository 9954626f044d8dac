//! The operator with the Job execution backend, as users see it: a real kube-apiserver with
//! a real node (containerd, kubelet), the locally built executor image, LocalStack, and the
//! `pangea-operator` binary. Each execution is a Job whose pod runs `pangea-executor run` and
//! delivers its typed result to a ConfigMap. Ignored by a plain `cargo test`;
//! `scripts/test.sh` runs them.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use kube::{Api, api::ListParams};
use pangea_api::{PangeaTemplate, common::condition};
use pangea_e2e::{
    JobCluster,
    job_cluster::{job_has, job_name},
};

const WAIT: Duration = pangea_e2e::job_cluster::WAIT;

async fn start(prefix: &str, extra: &[&str]) -> Result<JobCluster> {
    let binary = Path::new(env!("CARGO_BIN_EXE_pangea-operator"));
    Ok(JobCluster::start(binary, prefix, extra).await?)
}

fn cond<'a>(t: &'a PangeaTemplate, type_: &str) -> Option<&'a str> {
    pangea_e2e::condition_status(t, type_)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn drift_is_detected_and_remediated_through_executor_jobs() -> Result<()> {
    let s = start("jobs", &[]).await?;
    let mut jobs = Vec::new();
    s.create("web", serde_json::json!({
        "source": {"inline": web()}, "pangea": {"autoApprove": true},
        "driftDetection": {"interval": "1m", "autoRemediate": true, "remediationPolicy": "immediate"}
    }))
    .await?;
    let web = s
        .until("web", "Ready", &mut jobs, pangea_e2e::ready_and_checked)
        .await?;
    assert_eq!(web.status.unwrap().resources.map(|r| r.total), Some(2));
    assert!(
        jobs.iter().any(|j| j.starts_with("web-apply-")),
        "the apply ran as a Job: {jobs:?}"
    );

    s.aws
        .out_of_band(&["open-ingress", "e2e-jobs-web", "22", "0.0.0.0/0"])?;
    let web = s
        .until("web", "Drifted", &mut jobs, |t| {
            cond(t, condition::DRIFTED) == Some("True")
        })
        .await?;
    let drift = web.status.unwrap().drift.unwrap();
    assert_eq!(drift.severity, Some(pangea_api::common::Severity::Critical));
    assert!(
        drift
            .resources
            .iter()
            .any(|r| r.address == "aws_security_group.web"),
        "{drift:?}"
    );
    s.until("web", "remediated", &mut jobs, |t| {
        cond(t, condition::READY) == Some("True") && cond(t, condition::DRIFTED) == Some("False")
    })
    .await?;
    assert!(
        !s.aws
            .out_of_band(&["describe-ingress", "e2e-jobs-web"])?
            .contains("0.0.0.0/0"),
        "the world-open rule is still there"
    );
    let reasons = s.event_reasons("web").await?;
    assert!(
        reasons.contains(&"DriftDetected".into()) && reasons.contains(&"DriftRemediated".into()),
        "{reasons:?}"
    );
    let kinds = |kind: &str| {
        jobs.iter()
            .filter(|j| j.contains(&format!("-{kind}-")))
            .count()
    };
    assert!(kinds("apply") >= 2 && kinds("drift") >= 2, "{jobs:?}");
    println!("executor Jobs run: {jobs:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_job_outlives_a_killed_operator_and_its_result_is_recorded_once() -> Result<()> {
    let mut s = start("jobs-crash", &[]).await?;
    s.create(
        "web",
        serde_json::json!({"source": {"inline": web()}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    // Killed once the Job runs (resumed): a launch cut short before that is another case,
    // retried after `LAUNCH_GRACE` (unit-tested).
    let apply = s
        .job_until("applying", |j| {
            job_name(j).starts_with("web-apply-")
                && j.spec.as_ref().and_then(|spec| spec.suspend) == Some(false)
        })
        .await?;
    let id =
        apply.metadata.annotations.clone().unwrap_or_default()["pangea.io/execution-id"].clone();
    // kill -9: the Job runs in its own pod and does not care.
    s.operator.take().expect("operator").kill_hard();
    s.job_until("completed while the operator was down", |j| {
        job_name(j) == job_name(&apply) && job_has(j, "Complete")
    })
    .await?;
    s.operator = Some(s.start_operator().await?);
    let mut jobs = vec![job_name(&apply).to_owned()];
    let web = s
        .until("web", "Ready", &mut jobs, pangea_e2e::ready_and_checked)
        .await?;
    let status = web.status.unwrap();
    assert_eq!(status.resources.map(|r| r.total), Some(2));
    assert_eq!(
        jobs.iter().filter(|j| j.starts_with("web-apply-")).count(),
        1,
        "the adopted apply was not run again: {jobs:?}"
    );
    let reasons = s.event_reasons("web").await?;
    assert_eq!(
        reasons.iter().filter(|r| *r == "PlanApplied").count(),
        1,
        "{reasons:?}"
    );
    assert!(
        status.drift.and_then(|d| d.last_check_time).is_some(),
        "the schedule went on after the recorded apply ({id})"
    );
    assert_eq!(
        s.aws.out_of_band(&["count-groups", "e2e-jobs-web"])?.trim(),
        "1",
        "duplicate security groups"
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = s.ns.api();
    let holder = leases
        .get_opt("lock-tfstate-default-web-state")
        .await?
        .and_then(|l| l.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|h| !h.is_empty());
    assert_eq!(holder, None, "the state lock is still held");
    Ok(())
}

const DATA: &str =
    "template :data do\n  resource :terraform_data, :marker do\n    input \"v1\"\n  end\nend\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_missing_executor_image_is_named_and_the_template_recovers_once_fixed() -> Result<()> {
    let s = start("jobs-image", &[]).await?;
    s.create(
        "data",
        serde_json::json!({"source": {"inline": DATA}, "pangea": {"autoApprove": true},
            "executor": {"image": "localhost/pangea-missing:1"}}),
    )
    .await?;
    let mut jobs = Vec::new();
    let failed = s
        .until("data", "failed on its image", &mut jobs, |t| {
            t.status
                .as_ref()
                .and_then(|s| s.last_execution.as_ref())
                .and_then(|e| e.message.as_deref())
                .is_some_and(|m| m.contains("ImageUnavailable"))
        })
        .await?;
    assert_eq!(cond(&failed, condition::READY), Some("False"));
    let message = failed
        .status
        .unwrap()
        .last_execution
        .unwrap()
        .message
        .unwrap();
    assert!(message.contains("ErrImageNeverPull"), "{message}");
    let reasons = s.event_reasons("data").await?;
    assert!(reasons.contains(&"ExecutionFailed".into()), "{reasons:?}");

    // The fix is a spec change: the default image runs it.
    let patch = serde_json::json!({"spec": {"executor": {"image": null}}});
    s.api()
        .patch(
            "data",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let ready = s
        .until("data", "Ready", &mut jobs, |t| {
            cond(t, condition::READY) == Some("True")
        })
        .await?;
    assert_eq!(ready.status.unwrap().resources.map(|r| r.total), Some(1));
    // The failed Job was acknowledged and removed with its pod.
    let left: Vec<String> = s
        .jobs()
        .await?
        .iter()
        .filter(|j| {
            j.spec
                .as_ref()
                .and_then(|spec| spec.template.spec.as_ref())
                .is_some_and(|p| {
                    p.containers[0].image.as_deref() == Some("localhost/pangea-missing:1")
                })
        })
        .map(|j| job_name(j).to_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn the_execution_budget_bounds_executor_pods_across_templates() -> Result<()> {
    let s = start("jobs-budget", &["--max-concurrent-executions", "4"]).await?;
    let names: Vec<String> = (0..20).map(|i| format!("data-{i}")).collect();
    for name in &names {
        s.create(
            name,
            serde_json::json!({"source": {"inline": DATA}, "pangea": {"autoApprove": true}}),
        )
        .await?;
    }
    let pods: Api<k8s_openapi::api::core::v1::Pod> = s.ns.api();
    let (mut most, mut samples) = (0, 0);
    let start = Instant::now();
    loop {
        let active = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| {
                matches!(
                    p.status.as_ref().and_then(|st| st.phase.as_deref()),
                    Some("Pending" | "Running")
                )
            })
            .count();
        most = most.max(active);
        samples += 1;
        let mut ready = 0;
        for name in &names {
            if pangea_e2e::ready_and_checked(&s.api().get(name).await?) {
                ready += 1;
            }
        }
        if ready == names.len() {
            break;
        }
        if start.elapsed() > WAIT * 2 {
            bail!(
                "{ready} of {} templates Ready; at most {most} executor pods",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("at most {most} executor pods at once over {samples} samples");
    assert!(most <= 4, "{most} executor pods at once with a budget of 4");
    assert!(
        most >= 2,
        "executions never overlapped ({most}): the budget was not exercised"
    );
    Ok(())
}

fn web() -> String {
    pangea_e2e::fixtures::web_template("10.71.0.0/16", "e2e-jobs-web")
}
