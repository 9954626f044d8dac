//! Computed mirrors: attributes of one resource that only echo the settings of another.
//!
//! Since AWS provider v4 an S3 bucket's settings live in separate resources
//! (`aws_s3_bucket_versioning`, `..._logging`, ...), yet the provider still reads them back
//! into the bucket's legacy attributes (`versioning`, `logging`, ...). When such a setting
//! drifts, both resources show it; the separate resource is the real finding and the bucket
//! entry is an echo. Reporting the echo as a second warning or critical would double-count one
//! change, so an echo is played down to info and an entry made only of echoes is marked with
//! `mirror_of`. Each bucket setting resource is a singleton that reads the whole setting, so
//! any change of it shows on that resource too: its existence is enough.
//!
//! A security group's `ingress`/`egress` is different: separate rule resources each cover one
//! rule, and a rule added out of band belongs to none of them. The group's list is then the
//! only place the new (perhaps world-open) rule shows, so for groups only removals are echoes
//! (the rule resource reports itself deleted); anything added or changed stays a finding.
//!
//! The table is small on purpose: only pairs where the provider documents the split.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{diff::ValueDrift, state::Located};

/// Which drifts of a mirrored attribute are echoes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Echoes {
    /// Every change (the separate resource reads the whole setting).
    All,
    /// Only removals (the separate resources each cover a part).
    Removals,
}

/// A separate resource type, optionally only those with `attribute == value`.
struct MirrorType {
    resource_type: &'static str,
    only_if: Option<(&'static str, &'static str)>,
}

/// One mirrored setting: top-level `attribute` of `owner_type` echoes resources of `mirrors`,
/// which name their owner in `link_attribute` by the owner's `owner_key`.
struct Mirror {
    owner_type: &'static str,
    attribute: &'static str,
    owner_key: &'static str,
    link_attribute: &'static str,
    mirrors: &'static [MirrorType],
    echoes: Echoes,
}

const fn bucket(attribute: &'static str, mirrors: &'static [MirrorType]) -> Mirror {
    Mirror {
        owner_type: "aws_s3_bucket",
        attribute,
        owner_key: "bucket",
        link_attribute: "bucket",
        mirrors,
        echoes: Echoes::All,
    }
}

const fn group(
    owner_type: &'static str,
    attribute: &'static str,
    mirrors: &'static [MirrorType],
) -> Mirror {
    Mirror {
        owner_type,
        attribute,
        owner_key: "id",
        link_attribute: "security_group_id",
        mirrors,
        echoes: Echoes::Removals,
    }
}

const fn only(resource_type: &'static str) -> MirrorType {
    MirrorType {
        resource_type,
        only_if: None,
    }
}

const INGRESS_RULES: &[MirrorType] = &[
    MirrorType {
        resource_type: "aws_security_group_rule",
        only_if: Some(("type", "ingress")),
    },
    only("aws_vpc_security_group_ingress_rule"),
];
const EGRESS_RULES: &[MirrorType] = &[
    MirrorType {
        resource_type: "aws_security_group_rule",
        only_if: Some(("type", "egress")),
    },
    only("aws_vpc_security_group_egress_rule"),
];

const MIRRORS: &[Mirror] = &[
    bucket("versioning", &[only("aws_s3_bucket_versioning")]),
    bucket(
        "server_side_encryption_configuration",
        &[only("aws_s3_bucket_server_side_encryption_configuration")],
    ),
    bucket("logging", &[only("aws_s3_bucket_logging")]),
    bucket(
        "lifecycle_rule",
        &[only("aws_s3_bucket_lifecycle_configuration")],
    ),
    bucket("policy", &[only("aws_s3_bucket_policy")]),
    bucket("acl", &[only("aws_s3_bucket_acl")]),
    bucket("grant", &[only("aws_s3_bucket_acl")]),
    bucket("cors_rule", &[only("aws_s3_bucket_cors_configuration")]),
    bucket(
        "replication_configuration",
        &[only("aws_s3_bucket_replication_configuration")],
    ),
    group("aws_security_group", "ingress", INGRESS_RULES),
    group("aws_security_group", "egress", EGRESS_RULES),
    group("aws_default_security_group", "ingress", INGRESS_RULES),
    group("aws_default_security_group", "egress", EGRESS_RULES),
];

/// The separate resources of the last applied state, by what they point at.
pub struct MirrorIndex {
    /// (mirror table row, owner key) → address of the first such resource.
    by_owner: BTreeMap<(usize, String), String>,
}

