//! A Docker-compatible API for tests that run our images outside Kubernetes: Debian's podman
//! serving `podman system service` on a unix socket of its own, with its own configuration,
//! storage, locks and cgroup parent under one run directory (nothing of the machine's default
//! paths), the images of `scripts/build-images.sh` copied in from their OCI layouts with skopeo
//! (there is no registry). Stopped by PID on drop, its containers, mounts and cgroups with it.
//!
//! testcontainers reads `DOCKER_HOST` from the process environment, once, and setting a
//! variable of the running test process takes `unsafe` (edition 2024), which this workspace
//! forbids. So a test owns podman here and runs its body again in a child process of the test
//! binary whose environment points at the socket ([`Podman::run_test_in_child`]); the child
//! finds it with [`PodmanClient::from_env`].

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    Error, Result, Toolchain,
    images::Image,
    io_err,
    node::host::{CgroupRoot, unmount_below},
    process::{ManagedProcess, tail},
};

/// How long the service may take to answer on a busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Variable naming the cgroup parent in a child's environment; with `DOCKER_HOST` it marks
/// a process started by [`Podman::run_test_in_child`].
const CGROUP_PARENT_ENV: &str = "PANGEA_PODMAN_CGROUP_PARENT";

/// The podman binaries recorded by `scripts/bootstrap.sh`.
#[derive(Clone, Debug)]
struct PodmanTools {
    podman: PathBuf,
    skopeo: PathBuf,
}

/// Where one podman keeps everything, all below its run directory.
#[derive(Clone, Debug)]
struct PodmanPaths {
    socket: PathBuf,
    containers_conf: PathBuf,
    storage_conf: PathBuf,
    graph_root: PathBuf,
    run_root: PathBuf,
}

impl PodmanPaths {
    /// Paths under `dir`; the socket path must stay short (108-byte limit of unix sockets).
    fn under(dir: &Path) -> Self {
        Self {
            socket: dir.join("podman.sock"),
            containers_conf: dir.join("containers.conf"),
            storage_conf: dir.join("storage.conf"),
            graph_root: dir.join("storage/graph"),
            run_root: dir.join("storage/run"),
        }
    }

    /// skopeo's destination for `reference` in exactly this store.
    fn storage_reference(&self, reference: &str) -> String {
        format!(
            "containers-storage:[overlay@{}+{}]{reference}",
            self.graph_root.display(),
            self.run_root.display()
        )
    }
}

/// A running `podman system service`.
pub struct Podman {
    service: ManagedProcess,
    paths: PodmanPaths,
    tools: PodmanTools,
    cgroups: CgroupRoot,
    dir: tempfile::TempDir,
    stopped: bool,
}

impl Podman {
    /// Writes the configuration and starts the service; ready once the socket answers
    /// `/_ping`.
    pub fn start() -> Result<Self> {
        let toolchain = Toolchain::load()?;
        let tools = PodmanTools {
            podman: toolchain.required("PANGEA_PODMAN")?,
            skopeo: toolchain.required("PANGEA_SKOPEO")?,
        };
        let dir = toolchain.run_dir("p-")?;
        let paths = PodmanPaths::under(dir.path());
        write_config(dir.path(), &paths)?;
        let cgroups =
            CgroupRoot::create(&format!("pangea-podman-{:x}", crate::node::unique_seed()))?;
        let mut cmd = tools.command(&paths);
        // info: one line per API request in the log, shown when a test fails.
        cmd.args(["--log-level=info", "system", "service", "--time=0"])
            .arg(format!("unix://{}", paths.socket.display()));
        let mut service = ManagedProcess::spawn(
            "podman",
            cmd,
            &dir.path().join("podman.log"),
            Duration::from_secs(10),
        )?;
        let ready_after = service.wait_ready(READY_TIMEOUT, || ping(&paths.socket))?;
        tracing::info!(ready_ms = ready_after.as_millis() as u64, "podman ready");
        Ok(Self {
            service,
            paths,
            tools,
            cgroups,
            dir,
            stopped: false,
        })
    }

