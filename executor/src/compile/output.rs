//! The compiler's result: one Terraform document per template plus diagnostics. Documents are
//! kept as the exact JSON text Ruby produced, so key order, `30.0` and big integers survive.

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};
use serde_json::value::RawValue;

use super::pretty;

/// One error or warning, located in the user's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file as given to the compiler (or a helper file it loaded).
    pub file: Option<String>,
    /// 1-based line in `file`; absent when no line applies (e.g. "no template in file").
    pub line: Option<u32>,
    /// Ruby error class (`SyntaxError`, `TooManyFieldValuesError`, ...) or warning kind.
    pub class: String,
    pub message: String,
    /// The template being compiled, if any.
    pub template: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `file:line: Class: message`, the form editors and terminals link to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// One template's Terraform JSON document.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub name: String,
    /// Compact JSON text exactly as generated.
    pub document: Box<RawValue>,
}

impl CompiledTemplate {
    /// The document as `main.tf.json` content (two-space indent, as `JSON.pretty_generate`).
    pub fn pretty(&self) -> String {
        pretty::format(self.document.get())
    }

    /// Number of `resource.<type>.<name>` entries.
    pub fn resource_count(&self) -> usize {
        self.count_under("resource")
    }

    /// Number of `data.<type>.<name>` entries.
    pub fn data_count(&self) -> usize {
        self.count_under("data")
    }

    fn count_under(&self, key: &str) -> usize {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(self.document.get()) else {
            return 0;
        };
        doc.get(key)
            .and_then(|types| types.as_object())
            .map_or(0, |types| {
                types
                    .values()
                    .map(|names| names.as_object().map_or(0, |n| n.len()))
                    .sum()
            })
    }
}

/// Everything one compile produced.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompileOutput {
    /// Compiled templates in file order (only those that compiled without error).
    #[serde(deserialize_with = "ordered_templates")]
    pub templates: Vec<CompiledTemplate>,
    pub warnings: Vec<Diagnostic>,
    pub errors: Vec<Diagnostic>,
    /// What the template code printed (`puts`, `warn`, child processes), for a person to read.
    #[serde(skip)]
    pub console: String,
}

impl CompileOutput {
    /// True when no error was reported; only then should anything be written or planned.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn template(&self, name: &str) -> Option<&CompiledTemplate> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// `{"templates": {...}, "warnings": [...], "errors": [...]}`, pretty-printed.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        let compact = serde_json::to_string(self).unwrap_or_default();
        pretty::format(&compact)
    }
}

impl Serialize for CompileOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Templates<'a>(&'a [CompiledTemplate]);
        impl Serialize for Templates<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for t in self.0 {
                    map.serialize_entry(&t.name, &t.document)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("templates", &Templates(&self.templates))?;
        map.serialize_entry("warnings", &self.warnings)?;
        map.serialize_entry("errors", &self.errors)?;
        map.end()
    }
}

/// A JSON object read into a Vec, keeping file order (serde_json's map would sort it).
fn ordered_templates<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<CompiledTemplate>, D::Error> {
    struct Ordered;
    impl<'de> Visitor<'de> for Ordered {
        type Value = Vec<CompiledTemplate>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of template name to document")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, document)) = map.next_entry::<String, Box<RawValue>>()? {
                out.push(CompiledTemplate { name, document });
            }
            Ok(out)
        }
    }
    de.deserialize_map(Ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: &str = r#"{"templates":{"zeta":{"resource":{"a":{"x":{"v":30.0}},"b":{"y":{},"z":{}}},"data":{"d":{"e":{}}}},"alpha":{"n":123456789012345678901234567890}},"warnings":[{"file":"f.rb","line":3,"class":"RepeatedBlockWarning","message":"m","template":"zeta"}],"errors":[]}"#;

    fn parsed() -> CompileOutput {
        serde_json::from_str(ENVELOPE).unwrap()
    }

    #[test]
    fn templates_keep_file_order_and_exact_numbers() {
        let out = parsed();
        let names: Vec<_> = out.templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha"]);
        assert!(
            out.template("zeta")
                .unwrap()
                .document
                .get()
                .contains("30.0")
        );
        let round_trip = serde_json::to_string(&out).unwrap();
        assert!(round_trip.contains("123456789012345678901234567890"));
        assert!(round_trip.find("zeta") < round_trip.find("alpha"));
    }

    #[test]
    fn counts_resources_and_data() {
        let zeta = parsed().templates.remove(0);
        assert_eq!((zeta.resource_count(), zeta.data_count()), (3, 1));
    }

    #[test]
    fn diagnostic_display_is_file_line_class_message() {
        let out = parsed();
        assert_eq!(
            out.warnings[0].to_string(),
            "f.rb:3: RepeatedBlockWarning: m"
        );
        let no_line = Diagnostic {
            line: None,
            ..out.warnings[0].clone()
        };
        assert_eq!(no_line.to_string(), "f.rb: RepeatedBlockWarning: m");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<CompileOutput>("{\"templates\": 3}").is_err());
        assert!(serde_json::from_str::<CompileOutput>("not json").is_err());
    }
}
