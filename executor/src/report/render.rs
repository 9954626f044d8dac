//! Turns drifted values into the strings a report carries: secrets replaced, then size bounded.
//!
//! Redaction happens before truncation, so a secret cut in half by the size bound can never
//! survive as a fragment the redactor no longer recognises.

use serde_json::Value;

/// What replaces a secret.
pub use crate::scrub::REDACTED;
use crate::scrub::Scrubber;

/// Replaces known secret values (sensitive variables and outputs) wherever they occur, also
/// inside JSON documents and map keys.
#[derive(Clone, Debug, Default)]
pub struct Redactor(Scrubber);

impl Redactor {
    /// A redactor for these secret values; empty values are skipped (they would match
    /// everywhere and carry nothing to hide).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(Scrubber::exact(secrets))
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        self.0.scrub(text)
    }

    /// `value` with every string scrubbed, at any depth (also map keys).
    fn scrub_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.scrub(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.scrub_value(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.scrub(k), self.scrub_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// How one value is rendered.
#[derive(Clone, Copy, Debug)]
pub struct Render<'a> {
    /// Known secret values.
    pub redactor: &'a Redactor,
    /// Longest rendered value in bytes before it is cut.
    pub max_len: usize,
}

impl Render<'_> {
    /// JSON text of `value`; `None` for null/absent, [`REDACTED`] when the attribute is
    /// sensitive, secrets replaced and the length bounded otherwise.
    pub fn value(&self, value: &Value, sensitive: bool) -> Option<String> {
        if value.is_null() {
            return None;
        }
        if sensitive {
            return Some(REDACTED.to_owned());
        }
        // Scrubbing the tree catches secrets inside nested JSON documents; scrubbing the text
        // again catches any the encoding produced in another form.
        let text = self
            .redactor
            .scrub(&self.redactor.scrub_value(value).to_string());
        Some(truncate(text, self.max_len))
    }
}

/// `text` cut to at most `max_len` bytes (on a character boundary) plus a marker saying how
/// much was cut.
pub fn truncate(text: String, max_len: usize) -> String {
    if text.len() <= max_len {
        return text;
    }
    let mut cut = max_len;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}…(truncated, {} more bytes)",
        &text[..cut],
        text.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn render(secrets: &[&str], value: Value, sensitive: bool, max_len: usize) -> Option<String> {
        let redactor = Redactor::new(secrets);
        Render {
            redactor: &redactor,
            max_len,
        }
        .value(&value, sensitive)
    }

    #[rstest]
    #[case::null(json!(null), false, None)]
    #[case::sensitive_null_stays_absent(json!(null), true, None)]
    #[case::plain(json!({"a": [1, "x"]}), false, Some(r#"{"a":[1,"x"]}"#))]
    #[case::sensitive(json!("anything"), true, Some("(sensitive)"))]
    #[case::known_secret(json!("pre-hunter2-post"), false, Some(r#""pre-(sensitive)-post""#))]
    #[case::secret_in_map_key(json!({"hunter2": 1}), false, Some(r#"{"(sensitive)":1}"#))]
    #[case::secret_in_nested_document(
        json!("{\"Password\":\"hunter2\"}"),
        false,
        Some(r#""{\"Password\":\"(sensitive)\"}""#)
    )]
    fn renders_values(#[case] value: Value, #[case] sensitive: bool, #[case] out: Option<&str>) {
        assert_eq!(render(&["hunter2"], value, sensitive, 1000).as_deref(), out);
    }

    #[test]
    fn replaces_secrets_that_json_escapes() {
        let secret = "a\"b\\c\n";
        let out = render(&[secret], json!({"v": format!("x{secret}y")}), false, 1000).unwrap();
        assert_eq!(out, r#"{"v":"x(sensitive)y"}"#);
    }

    #[test]
    fn replaces_the_longer_of_overlapping_secrets_whole() {
        let out = render(&["abc", "abcdef"], json!("abcdef"), false, 1000).unwrap();
        assert_eq!(out, r#""(sensitive)""#);
    }

    #[test]
    fn ignores_empty_secrets() {
        assert_eq!(
            render(&[""], json!("x"), false, 1000).as_deref(),
            Some(r#""x""#)
        );
    }

    #[test]
    fn redacts_before_truncating() {
        // Cut first, the tail of the secret would be gone and its head would leak.
        let out = render(&["hunter2"], json!("aaaa hunter2"), false, 10).unwrap();
        assert!(!out.contains("hunt"), "{out}");
        assert!(out.starts_with(r#""aaaa (sen"#), "{out}");
    }

    #[rstest]
    #[case::short("abc", 5, "abc")]
    #[case::exact("abcde", 5, "abcde")]
    #[case::cut("abcdefgh", 5, "abcde…(truncated, 3 more bytes)")]
    #[case::char_boundary("aé", 2, "a…(truncated, 2 more bytes)")]
    fn truncates_with_a_marker(#[case] text: &str, #[case] max: usize, #[case] out: &str) {
        assert_eq!(truncate(text.to_owned(), max), out);
    }
}
