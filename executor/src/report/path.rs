//! Attribute paths: the dotted form reports show (`ingress.1.cidr_blocks.0`) and the sensitive
//! paths Terraform records in state (`[{"type":"get_attr","value":"value"}]`).

use std::fmt;

use serde_json::Value;

/// One step into an attribute value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// Object attribute or map key.
    Key(String),
    /// List or set element position.
    Index(usize),
}

/// A path from the root of an instance's attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrPath(pub Vec<Segment>);

impl AttrPath {
    /// The path one step further down.
    pub fn child(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }

    /// Top-level attribute name, if the path starts with one.
    pub fn root_key(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Last object attribute or map key on the path (list indexes skipped).
    pub fn last_key(&self) -> Option<&str> {
        self.keys().last()
    }

    /// Every attribute name or map key on the path, outermost first.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
    }

    /// Dotted prefixes of the path, shortest first: `a`, `a.0`, `a.0.b`.
    ///
    /// Rules name an attribute and cover everything beneath it, so a glob is tried against each.
    pub fn dotted_prefixes(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.0.len());
        let mut text = String::new();
        for segment in &self.0 {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(&segment.to_string());
            out.push(text.clone());
        }
        out
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(k) => f.write_str(k),
            Self::Index(i) => write!(f, "{i}"),
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(".")?;
            }
            write!(f, "{segment}")?;
        }
        Ok(())
    }
}

/// One step of a sensitive path from state.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SensitiveStep {
    /// Attribute or map key by name.
    Named(String),
    /// A list/set position. Positions differ between the two states when elements move, so a
    /// sensitive index matches every index: over-redacting a neighbour is safe, leaking is not.
    AnyIndex,
}

/// Sensitive paths of one instance, matched against drift paths.
#[derive(Clone, Debug, Default)]
pub struct SensitivePaths(Vec<Vec<SensitiveStep>>);

impl SensitivePaths {
    /// Parses `sensitive_attributes` of state v4 (a list of step lists).
    ///
    /// A step that cannot be understood ends its path there, which marks everything below the
    /// steps read so far as sensitive: an unknown format must fail closed, never open.
    pub fn from_state(paths: &[Value]) -> Self {
        Self(paths.iter().map(parse_path).collect())
    }

    /// Adds another instance's paths (the prior and the refreshed state each carry some).
    pub fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    /// Whether the value at `path` is, contains or lies inside a sensitive value.
    pub fn covers(&self, path: &AttrPath) -> bool {
        self.0.iter().any(|steps| {
            steps
                .iter()
                .zip(&path.0)
                .all(|(step, segment)| step_matches(step, segment))
        })
    }
}

fn step_matches(step: &SensitiveStep, segment: &Segment) -> bool {
    match (step, segment) {
        (SensitiveStep::AnyIndex, _) => true,
        (SensitiveStep::Named(name), Segment::Key(key)) => name == key,
        (SensitiveStep::Named(_), Segment::Index(_)) => false,
    }
}

fn parse_path(path: &Value) -> Vec<SensitiveStep> {
    let Some(steps) = path.as_array() else {
        return Vec::new();
    };
    steps.iter().map_while(parse_step).collect()
}

/// `{"type":"get_attr","value":"name"}` or `{"type":"index","value":{"value":0,"type":"number"}}`.
fn parse_step(step: &Value) -> Option<SensitiveStep> {
    let value = step.get("value")?;
    match step.get("type")?.as_str()? {
        "get_attr" => Some(SensitiveStep::Named(value.as_str()?.to_owned())),
        "index" => match value.get("value")? {
            Value::String(key) => Some(SensitiveStep::Named(key.clone())),
            Value::Number(_) => Some(SensitiveStep::AnyIndex),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> AttrPath {
        AttrPath(
            text.split('.')
                .map(|s| match s.parse() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Key(s.into()),
                })
                .collect(),
        )
    }

    #[test]
    fn displays_dotted_with_numeric_indexes() {
        let p = AttrPath::default()
            .child(Segment::Key("ingress".into()))
            .child(Segment::Index(1))
            .child(Segment::Key("cidr_blocks".into()))
            .child(Segment::Index(0));
        assert_eq!(p.to_string(), "ingress.1.cidr_blocks.0");
        assert_eq!(
            p.dotted_prefixes(),
            [
                "ingress",
                "ingress.1",
                "ingress.1.cidr_blocks",
                "ingress.1.cidr_blocks.0"
            ]
        );
        assert_eq!(p.root_key(), Some("ingress"));
        assert_eq!(p.last_key(), Some("cidr_blocks"));
    }

    #[rstest]
    #[case::exact(json!([[{"type": "get_attr", "value": "value"}]]), "value", true)]
    #[case::inside(json!([[{"type": "get_attr", "value": "value"}]]), "value.x", true)]
    #[case::containing(
        json!([[{"type": "get_attr", "value": "a"}, {"type": "get_attr", "value": "b"}]]),
        "a",
        true
    )]
    #[case::other(json!([[{"type": "get_attr", "value": "value"}]]), "name", false)]
    #[case::any_index(
        json!([[{"type": "get_attr", "value": "l"}, {"type": "index", "value": {"value": 0, "type": "number"}}]]),
        "l.3",
        true
    )]
    #[case::map_key(
        json!([[{"type": "get_attr", "value": "m"}, {"type": "index", "value": {"value": "k", "type": "string"}}]]),
        "m.j",
        false
    )]
    #[case::map_key_hit(
        json!([[{"type": "get_attr", "value": "m"}, {"type": "index", "value": {"value": "k", "type": "string"}}]]),
        "m.k",
        true
    )]
    #[case::unknown_step_fails_closed(
        json!([[{"type": "get_attr", "value": "m"}, {"type": "future_step"}]]),
        "m.anything",
        true
    )]
    #[case::none(json!([]), "value", false)]
    fn matches_sensitive_paths(#[case] state: Value, #[case] drift: &str, #[case] hit: bool) {
        let paths = SensitivePaths::from_state(state.as_array().unwrap());
        assert_eq!(paths.covers(&path(drift)), hit);
    }
}
