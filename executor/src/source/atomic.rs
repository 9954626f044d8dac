//! Directories that appear in the cache complete or not at all: they are built under a unique
//! hidden name beside their final place and renamed into it. A directory that exists under
//! its final name is therefore always whole, and concurrent builders of the same content
//! (other tasks, other executor processes sharing the cache) never see each other's halves.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process,
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Distinguishes staging directories made by one process in the same nanosecond.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory being built; removed on drop unless [`publish`](Self::publish)ed, so a failed
/// or timed-out build leaves nothing behind.
#[derive(Debug)]
pub(crate) struct Staging {
    path: PathBuf,
    published: bool,
}

impl Staging {
    /// Creates an empty staging directory in `parent` (created if needed).
    pub(crate) fn new(parent: &Path, label: &str) -> io::Result<Self> {
        fs::create_dir_all(parent)?;
        let path = parent.join(unique_name(label));
        fs::create_dir(&path)?;
        Ok(Self {
            path,
            published: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `target`. When another builder got there first its result
    /// is kept (the content is the same by construction) and this copy is discarded.
    pub(crate) fn publish(mut self, target: &Path) -> io::Result<()> {
        match fs::rename(&self.path, target) {
            Ok(()) => {
                self.published = true;
                Ok(())
            }
            Err(_) if target.is_dir() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A hidden name no other process or task uses: label, pid, time, counter.
pub(crate) fn unique_name(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".{label}.tmp-{}-{nanos}-{count}", process::id())
}

/// Writes `content` to `target` through a temporary file in the same directory, so readers
/// see the old file or the new one, never a partial one.
pub(crate) fn write_file(target: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};

    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let label = target
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let temp = dir.join(unique_name(&label));
    let result = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut file| file.write_all(content))
        .and_then(|()| fs::rename(&temp, target));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpublished_staging_is_removed() {
        let parent = tempfile::tempdir().unwrap();
        let staging = Staging::new(parent.path(), "x").unwrap();
        fs::write(staging.path().join("f"), "half").unwrap();
        drop(staging);
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn losing_a_publish_race_keeps_the_winner() {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("final");
        let first = Staging::new(parent.path(), "x").unwrap();
        let second = Staging::new(parent.path(), "x").unwrap();
        fs::write(first.path().join("f"), "first").unwrap();
        fs::write(second.path().join("f"), "second").unwrap();
        first.publish(&target).unwrap();
        second.publish(&target).unwrap();
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "first");
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_file_replaces_atomically_with_mode() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("helper");
        write_file(&target, b"one", 0o700).unwrap();
        write_file(&target, b"two", 0o700).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "two");
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
