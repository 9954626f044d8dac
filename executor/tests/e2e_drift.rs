//! The executor end to end, as a person runs it: real terraform, the real AWS provider,
//! LocalStack, and (for the `kubernetes` backend) a real kube-apiserver. Ignored by plain
//! `cargo test` because they need the bootstrapped harness; `scripts/test.sh` runs them.
//!
//! Scenario (examples/templates/aws_drift.rb): apply → no drift → four out-of-band changes →
//! exactly those four drifted resources with attribute detail and severities → apply
//! remediates → no drift. The sensitive variable's value must appear nowhere.

use std::{path::PathBuf, process::Output};

use anyhow::{Context, Result, ensure};
use assert_cmd::cargo::CommandCargoExt;
use pangea_api::{
    common::Severity,
    exec::{ExecutionResult, Outcome},
    report::{DriftAction, DriftedResource},
};
use pangea_e2e::{AwsEmulator, ControlPlane, Toolchain};

const PREFIX: &str = "e2e-drift";

/// One scenario's files, emulator and every byte the executor printed.
struct Scenario {
    aws: AwsEmulator,
    dir: tempfile::TempDir,
    secret: String,
    state_args: Vec<String>,
    printed: Vec<String>,
}

impl Scenario {
    fn new(state_args: &[&str]) -> Result<Self> {
        let aws = AwsEmulator::start()?;
        let dir = tempfile::tempdir()?;
        let secret = format!("s3cr3t-{}-value", std::process::id());
        std::fs::write(dir.path().join("app_secret"), format!("{secret}\n"))?;
        let state_args = state_args.iter().map(|s| (*s).to_owned()).collect();
        Ok(Self {
            aws,
            dir,
            secret,
            state_args,
            printed: Vec::new(),
        })
    }

    fn template() -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/templates/aws_drift.rb")
    }

    /// Runs `pangea-executor <sub> --format json` and returns its results.
    fn run(&mut self, sub: &str, extra: &[&str]) -> Result<(Option<i32>, Vec<ExecutionResult>)> {
        let mut cmd = std::process::Command::cargo_bin("pangea-executor")?;
        cmd.arg(sub)
            .arg(Self::template())
            .args(["--format", "json", "--sensitive-var"])
            .arg(format!(
                "app_secret={}",
                self.dir.path().join("app_secret").display()
            ))
            .args(&self.state_args)
            .args(extra)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .envs(self.aws.aws_env())
            .env("PANGEA_AWS_ENDPOINT", self.aws.endpoint())
            .env("PANGEA_BUCKET_PREFIX", PREFIX)
            // As the README's commands run on a fresh machine: the CLI configuration named
            // by the environment does not exist, so the executor finds the provider mirror
            // the bootstrap recorded (offline: the registry is unreachable).
            .env(
                "TF_CLI_CONFIG_FILE",
                self.dir.path().join("missing-terraformrc"),
            )
            .env_remove("PANGEA_PROVIDER_MIRROR")
            .env("RUST_LOG", "debug");
        let out: Output = cmd.output()?;
        let (stdout, stderr) = (
            String::from_utf8(out.stdout)?,
            String::from_utf8(out.stderr)?,
        );
        self.printed.push(stdout.clone());
        self.printed.push(stderr.clone());
        let results: Vec<ExecutionResult> = serde_json::from_str(&stdout)
            .with_context(|| format!("{sub}: not JSON:\n{stdout}\n{stderr}"))?;
        Ok((out.status.code(), results))
    }

    fn apply(&mut self) -> Result<ExecutionResult> {
        let (code, mut results) = self.run("apply", &["--allow-destroy"])?;
        let result = results.remove(0);
        ensure!(
            code == Some(0) && result.outcome == Outcome::Succeeded,
            "apply failed: {:?}",
            result.error
        );
        Ok(result)
    }

    fn drift(&mut self) -> Result<(Option<i32>, ExecutionResult)> {
        let (code, mut results) = self.run("drift", &[])?;
        let result = results.remove(0);
        ensure!(
            result.outcome == Outcome::Succeeded,
            "drift check failed: {:?}",
            result.error
        );
        Ok((code, result))
    }

    fn inject_four_changes(&self) -> Result<()> {
        self.aws
            .out_of_band(&["suspend-versioning", &format!("{PREFIX}-artifacts")])?;
        self.aws
            .out_of_band(&["open-ingress", "https-internal", "22", "0.0.0.0/0"])?;
        self.aws.out_of_band(&[
            "set-a-record",
            "drift-demo.example.com",
            "app.drift-demo.example.com",
            "203.0.113.7",
        ])?;
        self.aws
            .out_of_band(&["delete-bucket", &format!("{PREFIX}-logs")])?;
        Ok(())
    }

    /// Every byte printed, plus every file the executor left, must be free of the secret.
    fn assert_secret_never_shown(&self) -> Result<()> {
        for (i, text) in self.printed.iter().enumerate() {
            ensure!(
                !text.contains(&self.secret),
                "output #{i} contains the sensitive value"
            );
        }
        Ok(())
    }
}

