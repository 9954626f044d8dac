//! The container images the node runs, built by `scripts/build-images.sh` (OCI archives under
//! `$PANGEA_CACHE_DIR/images/`). The script is idempotent behind a stamp, so calling it from a
//! test costs about a second when the images are current.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

use crate::{Error, Result, Toolchain};

/// Reference of the pod sandbox image the node's containerd is configured with.
pub const PAUSE_IMAGE: &str = "localhost/pangea-pause:1";

/// One built image: its reference and the OCI archive `ctr images import` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Full reference, e.g. `localhost/pangea-executor:0.1.0-slim`.
    pub reference: String,
    /// OCI archive holding it.
    pub archive: PathBuf,
}

impl Image {
    /// The OCI layout directory and tag the archive was exported from: the script keeps one
    /// layout per image name beside the archives (`images/pangea-executor`), tagged with the
    /// reference's tag, and tools that copy from it (skopeo `oci:`) avoid unpacking an archive.
    pub fn oci_layout(&self) -> Result<(PathBuf, &str)> {
        let (repository, tag) = self
            .reference
            .rsplit_once(':')
            .ok_or_else(|| Error::Images(format!("{} has no tag", self.reference)))?;
        let name = repository.rsplit('/').next().unwrap_or(repository);
        let dir = self.archive.parent().unwrap_or(Path::new(".")).join(name);
        Ok((dir, tag))
    }
}

/// Every image the script built.
#[derive(Clone, Debug)]
pub struct Images {
    /// In build order (pause first).
    pub all: Vec<Image>,
}

/// Variants of the executor image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorVariant {
    /// Without providers: terraform fetches them (or the template needs none).
    Slim,
    /// With the provider filesystem mirror baked in.
    Full,
}

impl Images {
    /// Runs the build script (cheap when warm) and reads what it built. Serialised within the
    /// test process; the script itself holds a lock against other processes.
    pub fn ensure(tools: &Toolchain) -> Result<Self> {
        static BUILD: Mutex<()> = Mutex::new(());
        let _guard = BUILD
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let script = repo_root().join("scripts/build-images.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).env("PANGEA_CACHE_DIR", &tools.cache_dir);
        remove_cargo_test_env(&mut cmd);
        let output = cmd
            .output()
            .map_err(crate::io_err(format!("running {}", script.display())))?;
        if !output.status.success() {
            return Err(Error::Images(format!(
                "{} failed ({}):\n{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Self::load(&tools.cache_dir.join("images/images.txt"))
    }

    /// Reads `images.txt`: one `<reference> <archive>` per line.
    pub fn load(list: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(list)
            .map_err(crate::io_err(format!("reading {}", list.display())))?;
        Ok(Self {
            all: parse_list(&text),
        })
    }

    /// The executor image of `variant`.
    pub fn executor(&self, variant: ExecutorVariant) -> Result<&Image> {
        let suffix = match variant {
            ExecutorVariant::Slim => "-slim",
            ExecutorVariant::Full => "-full",
        };
        self.all
            .iter()
            .find(|i| {
                i.reference.starts_with("localhost/pangea-executor:")
                    && i.reference.ends_with(suffix)
            })
            .ok_or_else(|| Error::Images(format!("no executor image ending in {suffix} was built")))
    }

    /// The operator image (`localhost/pangea-operator:<version>`, for the Job backend: no
    /// Ruby, no terraform), what the Helm chart's `image` values point at on the node.
    pub fn operator(&self) -> Result<&Image> {
        self.all
            .iter()
            .find(|i| i.reference.starts_with(OPERATOR_REPOSITORY))
            .ok_or_else(|| Error::Images("no operator image was built".into()))
    }
}

/// Repository (with the `:` before the tag) of the operator image.
const OPERATOR_REPOSITORY: &str = "localhost/pangea-operator:";

/// Cargo gives a test the package's variables (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...). The
/// script's `cargo build --release` would see them too, and build scripts that track them
/// (ring tracks `CARGO_MANIFEST_DIR`) would make every test-started build, and the next one
/// started outside a test, a full rebuild.
fn remove_cargo_test_env(cmd: &mut Command) {
    const SET_BY_CARGO_TEST: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || SET_BY_CARGO_TEST.contains(&key.as_ref()) {
            cmd.env_remove(key.as_ref());
        }
    }
}

fn parse_list(text: &str) -> Vec<Image> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(reference, archive)| Image {
            reference: reference.to_owned(),
            archive: PathBuf::from(archive.trim()),
        })
        .collect()
}

/// The workspace root (this crate lives in `e2e/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_image_list_and_finds_variants() {
        let images = Images {
            all: parse_list(
                "localhost/pangea-pause:1 /c/images/pangea-pause-1.tar\n\
                 localhost/pangea-executor:0.1.0-slim /c/images/s.tar\n\
                 localhost/pangea-executor:0.1.0-full /c/images/f.tar\n\
                 localhost/pangea-operator:0.1.0 /c/images/o.tar\n",
            ),
        };
        assert_eq!(images.all[0].reference, PAUSE_IMAGE);
        let operator = images.operator().unwrap();
        assert_eq!(operator.reference, "localhost/pangea-operator:0.1.0");
        assert_eq!(operator.archive, PathBuf::from("/c/images/o.tar"));
        let full = images.executor(ExecutorVariant::Full).unwrap();
        assert_eq!(full.archive, PathBuf::from("/c/images/f.tar"));
        assert!(images.executor(ExecutorVariant::Slim).is_ok());
    }

    #[test]
    fn the_layout_of_an_image_is_beside_its_archive() {
        let image = &parse_list("localhost/pangea-executor:0.1.0-full /c/images/f.tar\n")[0];
        let (layout, tag) = image.oci_layout().unwrap();
        assert_eq!(layout, PathBuf::from("/c/images/pangea-executor"));
        assert_eq!(tag, "0.1.0-full");
    }

    #[test]
    fn a_missing_variant_is_named() {
        let images = Images { all: Vec::new() };
        let err = images.executor(ExecutorVariant::Full).unwrap_err();
        assert!(err.to_string().contains("-full"), "{err}");
        let err = images.operator().unwrap_err();
        assert!(err.to_string().contains("operator"), "{err}");
    }
}
