//! Command line of `pangea-executor`: one module per subcommand (today `compile`; plan, drift,
//! apply, destroy and run go beside it). Only the binary uses this; the logic lives in the
//! library so the operator can call it in-process.

mod compile;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The input had errors a person must fix (e.g. a template does not compile).
pub const EXIT_INVALID: u8 = 1;
/// The executor itself failed (no ruby, timeout, I/O).
pub const EXIT_FAILURE: u8 = 2;

/// Runs one Pangea template: compile to Terraform JSON, and (later) plan, drift, apply.
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
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let Self { command } = self;
        match command {
            Command::Compile(args) => args.run().await,
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
