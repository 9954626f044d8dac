//! The Helm chart and everything rendered from it, checked with the real tools: `helm lint
//! --strict`, the committed `deploy/manifests/` against a fresh rendering, the values schema
//! against typos and wrong types, and every shipped manifest against a real kube-apiserver
//! (`kubectl apply --dry-run=server`, which runs the apiserver's own validation, defaulting
//! and admission without storing anything).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, Result, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use pangea_e2e::{
    ControlPlane, Toolchain,
    chart::{self, chart_dir},
    images::repo_root,
};

/// Values that switch on every optional object and the per-namespace RBAC.
const EVERYTHING: &[&str] = &[
    "--set",
    "serviceMonitor.enabled=true,prometheusRule.enabled=true,networkPolicy.enabled=true",
    "--set",
    "watchNamespaces={team-a,team-b},executor.namespaces={team-a,team-b,team-c}",
];

fn helm(tools: &Toolchain, args: &[&str]) -> Result<Output> {
    let helm = tools.helm()?;
    Command::new(&helm)
        .args(args)
        .output()
        .with_context(|| format!("running {}", helm.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
#[ignore = "needs helm from scripts/bootstrap.sh: scripts/test.sh runs it"]
fn helm_lint_strict_is_clean() -> Result<()> {
    let tools = Toolchain::load()?;
    let dir = chart_dir();
    let dir = dir.to_str().context("chart path")?;
    for extra in [&[][..], EVERYTHING] {
        let mut args = vec!["lint", "--strict", dir];
        args.extend_from_slice(extra);
        let output = helm(&tools, &args)?;
        ensure!(
            output.status.success(),
            "helm {args:?} failed:\n{}",
            text(&output)
        );
    }
    Ok(())
}

#[test]
#[ignore = "needs helm from scripts/bootstrap.sh: scripts/test.sh runs it"]
fn committed_manifests_equal_a_fresh_rendering() -> Result<()> {
    let fresh = tempfile::tempdir()?;
    let script = repo_root().join("scripts/render-manifests.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("--out")
        .arg(fresh.path())
        .output()?;
    ensure!(output.status.success(), "{}", text(&output));
    let committed = repo_root().join("deploy/manifests");
    let names = |dir: &Path| -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_>>()?;
        names.sort();
        Ok(names)
    };
    ensure!(
        names(fresh.path())? == names(&committed)?,
        "deploy/manifests/ holds other files than scripts/render-manifests.sh writes: run it and commit the result"
    );
    for name in names(fresh.path())? {
        let want = std::fs::read_to_string(fresh.path().join(&name))?;
        let have = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        ensure!(
            want == have,
            "deploy/manifests/{name} differs from the chart's rendering: run scripts/render-manifests.sh and commit the result"
        );
    }
    Ok(())
}

#[test]
#[ignore = "needs helm from scripts/bootstrap.sh: scripts/test.sh runs it"]
fn the_values_schema_rejects_typos_and_wrong_types() -> Result<()> {
    let tools = Toolchain::load()?;
    let dir = tempfile::tempdir()?;
    // (values, what helm's error must name)
    let bad = [
        ("replica: 3\n", "replica"),
        ("executor:\n  imagePullPolicy: Never\n", "imagePullPolicy"),
        ("leaderElection:\n  enabeld: true\n", "enabeld"),
        ("replicas: two\n", "replicas"),
        ("leaderElection:\n  enabled: \"yes\"\n", "enabled"),
        ("executor:\n  env:\n    FOO: bar\n", "env"),
        ("executionBackend: local\n", "executionBackend"),
    ];
    for (i, (values, key)) in bad.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, values)?;
        let result = chart::render(&tools, "default", &["-f", file.to_str().context("path")?]);
        let err = match result {
            Ok(_) => anyhow::bail!("helm template accepted {values:?}"),
            Err(e) => e.to_string(),
        };
        ensure!(
            err.contains("schema") && err.contains(key),
            "helm template refused {values:?}, but not by naming {key:?} in a schema error:\n{err}"
        );
    }
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "replicas: 1\nleaderElection:\n  enabled: false\nexecutor:\n  env:\n    - name: FOO\n      value: bar\n",
    )?;
    chart::render(&tools, "default", &["-f", good.to_str().context("path")?])?;
    Ok(())
}

