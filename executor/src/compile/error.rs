//! Failures of the compiler machinery itself. Problems in the user's template are not errors
//! here: they come back as [`Diagnostic`](super::Diagnostic)s inside a successful output.

use std::{io, path::PathBuf, process::ExitStatus, time::Duration};

/// Why a compile could not produce an output at all.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// No Ruby interpreter: the compiler needs the system `ruby` (or `PANGEA_RUBY`).
    #[error("no ruby interpreter found on PATH (install ruby or set PANGEA_RUBY)")]
    RubyNotFound,
    /// An explicitly configured interpreter does not exist.
    #[error("ruby interpreter {0} does not exist")]
    RubyMissing(PathBuf),
    /// The bundled compiler sources could not be written to the cache directory.
    #[error("cannot install the compiler sources into {dir}")]
    Install {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `ruby` could not be started or talked to.
    #[error("cannot run {ruby}")]
    Spawn {
        ruby: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The compile ran past its deadline and was killed.
    #[error("compile timed out after {0:?}")]
    Timeout(Duration),
    /// Ruby ended without a well-formed result (a crash of the compiler, not of the template).
    #[error("the compiler exited with {status} without a result: {stderr}")]
    Crashed { status: ExitStatus, stderr: String },
    /// The request could not be encoded.
    #[error("cannot encode the compile request")]
    Request(#[source] serde_json::Error),
}
