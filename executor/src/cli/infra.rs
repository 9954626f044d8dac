//! `pangea-executor drift|plan|apply|destroy PATH`: run one kind of execution for every
//! template of a file (or every `.rb` file of a directory) and show the reports — a coloured
//! table for a person, JSON for scripts. Exit code 0 clean, 2 drift or pending changes,
//! 1 refused or invalid input, 3 failure.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use pangea_api::{
    exec::{
        ApplyLimits, ExecutionKind, ExecutionResult, InFlightCreate, Outcome, Request,
        RequestSource,
    },
    template::{IacBinary, KubernetesState, LocalState, StateBackend},
};
use pangea_executor::{
    compile::CompileRequest, execute::Executor, orphans::journal::Journal, workspace::Workspace,
};
use tokio_util::sync::CancellationToken;

use super::{EXIT_CHANGES, EXIT_FAILURE, EXIT_INVALID, common::ExecutorArgs, table};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StateKind {
    /// A state file in the workspace (default for people at a terminal).
    Local,
    /// A Secret in `--kube-namespace` (the operator's default).
    Kubernetes,
    /// Whatever the template or its pangea.yml declares.
    Template,
}

#[derive(Debug, Args)]
pub struct InfraArgs {
    /// A Pangea template file, or a directory: every template of every `.rb` file in it.
    path: PathBuf,
    /// Only this template of the file.
    #[arg(long)]
    template: Option<String>,
    /// Pangea namespace (selects the backend from pangea.yml with `--state template`).
    #[arg(long, env = "PANGEA_NAMESPACE")]
    namespace: Option<String>,
    /// Terraform variable NAME=VALUE (VALUE is JSON when it parses as JSON). Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Sensitive variable NAME=FILE, read from FILE and never shown. Repeatable.
    #[arg(long = "sensitive-var", value_name = "NAME=FILE")]
    sensitive_vars: Vec<String>,
    /// Where state lives.
    #[arg(long, value_enum, default_value_t = StateKind::Local)]
    state: StateKind,
    /// Full state backend as JSON (`spec.state` form, e.g. '{"s3": {"bucket": ..., "key":
    /// ..., "region": ..., "dynamodbTable": ...}}'); overrides `--state`.
    #[arg(long, value_name = "JSON")]
    state_json: Option<String>,
    /// Namespace of the state Secret with `--state kubernetes`.
    #[arg(long, default_value = "default")]
    kube_namespace: String,
    /// `terraform` or `tofu`.
    #[arg(long, value_enum, default_value_t = Binary::Terraform)]
    binary: Binary,
    /// Deadline per template, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// apply: refuse unless the plan's id equals this (from `plan`).
    #[arg(long)]
    approve: Option<String>,
    /// apply/destroy: allow deleting or replacing resources.
    #[arg(long)]
    allow_destroy: bool,
    /// apply: refuse plans that change more resources than this.
    #[arg(long)]
    max_changes: Option<u32>,
    /// plan/apply: never import orphans of an interrupted apply; name them and stop instead.
    #[arg(long)]
    no_adopt_orphans: bool,
    /// A resource an interrupted apply may have created that a person has resolved (imported
    /// or deleted, or found never created): stop treating it as an orphan. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    forget_orphan: Vec<String>,
    /// A create an earlier, interrupted apply had in flight (its result's `inFlightCreates`),
    /// for runs whose workspace did not keep the journal. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    in_flight_create: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    executor: ExecutorArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Binary {
    Terraform,
    Tofu,
}

