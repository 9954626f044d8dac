//! Conditions on a PangeaTemplate status: set one so that `lastTransitionTime` moves only when
//! its status flips, keep the list in one stable order, read them back.
//!
//! Every status transition in [`crate::status`] goes through [`set_condition`]; its return
//! value (changed or not) is what keeps idle templates from being written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use pangea_api::common::condition;

/// Order in which known condition types appear; unknown types follow, by name. A fixed order
/// keeps the list identical however the conditions were set, so equal content compares equal.
const ORDER: [&str; 6] = [
    condition::READY,
    condition::DRIFTED,
    condition::COMPLIANT,
    condition::RECONCILING,
    condition::STALLED,
    condition::REMEDIATION_BLOCKED,
];

/// Longest message kept; the API server allows 32 KiB but status is read by people.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// Sets condition `type_`. Keeps `lastTransitionTime` unless `status` flips (reason, message
/// and observedGeneration may change without a transition). Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now: &Time,
) -> bool {
    let wanted = Condition {
        type_: type_.to_owned(),
        status: status_str(status).to_owned(),
        reason: sanitize_reason(reason),
        message: bound(message, MAX_MESSAGE_CHARS),
        observed_generation: Some(generation),
        last_transition_time: now.clone(),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let transition_time = if existing.status == wanted.status {
                existing.last_transition_time.clone()
            } else {
                wanted.last_transition_time.clone()
            };
            let wanted = Condition {
                last_transition_time: transition_time,
                ..wanted
            };
            if *existing == wanted {
                return false;
            }
            *existing = wanted;
            true
        }
        None => {
            conditions.push(wanted);
            conditions.sort_by(|a, b| rank(&a.type_).cmp(&rank(&b.type_)));
            true
        }
    }
}

/// The condition of this type, if set.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition is set and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// The condition if it is `True` and was set for `generation`: a condition from an older
/// generation describes a spec that no longer exists.
pub fn true_for<'a>(
    conditions: &'a [Condition],
    type_: &str,
    generation: i64,
) -> Option<&'a Condition> {
    find(conditions, type_)
        .filter(|c| c.status == "True" && c.observed_generation == Some(generation))
}

