//! Finding the IaC binary and the provider sources: `terraform`/`tofu` on `PATH` (or named by
//! environment), and the CLI configuration that points terraform at a provider filesystem
//! mirror (when configured) and a shared plugin cache. Nothing is hard-coded to one machine's
//! paths.

use std::path::{Path, PathBuf};

use pangea_api::template::IacBinary;

/// Discovery failures, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// No binary found.
    #[error("{binary} not found: install it or put it on PATH (or set {env} to its path)")]
    BinaryNotFound {
        /// `terraform` or `tofu`.
        binary: &'static str,
        /// The override variable.
        env: &'static str,
    },
    /// Writing the CLI config failed.
    #[error("writing terraform CLI configuration {path}: {source}")]
    CliConfig {
        /// Target path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Name and override variable of a binary kind.
fn names(binary: IacBinary) -> (&'static str, &'static str) {
    match binary {
        IacBinary::Terraform => ("terraform", "PANGEA_TERRAFORM"),
        IacBinary::Tofu => ("tofu", "PANGEA_TOFU"),
    }
}

/// The binary to run: `$PANGEA_TERRAFORM`/`$PANGEA_TOFU` when set and existing, else the
/// first match on `PATH`.
pub fn find_binary(binary: IacBinary) -> Result<PathBuf, DiscoverError> {
    let (name, env) = names(binary);
    let from_env = std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    from_env
        .filter(|p| p.is_file())
        .or_else(|| search_path(name))
        .ok_or(DiscoverError::BinaryNotFound { binary: name, env })
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The CLI configuration to use: the user's own when `TF_CLI_CONFIG_FILE` names an existing
/// file, otherwise one generated under `dir` with a filesystem mirror (`PANGEA_PROVIDER_MIRROR`,
/// the one the bootstrap recorded, or one found where the bootstrap looks: see
/// [`super::mirror`]) and a shared plugin cache. Without a mirror terraform still finds its
/// implied local mirror directories and the registry.
pub fn cli_config(dir: &Path) -> Result<PathBuf, DiscoverError> {
    if let Some(own) = std::env::var_os("TF_CLI_CONFIG_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return Ok(own);
    }
    write_cli_config(dir, super::mirror::provider_mirror().as_deref())
}

/// Content of the CLI configuration: the mirror (when present) for every provider it holds,
/// direct installation for the rest, and the shared plugin cache.
pub fn cli_config_text(mirror: Option<&Path>, plugin_cache: &Path) -> String {
    let cache = format!(
        "plugin_cache_dir = {:?}\n",
        plugin_cache.display().to_string()
    );
    match mirror {
        None => cache,
        Some(mirror) => format!(
            "{cache}provider_installation {{\n  filesystem_mirror {{\n    path = {:?}\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/*/*\", \"registry.opentofu.org/*/*\"]\n  }}\n}}\n",
            mirror.display().to_string()
        ),
    }
}

/// Writes the CLI configuration under `dir` (only when its content changed, so concurrent
/// runs see a complete file) and returns its path.
pub fn write_cli_config(dir: &Path, mirror: Option<&Path>) -> Result<PathBuf, DiscoverError> {
    let plugin_cache = dir.join("plugin-cache");
    let path = dir.join("terraformrc");
    let text = cli_config_text(mirror, &plugin_cache);
    let io = |source| DiscoverError::CliConfig {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(&plugin_cache).map_err(io)?;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        let tmp = dir.join(format!("terraformrc.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_without_mirror_only_sets_the_cache() {
        let text = cli_config_text(None, Path::new("/c/plugins"));
        assert_eq!(text, "plugin_cache_dir = \"/c/plugins\"\n");
    }

    #[test]
    fn config_with_mirror_excludes_the_registries_from_direct() {
        let text = cli_config_text(Some(Path::new("/m")), Path::new("/c"));
        assert!(
            text.contains("filesystem_mirror {\n    path = \"/m\""),
            "{text}"
        );
        assert!(
            text.contains("exclude = [\"registry.terraform.io/*/*\""),
            "{text}"
        );
    }

    #[test]
    fn rewriting_the_same_config_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_cli_config(dir.path(), None).unwrap();
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        write_cli_config(dir.path(), None).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }
}
