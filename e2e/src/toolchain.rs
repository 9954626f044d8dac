//! Where the bootstrapped tools are: read from `$PANGEA_CACHE_DIR/env`, the file
//! `scripts/bootstrap.sh` writes after discovering and building everything.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// Paths of the tools the harness and tests use.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// Cache root (`~/.cache/pangea-operator` unless `PANGEA_CACHE_DIR` is set).
    pub cache_dir: PathBuf,
    /// kube-apiserver binary.
    pub kube_apiserver: PathBuf,
    /// etcd binary.
    pub etcd: PathBuf,
    /// Python of the LocalStack venv.
    pub localstack_python: PathBuf,
    /// Python of the moto venv.
    pub moto_python: PathBuf,
    /// Discovered terraform, if any.
    pub terraform: Option<PathBuf>,
    /// Discovered tofu, if any.
    pub tofu: Option<PathBuf>,
    /// kubectl (discovered on PATH, or built by the bootstrap).
    pub kubectl: PathBuf,
    /// Terraform CLI config written by the bootstrap (provider mirror, plugin cache).
    pub tf_cli_config: PathBuf,
    /// Every `KEY=value` of the env file, for parts loaded on demand (the node's tools).
    vars: BTreeMap<String, String>,
}

impl Toolchain {
    /// Default cache root, honouring `PANGEA_CACHE_DIR`.
    pub fn cache_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("PANGEA_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/tmp".into());
        home.join(".cache/pangea-operator")
    }

    /// Loads the bootstrap's env file and checks that the binaries exist.
    pub fn load() -> Result<Self> {
        let cache_dir = Self::cache_root();
        let env_file = cache_dir.join("env");
        let text = std::fs::read_to_string(&env_file)
            .map_err(|e| Error::Toolchain(format!("cannot read {}: {e}", env_file.display())))?;
        Self::from_env_text(&text)
    }

    fn from_env_text(text: &str) -> Result<Self> {
        let vars = parse_env(text);
        let path = |key: &str| -> Result<PathBuf> {
            let value = vars.get(key).filter(|v| !v.is_empty());
            let value = value.ok_or_else(|| Error::Toolchain(format!("{key} missing")))?;
            existing(Path::new(value))
        };
        let optional = |key: &str| vars.get(key).filter(|v| !v.is_empty()).map(PathBuf::from);
        Ok(Self {
            cache_dir: path("PANGEA_CACHE_DIR")?,
            kube_apiserver: path("PANGEA_KUBE_APISERVER")?,
            etcd: path("PANGEA_ETCD")?,
            localstack_python: path("PANGEA_LOCALSTACK_PYTHON")?,
            moto_python: path("PANGEA_MOTO_PYTHON")?,
            terraform: optional("PANGEA_TERRAFORM"),
            tofu: optional("PANGEA_TOFU"),
            kubectl: path("PANGEA_KUBECTL")?,
            tf_cli_config: path("PANGEA_TF_CLI_CONFIG")?,
            vars: vars.clone(),
        })
    }

    /// An existing path recorded under `key` by the bootstrap; the error names the key.
    pub fn required(&self, key: &str) -> Result<PathBuf> {
        let value = self.vars.get(key).filter(|v| !v.is_empty());
        let value = value.ok_or_else(|| Error::Toolchain(format!("{key} missing")))?;
        existing(Path::new(value))
    }

    /// Flux's CRDs (source, kustomize and helm controllers) fetched by the bootstrap.
    pub fn flux_crds(&self) -> Result<PathBuf> {
        self.required("PANGEA_FLUX_CRDS")
    }

    /// Debian's `nix-instantiate`, which parses and evaluates the flake's pure parts.
    pub fn nix_instantiate(&self) -> Result<PathBuf> {
        self.required("PANGEA_NIX_INSTANTIATE")
    }

    /// Helm, built by the bootstrap (`PANGEA_HELM`).
    pub fn helm(&self) -> Result<PathBuf> {
        self.required("PANGEA_HELM")
    }

    /// Directory holding the prometheus-operator CRDs (ServiceMonitor, PrometheusRule) the
    /// bootstrap fetched, for dry-runs of the chart's optional objects.
    pub fn prometheus_operator_crds(&self) -> Result<PathBuf> {
        self.required("PANGEA_PROMETHEUS_OPERATOR_CRDS")
    }

    /// Directory for one run's scratch files (logs, data dirs), removed with the handle.
    pub fn run_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let runs = self.cache_dir.join("runs");
        std::fs::create_dir_all(&runs).map_err(crate::io_err("creating runs dir"))?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(runs)
            .map_err(crate::io_err("creating run dir"))
    }
}

fn existing(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::Toolchain(format!(
            "{} does not exist",
            path.display()
        )))
    }
}

/// `KEY=value` lines; blank lines and `#` comments ignored.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_lines() {
        let vars = parse_env("# c\nA=1\n\nB = two words\nbroken\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("two words"));
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn tools_loaded_on_demand_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "PANGEA_CACHE_DIR={d}\nPANGEA_KUBE_APISERVER={d}\nPANGEA_ETCD={d}\n\
             PANGEA_LOCALSTACK_PYTHON={d}\nPANGEA_MOTO_PYTHON={d}\nPANGEA_KUBECTL={d}\n\
             PANGEA_TF_CLI_CONFIG={d}\nPANGEA_HELM={d}\n",
            d = dir.path().display()
        );
        let tools = Toolchain::from_env_text(&text).unwrap();
        assert_eq!(tools.helm().unwrap(), dir.path());
        let err = tools.prometheus_operator_crds().unwrap_err();
        assert!(
            err.to_string()
                .contains("PANGEA_PROMETHEUS_OPERATOR_CRDS missing"),
            "{err}"
        );
    }

    #[test]
    fn missing_key_is_named() {
        let err = Toolchain::from_env_text("PANGEA_CACHE_DIR=/\n").unwrap_err();
        assert!(
            err.to_string().contains("PANGEA_KUBE_APISERVER missing"),
            "{err}"
        );
    }
}
