//! Why a template source could not be fetched. Every variant says whether waiting may help
//! ([`SourceError::is_transient`]) or a person must change something, because that decides
//! between a retry with backoff and a condition on the template.
//!
//! Secret-free by construction: URLs are stored redacted and git's output only after scrubbing
//! (see the `scrub` module); no variant holds a credential or a credential file's content.

use std::{fmt, io, path::PathBuf, time::Duration};

/// The stage of a git fetch, named in timeouts and failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for another fetch of the same repository to finish with the mirror.
    LockMirror,
    /// Creating the local bare mirror.
    InitMirror,
    /// Fetching branches and tags from the repository.
    Fetch,
    /// Turning the ref into a commit SHA.
    Resolve,
    /// Writing the commit's files into the checkout directory.
    Checkout,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LockMirror => "waiting for the mirror lock",
            Self::InitMirror => "initialising the mirror",
            Self::Fetch => "git fetch",
            Self::Resolve => "resolving the ref",
            Self::Checkout => "checking out the commit",
        })
    }
}

/// A template source that could not be made available on disk.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The inline/ConfigMap file name is empty, absolute or climbs out with `..`.
    #[error("invalid template file name {file_name:?}: {reason}")]
    InvalidFileName {
        file_name: String,
        reason: &'static str,
    },
    /// The template path inside the repository is unusable.
    #[error("invalid template path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The ref cannot be a branch, tag or commit name.
    #[error("invalid git ref {git_ref:?}: {reason}")]
    InvalidRef {
        git_ref: String,
        reason: &'static str,
    },
    /// The repository URL is malformed, of an unsupported kind, or carries a password.
    #[error("invalid repository URL {url}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    /// A credential file exists but cannot be read (or the directory is missing).
    #[error("cannot read credentials from {path}")]
    CredentialsUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The credentials directory lacks the file this kind of URL needs.
    #[error("credentials directory {dir} has no `{expected}` file, which {transport} URLs need")]
    CredentialsMissing {
        dir: PathBuf,
        expected: &'static str,
        transport: &'static str,
    },
    /// The server refused the credentials (or none were given and it wants some).
    #[error("authentication to {url} failed; check the credentials Secret: {detail}")]
    AuthFailed { url: String, detail: String },
    /// The server answered but has no such repository (or hides it from these credentials).
    #[error("repository {url} not found or not accessible: {detail}")]
    RepositoryNotFound { url: String, detail: String },
    /// SSH refused the server's host key; `known_hosts` must list it.
    #[error("host key of {url} rejected; check known_hosts in the credentials Secret: {detail}")]
    HostKeyRejected { url: String, detail: String },
    /// TLS failed in a way retrying will not fix (untrusted certificate, name mismatch).
    #[error("TLS to {url} failed; check the server certificate or CA bundle: {detail}")]
    TlsRejected { url: String, detail: String },
    /// The server could not be reached or the connection broke.
    #[error("repository {url} is unreachable (will retry): {detail}")]
    Unreachable { url: String, detail: String },
    /// No branch, tag or commit of that name (`HEAD` when the default branch is missing).
    #[error("ref {git_ref:?} not found in {url} (no such branch, tag or commit)")]
    RefNotFound { url: String, git_ref: String },
    /// The template file is not in the checked-out tree.
    #[error("template file {path:?} not found in revision {revision}")]
    PathNotFound { path: String, revision: String },
    /// The fetch's deadline passed during `step`; the git processes were killed.
    #[error("{step} timed out: the source deadline of {deadline:?} passed")]
    Timeout { step: Step, deadline: Duration },
    /// git failed in a way not recognised above.
    #[error("{step} failed: {detail}")]
    Git { step: Step, detail: String },
    /// The `git` program could not be started.
    #[error("cannot run git (is it installed and on PATH?)")]
    GitMissing(#[source] io::Error),
    /// The cache directory could not be written or read.
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SourceError {
    /// Whether retrying later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => true,
            // Unrecognised failures while talking to the server are more often a flaky network
            // than a mistake; local steps failing oddly (corrupt cache) will not heal by waiting.
            Self::Git { step, .. } => *step == Step::Fetch,
            _ => false,
        }
    }

    /// Short machine-readable cause for `ExecutionError::reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidFileName { .. }
            | Self::InvalidPath { .. }
            | Self::InvalidRef { .. }
            | Self::InvalidUrl { .. } => "SourceInvalid",
            Self::CredentialsUnreadable { .. } | Self::CredentialsMissing { .. } => {
                "SourceCredentialsInvalid"
            }
            Self::AuthFailed { .. } | Self::HostKeyRejected { .. } | Self::TlsRejected { .. } => {
                "SourceAuthFailed"
            }
            Self::RepositoryNotFound { .. } => "SourceRepositoryNotFound",
            Self::Unreachable { .. } => "SourceUnreachable",
            Self::RefNotFound { .. } => "SourceRefNotFound",
            Self::PathNotFound { .. } => "SourcePathNotFound",
            Self::Timeout { .. } => "SourceTimeout",
            Self::Git { .. } | Self::GitMissing(_) | Self::Io { .. } => "SourceFetchFailed",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
