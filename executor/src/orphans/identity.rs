//! Which configuration attributes name a resource in the cloud, per resource type: the import
//! id of a resource an interrupted apply created but never recorded. A small, pure table; a
//! type that is not in it is "not identifiable" and never adopted automatically.
//!
//! What belongs in the table: types whose import id is built only from arguments a person
//! writes (a bucket, a parameter name) and whose create fails when that name is taken, so one
//! name means one object. What does not: types imported by a cloud-assigned id (`aws_vpc`,
//! `aws_security_group`, `aws_instance`) and types whose names are not unique
//! (`aws_route53_zone`: Route53 creates a second zone of the same name).
//!
//! Settings resources whose "create" is an idempotent PUT on a parent (bucket versioning, a
//! role policy, an attachment) cannot leave an orphan: running the create again overwrites
//! the same object. They are [`Identity::Idempotent`].

use serde_json::Value;

/// How the import id of a type is built: the values of `required` (and of `optional` when
/// set) joined by `separator`, in order.
#[derive(Debug, Clone, Copy)]
struct IdRule {
    required: &'static [&'static str],
    optional: &'static [&'static str],
    separator: &'static str,
}

const fn attr(name: &'static [&'static str]) -> IdRule {
    IdRule {
        required: name,
        optional: &[],
        separator: "",
    }
}

/// Import ids per type, from the AWS provider's documented `terraform import` forms.
const IMPORT_IDS: &[(&str, IdRule)] = &[
    ("aws_s3_bucket", attr(&["bucket"])),
    ("aws_ssm_parameter", attr(&["name"])),
    ("aws_iam_role", attr(&["name"])),
    ("aws_iam_user", attr(&["name"])),
    ("aws_iam_group", attr(&["name"])),
    ("aws_iam_instance_profile", attr(&["name"])),
    ("aws_cloudwatch_log_group", attr(&["name"])),
    ("aws_dynamodb_table", attr(&["name"])),
    ("aws_ecr_repository", attr(&["name"])),
    ("aws_kms_alias", attr(&["name"])),
    ("aws_lambda_function", attr(&["function_name"])),
    ("aws_key_pair", attr(&["key_name"])),
    ("aws_db_instance", attr(&["identifier"])),
    (
        "aws_route53_record",
        IdRule {
            required: &["zone_id", "name", "type"],
            optional: &["set_identifier"],
            separator: "_",
        },
    ),
];

/// Types whose create writes settings onto an existing parent and may simply run again.
const IDEMPOTENT: &[&str] = &[
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_acl",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_iam_user_policy_attachment",
];

/// What the configuration says about the cloud identity of a planned create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Importable with this id.
    ImportId(String),
    /// Creating it again overwrites the same object: nothing to adopt.
    Idempotent,
    /// No id from configuration: why not.
    NotIdentifiable(&'static str),
}

/// The identity of a create of `resource_type` with planned values `after` and the plan's
/// sensitivity marks `after_sensitive` (both from `terraform show -json`'s
/// `resource_changes[].change`). An id attribute that is unknown until apply or sensitive is
/// not an identity: adoption must never depend on, or reveal, a secret.
pub fn identify(resource_type: &str, after: &Value, after_sensitive: &Value) -> Identity {
    if IDEMPOTENT.contains(&resource_type) {
        return Identity::Idempotent;
    }
    let Some((_, rule)) = IMPORT_IDS.iter().find(|(t, _)| *t == resource_type) else {
        return Identity::NotIdentifiable("its type is not imported by a configured name");
    };
    let value = |name: &str| -> Result<Option<String>, &'static str> {
        if after_sensitive
            .get(name)
            .is_some_and(|s| s != &Value::Bool(false))
        {
            return Err("its name is sensitive");
        }
        match after.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            _ => Ok(None),
        }
    };
    let mut parts = Vec::new();
    for name in rule.required {
        match value(name) {
            Ok(Some(v)) => parts.push(v),
            Ok(None) => return Identity::NotIdentifiable("its name is only known after apply"),
            Err(why) => return Identity::NotIdentifiable(why),
        }
    }
    for name in rule.optional {
        match value(name) {
            Ok(Some(v)) => parts.push(v),
            Ok(None) => {}
            Err(why) => return Identity::NotIdentifiable(why),
        }
    }
    Identity::ImportId(parts.join(rule.separator))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `(type, after, after_sensitive, expected)` as `terraform show -json` prints a create.
    fn fixtures() -> Vec<(&'static str, Value, Value, Identity)> {
        use Identity::*;
        vec![
            (
                "aws_ssm_parameter",
                json!({"name": "/p/app/secret", "type": "SecureString", "value": "x"}),
                json!({"value": true}),
                ImportId("/p/app/secret".into()),
            ),
            (
                "aws_s3_bucket",
                json!({"bucket": "p-logs", "force_destroy": false}),
                json!({}),
                ImportId("p-logs".into()),
            ),
            (
                // `bucket_prefix`: the name is chosen at apply time.
                "aws_s3_bucket",
                json!({"bucket_prefix": "p-"}),
                json!({}),
                NotIdentifiable("its name is only known after apply"),
            ),
            (
                "aws_ssm_parameter",
                json!({"name": "/secret/name"}),
                json!({"name": true}),
                NotIdentifiable("its name is sensitive"),
            ),
            (
                "aws_route53_record",
                json!({"zone_id": "Z123", "name": "app.example.com", "type": "A", "ttl": 300}),
                json!({"records": []}),
                ImportId("Z123_app.example.com_A".into()),
            ),
            (
                "aws_route53_record",
                json!({"zone_id": "Z123", "name": "app.example.com", "type": "A", "set_identifier": "blue"}),
                json!({}),
                ImportId("Z123_app.example.com_A_blue".into()),
            ),
            (
                // The zone is created in the same apply: its id is unknown.
                "aws_route53_record",
                json!({"name": "app.example.com", "type": "A"}),
                json!({}),
                NotIdentifiable("its name is only known after apply"),
            ),
            (
                "aws_route53_zone",
                json!({"name": "example.com"}),
                json!({}),
                NotIdentifiable("its type is not imported by a configured name"),
            ),
            (
                "aws_security_group",
                json!({"name": "https-internal"}),
                json!({}),
                NotIdentifiable("its type is not imported by a configured name"),
            ),
            (
                "aws_s3_bucket_versioning",
                json!({"bucket": "p-artifacts"}),
                json!({}),
                Idempotent,
            ),
        ]
    }

    #[test]
    fn identities_from_planned_values() {
        for (ty, after, sensitive, expected) in fixtures() {
            assert_eq!(identify(ty, &after, &sensitive), expected, "{ty} {after}");
        }
    }

    #[test]
    fn table_entries_are_unique_and_disjoint() {
        let mut types: Vec<&str> = IMPORT_IDS.iter().map(|(t, _)| *t).collect();
        types.extend(IDEMPOTENT);
        let count = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), count);
    }
}
