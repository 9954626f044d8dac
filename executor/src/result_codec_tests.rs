use pangea_api::{
    common::Severity,
    exec::{ExecutionError, ExecutionKind, ExecutionResult, Outcome},
    report::{
        AttributeDrift, ChangeAction, DriftAction, DriftReport, DriftedResource, PlanReport,
        PlannedChange,
    },
};
use sha2::{Digest, Sha256};

use super::*;

fn result(kind: ExecutionKind, outcome: Outcome) -> ExecutionResult {
    ExecutionResult {
        id: "team-web-7f3a-plan-12".to_owned(),
        kind,
        outcome,
        source_revision: Some("3b18e512dba79e4c8300dd08aeb37f8e728b8dad".to_owned()),
        drift: None,
        plan: None,
        compliance: None,
        resources_total: Some(3),
        outputs: [("vpc_id".to_owned(), serde_json::json!("vpc-0123"))].into(),
        error: None,
        duration_seconds: 4.5,
        in_flight_creates: vec![],
        adopted: vec![],
        orphans: vec![],
    }
}

/// A plan of `n` resources, addressed as a large real template would be.
fn plan(n: usize) -> PlanReport {
    let actions = [
        ChangeAction::Create,
        ChangeAction::Update,
        ChangeAction::Replace,
    ];
    PlanReport {
        id: "9d2c5f0e".repeat(8),
        add: u32::try_from(n).unwrap(),
        changes: (0..n)
            .map(|i| PlannedChange {
                address: format!("module.app_{}.aws_security_group.web_{i:04}", i % 40),
                action: actions[i % actions.len()],
            })
            .collect(),
        ..PlanReport::default()
    }
}

/// Drift of `n` resources with three changed attributes each, valued by `value(i, j)`.
fn drift(n: usize, value: impl Fn(usize, usize) -> String) -> DriftReport {
    DriftReport {
        resources: (0..n)
            .map(|i| DriftedResource {
                address: format!("aws_security_group.web_{i:04}"),
                resource_type: "aws_security_group".to_owned(),
                name: format!("web_{i:04}"),
                action: DriftAction::Updated,
                severity: Severity::Critical,
                attributes: (0..3)
                    .map(|j| AttributeDrift {
                        path: format!("ingress.{j}.cidr_blocks.0"),
                        expected: Some(value(i, j)),
                        actual: Some(value(i, j + 3)),
                    })
                    .collect(),
                attributes_omitted: 0,
                mirror_of: None,
            })
            .collect(),
        resources_omitted: 0,
    }
}

/// A value that barely compresses: hex of a hash.
fn noise(i: usize, j: usize) -> String {
    hex::encode(Sha256::digest(format!("{i}/{j}")))
}

#[test]
fn round_trips() {
    let mut original = result(ExecutionKind::Drift, Outcome::Succeeded);
    original.drift = Some(drift(2, |i, j| format!("\"10.{i}.{j}.0/24\"")));
    let decoded = decode(&encode(&original).unwrap()).unwrap();
    assert_eq!(decoded, original);
}

#[test]
fn a_3000_resource_plan_report_round_trips_intact() {
    let mut original = result(ExecutionKind::Plan, Outcome::Succeeded);
    original.plan = Some(plan(3000));
    original.drift = Some(drift(3000, |i, j| format!("\"10.{}.{j}.0/24\"", i % 256)));
    let encoded = encode(&original).unwrap();
    let json = serde_json::to_vec(&original).unwrap().len();
    println!(
        "3,000-resource plan + 3,000-resource drift report: {json} bytes of JSON, {} bytes encoded (bound {MAX_ENCODED_BYTES})",
        encoded.len()
    );
    assert!(encoded.len() <= MAX_ENCODED_BYTES);
    assert_eq!(decode(&encoded).unwrap(), original);
}

