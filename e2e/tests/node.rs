//! The harness's node and the executor image, as the Job backend will use them: a real kubelet
//! on containerd/runc runs the locally built images (no registry) in hardened pods, and what
//! the pod did comes back in its termination message (`kubectl logs` cannot reach a node
//! registered with a loopback address).
//!
//! The image has no shell: a small Ruby reporter (Ruby is in the image for the compiler anyway)
//! runs each command directly and writes the outputs, its uid and whether the root filesystem
//! is writable to `/dev/termination-log`.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::PostParams;
use pangea_e2e::{
    ControlPlane, ExecutorVariant, TestNamespace,
    node::pods::{PodOutcome, run_to_completion, wait_for_default_service_account},
    process::is_alive,
};
use serde_json::{Value, json};

/// Pods start slowly on a busy 2-core machine (image unpack, sandbox, CNI).
const POD_TIMEOUT: Duration = Duration::from_secs(180);
const EXECUTOR_UID: i64 = 65532;

const REPORTER: &str = r#"
require "json"
results = JSON.parse(ENV.fetch("COMMANDS")).map do |argv|
  output = IO.popen(argv, err: [:child, :out], &:read)
  { "argv" => argv, "exit" => $?.exitstatus, "output" => output[0, 1500] }
end
rootfs = begin
  File.write("/probe", "x")
  "writable"
rescue SystemCallError => e
  e.class.name
end
mirror = Dir.glob("/usr/share/terraform/providers/**/terraform-provider-*").size
report = { "uid" => Process.uid, "rootfs" => rootfs, "mirror" => mirror, "results" => results }
File.write("/dev/termination-log", JSON.generate(report))
exit(results.all? { |r| r["exit"] == 0 } ? 0 : 1)
"#;

/// A tiny template: no provider, so it compiles and plans anywhere.
const TEMPLATE: &str = r#"
template :node_check do
  resource :terraform_data, :marker do
    input({ purpose: "executor image check", owner: "pangea" })
  end

  output :marker_id do
    value ref(:terraform_data, :marker, :id)
  end
end
"#;

/// A container that runs `commands` through the reporter, hardened as executor pods are.
fn reporter_container(name: &str, image: &str, commands: &[&[&str]]) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["ruby", "-e", REPORTER],
        "env": [{"name": "COMMANDS", "value": serde_json::to_string(commands).unwrap()}],
        "securityContext": {
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "template", "mountPath": "/template", "readOnly": true},
        ],
    })
}

fn hardened_pod(name: &str, containers: Vec<Value>) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": EXECUTOR_UID,
                "runAsGroup": EXECUTOR_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": containers,
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "template", "configMap": {"name": "template", "optional": true}},
            ],
        },
    }))?)
}

/// Each container's report, parsed, by container name.
fn reports(outcome: &PodOutcome, pod: &Pod) -> Result<Vec<(String, Value)>> {
    ensure!(
        outcome.phase == "Succeeded",
        "pod ended {} ({}, exit {}): {}",
        outcome.phase,
        outcome.reason,
        outcome.exit_code,
        outcome.message
    );
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .context("no container statuses")?;
    statuses
        .into_iter()
        .map(|s| {
            let message = s
                .state
                .and_then(|st| st.terminated)
                .and_then(|t| t.message)
                .with_context(|| format!("{}: no termination message", s.name))?;
            let report = serde_json::from_str(&message).with_context(|| {
                format!("{}: termination message is not JSON: {message}", s.name)
            })?;
            Ok((s.name, report))
        })
        .collect()
}

fn output_of<'a>(report: &'a Value, program: &str) -> Result<&'a str> {
    let result = report["results"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["argv"][0] == program))
        .with_context(|| format!("{program} not in report {report}"))?;
    ensure!(result["exit"] == 0, "{program} failed: {result}");
    Ok(result["output"].as_str().unwrap_or_default())
}

fn assert_hardened(name: &str, report: &Value) -> Result<()> {
    ensure!(
        report["uid"] == EXECUTOR_UID,
        "{name} ran as {}",
        report["uid"]
    );
    ensure!(
        report["rootfs"] == "Errno::EROFS",
        "{name}: root filesystem not read-only: {}",
        report["rootfs"]
    );
    Ok(())
}

async fn run_pod(ns: &TestNamespace, pod: Pod) -> Result<(PodOutcome, Pod)> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let outcome = run_to_completion(ns, &pod, POD_TIMEOUT).await?;
    let finished = ns.api::<Pod>().get(&name).await?;
    Ok((outcome, finished))
}

