//! Everything that can stop an execution, classified for the operator: `transient` failures
//! are retried with backoff, the rest wait for a person (spec or template change).

use pangea_api::exec::{ExecutionError, Orphan};

use crate::{
    compile::{CompileError, Diagnostic},
    orphans::journal::JournalError,
    report::ReportError,
    source::SourceError,
    terraform::{TerraformError, discover::DiscoverError, process::ProcessError},
    workspace::WorkspaceError,
};

/// An execution failure.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A sensitive variable file could not be read.
    #[error("reading sensitive variable {name}: {source}")]
    SensitiveVariable {
        /// Variable name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The source could not be fetched.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The compiler could not run.
    #[error(transparent)]
    Compiler(#[from] CompileError),
    /// The template has errors (each `file:line: Class: message`).
    #[error("{}", join(.0))]
    Template(Vec<Diagnostic>),
    /// The requested template block is not in the file, or the file holds several and none
    /// was named.
    #[error("{0}")]
    TemplateSelection(String),
    /// terraform/tofu or its configuration is missing.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The workspace could not be written.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A terraform command failed.
    #[error(transparent)]
    Terraform(#[from] TerraformError),
    /// Terraform's output could not be turned into a report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The apply was refused before changing anything.
    #[error("{message}")]
    Refused {
        /// `DestroyNotAllowed`, `TooManyChanges`, `StaleApproval`.
        reason: &'static str,
        /// Explanation for a person.
        message: String,
    },
    /// The in-flight journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// An interrupted apply may have left these resources outside state, and they were not
    /// adopted: a person must resolve each.
    #[error("{}", orphan_list(.0))]
    Orphans(Vec<Orphan>),
    /// Importing orphans kept failing.
    #[error("{0}")]
    Adoption(String),
    /// Progress could not be recorded outside the pod, so the apply did not start.
    #[error("{0}")]
    Progress(String),
    /// The request asks for something this executor does not do yet.
    #[error("{0}")]
    Unsupported(String),
    /// The execution's deadline passed in a step other than a terraform command (which
    /// reports its own): the step.
    #[error("{0} did not finish before the execution's deadline")]
    Deadline(&'static str),
    /// The execution was stopped (SIGTERM to a Job pod, operator shutdown) in a step other
    /// than a terraform command: the step.
    #[error("{0} was cancelled: the executor is stopping")]
    Cancelled(&'static str),
}

fn orphan_list(orphans: &[Orphan]) -> String {
    let each: Vec<String> = orphans
        .iter()
        .map(|o| format!("{} ({}): {}", o.address, o.reason, o.resolution))
        .collect();
    format!(
        "an interrupted apply may have created {} resource(s) that are not in state; applying now could duplicate them: {}",
        orphans.len(),
        each.join("; ")
    )
}

fn join(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ExecError {
    /// Short machine-readable cause.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SensitiveVariable { .. } => "SensitiveVariableUnreadable",
            Self::Source(e) => e.reason(),
            Self::Compiler(_) => "CompilerFailed",
            Self::Template(_) => "TemplateError",
            Self::TemplateSelection(_) => "TemplateNotSelected",
            Self::Discover(_) => "BinaryNotFound",
            Self::Workspace(_) => "WorkspaceError",
            Self::Terraform(TerraformError::Process(ProcessError::TimedOut { .. })) => {
                "DeadlineExceeded"
            }
            Self::Terraform(TerraformError::Process(ProcessError::Cancelled { .. })) => "Cancelled",
            Self::Terraform(_) => "TerraformFailed",
            Self::Report(_) => "ReportFailed",
            Self::Refused { reason, .. } => reason,
            Self::Journal(_) => "WorkspaceError",
            Self::Orphans(_) => "OrphansFound",
            Self::Adoption(_) => "AdoptionFailed",
            Self::Progress(_) => "ProgressUnrecorded",
            Self::Unsupported(_) => "Unsupported",
            Self::Deadline(_) => "DeadlineExceeded",
            Self::Cancelled(_) => "Cancelled",
        }
    }

    /// Whether retrying later may help without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) => e.is_transient(),
            Self::Terraform(e) => e.is_transient(),
            Self::Compiler(_)
            | Self::Workspace(_)
            | Self::Journal(_)
            | Self::Adoption(_)
            | Self::Progress(_)
            | Self::Deadline(_)
            | Self::Cancelled(_) => true,
            _ => false,
        }
    }

    /// Whether the deadline was hit.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::Terraform(TerraformError::Process(ProcessError::TimedOut { .. }))
                | Self::Deadline(_)
        )
    }

    /// The contract's form, with `message` already scrubbed by the caller.
    pub fn to_contract(&self, message: String) -> ExecutionError {
        ExecutionError {
            transient: self.is_transient(),
            reason: self.reason().to_owned(),
            message,
        }
    }
}
