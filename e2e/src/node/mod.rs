//! A real node for the control plane: containerd + runc + CNI bridge, kubelet,
//! kube-controller-manager and kube-scheduler, with the harness's images imported (no
//! registry). Opt-in through [`ControlPlane::start_with_node`], so tests that need no pods stay
//! as fast as before. Every process binds loopback only and is stopped by PID; dropping the
//! node deletes its pods through the kubelet first, so mounts, network namespaces and cgroups
//! are released the way they were made, then removes what is left by this node's own names.

mod containerd;
mod controllers;
pub(crate) mod host;
mod kubelet;
pub mod pods;

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;

pub use self::containerd::{ContainerdPaths, Ctr, PodNetwork};
use self::{host::CgroupRoot, kubelet::KubeletSpec};
use crate::{
    ControlPlane, Error, Result, Toolchain,
    images::{Image, Images},
    process::{ManagedProcess, free_port},
};

/// How long a component may take to come up on a busy 2-core machine.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the kubelet gets to stop the pods when the node goes away.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Binaries the node runs, recorded by `scripts/bootstrap.sh` in `$PANGEA_CACHE_DIR/env`.
#[derive(Clone, Debug)]
pub struct NodeTools {
    /// kubelet, built from the same Kubernetes module as the apiserver.
    pub kubelet: PathBuf,
    /// kube-controller-manager.
    pub kube_controller_manager: PathBuf,
    /// kube-scheduler.
    pub kube_scheduler: PathBuf,
    /// containerd (Debian).
    pub containerd: PathBuf,
    /// ctr, containerd's client.
    pub ctr: PathBuf,
    /// runc (Debian).
    pub runc: PathBuf,
    /// Directory of the CNI plugins (Debian's containernetworking-plugins).
    pub cni_bin_dir: PathBuf,
    /// kubectl, to drain the node from a synchronous drop.
    pub kubectl: PathBuf,
}

impl NodeTools {
    /// Reads the node's tools from the bootstrap's env file; each missing one is named.
    pub fn load(tools: &Toolchain) -> Result<Self> {
        Ok(Self {
            kubelet: tools.required("PANGEA_KUBELET")?,
            kube_controller_manager: tools.required("PANGEA_KUBE_CONTROLLER_MANAGER")?,
            kube_scheduler: tools.required("PANGEA_KUBE_SCHEDULER")?,
            containerd: tools.required("PANGEA_CONTAINERD")?,
            ctr: tools.required("PANGEA_CTR")?,
            runc: tools.required("PANGEA_RUNC")?,
            cni_bin_dir: tools.required("PANGEA_CNI_BIN_DIR")?,
            kubectl: tools.kubectl.clone(),
        })
    }
}

/// A running node registered with a control plane. Drop it before the control plane (the
/// control plane holds it in a field declared first).
pub struct Node {
    /// Node name.
    pub name: String,
    /// Images imported into its containerd.
    pub images: Images,
    /// Time from starting containerd to the Node being Ready (images imported on the way).
    pub ready_after: Duration,
    /// The pod network (bridge and subnet) of this node.
    pub network: PodNetwork,
    // Stopped explicitly, in this order, by `teardown`.
    scheduler: ManagedProcess,
    controller_manager: ManagedProcess,
    kubelet: ManagedProcess,
    containerd: ManagedProcess,
    ctr: Ctr,
    paths: ContainerdPaths,
    cgroups: CgroupRoot,
    tools: NodeTools,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    torn_down: bool,
}

impl Node {
    /// Builds the images if needed, starts the node's processes, imports the images and
    /// waits for the Node to be Ready. Errors carry the reason and the components' logs.
    pub async fn start(plane: &ControlPlane) -> Result<Self> {
        let tools = Toolchain::load()?;
        let node_tools = NodeTools::load(&tools)?;
        let images = tokio::task::spawn_blocking({
            let tools = tools.clone();
            move || Images::ensure(&tools)
        })
        .await
        .map_err(|e| Error::Images(e.to_string()))??;
        // A short directory name: the containerd socket path must fit in 108 bytes.
        let dir = tools.run_dir("n-")?;
        let seed = unique_seed();
        let name = format!("pangea-node-{seed:x}");
        let network = PodNetwork::for_seed(seed);
        let paths = ContainerdPaths::under(dir.path());
        let started = Instant::now();
        let cgroups = CgroupRoot::create(&name)?;
        let containerd = containerd::start(&node_tools, dir.path(), &paths, &network)?;
        let ctr = Ctr::new(&node_tools, &paths);
        import_images(&ctr, &images.all)?;
        let spec = KubeletSpec {
            node_name: &name,
            cgroup_root: &cgroups.name,
            port: free_port()?,
            healthz_port: free_port()?,
        };
        let kubelet = kubelet::start(&node_tools, plane, dir.path(), &paths, &spec)?;
        let controller_manager =
            controllers::start_controller_manager(&node_tools, plane, dir.path())?;
        let scheduler = controllers::start_scheduler(&node_tools, plane, dir.path())?;
        let mut node = Self {
            name,
            images,
            ready_after: Duration::ZERO,
            network,
            scheduler,
            controller_manager,
            kubelet,
            containerd,
            ctr,
            paths,
            cgroups,
            tools: node_tools,
            kubeconfig: plane.kubeconfig.clone(),
            dir,
            torn_down: false,
        };
        node.wait_ready(plane).await?;
        node.ready_after = started.elapsed();
        tracing::info!(node = %node.name, ready_ms = node.ready_after.as_millis() as u64, "node ready");
        Ok(node)
    }

