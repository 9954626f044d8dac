//! Reports produced by the executor and shown (bounded) in status: drift, pending plan,
//! compliance. One set of types so the executor's result and the CR status cannot disagree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::Severity;

/// What happened to a resource outside Terraform.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DriftAction {
    /// Attributes changed in place.
    Updated,
    /// The resource no longer exists.
    Deleted,
    /// The resource was recreated (its identity changed).
    Replaced,
}

/// One attribute whose real value differs from the last applied one.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct AttributeDrift {
    /// Attribute path, dot-separated with list indexes, e.g. `ingress.1.cidr_blocks.0`.
    pub path: String,
    /// Value in the last applied state, JSON-encoded; `(sensitive)` when secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// Value found in reality, JSON-encoded; `(sensitive)` when secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

/// One drifted resource.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriftedResource {
    /// Terraform address, e.g. `aws_security_group.web`.
    pub address: String,
    /// Resource type, e.g. `aws_security_group`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name in the configuration.
    pub name: String,
    /// What happened to it.
    pub action: DriftAction,
    /// Highest severity among its drifted attributes.
    pub severity: Severity,
    /// Changed attributes (empty when deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeDrift>,
    /// How many further changed attributes were cut to bound the size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attributes_omitted: u32,
    /// Set when this entry only echoes the drift of another resource (a computed mirror such
    /// as `aws_s3_bucket.versioning` for `aws_s3_bucket_versioning`): that resource's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<String>,
}

/// A drift check's finding.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Drifted resources, most severe first.
    #[serde(default)]
    pub resources: Vec<DriftedResource>,
    /// How many further drifted resources were cut to bound the size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources_omitted: u32,
}

impl DriftReport {
    /// Highest severity in the report, `None` when nothing drifted.
    pub fn severity(&self) -> Option<Severity> {
        self.resources.iter().map(|r| r.severity).max()
    }

    /// Whether anything drifted (including entries that were cut). Entries that only echo
    /// another resource (`mirror_of`) are not drift on their own.
    pub fn detected(&self) -> bool {
        self.drifted_count() > 0
    }

    /// Drifted resources, mirrors excluded, cut entries included.
    pub fn drifted_count(&self) -> u32 {
        let real = self
            .resources
            .iter()
            .filter(|r| r.mirror_of.is_none())
            .count();
        u32::try_from(real)
            .unwrap_or(u32::MAX)
            .saturating_add(self.resources_omitted)
    }
}

/// Planned change to one resource.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// Created.
    Create,
    /// Updated in place.
    Update,
    /// Deleted.
    Delete,
    /// Deleted and created again.
    Replace,
}

/// One planned resource change.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct PlannedChange {
    /// Terraform address.
    pub address: String,
    /// What the apply would do.
    pub action: ChangeAction,
}

/// A normal plan's pending changes (configuration not yet applied), never drift.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// Hash of (plan content, state lineage + serial, source revision); approvals name it.
    pub id: String,
    /// Resources to create.
    pub add: u32,
    /// Resources to update in place.
    pub change: u32,
    /// Resources to delete (replacements count here and in `add`).
    pub destroy: u32,
    /// Changed resources (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
    /// How many further changes were cut.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changes_omitted: u32,
    /// Lineage of the state the plan was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_lineage: Option<String>,
    /// Serial of the state the plan was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_serial: Option<i64>,
}

impl PlanReport {
    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.add + self.change + self.destroy > 0
    }
}

/// Outcome of one compliance control.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ControlResult {
    /// Control id, e.g. `s3-versioning-enabled`.
    pub id: String,
    /// One-line title.
    #[serde(default)]
    pub title: String,
    /// Weight 0..1 (InSpec impact).
    pub impact: f64,
    /// Whether every check of the control passed.
    pub passed: bool,
    /// Why it failed (first failing check), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Tags such as CIS ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A compliance check's finding.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
pub struct ComplianceReport {
    /// Every control that ran.
    #[serde(default)]
    pub controls: Vec<ControlResult>,
}

impl ComplianceReport {
    /// Impact-weighted pass ratio in percent; 100 when no control carries weight.
    pub fn score(&self) -> f64 {
        let total: f64 = self.controls.iter().map(|c| c.impact).sum();
        if total <= 0.0 {
            return 100.0;
        }
        let passed: f64 = self
            .controls
            .iter()
            .filter(|c| c.passed)
            .map(|c| c.impact)
            .sum();
        (passed / total * 1000.0).round() / 10.0
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
