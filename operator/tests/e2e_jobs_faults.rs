//! Faults of the Job execution backend, as users see them, on the harness's real node: an
//! executor killed by the kernel for memory, a Job ended by Kubernetes' own deadline, a status
//! write the apiserver refuses while a finished result waits, a template that tries to read
//! the operator's secrets, and a plan too large for the old report bounds. Ignored by a plain
//! `cargo test`; `scripts/test.sh` runs them.

use std::{path::Path, time::Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{batch::v1::Job, core::v1::ConfigMap, core::v1::Pod};
use kube::api::{ListParams, Patch, PatchParams};
use pangea_api::{
    PangeaTemplate, common::condition, exec::ExecutionResult, template::ExecutionPhase,
};
use pangea_e2e::{
    AwsEmulator, ControlPlane, JobCluster, OperatorProcess,
    faults::{DENIED, StatusWriteDenial},
    job_cluster::{WAIT, execution_id, job_has, job_name},
};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pangea-operator"))
}

async fn start(prefix: &str, extra: &[&str]) -> Result<JobCluster> {
    Ok(JobCluster::start(binary(), prefix, extra).await?)
}

fn cond<'a>(t: &'a PangeaTemplate, type_: &str) -> Option<&'a str> {
    pangea_e2e::condition_status(t, type_)
}

fn reason<'a>(t: &'a PangeaTemplate, type_: &str) -> Option<&'a str> {
    let status = t.status.as_ref()?;
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some(c.reason.as_str())
}

/// `status.lastExecution.message`, empty when there is none.
fn last_message(t: &PangeaTemplate) -> &str {
    t.status
        .as_ref()
        .and_then(|s| s.last_execution.as_ref())
        .and_then(|e| e.message.as_deref())
        .unwrap_or_default()
}

async fn patch_spec(s: &JobCluster, name: &str, spec: serde_json::Value) -> Result<()> {
    let patch = serde_json::json!({ "spec": spec });
    s.api()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn is_ready(t: &PangeaTemplate) -> bool {
    cond(t, condition::READY) == Some("True")
}

const DATA: &str =
    "template :data do\n  resource :terraform_data, :marker do\n    input \"v1\"\n  end\nend\n";

/// 500 resources: planning them takes terraform about 45 MB here, three times the limit
/// below. (One resource fits in 16 MiB: terraform's own memory is mostly its binary, which
/// the kernel can page out instead of killing it.)
const HUNGRY: &str = "template :hungry do\n  500.times do |i|\n    resource :terraform_data, :\"item_#{i}\" do\n      input i\n    end\n  end\nend\n";

/// Enough for the executor to start, compile and deliver a result (it peaked at about 9 MB
/// with Ruby running); far too little for the plan.
const TOO_LITTLE_MEMORY: &str = "16Mi";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn an_executor_out_of_memory_is_named_and_the_template_recovers_once_fixed() -> Result<()> {
    let s = start("faults-oom", &[]).await?;
    s.create(
        "hungry",
        serde_json::json!({"source": {"inline": HUNGRY}, "pangea": {"autoApprove": true},
            "executor": {"resources": {"limits": {"memory": TOO_LITTLE_MEMORY}}}}),
    )
    .await?;
    let mut jobs = Vec::new();
    let failed = s
        .until("hungry", "failed for memory", &mut jobs, |t| {
            last_message(t).contains("OOMKilled")
        })
        .await?;
    assert_eq!(cond(&failed, condition::READY), Some("False"));
    assert_eq!(reason(&failed, condition::READY), Some("OOMKilled"));
    // Raising the limit is a person's job: the template stalls until its spec changes.
    assert_eq!(cond(&failed, condition::STALLED), Some("True"));
    assert!(
        last_message(&failed).contains("resources.limits.memory"),
        "{}",
        last_message(&failed)
    );
    assert!(
        s.event_reasons("hungry")
            .await?
            .contains(&"ExecutionFailed".into())
    );
    // The kernel killed it for the limit (containerd saw the OOM), not something else.
    let pods: kube::Api<Pod> = s.ns.api();
    let oom_killed = pods
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .any(|p| {
            p.status
                .as_ref()
                .and_then(|st| st.container_statuses.as_ref())
                .and_then(|cs| cs.first()?.state.as_ref()?.terminated.as_ref())
                .is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"))
        });
    assert!(oom_killed, "no executor container terminated OOMKilled");

    patch_spec(
        &s,
        "hungry",
        serde_json::json!({"executor": {"resources": null}}),
    )
    .await?;
    let ready = s.until("hungry", "Ready", &mut jobs, is_ready).await?;
    assert_eq!(ready.status.unwrap().resources.map(|r| r.total), Some(500));
    println!("executor Jobs: {jobs:?}");
    Ok(())
}

/// Compiling never ends: the executor is stuck where only Kubernetes' deadline reaches it.
const HANGS: &str = "Kernel.sleep(3600)\ntemplate :slow do\n  resource :terraform_data, :marker do\n    input \"v1\"\n  end\nend\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn kubernetes_ending_a_job_at_its_deadline_is_named_and_the_template_recovers() -> Result<()>
{
    // Kubernetes' deadline 15 s before the executor's own: what a wedged executor meets.
    let s = start(
        "faults-deadline",
        &["--executor-deadline-margin-seconds", "-15"],
    )
    .await?;
    s.create(
        "slow",
        serde_json::json!({"source": {"inline": HANGS}, "pangea": {"autoApprove": true},
            "reconciliation": {"timeout": "30s"}}),
    )
    .await?;
    let mut jobs = Vec::new();
    let failed = s
        .until("slow", "ended at its deadline", &mut jobs, |t| {
            last_message(t).contains("DeadlineExceeded")
        })
        .await?;
    assert_eq!(reason(&failed, condition::READY), Some("DeadlineExceeded"));
    let last = failed
        .status
        .as_ref()
        .unwrap()
        .last_execution
        .clone()
        .unwrap();
    assert_eq!(last.phase, ExecutionPhase::TimedOut);
    // Kubernetes' words, not the executor's: the Job deadline fired first.
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains("active longer than specified deadline"),
        "{last:?}"
    );
    let job = s
        .job_until("failed at its deadline", |j| {
            job_name(j).starts_with("slow-apply-") && job_failed_for(j, "DeadlineExceeded")
        })
        .await?;
    assert_eq!(
        job.spec.and_then(|spec| spec.active_deadline_seconds),
        Some(15)
    );

    // The fix: a template that compiles, and a timeout that leaves it room.
    patch_spec(
        &s,
        "slow",
        serde_json::json!({"source": {"inline": DATA}, "reconciliation": {"timeout": "5m"}}),
    )
    .await?;
    let ready = s
        .until("slow", "Ready", &mut jobs, |t| {
            is_ready(t)
                && t.status.as_ref().and_then(|s| s.observed_generation) == t.metadata.generation
        })
        .await?;
    assert_eq!(ready.status.unwrap().resources.map(|r| r.total), Some(1));
    println!("executor Jobs: {jobs:?}");
    Ok(())
}

