//! First half of every execution, once the source is fetched: compile the selected template
//! (under the execution's deadline and cancellation, like every terraform command), write the
//! workspace and run `init` only when what it depends on changed.

use std::{ffi::OsString, path::Path, time::Instant};

use pangea_api::exec::Request;
use serde_json::{Map, Value};

use super::{ExecError, Executor};
use crate::{
    backend::{self, KubernetesContext},
    compile::{BackendChoice, CompileOutput, CompileRequest},
    source,
    terraform::{Session, Terraform, discover},
    workspace::{self, Workspace},
};

/// The step a deadline or a stop can interrupt before terraform runs.
const COMPILING: &str = "compiling the template";

/// A workspace ready for terraform commands.
pub struct Prepared {
    /// The template's workspace.
    pub workspace: Workspace,
    /// Source revision (commit SHA or content hash).
    pub revision: String,
    /// How to run terraform.
    pub terraform: Terraform,
    /// Environment for every command: sensitive variables as `TF_VAR_*`.
    pub env: Vec<(OsString, OsString)>,
    /// The state lock terraform takes, when the operator can read it.
    pub state_lock: Option<pangea_api::exec::StateLockRef>,
}

impl Executor {
    /// Compile the fetched source, write the workspace, `init` if needed.
    pub(super) async fn prepare(
        &self,
        req: &Request,
        fetched: source::FetchedSource,
        sensitive: &[(String, String)],
        ctx: &super::RunContext<'_>,
    ) -> Result<Prepared, ExecError> {
        let as_json = |b: &pangea_api::template::StateBackend| {
            backend::backend_json(b, &self.kubernetes_context(req))
        };
        let mut backend = req.backend.as_ref().and_then(as_json);
        let mut compiled = self.compile(req, &fetched, backend.clone(), ctx).await?;
        let mut document = parse_document(&compiled)?;
        if backend.is_none() && !has_backend(&document) {
            // Neither the request nor the template's namespace chose a backend: the default.
            backend = req.default_backend.as_ref().and_then(as_json);
            if backend.is_some() {
                compiled = self.compile(req, &fetched, backend.clone(), ctx).await?;
                document = parse_document(&compiled)?;
            }
        }
        let workspace = Workspace::open(&self.cache_dir, &req.template)?;
        let overrides = self
            .aws_endpoint
            .as_deref()
            .and_then(|e| backend::aws_endpoint_override(&document, e));
        let variables: Map<String, Value> = req.variables.clone().into_iter().collect();
        workspace.write_config(compiled.get(), overrides.as_ref(), &variables)?;
        let terraform = self.terraform(req)?;
        let env = sensitive
            .iter()
            .map(|(k, v)| (OsString::from(format!("TF_VAR_{k}")), OsString::from(v)))
            .collect();
        let prepared = Prepared {
            workspace,
            revision: fetched.revision,
            terraform,
            env,
            // The compiled document carries whichever backend won.
            state_lock: backend::state_lock(&document),
        };
        self.init_if_needed(&prepared, &document, backend.as_ref(), ctx)
            .await?;
        Ok(prepared)
    }

    async fn compile(
        &self,
        req: &Request,
        fetched: &source::FetchedSource,
        backend: Option<Value>,
        ctx: &super::RunContext<'_>,
    ) -> Result<Box<serde_json::value::RawValue>, ExecError> {
        let request = CompileRequest {
            file: fetched.file.clone(),
            template: req.template_name.clone(),
            namespace: req.pangea_namespace.clone(),
            config: None,
            root: Some(fetched.root.clone()),
            backend: backend.map_or(BackendChoice::Namespace, BackendChoice::Override),
        };
        // A template is a program: one that never ends must not outlive the execution's
        // deadline or a stop (a Job pod's SIGTERM). Dropping the compile kills Ruby.
        let compiling = tokio::time::timeout(ctx.remaining(), self.compiler.compile(&request));
        let mut output = tokio::select! {
            compiled = compiling => compiled.map_err(|_| ExecError::Deadline(COMPILING))??,
            () = ctx.cancel.cancelled() => return Err(ExecError::Cancelled(COMPILING)),
        };
        // Diagnostics name files as the user knows them: relative to the source tree, not to
        // the executor's cache.
        for d in output.errors.iter_mut().chain(output.warnings.iter_mut()) {
            if let Some(rel) = d
                .file
                .as_deref()
                .and_then(|f| Path::new(f).strip_prefix(&fetched.root).ok())
            {
                d.file = Some(rel.display().to_string());
            }
        }
        select_template(output, req.template_name.as_deref())
    }

