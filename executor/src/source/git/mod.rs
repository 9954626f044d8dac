//! Git sources: validate the request, fetch into the repository's mirror, resolve the ref to
//! a commit (the revision), materialise that commit's files, find the template among them.
//!
//! Everything goes through the `git` CLI (as flux and tofu-controller do), with one deadline
//! for the whole fetch and credentials supplied by file path only (see
//! [`credentials`](super::credentials)).

mod checkout;
mod classify;
mod command;
mod mirror;
mod refs;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use self::{command::Git, mirror::Mirror};
use super::{
    FetchedSource, SourceError, credentials,
    paths::{self, Located},
    url::{RepoUrl, Transport},
};

/// A git source as requested.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GitSource<'a> {
    pub(crate) repository: &'a str,
    pub(crate) git_ref: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) credentials_dir: Option<&'a Path>,
}

/// Fetches `source` into the cache within `deadline`.
pub(crate) async fn fetch(
    source: GitSource<'_>,
    cache_dir: &Path,
    deadline: Duration,
) -> Result<FetchedSource, SourceError> {
    let started = Instant::now();
    let result = fetch_inner(source, cache_dir, deadline).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // The URL holds no password (refused up front) and errors are scrubbed: both loggable.
    let git_ref = source.git_ref.unwrap_or("(default branch)");
    match &result {
        Ok(fetched) => tracing::info!(
            repository = source.repository,
            git_ref,
            revision = %fetched.revision,
            elapsed_ms,
            "fetched git source"
        ),
        Err(SourceError::InvalidUrl { url, .. }) => {
            tracing::warn!(repository = %url, git_ref, elapsed_ms, "invalid repository URL")
        }
        Err(error) => tracing::warn!(
            repository = source.repository,
            git_ref,
            %error,
            transient = error.is_transient(),
            elapsed_ms,
            "git source fetch failed"
        ),
    }
    result
}

async fn fetch_inner(
    source: GitSource<'_>,
    cache_dir: &Path,
    deadline: Duration,
) -> Result<FetchedSource, SourceError> {
    // Everything a person could have got wrong is checked before touching the network.
    let url = RepoUrl::parse(source.repository)?;
    let rel = paths::relative(source.path).map_err(|reason| SourceError::InvalidPath {
        path: source.path.to_owned(),
        reason,
    })?;
    let git_ref = refs::normalise(source.git_ref)?;
    let credentials_dir = source
        .credentials_dir
        .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
    let auth = credentials::load(credentials_dir.as_deref(), &url, cache_dir)?;
    let git = Git::new(deadline, auth, protocol_config(&url));

    let mirror = Mirror::open(cache_dir, &url, &git).await?;
    let revision = resolve(&mirror, &git, &url, git_ref).await?;
    let root = checkout::materialise(cache_dir, &mirror, &revision, &git).await?;
    drop(mirror);

    let file = template_file(&root, &rel, source.path, &revision)?;
    Ok(FetchedSource {
        root,
        file,
        revision,
    })
}

/// `file://` is refused by default in some contexts (submodules, `GIT_PROTOCOL_FROM_USER=0`);
/// it is allowed for exactly the repositories that use it, and `ext::` never.
fn protocol_config(url: &RepoUrl) -> Vec<String> {
    let mut config = vec!["protocol.ext.allow=never".to_owned()];
    if url.transport() == Transport::File {
        config.push("protocol.file.allow=always".to_owned());
    }
    config
}

/// The commit `git_ref` names (`None`: the remote's default branch). A full SHA already in
/// the mirror needs no network at all; anything else is fetched first, since branches and
/// tags move.
async fn resolve(
    mirror: &Mirror,
    git: &Git,
    url: &RepoUrl,
    git_ref: Option<&str>,
) -> Result<String, SourceError> {
    let Some(name) = git_ref else {
        mirror.fetch(git, url, true).await?;
        return mirror
            .commit_of(git, refs::REMOTE_HEAD)
            .await?
            .ok_or_else(|| not_found(git, url, "HEAD"));
    };
    if refs::is_full_sha(name)
        && let Some(sha) = mirror.commit_of(git, name).await?
    {
        tracing::debug!(revision = %sha, "commit already mirrored; not fetching");
        return Ok(sha);
    }
    mirror.fetch(git, url, false).await?;
    for candidate in refs::candidates(name) {
        if let Some(sha) = mirror.commit_of(git, &candidate).await? {
            return Ok(sha);
        }
    }
    if refs::is_full_sha(name) {
        mirror.fetch_commit(git, url, name).await?;
        if let Some(sha) = mirror.commit_of(git, name).await? {
            return Ok(sha);
        }
    }
    Err(not_found(git, url, name))
}

fn not_found(git: &Git, url: &RepoUrl, git_ref: &str) -> SourceError {
    SourceError::RefNotFound {
        url: git.scrub(url.as_str()),
        git_ref: git.scrub(git_ref),
    }
}

fn template_file(
    root: &Path,
    rel: &Path,
    path: &str,
    revision: &str,
) -> Result<PathBuf, SourceError> {
    match paths::locate(root, rel) {
        Located::File(file) => Ok(file),
        Located::Missing => Err(SourceError::PathNotFound {
            path: path.to_owned(),
            revision: revision.to_owned(),
        }),
        Located::Escapes => Err(SourceError::InvalidPath {
            path: path.to_owned(),
            reason: "it is a symlink leading outside the repository",
        }),
    }
}
