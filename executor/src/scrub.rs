//! Removes known secret values from any text that leaves the executor (error messages, command
//! summaries, rendered values). The last line of defence behind typed redaction: whatever the
//! path, a value known to be secret is replaced by `(sensitive)`.

/// Replacement for secret values.
pub const REDACTED: &str = "(sensitive)";

/// Secrets shorter than this are not scrubbed from free text: replacing every `a` or `1` would
/// destroy messages without protecting anything worth protecting.
const MIN_SECRET_LEN: usize = 4;

/// The set of secret values of one execution.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
    needles: Vec<String>,
}

/// Shows how many secrets there are, never what they are: anything holding a scrubber (a
/// request context, report options) may end up in a `{:?}`.
impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Scrubber {
    /// A scrubber for free text (errors, logs): values are trimmed and very short ones are
    /// skipped.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(
            secrets
                .into_iter()
                .map(|s| s.as_ref().trim().to_owned())
                .filter(|s| s.len() >= MIN_SECRET_LEN),
        )
    }

    /// A scrubber for typed values (report attributes): every non-empty value exactly as
    /// given, however short — there the match is against whole known values, not prose.
    pub fn exact<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(
            secrets
                .into_iter()
                .map(|s| s.as_ref().to_owned())
                .filter(|s| !s.is_empty()),
        )
    }

    /// Each secret as written and as it reads inside a JSON string literal, longest first so
    /// a secret that contains another is replaced whole.
    fn build(secrets: impl Iterator<Item = String>) -> Self {
        let secrets: Vec<String> = secrets.collect();
        let mut needles: Vec<String> = secrets
            .iter()
            .flat_map(|s| [s.clone(), json_escaped(s)])
            .collect();
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
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

/// The secret as it reads inside a JSON string literal (without the quotes).
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::Value::String(secret.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
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
    fn debug_output_never_shows_a_secret() {
        let s = Scrubber::new(["hunter2-secret"]);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(
            !format!(
                "{:?}",
                crate::report::DriftOptions::default().with_sensitive_values(["hunter2-secret"])
            )
            .contains("hunter2")
        );
    }

    #[test]
    fn exact_values_keep_short_secrets_and_a_trailing_quote() {
        let s = Scrubber::exact(["abc", "end\""]);
        assert_eq!(s.scrub("x abc y"), "x (sensitive) y");
        assert_eq!(s.scrub(r#"{"v":"end\""}"#), r#"{"v":"(sensitive)"}"#);
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
