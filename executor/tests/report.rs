//! The report builder against real Terraform data: states, plan files and `terraform show
//! -json` recorded from terraform + the AWS provider + LocalStack by
//! `tests/support/record_drift_fixtures.sh` (see `tests/fixtures/drift/<case>/`).
//!
//! Cases: `fresh_apply` (right after the first apply), `clean` (after a settling refresh-only
//! apply), `drift` (versioning suspended, SSH opened to the world, A record changed, logs bucket
//! deleted), `remediated`, `secret_rotated` (the SSM SecureString changed out of band),
//! `untagged_fresh_apply` (`tags: null -> {}` on five untagged resources); normal plans
//! `empty_state`, `remediation_plan`/`remediation_replan` (the same plan made twice) and
//! `replace_plan`.

use std::{
    collections::BTreeSet,
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use pangea_api::{
    common::Severity,
    report::{ChangeAction, DriftAction, DriftReport, DriftedResource},
};
use pangea_executor::report::{
    DriftOptions, ReportError, StateV4, build_drift_report, build_plan_report, plan_content,
    read_states, stamp_plan,
};
use rstest::rstest;
use serde_json::{Value, json};

/// The sensitive variable's value the fixtures were recorded with.
const SECRET: &str = "s3cr3t-value";
/// The value the `secret_rotated` case put into SSM out of band (no variable knows it).
const ROTATED_SECRET: &str = "r0tated-0ut-of-band";

fn case_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/drift")
        .join(case)
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn state(case: &str, file: &str) -> StateV4 {
    serde_json::from_value(read_json(&case_dir(case).join(file))).unwrap()
}

fn show(case: &str) -> Value {
    read_json(&case_dir(case).join("show.json"))
}

/// The report as the executor builds it, with the sensitive variable's value known.
fn drift_report(case: &str) -> DriftReport {
    let opts = DriftOptions::default().with_sensitive_values([SECRET]);
    build_drift_report(
        &state(case, "tfstate-prev.json"),
        &state(case, "tfstate.json"),
        &opts,
    )
}

fn addresses<'a>(resources: impl Iterator<Item = &'a DriftedResource>) -> BTreeSet<String> {
    resources.map(|r| r.address.clone()).collect()
}

/// Empty collections and nulls removed at every depth, so values that differ only by
/// `null` vs `{}`/`[]` compare equal. Independent of the builder's own normalisation on
/// purpose: this is the yardstick it is checked against.
fn without_empties(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), without_empties(v)))
                .filter(|(_, v)| !v.is_null())
                .collect();
            if kept.is_empty() {
                Value::Null
            } else {
                Value::Object(kept)
            }
        }
        Value::Array(items) if items.is_empty() => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(without_empties).collect()),
        other => other.clone(),
    }
}

/// Addresses in Terraform's own `resource_drift`, minus entries that are only null-vs-empty.
fn terraform_drift(case: &str) -> BTreeSet<String> {
    let show = show(case);
    let entries = show["resource_drift"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .filter(|e| {
            without_empties(&e["change"]["before"]) != without_empties(&e["change"]["after"])
        })
        .map(|e| e["address"].as_str().unwrap().to_owned())
        .collect()
}

#[rstest]
#[case::fresh_apply("fresh_apply")]
#[case::clean("clean")]
#[case::drift("drift")]
#[case::remediated("remediated")]
#[case::secret_rotated("secret_rotated")]
#[case::untagged_fresh_apply("untagged_fresh_apply")]
fn finds_what_terraform_finds(#[case] case: &str) {
    let report = drift_report(case);
    let (mirrors, findings): (Vec<_>, Vec<_>) =
        report.resources.iter().partition(|r| r.mirror_of.is_some());
    let terraform = terraform_drift(case);
    let mirrors = addresses(mirrors.into_iter());
    assert!(
        mirrors.is_subset(&terraform),
        "{mirrors:?} vs {terraform:?}"
    );
    assert_eq!(
        addresses(findings.into_iter()),
        &terraform - &mirrors,
        "case {case}"
    );
}

#[rstest]
#[case::fresh_apply("fresh_apply")]
#[case::clean("clean")]
#[case::remediated("remediated")]
#[case::untagged_fresh_apply("untagged_fresh_apply")]
fn reports_nothing_but_echoes_when_nothing_drifted(#[case] case: &str) {
    let report = drift_report(case);
    let real: Vec<_> = report
        .resources
        .iter()
        .filter(|r| r.mirror_of.is_none())
        .collect();
    assert_eq!(real, Vec::<&DriftedResource>::new(), "case {case}");
}

#[test]
fn tags_null_to_empty_right_after_create_is_noise() {
    // The fixture really holds the noise: five resources whose tags went null -> {}.
    let show = show("untagged_fresh_apply");
    let noisy: Vec<&Value> = show["resource_drift"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["change"]["before"]["tags"].is_null() && e["change"]["after"]["tags"] == json!({})
        })
        .collect();
    assert_eq!(noisy.len(), 5);
    assert_eq!(drift_report("untagged_fresh_apply"), DriftReport::default());
}

