//! The Flux objects of `deploy/flux/` against a real kube-apiserver with Flux's own CRDs
//! (fetched by the bootstrap from the controllers' Go modules): every object passes
//! `kubectl apply --dry-run=server`, broken copies are rejected, and the names the objects
//! refer to exist in the repository.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use pangea_e2e::{ControlPlane, Toolchain, images::repo_root, manifests};
use serde_yaml::Value;

fn flux_dir() -> PathBuf {
    repo_root().join("deploy/flux")
}

/// `kubectl apply --dry-run=server` of one file: the apiserver validates it against the
/// installed CRD schemas and CEL rules, rejects unknown fields (kubectl asks for strict field
/// validation) and stores nothing.
fn dry_run(cp: &ControlPlane, tools: &Toolchain, file: &Path) -> Result<Result<String, String>> {
    let out = Command::new(&tools.kubectl)
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(["apply", "--dry-run=server", "-f"])
        .arg(file)
        .output()
        .context("running kubectl")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Ok(if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    })
}

async fn control_plane_with_flux(tools: &Toolchain) -> Result<ControlPlane> {
    let cp = ControlPlane::start().await?;
    let mut crds = Vec::new();
    for file in manifests::yaml_files(&tools.flux_crds()?)? {
        let text = std::fs::read_to_string(&file)?;
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).with_context(|| format!("{}", file.display()))?;
        crds.push(crd);
    }
    let names: Vec<_> = crds
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    for wanted in [
        "gitrepositories.source.toolkit.fluxcd.io",
        "helmreleases.helm.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
    ] {
        ensure!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing: {names:?}"
        );
    }
    // Waits until each is Established and its OpenAPI published (strict field validation
    // needs the schema).
    cp.install_crds(&crds).await?;
    // Dry runs of namespaced objects need their namespace.
    let namespaces: Api<Namespace> = Api::all(cp.client());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("flux-system".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    Ok(cp)
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness (apiserver, Flux CRDs): scripts/test.sh runs it"]
async fn flux_objects_pass_a_server_dry_run_and_broken_copies_do_not() -> Result<()> {
    let tools = Toolchain::load()?;
    let cp = control_plane_with_flux(&tools).await?;
    let files = manifests::yaml_files(&flux_dir())?;
    let mut kinds = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        for obj in manifests::parse_documents(&text)? {
            kinds.insert(obj.types.map(|t| t.kind).unwrap_or_default());
        }
        match dry_run(&cp, &tools, file)? {
            Ok(out) => ensure!(
                out.contains("(server dry run)"),
                "{}: {out}",
                file.display()
            ),
            Err(err) => bail!("{} rejected: {err}", file.display()),
        }
    }
    let expected: BTreeSet<String> = ["GitRepository", "HelmRelease", "Kustomization"]
        .map(String::from)
        .into();
    assert_eq!(kinds, expected, "kinds under deploy/flux/");

    // Each broken copy must be refused, for the reason named: proof that the dry run checks.
    let scratch = tempfile::tempdir()?;
    let broken = [
        (
            "helmrelease.yaml",
            "crds: CreateReplace",
            "crds: Always",
            "Unsupported value: \"Always\"",
        ),
        (
            "operator.yaml",
            "healthChecks:",
            "healthCheck:",
            "unknown field \"spec.healthCheck\"",
        ),
        // source-controller clones over http(s) or ssh only: a local path is not a source.
        (
            "source.yaml",
            "url: https://github.com/pangea-io/pangea-operator",
            "url: file:///srv/git/pangea-operator",
            "spec.url",
        ),
    ];
    for (name, from, to, wanted) in broken {
        let text = std::fs::read_to_string(flux_dir().join(name))?;
        ensure!(text.contains(from), "{name} no longer contains {from:?}");
        let path = scratch.path().join(name);
        std::fs::write(&path, text.replacen(from, to, 1))?;
        match dry_run(&cp, &tools, &path)? {
            Ok(out) => bail!("broken {name} ({to}) was accepted: {out}"),
            Err(err) => ensure!(
                err.contains(wanted),
                "broken {name}: wanted {wanted:?} in {err}"
            ),
        }
    }
    Ok(())
}

/// The names the Flux objects refer to are the repository's: the chart path, the example
/// templates they health-check, and (once the chart exists) the values they set.
#[test]
fn flux_objects_refer_to_what_the_repository_holds() -> Result<()> {
    let docs = |name: &str| -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(flux_dir().join(name))?;
        serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).map_err(Into::into))
            .collect()
    };
    let release = docs("helmrelease.yaml")?.remove(0);
    let chart = release["spec"]["chart"]["spec"]["chart"]
        .as_str()
        .context("chart path")?;
    assert_eq!(chart, "./deploy/helm/pangea-operator");

    let examples = docs("examples.yaml")?.remove(0);
    let checked: BTreeSet<&str> = examples["spec"]["healthChecks"]
        .as_sequence()
        .context("healthChecks")?
        .iter()
        .filter(|c| c["kind"] == "PangeaTemplate")
        .filter_map(|c| c["name"].as_str())
        .collect();
    let path = examples["spec"]["path"].as_str().context("path")?;
    let mut templates = BTreeSet::new();
    for file in manifests::yaml_files(&repo_root().join(path))? {
        for obj in manifests::parse_documents(&std::fs::read_to_string(&file)?)? {
            if obj
                .types
                .as_ref()
                .is_some_and(|t| t.kind == "PangeaTemplate")
            {
                templates.insert(obj.metadata.name.unwrap_or_default());
            }
        }
    }
    let templates: BTreeSet<&str> = templates.iter().map(String::as_str).collect();
    assert_eq!(
        checked, templates,
        "every example template is health-checked"
    );

    // The chart is built beside this work; when it is here, every value the HelmRelease sets
    // must be one the chart declares (a typo would otherwise be ignored by Helm).
    let chart_values = repo_root().join("deploy/helm/pangea-operator/values.yaml");
    if chart_values.exists() {
        let declared: Value = serde_yaml::from_str(&std::fs::read_to_string(&chart_values)?)?;
        let mut missing = Vec::new();
        unknown_keys(&release["spec"]["values"], &declared, "", &mut missing);
        assert!(
            missing.is_empty(),
            "values the chart does not declare: {missing:?}"
        );
    } else {
        eprintln!(
            "{} not present: HelmRelease values not checked",
            chart_values.display()
        );
    }
    Ok(())
}

/// Key paths of `set` that `declared` lacks; lists and scalars are leaves.
fn unknown_keys(set: &Value, declared: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = set.as_mapping() else { return };
    for (key, value) in map {
        let key = key.as_str().unwrap_or_default();
        let path = format!("{prefix}{key}");
        match declared.get(key) {
            None => out.push(path),
            Some(inner) => unknown_keys(value, inner, &format!("{path}."), out),
        }
    }
}
