//! Pangea compiler: a template file (Ruby DSL) to one Terraform JSON document per template.
//!
//! The DSL engine is the stdlib-only Ruby program in `executor/ruby/`, embedded here and run
//! with the system `ruby` (see `PANGEA_DSL.md` for the language). This module installs it,
//! runs it under a deadline, and parses its one-object answer into [`CompileOutput`]. Template
//! mistakes are [`Diagnostic`]s in the output; [`CompileError`] is for the machinery failing.

mod error;
mod output;
pub mod pretty;
mod ruby;
mod sources;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;

pub use self::{
    error::CompileError,
    output::{CompileOutput, CompiledTemplate, Diagnostic},
    ruby::find_ruby,
};

/// Default compile deadline; templates compile in well under a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which backend goes into each template's `terraform.backend`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BackendChoice {
    /// From the Pangea namespace config (`pangea.yaml`/`pangea.yml`), if any.
    #[default]
    Namespace,
    /// Leave the templates as written.
    None,
    /// This backend (e.g. `{"kubernetes": {...}}`) for every template, replacing theirs.
    Override(serde_json::Value),
}

/// What to compile.
#[derive(Debug, Clone, Default)]
pub struct CompileRequest {
    /// The template file; relative paths are relative to the current directory.
    pub file: PathBuf,
    /// Only this template (`template :NAME`); all templates when `None`.
    pub template: Option<String>,
    /// Pangea namespace selecting the state backend; `default_namespace` when `None`.
    pub namespace: Option<String>,
    /// Namespace config file; searched for (template dir, cwd, ...) when `None`.
    pub config: Option<PathBuf>,
    /// The source tree `require_relative` may load from (a git checkout); the template's own
    /// directory when `None`.
    pub root: Option<PathBuf>,
    pub backend: BackendChoice,
}

/// The request as the Ruby program reads it.
#[derive(Serialize)]
struct WireRequest<'a> {
    file: &'a Path,
    template: Option<&'a str>,
    namespace: Option<&'a str>,
    config: Option<&'a Path>,
    root: Option<&'a Path>,
    backend: serde_json::Value,
}

impl<'a> From<&'a CompileRequest> for WireRequest<'a> {
    fn from(req: &'a CompileRequest) -> Self {
        let backend = match &req.backend {
            BackendChoice::Namespace => serde_json::Value::Null,
            BackendChoice::None => serde_json::Value::from("none"),
            BackendChoice::Override(value) => value.clone(),
        };
        Self {
            file: &req.file,
            template: req.template.as_deref(),
            namespace: req.namespace.as_deref(),
            config: req.config.as_deref(),
            root: req.root.as_deref(),
            backend,
        }
    }
}

/// A configured compiler: which `ruby`, where to install the sources, how long to wait.
#[derive(Debug, Clone)]
pub struct Compiler {
    ruby: PathBuf,
    cache_dir: PathBuf,
    timeout: Duration,
}

impl Compiler {
    /// Uses `ruby` (from [`find_ruby`]), the system temp dir as cache, the default deadline.
    pub fn new(ruby: PathBuf) -> Self {
        Self {
            ruby,
            cache_dir: std::env::temp_dir(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[must_use]
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = dir;
        self
    }

    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Compiles one file. `Ok` even when templates have errors: check [`CompileOutput::is_ok`].
    #[tracing::instrument(skip_all, fields(file = %req.file.display()))]
    pub async fn compile(&self, req: &CompileRequest) -> Result<CompileOutput, CompileError> {
        let dir = sources::install(&self.cache_dir)?;
        let input = serde_json::to_vec(&WireRequest::from(req)).map_err(CompileError::Request)?;
        let started = std::time::Instant::now();
        let raw = ruby::run(&self.ruby, &dir.join(sources::ENTRY), &input, self.timeout).await?;
        let stderr = String::from_utf8_lossy(&raw.stderr).into_owned();
        let mut output: CompileOutput = serde_json::from_slice(&raw.stdout).map_err(|_| {
            tracing::debug!(%stderr, "compiler output was not a result");
            CompileError::Crashed {
                status: raw.status,
                stderr: first_line(&stderr),
            }
        })?;
        output.console = stderr;
        tracing::debug!(
            templates = output.templates.len(),
            errors = output.errors.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compiled"
        );
        Ok(output)
    }
}

/// Ruby puts the error on the first line and a backtrace after it; a person needs the first
/// (the rest is logged at debug level).
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("(no output)").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_request_encodes_backend_choices() {
        let mut req = CompileRequest {
            file: "t.rb".into(),
            template: Some("web".into()),
            ..CompileRequest::default()
        };
        let json = |r: &CompileRequest| serde_json::to_value(WireRequest::from(r)).unwrap();
        assert_eq!(json(&req)["backend"], serde_json::Value::Null);
        assert_eq!(json(&req)["template"], "web");
        req.backend = BackendChoice::None;
        assert_eq!(json(&req)["backend"], "none");
        req.backend = BackendChoice::Override(serde_json::json!({"kubernetes": {"x": 1}}));
        assert_eq!(json(&req)["backend"]["kubernetes"]["x"], 1);
    }

    #[test]
    fn first_line_drops_the_backtrace() {
        assert_eq!(
            first_line("x.rb:1: boom (NameError)\n\tfrom y.rb:2\n"),
            "x.rb:1: boom (NameError)"
        );
        assert_eq!(first_line(""), "(no output)");
    }
}