impl InfraArgs {
    pub async fn run(self, kind: ExecutionKind) -> anyhow::Result<ExitCode> {
        let format = self.format;
        let executor = self.executor_config()?;
        let cancel = cancel_on_ctrl_c();
        let mut results = Vec::new();
        for (file, template) in self.targets(&executor).await? {
            let request = self.request(kind, &file, template.as_deref())?;
            self.forget_orphans(&executor, &request)?;
            let label = template.unwrap_or_else(|| file.display().to_string());
            results.push((label, executor.execute(&request, cancel.clone()).await));
        }
        match format {
            Format::Json => {
                let list: Vec<&ExecutionResult> = results.iter().map(|(_, r)| r).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            Format::Table => print!("{}", table::render(&results, table::use_colour())),
        }
        Ok(exit_code(results.iter().map(|(_, r)| r)).into())
    }

    fn executor_config(&self) -> anyhow::Result<Executor> {
        self.executor.clone().into_executor()
    }

    /// Every (file, template) to run, in a stable order. A file that does not compile is one
    /// target without a template name: its execution reports the diagnostics like any other
    /// failure, in the chosen format.
    async fn targets(&self, executor: &Executor) -> anyhow::Result<Vec<(PathBuf, Option<String>)>> {
        let files = template_files(&self.path)?;
        if self.template.is_some() && files.len() != 1 {
            bail!("--template needs a single file, not a directory");
        }
        let mut targets = Vec::new();
        for file in files {
            let request = CompileRequest {
                file: file.clone(),
                template: self.template.clone(),
                ..Default::default()
            };
            let output = executor.compiler.compile(&request).await?;
            if !output.is_ok() || output.templates.is_empty() {
                targets.push((file.clone(), self.template.clone()));
                continue;
            }
            targets.extend(
                output
                    .templates
                    .into_iter()
                    .map(|t| (file.clone(), Some(t.name))),
            );
        }
        Ok(targets)
    }

    fn request(
        &self,
        kind: ExecutionKind,
        file: &Path,
        template: Option<&str>,
    ) -> anyhow::Result<Request> {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Request {
            id: format!("cli-{}-{}", std::process::id(), template.unwrap_or("file")),
            kind,
            template: format!(
                "{}/{stem}-{}",
                self.kube_namespace,
                template.unwrap_or("file")
            ),
            source: RequestSource::Local {
                path: file.display().to_string(),
            },
            pangea_namespace: self.namespace.clone(),
            template_name: template.map(str::to_owned),
            variables: parse_vars(&self.vars)?,
            sensitive_variable_files: parse_pairs(&self.sensitive_vars, "--sensitive-var")?,
            backend: self.backend()?,
            default_backend: None,
            binary: match self.binary {
                Binary::Terraform => IacBinary::Terraform,
                Binary::Tofu => IacBinary::Tofu,
            },
            timeout_seconds: self.timeout,
            severity_rules: Vec::new(),
            ignore: Vec::new(),
            approved_plan_id: self.approve.clone(),
            limits: ApplyLimits {
                allow_destroy: self.allow_destroy,
                max_changes: self.max_changes,
                adopt_orphans: !self.no_adopt_orphans,
            },
            compliance_profiles: Vec::new(),
            interrupted_apply: None,
            forget_orphans: Vec::new(),
            in_flight_creates: self
                .in_flight_create
                .iter()
                .map(|a| in_flight(a))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// `--forget-orphan`: a person's answer to an `OrphansFound` failure.
    fn forget_orphans(&self, executor: &Executor, request: &Request) -> anyhow::Result<()> {
        if self.forget_orphan.is_empty() {
            return Ok(());
        }
        let workspace = Workspace::open(&executor.cache_dir, &request.template)?;
        Journal::new(workspace.dir()).forget(&self.forget_orphan)?;
        Ok(())
    }

    fn backend(&self) -> anyhow::Result<Option<StateBackend>> {
        if let Some(json) = &self.state_json {
            return Ok(Some(
                serde_json::from_str(json).context("--state-json is not a valid state backend")?,
            ));
        }
        Ok(match self.state {
            StateKind::Local => Some(StateBackend {
                local: Some(LocalState::default()),
                ..Default::default()
            }),
            StateKind::Kubernetes => Some(StateBackend {
                kubernetes: Some(KubernetesState::default()),
                ..Default::default()
            }),
            StateKind::Template => None,
        })
    }
}

fn template_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rb"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .rb template files in {}", path.display());
    }
    Ok(files)
}

fn parse_pairs(items: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .with_context(|| format!("{flag} wants NAME=VALUE, got {item:?}"))?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

fn parse_vars(items: &[String]) -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
    Ok(parse_pairs(items, "--var")?
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
            (k, value)
        })
        .collect())
}

/// Worst outcome wins: failure > refused > changes/drift > clean.
fn exit_code<'a>(results: impl Iterator<Item = &'a ExecutionResult>) -> u8 {
    results
        .map(|r| match r.outcome {
            Outcome::Failed if needs_template_fix(r) => EXIT_INVALID,
            Outcome::Failed | Outcome::TimedOut => EXIT_FAILURE,
            Outcome::Refused => EXIT_INVALID,
            Outcome::Succeeded if changes_found(r) => EXIT_CHANGES,
            Outcome::Succeeded => 0,
        })
        .max_by_key(|code| match *code {
            EXIT_FAILURE => 3,
            EXIT_INVALID => 2,
            EXIT_CHANGES => 1,
            _ => 0,
        })
        .unwrap_or(0)
}

/// The template itself is wrong (as opposed to the machinery or the cloud failing).
fn needs_template_fix(r: &ExecutionResult) -> bool {
    r.error
        .as_ref()
        .is_some_and(|e| matches!(e.reason.as_str(), "TemplateError" | "TemplateNotSelected"))
}

fn changes_found(r: &ExecutionResult) -> bool {
    match r.kind {
        ExecutionKind::Drift => r.drift.as_ref().is_some_and(|d| d.detected()),
        ExecutionKind::Plan => r.plan.as_ref().is_some_and(|p| p.has_changes()),
        _ => false,
    }
}

/// Ctrl-C interrupts the running terraform (SIGINT → lock released) instead of killing us.
fn cancel_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupting: waiting for terraform to release its lock...");
            trigger.cancel();
        }
    });
    token
}

/// `aws_s3_bucket.logs` or `module.m.aws_s3_bucket.logs["k"]` → the create of that address.
fn in_flight(address: &str) -> anyhow::Result<InFlightCreate> {
    let without_key = address.split('[').next().unwrap_or(address);
    let segments: Vec<&str> = without_key.split('.').collect();
    let resource_type = segments
        .len()
        .checked_sub(2)
        .map(|i| segments[i])
        .filter(|t| !t.is_empty())
        .with_context(|| format!("--in-flight-create {address:?} is not a resource address"))?;
    Ok(InFlightCreate {
        address: address.to_owned(),
        resource_type: resource_type.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_addresses_name_their_type() {
        let types: Vec<String> = [
            "aws_s3_bucket.logs",
            "module.m.aws_ssm_parameter.p[\"a.b\"]",
        ]
        .iter()
        .map(|a| in_flight(a).unwrap().resource_type)
        .collect();
        assert_eq!(types, ["aws_s3_bucket", "aws_ssm_parameter"]);
        assert!(in_flight("logs").is_err());
    }
}
