//! Template sources: the first step of an execution, before compiling. Whatever the request
//! names (inline text, ConfigMap text, a file in a git repository) ends up as a directory
//! tree in the cache holding the template file and its siblings (`require_relative`), plus a
//! revision that identifies exactly what was fetched (content hash or commit SHA).
//!
//! Cache layout (shared by runs, safe for concurrent executors):
//! - `content/<hash>/<file_name>`: inline and ConfigMap sources;
//! - `git/<sha256(url)>`: one bare mirror per repository, with `<sha256(url)>.lock` beside it;
//! - `checkouts/<sha>/`: the files of one commit;
//! - `bin/`, `tmp/`: the credential helper and short-lived private copies of SSH keys.

mod atomic;
mod content;
mod credentials;
mod error;
mod git;
mod paths;
mod scrub;
mod url;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use pangea_api::exec::RequestSource;

pub use self::error::{SourceError, Step};

/// A template source on local disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSource {
    /// Directory tree the template lives in (the checkout, or the content directory).
    pub root: PathBuf,
    /// The template file to compile, inside `root`.
    pub file: PathBuf,
    /// What was fetched: `sha256:<hex>` of inline content, or the git commit SHA.
    pub revision: String,
}

/// Makes `source` available under `cache_dir` within `deadline` (git only; writing content
/// is local and quick).
pub async fn fetch(
    source: &RequestSource,
    cache_dir: &Path,
    deadline: Duration,
) -> Result<FetchedSource, SourceError> {
    // Absolute, because git runs helpers and ssh from directories of its choosing, and the
    // compiler should get paths that do not depend on the current directory.
    let cache_dir = &std::path::absolute(cache_dir)
        .map_err(SourceError::io("resolve the cache directory", cache_dir))?;
    match source {
        RequestSource::Content { content, file_name } => {
            content::fetch(content, file_name, cache_dir)
        }
        RequestSource::Local { path } => content::local(Path::new(path)),
        RequestSource::Git {
            repository,
            git_ref,
            path,
            credentials_dir,
        } => {
            let source = git::GitSource {
                repository,
                git_ref: git_ref.as_deref(),
                path,
                credentials_dir: credentials_dir.as_deref().map(Path::new),
            };
            git::fetch(source, cache_dir, deadline).await
        }
    }
}