#[test]
fn right_after_the_first_apply_only_the_versioning_echo_shows() {
    let report = drift_report("fresh_apply");
    assert_eq!(report.resources.len(), 1);
    let bucket = &report.resources[0];
    assert_eq!(bucket.address, "aws_s3_bucket.artifacts");
    assert_eq!(
        bucket.mirror_of.as_deref(),
        Some("aws_s3_bucket_versioning.artifacts")
    );
    assert_eq!(bucket.severity, Severity::Info);
}

/// `(address, action, severity, mirror_of, [(path, expected, actual)])`.
type Entry<'a> = (
    &'a str,
    DriftAction,
    Severity,
    Option<&'a str>,
    Vec<(&'a str, Option<Value>, Option<Value>)>,
);

fn entry(resource: &DriftedResource) -> Entry<'_> {
    let decode = |v: &Option<String>| v.as_deref().map(|t| serde_json::from_str(t).unwrap());
    (
        resource.address.as_str(),
        resource.action,
        resource.severity,
        resource.mirror_of.as_deref(),
        resource
            .attributes
            .iter()
            .map(|a| (a.path.as_str(), decode(&a.expected), decode(&a.actual)))
            .collect(),
    )
}

#[test]
fn reports_exactly_the_four_injected_drifts_and_the_marked_echo() {
    let report = drift_report("drift");
    let group = state("drift", "tfstate.json");
    let ingress = group
        .resources
        .iter()
        .find(|r| r.resource_type == "aws_security_group")
        .map(|r| r.instances[0].attributes["ingress"].clone())
        .unwrap();
    let ssh_at = ingress
        .as_array()
        .unwrap()
        .iter()
        .position(|rule| rule["from_port"] == 22)
        .unwrap();
    let ssh_path = format!("ingress.{ssh_at}");
    let expected: Vec<Entry<'_>> = vec![
        (
            "aws_s3_bucket.logs",
            DriftAction::Deleted,
            Severity::Critical,
            None,
            vec![],
        ),
        (
            "aws_security_group.https",
            DriftAction::Updated,
            Severity::Critical,
            None,
            vec![(ssh_path.as_str(), None, Some(ingress[ssh_at].clone()))],
        ),
        (
            "aws_route53_record.app",
            DriftAction::Updated,
            Severity::Warning,
            None,
            vec![(
                "records.0",
                Some(json!("10.42.0.10")),
                Some(json!("10.42.0.99")),
            )],
        ),
        (
            "aws_s3_bucket_versioning.artifacts",
            DriftAction::Updated,
            Severity::Warning,
            None,
            vec![(
                "versioning_configuration.0.status",
                Some(json!("Enabled")),
                Some(json!("Suspended")),
            )],
        ),
        (
            "aws_s3_bucket.artifacts",
            DriftAction::Updated,
            Severity::Info,
            Some("aws_s3_bucket_versioning.artifacts"),
            vec![(
                "versioning.0.enabled",
                Some(json!(true)),
                Some(json!(false)),
            )],
        ),
    ];
    assert_eq!(
        report.resources.iter().map(entry).collect::<Vec<_>>(),
        expected
    );
    // The new rule is the whole element, world-open on port 22.
    assert_eq!(ingress[ssh_at]["cidr_blocks"], json!(["0.0.0.0/0"]));
    assert_eq!(report.severity(), Some(Severity::Critical));
    assert_eq!(report.resources_omitted, 0);
}

