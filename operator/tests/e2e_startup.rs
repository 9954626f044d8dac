//! How the operator starts against a real kube-apiserver: it refuses to run on a port it
//! cannot bind or without its CRDs, with a message that says which. Ignored by a plain
//! `cargo test` (they need the bootstrapped harness); `scripts/test.sh` runs them.

use std::{
    net::TcpListener,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use anyhow::Result;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, CustomResourceExt, runtime::wait::await_condition};
use pangea_api::PangeaTemplate;
use pangea_e2e::ControlPlane;

/// Runs the operator until it exits on its own (it must: each case is a start-up failure).
fn run_operator(cp: &ControlPlane, metrics_addr: &str, state: &Path) -> Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pangea-operator"))
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .arg("--metrics-addr")
        .arg(metrics_addr)
        .arg("--state-dir")
        .arg(state)
        .args(["--crd-wait-seconds", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Bounded: start-up gives up after 3 s of CRD wait; allow a busy machine ample time.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            child.kill()?;
            let out = child.wait_with_output()?;
            anyhow::bail!(
                "the operator did not exit: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(child.wait_with_output()?)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness (kube-apiserver): scripts/test.sh runs it"]
async fn a_taken_metrics_port_stops_start_up_with_the_address() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let state = tempfile::tempdir()?;
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let out = tokio::task::block_in_place(|| run_operator(&cp, &addr, state.path()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("binding {addr}")), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness (kube-apiserver): scripts/test.sh runs it"]
async fn missing_crds_stop_start_up_with_their_name() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client());
    let name = PangeaTemplate::crd_name();
    crds.delete(name, &Default::default()).await?;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(
            crds.clone(),
            name,
            kube::runtime::wait::conditions::is_deleted(""),
        ),
    )
    .await??;
    // Gone for every reader, not just the watch that saw the deletion.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while crds.get_opt(name).await?.is_some() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{name} was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let state = tempfile::tempdir()?;
    let port = pangea_e2e::process::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let out = tokio::task::block_in_place(|| run_operator(&cp, &addr, state.path()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("CRD pangeatemplates.pangea.io is not established"),
        "{stderr}"
    );
    Ok(())
}
