//! Unit tests of the drift report on small hand-written states; the recorded Terraform
//! fixtures are exercised in `executor/tests/report.rs`.

use std::time::{Duration, UNIX_EPOCH};

use pangea_api::{
    common::Severity,
    report::{DriftAction, DriftedResource},
    template::policy::{DriftDetection, IgnoreRule, SeverityRule},
};
use rstest::rstest;
use serde_json::{Value, json};

use super::*;

/// A state with one instance per `(type, name, index_key, attributes)`.
fn state(instances: &[(&str, &str, Option<Value>, Value)]) -> StateV4 {
    let resources: Vec<Value> = instances
        .iter()
        .map(|(t, n, key, attributes)| {
            let mut instance = json!({"attributes": attributes});
            if let Some(key) = key {
                instance["index_key"] = key.clone();
            }
            json!({"mode": "managed", "type": t, "name": n, "instances": [instance]})
        })
        .collect();
    serde_json::from_value(json!({"version": 4, "resources": resources})).unwrap()
}

fn one(t: &str, n: &str, attributes: Value) -> StateV4 {
    state(&[(t, n, None, attributes)])
}

fn report(prev: &StateV4, refreshed: &StateV4) -> DriftReport {
    build_drift_report(prev, refreshed, &DriftOptions::default())
}

fn attrs(resource: &DriftedResource) -> Vec<(&str, Option<&str>, Option<&str>)> {
    resource
        .attributes
        .iter()
        .map(|a| (a.path.as_str(), a.expected.as_deref(), a.actual.as_deref()))
        .collect()
}

#[test]
fn identical_states_have_no_drift() {
    let s = one(
        "aws_vpc",
        "main",
        json!({"id": "vpc-1", "cidr_block": "10.0.0.0/16"}),
    );
    let found = report(&s, &s);
    assert!(!found.detected());
    assert_eq!(found.severity(), None);
}

#[rstest]
#[case::tags_null_to_empty(json!({"id": "a", "tags": null}), json!({"id": "a", "tags": {}}))]
#[case::tags_all_empty_to_null(json!({"id": "a", "tags_all": {}}), json!({"id": "a", "tags_all": null}))]
#[case::list_empty_to_null(json!({"id": "a", "grant": []}), json!({"id": "a", "grant": null}))]
#[case::number_spelling(json!({"id": "a", "ttl": 300}), json!({"id": "a", "ttl": 300.0}))]
#[case::policy_reformatted(
    json!({"id": "a", "policy": "{\"Version\":\"2012-10-17\"}"}),
    json!({"id": "a", "policy": "{\n  \"Version\": \"2012-10-17\"\n}"})
)]
fn noise_is_not_drift(#[case] before: Value, #[case] after: Value) {
    let found = report(&one("aws_x", "y", before), &one("aws_x", "y", after));
    assert_eq!(found.resources, []);
}

#[test]
fn a_deleted_resource_is_one_critical_entry_without_attributes() {
    let prev = state(&[
        (
            "aws_s3_bucket",
            "logs",
            None,
            json!({"id": "logs", "bucket": "logs", "tags": {"a": "b"}}),
        ),
        ("aws_vpc", "main", None, json!({"id": "vpc-1"})),
    ]);
    let refreshed = one("aws_vpc", "main", json!({"id": "vpc-1"}));
    let found = report(&prev, &refreshed);
    assert_eq!(found.resources.len(), 1);
    let logs = &found.resources[0];
    assert_eq!(
        (
            logs.address.as_str(),
            logs.resource_type.as_str(),
            logs.name.as_str()
        ),
        ("aws_s3_bucket.logs", "aws_s3_bucket", "logs")
    );
    assert_eq!(logs.action, DriftAction::Deleted);
    assert_eq!(logs.severity, Severity::Critical);
    assert_eq!(logs.attributes, []);
}

