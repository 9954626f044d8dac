//! `pangea-executor run --request FILE`: the Job entry point. Reads one typed request, runs
//! it, writes one typed result (to `--out` or stdout) and, in a Job pod, delivers it to the
//! ConfigMap the operator reads (`--result-configmap`) with a one-line summary in the
//! termination message (`--termination-log`). The exit code mirrors the outcome so a Job's
//! status is meaningful, but the delivered result is the source of truth.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::Args;
use pangea_api::exec::{ExecutionResult, Outcome, Request};
use pangea_executor::result_codec;
use tokio_util::sync::CancellationToken;

use super::{EXIT_FAILURE, EXIT_INVALID, EXIT_UNDELIVERED, common::ExecutorArgs, deliver};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The request (JSON, `pangea_api::exec::Request`); `-` for stdin.
    #[arg(long)]
    request: PathBuf,
    /// Where to write the result JSON (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Deliver the result to this existing ConfigMap (keys `result.json.gz`, `summary`).
    #[arg(long)]
    result_configmap: Option<String>,
    /// Namespace of --result-configmap [default: the pod's own, from its service account]
    #[arg(long, env = "POD_NAMESPACE")]
    result_namespace: Option<String>,
    /// Write the one-line result summary here (Kubernetes reads /dev/termination-log).
    #[arg(long)]
    termination_log: Option<PathBuf>,
    #[command(flatten)]
    executor: ExecutorArgs,
}

impl RunArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            request,
            out,
            result_configmap,
            result_namespace,
            termination_log,
            executor,
        } = self;
        let request = read_request(&request)?;
        let executor = executor.into_executor()?;
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        // A Job pod is stopped with SIGTERM: interrupt terraform so it releases the lock.
        // Registered before anything runs, so an early SIGTERM cancels instead of killing.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            term.recv().await;
            trigger.cancel();
        });
        // Without a place for progress, an apply in a pod would not start (its creates could
        // not be recorded): a sink that cannot be built fails the run like a lost delivery.
        let sink = match &result_configmap {
            Some(name) => {
                Some(deliver::ConfigMapProgress::new(name, result_namespace.clone()).await?)
            }
            None => None,
        };
        let sink = sink
            .as_ref()
            .map(|s| s as &dyn pangea_executor::execute::ProgressSink);
        let result = executor.execute_recording(&request, cancel, sink).await;
        // The summary first: it is local and cheap, and must be there even when delivery fails.
        if let Some(path) = &termination_log {
            write_termination_log(path, &result);
        }
        let delivered = match &result_configmap {
            Some(name) => deliver_or_report(&result, name, result_namespace).await,
            None => true,
        };
        write_result(&result, out.as_deref())?;
        Ok(if delivered {
            exit_code(result.outcome)
        } else {
            EXIT_UNDELIVERED.into()
        })
    }
}

async fn deliver_or_report(
    result: &ExecutionResult,
    name: &str,
    namespace: Option<String>,
) -> bool {
    match deliver::deliver(result, name, namespace).await {
        Ok(()) => true,
        Err(error) => {
            eprintln!("error: the result was not delivered: {error:#}");
            false
        }
    }
}

fn read_request(path: &Path) -> anyhow::Result<Request> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the request from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text).context("the request is not a valid pangea request")
}

/// Best effort: the delivered result is the contract, the termination message a convenience.
fn write_termination_log(path: &Path, result: &ExecutionResult) {
    if let Err(error) = std::fs::write(path, result_codec::summary(result)) {
        eprintln!(
            "warning: could not write the termination log {}: {error}",
            path.display()
        );
    }
}

fn write_result(result: &ExecutionResult, out: Option<&Path>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(result)?;
    match out {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Succeeded => ExitCode::SUCCESS,
        Outcome::Refused => EXIT_INVALID.into(),
        Outcome::Failed | Outcome::TimedOut => EXIT_FAILURE.into(),
    }
}
