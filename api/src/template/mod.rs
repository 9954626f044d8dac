//! `PangeaTemplate`: one Pangea template whose infrastructure the operator keeps compared with
//! reality. The spec lives here; the status in [`status`]; policy sub-objects in [`policy`].

pub mod policy;
pub mod source;
pub mod status;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::{policy::*, source::*, status::*};
use crate::common::{Duration, KeySelector, Severity};

/// Desired state of a PangeaTemplate: where the template comes from, how it is evaluated,
/// where its state lives, and the policies for drift, remediation, safety and compliance.
// printcolumn is meant to repeat; clippy reads the derive attributes as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pangea.io",
    version = "v1alpha1",
    kind = "PangeaTemplate",
    namespaced,
    shortname = "ptpl",
    category = "pangea",
    status = "PangeaTemplateStatus",
    doc = "A Pangea template (Ruby DSL compiled to Terraform JSON) continuously compared with the real infrastructure: drift is reported per attribute with a severity and remediated under an explicit policy.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Drift",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Drifted\")].status"
    ),
    printcolumn(
        name = "Severity",
        type_ = "string",
        json_path = ".status.drift.severity"
    ),
    printcolumn(
        name = "Compliance",
        type_ = "string",
        json_path = ".status.compliance.status"
    ),
    printcolumn(
        name = "Last Check",
        type_ = "date",
        json_path = ".status.drift.lastCheckTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PangeaTemplateSpec {
    /// Where the template file comes from: exactly one of git, configMap or inline.
    pub source: TemplateSource,
    /// How the Pangea file is evaluated: namespace, which template block, variables.
    #[serde(default)]
    pub pangea: PangeaSettings,
    /// Terraform state backend. Omit to keep state in a Secret in this namespace (backend
    /// `kubernetes`), or to use the backend of the Pangea namespace when `pangea.namespace` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateBackend>,
    /// When the template is reconciled (planned and, if approved, applied).
    #[serde(default)]
    pub reconciliation: Reconciliation,
    /// Periodic comparison of the real infrastructure with the last applied state.
    #[serde(default)]
    pub drift_detection: DriftDetection,
    /// Limits on what any apply may do.
    #[serde(default)]
    pub safety: Safety,
    /// Compliance profiles checked against the refreshed state.
    #[serde(default)]
    pub compliance: Compliance,
    /// Who is told about drift, blocked remediation and failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub notifications: Vec<Notification>,
    /// Approves the pending plan with this id (see `status.plan.id`). An id that no longer
    /// matches the current plan is reported as stale and nothing is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub approve_plan: Option<String>,
    /// Stops all changes (applies and remediation). Drift checks continue.
    #[serde(default)]
    pub suspend: bool,
    /// How executions run: binary, and for the Job backend the image and pod settings.
    #[serde(default)]
    pub executor: ExecutorSettings,
}

/// How the Pangea file is evaluated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PangeaSettings {
    /// Pangea namespace: selects the state backend from `pangea.yml` / `pangea.yaml` beside the
    /// template, when present and `spec.state` is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub namespace: Option<String>,
    /// Name of the `template :name do ... end` block to manage. Required when the file holds
    /// more than one template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub template: Option<String>,
    /// Apply spec changes and periodic reconciles without waiting for `approvePlan`, within
    /// the safety limits. When false, changes are planned and wait for approval.
    #[serde(default)]
    pub auto_approve: bool,
    /// Terraform input variables given as plain values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::template::source::free_form_map")]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Terraform input variables read from Secrets, ConfigMaps or another template's outputs.
    /// Values from Secrets are treated as sensitive and never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub variables_from: Vec<VariablesFrom>,
}