#[rstest]
#[case::identity_changed(json!({"id": "i-2", "ami": "a"}), DriftAction::Replaced, Severity::Critical)]
#[case::same_identity(json!({"id": "i-1", "ami": "b"}), DriftAction::Updated, Severity::Warning)]
fn detects_replacement_by_identity(
    #[case] after: Value,
    #[case] action: DriftAction,
    #[case] severity: Severity,
) {
    let prev = one("aws_instance", "web", json!({"id": "i-1", "ami": "a"}));
    let found = report(&prev, &one("aws_instance", "web", after));
    let entry = &found.resources[0];
    assert_eq!((entry.action, entry.severity), (action, severity));
}

#[test]
fn addresses_follow_terraform_for_count_for_each_and_modules() {
    let mut prev = state(&[
        (
            "aws_instance",
            "web",
            Some(json!(0)),
            json!({"id": "a", "ami": "x"}),
        ),
        (
            "aws_s3_bucket",
            "b",
            Some(json!("k")),
            json!({"id": "b", "acl": "x"}),
        ),
    ]);
    let mut module = prev.resources[0].clone();
    module.module = Some("module.net".into());
    module.resource_type = "aws_vpc".into();
    module.name = "main".into();
    module.instances[0].index_key = None;
    prev.resources.push(module);
    let mut refreshed = prev.clone();
    for resource in &mut refreshed.resources {
        resource.instances[0].attributes["ami"] = json!("changed");
    }
    let found = report(&prev, &refreshed);
    let mut addresses: Vec<&str> = found.resources.iter().map(|r| r.address.as_str()).collect();
    addresses.sort_unstable();
    assert_eq!(
        addresses,
        [
            r#"aws_instance.web[0]"#,
            r#"aws_s3_bucket.b["k"]"#,
            "module.net.aws_vpc.main"
        ]
    );
}

#[test]
fn data_sources_and_instances_new_in_refreshed_are_not_drift() {
    let mut prev: StateV4 = serde_json::from_value(json!({"resources": [
        {"mode": "data", "type": "aws_ami", "name": "a", "instances": [{"attributes": {"id": "1"}}]}
    ]}))
    .unwrap();
    let mut refreshed = prev.clone();
    refreshed.resources[0].instances[0].attributes = json!({"id": "2"});
    refreshed
        .resources
        .extend(one("aws_vpc", "new", json!({"id": "v"})).resources);
    assert_eq!(report(&prev, &refreshed).resources, []);
    prev.resources.clear();
    assert_eq!(report(&prev, &refreshed).resources, []);
}

#[test]
fn resources_are_sorted_most_severe_first_then_by_address() {
    let prev = state(&[
        ("aws_vpc", "b", None, json!({"id": "1", "tags": {"a": "1"}})),
        ("aws_vpc", "a", None, json!({"id": "2", "tags": {"a": "1"}})),
        ("aws_instance", "z", None, json!({"id": "3", "ami": "x"})),
        ("aws_s3_bucket", "gone", None, json!({"id": "4"})),
    ]);
    let refreshed = state(&[
        ("aws_vpc", "b", None, json!({"id": "1", "tags": {"a": "2"}})),
        ("aws_vpc", "a", None, json!({"id": "2", "tags": {"a": "2"}})),
        ("aws_instance", "z", None, json!({"id": "3", "ami": "y"})),
    ]);
    let found = report(&prev, &refreshed);
    let order: Vec<(&str, Severity)> = found
        .resources
        .iter()
        .map(|r| (r.address.as_str(), r.severity))
        .collect();
    assert_eq!(
        order,
        [
            ("aws_s3_bucket.gone", Severity::Critical),
            ("aws_instance.z", Severity::Warning),
            ("aws_vpc.a", Severity::Info),
            ("aws_vpc.b", Severity::Info),
        ]
    );
    assert_eq!(found.severity(), Some(Severity::Critical));
}

