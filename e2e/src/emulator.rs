//! A real AWS emulator for tests: LocalStack (default) or moto, chosen with
//! `PANGEA_AWS_EMULATOR=localstack|moto`. DynamoDB (state locking) is always served by moto,
//! because LocalStack's DynamoDB needs a JDK download that fails offline.

use std::{collections::BTreeMap, process::Command, time::Duration};

use crate::{
    Result, Toolchain,
    process::{ManagedProcess, free_port, http_status},
};

const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// LocalStack gives its own gateway 15 s to listen and never becomes ready after that (a
/// cold start on two busy cores can take longer): such a start is retried.
const LOCALSTACK_GAVE_UP: &str = "gave up waiting for gateway server";
/// Starts of LocalStack before the harness gives up.
const LOCALSTACK_ATTEMPTS: usize = 3;
/// Services the tests use.
const SERVICES: &[&str] = &["s3", "ec2", "iam", "route53", "sts", "ssm"];

/// Which emulator serves the AWS APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmulatorKind {
    /// LocalStack community runtime.
    LocalStack,
    /// moto in server mode.
    Moto,
}

impl EmulatorKind {
    /// From `PANGEA_AWS_EMULATOR` (default LocalStack).
    pub fn from_env() -> Self {
        match std::env::var("PANGEA_AWS_EMULATOR").as_deref() {
            Ok("moto") => Self::Moto,
            _ => Self::LocalStack,
        }
    }
}

/// A running AWS emulator.
pub struct AwsEmulator {
    main: ManagedProcess,
    dynamodb: Option<ManagedProcess>,
    /// Which emulator serves the main services.
    pub kind: EmulatorKind,
    /// Port of the main endpoint on 127.0.0.1.
    pub port: u16,
    /// Port of the moto server answering DynamoDB, when started.
    pub dynamodb_port: Option<u16>,
    /// Time until the main endpoint answered its health check.
    pub ready_after: Duration,
    dir: tempfile::TempDir,
}

impl AwsEmulator {
    /// Starts the emulator chosen by `PANGEA_AWS_EMULATOR`.
    pub fn start() -> Result<Self> {
        Self::start_kind(EmulatorKind::from_env())
    }

    /// Starts the given emulator.
    pub fn start_kind(kind: EmulatorKind) -> Result<Self> {
        let tools = Toolchain::load()?;
        let dir = tools.run_dir("aws-")?;
        let (main, port, ready_after) = match kind {
            EmulatorKind::LocalStack => start_localstack(&tools, dir.path())?,
            EmulatorKind::Moto => {
                let port = free_port()?;
                let mut moto = spawn_moto(&tools, dir.path(), port, "moto")?;
                let ready = moto.wait_ready(READY_TIMEOUT, || {
                    http_status(port, "/moto-api/") == Some(200)
                })?;
                (moto, port, ready)
            }
        };
        tracing::info!(
            ?kind,
            port,
            ready_ms = ready_after.as_millis() as u64,
            "aws emulator ready"
        );
        Ok(Self {
            main,
            dynamodb: None,
            kind,
            port,
            dynamodb_port: None,
            ready_after,
            dir,
        })
    }

    /// Starts a moto server for DynamoDB (lock tables) beside the main emulator.
    pub fn with_dynamodb(mut self) -> Result<Self> {
        if self.kind == EmulatorKind::Moto {
            self.dynamodb_port = Some(self.port);
            return Ok(self);
        }
        let tools = Toolchain::load()?;
        let port = free_port()?;
        let mut moto = spawn_moto(&tools, self.dir.path(), port, "moto-dynamodb")?;
        moto.wait_ready(READY_TIMEOUT, || {
            http_status(port, "/moto-api/") == Some(200)
        })?;
        self.dynamodb = Some(moto);
        self.dynamodb_port = Some(port);
        Ok(self)
    }

