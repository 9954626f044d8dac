//! Removes known secret values from any text that leaves the executor (error messages, command
//! summaries, rendered values). The last line of defence behind typed redaction: whatever the
//! path, a value known to be secret is replaced by `(sensitive)`.

/// Replacement for secret values.
pub const REDACTED: &str = "(sensitive)";

/// Secrets shorter than this are not scrubbed from free text: replacing every `a` or `1` would
/// destroy messages without protecting anything worth protecting.
const MIN_SECRET_LEN: usize = 4;

/// The set of secret values of one execution.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
    needles: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `secrets`, also matching their JSON-escaped spelling.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.as_ref().trim().to_owned())
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        let mut needles: Vec<String> = secrets
            .iter()
            .cloned()
            .flat_map(|s| {
                let escaped = serde_json::to_string(&s).unwrap_or_default();
                let escaped = escaped.trim_matches('"').to_owned();
                [s, escaped]
            })
            .collect();
        // Longest first, so a secret containing another is removed whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { secrets, needles }
    }

    /// The secret values themselves (for typed redaction further down the line).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// Whether there is anything to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        self.needles.iter().fold(text.to_owned(), |acc, needle| {
            acc.replace(needle.as_str(), REDACTED)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_plain_and_json_escaped_secrets() {
        let s = Scrubber::new(["p\"ss-word", "tok123"]);
        assert_eq!(
            s.scrub("a p\"ss-word b tok123"),
            "a (sensitive) b (sensitive)"
        );
        assert_eq!(s.scrub(r#"{"v":"p\"ss-word"}"#), r#"{"v":"(sensitive)"}"#);
    }

    #[test]
    fn ignores_trivially_short_values() {
        let s = Scrubber::new(["ab", ""]);
        assert!(s.is_empty());
        assert_eq!(s.scrub("abc"), "abc");
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let s = Scrubber::new(["secret", "secret-and-more"]);
        assert_eq!(s.scrub("x secret-and-more y"), "x (sensitive) y");
    }
}
