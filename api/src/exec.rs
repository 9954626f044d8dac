//! The execution contract: one typed request in, one typed result out. The operator writes a
//! [`Request`] (to a ConfigMap for the Job backend, or in memory for the local backend); the
//! executor answers with a [`ExecutionResult`]. Neither side reads the other's internals.
//!
//! Secrets never travel inside a request: they are named by file path or environment variable
//! and read by the executor at run time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    report::{ComplianceReport, DriftReport, PlanReport},
    template::{IacBinary, IgnoreRule, SeverityRule},
};

/// What an execution does.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionKind {
    /// Normal plan: pending configuration changes.
    Plan,
    /// Plan, check the approved id and safety limits, apply, settle state.
    Apply,
    /// Refresh-only plan: changes made outside Terraform.
    Drift,
    /// Compliance profiles against the refreshed state.
    Compliance,
    /// Destroy everything the template manages.
    Destroy,
}

impl ExecutionKind {
    /// Lower-case name, as used in metrics labels and Job names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Apply => "apply",
            Self::Drift => "drift",
            Self::Compliance => "compliance",
            Self::Destroy => "destroy",
        }
    }
}

/// One unit of work for the executor.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Unique id, echoed in the result.
    pub id: String,
    /// What to do.
    pub kind: ExecutionKind,
    /// The PangeaTemplate this is for (`namespace/name`); names the workspace.
    pub template: String,
    /// Where the Pangea file comes from, already resolved by the operator.
    pub source: RequestSource,
    /// Pangea namespace (backend selection from `pangea.yml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pangea_namespace: Option<String>,
    /// Which template block of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    /// Plain Terraform variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Sensitive variables: name → file whose content is the value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensitive_variable_files: BTreeMap<String, String>,
    /// State backend; `None` keeps the template's own (or Pangea namespace) backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<crate::template::StateBackend>,
    /// State backend used only when neither `backend` nor the template's Pangea namespace
    /// config (`pangea.yml`) selects one, so a template never runs on throwaway local state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<crate::template::StateBackend>,
    /// `terraform` or `tofu`.
    #[serde(default)]
    pub binary: IacBinary,
    /// Deadline of the whole execution, in seconds.
    pub timeout_seconds: u64,
    /// Severity overrides for the drift report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity_rules: Vec<SeverityRule>,
    /// Drift to leave out of the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRule>,
    /// Apply only: the plan id that was approved; the apply re-plans and refuses when the
    /// new plan's id differs (stale approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_plan_id: Option<String>,
    /// Apply only: safety limits.
    #[serde(default)]
    pub limits: ApplyLimits,
    /// Compliance only: profile directories on the executor's filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_profiles: Vec<String>,
    /// Creates an earlier apply had in flight when it was interrupted (its result's
    /// `inFlightCreates`), for executors whose workspace did not survive (Job pods). Merged
    /// with the workspace's own journal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight_creates: Vec<InFlightCreate>,
    /// The apply interrupted since the last successful one (its execution id). Plan ids made
    /// while it is set are bound to it too, so an approval given before the interruption can
    /// never apply again: a person approves the plan made after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_apply: Option<String>,
    /// Orphan addresses a person resolved (imported or deleted): dropped from the workspace's
    /// journal before anything else, so they are never adopted or named again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget_orphans: Vec<String>,
}

/// What an execution in a pod records before the steps a sudden death would leave unfinished,
/// so the operator can tell what the dead pod left behind: published next to the result
/// (`progress.json` in the result ConfigMap) and overwritten as the execution goes on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Creates the running apply may have in flight (its plan's creates plus those carried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight_creates: Vec<InFlightCreate>,
    /// Where the state lock lives, when the operator can read it (the `kubernetes` backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_lock: Option<StateLockRef>,
}

/// A state lock the operator can inspect.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum StateLockRef {
    /// The `kubernetes` backend's Lease (`lock-tfstate-<workspace>-<suffix>`).
    KubernetesLease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
    },
}