    /// Endpoint URL of the main services.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Terraform AWS provider `endpoints` block: service → URL.
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = SERVICES
            .iter()
            .map(|s| ((*s).to_owned(), self.endpoint()))
            .collect();
        if let Some(port) = self.dynamodb_port {
            map.insert("dynamodb".into(), format!("http://127.0.0.1:{port}"));
        }
        map
    }

    /// Environment for AWS SDKs and terraform: fixed test credentials and region.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
        ]
    }

    /// Makes an out-of-band change with `e2e/scripts/aws_drift.py` (boto3 in the emulator's
    /// venv), e.g. `["open-ingress", "web", "22", "0.0.0.0/0"]`. Returns its stdout.
    pub fn out_of_band(&self, args: &[&str]) -> Result<String> {
        let tools = Toolchain::load()?;
        let python = match self.kind {
            EmulatorKind::LocalStack => tools.localstack_python,
            EmulatorKind::Moto => tools.moto_python,
        };
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/aws_drift.py");
        let out = Command::new(python)
            .arg(&script)
            .args(args)
            .envs(self.aws_env())
            .output()
            .map_err(|source| crate::Error::Spawn {
                name: "aws_drift.py".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(crate::Error::OutOfBand(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// PIDs of the emulator processes.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.main.pid())
            .chain(self.dynamodb.as_ref().map(|p| p.pid()))
            .collect()
    }

    /// Ports the emulator listens on.
    pub fn ports(&self) -> Vec<u16> {
        std::iter::once(self.port)
            .chain(self.dynamodb_port.filter(|p| *p != self.port))
            .collect()
    }

    /// Stops every emulator process (also done on drop).
    pub fn stop(mut self) {
        if let Some(p) = self.dynamodb.as_mut() {
            p.stop();
        }
        self.main.stop();
    }
}

/// LocalStack ready on a free port: a start whose runtime gave up on its gateway is stopped
/// (by PID) and made again on another port, in a directory of its own.
fn start_localstack(
    tools: &Toolchain,
    dir: &std::path::Path,
) -> Result<(ManagedProcess, u16, Duration)> {
    let mut attempt = 1;
    loop {
        let port = free_port()?;
        let run = dir.join(format!("attempt-{attempt}"));
        std::fs::create_dir_all(&run).map_err(crate::io_err("creating a LocalStack dir"))?;
        let mut process = spawn_localstack(tools, &run, port)?;
        let log = process.log_path().to_owned();
        let mut gave_up = false;
        let ready = process.wait_ready(READY_TIMEOUT, || {
            gave_up = std::fs::read_to_string(&log).is_ok_and(|t| t.contains(LOCALSTACK_GAVE_UP));
            gave_up || http_status(port, "/_localstack/health") == Some(200)
        });
        match ready {
            Ok(after) if !gave_up => return Ok((process, port, after)),
            Ok(_) if attempt < LOCALSTACK_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    "LocalStack gave up on its gateway; starting it again"
                );
                process.stop();
                attempt += 1;
            }
            Ok(_) => {
                return Err(crate::Error::NotReady {
                    name: "localstack".into(),
                    seconds: READY_TIMEOUT.as_secs(),
                    log_tail: process.log_tail(40),
                });
            }
            Err(error) => return Err(error),
        }
    }
}

fn spawn_localstack(tools: &Toolchain, dir: &std::path::Path, port: u16) -> Result<ManagedProcess> {
    let state = dir.join("localstack");
    let mut cmd = Command::new(&tools.localstack_python);
    cmd.args(["-m", "localstack.runtime.main"])
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        // The default server binds every interface; hypercorn honours GATEWAY_LISTEN.
        .env("GATEWAY_SERVER", "hypercorn")
        .env("DNS_ADDRESS", "0")
        .env("DISABLE_EVENTS", "1")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("SERVICES", SERVICES.join(","))
        .env("FILESYSTEM_ROOT", &state)
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .env("LOCALSTACK_VOLUME_DIR", state.join("volume"))
        .env("TMPDIR", dir);
    // LocalStack sometimes ignores SIGTERM: a short grace, then SIGKILL.
    ManagedProcess::spawn(
        "localstack",
        cmd,
        &dir.join("localstack.log"),
        Duration::from_secs(5),
    )
}

fn spawn_moto(
    tools: &Toolchain,
    dir: &std::path::Path,
    port: u16,
    name: &str,
) -> Result<ManagedProcess> {
    let mut cmd = Command::new(&tools.moto_python);
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]);
    ManagedProcess::spawn(
        name,
        cmd,
        &dir.join(format!("{name}.log")),
        Duration::from_secs(3),
    )
}
