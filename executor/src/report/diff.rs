//! Attribute diff of one instance between two states: the list of paths whose value differs,
//! with the value on each side, after the noise of [`normalize`](super::normalize) is removed.
//!
//! Objects are compared key by key. Lists are compared by content, not position, because
//! Terraform stores sets (security group `ingress`, Route53 `records`) as lists in its own hash
//! order: one added rule can shift every other element, and an index-by-index diff would then
//! report a dozen leaf changes instead of "this rule was added".

use serde_json::{Map, Value};

use super::{
    normalize::{is_empty_like, same},
    path::{AttrPath, Segment},
};

/// Share of non-empty fields two set elements must have in common to be reported as one
/// element that changed (leaf diffs) rather than one removed and one added (whole elements).
const SAME_ELEMENT_SIMILARITY: f64 = 0.5;

/// One differing value. `Value::Null` stands for "absent" as well as null.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueDrift {
    /// Where the values differ.
    pub path: AttrPath,
    /// Value in the last applied state.
    pub expected: Value,
    /// Value found in reality.
    pub actual: Value,
}

/// Every drifted path between `expected` and `actual` attribute values.
pub fn diff_values(expected: &Value, actual: &Value) -> Vec<ValueDrift> {
    let mut out = Vec::new();
    walk(&AttrPath::default(), expected, actual, &mut out);
    out
}

fn walk(path: &AttrPath, expected: &Value, actual: &Value, out: &mut Vec<ValueDrift>) {
    if same(expected, actual) {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => walk_objects(path, e, a, out),
        (Value::Array(e), Value::Array(a)) => walk_lists(path, e, a, out),
        _ => push(out, path.clone(), expected, actual),
    }
}

fn push(out: &mut Vec<ValueDrift>, path: AttrPath, expected: &Value, actual: &Value) {
    out.push(ValueDrift {
        path,
        expected: expected.clone(),
        actual: actual.clone(),
    });
}

fn walk_objects(
    path: &AttrPath,
    expected: &Map<String, Value>,
    actual: &Map<String, Value>,
    out: &mut Vec<ValueDrift>,
) {
    let mut keys: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let e = expected.get(key).unwrap_or(&Value::Null);
        let a = actual.get(key).unwrap_or(&Value::Null);
        walk(&path.child(Segment::Key(key.clone())), e, a, out);
    }
}

fn walk_lists(path: &AttrPath, expected: &[Value], actual: &[Value], out: &mut Vec<ValueDrift>) {
    let matching = match_equal(expected, actual);
    if !keeps_order(&matching) {
        // Same elements in another order: a real change for an ordered list, and impossible for
        // a set (Terraform sorts those deterministically), so report the list as a whole.
        push(
            out,
            path.clone(),
            &Value::Array(expected.to_vec()),
            &Value::Array(actual.to_vec()),
        );
        return;
    }
    let removed: Vec<usize> = (0..expected.len())
        .filter(|&i| matching[i].is_none())
        .collect();
    let mut added: Vec<usize> = {
        let taken: Vec<usize> = matching.iter().flatten().copied().collect();
        (0..actual.len()).filter(|j| !taken.contains(j)).collect()
    };
    let single = expected.len() == 1 && actual.len() == 1;
    for i in removed {
        let element = path.child(Segment::Index(i));
        if let Some(j) = best_counterpart(&expected[i], actual, &added, single) {
            added.retain(|&k| k != j);
            walk(
                &path.child(Segment::Index(j)),
                &expected[i],
                &actual[j],
                out,
            );
        } else if let Some(pos) = added.iter().position(|&j| j == i) {
            // Different elements at the same position: one entry, both whole values.
            added.remove(pos);
            push(out, element, &expected[i], &actual[i]);
        } else {
            push(out, element, &expected[i], &Value::Null);
        }
    }
    for j in added {
        push(out, path.child(Segment::Index(j)), &Value::Null, &actual[j]);
    }
}

