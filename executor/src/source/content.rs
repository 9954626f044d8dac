//! Inline and ConfigMap sources: the operator hands over the file's text, which is written
//! once into a content-addressed directory of the cache and reused by every later run.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FetchedSource, SourceError, atomic::Staging, paths};

/// Writes `content` as `<cache>/content/<key>/<file_name>` (if not already there).
///
/// The revision is the hash of the content alone, so it changes exactly when the template
/// does. The directory key also covers the file name: the same text under two names must not
/// share a directory, or one request would find a stranger's file beside its own.
pub(crate) fn fetch(
    content: &str,
    file_name: &str,
    cache_dir: &Path,
) -> Result<FetchedSource, SourceError> {
    let rel = paths::relative(file_name).map_err(|reason| SourceError::InvalidFileName {
        file_name: file_name.to_owned(),
        reason,
    })?;
    let revision = format!("sha256:{}", hex::encode(Sha256::digest(content)));
    let parent = cache_dir.join("content");
    let root = parent.join(directory_key(file_name, content));
    let file = root.join(&rel);
    if !file.is_file() {
        write(&parent, &root, &rel, content)?;
    }
    tracing::debug!(%revision, file = %file.display(), "content source ready");
    Ok(FetchedSource {
        root,
        file,
        revision,
    })
}

fn write(parent: &Path, root: &Path, rel: &Path, content: &str) -> Result<(), SourceError> {
    let staging = Staging::new(parent, "content")
        .map_err(SourceError::io("create a directory in", parent))?;
    let staged_file = staging.path().join(rel);
    if let Some(dir) = staged_file.parent() {
        std::fs::create_dir_all(dir).map_err(SourceError::io("create", dir))?;
    }
    std::fs::write(&staged_file, content).map_err(SourceError::io("write", &staged_file))?;
    staging
        .publish(root)
        .map_err(SourceError::io("publish", root))
}

fn directory_key(file_name: &str, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(file_name.as_bytes());
    hasher.update([0]);
    hasher.update(content.as_bytes());
    hex::encode(hasher.finalize())
}

/// A template file on the local disk, used in place: its directory is the source tree. The
/// revision is the hash of the template file (helper files beside it are not hashed).
pub(crate) fn local(path: &Path) -> Result<FetchedSource, SourceError> {
    let file = std::path::absolute(path).map_err(SourceError::io("resolve", path))?;
    let content = std::fs::read(&file).map_err(SourceError::io("read", &file))?;
    let root = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "/".into());
    let revision = format!("sha256:{}", hex::encode(Sha256::digest(&content)));
    Ok(FetchedSource {
        root,
        file,
        revision,
    })
}