#[rstest]
#[case::drift("drift")]
#[case::secret_rotated("secret_rotated")]
#[case::fresh_apply("fresh_apply")]
fn a_secret_never_appears_in_the_report(#[case] case: &str) {
    let states = fs::read_to_string(case_dir(case).join("tfstate-prev.json")).unwrap();
    assert!(
        states.contains(SECRET),
        "the fixture must hold the secret to prove anything"
    );
    let text = serde_json::to_string(&drift_report(case)).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(ROTATED_SECRET), "{text}");
}

#[test]
fn a_secret_changed_out_of_band_is_reported_redacted() {
    let report = drift_report("secret_rotated");
    let refreshed = fs::read_to_string(case_dir("secret_rotated").join("tfstate.json")).unwrap();
    assert!(refreshed.contains(ROTATED_SECRET));
    assert_eq!(report.resources.len(), 1);
    let parameter = &report.resources[0];
    assert_eq!(
        (
            parameter.address.as_str(),
            parameter.action,
            parameter.mirror_of.as_deref()
        ),
        ("aws_ssm_parameter.app_secret", DriftAction::Updated, None)
    );
    let rendered: Vec<(&str, Option<&str>, Option<&str>)> = parameter
        .attributes
        .iter()
        .map(|a| (a.path.as_str(), a.expected.as_deref(), a.actual.as_deref()))
        .collect();
    assert_eq!(
        rendered,
        [
            ("value", Some("(sensitive)"), Some("(sensitive)")),
            ("version", Some("1"), Some("2")),
        ]
    );
}

/// Without state markers only the known values protect the report; both layers are needed.
#[rstest]
#[case::markers_only(true, &[], &[])]
#[case::known_values_only(false, &[SECRET, ROTATED_SECRET], &[])]
#[case::neither(false, &[], &[SECRET, ROTATED_SECRET])]
fn each_redaction_layer_works_alone(
    #[case] keep_markers: bool,
    #[case] known: &[&str],
    #[case] leaked: &[&str],
) {
    let mut prev = state("secret_rotated", "tfstate-prev.json");
    let mut refreshed = state("secret_rotated", "tfstate.json");
    if !keep_markers {
        for resource in prev
            .resources
            .iter_mut()
            .chain(refreshed.resources.iter_mut())
        {
            for instance in &mut resource.instances {
                instance.sensitive_attributes.clear();
            }
        }
    }
    let opts = DriftOptions::default().with_sensitive_values(known);
    let text = serde_json::to_string(&build_drift_report(&prev, &refreshed, &opts)).unwrap();
    for secret in [SECRET, ROTATED_SECRET] {
        assert_eq!(
            text.contains(secret),
            leaked.contains(&secret),
            "{secret} in {text}"
        );
    }
}

#[rstest]
#[case::clean("clean")]
#[case::drift("drift")]
#[case::empty_state("empty_state")]
fn reads_both_states_from_a_real_plan_file(#[case] case: &str) {
    let (prev, refreshed) = read_states(&case_dir(case).join("plan.tfplan")).unwrap();
    assert_eq!(prev, state(case, "tfstate-prev.json"));
    assert_eq!(refreshed, state(case, "tfstate.json"));
}

#[test]
fn the_report_from_the_plan_file_is_the_report_from_its_states() {
    let (prev, refreshed) = read_states(&case_dir("drift").join("plan.tfplan")).unwrap();
    let opts = DriftOptions::default().with_sensitive_values([SECRET]);
    assert_eq!(
        build_drift_report(&prev, &refreshed, &opts),
        drift_report("drift")
    );
    // Terraform keeps lineage and serial only in the refreshed state.
    assert!(!refreshed.lineage.is_empty());
    assert!(refreshed.serial > 0);
}

