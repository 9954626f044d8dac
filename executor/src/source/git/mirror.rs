//! The bare mirror of one repository, `<cache>/git/<sha256(url)>`: created once, then only
//! fetched into, so each run downloads just what changed. A lock file beside it serialises
//! the executors sharing the cache, because concurrent fetches into one repository fail
//! on each other's ref locks.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
    time::Duration,
};

use sha2::{Digest, Sha256};

use super::{
    super::{SourceError, Step, atomic::Staging, url::RepoUrl},
    classify,
    command::{Git, GitOutput},
    refs::REMOTE_HEAD,
};

/// How often a waiting fetch retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// An open, locked mirror; the lock is released on drop.
#[derive(Debug)]
pub(crate) struct Mirror {
    dir: PathBuf,
    _lock: File,
}

impl Mirror {
    /// Locks the mirror of `url` (waiting within the deadline) and creates it if missing.
    pub(crate) async fn open(
        cache_dir: &Path,
        url: &RepoUrl,
        git: &Git,
    ) -> Result<Self, SourceError> {
        let parent = cache_dir.join("git");
        std::fs::create_dir_all(&parent).map_err(SourceError::io("create", &parent))?;
        let key = hex::encode(Sha256::digest(url.as_str()));
        let lock = lock(&parent.join(format!("{key}.lock")), git).await?;
        let dir = parent.join(&key);
        if !dir.is_dir() {
            init(&parent, &key, &dir, url, git).await?;
            tracing::info!(repository = url.as_str(), mirror = %dir.display(), "created git mirror");
        }
        Ok(Self { dir, _lock: lock })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fetches all branches and tags (pruning deleted ones, so they stop resolving), plus the
    /// remote's `HEAD` when the default branch is wanted. `HEAD` is fetched only then: a
    /// repository whose `HEAD` dangles would otherwise fail every fetch, even of a valid tag.
    pub(crate) async fn fetch(
        &self,
        git: &Git,
        url: &RepoUrl,
        with_head: bool,
    ) -> Result<(), SourceError> {
        let mut args = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--no-tags",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ];
        let head_refspec = format!("+HEAD:{REMOTE_HEAD}");
        if with_head {
            args.push(&head_refspec);
        }
        let output = git.run(Step::Fetch, &self.dir, &args, &[]).await?;
        self.check_fetch(git, url, None, output)
    }

    /// Fetches one commit by id, for commits no branch or tag reaches (servers may refuse).
    pub(crate) async fn fetch_commit(
        &self,
        git: &Git,
        url: &RepoUrl,
        sha: &str,
    ) -> Result<(), SourceError> {
        let output = git
            .run(
                Step::Fetch,
                &self.dir,
                &["fetch", "--quiet", "origin", sha],
                &[],
            )
            .await?;
        self.check_fetch(git, url, Some(sha), output)
    }

    fn check_fetch(
        &self,
        git: &Git,
        url: &RepoUrl,
        git_ref: Option<&str>,
        output: GitOutput,
    ) -> Result<(), SourceError> {
        if output.success {
            return Ok(());
        }
        Err(classify::fetch_error(
            git,
            &output.stderr,
            url.as_str(),
            git_ref,
        ))
    }

    /// The commit `rev` names in the mirror, if any.
    pub(crate) async fn commit_of(
        &self,
        git: &Git,
        rev: &str,
    ) -> Result<Option<String>, SourceError> {
        let peeled = format!("{rev}^{{commit}}");
        let output = git
            .run(
                Step::Resolve,
                &self.dir,
                &["rev-parse", "--verify", "--quiet", &peeled],
                &[],
            )
            .await?;
        let sha = output.stdout.trim();
        Ok((output.success && !sha.is_empty()).then(|| sha.to_owned()))
    }
}

/// Takes the mirror's lock, polling so the wait respects the deadline (a blocking lock
/// could not be abandoned when it passes).
async fn lock(path: &Path, git: &Git) -> Result<File, SourceError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(SourceError::io("open the lock file", path))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(SourceError::io("lock", path)(e)),
        }
        let remaining = git
            .remaining()
            .ok_or_else(|| git.timeout(Step::LockMirror))?;
        tokio::time::sleep(remaining.min(LOCK_POLL)).await;
    }
}

/// Creates the bare repository under a staging name and renames it into place, so a crash
/// half-way never leaves a mirror without its `origin`.
async fn init(
    parent: &Path,
    key: &str,
    dir: &Path,
    url: &RepoUrl,
    git: &Git,
) -> Result<(), SourceError> {
    let staging =
        Staging::new(parent, key).map_err(SourceError::io("create a directory in", parent))?;
    let steps: [&[&str]; 3] = [
        &["init", "--quiet", "--bare"],
        // The URL holds no secret (passwords in URLs are refused), so it may be stored.
        &["config", "remote.origin.url", url.as_str()],
        // Auto-gc stays in the foreground, inside the deadline, not in a detached process.
        &["config", "gc.autoDetach", "false"],
    ];
    for args in steps {
        let output = git.run(Step::InitMirror, staging.path(), args, &[]).await?;
        if !output.success {
            return Err(SourceError::Git {
                step: Step::InitMirror,
                detail: git.summarise(&output.stderr),
            });
        }
    }
    staging
        .publish(dir)
        .map_err(SourceError::io("publish the mirror", dir))
}
