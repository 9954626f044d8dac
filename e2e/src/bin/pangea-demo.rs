//! The demo behind `scripts/demo.sh`: a real control plane with a node, LocalStack, the
//! operator installed with `helm install` of the chart (a pod of its Deployment, leader
//! elected, every execution a Job running the executor image), the templates in
//! `examples/demo/`, then drift made out of band — and what a person sees: `kubectl get pangeatemplates` going Drifted (with severity) and back to
//! Ready, the executor Jobs that did it, and the Events. `--once` exits 0 after one full
//! cycle; otherwise it keeps running until Ctrl-C.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use kube::Api;
use pangea_api::{PangeaTemplate, common::condition};
use pangea_e2e::{
    AwsEmulator, ControlPlane, Toolchain, chart::OPERATOR_NAMESPACE, manifests, operator::metric,
    process::http_get, release,
};

const TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() -> Result<()> {
    let once = std::env::args().any(|a| a == "--once");
    let started = Instant::now();
    say(
        "starting a local control plane (etcd, kube-apiserver, a node: containerd + kubelet) and LocalStack",
    );
    let cp = ControlPlane::start_with_node().await?;
    let aws = AwsEmulator::start()?;
    let ns = cp.namespace("demo").await?;
    say(&format!(
        "helm install pangea-operator deploy/helm/pangea-operator -n {OPERATOR_NAMESPACE} (operator and executor images imported into the node)"
    ));
    let install_started = Instant::now();
    let installed = release::install(&cp, &aws, &ns.name)
        .await
        .context("installing the chart (images: scripts/build-images.sh)")?;
    kubectl(&cp, &["get", "deploy,pods,lease", "-n", OPERATOR_NAMESPACE]);
    let metrics = http_get(installed.metrics_port, "/metrics").unwrap_or_default();
    say(&format!(
        "the operator pod is Ready and {} (pangea_leader {}); values: {}; metrics on http://127.0.0.1:{}/metrics",
        if metric(&metrics, "pangea_leader") >= 1.0 {
            "leads"
        } else {
            "stands by"
        },
        metric(&metrics, "pangea_leader"),
        installed.values.display(),
        installed.metrics_port
    ));
    for file in ["web.yaml", "audit.yaml"] {
        let text = std::fs::read_to_string(examples().join(file))?;
        for obj in manifests::parse_documents(&text)? {
            manifests::create(&cp.client(), &ns.name, &obj).await?;
        }
    }
    let api: Api<PangeaTemplate> = ns.api();
    say("applied examples/demo/web.yaml and audit.yaml; waiting for Ready");
    wait(&api, &cp, &ns.name, |t| {
        is(t, condition::READY, "True") && t.iter().all(checked)
    })
    .await?;
    say(&format!(
        "both templates Ready {:.0}s after helm install",
        install_started.elapsed().as_secs_f64()
    ));

    jobs(&cp, &ns.name);
    say(
        "changing the infrastructure out of band: SSH opened to the world, audit versioning suspended",
    );
    aws.out_of_band(&["open-ingress", "demo-web", "22", "0.0.0.0/0"])?;
    aws.out_of_band(&["suspend-versioning", "demo-audit-logs"])?;
    say("waiting for the next drift checks (interval 1m)");
    wait(&api, &cp, &ns.name, |t| {
        drifted(t, "audit") && (drifted(t, "web") || remediated(t, "web"))
    })
    .await?;
    say(
        "waiting for web to be remediated (remediationPolicy: immediate); audit stays drifted (autoRemediate: false)",
    );
    wait(&api, &cp, &ns.name, |t| {
        remediated(t, "web") && drifted(t, "audit")
    })
    .await?;
    jobs(&cp, &ns.name);
    kubectl(
        &cp,
        &["get", "events", "-n", &ns.name, "--sort-by=.lastTimestamp"],
    );
    kubectl(
        &cp,
        &[
            "get",
            "pangeatemplate",
            "audit",
            "-n",
            &ns.name,
            "-o",
            "jsonpath={.status.drift}",
        ],
    );
    println!();
    say(&format!(
        "one full cycle in {}s",
        started.elapsed().as_secs()
    ));
    if once {
        return Ok(());
    }
    say(&format!(
        "point kubectl at it:  export KUBECONFIG={}  (namespace {}); Ctrl-C stops everything",
        cp.kubeconfig.display(),
        ns.name
    ));
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")
}

