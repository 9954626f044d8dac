//! Small types shared by both kinds: severities, object references, condition names.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Re-exported so users of the API see one duration type (Go `time.ParseDuration` syntax,
/// e.g. `90s`, `5m`, `1h30m`).
pub use kube::core::Duration;

/// How serious a finding is. Ordered: `info < warning < critical`.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Cosmetic or bookkeeping change (tags, descriptions).
    #[default]
    Info,
    /// Security-relevant setting weakened (versioning, logging, ...).
    Warning,
    /// Exposure or loss: world-open network rules, encryption or public-access blocks
    /// weakened, IAM policy changed, resource deleted out of band.
    Critical,
}

impl Severity {
    /// Lower-case name as it appears in the API and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reference to an object by name in the same namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalObjectReference {
    /// Name of the object in the same namespace.
    pub name: String,
}

/// Reference to one key of a Secret or ConfigMap in the same namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySelector {
    /// Name of the Secret or ConfigMap in the same namespace.
    pub name: String,
    /// Key inside it. When omitted, a documented default key for the field is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Condition types written on a PangeaTemplate. Their names are part of the API.
pub mod condition {
    /// The infrastructure matches the template and the last reconcile succeeded.
    pub const READY: &str = "Ready";
    /// Reality differs from the last applied state (changes made outside Terraform).
    pub const DRIFTED: &str = "Drifted";
    /// The last compliance check passed.
    pub const COMPLIANT: &str = "Compliant";
    /// An execution is running for this object.
    pub const RECONCILING: &str = "Reconciling";
    /// Progress needs a person: invalid input, missing reference, repeated failure.
    pub const STALLED: &str = "Stalled";
    /// A remediation or change was refused by a safety rule or waits for approval/window.
    pub const REMEDIATION_BLOCKED: &str = "RemediationBlocked";
}

/// CEL rule for a duration string field: well-formed Go duration and at least `min`.
/// The syntax check comes first so a malformed value gets the message instead of a CEL
/// evaluation error (`&&` short-circuits on false).
pub fn min_duration_rule(min: &str) -> String {
    format!(
        "self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('{min}')"
    )
}