#[tokio::test]
#[ignore = "needs the bootstrapped node (scripts/test.sh runs it)"]
async fn executor_image_runs_its_tools_on_a_real_node() -> Result<()> {
    let cp = ControlPlane::start_with_node().await?;
    let node = cp.node().context("node")?;
    eprintln!("node {} Ready after {:?}", node.name, node.ready_after);
    for pid in node.pids() {
        let addrs = pangea_e2e::sockets::listening_addrs(pid);
        ensure!(
            addrs.iter().all(|a| a.ip().is_loopback()),
            "process {pid} of the node listens beyond loopback: {addrs:?}"
        );
    }
    let ns = cp.namespace("node-tools").await?;
    let versions: &[&[&str]] = &[
        &["pangea-executor", "--version"],
        &["ruby", "--version"],
        &["terraform", "version"],
    ];
    let slim = node.executor_image(ExecutorVariant::Slim)?;
    let full = node.executor_image(ExecutorVariant::Full)?;
    let pod = hardened_pod(
        "versions",
        vec![
            reporter_container("slim", &slim, versions),
            reporter_container("full", &full, versions),
        ],
    )?;
    let (outcome, finished) = run_pod(&ns, pod).await?;
    eprintln!("pod finished after {:?}", outcome.took);
    for (name, report) in reports(&outcome, &finished)? {
        assert_hardened(&name, &report)?;
        let executor = output_of(&report, "pangea-executor")?;
        ensure!(
            executor.contains(env!("CARGO_PKG_VERSION")),
            "{name}: {executor}"
        );
        ensure!(
            output_of(&report, "ruby")?.starts_with("ruby 3."),
            "{name}: {report}"
        );
        let terraform = output_of(&report, "terraform")?;
        ensure!(terraform.starts_with("Terraform v"), "{name}: {terraform}");
        // Only the full image carries the provider mirror, and its terraformrc is valid.
        let mirrored = report["mirror"].as_u64().unwrap_or_default();
        match name.as_str() {
            "full" => ensure!(mirrored > 0 && !terraform.contains("Warning"), "{report}"),
            _ => ensure!(mirrored == 0, "slim image holds providers: {report}"),
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped node (scripts/test.sh runs it)"]
async fn executor_image_compiles_a_template_in_a_hardened_pod() -> Result<()> {
    let cp = ControlPlane::start_with_node().await?;
    let node = cp.node().context("node")?;
    let ns = cp.namespace("node-compile").await?;
    let template: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "template"},
        "data": {"main.rb": TEMPLATE},
    }))?;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &template)
        .await?;
    let image = node.executor_image(ExecutorVariant::Slim)?;
    let compile: &[&[&str]] = &[&[
        "pangea-executor",
        "compile",
        "--no-backend",
        "--format",
        "json",
        "/template/main.rb",
    ]];
    let pod = hardened_pod(
        "compile",
        vec![reporter_container("compile", &image, compile)],
    )?;
    let (outcome, finished) = run_pod(&ns, pod).await?;
    let (_, report) = reports(&outcome, &finished)?
        .pop()
        .context("no container report")?;
    assert_hardened("compile", &report)?;
    let compiled: Value = serde_json::from_str(output_of(&report, "pangea-executor")?)
        .context("compile output is not JSON")?;
    let document = &compiled["templates"]["node_check"];
    ensure!(
        document["resource"]["terraform_data"]["marker"]["input"]["owner"] == "pangea",
        "unexpected compile output: {compiled}"
    );
    ensure!(
        document["output"]["marker_id"]["value"] == "${terraform_data.marker.id}",
        "unexpected compile output: {compiled}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped node (scripts/test.sh runs it)"]
async fn a_stopped_node_leaves_nothing_behind() -> Result<()> {
    let cp = ControlPlane::start_with_node().await?;
    let node = cp.node().context("node")?;
    let ns = cp.namespace("node-stop").await?;
    wait_for_default_service_account(&ns, POD_TIMEOUT).await?;
    // A pod that would run for ten minutes: stopping must not wait for it or leave it behind.
    let image = node.executor_image(ExecutorVariant::Slim)?;
    let mut sleeper = reporter_container("sleeper", &image, &[]);
    sleeper["command"] = json!(["ruby", "-e", "sleep 600"]);
    ns.api::<Pod>()
        .create(
            &PostParams::default(),
            &hardened_pod("sleeper", vec![sleeper])?,
        )
        .await?;
    let start = std::time::Instant::now();
    let containers = loop {
        // The sandbox's pause process and the sleeper's ruby.
        let pids = node.ctr().task_pids()?;
        if pids.len() >= 2 {
            break pids;
        }
        ensure!(
            start.elapsed() < POD_TIMEOUT,
            "sleeper never started: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let processes: Vec<u32> = node.pids().into_iter().chain(containers).collect();
    let (dir, cgroups, bridge) = (
        node.dir().to_path_buf(),
        node.cgroup_dirs().to_vec(),
        node.network.bridge.clone(),
    );
    ensure!(!cgroups.is_empty() && Path::new("/sys/class/net").join(&bridge).exists());
    let stopping = std::time::Instant::now();
    cp.stop();
    eprintln!("node stopped in {:?}", stopping.elapsed());
    let alive: Vec<u32> = processes.into_iter().filter(|p| is_alive(*p)).collect();
    ensure!(alive.is_empty(), "processes still alive: {alive:?}");
    let left: Vec<_> = cgroups.iter().filter(|d| d.exists()).collect();
    ensure!(left.is_empty(), "cgroups left: {left:?}");
    ensure!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "bridge {bridge} left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    ensure!(
        !mounts.contains(&*dir.to_string_lossy()),
        "mounts left below {}",
        dir.display()
    );
    ensure!(!dir.exists(), "{} not removed", dir.display());
    Ok(())
}