fn find<'a>(resources: &'a [DriftedResource], address: &str) -> &'a DriftedResource {
    resources
        .iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("{address} not reported: {resources:#?}"))
}

fn full_scenario(state_args: &[&str]) -> Result<()> {
    let mut s = Scenario::new(state_args)?;
    let applied = s.apply()?;
    assert_eq!(applied.resources_total, Some(8), "{applied:?}");
    assert_eq!(
        applied.outputs["artifacts_bucket"],
        format!("{PREFIX}-artifacts")
    );

    let (code, clean) = s.drift()?;
    let drift = clean.drift.as_ref().expect("drift report");
    assert!(
        drift.resources.is_empty(),
        "drift right after apply: {drift:#?}"
    );
    assert_eq!(code, Some(0));

    s.inject_four_changes()?;
    let (code, drifted) = s.drift()?;
    assert_eq!(code, Some(2), "drift must exit 2");
    let report = drifted.drift.as_ref().expect("drift report");
    let mut real: Vec<&str> = report
        .resources
        .iter()
        .filter(|r| r.mirror_of.is_none())
        .map(|r| r.address.as_str())
        .collect();
    real.sort_unstable();
    assert_eq!(
        real,
        [
            "aws_route53_record.app",
            "aws_s3_bucket.logs",
            "aws_s3_bucket_versioning.artifacts",
            "aws_security_group.https"
        ],
        "{report:#?}"
    );
    let sg = find(&report.resources, "aws_security_group.https");
    assert_eq!(sg.severity, Severity::Critical);
    assert!(
        sg.attributes.iter().any(|a| a.path.starts_with("ingress")
            && a.actual.as_deref().is_some_and(|v| v.contains("0.0.0.0/0"))),
        "{sg:#?}"
    );
    let logs = find(&report.resources, "aws_s3_bucket.logs");
    assert_eq!(
        (logs.action, logs.severity),
        (DriftAction::Deleted, Severity::Critical)
    );
    assert!(
        logs.attributes.is_empty(),
        "a deleted resource is one entry: {logs:#?}"
    );
    let versioning = find(&report.resources, "aws_s3_bucket_versioning.artifacts");
    let status = versioning
        .attributes
        .iter()
        .find(|a| a.path.ends_with("status"))
        .expect("status drift");
    assert_eq!(
        (status.expected.as_deref(), status.actual.as_deref()),
        (Some("\"Enabled\""), Some("\"Suspended\""))
    );
    let record = find(&report.resources, "aws_route53_record.app");
    assert!(
        record.attributes.iter().any(|a| a
            .actual
            .as_deref()
            .is_some_and(|v| v.contains("203.0.113.7"))),
        "{record:#?}"
    );
    assert_eq!(report.severity(), Some(Severity::Critical));

    s.apply()?;
    let (code, after) = s.drift()?;
    assert!(
        after.drift.as_ref().is_some_and(|d| d.resources.is_empty()),
        "drift after remediation: {:#?}",
        after.drift
    );
    assert_eq!(code, Some(0));
    let rules = s.aws.out_of_band(&["describe-ingress", "https-internal"])?;
    assert!(
        !rules.contains("0.0.0.0/0"),
        "the world-open rule is still there: {rules}"
    );
    s.assert_secret_never_shown()
}

