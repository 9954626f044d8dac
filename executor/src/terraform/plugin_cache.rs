//! Serialises `init` per provider plugin cache. Terraform documents the plugin cache as not
//! safe for concurrent use: two first `init`s that install the same provider into an empty
//! cache race on `mkdir` ("file exists") and one of them fails. Every `init` of this process
//! and of any other executor sharing the cache takes an advisory lock on a file inside the
//! cache directory first; the other commands only read the cache and need no lock.
//!
//! The lock is `flock(2)` through `std::fs::File::lock` (stable since Rust 1.89, the
//! workspace's minimum): no extra crate, released by the kernel when the holder exits, so a
//! crashed executor never leaves a stale lock behind.

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

/// Name of the lock file inside the plugin cache. Terraform ignores files at the top of the
/// cache: it only descends into `<hostname>/<namespace>/<type>/<version>/<os_arch>`.
const LOCK_FILE: &str = ".pangea-init.lock";

/// Taking the lock failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheLockError {
    /// The lock file could not be opened or locked.
    #[error("locking the plugin cache {path}: {source}")]
    Io {
        /// Lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Another `init` held the lock until the deadline.
    #[error("waited {}s for another terraform init to finish with the plugin cache {path}", waited.as_secs())]
    TimedOut {
        /// Lock file.
        path: PathBuf,
        /// How long it waited.
        waited: Duration,
    },
    /// The execution was cancelled while waiting.
    #[error("cancelled while waiting for the plugin cache lock {path}")]
    Cancelled {
        /// Lock file.
        path: PathBuf,
    },
}

/// Held while `init` runs; dropping it releases the lock.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// The plugin cache terraform will use: `TF_PLUGIN_CACHE_DIR` when set (it wins over the CLI
/// configuration), else `plugin_cache_dir` of the CLI configuration text.
pub fn plugin_cache_dir(cli_config: &str, env_override: Option<&str>) -> Option<PathBuf> {
    if let Some(dir) = env_override.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    cli_config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "plugin_cache_dir" {
            return None;
        }
        let value = value.trim();
        let unquoted = value.strip_prefix('"')?.strip_suffix('"')?;
        Some(PathBuf::from(
            unquoted.replace("\\\"", "\"").replace("\\\\", "\\"),
        ))
    })
}

/// Waits for the exclusive lock of `cache`, at most `within`, or until `cancel` fires.
pub async fn lock(
    cache: &Path,
    within: Duration,
    cancel: &CancellationToken,
) -> Result<CacheLock, CacheLockError> {
    let path = cache.join(LOCK_FILE);
    let io = |source| CacheLockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(cache).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    // `lock` blocks; a waiter abandoned at its deadline still gets the lock later on the
    // blocking thread and releases it at once when its result is dropped.
    let waiting = tokio::task::spawn_blocking(move || file.lock().map(|()| file));
    tokio::select! {
        locked = waiting => {
            let file = locked
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            Ok(CacheLock { _file: file })
        }
        () = tokio::time::sleep(within) => Err(CacheLockError::TimedOut { path, waited: within }),
        () = cancel.cancelled() => Err(CacheLockError::Cancelled { path }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_comes_from_the_cli_config() {
        let rc = "provider_installation {\n  filesystem_mirror {\n    path = \"/m\"\n  }\n}\nplugin_cache_dir = \"/c/plugin-cache\"\n";
        assert_eq!(
            plugin_cache_dir(rc, None),
            Some(PathBuf::from("/c/plugin-cache"))
        );
        assert_eq!(plugin_cache_dir("disable_checkpoint = true\n", None), None);
    }

    #[test]
    fn the_environment_wins_over_the_cli_config() {
        let rc = "plugin_cache_dir = \"/c\"\n";
        assert_eq!(plugin_cache_dir(rc, Some("/e")), Some(PathBuf::from("/e")));
        assert_eq!(plugin_cache_dir(rc, Some("")), Some(PathBuf::from("/c")));
    }

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_releases() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let first = lock(dir.path(), Duration::from_secs(5), &cancel)
            .await
            .unwrap();
        let err = lock(dir.path(), Duration::from_millis(200), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, CacheLockError::TimedOut { .. }), "{err}");
        drop(first);
        lock(dir.path(), Duration::from_secs(30), &cancel)
            .await
            .expect("the lock is free once the first holder dropped it");
    }
}
