//! The Ruby compiler, embedded in the binary and installed on demand into a content-addressed
//! directory, so concurrent runs (and different binary versions) never see half-written or
//! foreign sources.

use std::{
    fs,
    path::{Path, PathBuf},
    process,
    time::{SystemTime, UNIX_EPOCH},
};

use super::CompileError;

/// Relative path and content of every Ruby file. Keep in step with `executor/ruby/`.
const SOURCES: &[(&str, &str)] = &[
    (
        "pangea_compile.rb",
        include_str!("../../ruby/pangea_compile.rb"),
    ),
    (
        "pangea/backend.rb",
        include_str!("../../ruby/pangea/backend.rb"),
    ),
    (
        "pangea/compiler.rb",
        include_str!("../../ruby/pangea/compiler.rb"),
    ),
    (
        "pangea/diagnostics.rb",
        include_str!("../../ruby/pangea/diagnostics.rb"),
    ),
    (
        "pangea/dispatcher.rb",
        include_str!("../../ruby/pangea/dispatcher.rb"),
    ),
    (
        "pangea/document.rb",
        include_str!("../../ruby/pangea/document.rb"),
    ),
    (
        "pangea/errors.rb",
        include_str!("../../ruby/pangea/errors.rb"),
    ),
    (
        "pangea/namespace_config.rb",
        include_str!("../../ruby/pangea/namespace_config.rb"),
    ),
    (
        "pangea/references.rb",
        include_str!("../../ruby/pangea/references.rb"),
    ),
    (
        "pangea/synthesizer.rb",
        include_str!("../../ruby/pangea/synthesizer.rb"),
    ),
    (
        "pangea/template_file.rb",
        include_str!("../../ruby/pangea/template_file.rb"),
    ),
    (
        "pangea/source_tree.rb",
        include_str!("../../ruby/pangea/source_tree.rb"),
    ),
];

/// The entry script, relative to the install directory.
pub(crate) const ENTRY: &str = "pangea_compile.rb";

/// Marker written last: a directory without it is incomplete and is never used.
const COMPLETE: &str = ".complete";

/// Installs the sources under `cache_dir` (once per content) and returns their directory.
pub(crate) fn install(cache_dir: &Path) -> Result<PathBuf, CompileError> {
    let dir = cache_dir.join(format!("pangea-compiler-{:016x}", content_hash()));
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    let err = |source| CompileError::Install {
        dir: dir.clone(),
        source,
    };
    fs::create_dir_all(cache_dir).map_err(err)?;
    let staging = cache_dir.join(format!(".pangea-compiler-{}-{}", process::id(), nanos()));
    write_all(&staging).map_err(err)?;
    // Another process may have won the race; its copy is identical, so losing is fine.
    if let Err(e) = fs::rename(&staging, &dir) {
        let _ = fs::remove_dir_all(&staging);
        if !dir.join(COMPLETE).is_file() {
            return Err(err(e));
        }
    }
    tracing::debug!(dir = %dir.display(), "installed compiler sources");
    Ok(dir)
}

fn write_all(staging: &Path) -> std::io::Result<()> {
    for (rel, text) in SOURCES {
        let path = staging.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, text)?;
    }
    fs::write(staging.join(COMPLETE), b"")
}

/// FNV-1a over names and contents: stable across builds and Rust versions, unlike `Hash`.
fn content_hash() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (rel, text) in SOURCES {
        for byte in rel.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ruby_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ruby");
        let mut on_disk = vec![ENTRY.to_string()];
        for entry in fs::read_dir(root.join("pangea")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.push(format!("pangea/{name}"));
        }
        on_disk.sort();
        let mut embedded: Vec<String> = SOURCES.iter().map(|(r, _)| r.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn install_is_idempotent_and_complete() {
        let cache = tempfile::tempdir().unwrap();
        let first = install(cache.path()).unwrap();
        let second = install(cache.path()).unwrap();
        assert_eq!(first, second);
        assert!(first.join(ENTRY).is_file());
        assert!(first.join("pangea/dispatcher.rb").is_file());
        // Only the final directory remains: no staging leftovers.
        assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 1);
    }
}
