//! Secret values handed to an execution as files in a private directory (mode 0700), never
//! as arguments, environment of the operator, or request content. The directory is removed
//! when the [`SecretFiles`] is dropped (the execution ended).

use std::{
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// A private directory of secret files.
#[derive(Debug)]
pub struct SecretFiles {
    dir: Option<PathBuf>,
}

impl SecretFiles {
    /// No files.
    pub fn none() -> Self {
        Self { dir: None }
    }

    /// Creates `<root>/<id>` (0700).
    pub fn create(root: &Path, id: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let dir = root.join(id);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self { dir: Some(dir) })
    }

    /// Writes `name` (0600) and returns its path.
    pub fn write(&mut self, name: &str, value: &[u8]) -> std::io::Result<PathBuf> {
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no secret directory"))?;
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut file, value)?;
        Ok(path)
    }

    /// The directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_private_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let mut files = SecretFiles::create(root.path(), "exec-1").unwrap();
        let path = files.write("password", b"hunter22").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(files.dir().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let dir = files.dir().unwrap().to_path_buf();
        drop(files);
        assert!(!dir.exists());
    }
}
