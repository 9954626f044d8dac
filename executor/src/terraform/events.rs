//! Reads what `terraform apply -json` printed: which creates it started and which it was told
//! were refused because the object already existed, plus a human rendering of the messages
//! for error summaries. The machine-readable UI is terraform's documented interface for this
//! (`apply_start`, `apply_complete`, `apply_errored`, `diagnostic`).

use std::collections::BTreeSet;

use serde_json::Value;

/// Creates seen in one apply's event stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyProgress {
    /// Addresses whose create terraform started.
    pub started: BTreeSet<String>,
    /// Addresses whose create the cloud refused because the object already existed: that
    /// object predates the apply and must never be adopted.
    pub already_existed: BTreeSet<String>,
}

/// Parses the JSON lines of an apply; lines that are not JSON are skipped.
pub fn progress(stream: &str) -> ApplyProgress {
    let mut progress = ApplyProgress::default();
    for event in stream
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        match event.get("type").and_then(Value::as_str) {
            Some("apply_start") if is_create(&event) => {
                if let Some(addr) = hook_address(&event) {
                    progress.started.insert(addr.to_owned());
                }
            }
            Some("diagnostic") => {
                if let Some(addr) = already_exists(&event) {
                    progress.already_existed.insert(addr.to_owned());
                }
            }
            _ => {}
        }
    }
    progress
}

/// The stream as terraform's human output would show it: each event's message, and each
/// diagnostic as an `Error:`/`Warning:` block, so the usual error summary applies.
pub fn human_text(stream: &str) -> String {
    let mut text = String::new();
    for event in stream
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if let Some(d) = event.get("diagnostic") {
            let severity = match d.get("severity").and_then(Value::as_str) {
                Some("error") => "Error",
                _ => "Warning",
            };
            let field = |k: &str| {
                d.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            text.push_str(&format!(
                "{severity}: {}\n{}\n",
                field("summary"),
                field("detail")
            ));
        } else if let Some(message) = event.get("@message").and_then(Value::as_str) {
            text.push_str(message);
            text.push('\n');
        }
    }
    text
}

fn is_create(event: &Value) -> bool {
    event.pointer("/hook/action").and_then(Value::as_str) == Some("create")
}

fn hook_address(event: &Value) -> Option<&str> {
    event.pointer("/hook/resource/addr").and_then(Value::as_str)
}

/// The address of an error diagnostic that says the object already exists.
fn already_exists(event: &Value) -> Option<&str> {
    let d = event.get("diagnostic")?;
    if d.get("severity").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let text = ["summary", "detail"]
        .iter()
        .filter_map(|k| d.get(*k).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let taken = [
        "already exist",
        "alreadyexists",
        "alreadyownedbyyou",
        "entityalreadyexists",
    ]
    .iter()
    .any(|needle| text.contains(needle));
    taken
        .then(|| d.get("address").and_then(Value::as_str))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from `terraform apply -json` (1.11) interrupted mid-apply, shortened.
    const STREAM: &str = r#"{"@level":"info","@message":"Terraform 1.11.4","type":"version","terraform":"1.11.4"}
{"@level":"info","@message":"aws_vpc.main: Creating...","type":"apply_start","hook":{"resource":{"addr":"aws_vpc.main","resource_type":"aws_vpc"},"action":"create"}}
{"@level":"info","@message":"aws_vpc.main: Creation complete after 1s [id=vpc-1]","type":"apply_complete","hook":{"resource":{"addr":"aws_vpc.main","resource_type":"aws_vpc"},"action":"create","id_key":"id","id_value":"vpc-1"}}
{"@level":"info","@message":"aws_ssm_parameter.app_secret: Creating...","type":"apply_start","hook":{"resource":{"addr":"aws_ssm_parameter.app_secret","resource_type":"aws_ssm_parameter"},"action":"create"}}
{"@level":"info","@message":"aws_s3_bucket.logs: Creating...","type":"apply_start","hook":{"resource":{"addr":"aws_s3_bucket.logs","resource_type":"aws_s3_bucket"},"action":"create"}}
{"@level":"info","@message":"aws_s3_bucket.logs: Creation errored after 0s","type":"apply_errored","hook":{"resource":{"addr":"aws_s3_bucket.logs","resource_type":"aws_s3_bucket"},"action":"create"}}
{"@level":"info","@message":"aws_route53_zone.main: Modifying...","type":"apply_start","hook":{"resource":{"addr":"aws_route53_zone.main","resource_type":"aws_route53_zone"},"action":"update"}}
{"@level":"error","@message":"Error: creating S3 Bucket (p-logs): operation error S3: CreateBucket, BucketAlreadyExists","type":"diagnostic","diagnostic":{"severity":"error","summary":"creating S3 Bucket (p-logs): operation error S3: CreateBucket, BucketAlreadyExists","detail":"","address":"aws_s3_bucket.logs"}}
{"@level":"error","@message":"Error: execution halted","type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted","detail":""}}
not json
"#;

    #[test]
    fn started_creates_and_refusals() {
        let p = progress(STREAM);
        assert_eq!(
            p.started.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "aws_s3_bucket.logs",
                "aws_ssm_parameter.app_secret",
                "aws_vpc.main"
            ]
        );
        assert_eq!(
            p.already_existed
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["aws_s3_bucket.logs"]
        );
    }

    #[test]
    fn human_text_renders_diagnostics_as_error_blocks() {
        let text = human_text(STREAM);
        assert!(
            text.starts_with("Terraform 1.11.4\naws_vpc.main: Creating...\n"),
            "{text}"
        );
        assert!(text.contains("\nError: execution halted\n"), "{text}");
        assert!(!text.contains("not json"));
    }
}