/// One source of Terraform variables. Exactly one of `secretRef`, `configMapRef`,
/// `templateOutputs`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.secretRef), has(self.configMapRef), has(self.templateOutputs)].filter(x, x).size() == 1"
).message("variablesFrom entry must set exactly one of secretRef, configMapRef or templateOutputs"))]
pub struct VariablesFrom {
    /// Every key of this Secret (or only `key`) becomes a sensitive variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeySelector>,
    /// Every key of this ConfigMap (or only `key`) becomes a variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeySelector>,
    /// The non-sensitive outputs of another PangeaTemplate in this namespace become variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_outputs: Option<TemplateOutputsRef>,
    /// Prefix added to every variable name taken from this source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Outputs of another PangeaTemplate used as variables.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateOutputsRef {
    /// Name of the PangeaTemplate in the same namespace.
    pub name: String,
    /// Only these outputs; all non-sensitive outputs when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
}

/// When the template is reconciled.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// `event-driven`: on spec or source changes only; `periodic`: every `interval`;
    /// `hybrid`: both.
    #[serde(default)]
    pub mode: ReconciliationMode,
    /// Period of the periodic reconcile, at least 1m.
    #[serde(default = "default_reconcile_interval")]
    #[x_kube(validation = Rule::new(crate::common::min_duration_rule("1m")).message("reconciliation.interval must be a duration such as 5m or 1h, and at least 1m"))]
    #[schemars(length(max = 32))]
    pub interval: Duration,
    /// Deadline for one execution; it is interrupted (the lock released) when exceeded.
    #[serde(default = "default_timeout")]
    #[x_kube(validation = Rule::new(crate::common::min_duration_rule("30s")).message("reconciliation.timeout must be a duration such as 10m, and at least 30s"))]
    #[schemars(length(max = 32))]
    pub timeout: Duration,
}

impl Default for Reconciliation {
    fn default() -> Self {
        Self {
            mode: ReconciliationMode::default(),
            interval: default_reconcile_interval(),
            timeout: default_timeout(),
        }
    }
}

/// Reconciliation trigger mode.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReconciliationMode {
    /// Reconcile only when the spec or the source changes.
    EventDriven,
    /// Reconcile every `interval`.
    Periodic,
    /// Reconcile on changes and every `interval`.
    #[default]
    Hybrid,
}

/// How executions run.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSettings {
    /// Infrastructure-as-code binary: `terraform` or `tofu`.
    #[serde(default)]
    pub binary: IacBinary,
    /// Executor container image (Job backend only). Defaults to the operator's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Service account of the executor pod (Job backend only); cloud credentials usually come
    /// from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Resource requests and limits of the executor pod (Job backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The Terraform-compatible binary an execution runs.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IacBinary {
    /// HashiCorp Terraform.
    #[default]
    Terraform,
    /// OpenTofu.
    Tofu,
}

/// A channel people are told through.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'email' || has(self.secretRef)")
    .message("slack and webhook notifications need secretRef: the URL is a secret"))]
#[x_kube(validation = Rule::new("self.type != 'email' || size(self.recipients) > 0")
    .message("email notifications need at least one recipient"))]
#[x_kube(validation = Rule::new("self.type != 'email' || has(self.secretRef)")
    .message("email notifications need secretRef naming the SMTP server settings"))]
pub struct Notification {
    /// Kind of channel.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Slack channel (for example `#infra-alerts`); optional for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// E-mail addresses (type `email`).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub recipients: Vec<String>,
    /// Secret with the webhook URL (key `url`) or SMTP settings (keys `host`, `port`,
    /// `username`, `password`, `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeySelector>,
    /// Findings below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

/// Kind of notification channel.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// Slack incoming webhook.
    Slack,
    /// Generic JSON webhook.
    Webhook,
    /// E-mail over SMTP.
    Email,
}

fn default_reconcile_interval() -> Duration {
    std::time::Duration::from_secs(5 * 60).into()
}

fn default_timeout() -> Duration {
    std::time::Duration::from_secs(10 * 60).into()
}

fn default_min_severity() -> Severity {
    Severity::Warning
}
