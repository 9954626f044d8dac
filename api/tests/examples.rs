//! The example manifests users copy from deserialize into the typed API, and the typed
//! helpers answer as documented.

use std::path::Path;

use pangea_api::{
    PangeaStack, PangeaTemplate,
    common::Severity,
    report::{ComplianceReport, ControlResult, DriftAction, DriftReport, DriftedResource},
    template::{DeletionPolicy, RemediationPolicy, SourceKind},
};
use serde::Deserialize;

fn documents(file: &str) -> Vec<serde_yaml::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/crs")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect()
}

fn template(file: &str) -> PangeaTemplate {
    let doc = documents(file)
        .into_iter()
        .find(|d| d["kind"] == "PangeaTemplate")
        .expect("a PangeaTemplate document");
    serde_yaml::from_value(doc).expect("valid PangeaTemplate")
}

#[test]
fn inline_example_fills_defaults() {
    let t = template("inline-bucket.yaml");
    assert!(
        matches!(t.spec.source.kind(), Some(SourceKind::Inline(text)) if text.contains("template :bucket"))
    );
    assert_eq!(
        t.spec.drift_detection.remediation_policy,
        RemediationPolicy::Immediate
    );
    assert_eq!(
        std::time::Duration::from(t.spec.drift_detection.interval).as_secs(),
        120
    );
    // Not in the file: the documented defaults.
    assert_eq!(
        std::time::Duration::from(t.spec.reconciliation.timeout).as_secs(),
        600
    );
    assert_eq!(t.spec.safety.deletion_policy, DeletionPolicy::Orphan);
    assert!(!t.spec.safety.allow_destroy && t.spec.drift_detection.enabled);
}

#[test]
fn git_example_keeps_every_field() {
    let t = template("git-network.yaml");
    let Some(SourceKind::Git(git)) = t.spec.source.kind() else {
        panic!("git source")
    };
    assert_eq!(git.git_ref.as_deref(), Some("main"));
    assert_eq!(
        t.spec.pangea.variables["azs"],
        serde_json::json!(["us-east-1a", "us-east-1b"])
    );
    let s3 = t
        .spec
        .state
        .as_ref()
        .and_then(|s| s.s3.as_ref())
        .expect("s3 state");
    assert_eq!(s3.dynamodb_table.as_deref(), Some("terraform-locks"));
    assert_eq!(t.spec.notifications[0].min_severity, Severity::Critical);
}

#[test]
fn stack_example_parses() {
    let doc = documents("stack.yaml").remove(0);
    let stack: PangeaStack = serde_yaml::from_value(doc).unwrap();
    assert_eq!(stack.spec.templates[2].depends_on, ["network", "storage"]);
}

#[test]
fn two_sources_are_not_a_kind() {
    let mut t = template("inline-bucket.yaml");
    t.spec.source.config_map = Some(Default::default());
    assert_eq!(t.spec.source.kind(), None);
}

fn drifted(severity: Severity) -> DriftedResource {
    DriftedResource {
        address: "aws_s3_bucket.logs".into(),
        resource_type: "aws_s3_bucket".into(),
        name: "logs".into(),
        action: DriftAction::Updated,
        severity,
        attributes: vec![],
        attributes_omitted: 0,
        mirror_of: None,
    }
}

#[test]
fn drift_report_severity_is_the_highest() {
    let report = DriftReport {
        resources: vec![drifted(Severity::Info), drifted(Severity::Critical)],
        resources_omitted: 0,
    };
    assert_eq!(report.severity(), Some(Severity::Critical));
    assert!(report.detected());
    assert_eq!(DriftReport::default().severity(), None);
    assert!(
        DriftReport {
            resources: vec![],
            resources_omitted: 3
        }
        .detected()
    );
}

#[test]
fn compliance_score_is_impact_weighted() {
    let control = |impact, passed| ControlResult {
        id: "c".into(),
        title: String::new(),
        impact,
        passed,
        message: None,
        tags: vec![],
    };
    let report = ComplianceReport {
        controls: vec![control(1.0, true), control(0.5, false), control(0.5, true)],
    };
    assert_eq!(report.score(), 75.0);
    assert_eq!(ComplianceReport::default().score(), 100.0);
}
