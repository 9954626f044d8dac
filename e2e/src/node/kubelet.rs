//! The kubelet of the harness's node: loopback only, cgroupfs under a cgroup root of its own
//! (so nodes of parallel runs do not share `/kubepods`), every directory in the run dir, lax
//! eviction so a busy shared disk never evicts test pods.

use std::{path::Path, process::Command, time::Duration};

use super::{NodeTools, containerd::ContainerdPaths};
use crate::{ControlPlane, Result, io_err, process::ManagedProcess};

/// What the kubelet needs to know about its node.
pub struct KubeletSpec<'a> {
    /// Node name (also the hostname the kubelet reports).
    pub node_name: &'a str,
    /// Cgroup under which the kubelet creates `kubepods`.
    pub cgroup_root: &'a str,
    /// Port of the kubelet's HTTPS API on 127.0.0.1.
    pub port: u16,
    /// Port of its healthz endpoint on 127.0.0.1.
    pub healthz_port: u16,
}

/// Writes the kubelet configuration and starts the kubelet.
pub fn start(
    tools: &NodeTools,
    plane: &ControlPlane,
    dir: &Path,
    containerd: &ContainerdPaths,
    spec: &KubeletSpec<'_>,
) -> Result<ManagedProcess> {
    let root = dir.join("kubelet");
    for sub in ["root", "certs", "logs", "volume-plugins"] {
        std::fs::create_dir_all(root.join(sub)).map_err(io_err("creating kubelet dirs"))?;
    }
    let config = root.join("config.yaml");
    std::fs::write(&config, config_yaml(plane, &root, containerd, spec))
        .map_err(io_err("writing kubelet config"))?;
    let mut cmd = Command::new(&tools.kubelet);
    cmd.arg(format!("--config={}", config.display()))
        .arg(format!("--kubeconfig={}", plane.kubeconfig.display()))
        .arg(format!("--root-dir={}", root.join("root").display()))
        .arg(format!("--cert-dir={}", root.join("certs").display()))
        .arg(format!("--hostname-override={}", spec.node_name))
        .arg("--node-ip=127.0.0.1")
        .arg("--v=1");
    ManagedProcess::spawn(
        "kubelet",
        cmd,
        &dir.join("kubelet.log"),
        Duration::from_secs(10),
    )
}

fn config_yaml(
    plane: &ControlPlane,
    root: &Path,
    containerd: &ContainerdPaths,
    spec: &KubeletSpec<'_>,
) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
# This machine runs cgroup v1 (hybrid); the kubelet refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://{socket}
podLogsDir: {logs}
volumePluginDir: {plugins}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
failSwapOn: false
localStorageCapacityIsolation: false
# The disk is shared with other builds: never evict test pods or collect their images.
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
shutdownGracePeriod: 0s
resolvConf: /etc/resolv.conf
"#,
        port = spec.port,
        healthz = spec.healthz_port,
        cgroup_root = spec.cgroup_root,
        socket = containerd.socket.display(),
        logs = root.join("logs").display(),
        plugins = root.join("volume-plugins").display(),
        ca = plane.pki.ca_cert.display(),
    )
}
