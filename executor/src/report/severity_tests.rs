use pangea_api::{common::Severity, report::DriftAction, template::policy::SeverityRule};
use rstest::rstest;
use serde_json::{Value, json};

use super::*;
use crate::report::path::Segment;

fn path(dotted: &str) -> AttrPath {
    AttrPath(
        dotted
            .split('.')
            .map(|s| match s.parse() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::Key(s.into()),
            })
            .collect(),
    )
}

fn classify(
    rules: &SeverityRules,
    resource_type: &str,
    attribute: Option<&str>,
    expected: Value,
    actual: Value,
    action: DriftAction,
) -> Severity {
    let path = attribute.map(path);
    rules.classify(&Finding {
        resource_type,
        path: path.as_ref(),
        expected: &expected,
        actual: &actual,
        action,
    })
}

use DriftAction::{Deleted, Replaced, Updated};
use Severity::{Critical, Info, Warning};

#[rstest]
#[case::deleted("aws_s3_bucket", None, json!(null), json!(null), Deleted, Critical)]
#[case::replaced_identity("aws_instance", Some("id"), json!("i-1"), json!("i-2"), Replaced, Critical)]
#[case::replaced_other_attribute("aws_instance", Some("tags.Name"), json!("a"), json!("b"), Replaced, Info)]
#[case::ingress_rule_world_open(
    "aws_security_group", Some("ingress.1"), json!(null),
    json!({"cidr_blocks": ["0.0.0.0/0"], "from_port": 22, "to_port": 22, "protocol": "tcp"}), Updated, Critical
)]
#[case::ingress_cidr_world_open("aws_security_group", Some("ingress.0.cidr_blocks.0"), json!("10.0.0.0/8"), json!("0.0.0.0/0"), Updated, Critical)]
#[case::ipv6_world_open("aws_security_group", Some("egress.0.ipv6_cidr_blocks.0"), json!(null), json!("::/0"), Updated, Critical)]
#[case::rule_resource_world_open("aws_security_group_rule", Some("cidr_blocks.0"), json!("10.0.0.0/8"), json!("0.0.0.0/0"), Updated, Critical)]
#[case::vpc_rule_world_open("aws_vpc_security_group_ingress_rule", Some("cidr_ipv4"), json!("10.0.0.0/8"), json!("0.0.0.0/0"), Updated, Critical)]
#[case::already_world_open_rule_changed(
    "aws_security_group", Some("egress.0"),
    json!({"cidr_blocks": ["0.0.0.0/0"], "from_port": 0}), json!({"cidr_blocks": ["0.0.0.0/0"], "from_port": 1}), Updated, Warning
)]
#[case::ingress_narrowed("aws_security_group", Some("ingress.0.cidr_blocks.0"), json!("0.0.0.0/0"), json!("10.0.0.0/8"), Updated, Warning)]
#[case::ingress_rule_description("aws_security_group", Some("ingress.0.description"), json!("a"), json!("b"), Updated, Info)]
#[case::world_string_elsewhere("aws_ssm_parameter", Some("value"), json!("x"), json!("0.0.0.0/0"), Updated, Warning)]
#[case::public_access_block_off("aws_s3_bucket_public_access_block", Some("block_public_acls"), json!(true), json!(false), Updated, Critical)]
#[case::public_access_block_on("aws_s3_bucket_public_access_block", Some("block_public_policy"), json!(false), json!(true), Updated, Warning)]
#[case::encryption_removed(
    "aws_s3_bucket_server_side_encryption_configuration", Some("rule.0.apply_server_side_encryption_by_default.0.sse_algorithm"),
    json!("aws:kms"), json!(null), Updated, Critical
)]
#[case::encryption_turned_off("aws_ebs_volume", Some("encrypted"), json!(true), json!(false), Updated, Critical)]
#[case::encryption_key_changed("aws_s3_bucket_server_side_encryption_configuration", Some("rule.0.apply_server_side_encryption_by_default.0.kms_master_key_id"), json!("k1"), json!("k2"), Updated, Warning)]
#[case::encryption_turned_on("aws_ebs_volume", Some("encrypted"), json!(false), json!(true), Updated, Warning)]
#[case::public_acl("aws_s3_bucket_acl", Some("acl"), json!("private"), json!("public-read"), Updated, Critical)]
#[case::private_acl("aws_s3_bucket_acl", Some("acl"), json!("public-read"), json!("private"), Updated, Warning)]
#[case::publicly_accessible("aws_db_instance", Some("publicly_accessible"), json!(false), json!(true), Updated, Critical)]
#[case::bucket_policy("aws_s3_bucket_policy", Some("policy"), json!("{}"), json!("{\"a\":1}"), Updated, Critical)]
#[case::assume_role_policy("aws_iam_role", Some("assume_role_policy"), json!("{}"), json!("{\"a\":1}"), Updated, Critical)]
#[case::inline_policy("aws_iam_role", Some("inline_policy.0.policy"), json!("{}"), json!("{\"a\":1}"), Updated, Critical)]
#[case::tags("aws_vpc", Some("tags.Name"), json!("a"), json!("b"), Updated, Info)]
#[case::tags_all("aws_vpc", Some("tags_all.Env"), json!(null), json!("x"), Updated, Info)]
#[case::description("aws_security_group", Some("description"), json!("a"), json!("b"), Updated, Info)]
#[case::versioning("aws_s3_bucket_versioning", Some("versioning_configuration.0.status"), json!("Enabled"), json!("Suspended"), Updated, Warning)]
#[case::logging("aws_s3_bucket_logging", Some("target_bucket"), json!("a"), json!("b"), Updated, Warning)]
#[case::retention("aws_db_instance", Some("backup_retention_period"), json!(7), json!(0), Updated, Warning)]
#[case::deletion_protection("aws_db_instance", Some("deletion_protection"), json!(true), json!(false), Updated, Warning)]
#[case::dns_record("aws_route53_record", Some("records.0"), json!("10.42.0.10"), json!("10.42.0.99"), Updated, Warning)]
#[case::unclassified("aws_instance", Some("instance_type"), json!("t3.micro"), json!("t3.large"), Updated, UNCLASSIFIED)]
fn builtin_table(
    #[case] resource_type: &str,
    #[case] attribute: Option<&str>,
    #[case] expected: Value,
    #[case] actual: Value,
    #[case] action: DriftAction,
    #[case] severity: Severity,
) {
    let rules = SeverityRules::default();
    assert_eq!(
        classify(&rules, resource_type, attribute, expected, actual, action),
        severity
    );
}

