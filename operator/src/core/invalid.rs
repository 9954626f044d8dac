//! References the schema cannot check (a missing Secret, key, ConfigMap or template): the
//! template stalls with the cause until the reference appears or the spec changes.

use std::time::Duration;

use jiff::Timestamp;
use pangea_api::{PangeaTemplateStatus, common::condition};

use super::{Next, Outcome};
use crate::{
    conditions,
    status::{self, Emit},
};

/// Event and condition reason for references the schema cannot check.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// How often a stalled template looks for its reference again (it may appear).
const RECHECK: Duration = Duration::from_secs(60);

/// `Stalled=True` + `Ready=False` with the cause, an `InvalidSpec` Event when it is new, and
/// a slow recheck. Nothing starts.
pub(super) fn stall(out: &mut Outcome, message: &str, generation: i64, now: Timestamp) {
    let stamp = status::stamp(now);
    let newly = conditions::set_condition(
        &mut out.status.conditions,
        condition::STALLED,
        true,
        INVALID_SPEC,
        message,
        generation,
        &stamp,
    );
    conditions::set_condition(
        &mut out.status.conditions,
        condition::READY,
        false,
        INVALID_SPEC,
        message,
        generation,
        &stamp,
    );
    if newly {
        out.emits.push(Emit {
            warning: true,
            reason: INVALID_SPEC,
            note: conditions::bound(message, conditions::MAX_MESSAGE_CHARS),
        });
    }
    out.next = Next::Requeue(RECHECK);
}

/// A reference problem that is now solved no longer stalls the template.
pub(super) fn lift(status: &mut PangeaTemplateStatus, generation: i64, now: Timestamp) {
    let stalled_by_us = conditions::find(&status.conditions, condition::STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == INVALID_SPEC);
    if stalled_by_us {
        conditions::set_condition(
            &mut status.conditions,
            condition::STALLED,
            false,
            "ReferencesResolved",
            "",
            generation,
            &status::stamp(now),
        );
    }
}