fn job_failed_for(job: &Job, reason: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "Failed" && c.status == "True" && c.reason.as_deref() == Some(reason)
            })
        })
}

/// The Job carries `pangea.io/recorded=true`: its result is in status.
fn recorded(job: &Job) -> bool {
    job.metadata.labels.as_ref().is_some_and(|l| {
        l.get(pangea_operator::backend::job::build::RECORDED)
            .map(String::as_str)
            == Some("true")
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_drift_result_survives_status_writes_the_apiserver_denies() -> Result<()> {
    let s = start("faults-status", &[]).await?;
    let denial = StatusWriteDenial::install(s.cp.client(), &s.ns.name, "web").await?;
    s.create(
        "web",
        serde_json::json!({"source": {"inline": web()}, "pangea": {"autoApprove": true},
            "driftDetection": {"interval": "1m"}}),
    )
    .await?;
    let mut before = Vec::new();
    s.until("web", "Ready", &mut before, pangea_e2e::ready_and_checked)
        .await?;

    denial.bind().await?;
    s.aws
        .out_of_band(&["open-ingress", "e2e-faults-web", "22", "0.0.0.0/0"])?;
    let is_new_drift =
        |j: &Job| job_name(j).starts_with("web-drift-") && !before.iter().any(|b| b == job_name(j));
    let drift = s
        .job_until("checking drift after the binding", is_new_drift)
        .await?;
    let name = job_name(&drift).to_owned();
    s.job_until("completed", |j| {
        job_name(j) == name && job_has(j, "Complete")
    })
    .await?;
    // A denial logged after the Job completed is the write that would have recorded it.
    let seen = s.operator.as_ref().context("operator")?.log_count(DENIED);
    s.until_logged(DENIED, seen).await?;
    let waiting = s.jobs().await?.into_iter().find(|j| job_name(j) == name);
    assert!(
        waiting.as_ref().is_some_and(|j| !recorded(j)),
        "the result was acknowledged though its status was never written"
    );
    let unrecorded = s.api().get("web").await?;
    assert_ne!(cond(&unrecorded, condition::DRIFTED), Some("True"));

    denial.unbind().await?;
    let mut after = before.clone();
    let web = s
        .until("web", "Drifted", &mut after, |t| {
            cond(t, condition::DRIFTED) == Some("True")
        })
        .await?;
    let status = web.status.unwrap();
    assert_eq!(
        status.last_execution.map(|e| e.id),
        execution_id(&drift),
        "recorded from the Job that ran while writes were denied"
    );
    let drifted = status.drift.unwrap();
    assert!(
        drifted
            .resources
            .iter()
            .any(|r| r.address == "aws_security_group.web"),
        "{drifted:?}"
    );
    let drift_jobs: Vec<String> = s
        .jobs()
        .await?
        .iter()
        .filter(|j| is_new_drift(j))
        .map(|j| job_name(j).to_owned())
        .collect();
    assert_eq!(
        drift_jobs,
        [name.as_str()],
        "no second drift check was needed"
    );
    s.job_until("labelled recorded", |j| job_name(j) == name && recorded(j))
        .await?;
    let denied = s.operator.as_ref().context("operator")?.log_count(DENIED);
    println!("status writes denied: {denied}; the drift result of {name} was recorded after");
    Ok(())
}

const CANARY_VAR: &str = "PANGEA_E2E_CANARY";

/// A template that reports, through its outputs, what it could read of the operator running
/// it: its environment (a canary variable), its process's environment file, its kubeconfig
/// (cluster-admin token), another template's files under its state directory, and whose
/// service-account token it holds. The neighbour's marker is assembled at run time: this
/// source is cached in the state directory too and must not find itself.
fn probe_source(operator_pid: u32, kubeconfig: &Path, state_dir: &Path) -> String {
    r#"def probe_read(path)
  File.read(path)
rescue SystemCallError
  nil
end

def probe_secret(path, needle)
  text = probe_read(path)
  return "absent" if text.nil?
  text.include?(needle) ? "found" : "readable"
end

def probe_tree(dir, needle)
  return "absent" unless File.directory?(dir)
  hits = Dir.glob(File.join(dir, "**", "*")).count do |f|
    File.file?(f) && File.size(f) < 4_000_000 && (probe_read(f) || "").include?(needle)
  end
  hits.positive? ? "found" : "readable"
end

def probe_token(path)
  token = probe_read(path)
  return "absent" if token.nil?
  payload = token.split(".")[1].tr("-_", "+/")
  payload += "=" * (-payload.size % 4)
  JSON.parse(payload.unpack1("m"))["sub"].to_s
end

template :probe do
  resource :terraform_data, :probe do
    input "probe"
  end
  output :canary do
    value ENV.fetch("@VAR@", "absent")
  end
  output :operator_environ do
    value probe_secret("/proc/@PID@/environ", "@VAR@")
  end
  output :kubeconfig do
    value probe_secret("@KUBECONFIG@", "token:")
  end
  output :state_dir do
    value probe_tree("@STATE@", %w[NEIGHBOUR MARKER].join("-"))
  end
  output :service_account do
    value probe_token("/var/run/secrets/kubernetes.io/serviceaccount/token")
  end
end
"#
    .replace("@VAR@", CANARY_VAR)
    .replace("@PID@", &operator_pid.to_string())
    .replace("@KUBECONFIG@", &kubeconfig.display().to_string())
    .replace("@STATE@", &state_dir.display().to_string())
}

const NEIGHBOUR: &str = "template :neighbour do\n  resource :terraform_data, :secret do\n    input \"NEIGHBOUR-MARKER\"\n  end\nend\n";

fn canary() -> Vec<(String, String)> {
    vec![(
        CANARY_VAR.to_owned(),
        format!("canary-{}", std::process::id()),
    )]
}

fn output<'a>(t: &'a PangeaTemplate, name: &str) -> &'a str {
    t.status
        .as_ref()
        .and_then(|s| s.outputs.get(name))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

fn probed(t: &PangeaTemplate) -> bool {
    t.status
        .as_ref()
        .is_some_and(|s| s.outputs.contains_key("canary"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_template_in_an_executor_pod_reads_nothing_of_the_operator() -> Result<()> {
    let s = JobCluster::start_with_env(binary(), "faults-isolation", &[], &canary()).await?;
    let mut jobs = Vec::new();
    s.create(
        "neighbour",
        serde_json::json!({"source": {"inline": NEIGHBOUR}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    s.until("neighbour", "Ready", &mut jobs, is_ready).await?;
    let pid = s.operator.as_ref().context("operator")?.pid();
    let source = probe_source(pid, &s.cp.kubeconfig, s.state_dir());
    s.create(
        "probe",
        serde_json::json!({"source": {"inline": source}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    let probe = s.until("probe", "probed", &mut jobs, probed).await?;
    println!(
        "outputs in an executor pod: {:?}",
        probe.status.as_ref().map(|s| &s.outputs)
    );
    for name in ["canary", "operator_environ", "kubeconfig", "state_dir"] {
        assert_eq!(output(&probe, name), "absent", "{name}");
    }
    // Its only credential is its own least-privilege service account.
    assert_eq!(
        output(&probe, "service_account"),
        format!(
            "system:serviceaccount:{}:{}",
            s.ns.name,
            pangea_e2e::jobs::EXECUTOR_ACCOUNT
        )
    );
    Ok(())
}

/// The same probe in the operator's own process (the local backend, which the docs say runs
/// templates with the operator's rights) finds everything: the probe can see what the Job
/// backend hides.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn the_same_probe_in_the_operators_process_reads_its_secrets() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let aws = AwsEmulator::start()?;
    let ns = cp.namespace("faults-local").await?;
    let state = tempfile::tempdir()?;
    let operator = tokio::task::block_in_place(|| {
        OperatorProcess::start_with_env(
            binary(),
            &cp,
            &aws,
            Some(&ns.name),
            state.path(),
            &[],
            &canary(),
        )
    })?;
    ns.create_template(
        "neighbour",
        serde_json::json!({"source": {"inline": NEIGHBOUR}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    let with_log =
        |e: pangea_e2e::Error| anyhow::anyhow!("{e}\noperator log:\n{}", operator.log_tail(60));
    ns.template_until("neighbour", "Ready", WAIT, is_ready)
        .await
        .map_err(with_log)?;
    let source = probe_source(operator.pid(), &cp.kubeconfig, state.path());
    ns.create_template(
        "probe",
        serde_json::json!({"source": {"inline": source}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    let probe = ns
        .template_until("probe", "probed", WAIT, probed)
        .await
        .map_err(with_log)?;
    println!(
        "outputs in the operator's process: {:?}",
        probe.status.as_ref().map(|s| &s.outputs)
    );
    assert_eq!(output(&probe, "canary"), canary()[0].1);
    for name in ["operator_environ", "kubeconfig", "state_dir"] {
        assert_eq!(output(&probe, name), "found", "{name}");
    }
    Ok(())
}

/// 3,000 resources, each a line of the plan.
const MANY: &str = "template :many do\n  3000.times do |i|\n    resource :terraform_data, :\"item_#{i}\" do\n      input i\n    end\n  end\nend\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness with a node: scripts/test.sh runs it"]
async fn a_3000_resource_plan_report_reaches_the_operator_intact() -> Result<()> {
    let s = start("faults-large", &[]).await?;
    let started = Instant::now();
    s.create("many", serde_json::json!({"source": {"inline": MANY}}))
        .await?;
    let mut jobs = Vec::new();
    let planned = s
        .until("many", "planned", &mut jobs, |t| {
            t.status
                .as_ref()
                .and_then(|s| s.plan.as_ref())
                .is_some_and(|p| p.pending)
        })
        .await?;
    let plan = planned.status.unwrap().plan.unwrap();
    assert_eq!((plan.add, plan.change, plan.destroy), (3000, 0, 0));
    // The result is recorded as soon as it is delivered; the Job completes moments later.
    let job = s
        .job_until("completed", |j| {
            job_name(j).starts_with("many-plan-") && job_has(j, "Complete")
        })
        .await?;
    let (result, encoded) = delivered(&s, &job).await?;
    let report = result.plan.clone().context("a plan report")?;
    ensure!(
        report.changes.len() == 3000 && report.changes_omitted == 0,
        "{} changes listed, {} omitted",
        report.changes.len(),
        report.changes_omitted
    );
    let ran = job
        .status
        .as_ref()
        .and_then(|st| {
            let (start, end) = (st.start_time.as_ref()?.0, st.completion_time.as_ref()?.0);
            Some(end.duration_since(start))
        })
        .context("the Job's start and completion times")?;
    let json = serde_json::to_vec(&result)?.len();
    println!(
        "3,000-resource plan: result {json} bytes of JSON, {encoded} bytes encoded; Job ran {:.1}s (executor {:.1}s); created → pending plan in {:.1}s",
        ran.as_secs_f64(),
        result.duration_seconds,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The result a Job's executor delivered, decoded, and its encoded size.
async fn delivered(s: &JobCluster, job: &Job) -> Result<(ExecutionResult, usize)> {
    let maps: kube::Api<ConfigMap> = s.ns.api();
    let map = maps
        .get(&pangea_operator::backend::job::build::result_name(
            job_name(job),
        ))
        .await?;
    let bytes = map
        .binary_data
        .as_ref()
        .and_then(|d| d.get(pangea_executor::result_codec::RESULT_KEY))
        .context("no delivered result")?;
    Ok((
        pangea_executor::result_codec::decode(&bytes.0)?,
        bytes.0.len(),
    ))
}

fn web() -> String {
    pangea_e2e::fixtures::web_template("10.72.0.0/16", "e2e-faults-web")
}
