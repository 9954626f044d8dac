//! Relative paths supplied by users (a ConfigMap file name, a template path in a repository):
//! they must name a file inside the source directory and nothing outside it.

use std::path::{Component, Path, PathBuf};

/// `raw` as a relative path of normal components; the reason when it is not one.
pub(crate) fn relative(raw: &str) -> Result<PathBuf, &'static str> {
    if raw.is_empty() {
        return Err("it is empty");
    }
    if raw.contains('\0') {
        return Err("it contains a NUL byte");
    }
    let mut out = PathBuf::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it must not contain `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("it must be relative"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("it names no file");
    }
    Ok(out)
}

/// Where `rel` is found under `root`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Located {
    /// A regular file inside `root` (symlinks resolved).
    File(PathBuf),
    /// Nothing there, or not a regular file.
    Missing,
    /// A symlink along the way leads outside `root`.
    Escapes,
}

/// Finds `rel` (already validated by [`relative`]) under `root`, following symlinks only as
/// long as they stay inside `root`: a repository could otherwise point the template at any
/// file of the executor's machine.
pub(crate) fn locate(root: &Path, rel: &Path) -> Located {
    let candidate = root.join(rel);
    let (Ok(real_root), Ok(real)) = (root.canonicalize(), candidate.canonicalize()) else {
        return Located::Missing;
    };
    if !real.starts_with(&real_root) {
        return Located::Escapes;
    }
    if real.is_file() {
        Located::File(candidate)
    } else {
        Located::Missing
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("main.rb", "main.rb")]
    #[case("./stacks/net.rb", "stacks/net.rb")]
    #[case("a//b.rb", "a/b.rb")]
    fn accepts(#[case] raw: &str, #[case] expected: &str) {
        assert_eq!(relative(raw).unwrap(), PathBuf::from(expected));
    }

    #[rstest]
    #[case("", "empty")]
    #[case(".", "names no file")]
    #[case("../main.rb", "`..`")]
    #[case("a/../../main.rb", "`..`")]
    #[case("/etc/passwd", "relative")]
    #[case("a\0b", "NUL")]
    fn rejects(#[case] raw: &str, #[case] why: &str) {
        assert!(relative(raw).unwrap_err().contains(why));
    }

    #[test]
    fn locate_refuses_symlinks_leaving_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(outer.path().join("secret"), "x").unwrap();
        std::fs::write(root.join("lib/a.rb"), "x").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("evil.rb")).unwrap();
        std::os::unix::fs::symlink("lib/a.rb", root.join("ok.rb")).unwrap();

        assert_eq!(
            locate(&root, Path::new("lib/a.rb")),
            Located::File(root.join("lib/a.rb"))
        );
        assert_eq!(
            locate(&root, Path::new("ok.rb")),
            Located::File(root.join("ok.rb"))
        );
        assert_eq!(locate(&root, Path::new("evil.rb")), Located::Escapes);
        assert_eq!(locate(&root, Path::new("lib")), Located::Missing);
        assert_eq!(locate(&root, Path::new("nope.rb")), Located::Missing);
    }
}
