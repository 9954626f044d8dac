//! The CRDs as users meet them, against a real kube-apiserver: examples accepted, invalid
//! specs rejected with our CEL messages, `kubectl explain` docs, status subresource.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kube::api::{Patch, PatchParams, PostParams};
use pangea_api::{PangeaTemplate, PangeaTemplateSpec, PangeaTemplateStatus};
use pangea_e2e::{ControlPlane, manifests};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn every_example_is_accepted() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("examples").await?;
    let files = manifests::yaml_files(&repo_root().join("examples/crs"))?;
    assert!(
        files.len() >= 4,
        "expected the example CRs, found {files:?}"
    );
    let mut created = 0;
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for obj in manifests::parse_documents(&text)? {
            manifests::create(&cp.client(), &ns.name, &obj)
                .await
                .with_context(|| format!("{} rejected", file.display()))?;
            created += 1;
        }
    }
    // Defaults from the schema are applied by the apiserver.
    let tpl = ns.api::<PangeaTemplate>().get("inline-bucket").await?;
    assert_eq!(
        std::time::Duration::from(tpl.spec.reconciliation.interval),
        std::time::Duration::from_secs(300)
    );
    assert_eq!(
        tpl.spec.safety.deletion_policy,
        pangea_api::template::DeletionPolicy::Orphan
    );
    assert!(created >= 5);
    Ok(())
}

#[tokio::test]
async fn invalid_specs_are_rejected_with_their_message() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("invalid").await?;
    let files = manifests::yaml_files(&repo_root().join("e2e/tests/fixtures/invalid"))?;
    assert!(
        files.len() >= 10,
        "need at least 10 invalid fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .with_context(|| format!("{} has no '# expect:' line", file.display()))?;
        let obj = manifests::parse_documents(&text)?.remove(0);
        match manifests::create(&cp.client(), &ns.name, &obj).await {
            Ok(_) => failures.push(format!("{}: accepted", file.display())),
            Err(kube::Error::Api(status))
                if status.code == 422 && status.message.contains(expect) => {}
            Err(e) => failures.push(format!("{}: wanted {expect:?}, got {e}", file.display())),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} invalid fixtures misbehaved:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

#[tokio::test]
async fn kubectl_explain_shows_field_docs() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let kubectl = pangea_e2e::Toolchain::load()?.kubectl;
    let out = std::process::Command::new(kubectl)
        .args(["explain", "pangeatemplate.spec.driftDetection"])
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Periodic comparison of the real infrastructure",
        "remediationPolicy",
        "Windows in which `scheduled` remediation may apply",
        "Time between drift checks, at least 1m",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn status_subresource_round_trips() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("status").await?;
    let api = ns.api::<PangeaTemplate>();
    let spec: PangeaTemplateSpec =
        serde_json::from_value(serde_json::json!({"source": {"inline": "template :t do\nend\n"}}))?;
    api.create(
        &PostParams::default(),
        &PangeaTemplate::new("round-trip", spec),
    )
    .await?;

    let status: PangeaTemplateStatus = serde_json::from_value(serde_json::json!({
        "observedGeneration": 1,
        "conditions": [{"type": "Drifted", "status": "True", "reason": "DriftDetected",
                        "message": "1 resource drifted", "lastTransitionTime": "2026-01-02T03:04:05Z"}],
        "drift": {"detected": true, "severity": "critical", "lastCheckTime": "2026-01-02T03:04:05Z",
                  "resources": [{"address": "aws_security_group.web", "type": "aws_security_group",
                                 "name": "web", "action": "updated", "severity": "critical",
                                 "attributes": [{"path": "ingress.1.cidr_blocks.0",
                                                 "expected": null, "actual": "\"0.0.0.0/0\""}]}]},
        "plan": {"id": "abc", "pending": true, "add": 1, "change": 0, "destroy": 0},
        "outputs": {"bucket": "logs", "ports": [80, 443]}
    }))?;
    let patch = serde_json::json!({
        "apiVersion": "pangea.io/v1alpha1", "kind": "PangeaTemplate", "status": status
    });
    let params = PatchParams::apply("pangea-e2e").force();
    api.patch_status("round-trip", &params, &Patch::Apply(&patch))
        .await?;
    let got = api.get_status("round-trip").await?;
    assert_eq!(
        got.status.as_ref(),
        Some(&status),
        "status changed on the way through the apiserver"
    );
    // The status subresource ignores spec changes and vice versa.
    assert_eq!(
        got.spec.source.inline.as_deref(),
        Some("template :t do\nend\n")
    );
    Ok(())
}