#[test]
#[ignore = "needs the bootstrapped harness (LocalStack, terraform): scripts/test.sh runs it"]
fn drift_detected_and_remediated_with_local_state() -> Result<()> {
    full_scenario(&["--state", "local"])
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness (kube-apiserver, LocalStack, terraform): scripts/test.sh runs it"]
async fn drift_detected_and_remediated_with_kubernetes_state() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("state").await?;
    let kubeconfig = cp.kubeconfig.display().to_string();
    let args = [
        "--state",
        "kubernetes",
        "--kube-namespace",
        ns.name.as_str(),
        "--kubeconfig",
        kubeconfig.as_str(),
    ];
    tokio::task::block_in_place(|| full_scenario(&args))?;
    // The state lives in a Secret of that namespace and is not locked any more.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    let names: Vec<String> = secrets
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("tfstate-default-")),
        "no state Secret in {names:?}"
    );
    Ok(())
}

/// First deadline of [`deadline_interrupts_terraform_and_releases_the_lock`], and how much
/// later each next one lands. Every run re-plans before it applies, so deadlines that grow by
/// a few seconds interrupt the apply at a different point each time, until one run is long
/// enough to finish.
const FIRST_DEADLINE_S: u64 = 20;
const DEADLINE_STEP_S: u64 = 6;
const MAX_RUNS: usize = 14;

/// Resolves named orphans as a person would (the resolution each orphan names): whatever the
/// cloud holds of that identity is not in state, so it is deleted; then the executor is told.
fn resolve_orphans(s: &mut Scenario, result: &ExecutionResult) -> Result<()> {
    ensure!(
        !result.orphans.is_empty(),
        "OrphansFound names no orphan: {result:?}"
    );
    let mut forget = Vec::new();
    for orphan in &result.orphans {
        ensure!(
            orphan
                .resolution
                .contains(&format!("--forget-orphan '{}'", orphan.address)),
            "{orphan:?}"
        );
        let (kind, value) = match orphan.resource_type.as_str() {
            "aws_vpc" => ("vpc", "10.42.0.0/16"),
            "aws_security_group" => ("group", "https-internal"),
            "aws_route53_zone" => ("zone", "drift-demo.example.com"),
            other => anyhow::bail!("no resolution for an orphan of type {other}: {orphan:?}"),
        };
        let count = match kind {
            "vpc" => "count-vpcs",
            "group" => "count-groups",
            _ => "count-zones",
        };
        // How often a named orphan really exists: the price of not adopting these types.
        let existing = s.aws.out_of_band(&[count, value])?;
        eprintln!(
            "orphan {}: {} in the cloud",
            orphan.address,
            existing.trim()
        );
        s.aws.out_of_band(&["delete-all", kind, value])?;
        forget.extend(["--forget-orphan".to_owned(), orphan.address.clone()]);
    }
    let forget: Vec<&str> = forget.iter().map(String::as_str).collect();
    let (_, results) = s.run("plan", &forget)?;
    ensure!(results[0].orphans.is_empty(), "{:?}", results[0]);
    Ok(())
}

