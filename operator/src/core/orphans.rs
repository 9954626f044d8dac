//! A person's answer to `OrphansFound`: once each named orphan is imported or deleted, the
//! annotation `pangea.io/forget-orphans: <execution id>=<address>,<address>` tells the
//! operator to stop carrying them. It counts only while the execution it names is the last one
//! (the one that found them), so a forgotten annotation never silences orphans of a later
//! interruption. The stall lifts and the addresses go to the next executor, which drops them
//! from its own journal too (the local backend keeps one).

use jiff::Timestamp;
use pangea_api::{PangeaTemplateStatus, common::condition, template::ExecutionPhase};

use crate::{
    conditions,
    status::{self, Emit},
};

/// Annotation a person sets to forget resolved orphans.
pub const FORGET_ORPHANS_ANNOTATION: &str = "pangea.io/forget-orphans";
/// Reason of the executor's refusal to apply while orphans are unresolved.
const ORPHANS_FOUND: &str = "OrphansFound";
/// Event and condition reason once a person resolved them.
pub const ORPHANS_FORGOTTEN: &str = "OrphansForgotten";

/// The addresses `annotation` forgets, when it names the last execution and that execution
/// found orphans.
pub fn forgotten(status: &PangeaTemplateStatus, annotation: Option<&str>) -> Vec<String> {
    let Some((id, addresses)) = annotation.and_then(|a| a.split_once('=')) else {
        return Vec::new();
    };
    let last = status.last_execution.as_ref();
    let names_last = last.is_some_and(|e| {
        e.id == id.trim()
            && e.phase == ExecutionPhase::Failed
            && e.message
                .as_deref()
                .is_some_and(|m| m.starts_with(ORPHANS_FOUND))
    });
    if !names_last {
        return Vec::new();
    }
    addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Applies the annotation: drops the forgotten addresses from `inFlightCreates`, lifts the
/// `OrphansFound` stall and announces it once.
pub(super) fn forget(
    status: &mut PangeaTemplateStatus,
    emits: &mut Vec<Emit>,
    annotation: Option<&str>,
    generation: i64,
    now: Timestamp,
) {
    let addresses = forgotten(status, annotation);
    if addresses.is_empty() {
        return;
    }
    let before = status.in_flight_creates.len();
    status
        .in_flight_creates
        .retain(|c| !addresses.contains(&c.address));
    let stalled = conditions::find(&status.conditions, condition::STALLED)
        .is_some_and(|c| c.status == "True" && c.reason == ORPHANS_FOUND);
    if before == status.in_flight_creates.len() && !stalled {
        return;
    }
    let message = format!(
        "a person resolved {}; the next execution goes on without them",
        addresses.join(", ")
    );
    conditions::set_condition(
        &mut status.conditions,
        condition::STALLED,
        false,
        ORPHANS_FORGOTTEN,
        &message,
        generation,
        &status::stamp(now),
    );
    emits.push(Emit {
        warning: false,
        reason: status::reason::ORPHANS_FORGOTTEN,
        note: conditions::bound(&message, conditions::MAX_MESSAGE_CHARS),
    });
}

/// The command that answers an `OrphansFound` stall, appended to its condition once.
pub(super) fn hint(status: &mut PangeaTemplateStatus, namespace: &str, name: &str) {
    let Some(last) = status.last_execution.as_ref() else {
        return;
    };
    let found = last.phase == ExecutionPhase::Failed
        && last
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with(ORPHANS_FOUND));
    if !found || status.in_flight_creates.is_empty() {
        return;
    }
    let addresses: Vec<&str> = status
        .in_flight_creates
        .iter()
        .map(|c| c.address.as_str())
        .collect();
    let command = format!(
        " Once each is imported or deleted: kubectl annotate -n {namespace} pangeatemplate \
         {name} {FORGET_ORPHANS_ANNOTATION}='{}={}' --overwrite",
        last.id,
        addresses.join(",")
    );
    if let Some(stalled) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == condition::STALLED && c.reason == ORPHANS_FOUND)
        && !stalled.message.contains(FORGET_ORPHANS_ANNOTATION)
    {
        stalled.message = conditions::bound(
            &format!("{}{command}", stalled.message),
            conditions::MAX_MESSAGE_CHARS,
        );
    }
}

#[cfg(test)]
mod tests {
    use pangea_api::{
        exec::InFlightCreate,
        template::{ExecutionStatus, PangeaTemplateStatus},
    };

    use super::*;

    fn now() -> Timestamp {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    fn create(address: &str) -> InFlightCreate {
        InFlightCreate {
            address: address.into(),
            resource_type: address.split('.').next().unwrap().into(),
        }
    }

    fn stalled_on_orphans() -> PangeaTemplateStatus {
        let mut s = PangeaTemplateStatus {
            last_execution: Some(ExecutionStatus {
                id: "team.web.apply.1".into(),
                kind: pangea_api::exec::ExecutionKind::Apply,
                phase: ExecutionPhase::Failed,
                start_time: None,
                completion_time: None,
                message: Some("OrphansFound: an interrupted apply may have created 2 ...".into()),
                consecutive_failures: 1,
            }),
            in_flight_creates: vec![create("aws_vpc.main"), create("aws_route53_zone.z")],
            ..PangeaTemplateStatus::default()
        };
        conditions::set_condition(
            &mut s.conditions,
            condition::STALLED,
            true,
            ORPHANS_FOUND,
            "an interrupted apply may have created 2 resource(s)",
            3,
            &status::stamp(now()),
        );
        s
    }

    #[test]
    fn the_stall_names_the_command_that_answers_it_once() {
        let mut s = stalled_on_orphans();
        hint(&mut s, "team", "web");
        hint(&mut s, "team", "web");
        let message = &conditions::find(&s.conditions, condition::STALLED)
            .unwrap()
            .message;
        assert!(message.contains("kubectl annotate -n team pangeatemplate web pangea.io/forget-orphans='team.web.apply.1=aws_vpc.main,aws_route53_zone.z' --overwrite"), "{message}");
        assert_eq!(message.matches("kubectl").count(), 1);
    }

    #[test]
    fn forgetting_the_named_orphans_lifts_the_stall_once() {
        let mut s = stalled_on_orphans();
        let mut emits = Vec::new();
        let note = Some("team.web.apply.1=aws_vpc.main, aws_route53_zone.z");
        forget(&mut s, &mut emits, note, 3, now());
        assert!(s.in_flight_creates.is_empty());
        let stalled = conditions::find(&s.conditions, condition::STALLED).unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("False", ORPHANS_FORGOTTEN)
        );
        assert_eq!(emits.len(), 1);
        forget(&mut s, &mut emits, note, 3, now());
        assert_eq!(emits.len(), 1, "said once");
        assert_eq!(forgotten(&s, note), ["aws_vpc.main", "aws_route53_zone.z"]);
    }

    #[test]
    fn an_annotation_for_another_execution_or_without_orphans_found_changes_nothing() {
        let mut s = stalled_on_orphans();
        let mut emits = Vec::new();
        forget(
            &mut s,
            &mut emits,
            Some("team.web.apply.0=aws_vpc.main"),
            3,
            now(),
        );
        forget(&mut s, &mut emits, Some("aws_vpc.main"), 3, now());
        assert_eq!(s.in_flight_creates.len(), 2);
        assert!(emits.is_empty());
        s.last_execution.as_mut().unwrap().message = Some("TerraformFailed: x".into());
        assert!(forgotten(&s, Some("team.web.apply.1=aws_vpc.main")).is_empty());
    }
}
