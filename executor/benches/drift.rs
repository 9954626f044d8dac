//! Drift check cost versus the raw terraform commands it replaces, on the same warm workspace,
//! in one run (a benchmark, not a test). Needs the bootstrapped harness (LocalStack,
//! terraform). Run: `cargo bench -p pangea-executor --bench drift`.
//!
//! Baselines: `terraform plan -refresh-only -out=F` alone (what a drift check must do at
//! least) and that plus `terraform show -json F` (what attribute detail costs the usual way).
//! Ours: `pangea-executor drift` end to end (compile, workspace check, plan, report).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use pangea_e2e::{AwsEmulator, Toolchain};

const ROUNDS: usize = 5;

fn main() {
    let tools = Toolchain::load().expect("run scripts/bootstrap.sh first");
    let aws = AwsEmulator::start().expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "bench-secret-value").unwrap();
    let cache = dir.path().join("cache");
    let executor = |sub: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pangea-executor"));
        cmd.arg(sub)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/templates/aws_drift.rb"))
            .args(["--state", "local", "--format", "json", "--sensitive-var"])
            .arg(format!("app_secret={}", secret.display()))
            .arg("--cache-dir")
            .arg(&cache)
            .envs(aws.aws_env())
            .env("PANGEA_AWS_ENDPOINT", aws.endpoint())
            .env("TF_CLI_CONFIG_FILE", &tools.tf_cli_config);
        cmd
    };
    run_ok(executor("apply"), "apply");
    let workspace = only_workspace(&cache.join("workspaces"));
    let terraform = tools.terraform.clone().expect("terraform discovered");
    let raw = |args: &[&str]| {
        let mut cmd = Command::new(&terraform);
        cmd.args(args)
            .current_dir(&workspace)
            .envs(aws.aws_env())
            .env("TF_VAR_app_secret", "bench-secret-value")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_CLI_CONFIG_FILE", &tools.tf_cli_config);
        cmd
    };
    // Warm-up: providers cached, workspace initialised, LocalStack warm.
    run_ok(executor("drift"), "warm-up drift");
    let plan_args = [
        "plan",
        "-refresh-only",
        "-input=false",
        "-no-color",
        "-lock-timeout=60s",
        "-out=raw.tfplan",
    ];
    let (mut plan, mut plan_show, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let p = time(|| run_ok(raw(&plan_args), "raw plan"));
        let s = time(|| run_ok(raw(&["show", "-json", "raw.tfplan"]), "raw show"));
        plan.push(p);
        plan_show.push(p + s);
        ours.push(time(|| run_ok(executor("drift"), "pangea-executor drift")));
    }
    let (plan, plan_show, ours) = (median(plan), median(plan_show), median(ours));
    println!("drift check, 8-resource template, LocalStack, median of {ROUNDS}:");
    println!(
        "  terraform plan -refresh-only            {:>7.2}s",
        plan.as_secs_f64()
    );
    println!(
        "  terraform plan -refresh-only + show -json {:>5.2}s",
        plan_show.as_secs_f64()
    );
    println!(
        "  pangea-executor drift                   {:>7.2}s",
        ours.as_secs_f64()
    );
    println!(
        "  ratio ours / raw plan                   {:>7.2}x (goal <= 1.10x)",
        ours.as_secs_f64() / plan.as_secs_f64()
    );
    println!(
        "  ratio ours / raw plan + show            {:>7.2}x",
        ours.as_secs_f64() / plan_show.as_secs_f64()
    );
}

fn run_ok(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    // drift exits 2 when it finds drift; only errors matter here.
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn only_workspace(root: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("workspaces")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(dirs.len(), 1, "expected one workspace: {dirs:?}");
    dirs.remove(0)
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
