//! Severity of one drift finding: the template's own rules first (first match wins), then the
//! built-in table below.
//!
//! Built-in table, checked in order:
//!
//! | rule                   | severity | when                                                       |
//! |------------------------|----------|------------------------------------------------------------|
//! | deleted                | critical | the resource is gone                                       |
//! | replaced               | critical | its `id` changed: the object was deleted and recreated     |
//! | world-open network     | critical | a network rule now admits `0.0.0.0/0` or `::/0`, did not   |
//! | public-access weakened | critical | an S3 public-access-block flag is no longer `true`         |
//! | encryption weakened    | critical | an encryption setting was removed, emptied or turned off   |
//! | public ACL / exposure  | critical | a public canned ACL, or `publicly_accessible`-like flag on |
//! | IAM policy document    | critical | `policy`, `assume_role_policy` or `inline_policy` changed  |
//! | cosmetic               | info     | `tags`, `tags_all`, `description`, `comment`               |
//! | security setting       | warning  | versioning, logging, retention, backup, deletion and       |
//! |                        |          | termination protection, MFA delete, object lock,           |
//! |                        |          | replication, other encryption and network rule changes     |
//! | anything else          | warning  | unclassified                                               |
//!
//! Unclassified drift is a warning, not info: a change made behind Terraform's back to an
//! attribute we know nothing about may well matter, and only attributes known to be cosmetic
//! may be played down.

use globset::GlobMatcher;
use pangea_api::{common::Severity, report::DriftAction, template::policy::SeverityRule};
use serde_json::Value;

use super::{ReportError, glob::compile_glob, path::AttrPath};

/// What a severity is decided on.
#[derive(Clone, Copy, Debug)]
pub struct Finding<'a> {
    /// Resource type, e.g. `aws_security_group`.
    pub resource_type: &'a str,
    /// Drifted attribute; `None` for a deleted resource.
    pub path: Option<&'a AttrPath>,
    /// Value in the last applied state (`Null` when absent).
    pub expected: &'a Value,
    /// Value found in reality (`Null` when absent).
    pub actual: &'a Value,
    /// What happened to the resource.
    pub action: DriftAction,
}

/// The template's severity rules, compiled, in front of the built-ins.
#[derive(Clone, Debug, Default)]
pub struct SeverityRules(Vec<CompiledRule>);

#[derive(Clone, Debug)]
struct CompiledRule {
    resource_type: Option<GlobMatcher>,
    attribute: Option<GlobMatcher>,
    action: Option<DriftAction>,
    severity: Severity,
}