/// The executor Jobs run so far (each execution is one; recorded ones stay until their TTL).
fn jobs(cp: &ControlPlane, ns: &str) {
    say("the executor Jobs that ran (one per execution):");
    kubectl(
        cp,
        &[
            "get",
            "jobs",
            "-n",
            ns,
            "--sort-by=.metadata.creationTimestamp",
            "-L",
            "pangea.io/template,pangea.io/kind",
        ],
    );
}

fn say(text: &str) {
    println!("\n==> {text}");
}

fn kubectl(cp: &ControlPlane, args: &[&str]) {
    let Ok(tools) = Toolchain::load() else { return };
    let _ = std::process::Command::new(&tools.kubectl)
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .status();
}

/// Prints `kubectl get pangeatemplates` whenever a condition or severity changes, until
/// `done` holds.
async fn wait(
    api: &Api<PangeaTemplate>,
    cp: &ControlPlane,
    ns: &str,
    done: impl Fn(&[PangeaTemplate]) -> bool,
) -> Result<()> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let templates = api.list(&Default::default()).await?.items;
        let key = shown_state(&templates);
        if key != last {
            print!("{}", table(cp, ns));
            last = key;
        }
        if !templates.is_empty() && done(&templates) {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            bail!("gave up after {}s", TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// What the table shows, without the ever-changing ages.
fn shown_state(templates: &[PangeaTemplate]) -> String {
    templates
        .iter()
        .map(|t| {
            let severity = t
                .status
                .as_ref()
                .and_then(|s| s.drift.as_ref())
                .and_then(|d| d.severity);
            let conditions = [condition::READY, condition::DRIFTED, condition::RECONCILING]
                .map(|c| pangea_e2e::condition_status(t, c).unwrap_or("-"));
            format!("{:?}{conditions:?}{severity:?}", t.metadata.name)
        })
        .collect()
}

fn table(cp: &ControlPlane, ns: &str) -> String {
    let Ok(tools) = Toolchain::load() else {
        return String::new();
    };
    std::process::Command::new(&tools.kubectl)
        .args(["get", "pangeatemplates", "-n", ns])
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn find<'a>(templates: &'a [PangeaTemplate], name: &str) -> Option<&'a PangeaTemplate> {
    templates
        .iter()
        .find(|t| t.metadata.name.as_deref() == Some(name))
}

fn is(templates: &[PangeaTemplate], type_: &str, value: &str) -> bool {
    templates
        .iter()
        .all(|t| pangea_e2e::condition_status(t, type_) == Some(value))
}

fn checked(t: &PangeaTemplate) -> bool {
    t.status
        .as_ref()
        .and_then(|s| s.drift.as_ref())
        .is_some_and(|d| d.last_check_time.is_some())
}

fn drifted(templates: &[PangeaTemplate], name: &str) -> bool {
    find(templates, name)
        .is_some_and(|t| pangea_e2e::condition_status(t, condition::DRIFTED) == Some("True"))
}

fn remediated(templates: &[PangeaTemplate], name: &str) -> bool {
    find(templates, name).is_some_and(|t| {
        let history = t
            .status
            .as_ref()
            .and_then(|s| s.drift.as_ref())
            .map(|d| d.history.clone())
            .unwrap_or_default();
        pangea_e2e::condition_status(t, condition::READY) == Some("True")
            && pangea_e2e::condition_status(t, condition::DRIFTED) == Some("False")
            && history
                .iter()
                .any(|h| h.resolution.as_deref() == Some("remediated"))
    })
}
