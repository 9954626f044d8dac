//! `pangea-executor compile`: compile a template file, print JSON or a table, optionally write
//! `<out>/<template>/main.tf.json`. Template errors go to stderr as `file:line: Class: message`
//! and make the exit code non-zero; nothing is written when any template fails.

use std::{
    fs,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::{Args, ValueEnum};
use pangea_executor::compile::{
    BackendChoice, CompileOutput, CompileRequest, Compiler, DEFAULT_TIMEOUT, find_ruby,
};

use super::EXIT_INVALID;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// `{"templates": {...}, "warnings": [...], "errors": [...]}`
    Json,
    /// Templates, resource counts and warnings, for a person.
    Table,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The Pangea template file (Ruby).
    file: PathBuf,
    /// Compile only this template (`template :NAME`).
    #[arg(long)]
    template: Option<String>,
    /// Pangea namespace: selects the state backend in pangea.yaml/pangea.yml.
    #[arg(long, env = "PANGEA_NAMESPACE")]
    namespace: Option<String>,
    /// Namespace config file (default: searched next to FILE, then in the current directory).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Inject no backend: leave templates as written.
    #[arg(long, conflicts_with = "backend_json")]
    no_backend: bool,
    /// Inject this backend into every template, e.g. '{"kubernetes": {...}}'.
    #[arg(long, value_name = "JSON")]
    backend_json: Option<String>,
    /// Write each template to DIR/<template>/main.tf.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Ruby interpreter (default: `ruby` on PATH).
    #[arg(long, env = "PANGEA_RUBY")]
    ruby: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, env = "PANGEA_COMPILE_TIMEOUT", default_value_t = DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Where the bundled compiler is unpacked (default: the system temp dir).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

impl CompileArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let Self {
            file,
            template,
            namespace,
            config,
            no_backend,
            backend_json,
            out,
            format,
            ruby,
            timeout,
            cache_dir,
        } = self;
        let backend = backend_choice(no_backend, backend_json.as_deref())?;
        let mut compiler =
            Compiler::new(find_ruby(ruby.as_deref())?).with_timeout(Duration::from_secs(timeout));
        if let Some(dir) = cache_dir {
            compiler = compiler.with_cache_dir(dir);
        }
        let request = CompileRequest {
            file,
            template,
            namespace,
            config,
            root: None,
            backend,
        };
        let output = compiler.compile(&request).await?;
        if let Err(e) = report(&output, format) {
            // `compile ... | head` closing the pipe early is not a failure of the compile.
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(anyhow::Error::new(e).context("writing the result"));
            }
        }
        if !output.is_ok() {
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        if let Some(dir) = out {
            write_documents(&output, &dir)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn backend_choice(none: bool, json: Option<&str>) -> anyhow::Result<BackendChoice> {
    Ok(match (none, json) {
        (true, _) => BackendChoice::None,
        (false, Some(text)) => {
            let value: serde_json::Value =
                serde_json::from_str(text).context("--backend-json is not valid JSON")?;
            anyhow::ensure!(value.is_object(), "--backend-json must be a JSON object");
            BackendChoice::Override(value)
        }
        (false, None) => BackendChoice::Namespace,
    })
}

/// Result on stdout; template console output, warnings and errors on stderr.
fn report(output: &CompileOutput, format: Format) -> io::Result<()> {
    let mut stderr = io::stderr().lock();
    stderr.write_all(output.console.as_bytes())?;
    let mut stdout = io::stdout().lock();
    match format {
        Format::Json => writeln!(stdout, "{}", output.to_json_pretty())?,
        // The table already lists the warnings.
        Format::Table => write!(stdout, "{}", table(output))?,
    }
    stdout.flush()?;
    if matches!(format, Format::Json) {
        for warning in &output.warnings {
            writeln!(stderr, "warning: {warning}")?;
        }
    }
    for error in &output.errors {
        writeln!(stderr, "{error}")?;
    }
    Ok(())
}

fn table(output: &CompileOutput) -> String {
    let width = output
        .templates
        .iter()
        .map(|t| t.name.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    let mut text = format!(
        "{:<width$}  {:>9}  {:>4}\n",
        "TEMPLATE", "RESOURCES", "DATA"
    );
    for t in &output.templates {
        text += &format!(
            "{:<width$}  {:>9}  {:>4}\n",
            t.name,
            t.resource_count(),
            t.data_count()
        );
    }
    if !output.warnings.is_empty() {
        text += &format!("\n{} warning(s):\n", output.warnings.len());
        for warning in &output.warnings {
            text += &format!("  {warning}\n");
        }
    }
    text
}

fn write_documents(output: &CompileOutput, dir: &std::path::Path) -> anyhow::Result<()> {
    for t in &output.templates {
        let target = dir.join(&t.name);
        fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
        let path = target.join("main.tf.json");
        fs::write(&path, t.pretty()).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote");
    }
    Ok(())
}