    /// `DOCKER_HOST` value for clients of this service.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.paths.socket.display())
    }

    /// Cgroup parent (`HostConfig.CgroupParent`) for containers, removed with the service:
    /// without it podman's cgroupfs manager puts them under a machine-wide `/libpod_parent`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroups.name
    }

    /// Scratch directory (configuration, storage, logs), removed when the service stops.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PID of the service (it leads its own process group).
    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    /// Copies `image` from the OCI layout `scripts/build-images.sh` built into this podman's
    /// storage, under the same reference.
    pub fn import(&self, image: &Image) -> Result<()> {
        let (layout, tag) = image.oci_layout()?;
        let mut skopeo = Command::new(&self.tools.skopeo);
        let output = self
            .tools
            .env(&mut skopeo, &self.paths)
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(self.paths.storage_reference(&image.reference))
            .output()
            .map_err(io_err("running skopeo"))?;
        if !output.status.success() {
            return Err(Error::Podman(format!(
                "importing {}: {}",
                image.reference,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Runs test `test` of the current test binary again in a child process whose environment
    /// names this service (`DOCKER_HOST`) and [`Podman::cgroup_parent`]. Returns the child's
    /// output when it passed; otherwise, or after `timeout`, an error carrying that output.
    /// The timeout is a backstop: the child is killed then, but servers it started in process
    /// groups of their own (the emulator) are not, so the child's own deadlines must be shorter.
    pub fn run_test_in_child(&self, test: &str, timeout: Duration) -> Result<String> {
        let binary = std::env::current_exe().map_err(io_err("finding the test binary"))?;
        let mut cmd = Command::new(binary);
        cmd.args([test, "--exact", "--include-ignored", "--nocapture"])
            .env("DOCKER_HOST", self.docker_host())
            .env(CGROUP_PARENT_ENV, self.cgroup_parent());
        let log = self.dir.path().join("child.log");
        let mut child = ManagedProcess::spawn(test, cmd, &log, Duration::from_secs(5))?;
        let status = child.wait_exit(timeout);
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Ok(status) if status.success() => Ok(output),
            Ok(status) => Err(Error::Podman(format!(
                "{test} failed in its child process ({status}):\n{output}"
            ))),
            Err(err) => Err(Error::Podman(format!("{test}: {err}:\n{output}"))),
        }
    }

    /// Removes every container, stops the service and releases what it left on the machine
    /// (also done on drop). Idempotent.
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // Containers outlive the service (their conmon daemonizes, out of its process group):
        // remove them first, through the storage directly rather than the socket.
        let removed = self
            .tools
            .command(&self.paths)
            .args(["rm", "--all", "--force", "--time", "0"])
            .output();
        if let Ok(out) = removed
            && !out.status.success()
        {
            tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr), "podman rm");
        }
        self.service.stop();
        unmount_below(self.dir.path());
        self.cgroups.remove();
    }

    /// The last lines of the service's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(self.service.log_path(), lines)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PodmanTools {
    /// `podman` bound to this configuration.
    fn command(&self, paths: &PodmanPaths) -> Command {
        let mut cmd = Command::new(&self.podman);
        self.env(&mut cmd, paths);
        cmd
    }

    /// Points podman and skopeo (containers/common, containers/storage) at our files.
    fn env<'a>(&self, cmd: &'a mut Command, paths: &PodmanPaths) -> &'a mut Command {
        cmd.env("CONTAINERS_CONF", &paths.containers_conf)
            .env("CONTAINERS_STORAGE_CONF", &paths.storage_conf)
    }
}

/// What a test process started by [`Podman::run_test_in_child`] needs to use that podman.
#[derive(Clone, Debug)]
pub struct PodmanClient {
    /// `DOCKER_HOST` (testcontainers reads it from the environment itself).
    pub docker_host: String,
    /// Cgroup parent for its containers.
    pub cgroup_parent: String,
}

impl PodmanClient {
    /// Present only in a child started by [`Podman::run_test_in_child`].
    pub fn from_env() -> Option<Self> {
        Some(Self {
            docker_host: std::env::var("DOCKER_HOST").ok()?,
            cgroup_parent: std::env::var(CGROUP_PARENT_ENV).ok()?,
        })
    }
}

fn write_config(dir: &Path, paths: &PodmanPaths) -> Result<()> {
    let copy_dir = dir.join("copy-tmp");
    std::fs::create_dir_all(&copy_dir).map_err(io_err("creating podman dirs"))?;
    std::fs::write(&paths.storage_conf, storage_conf(paths))
        .map_err(io_err("writing storage.conf"))?;
    std::fs::write(&paths.containers_conf, containers_conf(dir, &copy_dir))
        .map_err(io_err("writing containers.conf"))
}

fn storage_conf(paths: &PodmanPaths) -> String {
    format!(
        "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
        paths.graph_root.display(),
        paths.run_root.display()
    )
}

fn containers_conf(dir: &Path, copy_dir: &Path) -> String {
    format!(
        r#"[containers]
# Without it podman raises nofile above the hard limit it runs under: runc's setrlimit fails.
default_ulimits = []
# conmon would otherwise get a cgroup in the machine-wide /libpod_parent.
cgroups = "no-conmon"

[engine]
# No systemd here, and cgroup v1 hybrid: crun refuses it, runc runs it.
cgroup_manager = "cgroupfs"
runtime = "runc"
# No journald.
events_logger = "file"
# File locks below tmp_dir instead of one /dev/shm segment shared by every podman.
lock_type = "file"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{copy}"

[network]
# netavark is not installed; the CNI configuration must not be the machine's /etc/cni.
network_backend = "cni"
network_config_dir = "{cni}"
"#,
        tmp = dir.join("tmp").display(),
        copy = copy_dir.display(),
        cni = dir.join("cni").display(),
    )
}

/// Whether the Docker API on `socket` answers `GET /_ping` with 200.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    let n = stream.read(&mut head).unwrap_or(0);
    String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .nth(1)
        == Some("200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_podman_writes_is_below_its_directory() {
        let dir = Path::new("/cache/runs/p-1");
        let paths = PodmanPaths::under(dir);
        let conf = containers_conf(dir, &dir.join("copy-tmp"));
        let storage = storage_conf(&paths);
        for text in [&conf, &storage] {
            for line in text
                .lines()
                .filter(|l| l.contains('/') && !l.starts_with('#'))
            {
                assert!(line.contains("/cache/runs/p-1/"), "{line}");
            }
        }
        assert!(conf.contains("default_ulimits = []") && conf.contains("runtime = \"runc\""));
        assert_eq!(
            paths.storage_reference("localhost/x:1"),
            "containers-storage:[overlay@/cache/runs/p-1/storage/graph+/cache/runs/p-1/storage/run]localhost/x:1"
        );
    }

    #[test]
    fn nothing_listening_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!ping(&dir.path().join("missing.sock")));
    }
}
