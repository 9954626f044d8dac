//! Prometheus metrics, prefix `pangea_`, labels from small fixed sets only (kind, result,
//! severity, trigger) — never template names, resources or attributes.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use pangea_api::{common::Severity, exec::Outcome};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResult {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabel {
    severity: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconcile_duration: Histogram,
    reconcile_errors: Counter,
    executions: Family<KindResult, Counter>,
    execution_duration: Family<KindLabel, Histogram>,
    drifted: Family<SeverityLabel, Gauge>,
    time_to_detect: Histogram,
    time_to_remediate: Histogram,
    status_writes: Counter,
    templates: Gauge,
    leader: Gauge,
    /// Current drift severity per template uid, to keep `drifted` exact.
    drift_by_template: Mutex<HashMap<String, Severity>>,
    /// Template uids reconciled by this process, to keep `templates` exact.
    reconciled_templates: Mutex<HashSet<String>>,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    [
        0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0,
        86400.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pangea");
        // Reconciles take milliseconds: their own finer buckets.
        let reconcile_duration = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
        ]);
        let reconcile_errors = Counter::default();
        let executions = Family::<KindResult, Counter>::default();
        let execution_duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        let drifted = Family::<SeverityLabel, Gauge>::default();
        let time_to_detect = Histogram::new(seconds_buckets());
        let time_to_remediate = Histogram::new(seconds_buckets());
        let status_writes = Counter::default();
        let templates = Gauge::default();
        let leader = Gauge::default();
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that returned an error",
            reconcile_errors.clone(),
        );
        registry.register(
            "executions",
            "Finished executions by kind and result",
            executions.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "Execution wall-clock time by kind",
            execution_duration.clone(),
        );
        registry.register(
            "drifted_templates",
            "Templates whose last drift check found drift, by severity",
            drifted.clone(),
        );
        registry.register("drift_time_to_detect_seconds", "From the last clean check to the check that found drift (upper bound of undetected drift)", time_to_detect.clone());
        registry.register(
            "drift_time_to_remediate_seconds",
            "From first detection to the apply that removed the drift",
            time_to_remediate.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches sent (skipped when nothing changed)",
            status_writes.clone(),
        );
        // Starts at 0 in a new process and reaches the fleet size once every template had
        // its first reconcile: the reconcile count cannot tell that, since Job and pod
        // events reconcile some templates several times.
        registry.register(
            "templates",
            "Templates this process has reconciled at least once and not seen deleted",
            templates.clone(),
        );
        // Every replica exports it, so "no leader" is `max(pangea_leader) < 1` across them.
        registry.register(
            "leader",
            "1 while this process leads (reconciles and starts executions), 0 on a standby",
            leader.clone(),
        );
        Self {
            registry,
            reconcile_duration,
            reconcile_errors,
            executions,
            execution_duration,
            drifted,
            time_to_detect,
            time_to_remediate,
            status_writes,
            templates,
            leader,
            drift_by_template: Mutex::default(),
            reconciled_templates: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Text exposition for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// One reconcile took `elapsed`; `failed` when it returned an error.
    pub fn reconciled(&self, elapsed: Duration, failed: bool) {
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        if failed {
            self.reconcile_errors.inc();
        }
    }

    /// An execution finished.
    pub fn executed(&self, kind: &str, outcome: Outcome, seconds: f64) {
        let result = match outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        };
        self.executions
            .get_or_create(&KindResult {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
        self.execution_duration
            .get_or_create(&KindLabel { kind: kind.into() })
            .observe(seconds);
    }

    /// Template `uid` was reconciled (its decision is in effect).
    pub fn template_reconciled(&self, uid: &str) {
        let mut set = lock(&self.reconciled_templates);
        if set.insert(uid.to_owned()) {
            self.templates.set(set.len() as i64);
        }
    }

    /// Template `uid` is deleted: it leaves every per-template metric.
    pub fn template_gone(&self, uid: &str) {
        self.drift_state(uid, None);
        let mut set = lock(&self.reconciled_templates);
        if set.remove(uid) {
            self.templates.set(set.len() as i64);
        }
    }

    /// The current drift of template `uid` (`None`: not drifted or gone).
    pub fn drift_state(&self, uid: &str, severity: Option<Severity>) {
        let mut map = lock(&self.drift_by_template);
        match severity {
            Some(s) => map.insert(uid.to_owned(), s),
            None => map.remove(uid),
        };
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            let n = map.values().filter(|v| **v == s).count() as i64;
            self.drifted
                .get_or_create(&SeverityLabel {
                    severity: s.as_str().into(),
                })
                .set(n);
        }
    }

    /// Drift was found `seconds` after the last clean check.
    pub fn detected_after(&self, seconds: f64) {
        self.time_to_detect.observe(seconds);
    }

    /// Drift was removed `seconds` after it was first detected.
    pub fn remediated_after(&self, seconds: f64) {
        self.time_to_remediate.observe(seconds);
    }

    /// Whether this process leads now.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A status patch was sent.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_prefixed_metrics_with_bounded_labels() {
        let m = Metrics::default();
        m.executed("drift", Outcome::Succeeded, 6.5);
        m.drift_state("uid-1", Some(Severity::Critical));
        m.drift_state("uid-2", Some(Severity::Critical));
        m.drift_state("uid-1", None);
        let text = m.render();
        assert!(
            text.contains("pangea_executions_total{kind=\"drift\",result=\"succeeded\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pangea_drifted_templates{severity=\"critical\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("pangea_drifted_templates{severity=\"info\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("uid-"),
            "template identities must not be labels"
        );
    }

    #[test]
    fn counts_each_reconciled_template_once_until_it_is_gone() {
        let m = Metrics::default();
        for uid in ["uid-1", "uid-2", "uid-1", "uid-1"] {
            m.template_reconciled(uid);
        }
        assert!(m.render().contains("pangea_templates 2"), "{}", m.render());
        m.drift_state("uid-2", Some(Severity::Warning));
        m.template_gone("uid-2");
        m.template_gone("uid-3");
        let text = m.render();
        assert!(text.contains("pangea_templates 1"), "{text}");
        assert!(
            text.contains("pangea_drifted_templates{severity=\"warning\"} 0"),
            "{text}"
        );
    }
}