    /// PIDs of the node's processes (each leads its own process group).
    pub fn pids(&self) -> Vec<u32> {
        [
            &self.scheduler,
            &self.controller_manager,
            &self.kubelet,
            &self.containerd,
        ]
        .iter()
        .map(|p| p.pid())
        .collect()
    }

    /// Scratch directory of this node (configs, logs, containerd and kubelet state), removed
    /// when it stops.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Its cgroup root in every hierarchy (removed when it stops).
    pub fn cgroup_dirs(&self) -> &[PathBuf] {
        self.cgroups.dirs()
    }

    /// `ctr` bound to this node's containerd (CRI namespace).
    pub fn ctr(&self) -> &Ctr {
        &self.ctr
    }

    /// The image reference of the executor `variant` imported into this node.
    pub fn executor_image(&self, variant: crate::images::ExecutorVariant) -> Result<String> {
        Ok(self.images.executor(variant)?.reference.clone())
    }

    /// The reference of the operator image imported into this node.
    pub fn operator_image(&self) -> Result<String> {
        Ok(self.images.operator()?.reference.clone())
    }

    async fn wait_ready(&mut self, plane: &ControlPlane) -> Result<()> {
        let nodes: Api<NodeObject> = Api::all(plane.client());
        let start = Instant::now();
        loop {
            if let Ok(Some(node)) = nodes.get_opt(&self.name).await
                && is_ready(&node)
            {
                return Ok(());
            }
            let dead = self.first_dead_component();
            if dead.is_some() || start.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    name: format!("node {} ({})", self.name, dead.unwrap_or("timeout")),
                    seconds: start.elapsed().as_secs(),
                    log_tail: self.log_tails(25),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn first_dead_component(&mut self) -> Option<&'static str> {
        [
            (self.containerd.is_running(), "containerd exited"),
            (self.kubelet.is_running(), "kubelet exited"),
            (
                self.controller_manager.is_running(),
                "kube-controller-manager exited",
            ),
            (self.scheduler.is_running(), "kube-scheduler exited"),
        ]
        .into_iter()
        .find_map(|(running, what)| (!running).then_some(what))
    }

    /// The last lines of every component's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        [
            &self.containerd,
            &self.kubelet,
            &self.controller_manager,
            &self.scheduler,
        ]
        .iter()
        .map(|p| {
            format!(
                "--- {} ---\n{}",
                p.name(),
                shorten_lines(&p.log_tail(lines))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// Stops everything (also done on drop): controllers first so nothing is recreated, then
    /// the pods through the kubelet, then the kubelet and containerd, then what is left.
    pub fn teardown(&mut self) {
        if std::mem::replace(&mut self.torn_down, true) {
            return;
        }
        self.scheduler.stop();
        self.controller_manager.stop();
        self.drain_pods();
        self.kubelet.stop();
        self.containerd.stop();
        let shims = host::kill_shims(&self.paths.socket);
        let mounts = host::unmount_below(self.dir.path());
        host::delete_link(&self.network.bridge);
        self.cgroups.remove();
        tracing::debug!(node = %self.name, shims, mounts, "node torn down");
    }

    /// Deletes every pod and waits (bounded) until containerd runs no task: the kubelet then
    /// has torn down their sandboxes, volumes and network.
    fn drain_pods(&mut self) {
        let deleted = Command::new(&self.tools.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["delete", "pods", "--all", "--all-namespaces", "--force"])
            .args(["--grace-period=0", "--wait=false", "--request-timeout=20s"])
            .output();
        if !matches!(&deleted, Ok(o) if o.status.success()) {
            tracing::warn!(node = %self.name, "could not delete the node's pods");
            return;
        }
        let start = Instant::now();
        while start.elapsed() < DRAIN_TIMEOUT && self.kubelet.is_running() {
            match self.ctr.task_ids() {
                Ok(tasks) if tasks.is_empty() => return,
                Err(_) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        tracing::warn!(node = %self.name, "pods still running after the drain timeout");
    }
}

impl Drop for Node {
    /// Each component prints its own log when the test panics (`ManagedProcess`).
    fn drop(&mut self) {
        self.teardown();
    }
}

fn import_images(ctr: &Ctr, images: &[Image]) -> Result<()> {
    for image in images {
        ctr.import(&image.archive)?;
    }
    let present = ctr.image_refs()?;
    match images.iter().find(|i| !present.contains(&i.reference)) {
        Some(missing) => Err(Error::Node(format!(
            "{} not in containerd after importing {} (have: {})",
            missing.reference,
            missing.archive.display(),
            present.join(", ")
        ))),
        None => Ok(()),
    }
}

/// containerd logs its whole configuration on one line of several kilobytes: cut long lines so
/// a failure message stays readable.
fn shorten_lines(text: &str) -> String {
    const MAX: usize = 400;
    text.lines()
        .map(|line| match line.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{} […]", &line[..cut]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ready(node: &NodeObject) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A number unique among nodes (and podmans) on this machine right now: process id and a
/// clock tick.
pub(crate) fn unique_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (std::process::id() << 12) ^ (nanos >> 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_log_lines_are_cut_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let short = shorten_lines(&format!("ok\n{long}"));
        let lines: Vec<&str> = short.lines().collect();
        assert_eq!(lines[0], "ok");
        assert_eq!(lines[1].chars().count(), 400 + " […]".chars().count());
    }
}
