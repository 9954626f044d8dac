//! `pangea-executor run --result-configmap`, as a Job pod runs it, against a real
//! kube-apiserver: the typed result (success or failure) arrives in the pre-created ConfigMap
//! and its summary in the termination log; a missing ConfigMap is a distinct exit code with a
//! clear message. Ignored by plain `cargo test` because it needs the bootstrapped harness.

use std::{path::PathBuf, process::Output};

use anyhow::{Context, Result, ensure};
use assert_cmd::cargo::CommandCargoExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use pangea_api::exec::{ExecutionKind, ExecutionResult, Outcome};
use pangea_e2e::{ControlPlane, TestNamespace, Toolchain};
use pangea_executor::result_codec::{self, RESULT_KEY, SUMMARY_KEY};
use serde_json::{Value, json};

/// Exit code of a result that could not be delivered (`EXIT_UNDELIVERED` in the binary).
const EXIT_UNDELIVERED: i32 = 4;

/// One `run` of the executor binary in a pod-like setting, and what it left behind.
struct Run {
    output: Output,
    termination_log: String,
}

impl Run {
    fn stderr(&self) -> String {
        stderr_of(&self.output)
    }

    fn summary(&self) -> Result<Value> {
        ensure!(
            !self.termination_log.contains('\n') && self.termination_log.len() <= 4096,
            "not one bounded line: {:?}",
            self.termination_log
        );
        serde_json::from_str(&self.termination_log).context("the termination log is not JSON")
    }
}