impl MirrorIndex {
    /// Indexes the separate resources among `instances`: the last applied state, so a separate
    /// resource deleted out of band still counts (its deletion is what the owner echoes).
    pub fn new(instances: &BTreeMap<String, Located<'_>>) -> Self {
        let mut by_owner = BTreeMap::new();
        for (address, located) in instances {
            let attributes = &located.instance.attributes;
            for (row, mirror) in MIRRORS.iter().enumerate() {
                let is_mirror = mirror.mirrors.iter().any(|m| {
                    m.resource_type == located.resource.resource_type
                        && m.only_if
                            .is_none_or(|(k, v)| attributes.get(k) == Some(&v.into()))
                });
                let owner = attributes
                    .get(mirror.link_attribute)
                    .and_then(Value::as_str);
                if let (true, Some(owner)) = (is_mirror, owner) {
                    by_owner
                        .entry((row, owner.to_owned()))
                        .or_insert_with(|| address.clone());
                }
            }
        }
        Self { by_owner }
    }

    /// Address of the separate resource this drift of an `owner_type` resource (attributes
    /// `owner`) only echoes, if it is an echo.
    pub fn mirror_of(&self, owner_type: &str, owner: &Value, drift: &ValueDrift) -> Option<&str> {
        let attribute = drift.path.root_key()?;
        MIRRORS
            .iter()
            .enumerate()
            .filter(|(_, m)| m.owner_type == owner_type && m.attribute == attribute)
            .filter(|(_, m)| m.echoes == Echoes::All || drift.actual.is_null())
            .find_map(|(row, m)| {
                let key = owner.get(m.owner_key)?.as_str()?;
                self.by_owner.get(&(row, key.to_owned()))
            })
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::report::{
        path::{AttrPath, Segment},
        state::StateV4,
    };

    fn state() -> StateV4 {
        serde_json::from_value(json!({"resources": [
            {"mode": "managed", "type": "aws_s3_bucket_versioning", "name": "a",
             "instances": [{"attributes": {"id": "b1", "bucket": "b1"}}]},
            {"mode": "managed", "type": "aws_vpc_security_group_ingress_rule", "name": "https",
             "instances": [{"attributes": {"id": "sgr-1", "security_group_id": "sg-1"}}]},
            {"mode": "managed", "type": "aws_security_group_rule", "name": "out",
             "instances": [{"attributes": {"id": "r", "type": "egress", "security_group_id": "sg-2"}}]}
        ]}))
        .unwrap()
    }

    fn drift(root: &str, expected: serde_json::Value, actual: serde_json::Value) -> ValueDrift {
        ValueDrift {
            path: AttrPath(vec![Segment::Key(root.into()), Segment::Index(0)]),
            expected,
            actual,
        }
    }

    #[rstest]
    #[case::bucket_versioning("aws_s3_bucket", json!({"bucket": "b1"}), drift("versioning", json!(true), json!(false)), Some("aws_s3_bucket_versioning.a"))]
    #[case::other_bucket("aws_s3_bucket", json!({"bucket": "b2"}), drift("versioning", json!(true), json!(false)), None)]
    #[case::no_logging_resource("aws_s3_bucket", json!({"bucket": "b1"}), drift("logging", json!(null), json!({"a": 1})), None)]
    #[case::not_mirrored("aws_s3_bucket", json!({"bucket": "b1"}), drift("tags", json!("a"), json!("b")), None)]
    #[case::group_rule_removed("aws_security_group", json!({"id": "sg-1"}), drift("ingress", json!({"from_port": 443}), json!(null)), Some("aws_vpc_security_group_ingress_rule.https"))]
    #[case::group_rule_added_is_a_finding("aws_security_group", json!({"id": "sg-1"}), drift("ingress", json!(null), json!({"from_port": 22})), None)]
    #[case::group_rule_changed_is_a_finding("aws_security_group", json!({"id": "sg-1"}), drift("ingress", json!("10.0.0.0/8"), json!("0.0.0.0/0")), None)]
    #[case::group_without_egress_rules("aws_security_group", json!({"id": "sg-1"}), drift("egress", json!({"a": 1}), json!(null)), None)]
    #[case::rule_of_the_other_direction("aws_security_group", json!({"id": "sg-2"}), drift("ingress", json!({"a": 1}), json!(null)), None)]
    #[case::rule_of_its_direction("aws_security_group", json!({"id": "sg-2"}), drift("egress", json!({"a": 1}), json!(null)), Some("aws_security_group_rule.out"))]
    fn finds_echoes(
        #[case] owner_type: &str,
        #[case] owner: serde_json::Value,
        #[case] drift: ValueDrift,
        #[case] expected: Option<&str>,
    ) {
        let state = state();
        let index = MirrorIndex::new(&state.managed_instances());
        assert_eq!(index.mirror_of(owner_type, &owner, &drift), expected);
    }
}
