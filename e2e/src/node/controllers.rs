//! kube-controller-manager and kube-scheduler for the node: without them no Job makes a pod,
//! no pod is bound and no namespace gets its `default` service account. Both use the control
//! plane's admin kubeconfig and PKI and serve only on loopback.

use std::{path::Path, process::Command, time::Duration};

use super::NodeTools;
use crate::{
    ControlPlane, Result, io_err,
    process::{ManagedProcess, free_port},
};

/// Starts kube-controller-manager: every controller except node IPAM (the node's pod CIDR
/// comes from its own CNI configuration, not from the cluster).
pub fn start_controller_manager(
    tools: &NodeTools,
    plane: &ControlPlane,
    dir: &Path,
) -> Result<ManagedProcess> {
    let mut cmd = Command::new(&tools.kube_controller_manager);
    cmd.arg("--controllers=*,-nodeipam")
        .arg("--use-service-account-credentials=false")
        .arg(format!(
            "--service-account-private-key-file={}",
            plane.pki.service_account_key.display()
        ))
        .arg(format!("--root-ca-file={}", plane.pki.ca_cert.display()));
    spawn("kube-controller-manager", cmd, plane, dir)
}

/// Starts kube-scheduler.
pub fn start_scheduler(
    tools: &NodeTools,
    plane: &ControlPlane,
    dir: &Path,
) -> Result<ManagedProcess> {
    spawn(
        "kube-scheduler",
        Command::new(&tools.kube_scheduler),
        plane,
        dir,
    )
}

/// The flags both share: admin kubeconfig, no leader election (one instance), HTTPS on a free
/// loopback port with a self-signed certificate in the run dir.
fn spawn(name: &str, mut cmd: Command, plane: &ControlPlane, dir: &Path) -> Result<ManagedProcess> {
    let certs = dir.join(format!("{name}-certs"));
    std::fs::create_dir_all(&certs).map_err(io_err(format!("creating {}", certs.display())))?;
    cmd.arg(format!("--kubeconfig={}", plane.kubeconfig.display()))
        .arg("--leader-elect=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()?))
        .arg(format!("--cert-dir={}", certs.display()))
        .arg("--profiling=false");
    ManagedProcess::spawn(
        name,
        cmd,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(10),
    )
}
