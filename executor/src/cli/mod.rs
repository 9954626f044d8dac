//! Command line of `pangea-executor`: one module per subcommand family (`compile`; `drift`,
//! `plan`, `apply`, `destroy` in `infra`; `run`). Only the binary uses this; the logic lives in the
//! library so the operator can call it in-process.

mod common;
mod compile;
mod deliver;
mod infra;
mod run;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pangea_api::exec::ExecutionKind;
use tracing_subscriber::EnvFilter;

// Exit codes, shared by every subcommand (terraform's `-detailed-exitcode` convention for 0/2).
/// The input had errors a person must fix (e.g. a template does not compile), or an apply
/// was refused by a safety limit.
pub const EXIT_INVALID: u8 = 1;
/// Drift found or changes pending (drift, plan).
pub const EXIT_CHANGES: u8 = 2;
/// The executor or what it runs failed (no ruby or terraform, timeout, cloud errors, I/O).
pub const EXIT_FAILURE: u8 = 3;
/// `run --result-configmap`: the execution ended but its result could not be delivered to the
/// ConfigMap (missing, forbidden, apiserver unreachable after retries); the termination
/// message still carries the summary. Distinct so the operator never reads it as the outcome.
pub const EXIT_UNDELIVERED: u8 = 4;

/// Runs one Pangea template: compile to Terraform JSON, report drift and pending changes, apply.
#[derive(Debug, Parser)]
#[command(name = "pangea-executor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile a Pangea template file to one Terraform JSON document per template.
    Compile(compile::CompileArgs),
    /// Report changes made outside Terraform (refresh-only plan), attribute by attribute.
    Drift(infra::InfraArgs),
    /// Report pending configuration changes (normal plan) and the plan id to approve.
    Plan(infra::InfraArgs),
    /// Plan, check safety limits and approval, apply, and settle state.
    Apply(infra::InfraArgs),
    /// Destroy everything a template manages (requires --allow-destroy).
    Destroy(infra::InfraArgs),
    /// Execute one typed request (the Job entry point): request JSON in, result JSON out.
    Run(run::RunArgs),
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let Self { command } = self;
        match command {
            Command::Compile(args) => args.run().await,
            Command::Drift(args) => args.run(ExecutionKind::Drift).await,
            Command::Plan(args) => args.run(ExecutionKind::Plan).await,
            Command::Apply(args) => args.run(ExecutionKind::Apply).await,
            Command::Destroy(args) => args.run(ExecutionKind::Destroy).await,
            Command::Run(args) => args.run().await,
        }
    }
}

/// Logs go to stderr (stdout carries results); level from `RUST_LOG`, default `warn`.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