impl SeverityRules {
    /// Compiles the globs of the template's rules, keeping their order.
    pub fn compile(rules: &[SeverityRule]) -> Result<Self, ReportError> {
        rules
            .iter()
            .map(|rule| {
                Ok(CompiledRule {
                    resource_type: rule
                        .resource_type
                        .as_deref()
                        .map(compile_glob)
                        .transpose()?,
                    attribute: rule.attribute.as_deref().map(compile_glob).transpose()?,
                    action: rule.action,
                    severity: rule.severity,
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Severity of a finding: the first matching template rule, else the built-in table.
    pub fn classify(&self, finding: &Finding<'_>) -> Severity {
        self.0
            .iter()
            .find(|rule| rule.matches(finding))
            .map_or_else(|| builtin(finding), |rule| rule.severity)
    }
}

impl CompiledRule {
    fn matches(&self, finding: &Finding<'_>) -> bool {
        let type_ok = self
            .resource_type
            .as_ref()
            .is_none_or(|g| g.is_match(finding.resource_type));
        let action_ok = self.action.is_none_or(|a| a == finding.action);
        // An attribute glob names an attribute and covers everything beneath it, so
        // `ingress.*.cidr_blocks` matches `ingress.1.cidr_blocks.0`. A deleted resource has no
        // attribute: rules that need one do not apply to it.
        let attribute_ok = match (&self.attribute, finding.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(glob), Some(path)) => path.dotted_prefixes().iter().any(|p| glob.is_match(p)),
        };
        type_ok && action_ok && attribute_ok
    }
}

/// One row of the built-in table: when it applies, and the severity it gives.
type Builtin = (fn(&Finding<'_>) -> bool, Severity);

/// The built-in table, in order (see the module docs).
const BUILTINS: &[Builtin] = &[
    (deleted, Severity::Critical),
    (identity_replaced, Severity::Critical),
    (world_opened, Severity::Critical),
    (public_access_block_weakened, Severity::Critical),
    (encryption_weakened, Severity::Critical),
    (publicly_exposed, Severity::Critical),
    (iam_policy_changed, Severity::Critical),
    (cosmetic, Severity::Info),
    (security_setting, Severity::Warning),
];

/// Severity of drift no built-in row names (see the module docs for why not info).
pub const UNCLASSIFIED: Severity = Severity::Warning;

/// Severity from the built-in table alone.
pub fn builtin(finding: &Finding<'_>) -> Severity {
    BUILTINS
        .iter()
        .find(|(applies, _)| applies(finding))
        .map_or(UNCLASSIFIED, |(_, severity)| *severity)
}

const NETWORK_RULE_KEYS: &[&str] = &[
    "ingress",
    "egress",
    "cidr_blocks",
    "ipv6_cidr_blocks",
    "cidr_ipv4",
    "cidr_ipv6",
    "cidr_block",
    "ipv6_cidr_block",
];
const WORLD: &[&str] = &["0.0.0.0/0", "::/0"];
const PUBLIC_ACCESS_BLOCK_TYPES: &[&str] = &[
    "aws_s3_bucket_public_access_block",
    "aws_s3_account_public_access_block",
];
const PUBLIC_ACCESS_BLOCK_FLAGS: &[&str] = &[
    "block_public_acls",
    "block_public_policy",
    "ignore_public_acls",
    "restrict_public_buckets",
];
const PUBLIC_ACLS: &[&str] = &["public-read", "public-read-write", "authenticated-read"];
const EXPOSURE_FLAGS: &[&str] = &[
    "publicly_accessible",
    "associate_public_ip_address",
    "map_public_ip_on_launch",
];
const IAM_DOCUMENTS: &[&str] = &["policy", "assume_role_policy", "inline_policy"];
const COSMETIC_ROOTS: &[&str] = &["tags", "tags_all"];
const COSMETIC_LEAVES: &[&str] = &["description", "comment"];
const ENCRYPTION_KEYS: &[&str] = &["kms_key_id", "kms_master_key_id", "sse_algorithm"];
/// Words that make an attribute security-relevant wherever they appear in its path.
const SECURITY_WORDS: &[&str] = &[
    "versioning",
    "logging",
    "retention",
    "backup",
    "deletion_protection",
    "termination_protection",
    "mfa_delete",
    "object_lock",
    "replication",
    "encrypt",
];

fn keys<'a>(finding: &Finding<'a>) -> impl Iterator<Item = &'a str> {
    finding.path.into_iter().flat_map(|p| p.keys())
}

fn has_key(finding: &Finding<'_>, names: &[&str]) -> bool {
    keys(finding).any(|k| names.contains(&k))
}

fn last_key_in(finding: &Finding<'_>, names: &[&str]) -> bool {
    finding
        .path
        .and_then(AttrPath::last_key)
        .is_some_and(|k| names.contains(&k))
}

fn deleted(f: &Finding<'_>) -> bool {
    f.action == DriftAction::Deleted
}

fn identity_replaced(f: &Finding<'_>) -> bool {
    f.action == DriftAction::Replaced && f.path.and_then(AttrPath::root_key) == Some("id")
}

/// Whether any string anywhere in `value` is one of `needles`.
fn contains_string(value: &Value, needles: &[&str]) -> bool {
    match value {
        Value::String(s) => needles.contains(&s.as_str()),
        Value::Array(items) => items.iter().any(|v| contains_string(v, needles)),
        Value::Object(map) => map.values().any(|v| contains_string(v, needles)),
        _ => false,
    }
}

fn world_opened(f: &Finding<'_>) -> bool {
    has_key(f, NETWORK_RULE_KEYS)
        && contains_string(f.actual, WORLD)
        && !contains_string(f.expected, WORLD)
}

fn public_access_block_weakened(f: &Finding<'_>) -> bool {
    PUBLIC_ACCESS_BLOCK_TYPES.contains(&f.resource_type)
        && last_key_in(f, PUBLIC_ACCESS_BLOCK_FLAGS)
        && f.actual != &Value::Bool(true)
}

/// Null, empty, false or a word that means "off": what is left when encryption is removed.
fn is_off(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => {
            s.is_empty() || ["none", "disabled", "off"].contains(&s.to_ascii_lowercase().as_str())
        }
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

fn is_encryption_path(f: &Finding<'_>) -> bool {
    keys(f).any(|k| k.contains("encrypt") || ENCRYPTION_KEYS.contains(&k))
}

fn encryption_weakened(f: &Finding<'_>) -> bool {
    is_encryption_path(f) && is_off(f.actual) && !is_off(f.expected)
}

fn publicly_exposed(f: &Finding<'_>) -> bool {
    let public_acl = last_key_in(f, &["acl"])
        && f.actual
            .as_str()
            .is_some_and(|acl| PUBLIC_ACLS.contains(&acl));
    let flag_on = last_key_in(f, EXPOSURE_FLAGS) && f.actual == &Value::Bool(true);
    public_acl || flag_on
}

fn iam_policy_changed(f: &Finding<'_>) -> bool {
    has_key(f, IAM_DOCUMENTS)
}

fn cosmetic(f: &Finding<'_>) -> bool {
    let root = f.path.and_then(AttrPath::root_key);
    root.is_some_and(|r| COSMETIC_ROOTS.contains(&r)) || last_key_in(f, COSMETIC_LEAVES)
}

fn security_setting(f: &Finding<'_>) -> bool {
    has_key(f, NETWORK_RULE_KEYS)
        || keys(f).any(|k| SECURITY_WORDS.iter().any(|word| k.contains(word)))
}

#[cfg(test)]
#[path = "severity_tests.rs"]
mod tests;