#[test]
fn every_object_of_the_values_schema_denies_unknown_keys() -> Result<()> {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        chart_dir().join("values.schema.json"),
    )?)?;
    let mut open = Vec::new();
    walk(&schema, "values", &mut open);
    ensure!(
        open.is_empty(),
        "objects with properties but without additionalProperties: false: {open:?}"
    );
    Ok(())
}

fn walk(node: &serde_json::Value, at: &str, open: &mut Vec<String>) {
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        if node.get("additionalProperties") != Some(&serde_json::Value::Bool(false)) {
            open.push(at.to_owned());
        }
        for (key, child) in props {
            walk(child, &format!("{at}.{key}"), open);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{at}[]"), open);
    }
}

/// `kubectl apply --dry-run=server` of one file or kustomization against `cp`.
fn dry_run(tools: &Toolchain, cp: &ControlPlane, what: &[&str]) -> Result<String> {
    let output = Command::new(&tools.kubectl)
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(["apply", "--dry-run=server"])
        .args(what)
        .output()?;
    ensure!(
        output.status.success(),
        "kubectl apply --dry-run=server {what:?} was refused:\n{}",
        text(&output)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn every_shipped_manifest_passes_a_real_apiserver() -> Result<()> {
    let tools = Toolchain::load()?;
    let cp = ControlPlane::start().await?;
    // ServiceMonitor and PrometheusRule are served only with prometheus-operator's CRDs.
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(tools.prometheus_operator_crds()?)? {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(entry?.path())?)?;
        crds.push(crd);
    }
    ensure!(
        crds.len() == 2,
        "expected the ServiceMonitor and PrometheusRule CRDs"
    );
    cp.install_crds(&crds).await?;
    // A dry run creates nothing, so the namespaces the objects live in must exist.
    for ns in ["pangea-system", "team-a", "team-b", "team-c"] {
        chart::ensure_namespace(&cp.client(), ns).await?;
    }
    let root = repo_root();
    let path = |p: &str| -> PathBuf { root.join(p) };
    let crds_dir = path("deploy/crds");
    let out = dry_run(&tools, &cp, &["-f", crds_dir.to_str().context("path")?])?;
    ensure!(out.contains("pangeatemplates.pangea.io"), "{out}");
    let manifests = path("deploy/manifests");
    let out = dry_run(&tools, &cp, &["-k", manifests.to_str().context("path")?])?;
    ensure!(out.contains("deployment.apps/pangea-operator"), "{out}");

    let rendered =
        tokio::task::block_in_place(|| chart::render(&tools, "pangea-system", EVERYTHING))?;
    let file = cp.dir().join("chart-everything.yaml");
    std::fs::write(&file, &rendered)?;
    let out = dry_run(&tools, &cp, &["-f", file.to_str().context("path")?])?;
    for object in [
        "servicemonitor.monitoring.coreos.com/pangea-operator",
        "prometheusrule.monitoring.coreos.com/pangea-operator",
        "networkpolicy.networking.k8s.io/pangea-operator",
        "role.rbac.authorization.k8s.io/pangea-operator",
        "role.rbac.authorization.k8s.io/pangea-executor",
        "configmap/pangea-operator-dashboard",
    ] {
        ensure!(
            out.contains(object),
            "{object} missing from the dry run:\n{out}"
        );
    }
    // One executor Role per executor namespace, one operator Role per watched namespace.
    let count = |needle: &str| out.lines().filter(|l| l.starts_with(needle)).count();
    ensure!(
        count("role.rbac.authorization.k8s.io/pangea-executor") == 3,
        "{out}"
    );
    ensure!(
        count("role.rbac.authorization.k8s.io/pangea-operator ") == 2,
        "{out}"
    );
    Ok(())
}
