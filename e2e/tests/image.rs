//! The executor image on its own, outside Kubernetes: the full image (provider mirror baked in)
//! run with testcontainers through podman's Docker-compatible API, hardened as executor pods
//! are (non-root, read-only root filesystem, no capabilities) and on the host network to reach
//! the emulator on 127.0.0.1. A template mounted read-only is applied with its state in a
//! mounted directory; a person then opens SSH to the world behind Terraform's back, and
//! `pangea-executor drift` in a second container must report that security group, critical.
//!
//! testcontainers takes its Docker host from `DOCKER_HOST` in the environment of the process,
//! so the test owns podman and runs its body in a child test process that has it (see
//! `pangea_e2e::podman`). Ignored by a plain `cargo test`; `scripts/test.sh` runs it.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use futures::StreamExt;
use pangea_api::{
    common::Severity,
    exec::{ExecutionResult, Outcome},
};
use pangea_e2e::{AwsEmulator, ExecutorVariant, Images, Podman, PodmanClient, Toolchain};
use testcontainers::{
    GenericImage, ImageExt,
    bollard::{Docker, errors::Error as DockerError},
    core::{AccessMode, Mount, client::docker_client_instance},
    runners::AsyncRunner,
};

/// This test's name, for the child process that runs its body.
const TEST: &str = "the_executor_image_reports_drift_outside_kubernetes";
/// One `pangea-executor` container from create to exit (an apply of two resources with
/// terraform's start-up, on a cold and busy 2-core machine).
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(420);
/// The child's whole run: emulator start, two containers, the out-of-band change. A backstop
/// longer than the child's own deadlines added up (see `Podman::run_test_in_child`).
const CHILD_TIMEOUT: Duration = Duration::from_secs(1200);
/// The image's user (`scripts/build-images.sh`): mounted directories it writes must be its.
const EXECUTOR_UID: u32 = 65532;
/// The security group's name in [`web`].
const SECURITY_GROUP: &str = "image-test-web";

#[test]
#[ignore = "needs the bootstrapped harness (podman, executor images, emulator): scripts/test.sh runs it"]
fn the_executor_image_reports_drift_outside_kubernetes() -> Result<()> {
    match PodmanClient::from_env() {
        Some(podman) => tokio::runtime::Runtime::new()?.block_on(apply_then_detect_drift(&podman)),
        None => run_against_own_podman(),
    }
}

/// The parent: builds the images if needed, starts podman, imports the full executor image
/// and runs the test body in a child that points testcontainers at it.
fn run_against_own_podman() -> Result<()> {
    let tools = Toolchain::load()?;
    let images = Images::ensure(&tools)?;
    let image = images.executor(ExecutorVariant::Full)?;
    let started = Instant::now();
    let podman = Podman::start()?;
    let ready = started.elapsed();
    podman.import(image)?;
    println!(
        "podman answered after {:.1}s, {} imported after {:.1}s",
        ready.as_secs_f64(),
        image.reference,
        started.elapsed().as_secs_f64()
    );
    let output = podman
        .run_test_in_child(TEST, CHILD_TIMEOUT)
        .map_err(|err| anyhow!("{err}\n--- podman log ---\n{}", podman.log_tail(30)))?;
    println!("{output}");
    Ok(())
}

/// The child: what a user of the image sees.
async fn apply_then_detect_drift(podman: &PodmanClient) -> Result<()> {
    let tools = Toolchain::load()?;
    let images = Images::load(&tools.cache_dir.join("images/images.txt"))?;
    let image = images.executor(ExecutorVariant::Full)?.reference.clone();
    let aws = AwsEmulator::start()?;
    let dirs = tools.run_dir("image-")?;
    let mounts = Mounts::create(dirs.path())?;
    let executor = Executor {
        podman,
        image: &image,
        aws: &aws,
        mounts: &mounts,
    };

    let apply = executor
        .run(&["apply", "/template/web.rb", "--format", "json"])
        .await?;
    ensure!(apply.exit_code == 0, "apply failed:\n{apply}");
    let applied = apply.only_result()?;
    ensure!(
        applied.outcome == Outcome::Succeeded && applied.resources_total == Some(2),
        "{apply}"
    );

    aws.out_of_band(&["open-ingress", SECURITY_GROUP, "22", "0.0.0.0/0"])?;

    let drift = executor
        .run(&["drift", "/template/web.rb", "--format", "json"])
        .await?;
    // Exit code 2 is the CLI's "drift found".
    ensure!(drift.exit_code == 2, "drift did not exit 2:\n{drift}");
    let report = drift
        .only_result()?
        .drift
        .context("a drift execution without a drift report")?;
    let group = report
        .resources
        .iter()
        .find(|r| r.address == "aws_security_group.web")
        .with_context(|| format!("the opened security group is not reported: {report:?}"))?;
    assert_eq!(group.severity, Severity::Critical, "{group:?}");
    assert_eq!(report.severity(), Some(Severity::Critical));
    assert!(
        group
            .attributes
            .iter()
            .any(|a| a.path.starts_with("ingress")
                && a.actual.as_deref().is_some_and(|v| v.contains("0.0.0.0/0"))),
        "no ingress attribute shows the world-open rule: {group:?}"
    );
    println!(
        "apply {:.1}s, drift {:.1}s: {} {:?}",
        apply.seconds, drift.seconds, group.address, group.severity
    );
    Ok(())
}

