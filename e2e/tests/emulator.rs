//! The AWS emulators answer real AWS API calls (through boto3, as an out-of-band actor would)
//! and, like every harness server, listen on loopback only.

use std::process::Command;

use anyhow::{Result, ensure};
use pangea_e2e::{AwsEmulator, ControlPlane, EmulatorKind, Toolchain, sockets::listening_addrs};

/// Runs a boto3 snippet against the emulator with the venv's Python.
fn boto3(aws: &AwsEmulator, python: &std::path::Path, code: &str) -> Result<String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .envs(aws.aws_env())
        .output()?;
    ensure!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

const S3_ROUND_TRIP: &str = r#"
import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.create_bucket(Bucket="harness-check")
print(",".join(b["Name"] for b in s3.list_buckets()["Buckets"]))
"#;

fn dynamodb_table(port: u16) -> String {
    format!(
        r#"
import boto3
db = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:{port}")
db.create_table(TableName="locks", KeySchema=[{{"AttributeName": "LockID", "KeyType": "HASH"}}],
    AttributeDefinitions=[{{"AttributeName": "LockID", "AttributeType": "S"}}], BillingMode="PAY_PER_REQUEST")
print(db.describe_table(TableName="locks")["Table"]["TableStatus"])
"#
    )
}

#[rstest::rstest]
#[case::localstack(EmulatorKind::LocalStack)]
#[case::moto(EmulatorKind::Moto)]
fn emulator_serves_s3_and_dynamodb_on_loopback(#[case] kind: EmulatorKind) -> Result<()> {
    let tools = Toolchain::load()?;
    let aws = AwsEmulator::start_kind(kind)?.with_dynamodb()?;
    let python = match kind {
        EmulatorKind::LocalStack => &tools.localstack_python,
        EmulatorKind::Moto => &tools.moto_python,
    };
    assert_eq!(boto3(&aws, python, S3_ROUND_TRIP)?, "harness-check");
    let port = aws.dynamodb_port.expect("dynamodb started");
    assert_eq!(
        boto3(&aws, &tools.moto_python, &dynamodb_table(port))?,
        "ACTIVE"
    );
    for pid in aws.pids() {
        let addrs = listening_addrs(pid);
        assert!(!addrs.is_empty(), "{kind:?} pid {pid} listens nowhere");
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback()),
            "{kind:?} listens beyond loopback: {addrs:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn control_plane_listens_on_loopback_only() -> Result<()> {
    let cp = ControlPlane::start().await?;
    for pid in cp.pids() {
        let addrs = listening_addrs(pid);
        assert!(!addrs.is_empty(), "pid {pid} listens nowhere");
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback()),
            "listens beyond loopback: {addrs:?}"
        );
    }
    Ok(())
}
