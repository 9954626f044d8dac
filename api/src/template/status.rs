//! Observed state of a PangeaTemplate, written only by the operator. Field names are a
//! contract users script against; sizes are bounded and cuts are counted.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::Severity,
    exec::ExecutionKind,
    report::{ControlResult, DriftedResource},
};

/// Observed state of a PangeaTemplate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PangeaTemplateStatus {
    /// `Ready`, `Drifted`, `Compliant`, `Reconciling`, `Stalled`, `RemediationBlocked`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the last reconcile (plan or apply) finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Time>,
    /// When the last successful reconcile finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_reconcile_time: Option<Time>,
    /// Duration of the last reconcile, e.g. `12.4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_duration: Option<String>,
    /// Resources managed by the template and what the last apply did to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceCounts>,
    /// Changes made outside Terraform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftStatus>,
    /// Configuration changes not yet applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanStatus>,
    /// Result of the last compliance check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceStatus>,
    /// The template source that was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStatus>,
    /// Non-sensitive Terraform outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::template::source::free_form_map")]
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// The most recent execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execution: Option<ExecutionStatus>,
    /// Creates an interrupted apply had in flight: handed to the next execution, which adopts
    /// or names what they left outside state (an executor pod keeps no workspace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight_creates: Vec<crate::exec::InFlightCreate>,
    /// An apply that was interrupted (its pod died, or it hit its deadline) since the last
    /// successful apply. Plans made meanwhile get ids of their own, so an approval given
    /// before the interruption cannot apply again; cleared by a successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_apply: Option<String>,
}

/// Managed resources.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceCounts {
    /// Resources in state.
    pub total: u32,
    /// Created by the last apply.
    pub created: u32,
    /// Modified by the last apply.
    pub modified: u32,
    /// Deleted by the last apply.
    pub deleted: u32,
}

/// Drift as last observed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftStatus {
    /// Whether the last check found drift.
    pub detected: bool,
    /// Highest severity of the current drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// When drift was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// When the next check is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_time: Option<Time>,
    /// When the current drift was first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_detected_time: Option<Time>,
    /// Drifted resources with attribute detail, most severe first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<DriftedResource>,
    /// Drifted resources cut from `resources`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resources_omitted: u32,
    /// Past drift episodes, newest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DriftHistoryEntry>,
}

/// One past drift episode.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftHistoryEntry {
    /// When it was first seen.
    pub detected_time: Time,
    /// When it ended (remediated or gone); absent while ongoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_time: Option<Time>,
    /// Highest severity seen.
    pub severity: Severity,
    /// Number of drifted resources.
    pub resources: u32,
    /// How it ended: `remediated`, `reverted` (gone without an apply), `superseded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

/// Pending configuration changes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    /// Plan id to approve with `spec.approvePlan` or annotation `pangea.io/approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whether changes wait to be applied.
    pub pending: bool,
    /// Resources to create.
    pub add: u32,
    /// Resources to change.
    pub change: u32,
    /// Resources to destroy.
    pub destroy: u32,
    /// Source revision the plan was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Serial of the state the plan was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_serial: Option<i64>,
    /// Lineage of the state the plan was made against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_lineage: Option<String>,
}

/// Compliance as last checked.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceStatus {
    /// `Compliant`, `NonCompliant` or `Unknown`.
    pub status: ComplianceState,
    /// When compliance was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// When the next check is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_time: Option<Time>,
    /// Controls that passed.
    pub passed_controls: u32,
    /// Controls that failed.
    pub failed_controls: u32,
    /// Impact-weighted pass ratio, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Failed controls, highest impact first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ControlResult>,
}

/// Overall compliance.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComplianceState {
    /// Every control passed.
    Compliant,
    /// At least one control failed.
    NonCompliant,
    /// Not checked yet, or the check failed.
    #[default]
    Unknown,
}

/// The evaluated source.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Git commit SHA, or content hash for inline and ConfigMap sources.
    pub revision: String,
}

/// The most recent execution.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// Execution id.
    pub id: String,
    /// What it did.
    pub kind: ExecutionKind,
    /// `Running`, `Succeeded`, `Failed` or `TimedOut`.
    pub phase: ExecutionPhase,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Why it failed (never contains secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Failed executions in a row (drives the retry backoff; 0 after a success).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_failures: u32,
}

/// Phase of an execution.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionPhase {
    /// Started, not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Interrupted at its deadline.
    TimedOut,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