/// Runs `pangea-executor run` on `request`, delivering to ConfigMap `configmap` of `ns`.
fn run(cp: &ControlPlane, ns: &TestNamespace, configmap: &str, request: Value) -> Result<Run> {
    let tools = Toolchain::load()?;
    let dir = tempfile::tempdir()?;
    let request_file = dir.path().join("request.json");
    std::fs::write(&request_file, request.to_string())?;
    let termination_log: PathBuf = dir.path().join("termination-log");
    let output = std::process::Command::cargo_bin("pangea-executor")?
        .args(["run", "--request"])
        .arg(&request_file)
        .args(["--result-configmap", configmap, "--termination-log"])
        .arg(&termination_log)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("POD_NAMESPACE", &ns.name)
        .env("TF_CLI_CONFIG_FILE", &tools.tf_cli_config)
        // Debug logging must still not dump the result.
        .env("RUST_LOG", "debug")
        .output()?;
    let termination_log = std::fs::read_to_string(&termination_log)
        .with_context(|| format!("no termination log; stderr:\n{}", stderr_of(&output)))?;
    Ok(Run {
        output,
        termination_log,
    })
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn request(id: &str, kind: &str, content: &str) -> Value {
    json!({
        "id": id, "kind": kind, "template": "team/web", "timeoutSeconds": 120,
        "backend": {"local": {}},
        "source": {"content": {"content": content, "fileName": "web.rb"}}
    })
}

async fn empty_configmap(ns: &TestNamespace, name: &str) -> Result<Api<ConfigMap>> {
    let api: Api<ConfigMap> = ns.api();
    let mut configmap = ConfigMap::default();
    configmap.metadata.name = Some(name.to_owned());
    api.create(&PostParams::default(), &configmap).await?;
    Ok(api)
}

/// What the ConfigMap holds: the decoded result and the summary.
async fn delivered(api: &Api<ConfigMap>, name: &str) -> Result<(ExecutionResult, String)> {
    let configmap = api.get(name).await?;
    let encoded = configmap
        .binary_data
        .and_then(|mut b| b.remove(RESULT_KEY))
        .context("no result in the ConfigMap")?;
    let summary = configmap
        .data
        .and_then(|mut d| d.remove(SUMMARY_KEY))
        .context("no summary in the ConfigMap")?;
    Ok((result_codec::decode(&encoded.0)?, summary))
}

async fn a_plan_result_arrives(cp: &ControlPlane, ns: &TestNamespace) -> Result<()> {
    let api = empty_configmap(ns, "plan-result").await?;
    let template = "template :web do\n  resource :terraform_data, :marker do\n    input \"hello\"\n  end\nend\n";
    let req = request("exec-plan", "plan", template);
    let run = tokio::task::block_in_place(|| run(cp, ns, "plan-result", req))?;
    ensure!(run.output.status.code() == Some(0), "{}", run.stderr());
    let (result, summary) = delivered(&api, "plan-result").await?;
    ensure!(result.id == "exec-plan" && result.kind == ExecutionKind::Plan);
    ensure!(result.outcome == Outcome::Succeeded, "{result:?}");
    let plan = result.plan.context("no plan report")?;
    ensure!(plan.add == 1 && plan.changes.len() == 1, "{plan:?}");
    ensure!(
        summary == run.termination_log,
        "{summary} vs {}",
        run.termination_log
    );
    let line = run.summary()?;
    ensure!(
        line["id"] == "exec-plan" && line["outcome"] == "succeeded",
        "{line}"
    );
    // The payload travels base64-encoded; not a byte of it may reach the debug log.
    let body = api
        .get("plan-result")
        .await?
        .binary_data
        .unwrap_or_default();
    let base64 = serde_json::to_value(&body[RESULT_KEY])?;
    let payload = base64.as_str().context("base64")?;
    ensure!(
        !run.stderr().contains(&payload[..40]),
        "the result reached stderr"
    );
    Ok(())
}

async fn a_compile_failure_arrives_typed(cp: &ControlPlane, ns: &TestNamespace) -> Result<()> {
    let api = empty_configmap(ns, "failed-result").await?;
    let req = request(
        "exec-bad",
        "drift",
        "template :web do\n  bogus :x do\n  end\nend\n",
    );
    let run = tokio::task::block_in_place(|| run(cp, ns, "failed-result", req))?;
    ensure!(run.output.status.code() == Some(3), "{}", run.stderr());
    let (result, _) = delivered(&api, "failed-result").await?;
    ensure!(result.id == "exec-bad" && result.kind == ExecutionKind::Drift);
    ensure!(result.outcome == Outcome::Failed, "{result:?}");
    let error = result.error.context("no error")?;
    ensure!(
        error.reason == "TemplateError" && !error.transient,
        "{error:?}"
    );
    ensure!(error.message.starts_with("web.rb:2: "), "{}", error.message);
    let line = run.summary()?;
    ensure!(
        line["outcome"] == "failed" && line["reason"] == "TemplateError",
        "{line}"
    );
    ensure!(line["message"] == error.message.as_str(), "{line}");
    Ok(())
}

async fn a_missing_configmap_is_a_distinct_failure(
    cp: &ControlPlane,
    ns: &TestNamespace,
) -> Result<()> {
    let req = request(
        "exec-lost",
        "drift",
        "template :web do\n  bogus :x do\n  end\nend\n",
    );
    let run = tokio::task::block_in_place(|| run(cp, ns, "never-created", req))?;
    let stderr = run.stderr();
    let error_line = stderr.lines().find(|l| l.starts_with("error: "));
    eprintln!("missing ConfigMap: {error_line:?}");
    ensure!(
        run.output.status.code() == Some(EXIT_UNDELIVERED),
        "{:?}: {stderr}",
        run.output.status
    );
    ensure!(
        stderr.contains(&format!(
            "error: the result was not delivered: patching ConfigMap {}/never-created: \
             the apiserver answered 404 NotFound: configmaps \"never-created\" not found",
            ns.name
        )),
        "{stderr}"
    );
    let line = run.summary()?;
    ensure!(
        line["id"] == "exec-lost" && line["reason"] == "TemplateError",
        "{line}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the bootstrapped harness (kube-apiserver, terraform): scripts/test.sh runs it"]
async fn the_result_is_delivered_to_a_configmap() -> Result<()> {
    let cp = ControlPlane::start().await?;
    let ns = cp.namespace("result").await?;
    a_plan_result_arrives(&cp, &ns).await?;
    a_compile_failure_arrives_typed(&cp, &ns).await?;
    a_missing_configmap_is_a_distinct_failure(&cp, &ns).await
}