#[test]
fn unclassified_drift_is_a_warning() {
    assert_eq!(UNCLASSIFIED, Warning);
}

fn rules(value: Value) -> SeverityRules {
    let parsed: Vec<SeverityRule> = serde_json::from_value(value).unwrap();
    SeverityRules::compile(&parsed).unwrap()
}

#[rstest]
#[case::type_glob(json!([{"resourceType": "aws_s3_*", "severity": "info"}]), "aws_s3_bucket", Some("tags.a"), Updated, Info)]
#[case::type_glob_miss(json!([{"resourceType": "aws_s3_*", "severity": "critical"}]), "aws_vpc", Some("tags.a"), Updated, Info)]
#[case::attribute_glob(json!([{"attribute": "tags.*", "severity": "critical"}]), "aws_vpc", Some("tags.Owner"), Updated, Critical)]
#[case::attribute_covers_below(json!([{"attribute": "ingress.*.cidr_blocks", "severity": "info"}]), "aws_security_group", Some("ingress.1.cidr_blocks.0"), Updated, Info)]
#[case::attribute_is_whole_segments(json!([{"attribute": "tag", "severity": "critical"}]), "aws_vpc", Some("tags.Owner"), Updated, Info)]
#[case::action_only(json!([{"action": "deleted", "severity": "warning"}]), "aws_s3_bucket", None, Deleted, Warning)]
#[case::action_miss(json!([{"action": "replaced", "severity": "info"}]), "aws_s3_bucket", None, Deleted, Critical)]
#[case::attribute_rule_never_matches_a_deletion(json!([{"attribute": "*", "severity": "info"}]), "aws_s3_bucket", None, Deleted, Critical)]
#[case::all_matchers(
    json!([{"resourceType": "aws_instance", "attribute": "instance_type", "action": "updated", "severity": "critical"}]),
    "aws_instance", Some("instance_type"), Updated, Critical
)]
#[case::first_match_wins(
    json!([{"attribute": "tags.*", "severity": "warning"}, {"attribute": "tags.Owner", "severity": "critical"}]),
    "aws_vpc", Some("tags.Owner"), Updated, Warning
)]
#[case::user_rule_before_builtin(json!([{"resourceType": "aws_security_group", "severity": "info"}]), "aws_security_group", Some("ingress.0.cidr_blocks.0"), Updated, Info)]
#[case::falls_through_to_builtin(json!([{"resourceType": "aws_iam_*", "severity": "info"}]), "aws_s3_bucket_policy", Some("policy"), Updated, Critical)]
fn user_rules(
    #[case] config: Value,
    #[case] resource_type: &str,
    #[case] attribute: Option<&str>,
    #[case] action: DriftAction,
    #[case] severity: Severity,
) {
    let actual = if attribute.is_some_and(|a| a.contains("cidr")) {
        json!("0.0.0.0/0")
    } else {
        json!("x")
    };
    assert_eq!(
        classify(
            &rules(config),
            resource_type,
            attribute,
            json!("y"),
            actual,
            action
        ),
        severity
    );
}

#[test]
fn an_invalid_rule_glob_is_an_error() {
    let parsed: Vec<SeverityRule> =
        serde_json::from_value(json!([{"attribute": "tags.{a", "severity": "info"}])).unwrap();
    assert!(matches!(
        SeverityRules::compile(&parsed),
        Err(ReportError::Glob { .. })
    ));
}
