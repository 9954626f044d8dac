//! The template's ignore rules: drift that is expected and not reported, optionally until a
//! given time.

use std::time::SystemTime;

use globset::GlobMatcher;
use pangea_api::template::policy::IgnoreRule;

use super::{
    ReportError,
    glob::{compile_address_glob, compile_glob},
    path::AttrPath,
};

/// Ignore rules still in force, compiled.
#[derive(Clone, Debug, Default)]
pub struct IgnoreRules(Vec<CompiledIgnore>);

#[derive(Clone, Debug)]
struct CompiledIgnore {
    address: GlobMatcher,
    /// Empty: the whole resource.
    attributes: Vec<GlobMatcher>,
}

impl IgnoreRules {
    /// Compiles the rules in force at `now`; a rule stops applying at its `until` time.
    ///
    /// Expired rules are dropped here, with `now` given by the caller, so the report itself is a
    /// pure function of its inputs.
    pub fn compile(rules: &[IgnoreRule], now: SystemTime) -> Result<Self, ReportError> {
        rules
            .iter()
            .filter(|rule| in_force(rule, now))
            .map(|rule| {
                Ok(CompiledIgnore {
                    address: compile_address_glob(&rule.address)?,
                    attributes: rule
                        .attributes
                        .iter()
                        .map(|a| compile_glob(a))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a rule without attributes names the resource.
    pub fn ignores_resource(&self, address: &str) -> bool {
        self.0
            .iter()
            .any(|r| r.attributes.is_empty() && r.address.is_match(address))
    }

    /// Whether the attribute at `path` of the resource is ignored. Like severity rules, an
    /// attribute glob covers everything beneath the attribute it names.
    pub fn ignores_attribute(&self, address: &str, path: &AttrPath) -> bool {
        let prefixes = path.dotted_prefixes();
        self.0
            .iter()
            .filter(|r| r.address.is_match(address))
            .any(|r| {
                r.attributes.is_empty()
                    || r.attributes
                        .iter()
                        .any(|g| prefixes.iter().any(|p| g.is_match(p)))
            })
    }
}

fn in_force(rule: &IgnoreRule, now: SystemTime) -> bool {
    rule.until
        .as_ref()
        .is_none_or(|until| now < SystemTime::from(until.0))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use rstest::rstest;
    use serde_json::json;

    use super::*;
    use crate::report::path::Segment;

    /// 2030-01-01T00:00:00Z.
    const NOW: u64 = 1_893_456_000;

    fn rules(value: serde_json::Value) -> IgnoreRules {
        let parsed: Vec<IgnoreRule> = serde_json::from_value(value).unwrap();
        IgnoreRules::compile(&parsed, UNIX_EPOCH + Duration::from_secs(NOW)).unwrap()
    }

    fn path(keys: &[&str]) -> AttrPath {
        AttrPath(
            keys.iter()
                .map(|k| match k.parse() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key((*k).into()),
                })
                .collect(),
        )
    }

    #[rstest]
    #[case::whole_resource(json!([{"address": "aws_s3_bucket.logs"}]), "aws_s3_bucket.logs", &["tags", "a"], true)]
    #[case::other_resource(json!([{"address": "aws_s3_bucket.logs"}]), "aws_s3_bucket.data", &["tags", "a"], false)]
    #[case::attribute_glob(json!([{"address": "aws_s3_bucket.*", "attributes": ["tags.*"]}]), "aws_s3_bucket.logs", &["tags", "a"], true)]
    #[case::attribute_prefix(json!([{"address": "aws_s3_bucket.*", "attributes": ["tags"]}]), "aws_s3_bucket.logs", &["tags", "a"], true)]
    #[case::other_attribute(json!([{"address": "aws_s3_bucket.*", "attributes": ["tags"]}]), "aws_s3_bucket.logs", &["versioning", "0", "enabled"], false)]
    #[case::not_a_prefix_of_name(json!([{"address": "aws_s3_bucket.*", "attributes": ["tag"]}]), "aws_s3_bucket.logs", &["tags_all"], false)]
    #[case::index_glob(json!([{"address": "aws_security_group.*", "attributes": ["ingress.*.description"]}]), "aws_security_group.web", &["ingress", "3", "description"], true)]
    #[case::count_instances(json!([{"address": "aws_instance.web[*]", "attributes": ["ami"]}]), "aws_instance.web[3]", &["ami"], true)]
    #[case::in_force(json!([{"address": "aws_s3_bucket.logs", "until": "2030-01-02T00:00:00Z"}]), "aws_s3_bucket.logs", &["tags"], true)]
    #[case::expired(json!([{"address": "aws_s3_bucket.logs", "until": "2029-12-31T00:00:00Z"}]), "aws_s3_bucket.logs", &["tags"], false)]
    #[case::expires_exactly_now(json!([{"address": "aws_s3_bucket.logs", "until": "2030-01-01T00:00:00Z"}]), "aws_s3_bucket.logs", &["tags"], false)]
    fn ignores_attributes(
        #[case] config: serde_json::Value,
        #[case] address: &str,
        #[case] attribute: &[&str],
        #[case] ignored: bool,
    ) {
        assert_eq!(
            rules(config).ignores_attribute(address, &path(attribute)),
            ignored
        );
    }

    #[test]
    fn only_rules_without_attributes_ignore_a_whole_resource() {
        let rules = rules(json!([
            {"address": "aws_s3_bucket.logs", "attributes": ["tags"]},
            {"address": "aws_vpc.*"}
        ]));
        assert!(!rules.ignores_resource("aws_s3_bucket.logs"));
        assert!(rules.ignores_resource("aws_vpc.main"));
    }

    #[test]
    fn an_invalid_glob_is_an_error() {
        let parsed: Vec<IgnoreRule> =
            serde_json::from_value(json!([{"address": "a", "attributes": ["{x"]}])).unwrap();
        assert!(matches!(
            IgnoreRules::compile(&parsed, UNIX_EPOCH),
            Err(ReportError::Glob { .. })
        ));
    }
}