/// For each expected element, the position of an equal actual element (each used once),
/// preferring the same position so duplicates pair up in place.
fn match_equal(expected: &[Value], actual: &[Value]) -> Vec<Option<usize>> {
    let mut taken = vec![false; actual.len()];
    expected
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let same_place = (i < actual.len() && !taken[i] && same(e, &actual[i])).then_some(i);
            let found = same_place
                .or_else(|| (0..actual.len()).find(|&j| !taken[j] && same(e, &actual[j])));
            if let Some(j) = found {
                taken[j] = true;
            }
            found
        })
        .collect()
}

fn keeps_order(matching: &[Option<usize>]) -> bool {
    let positions: Vec<usize> = matching.iter().flatten().copied().collect();
    positions.windows(2).all(|w| w[0] < w[1])
}

/// The unmatched actual element that is the same set element changed in place, if any: the
/// most similar object above the threshold, or the only one when both lists hold one element
/// (a nested block such as `versioning` is a one-element list).
fn best_counterpart(
    expected: &Value,
    actual: &[Value],
    candidates: &[usize],
    single: bool,
) -> Option<usize> {
    let Value::Object(e) = expected else {
        return None;
    };
    let scored = candidates.iter().filter_map(|&j| match &actual[j] {
        Value::Object(a) => Some((j, similarity(e, a))),
        _ => None,
    });
    let (j, score) = scored.fold(None, |best: Option<(usize, f64)>, (j, s)| match best {
        Some((_, b)) if b >= s => best,
        _ => Some((j, s)),
    })?;
    (single || score >= SAME_ELEMENT_SIMILARITY).then_some(j)
}

