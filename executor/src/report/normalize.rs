//! Equality that ignores what is not drift: null vs empty collections, number spelling, key
//! order, and whitespace or key order inside JSON documents stored as strings (IAM policies).

use serde_json::{Map, Value};

/// Null, `[]` or `{}`: providers flip between these without anything changing remotely
/// (`tags: null -> {}` right after a create is the common case).
pub fn is_empty_like(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// Whether two values mean the same thing remotely.
pub fn same(a: &Value, b: &Value) -> bool {
    if is_empty_like(a) && is_empty_like(b) {
        return true;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::String(x), Value::String(y)) => x == y || same_json_text(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => same_objects(x, y),
        _ => a == b,
    }
}

/// Two objects are the same when every key of either side has the same value, a missing key
/// counting as null.
pub fn same_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    let null = Value::Null;
    x.iter().all(|(k, v)| same(v, y.get(k).unwrap_or(&null)))
        && y.iter()
            .filter(|(k, _)| !x.contains_key(*k))
            .all(|(_, v)| is_empty_like(v))
}

fn same_number(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if x == y {
        return true;
    }
    // `1` and `1.0` are one number; integers beyond f64 precision compared above stay exact.
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b && (x.is_f64() || y.is_f64()),
        _ => false,
    }
}

/// Strings holding JSON documents (policies) are compared as documents, since AWS returns them
/// re-serialised with other whitespace and key order.
fn same_json_text(x: &str, y: &str) -> bool {
    let looks_like_document =
        |s: &str| matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'['));
    if !looks_like_document(x) || !looks_like_document(y) {
        return false;
    }
    match (
        serde_json::from_str::<Value>(x),
        serde_json::from_str::<Value>(y),
    ) {
        (Ok(a), Ok(b)) => same(&a, &b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    #[rstest]
    #[case::null_vs_empty_map(json!(null), json!({}), true)]
    #[case::empty_list_vs_null(json!([]), json!(null), true)]
    #[case::empty_list_vs_empty_map(json!([]), json!({}), true)]
    #[case::nested_empties(json!({"a": null, "b": 1}), json!({"a": [], "b": 1}), true)]
    #[case::missing_key_vs_empty(json!({"b": 1}), json!({"a": {}, "b": 1}), true)]
    #[case::missing_key_vs_value(json!({"b": 1}), json!({"a": "x", "b": 1}), false)]
    #[case::number_spelling(json!(1), json!(1.0), true)]
    #[case::numbers_differ(json!(1), json!(2), false)]
    #[case::empty_string_is_a_value(json!(""), json!(null), false)]
    #[case::false_is_a_value(json!(false), json!(null), false)]
    #[case::policy_whitespace(
        json!(r#"{"Version":"2012-10-17","Statement":[]}"#),
        json!("{\n  \"Statement\": [],\n  \"Version\": \"2012-10-17\"\n}"),
        true
    )]
    #[case::policy_changed(
        json!(r#"{"Effect":"Allow"}"#),
        json!(r#"{"Effect":"Deny"}"#),
        false
    )]
    #[case::list_order_matters(json!(["a", "b"]), json!(["b", "a"]), false)]
    fn compares_after_normalisation(#[case] a: Value, #[case] b: Value, #[case] expected: bool) {
        assert_eq!(same(&a, &b), expected);
        assert_eq!(same(&b, &a), expected, "symmetric");
    }
}