/// No identity of the template exists twice in the cloud.
fn assert_no_duplicates(s: &Scenario) -> Result<()> {
    for (command, value) in [
        ("count-groups", "https-internal".to_owned()),
        ("count-vpcs", "10.42.0.0/16".to_owned()),
        ("count-zones", "drift-demo.example.com".to_owned()),
        ("count-parameters", format!("/{PREFIX}/app/secret")),
    ] {
        let count = s.aws.out_of_band(&[command, &value])?;
        ensure!(count.trim() == "1", "{command} {value}: {}", count.trim());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness (kube-apiserver, LocalStack, terraform): scripts/test.sh runs it"]
async fn deadline_interrupts_terraform_and_releases_the_lock() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("deadline").await?;
    let kubeconfig = cp.kubeconfig.display().to_string();
    let args = [
        "--state",
        "kubernetes",
        "--kube-namespace",
        ns.name.as_str(),
        "--kubeconfig",
        kubeconfig.as_str(),
    ];
    tokio::task::block_in_place(|| -> Result<()> {
        let mut s = Scenario::new(&args)?;
        let (mut timed_out, mut in_flight, mut adopted, mut named) = (0, 0, Vec::new(), 0);
        for run in 0..MAX_RUNS {
            let deadline = (FIRST_DEADLINE_S + DEADLINE_STEP_S * run as u64).to_string();
            // An interrupted create the provider had already given an id is kept in state as
            // tainted, and the next apply replaces it: allowed, as for the final apply.
            let (code, results) = s.run(
                "apply",
                &[
                    "--timeout",
                    &deadline,
                    "--grace-seconds",
                    "60",
                    "--allow-destroy",
                ],
            )?;
            let result = &results[0];
            adopted.extend(result.adopted.iter().map(|a| a.address.clone()));
            eprintln!(
                "run {run}: deadline {deadline}s -> {:?} in {:.1}s; in flight {:?}; adopted {:?}; orphans {:?}",
                result.outcome,
                result.duration_seconds,
                result.in_flight_creates,
                result.adopted,
                result.orphans
            );
            match (
                result.outcome,
                result.error.as_ref().map(|e| e.reason.as_str()),
            ) {
                (Outcome::Succeeded, _) => break,
                (Outcome::TimedOut, Some("DeadlineExceeded")) => {
                    assert_eq!(code, Some(3));
                    assert!(result.error.as_ref().is_some_and(|e| e.transient));
                    timed_out += 1;
                    in_flight += result.in_flight_creates.len();
                }
                (Outcome::Failed, Some("OrphansFound")) => {
                    named += result.orphans.len();
                    resolve_orphans(&mut s, result)?;
                }
                _ => anyhow::bail!("run {run} (deadline {deadline}s) ended badly: {result:?}"),
            }
        }
        ensure!(timed_out > 0, "no deadline landed inside the apply");
        // Interrupted gracefully: the lock is free and nothing exists twice, however far each
        // interrupted run got.
        let finished = s.apply()?;
        assert_eq!(finished.resources_total, Some(8));
        assert!(finished.in_flight_creates.is_empty(), "{finished:?}");
        assert_no_duplicates(&s)?;
        eprintln!(
            "deadline points: {timed_out} interrupted runs, {in_flight} in-flight creates, adopted {adopted:?}, {named} orphans named"
        );
        s.assert_secret_never_shown()
    })
}

/// The create the README's deadline test once cut off: the SSM parameter exists in the cloud
/// but not in state. Only a create an interrupted apply had in flight is adopted: the same
/// parameter made by someone else before the apply is never taken over, and an in-flight
/// create that never reached the cloud is dropped after its import finds nothing.
#[test]
#[ignore = "needs the bootstrapped harness (LocalStack, terraform): scripts/test.sh runs it"]
fn only_in_flight_creates_are_adopted() -> Result<()> {
    let mut s = Scenario::new(&["--state", "local"])?;
    let parameter = format!("/{PREFIX}/app/secret");
    s.aws.out_of_band(&["put-parameter", &parameter])?;

    // An in-flight create that never reached the cloud: its import finds nothing, it is
    // dropped and the plan made again.
    let (code, results) = s.run("plan", &["--in-flight-create", "aws_s3_bucket.logs"])?;
    let planned = &results[0];
    assert_eq!(
        (planned.outcome, code),
        (Outcome::Succeeded, Some(2)),
        "{planned:?}"
    );
    assert!(planned.in_flight_creates.is_empty(), "{planned:?}");

    // Existed before the apply: not adopted, the apply fails on it, nothing is left in flight.
    let (code, results) = s.run("apply", &[])?;
    let before = &results[0];
    assert_eq!(
        (before.outcome, code),
        (Outcome::Failed, Some(3)),
        "{before:?}"
    );
    let message = &before.error.as_ref().expect("error").message;
    assert!(message.contains("ParameterAlreadyExists"), "{message}");
    assert!(
        before.adopted.is_empty() && before.in_flight_creates.is_empty(),
        "{before:?}"
    );

    // Handed back as in flight (as the operator does from an interrupted apply's result).
    let (code, results) = s.run(
        "apply",
        &["--in-flight-create", "aws_ssm_parameter.app_secret"],
    )?;
    let adopted = &results[0];
    assert_eq!(
        (adopted.outcome, code),
        (Outcome::Succeeded, Some(0)),
        "{adopted:?}"
    );
    let adopted_ids: Vec<(&str, &str)> = adopted
        .adopted
        .iter()
        .map(|a| (a.address.as_str(), a.import_id.as_str()))
        .collect();
    assert_eq!(
        adopted_ids,
        [("aws_ssm_parameter.app_secret", parameter.as_str())]
    );
    assert_eq!(adopted.resources_total, Some(8));
    assert!(adopted.in_flight_creates.is_empty(), "{adopted:?}");
    assert_eq!(
        s.aws.out_of_band(&["count-parameters", &parameter])?.trim(),
        "1"
    );

    // With the policy off, an in-flight identifiable create is named with its import command.
    let (code, results) = s.run(
        "plan",
        &[
            "--no-adopt-orphans",
            "--in-flight-create",
            "aws_s3_bucket.logs",
        ],
    )?;
    assert_eq!(
        code,
        Some(0),
        "aws_s3_bucket.logs is in state: settled, {:?}",
        results[0]
    );
    s.assert_secret_never_shown()
}

/// State in S3 with a DynamoDB lock table (moto serves both): apply, then drift, then the
/// state object exists and no lock is left held.
#[test]
#[ignore = "needs the bootstrapped harness (moto, terraform): scripts/test.sh runs it"]
fn s3_state_with_dynamodb_locking() -> Result<()> {
    let aws = AwsEmulator::start_kind(pangea_e2e::EmulatorKind::Moto)?;
    aws.out_of_band(&["create-state-store", "tf-state", "tf-locks"])?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bucket.rb");
    std::fs::write(
        &file,
        "template :logs do\n  provider :aws do\n    region \"us-east-1\"\n  end\n  resource :aws_s3_bucket, :logs do\n    bucket \"s3-state-logs\"\n  end\nend\n",
    )?;
    let state = serde_json::json!({"s3": {"bucket": "tf-state", "key": "team/logs.tfstate", "region": "us-east-1",
        "dynamodbTable": "tf-locks", "endpoint": aws.endpoint()}});
    let tools = Toolchain::load()?;
    let run = |sub: &str| -> Result<ExecutionResult> {
        let out = std::process::Command::cargo_bin("pangea-executor")?
            .arg(sub)
            .arg(&file)
            .args([
                "--format",
                "json",
                "--state-json",
                &state.to_string(),
                "--cache-dir",
            ])
            .arg(dir.path().join("cache"))
            .envs(aws.aws_env())
            .env("PANGEA_AWS_ENDPOINT", aws.endpoint())
            .env("TF_CLI_CONFIG_FILE", &tools.tf_cli_config)
            .output()?;
        let mut results: Vec<ExecutionResult> = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("{sub}: {}", String::from_utf8_lossy(&out.stderr)))?;
        Ok(results.remove(0))
    };
    let applied = run("apply")?;
    assert_eq!(applied.outcome, Outcome::Succeeded, "{:?}", applied.error);
    let drift = run("drift")?;
    assert_eq!(drift.outcome, Outcome::Succeeded, "{:?}", drift.error);
    assert!(
        drift.drift.as_ref().is_some_and(|d| d.resources.is_empty()),
        "{:?}",
        drift.drift
    );
    assert_eq!(
        aws.out_of_band(&["list-objects", "tf-state"])?.trim(),
        "team/logs.tfstate"
    );
    assert_eq!(
        aws.out_of_band(&["scan-locks", "tf-locks"])?.trim(),
        "",
        "a lock is still held"
    );
    Ok(())
}
