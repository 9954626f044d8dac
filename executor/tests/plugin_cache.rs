//! Concurrent first `init`s on one empty, shared provider plugin cache: real terraform, the
//! real AWS provider from the machine's filesystem mirror (the bootstrap's CLI config), and a
//! fresh cache directory so every `init` has to install the provider and the race is real.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use pangea_e2e::Toolchain;
use pangea_executor::{
    scrub::Scrubber,
    terraform::{Session, Terraform},
};
use tokio_util::sync::CancellationToken;

const INITS: usize = 8;
/// A configuration that needs only the AWS provider.
const CONFIG: &str = r#"{"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0"}}}, "provider": {"aws": {"region": "us-east-1"}}}"#;

/// The bootstrap's CLI configuration (provider mirror) with its plugin cache replaced by
/// `cache`.
fn cli_config_with_cache(tools: &Toolchain, cache: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(&tools.tf_cli_config)?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("plugin_cache_dir"))
        .map(str::to_owned)
        .collect();
    lines.push(format!(
        "plugin_cache_dir = {:?}",
        cache.display().to_string()
    ));
    Ok(lines.join("\n") + "\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the bootstrapped harness (terraform, provider mirror): scripts/test.sh runs it"]
async fn concurrent_first_inits_share_a_fresh_plugin_cache() -> Result<()> {
    let tools = Toolchain::load()?;
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("plugin-cache");
    std::fs::create_dir(&cache)?;
    let rc = dir.path().join("terraformrc");
    std::fs::write(&rc, cli_config_with_cache(&tools, &cache)?)?;
    let tf = Terraform {
        binary: tools
            .terraform
            .clone()
            .context("terraform not bootstrapped")?,
        cli_config: rc,
        grace: Duration::from_secs(10),
        lock_timeout: Duration::from_secs(10),
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut inits = tokio::task::JoinSet::new();
    for i in 0..INITS {
        let workspace = dir.path().join(format!("ws{i}"));
        std::fs::create_dir(&workspace)?;
        std::fs::write(workspace.join("main.tf.json"), CONFIG)?;
        let tf = tf.clone();
        inits.spawn(async move {
            let scrub = Scrubber::default();
            let session = Session::new(
                &tf,
                &workspace,
                Vec::new(),
                deadline,
                CancellationToken::new(),
                &scrub,
            );
            session
                .init(false)
                .await
                .with_context(|| format!("init #{i}"))
        });
    }
    let results = inits.join_all().await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    ensure!(
        failed.is_empty(),
        "{} of {INITS} inits failed: {failed:#?}",
        failed.len()
    );
    // The provider really went through the cache (this is the cache the inits shared).
    let installed = walk_files(&cache)
        .into_iter()
        .filter(|p| p.contains("terraform-provider-aws"))
        .count();
    ensure!(installed == 1, "provider not cached once: {installed}");
    Ok(())
}

fn walk_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk_files(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}