/// `True` / `False`, as the API spells condition statuses.
pub fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// `s` cut to at most `max` characters, marking the cut with `…`.
pub fn bound(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when cut: the
/// apiserver limits an Event's note to 1024 bytes and rejects the whole Event beyond.
pub fn bound_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Longest Event note the apiserver accepts, in bytes.
pub const MAX_EVENT_NOTE_BYTES: usize = 1024;

fn rank(type_: &str) -> (usize, &str) {
    let known = ORDER.iter().position(|t| *t == type_);
    (known.unwrap_or(ORDER.len()), type_)
}

/// Condition reasons must be CamelCase identifiers (`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`);
/// reasons come from the executor too, so anything else is reduced to that alphabet.
fn sanitize_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(128)
        .collect();
    match cleaned.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => cleaned,
        _ => "Unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().unwrap())
    }

    #[test]
    fn new_condition_is_added_with_now() {
        let mut cs = Vec::new();
        assert!(set_condition(
            &mut cs,
            "Ready",
            true,
            "Applied",
            "ok",
            3,
            &at("2025-01-01T00:00:00Z")
        ));
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].observed_generation, Some(3));
        assert_eq!(cs[0].last_transition_time, at("2025-01-01T00:00:00Z"));
    }

    #[test]
    fn same_content_is_no_change() {
        let mut cs = Vec::new();
        set_condition(
            &mut cs,
            "Ready",
            true,
            "Applied",
            "ok",
            3,
            &at("2025-01-01T00:00:00Z"),
        );
        let before = cs.clone();
        assert!(!set_condition(
            &mut cs,
            "Ready",
            true,
            "Applied",
            "ok",
            3,
            &at("2025-01-02T00:00:00Z")
        ));
        assert_eq!(cs, before);
    }

    #[test]
    fn reason_change_keeps_transition_time() {
        let mut cs = Vec::new();
        set_condition(
            &mut cs,
            "Ready",
            true,
            "Applied",
            "ok",
            3,
            &at("2025-01-01T00:00:00Z"),
        );
        assert!(set_condition(
            &mut cs,
            "Ready",
            true,
            "UpToDate",
            "still ok",
            4,
            &at("2025-01-02T00:00:00Z")
        ));
        assert_eq!(cs[0].reason, "UpToDate");
        assert_eq!(cs[0].message, "still ok");
        assert_eq!(cs[0].observed_generation, Some(4));
        assert_eq!(cs[0].last_transition_time, at("2025-01-01T00:00:00Z"));
    }

    #[test]
    fn status_flip_moves_transition_time() {
        let mut cs = Vec::new();
        set_condition(
            &mut cs,
            "Ready",
            true,
            "Applied",
            "ok",
            3,
            &at("2025-01-01T00:00:00Z"),
        );
        assert!(set_condition(
            &mut cs,
            "Ready",
            false,
            "Failed",
            "no",
            3,
            &at("2025-01-02T00:00:00Z")
        ));
        assert_eq!(cs[0].status, "False");
        assert_eq!(cs[0].last_transition_time, at("2025-01-02T00:00:00Z"));
    }

    #[test]
    fn order_is_stable_whatever_the_insertion_order() {
        let now = at("2025-01-01T00:00:00Z");
        let mut a = Vec::new();
        for t in ["Custom", "RemediationBlocked", "Drifted", "Ready", "Alpha"] {
            set_condition(&mut a, t, true, "R", "", 1, &now);
        }
        let mut b = Vec::new();
        for t in ["Ready", "Alpha", "Drifted", "Custom", "RemediationBlocked"] {
            set_condition(&mut b, t, true, "R", "", 1, &now);
        }
        let types: Vec<_> = a.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready", "Drifted", "RemediationBlocked", "Alpha", "Custom"]
        );
        assert_eq!(a, b);
    }

    #[test]
    fn readers() {
        let mut cs = Vec::new();
        let now = at("2025-01-01T00:00:00Z");
        set_condition(
            &mut cs,
            "Stalled",
            true,
            "TemplateError",
            "main.rb:3",
            5,
            &now,
        );
        set_condition(
            &mut cs,
            "Ready",
            false,
            "TemplateError",
            "main.rb:3",
            5,
            &now,
        );
        assert!(is_true(&cs, "Stalled"));
        assert!(!is_true(&cs, "Ready"));
        assert!(!is_true(&cs, "Drifted"));
        assert!(true_for(&cs, "Stalled", 5).is_some());
        assert!(true_for(&cs, "Stalled", 6).is_none());
        assert!(true_for(&cs, "Ready", 5).is_none());
        assert_eq!(find(&cs, "Stalled").unwrap().message, "main.rb:3");
    }

    #[test]
    fn reasons_and_messages_are_bounded_and_valid() {
        let mut cs = Vec::new();
        let now = at("2025-01-01T00:00:00Z");
        set_condition(
            &mut cs,
            "Ready",
            false,
            "bad reason!",
            &"x".repeat(5000),
            1,
            &now,
        );
        assert_eq!(cs[0].reason, "badreason");
        assert_eq!(cs[0].message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cs[0].message.ends_with('…'));
        set_condition(&mut cs, "Ready", false, "9lives", "", 1, &now);
        assert_eq!(cs[0].reason, "Unknown");
        set_condition(&mut cs, "Ready", false, "", "", 1, &now);
        assert_eq!(cs[0].reason, "Unknown");
    }

    #[test]
    fn bound_respects_char_boundaries() {
        assert_eq!(bound("äöü", 3), "äöü");
        assert_eq!(bound("äöüß", 3), "äö…");
        assert_eq!(bound("", 0), "");
    }

    #[test]
    fn event_notes_are_cut_in_bytes_at_a_character_boundary() {
        let long = "é".repeat(700);
        let cut = bound_bytes(&long, MAX_EVENT_NOTE_BYTES);
        assert!(cut.len() <= MAX_EVENT_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(bound_bytes("short", MAX_EVENT_NOTE_BYTES), "short");
    }
}