/// Host directories the containers mount: the template (read-only) and the executor's cache
/// (workspaces with their local state), shared by both runs like a persistent volume.
struct Mounts {
    template: PathBuf,
    cache: PathBuf,
}

impl Mounts {
    fn create(dir: &Path) -> Result<Self> {
        let template = dir.join("template");
        let cache = dir.join("cache");
        std::fs::create_dir(&template)?;
        std::fs::write(template.join("web.rb"), web())?;
        // Readable by the image's user: the run directory itself is private (0700).
        std::fs::set_permissions(&template, std::fs::Permissions::from_mode(0o755))?;
        std::fs::create_dir(&cache)?;
        std::os::unix::fs::chown(&cache, Some(EXECUTOR_UID), Some(EXECUTOR_UID))?;
        Ok(Self { template, cache })
    }
}

/// One `pangea-executor` invocation in a fresh container of the image.
struct Executor<'a> {
    podman: &'a PodmanClient,
    image: &'a str,
    aws: &'a AwsEmulator,
    mounts: &'a Mounts,
}

impl Executor<'_> {
    /// Runs `pangea-executor ARGS` to completion and collects what it printed.
    async fn run(&self, args: &[&str]) -> Result<Finished> {
        let (name, tag) = self.image.rsplit_once(':').context("image without a tag")?;
        let cgroup_parent = self.podman.cgroup_parent.clone();
        let mut request = GenericImage::new(name, tag)
            .with_cmd(args.iter().copied())
            .with_mount(
                Mount::bind_mount(self.mounts.template.to_string_lossy(), "/template")
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_mount(Mount::bind_mount(
                self.mounts.cache.to_string_lossy(),
                "/cache",
            ))
            // HOME and TMPDIR: the bundled compiler is unpacked there.
            .with_mount(Mount::tmpfs_mount("/tmp"))
            .with_readonly_rootfs(true)
            .with_cap_drop("ALL")
            .with_security_opt("no-new-privileges")
            .with_env_var("PANGEA_EXECUTOR_CACHE", "/cache")
            .with_env_var("PANGEA_AWS_ENDPOINT", self.aws.endpoint())
            // Set here, not with `with_network("host")`: testcontainers would try to create a
            // network named "host" because podman does not list one, and podman refuses.
            .with_host_config_modifier(move |host| {
                host.network_mode = Some("host".into());
                host.cgroup_parent = Some(cgroup_parent.clone());
            });
        for (key, value) in self.aws.aws_env() {
            request = request.with_env_var(key, value);
        }
        let started = Instant::now();
        let container = request.start().await?;
        let docker = docker_client_instance().await?;
        let exit_code = tokio::time::timeout(CONTAINER_TIMEOUT, exit_code(&docker, container.id()))
            .await
            .with_context(|| {
                format!("pangea-executor {args:?} still running after {CONTAINER_TIMEOUT:?}")
            })??;
        let seconds = started.elapsed().as_secs_f64();
        Ok(Finished {
            exit_code,
            stdout: String::from_utf8_lossy(&container.stdout_to_vec().await?).into_owned(),
            stderr: String::from_utf8_lossy(&container.stderr_to_vec().await?).into_owned(),
            seconds,
        })
    }
}

/// Waits for the container to end and returns its exit code. Not testcontainers' exit wait
/// (container inspection): podman 4.3 reports a container that has exited but is not yet
/// cleaned up as `stopped`, a state the Docker API does not have, and the client's
/// deserialisation rejects it. The wait endpoint reports only the code.
async fn exit_code(docker: &Docker, id: &str) -> Result<i64> {
    match docker.wait_container(id, None).next().await {
        Some(Ok(response)) => Ok(response.status_code),
        // The client turns a non-zero code into an error; for us it is an answer.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(err)) => Err(err.into()),
        None => bail!("waiting for container {id} ended without an exit code"),
    }
}

/// A container that ran to its end.
struct Finished {
    exit_code: i64,
    stdout: String,
    stderr: String,
    seconds: f64,
}

impl Finished {
    /// The typed result of the one template in the file (`--format json` prints a list).
    fn only_result(&self) -> Result<ExecutionResult> {
        let mut results: Vec<ExecutionResult> = serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not a list of results:\n{self}"))?;
        ensure!(results.len() == 1, "expected one result:\n{self}");
        Ok(results.remove(0))
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.exit_code, self.seconds, self.stdout, self.stderr
        )
    }
}

fn web() -> String {
    pangea_e2e::fixtures::web_template("10.72.0.0/16", SECURITY_GROUP)
}
