//! `pangea-executor run --request FILE`: the Job entry point. Reads one typed request, runs
//! it, writes one typed result (to `--out` or stdout). The exit code mirrors the outcome so a
//! Job's status is meaningful, but the result file is the source of truth.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Args;
use pangea_api::exec::{Outcome, Request};
use tokio_util::sync::CancellationToken;

use super::{EXIT_FAILURE, EXIT_INVALID, common::ExecutorArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request (JSON, `pangea_api::exec::Request`); `-` for stdin.
    #[arg(long)]
    request: PathBuf,
    /// Where to write the result JSON (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    executor: ExecutorArgs,
}

impl RunArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            request,
            out,
            executor,
        } = self;
        let text = if request.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading the request from stdin")?
        } else {
            std::fs::read_to_string(&request)
                .with_context(|| format!("reading {}", request.display()))?
        };
        let request: Request =
            serde_json::from_str(&text).context("the request is not a valid pangea request")?;
        let executor = executor.into_executor()?;
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        // A Job pod is stopped with SIGTERM: interrupt terraform so it releases the lock.
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                trigger.cancel();
            }
        });
        let result = executor.execute(&request, cancel).await;
        let json = serde_json::to_string_pretty(&result)?;
        match out {
            Some(path) => std::fs::write(&path, json)
                .with_context(|| format!("writing {}", path.display()))?,
            None => println!("{json}"),
        }
        Ok(match result.outcome {
            Outcome::Succeeded => ExitCode::SUCCESS,
            Outcome::Refused => EXIT_INVALID.into(),
            Outcome::Failed | Outcome::TimedOut => EXIT_FAILURE.into(),
        })
    }
}
