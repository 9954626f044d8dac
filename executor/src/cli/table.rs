//! The human view of execution results: one block per template with its outcome, then one
//! row per drifted attribute or planned change, severities coloured when stdout is a terminal.

use std::{fmt::Write as _, io::IsTerminal};

use pangea_api::{
    common::Severity,
    exec::{ExecutionKind, ExecutionResult, Outcome},
    report::{DriftAction, DriftedResource},
};

/// Colour when stdout is a terminal and `NO_COLOR` is unset (<https://no-color.org>).
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Renders every (template, result).
pub fn render(results: &[(String, ExecutionResult)], colour: bool) -> String {
    let mut out = String::new();
    for (template, result) in results {
        render_one(&mut out, template, result, colour);
    }
    out
}

fn render_one(out: &mut String, template: &str, r: &ExecutionResult, colour: bool) {
    let _ = writeln!(
        out,
        "{} ({}, {:.1}s): {}",
        bold(template, colour),
        r.kind.as_str(),
        r.duration_seconds,
        headline(r)
    );
    if let Some(error) = &r.error {
        let _ = writeln!(
            out,
            "  {}: {}",
            error.reason,
            error.message.replace('\n', "\n  ")
        );
    }
    if let Some(drift) = &r.drift {
        for res in &drift.resources {
            render_drifted(out, res, colour);
        }
        if drift.resources_omitted > 0 {
            let _ = writeln!(
                out,
                "  ... {} more drifted resources not shown",
                drift.resources_omitted
            );
        }
    }
    if let Some(plan) = &r.plan {
        for change in &plan.changes {
            let _ = writeln!(
                out,
                "  {:<8} {}",
                format!("{:?}", change.action).to_lowercase(),
                change.address
            );
        }
    }
}

fn headline(r: &ExecutionResult) -> String {
    match r.outcome {
        Outcome::Failed => "FAILED".into(),
        Outcome::TimedOut => "TIMED OUT".into(),
        Outcome::Refused => "REFUSED".into(),
        Outcome::Succeeded => match (&r.drift, &r.plan) {
            (Some(d), _) if d.detected() => drift_headline(d),
            (Some(_), _) => "no drift".into(),
            (None, Some(p)) if r.kind == ExecutionKind::Plan => format!(
                "{} to add, {} to change, {} to destroy (plan {})",
                p.add, p.change, p.destroy, p.id
            ),
            (None, Some(p)) => format!(
                "applied: {} added, {} changed, {} destroyed",
                p.add, p.change, p.destroy
            ),
            (None, None) => "ok".into(),
        },
    }
}

/// Mirrors (entries that only echo another resource's drift) are counted apart.
fn drift_headline(d: &pangea_api::report::DriftReport) -> String {
    let mirrors = d.resources.iter().filter(|r| r.mirror_of.is_some()).count();
    let real = d.drifted_count();
    let echo = if mirrors > 0 {
        format!(" (+{mirrors} mirror)")
    } else {
        String::new()
    };
    let severity = d.severity().unwrap_or_default();
    format!("{real} drifted resource(s){echo}, severity {severity}")
}

fn render_drifted(out: &mut String, res: &DriftedResource, colour: bool) {
    let action = match res.action {
        DriftAction::Updated => "updated",
        DriftAction::Deleted => "deleted outside terraform",
        DriftAction::Replaced => "replaced outside terraform",
    };
    let mirror = res
        .mirror_of
        .as_ref()
        .map(|m| format!(" (mirrors {m})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} {} {action}{mirror}",
        severity(res.severity, colour),
        res.address
    );
    for attr in &res.attributes {
        let expected = attr.expected.as_deref().unwrap_or("null");
        let actual = attr.actual.as_deref().unwrap_or("null");
        let _ = writeln!(out, "      {}: {expected} -> {actual}", attr.path);
    }
    if res.attributes_omitted > 0 {
        let _ = writeln!(out, "      ... {} more attributes", res.attributes_omitted);
    }
}

fn severity(s: Severity, colour: bool) -> String {
    let label = format!("{:<8}", s.as_str());
    if !colour {
        return label;
    }
    let code = match s {
        Severity::Critical => "1;31",
        Severity::Warning => "33",
        Severity::Info => "36",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

fn bold(text: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}
