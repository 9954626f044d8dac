//! A commit's files as a plain directory, `<cache>/checkouts/<sha>/`: written once from the
//! mirror and shared by every run and template at that commit (a commit id names its tree,
//! so the directory can never be stale). No `.git` inside: the compiler sees only files.

use std::path::{Path, PathBuf};

use super::{
    super::{
        SourceError, Step,
        atomic::{Staging, unique_name},
    },
    command::Git,
    mirror::Mirror,
};

/// The checkout of `sha` (a full commit id from the mirror), written if missing.
pub(crate) async fn materialise(
    cache_dir: &Path,
    mirror: &Mirror,
    sha: &str,
    git: &Git,
) -> Result<PathBuf, SourceError> {
    // The id becomes a directory name: accept nothing but what rev-parse prints.
    if !sha.bytes().all(|b| b.is_ascii_hexdigit()) || sha.is_empty() {
        return Err(SourceError::Git {
            step: Step::Checkout,
            detail: format!("unexpected commit id {sha:?}"),
        });
    }
    let parent = cache_dir.join("checkouts");
    let target = parent.join(sha);
    if target.is_dir() {
        tracing::debug!(revision = sha, "reusing checkout");
        return Ok(target);
    }
    let staging =
        Staging::new(&parent, sha).map_err(SourceError::io("create a directory in", &parent))?;
    write_tree(&parent, mirror, sha, staging.path(), git).await?;
    staging
        .publish(&target)
        .map_err(SourceError::io("publish the checkout", &target))?;
    Ok(target)
}

/// `read-tree -u` fills a work tree from a tree object with a throw-away index: unlike
/// `worktree add` it leaves no administrative files in the shared mirror, and unlike
/// `archive | tar` it needs no second program.
async fn write_tree(
    parent: &Path,
    mirror: &Mirror,
    sha: &str,
    work_tree: &Path,
    git: &Git,
) -> Result<(), SourceError> {
    let index = parent.join(unique_name(&format!("{sha}.index")));
    let tree = format!("{sha}^{{tree}}");
    let output = git
        .run(
            Step::Checkout,
            mirror.dir(),
            &["read-tree", "--reset", "-u", &tree],
            &[("GIT_WORK_TREE", work_tree), ("GIT_INDEX_FILE", &index)],
        )
        .await;
    let _ = std::fs::remove_file(&index);
    let output = output?;
    if output.success {
        Ok(())
    } else {
        Err(SourceError::Git {
            step: Step::Checkout,
            detail: git.summarise(&output.stderr),
        })
    }
}
