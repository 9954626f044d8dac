//! The Helm chart's Grafana dashboard and PrometheusRule may only use metrics this operator
//! exports: a renamed or dropped metric must fail here, not leave an empty panel or an alert
//! that can never fire.

use std::{collections::BTreeSet, path::Path};

use pangea_api::{common::Severity, exec::Outcome};
use pangea_operator::metrics::Metrics;

fn chart_file(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/helm/pangea-operator")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Every series name a scrape of the operator can hold: gauges by their name, counters with
/// `_total`, histograms with `_bucket`, `_sum` and `_count`.
fn exported_series() -> BTreeSet<String> {
    let metrics = Metrics::default();
    // Labelled families show up only once a label set exists.
    metrics.executed("drift", Outcome::Succeeded, 1.0);
    metrics.drift_state("uid", Some(Severity::Critical));
    let text = metrics.render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// `pangea_…` identifiers in `text`.
fn used_series(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("pangea_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn assert_exported(what: &str, text: &str) {
    let exported = exported_series();
    let unknown: Vec<String> = used_series(text)
        .into_iter()
        .filter(|n| !exported.contains(n))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what} uses metrics the operator does not export: {unknown:?}\nexported: {exported:?}"
    );
}

#[test]
fn the_dashboard_uses_only_exported_metrics() {
    let dashboard = chart_file("files/dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 8));
    assert_exported("files/dashboard.json", &dashboard);
    // Every exported metric has a panel: a metric worth exporting is worth showing.
    let used = used_series(&dashboard);
    for name in exported_series() {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            used.iter().any(|u| u.starts_with(base)),
            "no dashboard panel shows {name}"
        );
    }
}

#[test]
fn the_alerts_use_only_exported_metrics() {
    let rules = chart_file("templates/prometheusrule.yaml");
    assert!(!used_series(&rules).is_empty());
    assert_exported("templates/prometheusrule.yaml", &rules);
}