/// A copy of a real plan file without some members.
fn plan_without(dir: &Path, members: &[&str]) -> PathBuf {
    let source = fs::File::open(case_dir("clean").join("plan.tfplan")).unwrap();
    let mut archive = zip::ZipArchive::new(source).unwrap();
    let target = dir.join("plan.tfplan");
    let mut writer = zip::ZipWriter::new(fs::File::create(&target).unwrap());
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let name = file.name().unwrap().into_owned();
        if members.contains(&name.as_str()) {
            continue;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap();
    target
}

#[test]
fn a_plan_without_a_prior_state_reads_as_an_empty_prior_state() {
    let dir = tempfile::tempdir().unwrap();
    let (prev, refreshed) = read_states(&plan_without(dir.path(), &["tfstate-prev"])).unwrap();
    assert_eq!(prev, StateV4::default());
    assert_eq!(refreshed, state("clean", "tfstate.json"));
}

#[test]
fn unreadable_plan_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = read_states(&dir.path().join("nope.tfplan")).unwrap_err();
    assert!(matches!(missing, ReportError::Io { .. }), "{missing:?}");

    let not_zip = dir.path().join("not-a-zip.tfplan");
    fs::write(&not_zip, "{}").unwrap();
    let err = read_states(&not_zip).unwrap_err();
    assert!(matches!(err, ReportError::PlanFile { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-zip.tfplan"), "{err}");

    let no_state = plan_without(dir.path(), &["tfstate"]);
    let err = read_states(&no_state).unwrap_err();
    assert!(
        matches!(
            err,
            ReportError::MissingMember {
                member: "tfstate",
                ..
            }
        ),
        "{err:?}"
    );
}

#[rstest]
#[case::empty_state("empty_state", (8, 0, 0), &[
    ("aws_route53_record.app", ChangeAction::Create),
    ("aws_route53_zone.main", ChangeAction::Create),
    ("aws_s3_bucket.artifacts", ChangeAction::Create),
    ("aws_s3_bucket.logs", ChangeAction::Create),
    ("aws_s3_bucket_versioning.artifacts", ChangeAction::Create),
    ("aws_security_group.https", ChangeAction::Create),
    ("aws_ssm_parameter.app_secret", ChangeAction::Create),
    ("aws_vpc.main", ChangeAction::Create),
])]
#[case::remediation("remediation_plan", (1, 3, 0), &[
    ("aws_route53_record.app", ChangeAction::Update),
    ("aws_s3_bucket.logs", ChangeAction::Create),
    ("aws_s3_bucket_versioning.artifacts", ChangeAction::Update),
    ("aws_security_group.https", ChangeAction::Update),
])]
#[case::replace("replace_plan", (2, 2, 1), &[
    ("aws_route53_record.app", ChangeAction::Replace),
    ("aws_s3_bucket.logs", ChangeAction::Create),
    ("aws_s3_bucket_versioning.artifacts", ChangeAction::Update),
    ("aws_security_group.https", ChangeAction::Update),
])]
fn counts_pending_changes_of_real_plans(
    #[case] case: &str,
    #[case] counts: (u32, u32, u32),
    #[case] changes: &[(&str, ChangeAction)],
) {
    let show = show(case);
    let report = build_plan_report(&show, 100);
    assert_eq!((report.add, report.change, report.destroy), counts);
    let got: Vec<(&str, ChangeAction)> = report
        .changes
        .iter()
        .map(|c| (c.address.as_str(), c.action))
        .collect();
    assert_eq!(got, changes);
}

#[test]
fn pending_changes_never_include_drift() {
    // The remediation plan's JSON also lists the drift; none of it is a pending change.
    let show = show("remediation_plan");
    assert!(!show["resource_drift"].as_array().unwrap().is_empty());
    let report = build_plan_report(&show, 100);
    assert!(
        report
            .changes
            .iter()
            .all(|c| c.address != "aws_s3_bucket.artifacts")
    );
}

#[test]
fn the_same_plan_made_twice_has_the_same_id() {
    let (first, second) = (show("remediation_plan"), show("remediation_replan"));
    assert_ne!(first["timestamp"], second["timestamp"], "really two plans");
    assert_eq!(plan_content(&first), plan_content(&second));

    let stamp = |plan: &Value, case: &str, revision: &str| {
        let mut report = build_plan_report(plan, 100);
        stamp_plan(&mut report, plan, &state(case, "tfstate.json"), revision);
        report
    };
    let a = stamp(&first, "remediation_plan", "rev-1");
    let b = stamp(&second, "remediation_replan", "rev-1");
    assert_eq!(a.id, b.id);
    assert_eq!(a.id.len(), 64);
    let lineage = state("remediation_plan", "tfstate.json").lineage;
    assert_eq!(a.state_lineage.as_deref(), Some(lineage.as_str()));
    assert!(a.state_serial.is_some_and(|s| s > 0));
    assert_ne!(
        a.id,
        stamp(&first, "remediation_plan", "rev-2").id,
        "source revision"
    );
    assert_ne!(
        a.id,
        stamp(&show("replace_plan"), "replace_plan", "rev-1").id,
        "content"
    );
}
