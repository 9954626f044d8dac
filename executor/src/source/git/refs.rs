//! Ref names as users write them (`main`, `v1.2.0`, `refs/tags/v1`, a full or short commit
//! SHA): validated before git sees them, and expanded into the revisions to try in order.

use super::super::SourceError;

/// Where the mirror keeps the remote's `HEAD` (its default branch), fetched by name.
pub(crate) const REMOTE_HEAD: &str = "refs/pangea/remote-head";

/// Characters git forbids in ref names; most also have revision-syntax meaning (`main~1`,
/// `v1^{tree}`, `a:b`), which a ref from a manifest must never get.
const FORBIDDEN: &[char] = &['~', '^', ':', '?', '*', '[', '\\'];

/// `None` for "the default branch" (no ref, or `HEAD`); otherwise the validated ref.
pub(crate) fn normalise(git_ref: Option<&str>) -> Result<Option<&str>, SourceError> {
    match git_ref.map(str::trim) {
        None | Some("" | "HEAD") => Ok(None),
        Some(name) => validate(name).map(|()| Some(name)),
    }
}

fn validate(name: &str) -> Result<(), SourceError> {
    let invalid = |reason| SourceError::InvalidRef {
        git_ref: name.to_owned(),
        reason,
    };
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace or control characters"));
    }
    if name.contains(FORBIDDEN) {
        return Err(invalid("it contains one of ~ ^ : ? * [ \\"));
    }
    if name.starts_with(['-', '/', '.']) || name.ends_with(['/', '.']) || name.ends_with(".lock") {
        return Err(invalid(
            "it starts with -, / or . or ends with /, . or .lock",
        ));
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") || name == "@" {
        return Err(invalid("it contains `..`, `@{` or `//`"));
    }
    Ok(())
}

/// A complete SHA-1 or SHA-256 commit id: immutable, so a mirror that has it needs no fetch.
pub(crate) fn is_full_sha(name: &str) -> bool {
    matches!(name.len(), 40 | 64) && is_hex(name)
}

/// Revisions to try for `name`, most specific first: branch, tag, then commit (abbreviated
/// SHAs included; git refuses ambiguous ones). Branches win over a same-named SHA prefix,
/// as in git itself.
pub(crate) fn candidates(name: &str) -> Vec<String> {
    if name.starts_with("refs/") {
        return vec![name.to_owned()];
    }
    let mut out = vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")];
    if (4..=64).contains(&name.len()) && is_hex(name) {
        out.push(name.to_ascii_lowercase());
    }
    out
}

fn is_hex(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(None, None)]
    #[case(Some("HEAD"), None)]
    #[case(Some(""), None)]
    #[case(Some("main"), Some("main"))]
    #[case(Some("release/1.x"), Some("release/1.x"))]
    #[case(Some("v1.2.0"), Some("v1.2.0"))]
    #[case(Some("refs/tags/v1"), Some("refs/tags/v1"))]
    fn accepts(#[case] raw: Option<&str>, #[case] expected: Option<&str>) {
        assert_eq!(normalise(raw).unwrap(), expected);
    }

    #[rstest]
    #[case("main~1")]
    #[case("v1^{tree}")]
    #[case("a:b")]
    #[case("--upload-pack=x")]
    #[case("a..b")]
    #[case("HEAD@{1}")]
    #[case("x.lock")]
    #[case("with space")]
    #[case("@")]
    fn rejects(#[case] raw: &str) {
        let err = normalise(Some(raw)).unwrap_err();
        assert!(matches!(err, SourceError::InvalidRef { .. }), "{err}");
        assert!(err.to_string().contains(raw), "{err}");
    }

    #[test]
    fn expands_names_in_order() {
        assert_eq!(candidates("main"), ["refs/heads/main", "refs/tags/main"]);
        assert_eq!(
            candidates("BEEF12"),
            ["refs/heads/BEEF12", "refs/tags/BEEF12", "beef12"]
        );
        assert_eq!(candidates("refs/tags/v1"), ["refs/tags/v1"]);
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha(&"g".repeat(40)));
        assert!(!is_full_sha("abc123"));
    }
}