    fn terraform(&self, req: &Request) -> Result<Terraform, ExecError> {
        Ok(Terraform {
            binary: discover::find_binary(req.binary)?,
            cli_config: discover::cli_config(&self.cache_dir)?,
            grace: self.grace,
            lock_timeout: self.lock_timeout,
        })
    }

    fn kubernetes_context(&self, req: &Request) -> KubernetesContext {
        let (namespace, name) = req
            .template
            .split_once('/')
            .unwrap_or(("default", req.template.as_str()));
        KubernetesContext {
            namespace: namespace.to_owned(),
            default_suffix: name.to_owned(),
            kubeconfig: self.kubeconfig.clone(),
        }
    }

    async fn init_if_needed(
        &self,
        prepared: &Prepared,
        document: &Value,
        backend: Option<&Value>,
        ctx: &super::RunContext<'_>,
    ) -> Result<(), ExecError> {
        let cli_config =
            std::fs::read_to_string(&prepared.terraform.cli_config).unwrap_or_default();
        let fingerprint = workspace::init_fingerprint(document, backend, &cli_config);
        if !prepared.workspace.needs_init(&fingerprint) {
            tracing::debug!("workspace initialised for this configuration: skipping init");
            return Ok(());
        }
        let started = Instant::now();
        let session = ctx.session(prepared);
        // A workspace that was initialised before but for another configuration may hold
        // another backend's settings: reconfigure instead of offering a state migration.
        let reconfigure = prepared.workspace.path(".terraform").is_dir();
        session.init(reconfigure).await?;
        prepared.workspace.mark_initialized(&fingerprint)?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "terraform init"
        );
        Ok(())
    }
}

impl super::RunContext<'_> {
    /// A terraform session for the prepared workspace.
    pub fn session<'s>(&'s self, prepared: &'s Prepared) -> Session<'s> {
        Session::new(
            &prepared.terraform,
            prepared.workspace.dir(),
            prepared.env.clone(),
            self.deadline,
            self.cancel.clone(),
            self.scrub,
        )
    }
}

/// The one document to run: the named template, or the only one in the file.
fn select_template(
    output: CompileOutput,
    wanted: Option<&str>,
) -> Result<Box<serde_json::value::RawValue>, ExecError> {
    if !output.errors.is_empty() {
        return Err(ExecError::Template(output.errors));
    }
    let names: Vec<&str> = output.templates.iter().map(|t| t.name.as_str()).collect();
    let chosen = match wanted {
        Some(name) => output.templates.iter().find(|t| t.name == name),
        None if output.templates.len() == 1 => output.templates.first(),
        None => {
            return Err(ExecError::TemplateSelection(format!(
                "the file holds templates {}: name one (spec.pangea.template / --template)",
                names.join(", ")
            )));
        }
    };
    chosen.map(|t| t.document.clone()).ok_or_else(|| {
        ExecError::TemplateSelection(format!(
            "template {:?} not found; the file holds: {}",
            wanted.unwrap_or_default(),
            names.join(", ")
        ))
    })
}

fn parse_document(compiled: &serde_json::value::RawValue) -> Result<Value, ExecError> {
    serde_json::from_str(compiled.get())
        .map_err(|e| ExecError::TemplateSelection(format!("compiled document is not JSON: {e}")))
}

/// Whether the compiled template has a `terraform.backend` block.
fn has_backend(document: &Value) -> bool {
    document
        .pointer("/terraform/backend")
        .is_some_and(|b| !b.is_null())
        || document
            .pointer("/terraform")
            .and_then(Value::as_array)
            .is_some_and(|blocks| blocks.iter().any(|b| b.get("backend").is_some()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::has_backend;

    #[test]
    fn a_backend_counts_only_when_the_document_has_one() {
        assert!(has_backend(
            &json!({"terraform": {"backend": {"s3": {"bucket": "b"}}}})
        ));
        assert!(!has_backend(
            &json!({"terraform": {"required_providers": {}}})
        ));
        assert!(!has_backend(&json!({"resource": {}})));
        assert!(!has_backend(&json!({"terraform": {"backend": null}})));
    }
}
