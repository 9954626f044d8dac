//! Drift report from the two states of a refresh-only plan: the last applied state
//! ("expected") and the refreshed one ("actual").
//!
//! Terraform's own `resource_drift` is the same comparison, but reading it needs
//! `terraform show -json` (≈ 2 s here), while both states sit in the saved plan file already
//! ([`planfile`](super::planfile)). Working on states also keeps this engine-independent: any
//! engine that can produce the refreshed state feeds the same code. Steps per resource instance:
//! diff → ignore rules → severity → computed mirrors → redaction → size bounds.

use std::time::SystemTime;

use pangea_api::{
    common::Severity,
    report::{AttributeDrift, DriftAction, DriftReport, DriftedResource},
    template::policy::{DriftDetection, IgnoreRule, SeverityRule},
};
use serde_json::Value;

use super::{
    ReportError,
    diff::{ValueDrift, diff_values},
    ignore::IgnoreRules,
    mirror::MirrorIndex,
    path::SensitivePaths,
    render::{Redactor, Render},
    severity::{Finding, SeverityRules},
    state::{Located, StateV4},
};

/// Size limits of a report, so it fits a status and a log line. Whatever is cut is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBounds {
    /// Drifted resources kept (the most severe).
    pub max_resources: usize,
    /// Attributes kept per resource (the most severe).
    pub max_attributes: usize,
    /// Longest rendered value in bytes; longer ones are cut with a marker.
    pub max_value_len: usize,
}

impl Default for ReportBounds {
    /// Every drifted resource of any real template (the operator bounds what it shows in
    /// status itself), a screenful of attributes each and values cut at 256 bytes. The
    /// result codec cuts the lists further only when the encoded result would not fit a
    /// ConfigMap or exceed what the decoder accepts, and counts what it cut.
    fn default() -> Self {
        Self {
            max_resources: 10_000,
            max_attributes: 10,
            max_value_len: 256,
        }
    }
}

/// Everything besides the two states that shapes a drift report.
#[derive(Clone, Debug, Default)]
pub struct DriftOptions {
    severity: SeverityRules,
    ignore: IgnoreRules,
    redactor: Redactor,
    bounds: ReportBounds,
}

impl DriftOptions {
    /// Options from a template's drift policy: its severity and ignore rules, the latter
    /// evaluated at `now`.
    pub fn for_policy(policy: &DriftDetection, now: SystemTime) -> Result<Self, ReportError> {
        Self::default()
            .with_severity_rules(&policy.severity_rules)?
            .with_ignore_rules(&policy.ignore, now)
    }

    /// The template's severity rules, tried in order before the built-in ones.
    pub fn with_severity_rules(mut self, rules: &[SeverityRule]) -> Result<Self, ReportError> {
        self.severity = SeverityRules::compile(rules)?;
        Ok(self)
    }

    /// The template's ignore rules; those whose `until` is not after `now` no longer apply.
    pub fn with_ignore_rules(
        mut self,
        rules: &[IgnoreRule],
        now: SystemTime,
    ) -> Result<Self, ReportError> {
        self.ignore = IgnoreRules::compile(rules, now)?;
        Ok(self)
    }

    /// Secret values (sensitive variables and outputs) to replace wherever they show.
    pub fn with_sensitive_values<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.redactor = Redactor::new(values);
        self
    }

    /// Size limits.
    pub fn with_bounds(mut self, bounds: ReportBounds) -> Self {
        self.bounds = bounds;
        self
    }
}

/// Drift between the last applied state `prev` and the refreshed state `refreshed`.
///
/// Managed resources only; resources are sorted most severe first, then by address. A
/// resource present in `prev` and gone from `refreshed` is one `deleted` entry. Instances that
/// exist only in `refreshed` are not drift (a refresh never creates objects). Values are
/// JSON text; a null or absent value is `None`, a sensitive one `(sensitive)`.
pub fn build_drift_report(prev: &StateV4, refreshed: &StateV4, opts: &DriftOptions) -> DriftReport {
    let before = prev.managed_instances();
    let after = refreshed.managed_instances();
    let mirrors = MirrorIndex::new(&before);
    let mut found: Vec<DriftedResource> = before
        .iter()
        .filter(|(address, _)| !opts.ignore.ignores_resource(address))
        .filter_map(|(address, old)| match after.get(address) {
            None => Some(deleted(address, old, opts)),
            Some(new) => compare(address, old, new, &mirrors, opts),
        })
        .collect();
    found.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.address.cmp(&b.address))
    });
    let resources_omitted = count(found.len().saturating_sub(opts.bounds.max_resources));
    found.truncate(opts.bounds.max_resources);
    DriftReport {
        resources: found,
        resources_omitted,
    }
}