#[test]
fn resource_severity_is_the_highest_attribute_and_attributes_are_most_severe_first() {
    let prev = one(
        "aws_security_group",
        "web",
        json!({"id": "sg", "description": "a", "ingress": []}),
    );
    let refreshed = one(
        "aws_security_group",
        "web",
        json!({"id": "sg", "description": "b", "ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 22}]}),
    );
    let found = report(&prev, &refreshed);
    let entry = &found.resources[0];
    assert_eq!(entry.severity, Severity::Critical);
    assert_eq!(
        attrs(entry),
        [
            (
                "ingress.0",
                None,
                Some(r#"{"cidr_blocks":["0.0.0.0/0"],"from_port":22}"#)
            ),
            ("description", Some(r#""a""#), Some(r#""b""#)),
        ]
    );
}

#[test]
fn severity_rules_override_builtins() {
    let rules: Vec<SeverityRule> = serde_json::from_value(json!([
        {"resourceType": "aws_s3_bucket", "action": "deleted", "severity": "info"}
    ]))
    .unwrap();
    let opts = DriftOptions::default().with_severity_rules(&rules).unwrap();
    let prev = one("aws_s3_bucket", "scratch", json!({"id": "s"}));
    let found = build_drift_report(&prev, &StateV4::default(), &opts);
    assert_eq!(found.resources[0].severity, Severity::Info);
}

fn ignore(rules: Value, now_secs: u64) -> DriftOptions {
    let rules: Vec<IgnoreRule> = serde_json::from_value(rules).unwrap();
    DriftOptions::default()
        .with_ignore_rules(&rules, UNIX_EPOCH + Duration::from_secs(now_secs))
        .unwrap()
}

/// 2030-01-01T00:00:00Z.
const NOW: u64 = 1_893_456_000;

#[rstest]
#[case::whole_resource(json!([{"address": "aws_instance.web"}]), &[])]
#[case::whole_resource_glob(json!([{"address": "aws_*.*"}]), &[])]
#[case::one_attribute(json!([{"address": "aws_instance.web", "attributes": ["tags"]}]), &["ami"])]
#[case::every_attribute(json!([{"address": "aws_instance.web", "attributes": ["tags", "ami"]}]), &[])]
#[case::other_resource(json!([{"address": "aws_instance.db"}]), &["ami", "tags.a"])]
#[case::in_force(json!([{"address": "aws_instance.web", "until": "2030-01-01T00:00:01Z"}]), &[])]
#[case::expired(json!([{"address": "aws_instance.web", "until": "2029-12-31T23:59:59Z"}]), &["ami", "tags.a"])]
fn ignore_rules(#[case] rules: Value, #[case] reported: &[&str]) {
    let prev = one(
        "aws_instance",
        "web",
        json!({"id": "i", "ami": "x", "tags": {"a": "1"}}),
    );
    let refreshed = one(
        "aws_instance",
        "web",
        json!({"id": "i", "ami": "y", "tags": {"a": "2"}}),
    );
    let found = build_drift_report(&prev, &refreshed, &ignore(rules, NOW));
    let mut paths: Vec<&str> = found
        .resources
        .iter()
        .flat_map(|r| r.attributes.iter().map(|a| a.path.as_str()))
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, reported);
}

#[test]
fn options_come_from_a_templates_drift_policy() {
    let policy: DriftDetection = serde_json::from_value(json!({
        "severityRules": [{"attribute": "ami", "severity": "critical"}],
        "ignore": [{"address": "aws_instance.web", "attributes": ["tags"]}]
    }))
    .unwrap();
    let opts = DriftOptions::for_policy(&policy, UNIX_EPOCH + Duration::from_secs(NOW)).unwrap();
    let prev = one(
        "aws_instance",
        "web",
        json!({"id": "i", "ami": "x", "tags": {"a": "1"}}),
    );
    let refreshed = one(
        "aws_instance",
        "web",
        json!({"id": "i", "ami": "y", "tags": {"a": "2"}}),
    );
    let found = build_drift_report(&prev, &refreshed, &opts);
    assert_eq!(found.resources[0].severity, Severity::Critical);
    assert_eq!(
        attrs(&found.resources[0]),
        [("ami", Some(r#""x""#), Some(r#""y""#))]
    );
}

#[test]
fn an_ignored_deleted_resource_is_not_reported() {
    let prev = one("aws_s3_bucket", "scratch", json!({"id": "s"}));
    let opts = ignore(json!([{"address": "aws_s3_bucket.scratch"}]), NOW);
    assert_eq!(
        build_drift_report(&prev, &StateV4::default(), &opts).resources,
        []
    );
}

#[rstest]
#[case::within(5, 5, 100, 0, 0)]
#[case::resources_cut(2, 5, 100, 3, 0)]
#[case::attributes_cut(5, 1, 100, 0, 2)]
#[case::both_cut(1, 2, 100, 4, 1)]
fn bounds_the_report_and_counts_the_cuts(
    #[case] max_resources: usize,
    #[case] max_attributes: usize,
    #[case] max_value_len: usize,
    #[case] resources_omitted: u32,
    #[case] attributes_omitted: u32,
) {
    let before: Vec<(String, Value)> = (0..5)
        .map(|i| {
            (
                format!("r{i}"),
                json!({"id": i.to_string(), "a": 1, "b": 1, "c": 1}),
            )
        })
        .collect();
    let prev = state(
        &before
            .iter()
            .map(|(n, a)| ("aws_x", n.as_str(), None, a.clone()))
            .collect::<Vec<_>>(),
    );
    let mut refreshed = prev.clone();
    for resource in &mut refreshed.resources {
        for key in ["a", "b", "c"] {
            resource.instances[0].attributes[key] = json!(2);
        }
    }
    let bounds = ReportBounds {
        max_resources,
        max_attributes,
        max_value_len,
    };
    let found = build_drift_report(
        &prev,
        &refreshed,
        &DriftOptions::default().with_bounds(bounds),
    );
    assert_eq!(found.resources.len(), 5 - resources_omitted as usize);
    assert_eq!(found.resources_omitted, resources_omitted);
    assert!(found.detected());
    for resource in &found.resources {
        assert_eq!(resource.attributes.len(), 3 - attributes_omitted as usize);
        assert_eq!(resource.attributes_omitted, attributes_omitted);
    }
}

#[test]
fn cuts_keep_the_most_severe() {
    let prev = state(&[
        (
            "aws_vpc",
            "tagged",
            None,
            json!({"id": "1", "tags": {"a": "1"}}),
        ),
        ("aws_s3_bucket", "gone", None, json!({"id": "2"})),
    ]);
    let refreshed = one("aws_vpc", "tagged", json!({"id": "1", "tags": {"a": "2"}}));
    let bounds = ReportBounds {
        max_resources: 1,
        ..ReportBounds::default()
    };
    let found = build_drift_report(
        &prev,
        &refreshed,
        &DriftOptions::default().with_bounds(bounds),
    );
    assert_eq!(found.resources[0].address, "aws_s3_bucket.gone");
    assert_eq!(found.resources_omitted, 1);
}

#[test]
fn long_values_are_truncated_with_a_marker() {
    let long = "x".repeat(100);
    let prev = one("aws_x", "y", json!({"id": "1", "user_data": "short"}));
    let refreshed = one("aws_x", "y", json!({"id": "1", "user_data": long}));
    let bounds = ReportBounds {
        max_value_len: 20,
        ..ReportBounds::default()
    };
    let found = build_drift_report(
        &prev,
        &refreshed,
        &DriftOptions::default().with_bounds(bounds),
    );
    let actual = found.resources[0].attributes[0].actual.as_deref().unwrap();
    assert_eq!(
        actual,
        format!("\"{}…(truncated, 82 more bytes)", "x".repeat(19))
    );
}

#[test]
fn sensitive_attributes_and_known_secrets_are_redacted() {
    let sensitive = json!([[{"type": "get_attr", "value": "value"}]]);
    let mut prev = one(
        "aws_ssm_parameter",
        "p",
        json!({"id": "p", "value": "old-secret", "description": "uses hunter2", "tags": {"hunter2": "k"}}),
    );
    prev.resources[0].instances[0].sensitive_attributes = sensitive.as_array().unwrap().clone();
    let mut refreshed = one(
        "aws_ssm_parameter",
        "p",
        json!({"id": "p", "value": "new-secret", "description": "still hunter2!", "tags": {}}),
    );
    // Only the prior state marks it: still redacted on both sides.
    refreshed.resources[0].instances[0]
        .sensitive_attributes
        .clear();
    let opts = DriftOptions::default().with_sensitive_values(["hunter2"]);
    let found = build_drift_report(&prev, &refreshed, &opts);
    let text = serde_json::to_string(&found).unwrap();
    for secret in ["old-secret", "new-secret", "hunter2"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let mut got = attrs(&found.resources[0]);
    got.sort_unstable();
    assert_eq!(
        got,
        [
            (
                "description",
                Some(r#""uses (sensitive)""#),
                Some(r#""still (sensitive)!""#)
            ),
            ("tags.(sensitive)", Some(r#""k""#), None),
            ("value", Some("(sensitive)"), Some("(sensitive)")),
        ]
    );
}

#[test]
fn a_bucket_setting_with_its_own_resource_is_marked_as_a_mirror() {
    let versioning = (
        "aws_s3_bucket_versioning",
        "v",
        None,
        json!({"id": "b", "bucket": "b"}),
    );
    let prev = state(&[
        (
            "aws_s3_bucket",
            "b",
            None,
            json!({"id": "b", "bucket": "b", "versioning": [{"enabled": true}]}),
        ),
        versioning.clone(),
    ]);
    let refreshed = state(&[
        (
            "aws_s3_bucket",
            "b",
            None,
            json!({"id": "b", "bucket": "b", "versioning": [{"enabled": false}]}),
        ),
        versioning,
    ]);
    let found = report(&prev, &refreshed);
    let bucket = &found.resources[0];
    assert_eq!(
        bucket.mirror_of.as_deref(),
        Some("aws_s3_bucket_versioning.v")
    );
    assert_eq!(bucket.severity, Severity::Info);
}

#[test]
fn an_entry_with_more_than_echoes_is_not_a_mirror() {
    let versioning = (
        "aws_s3_bucket_versioning",
        "v",
        None,
        json!({"id": "b", "bucket": "b"}),
    );
    let prev = state(&[
        (
            "aws_s3_bucket",
            "b",
            None,
            json!({"id": "b", "bucket": "b", "versioning": [{"enabled": true}], "object_lock_enabled": true}),
        ),
        versioning.clone(),
    ]);
    let refreshed = state(&[
        (
            "aws_s3_bucket",
            "b",
            None,
            json!({"id": "b", "bucket": "b", "versioning": [{"enabled": false}], "object_lock_enabled": false}),
        ),
        versioning,
    ]);
    let found = report(&prev, &refreshed);
    let bucket = &found.resources[0];
    assert_eq!(bucket.mirror_of, None);
    assert_eq!(
        bucket.severity,
        Severity::Warning,
        "object lock, not the echo"
    );
}

#[test]
fn inline_bucket_settings_are_real_findings() {
    let prev = one(
        "aws_s3_bucket",
        "b",
        json!({"id": "b", "bucket": "b", "versioning": [{"enabled": true}]}),
    );
    let refreshed = one(
        "aws_s3_bucket",
        "b",
        json!({"id": "b", "bucket": "b", "versioning": [{"enabled": false}]}),
    );
    let found = report(&prev, &refreshed);
    assert_eq!(found.resources[0].mirror_of, None);
    assert_eq!(found.resources[0].severity, Severity::Warning);
}
