//! Policies of a PangeaTemplate: drift detection and remediation, safety limits, compliance.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    common::{Duration, LocalObjectReference, Severity},
    template::source::GitSource,
};

/// Periodic drift detection and what to do about drift.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.remediationPolicy != 'scheduled' || size(self.maintenanceWindows) > 0")
    .message("driftDetection.remediationPolicy 'scheduled' needs at least one maintenanceWindows entry"))]
pub struct DriftDetection {
    /// Whether drift is checked at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Time between drift checks, at least 1m.
    #[serde(default = "default_drift_interval")]
    #[x_kube(validation = Rule::new(crate::common::min_duration_rule("1m")).message("driftDetection.interval must be a duration such as 10m or 1h, and at least 1m"))]
    #[schemars(length(max = 32))]
    pub interval: Duration,
    /// Remediate detected drift by applying the template, following `remediationPolicy`.
    #[serde(default)]
    pub auto_remediate: bool,
    /// `immediate`: apply after the safety checks; `manual`: publish a plan id and wait for
    /// approval; `scheduled`: apply inside a maintenance window.
    #[serde(default)]
    pub remediation_policy: RemediationPolicy,
    /// Windows in which `scheduled` remediation may apply.
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// Severity overrides, checked in order before the built-in rules; the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub severity_rules: Vec<SeverityRule>,
    /// Differences that are expected and not reported as drift.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub ignore: Vec<IgnoreRule>,
}

impl Default for DriftDetection {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_drift_interval(),
            auto_remediate: false,
            remediation_policy: RemediationPolicy::default(),
            maintenance_windows: Vec::new(),
            severity_rules: Vec::new(),
            ignore: Vec::new(),
        }
    }
}

/// How drift is remediated when `autoRemediate` is on.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RemediationPolicy {
    /// Apply as soon as drift is found, within the safety limits.
    Immediate,
    /// Wait for `spec.approvePlan` or the annotation `pangea.io/approve=<plan id>`.
    #[default]
    Manual,
    /// Apply inside one of `maintenanceWindows`.
    Scheduled,
}

/// A recurring window in which scheduled remediation may run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    /// Start of the window as a 5-field cron expression (minute hour day-of-month month
    /// day-of-week), e.g. `0 2 * * 6` for Saturdays at 02:00.
    #[x_kube(validation = Rule::new("self.matches('^[0-9*,/-]+ [0-9*,/-]+ [0-9*,/?LW-]+ [0-9A-Za-z*,/-]+ [0-9A-Za-z*,/?L#-]+$')")
        .message("maintenanceWindows[].schedule must be a 5-field cron expression such as '0 2 * * 6'"))]
    #[schemars(length(max = 100))]
    pub schedule: String,
    /// Length of the window.
    #[x_kube(validation = Rule::new(crate::common::min_duration_rule("1m")).message("maintenanceWindows[].duration must be a duration such as 2h, and at least 1m"))]
    #[schemars(length(max = 32))]
    pub duration: Duration,
    /// IANA time zone of `schedule`, e.g. `Europe/Berlin`. Defaults to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A severity override. Every given matcher must match.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeverityRule {
    /// Glob on the resource type, e.g. `aws_s3_*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Glob on the attribute path, e.g. `tags.*` or `ingress.*.cidr_blocks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Drift action to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<crate::report::DriftAction>,
    /// Severity given to matching drift.
    pub severity: Severity,
}

/// Drift that is expected and not reported.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// Resource address glob, e.g. `aws_autoscaling_group.web` or `aws_s3_bucket.*`.
    pub address: String,
    /// Attribute path globs to ignore; the whole resource when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// The rule stops applying at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
}

/// Limits on what any apply may do.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.deletionPolicy != 'Destroy' || self.allowDestroy")
    .message("safety.deletionPolicy 'Destroy' requires safety.allowDestroy: true"))]
pub struct Safety {
    /// Allow plans that delete or replace resources.
    #[serde(default)]
    pub allow_destroy: bool,
    /// Refuse plans that touch more than this many resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("safety.maxChanges must be at least 1"))]
    pub max_changes: Option<i32>,
    /// On deletion of the PangeaTemplate: `Orphan` keeps the infrastructure, `Destroy`
    /// destroys it (requires `allowDestroy`).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// After an interrupted apply, import resources it was creating that exist but are not in
    /// state, when their configuration names them unambiguously (a bucket, a parameter name).
    /// When false, or when the identity is not known, the apply stops and names each orphan.
    #[serde(default = "yes")]
    pub adopt_orphans: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            allow_destroy: false,
            max_changes: None,
            deletion_policy: DeletionPolicy::default(),
            adopt_orphans: true,
        }
    }
}

/// What happens to the infrastructure when the PangeaTemplate is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Keep the infrastructure and its state; only stop managing it.
    #[default]
    Orphan,
    /// Destroy the infrastructure.
    Destroy,
}

/// Compliance checks against the refreshed state.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.enabled || size(self.profiles) > 0")
    .message("compliance.enabled needs at least one compliance.profiles entry"))]
pub struct Compliance {
    /// Whether compliance is checked.
    #[serde(default)]
    pub enabled: bool,
    /// InSpec-style profiles to run.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub profiles: Vec<ComplianceProfile>,
    /// Time between checks, at least 1m.
    #[serde(default = "default_compliance_interval")]
    #[x_kube(validation = Rule::new(crate::common::min_duration_rule("1m")).message("compliance.interval must be a duration such as 1h, and at least 1m"))]
    #[schemars(length(max = 32))]
    pub interval: Duration,
    /// Block applies (condition `RemediationBlocked`) while the template is non-compliant.
    #[serde(default)]
    pub fail_on_non_compliance: bool,
}

impl Default for Compliance {
    fn default() -> Self {
        Self {
            enabled: false,
            profiles: Vec::new(),
            interval: default_compliance_interval(),
            fail_on_non_compliance: false,
        }
    }
}

/// One compliance profile: built in (by name) or from a ConfigMap or git.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.configMap) && has(self.git))")
    .message("a compliance profile takes at most one of configMap or git"))]
pub struct ComplianceProfile {
    /// Profile name; without a source, one of the profiles bundled with the operator.
    pub name: String,
    /// ConfigMap holding the profile: key `inspec.yml` and one key per control file
    /// (`controls_<file>.rb`, since keys cannot contain `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<LocalObjectReference>,
    /// Profile directory in a git repository (`path` names the directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// Secret with profile inputs (each key one input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_secret_ref: Option<LocalObjectReference>,
}

fn yes() -> bool {
    true
}

fn default_drift_interval() -> Duration {
    std::time::Duration::from_secs(10 * 60).into()
}

fn default_compliance_interval() -> Duration {
    std::time::Duration::from_secs(60 * 60).into()
}