fn deleted(address: &str, old: &Located<'_>, opts: &DriftOptions) -> DriftedResource {
    let severity = opts.severity.classify(&Finding {
        resource_type: &old.resource.resource_type,
        path: None,
        expected: &Value::Null,
        actual: &Value::Null,
        action: DriftAction::Deleted,
    });
    entry(address, old, DriftAction::Deleted, severity)
}

fn entry(
    address: &str,
    located: &Located<'_>,
    action: DriftAction,
    severity: Severity,
) -> DriftedResource {
    DriftedResource {
        address: address.to_owned(),
        resource_type: located.resource.resource_type.clone(),
        name: located.resource.name.clone(),
        action,
        severity,
        attributes: Vec::new(),
        attributes_omitted: 0,
        mirror_of: None,
    }
}

/// One drifted attribute while the entry is being built.
struct Classified {
    drift: ValueDrift,
    severity: Severity,
    mirror_of: Option<String>,
}

fn compare(
    address: &str,
    old: &Located<'_>,
    new: &Located<'_>,
    mirrors: &MirrorIndex,
    opts: &DriftOptions,
) -> Option<DriftedResource> {
    let action = match (old.id(), new.id()) {
        (Some(a), Some(b)) if a != b => DriftAction::Replaced,
        _ => DriftAction::Updated,
    };
    let resource_type = old.resource.resource_type.as_str();
    let mut attributes: Vec<Classified> =
        diff_values(&old.instance.attributes, &new.instance.attributes)
            .into_iter()
            .filter(|d| !opts.ignore.ignores_attribute(address, &d.path))
            .map(|drift| {
                let mirror_of = mirrors
                    .mirror_of(resource_type, &old.instance.attributes, &drift)
                    .map(str::to_owned);
                let severity = match mirror_of {
                    Some(_) => Severity::Info,
                    None => opts.severity.classify(&Finding {
                        resource_type,
                        path: Some(&drift.path),
                        expected: &drift.expected,
                        actual: &drift.actual,
                        action,
                    }),
                };
                Classified {
                    drift,
                    severity,
                    mirror_of,
                }
            })
            .collect();
    if attributes.is_empty() {
        return None;
    }
    attributes.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.drift.path.cmp(&b.drift.path))
    });
    let severity = attributes.iter().map(|a| a.severity).max()?;
    let mut resource = entry(address, old, action, severity);
    // Only an entry made entirely of echoes is itself an echo.
    if attributes.iter().all(|a| a.mirror_of.is_some()) {
        resource.mirror_of = attributes.first().and_then(|a| a.mirror_of.clone());
    }
    let mut sensitive = SensitivePaths::from_state(&old.instance.sensitive_attributes);
    sensitive.extend(SensitivePaths::from_state(
        &new.instance.sensitive_attributes,
    ));
    let render = Render {
        redactor: &opts.redactor,
        max_len: opts.bounds.max_value_len,
    };
    resource.attributes_omitted =
        count(attributes.len().saturating_sub(opts.bounds.max_attributes));
    resource.attributes = attributes
        .iter()
        .take(opts.bounds.max_attributes)
        .map(|a| rendered(&a.drift, &sensitive, &render))
        .collect();
    Some(resource)
}

fn rendered(drift: &ValueDrift, sensitive: &SensitivePaths, render: &Render<'_>) -> AttributeDrift {
    let secret = sensitive.covers(&drift.path);
    AttributeDrift {
        // A map key can be a secret too (a sensitive value used as a key).
        path: render.redactor.scrub(&drift.path.to_string()),
        expected: render.value(&drift.expected, secret),
        actual: render.value(&drift.actual, secret),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
