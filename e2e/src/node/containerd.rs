//! The node's container runtime: Debian's containerd with its own root, state, socket and CNI
//! configuration (nothing of the machine's default paths), and images imported from OCI
//! archives because there is no registry.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use super::{NodeTools, READY_TIMEOUT};
use crate::{Error, Result, images::PAUSE_IMAGE, io_err, process::ManagedProcess};

/// containerd namespace the CRI plugin (and so the kubelet) uses.
pub const K8S_NAMESPACE: &str = "k8s.io";

/// Where one containerd keeps everything.
#[derive(Clone, Debug)]
pub struct ContainerdPaths {
    /// gRPC socket (the kubelet's runtime endpoint).
    pub socket: PathBuf,
    /// Persistent data (content store, snapshots).
    pub root: PathBuf,
    /// Runtime state (tasks, shim sockets).
    pub state: PathBuf,
    /// CNI configuration directory.
    pub cni_conf_dir: PathBuf,
    /// host-local IPAM allocations.
    pub cni_data_dir: PathBuf,
}

impl ContainerdPaths {
    /// Paths under `dir`. The socket path must stay short (108-byte limit of unix sockets).
    pub fn under(dir: &Path) -> Self {
        Self {
            socket: dir.join("containerd.sock"),
            root: dir.join("containerd/root"),
            state: dir.join("containerd/state"),
            cni_conf_dir: dir.join("cni/net.d"),
            cni_data_dir: dir.join("cni/ipam"),
        }
    }
}

/// The pod network of one node: a bridge of its own, so nodes of parallel runs do not share
/// addresses; no masquerading (nothing here may touch the machine's firewall).
#[derive(Clone, Debug)]
pub struct PodNetwork {
    /// Linux bridge name (≤ 15 bytes).
    pub bridge: String,
    /// Pod subnet, a /24.
    pub subnet: String,
}

impl PodNetwork {
    /// A bridge and /24 derived from `seed` (the node's unique number).
    pub fn for_seed(seed: u32) -> Self {
        Self {
            bridge: format!("pgn{:x}", seed % 0xff_ffff),
            subnet: format!("10.{}.{}.0/24", 200 + (seed / 256) % 50, seed % 256),
        }
    }
}

/// Writes the configuration and starts containerd; ready once its socket answers `ctr version`.
pub fn start(
    tools: &NodeTools,
    dir: &Path,
    paths: &ContainerdPaths,
    network: &PodNetwork,
) -> Result<ManagedProcess> {
    for d in [
        &paths.root,
        &paths.state,
        &paths.cni_conf_dir,
        &paths.cni_data_dir,
    ] {
        std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
    }
    write_cni_config(paths, network)?;
    let config = dir.join("containerd.toml");
    std::fs::write(&config, config_toml(tools, paths))
        .map_err(io_err("writing containerd config"))?;
    let mut cmd = Command::new(&tools.containerd);
    cmd.arg("--config").arg(&config);
    // The shim and runc are found on PATH, next to containerd.
    let mut process = ManagedProcess::spawn(
        "containerd",
        cmd,
        &dir.join("containerd.log"),
        Duration::from_secs(10),
    )?;
    let ctr = Ctr::new(tools, paths);
    process.wait_ready(READY_TIMEOUT, || ctr.run(&["version"]).is_ok())?;
    Ok(process)
}

fn config_toml(tools: &NodeTools, paths: &ContainerdPaths) -> String {
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
# Plugins that would write outside root/state or need kernel features this node does not use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # Without it runc fails: "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Pod network namespaces live below our state dir, not in the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
"#,
        root = paths.root.display(),
        state = paths.state.display(),
        socket = paths.socket.display(),
        pause = PAUSE_IMAGE,
        runc = tools.runc.display(),
        cni_bin = tools.cni_bin_dir.display(),
        cni_conf = paths.cni_conf_dir.display(),
    )
}

fn write_cni_config(paths: &ContainerdPaths, network: &PodNetwork) -> Result<()> {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "pangea-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.subnet}]],
                    "dataDir": paths.cni_data_dir,
                },
            },
            {"type": "loopback"},
        ],
    });
    let path = paths.cni_conf_dir.join("10-pangea.conflist");
    std::fs::write(&path, conf.to_string()).map_err(io_err("writing CNI config"))
}

/// `ctr` bound to one containerd and the CRI namespace.
pub struct Ctr {
    binary: PathBuf,
    socket: PathBuf,
}

impl Ctr {
    /// For the containerd at `paths.socket`.
    pub fn new(tools: &NodeTools, paths: &ContainerdPaths) -> Self {
        Self {
            binary: tools.ctr.clone(),
            socket: paths.socket.clone(),
        }
    }

    /// Runs `ctr --address SOCK --namespace k8s.io ARGS`, returning stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = Command::new(&self.binary)
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", K8S_NAMESPACE])
            .args(args)
            .output()
            .map_err(io_err("running ctr"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(Error::Node(format!(
                "ctr {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Imports an OCI archive (unpacked for the overlayfs snapshotter, as the CRI needs).
    pub fn import(&self, archive: &Path) -> Result<()> {
        let archive = archive.to_string_lossy();
        self.run(&["images", "import", "--snapshotter", "overlayfs", &archive])
            .map(drop)
    }

    /// References of the images in the CRI namespace.
    pub fn image_refs(&self) -> Result<Vec<String>> {
        Ok(self
            .run(&["images", "list", "--quiet"])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// IDs of running tasks (containers with a live process).
    pub fn task_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .run(&["tasks", "list", "--quiet"])?
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// SIGKILL to the main process of container `id` (a pod's `containerID` without its
    /// `containerd://` prefix): the container dies with everything in it, as on a crash.
    pub fn kill_task(&self, id: &str) -> Result<()> {
        self.run(&["tasks", "kill", "--signal", "SIGKILL", id])
            .map(|_| ())
    }

    /// Host PIDs of the tasks' main processes.
    pub fn task_pids(&self) -> Result<Vec<u32>> {
        // `TASK PID STATUS` with a header line.
        Ok(self
            .run(&["tasks", "list"])?
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_networks_of_different_seeds_differ_and_fit_linux_limits() {
        let a = PodNetwork::for_seed(0x1234_5678);
        let b = PodNetwork::for_seed(0x1234_5679);
        assert_ne!(a.bridge, b.bridge);
        assert_ne!(a.subnet, b.subnet);
        assert!(a.bridge.len() <= 15, "{}", a.bridge);
        assert!(a.subnet.starts_with("10.2"), "{}", a.subnet);
    }
}
