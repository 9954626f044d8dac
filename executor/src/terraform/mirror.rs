//! Finding a provider filesystem mirror when the user named none, so `pangea-executor` works
//! offline as written in the README: the one the bootstrap recorded (`PANGEA_PROVIDER_MIRROR`
//! in its environment or in `<cache>/env`), else the first mirror under the places the
//! bootstrap searches. Found once per process.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// Directory levels between a mirror's root and a provider binary:
/// `<host>/<namespace>/<type>/<version>/<os_arch>/terraform-provider-*`.
const LEVELS: usize = 6;

/// The mirror to use, if any (found once per process).
pub fn provider_mirror() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let found = from_env()
                .or_else(recorded_by_bootstrap)
                .or_else(|| search_roots().iter().find_map(|r| find_under(r)));
            if let Some(mirror) = &found {
                tracing::info!(mirror = %mirror.display(), "using provider mirror");
            }
            found
        })
        .clone()
}

fn from_env() -> Option<PathBuf> {
    std::env::var_os("PANGEA_PROVIDER_MIRROR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `PANGEA_PROVIDER_MIRROR=` of the bootstrap's `env` file, when that directory exists.
fn recorded_by_bootstrap() -> Option<PathBuf> {
    let cache = std::env::var_os("PANGEA_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".cache/pangea-operator")))?;
    let text = std::fs::read_to_string(cache.join("env")).ok()?;
    recorded_mirror(&text).filter(|p| p.is_dir())
}

/// The mirror line of a bootstrap `env` file.
pub fn recorded_mirror(env_file: &str) -> Option<PathBuf> {
    env_file
        .lines()
        .find_map(|l| l.strip_prefix("PANGEA_PROVIDER_MIRROR="))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where the bootstrap looks, in its order.
fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["/opt", "/usr/share/terraform", "/usr/local/share/terraform"]
        .map(PathBuf::from)
        .to_vec();
    if let Some(home) = home() {
        roots.push(home.join(".terraform.d"));
        roots.push(home.join(".local/share/terraform"));
    }
    roots
}

/// The mirror root of the first provider binary under `root` (depth-bounded, symlinked
/// directories not followed).
fn find_under(root: &Path) -> Option<PathBuf> {
    first_provider(root, LEVELS + 2).and_then(|file| mirror_root(&file))
}

fn first_provider(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let mut dirs = Vec::new();
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let is_provider = entry
            .file_name()
            .to_string_lossy()
            .starts_with("terraform-provider-");
        if kind.is_file() && is_provider {
            return Some(entry.path());
        }
        if kind.is_dir() && depth > 0 {
            dirs.push(entry.path());
        }
    }
    dirs.iter().find_map(|d| first_provider(d, depth - 1))
}

/// `<root>` of `<root>/<host>/<namespace>/<type>/<version>/<os>_<arch>/terraform-provider-*`.
pub fn mirror_root(provider: &Path) -> Option<PathBuf> {
    let platform = provider.parent()?.file_name()?.to_str()?;
    if !platform.contains('_') {
        return None;
    }
    provider.ancestors().nth(LEVELS).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_six_levels_above_a_provider_binary() {
        let file = Path::new(
            "/opt/mirror/registry.terraform.io/hashicorp/aws/6.0.0/linux_amd64/terraform-provider-aws_v6.0.0",
        );
        assert_eq!(mirror_root(file), Some(PathBuf::from("/opt/mirror")));
        assert_eq!(mirror_root(Path::new("/x/terraform-provider-aws")), None);
    }

    #[test]
    fn the_bootstrap_record_is_read_and_an_empty_one_ignored() {
        let env =
            "PANGEA_CACHE_DIR=/c\nPANGEA_PROVIDER_MIRROR=/opt/m\nPANGEA_TF_CLI_CONFIG=/c/rc\n";
        assert_eq!(recorded_mirror(env), Some(PathBuf::from("/opt/m")));
        assert_eq!(recorded_mirror("PANGEA_PROVIDER_MIRROR=\n"), None);
        assert_eq!(recorded_mirror(""), None);
    }

    #[test]
    fn a_mirror_is_found_under_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let platform = dir
            .path()
            .join("m/registry.terraform.io/hashicorp/aws/6.0.0/linux_amd64");
        std::fs::create_dir_all(&platform).unwrap();
        std::fs::create_dir_all(dir.path().join("a-unrelated/dir")).unwrap();
        std::fs::write(platform.join("terraform-provider-aws_v6.0.0"), b"").unwrap();
        assert_eq!(find_under(dir.path()), Some(dir.path().join("m")));
        assert_eq!(find_under(&dir.path().join("a-unrelated")), None);
    }
}
