//! Arguments shared by the subcommands that run terraform (`drift`, `plan`, `apply`,
//! `destroy`, `run`): where caches live, which binaries, how to reach the cloud and the
//! cluster. Turned once into an [`Executor`].

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use pangea_executor::{
    compile::{Compiler, find_ruby},
    execute::Executor,
};

#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// Workspaces, source and plugin caches [default: ~/.cache/pangea-operator/executor]
    #[arg(long, env = "PANGEA_EXECUTOR_CACHE")]
    cache_dir: Option<PathBuf>,
    /// Ruby interpreter (default: `ruby` on PATH).
    #[arg(long, env = "PANGEA_RUBY")]
    ruby: Option<PathBuf>,
    /// Point every AWS provider at this endpoint (LocalStack, moto).
    #[arg(long, env = "PANGEA_AWS_ENDPOINT")]
    aws_endpoint: Option<String>,
    /// Kubeconfig for the `kubernetes` state backend (default: in-cluster credentials).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Seconds an interrupted terraform gets to release its state lock before it is killed.
    #[arg(long, default_value_t = 30)]
    grace_seconds: u64,
    /// Seconds terraform waits for a state lock held by another run.
    #[arg(long, default_value_t = 60)]
    lock_timeout_seconds: u64,
}

impl ExecutorArgs {
    pub fn into_executor(self) -> anyhow::Result<Executor> {
        let Self {
            cache_dir,
            ruby,
            aws_endpoint,
            kubeconfig,
            grace_seconds,
            lock_timeout_seconds,
        } = self;
        let cache_dir = cache_dir.map_or_else(default_cache_dir, Ok)?;
        std::fs::create_dir_all(&cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let ruby = find_ruby(ruby.as_deref())?;
        Ok(Executor {
            compiler: Compiler::new(ruby).with_cache_dir(cache_dir.join("compiler")),
            cache_dir,
            aws_endpoint,
            // KUBECONFIG may list several files; the backend takes one.
            kubeconfig: kubeconfig.and_then(|k| std::env::split_paths(&k).next()),
            grace: Duration::from_secs(grace_seconds),
            lock_timeout: Duration::from_secs(lock_timeout_seconds),
        })
    }
}

fn default_cache_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set: pass --cache-dir")?;
    Ok(PathBuf::from(home).join(".cache/pangea-operator/executor"))
}