#[test]
fn an_oversize_report_is_cut_and_says_how_much() {
    let mut original = result(ExecutionKind::Drift, Outcome::Succeeded);
    original.drift = Some(drift(6000, noise));
    original.plan = Some(plan(20));
    let encoded = encode(&original).unwrap();
    assert!(encoded.len() <= MAX_ENCODED_BYTES, "{}", encoded.len());
    let decoded = decode(&encoded).unwrap();
    let report = decoded.drift.as_ref().unwrap();
    let kept = report.resources.len();
    assert!(kept > 1000 && kept < 6000, "kept {kept}");
    // Every cut resource is counted: the drift a person sees is still 6,000.
    assert_eq!(report.resources_omitted as usize, 6000 - kept);
    assert_eq!(report.drifted_count(), 6000);
    assert_eq!(
        report.resources[..],
        original.drift.unwrap().resources[..kept]
    );
    // Short lists are left alone, and so is everything outside the reports.
    assert_eq!(decoded.plan, original.plan);
    assert_eq!(decoded.outputs, original.outputs);
}

#[test]
fn a_report_that_compresses_well_is_still_cut_to_what_decode_accepts() {
    let mut original = result(ExecutionKind::Drift, Outcome::Succeeded);
    original.drift = Some(drift(400, |i, j| format!("\"10.{}.{j}.0/24\"", i % 256)));
    let json = serde_json::to_vec(&original).unwrap().len();
    let bounds = Bounds {
        encoded: MAX_ENCODED_BYTES,
        decoded: json / 2,
    };
    let encoded = encode_within(&original, bounds).unwrap();
    assert!(
        encoded.len() < json / 20,
        "it compresses well: {}",
        encoded.len()
    );
    let mut inflated = Vec::new();
    GzDecoder::new(&encoded[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert!(
        inflated.len() <= json / 2,
        "{} > {}",
        inflated.len(),
        json / 2
    );
    let report = decode(&encoded).unwrap().drift.unwrap();
    assert!(report.resources.len() < 400);
    assert_eq!(report.drifted_count(), 400, "every cut resource is counted");
}

#[test]
fn outputs_too_large_to_fit_are_an_error_not_a_cut() {
    let mut original = result(ExecutionKind::Apply, Outcome::Succeeded);
    let huge: String = (0..40_000).map(|i| noise(i, 0)).collect();
    original
        .outputs
        .insert("blob".to_owned(), serde_json::json!(huge));
    let Err(error) = encode(&original) else {
        panic!("{} bytes of outputs were encoded", huge.len());
    };
    assert!(matches!(error, CodecError::TooLarge { bytes } if bytes > MAX_ENCODED_BYTES));
}

#[test]
fn garbage_is_a_clean_error() {
    assert!(matches!(
        decode(b"definitely not gzip"),
        Err(CodecError::Gzip(_))
    ));
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(b"{\"id\": 3}").unwrap();
    let not_a_result = encoder.finish().unwrap();
    assert!(matches!(decode(&not_a_result), Err(CodecError::Json(_))));
}

#[test]
fn a_decompression_bomb_is_refused() {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..65 {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 200 * 1024);
    assert!(matches!(decode(&bomb), Err(CodecError::TooLargeDecoded)));
}

#[test]
fn summary_is_one_bounded_line() {
    let mut failed = result(ExecutionKind::Apply, Outcome::Failed);
    failed.error = Some(ExecutionError {
        transient: false,
        reason: "CompileError".to_owned(),
        message: "web.rb:2: NoMethodError\n\u{1}\"quoted\" é ".repeat(500),
    });
    let line = summary(&failed);
    assert!(line.len() <= MAX_SUMMARY_BYTES, "{}", line.len());
    assert!(!line.contains('\n'));
    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(parsed["id"], "team-web-7f3a-plan-12");
    assert_eq!(parsed["kind"], "apply");
    assert_eq!(parsed["outcome"], "failed");
    assert_eq!(parsed["reason"], "CompileError");
    let message = parsed["message"].as_str().unwrap();
    assert!(
        message.starts_with("web.rb:2: NoMethodError\n"),
        "{message}"
    );
    assert!(message.ends_with('…'), "{message}");
}

#[test]
fn summary_of_a_success_has_no_error_fields() {
    let line = summary(&result(ExecutionKind::Drift, Outcome::Succeeded));
    assert_eq!(
        line,
        r#"{"id":"team-web-7f3a-plan-12","kind":"drift","outcome":"succeeded"}"#
    );
}