/// Share of fields set on either side that are equal on both.
fn similarity(a: &Map<String, Value>, b: &Map<String, Value>) -> f64 {
    let mut considered = 0_u32;
    let mut equal = 0_u32;
    let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
    for key in keys {
        let x = a.get(key).unwrap_or(&Value::Null);
        let y = b.get(key).unwrap_or(&Value::Null);
        if is_empty_like(x) && is_empty_like(y) {
            continue;
        }
        considered += 1;
        if same(x, y) {
            equal += 1;
        }
    }
    if considered == 0 {
        1.0
    } else {
        f64::from(equal) / f64::from(considered)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    /// `(path, expected, actual)` with paths dotted, for compact assertions.
    fn diff(expected: Value, actual: Value) -> Vec<(String, Value, Value)> {
        diff_values(&expected, &actual)
            .into_iter()
            .map(|d| (d.path.to_string(), d.expected, d.actual))
            .collect()
    }

    fn rule(port: u16, cidr: &str, description: &str) -> Value {
        json!({
            "cidr_blocks": [cidr], "description": description, "from_port": port,
            "ipv6_cidr_blocks": [], "prefix_list_ids": [], "protocol": "tcp",
            "security_groups": [], "self": false, "to_port": port
        })
    }

    #[rstest]
    #[case::tags_null_to_empty(json!({"tags": null}), json!({"tags": {}}))]
    #[case::list_empty_to_null(json!({"l": []}), json!({"l": null}))]
    #[case::missing_vs_empty(json!({}), json!({"tags_all": {}}))]
    #[case::number_spelling(json!({"ttl": 300}), json!({"ttl": 300.0}))]
    #[case::set_reordered_equal(json!({"s": [rule(443, "a", "x")]}), json!({"s": [rule(443, "a", "x")]}))]
    fn reports_no_noise(#[case] expected: Value, #[case] actual: Value) {
        assert_eq!(diff(expected, actual), []);
    }

    #[test]
    fn recurses_into_objects_and_maps() {
        let found = diff(
            json!({"tags": {"Name": "a", "Env": "x"}, "ttl": 300}),
            json!({"tags": {"Name": "b"}, "ttl": 60}),
        );
        assert_eq!(
            found,
            [
                ("tags.Env".into(), json!("x"), json!(null)),
                ("tags.Name".into(), json!("a"), json!("b")),
                ("ttl".into(), json!(300), json!(60)),
            ]
        );
    }

    #[test]
    fn an_added_set_element_is_one_whole_element_drift() {
        // Terraform's hash order put the new rule first: every old element shifted by one.
        let before = json!({"ingress": [rule(443, "10.0.0.0/8", "https")]});
        let after =
            json!({"ingress": [rule(22, "0.0.0.0/0", ""), rule(443, "10.0.0.0/8", "https")]});
        assert_eq!(
            diff(before, after),
            [("ingress.0".into(), json!(null), rule(22, "0.0.0.0/0", ""))]
        );
    }

    #[test]
    fn a_removed_set_element_is_one_whole_element_drift() {
        let before = json!({"ingress": [rule(22, "0.0.0.0/0", ""), rule(443, "10.0.0.0/8", "")]});
        let after = json!({"ingress": [rule(443, "10.0.0.0/8", "")]});
        assert_eq!(
            diff(before, after),
            [("ingress.0".into(), rule(22, "0.0.0.0/0", ""), json!(null))]
        );
    }

    #[test]
    fn an_element_changed_in_place_is_reported_at_its_leaves() {
        let before =
            json!({"ingress": [rule(80, "10.0.0.0/8", "web"), rule(443, "10.0.0.0/8", "https")]});
        let after =
            json!({"ingress": [rule(80, "10.0.0.0/8", "web"), rule(443, "0.0.0.0/0", "https")]});
        assert_eq!(
            diff(before, after),
            [(
                "ingress.1.cidr_blocks.0".into(),
                json!("10.0.0.0/8"),
                json!("0.0.0.0/0")
            )]
        );
    }

    #[test]
    fn a_nested_block_is_compared_field_by_field() {
        let found = diff(
            json!({"versioning": [{"enabled": true, "mfa_delete": false}]}),
            json!({"versioning": [{"enabled": false, "mfa_delete": false}]}),
        );
        assert_eq!(
            found,
            [("versioning.0.enabled".into(), json!(true), json!(false))]
        );
    }

    #[rstest]
    #[case::scalar_replaced(json!(["10.42.0.10"]), json!(["10.42.0.99"]), &[("records.0", json!("10.42.0.10"), json!("10.42.0.99"))])]
    #[case::scalar_added(json!(["b"]), json!(["a", "b"]), &[("records.0", json!(null), json!("a"))])]
    #[case::scalar_removed_and_added(
        json!(["a", "b", "c"]),
        json!(["b", "c", "x"]),
        &[("records.0", json!("a"), json!(null)), ("records.2", json!(null), json!("x"))]
    )]
    #[case::reordered_list(json!(["a", "b"]), json!(["b", "a"]), &[("records", json!(["a", "b"]), json!(["b", "a"]))])]
    #[case::duplicates(json!(["a", "a"]), json!(["a"]), &[("records.1", json!("a"), json!(null))])]
    #[case::null_to_values(json!(null), json!(["a"]), &[("records", json!(null), json!(["a"]))])]
    fn compares_scalar_lists_by_content(
        #[case] before: Value,
        #[case] after: Value,
        #[case] expected: &[(&str, Value, Value)],
    ) {
        let expected: Vec<_> = expected
            .iter()
            .map(|(p, e, a)| (p.to_string(), e.clone(), a.clone()))
            .collect();
        assert_eq!(
            diff(json!({"records": before}), json!({"records": after})),
            expected
        );
    }

    #[test]
    fn unrelated_elements_in_the_same_place_are_one_entry() {
        let before = json!({"ingress": [rule(443, "10.0.0.0/8", "https"), rule(80, "a", "")]});
        let after = json!({"ingress": [rule(22, "0.0.0.0/0", "ssh"), rule(80, "a", "")]});
        assert_eq!(
            diff(before, after),
            [(
                "ingress.0".into(),
                rule(443, "10.0.0.0/8", "https"),
                rule(22, "0.0.0.0/0", "ssh")
            )]
        );
    }

    #[test]
    fn json_documents_in_strings_compare_as_documents() {
        let found = diff(
            json!({"policy": "{\"a\": 1, \"b\": [2]}"}),
            json!({"policy": "{\"b\":[2],\"a\":1}"}),
        );
        assert_eq!(found, []);
    }
}