/// Where the template file comes from, as given to the executor.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum RequestSource {
    /// The file's content (inline and ConfigMap sources).
    Content {
        /// Ruby text of the template file.
        content: String,
        /// File name reported in diagnostics.
        #[serde(default = "default_file_name")]
        file_name: String,
    },
    /// A file on the executor's own filesystem (the CLI); files beside it are available to
    /// `require_relative`. Never produced by the operator.
    Local {
        /// Path of the template file.
        path: String,
    },
    /// A file in a git repository.
    Git {
        /// Repository URL.
        repository: String,
        /// Branch, tag or commit.
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        git_ref: Option<String>,
        /// Template file path inside the repository.
        #[serde(default = "default_file_name")]
        path: String,
        /// Directory holding credential files: `token` (and optional `username`, default
        /// `x-access-token`) for HTTPS, or `identity` (and optional `known_hosts`) for SSH.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_dir: Option<String>,
    },
}

/// Safety limits enforced by the executor before an apply.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplyLimits {
    /// Allow deletes and replacements.
    #[serde(default)]
    pub allow_destroy: bool,
    /// Maximum resources changed by one apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<u32>,
    /// Import orphans of an interrupted apply whose identity the configuration names
    /// unambiguously (`safety.adoptOrphans`).
    #[serde(default = "yes")]
    pub adopt_orphans: bool,
}

impl Default for ApplyLimits {
    fn default() -> Self {
        Self {
            allow_destroy: false,
            max_changes: None,
            adopt_orphans: true,
        }
    }
}

/// A create an apply had started but may not have recorded in state: terraform was
/// interrupted while the provider's call could still reach the cloud.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct InFlightCreate {
    /// Resource address, e.g. `aws_ssm_parameter.app_secret`.
    pub address: String,
    /// Resource type, e.g. `aws_ssm_parameter`.
    pub resource_type: String,
}

/// A resource an interrupted apply created outside state, imported by this execution.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedOrphan {
    /// Resource address it now has in state.
    pub address: String,
    /// Resource type.
    pub resource_type: String,
    /// The id it was imported with (a name from the configuration, never a secret).
    pub import_id: String,
}

/// A resource that may exist outside state and that this execution did not adopt; applies
/// stop until a person resolves it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    /// Resource address.
    pub address: String,
    /// Resource type.
    pub resource_type: String,
    /// Why it was not adopted.
    pub reason: String,
    /// What resolves it, e.g. a `terraform import` command or deleting the duplicate.
    pub resolution: String,
}

/// How an execution ended.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Done; see the reports.
    Succeeded,
    /// The apply was refused before changing anything (safety limit or stale approval).
    Refused,
    /// Failed; see `error`.
    Failed,
    /// Interrupted at its deadline; state was left consistent and unlocked.
    TimedOut,
}

/// The executor's answer to one [`Request`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionResult {
    /// The request's id.
    pub id: String,
    /// The request's kind.
    pub kind: ExecutionKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Git commit SHA or content hash of the evaluated source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Drift found (drift executions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    /// Pending changes (plan executions), or what was applied (apply executions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanReport>,
    /// Compliance findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<ComplianceReport>,
    /// Resources in state after the execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_total: Option<u32>,
    /// Non-sensitive outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// Why it failed or was refused (secret-free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExecutionError>,
    /// Wall-clock seconds spent.
    pub duration_seconds: f64,
    /// Creates still in flight after this execution (an interrupted apply); give them back
    /// in the next request's `inFlightCreates`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight_creates: Vec<InFlightCreate>,
    /// Orphans of an earlier interrupted apply that this execution imported into state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<AdoptedOrphan>,
    /// Orphans that stop applies until a person resolves them (reason `OrphansFound`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<Orphan>,
}

/// A classified failure.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionError {
    /// Whether retrying later may help (`true`) or a person must act (`false`).
    pub transient: bool,
    /// Short machine-readable cause, e.g. `CompileError`, `StaleApproval`, `DestroyNotAllowed`.
    pub reason: String,
    /// Human-readable message, with `file:line` for template errors.
    pub message: String,
}

fn yes() -> bool {
    true
}

fn default_file_name() -> String {
    "main.rb".to_owned()
}
