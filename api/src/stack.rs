//! `PangeaStack`: PangeaTemplates reconciled in dependency order.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::LocalObjectReference;

/// Desired state of a PangeaStack: member templates and their dependencies.
// printcolumn is meant to repeat; clippy reads the derive attributes as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pangea.io",
    version = "v1alpha1",
    kind = "PangeaStack",
    namespaced,
    shortname = "pstk",
    category = "pangea",
    status = "PangeaStackStatus",
    doc = "PangeaTemplates reconciled in dependency order: a dependent is not planned or applied before its dependencies are Ready at their current generation.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.templatesReady"
    ),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.templatesTotal"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.templates.all(t, self.templates.exists_one(u, u.name == t.name))")
    .message("stack template names must be unique"))]
#[x_kube(validation = Rule::new("self.templates.all(t, t.dependsOn.all(d, self.templates.exists(u, u.name == d)))")
    .message("every dependsOn entry must name a template of this stack"))]
#[x_kube(validation = Rule::new("self.templates.all(t, !(t.name in t.dependsOn))")
    .message("a stack template cannot depend on itself"))]
pub struct PangeaStackSpec {
    /// Member templates.
    #[schemars(length(min = 1, max = 50))]
    pub templates: Vec<StackMember>,
    /// Order and failure handling.
    #[serde(default)]
    pub reconciliation: StackReconciliation,
}

/// One member of a stack.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StackMember {
    /// Name of the member inside the stack; `dependsOn` refers to it.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The PangeaTemplate in this namespace.
    pub template_ref: LocalObjectReference,
    /// Members that must be Ready first.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub depends_on: Vec<String>,
}

/// How a stack proceeds.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StackReconciliation {
    /// `sequential`: one member at a time in dependency order; `parallel`: every member whose
    /// dependencies are Ready.
    #[serde(default)]
    pub mode: StackMode,
    /// Continue with independent members after a member failed.
    #[serde(default)]
    pub continue_on_error: bool,
}

/// Stack ordering mode.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StackMode {
    /// One member at a time.
    #[default]
    Sequential,
    /// All members whose dependencies are Ready.
    Parallel,
}

/// Observed state of a PangeaStack.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PangeaStackStatus {
    /// Overall phase.
    #[serde(default)]
    pub phase: StackPhase,
    /// Members whose template is Ready at its current generation.
    #[serde(default)]
    pub templates_ready: u32,
    /// Members in the stack.
    #[serde(default)]
    pub templates_total: u32,
    /// Member names in the order they are reconciled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// When the stack was last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Time>,
    /// `Ready`, `Stalled` (e.g. a dependency cycle, named in the message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Phase of a stack.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StackPhase {
    /// Not started.
    #[default]
    Pending,
    /// Members are being reconciled.
    Running,
    /// Every member is Ready.
    Ready,
    /// A member failed or the stack is invalid.
    Failed,
}
