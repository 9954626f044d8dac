//! The state lock a dead executor pod may have left held. Terraform's `kubernetes` backend
//! locks with a Lease (`spec.holderIdentity` = lock id, annotation `app.terraform.io/lock-info`
//! = who, when, what). A pod killed mid-command never unlocks, and every later run would wait
//! on the lock and fail. The operator knows when the pod lived and that it is dead, so it
//! releases a lock that pod took — and only such a lock; one taken by anyone else is named,
//! never touched.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use pangea_api::exec::StateLockRef;
use serde::Deserialize;

/// Terraform's lock-info annotation on the Lease.
pub const LOCK_INFO: &str = "app.terraform.io/lock-info";
/// Clock slack between the node (lock `Created`) and the pod's recorded times (seconds).
const SLACK: SignedDuration = SignedDuration::from_secs(2);

/// When and as whom the dead pod ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPod {
    /// Pod name (terraform's `Who` ends with `@<hostname>`, the pod name without host network).
    pub name: String,
    /// When its container started (or the Job, when the pod is gone).
    pub started: Timestamp,
    /// When it ended (or now).
    pub ended: Timestamp,
}

/// Terraform's lock info (the fields used here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LockInfo {
    /// Lock id.
    #[serde(rename = "ID")]
    pub id: String,
    /// `OperationTypeApply`, `OperationTypePlan`, ...
    #[serde(default)]
    pub operation: String,
    /// `user@host`.
    #[serde(default)]
    pub who: String,
    /// When the lock was taken.
    #[serde(default)]
    pub created: Option<Timestamp>,
}

/// What the dead pod left, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Nothing to say: the backend's lock cannot be read by the operator.
    Unknown,
    /// The pod died before it recorded where its lock is, which it does before any command
    /// that takes the lock.
    NotTaken,
    /// Not held.
    Free,
    /// The dead pod held it; the operator released it.
    Released(LockInfo),
    /// Held by someone else (or at a time the pod did not live): left alone.
    HeldByOther(LockInfo),
    /// The dead pod held it and releasing it failed.
    StillHeld(LockInfo, String),
}

impl LockState {
    /// One sentence for the execution's message.
    pub fn sentence(&self) -> String {
        match self {
            Self::Unknown => String::new(),
            Self::NotTaken => "It ended before taking the state lock.".into(),
            Self::Free => "The state lock is free.".into(),
            Self::Released(i) => format!(
                "The state lock it held ({}) was released: its holder is dead.",
                describe(i)
            ),
            Self::HeldByOther(i) => format!(
                "The state lock is still held ({}), not by this execution: release it with \
                 `terraform force-unlock {}` once its holder is gone.",
                describe(i),
                i.id
            ),
            Self::StillHeld(i, why) => format!(
                "The state lock it held is still held ({}): releasing it failed: {why}",
                describe(i)
            ),
        }
    }
}

fn describe(i: &LockInfo) -> String {
    let when = i.created.map(|t| t.to_string()).unwrap_or_default();
    format!("id {}, {} by {} at {when}", i.id, i.operation, i.who)
}

/// Whether `lease` is held, and if so, whether `pod` took it.
pub fn verdict(lease: &Lease, pod: &DeadPod) -> Verdict {
    let held = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .is_some_and(|h| !h.is_empty());
    if !held {
        return Verdict::Free;
    }
    let info = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LOCK_INFO))
        .and_then(|text| serde_json::from_str::<LockInfo>(text).ok())
        .unwrap_or_default();
    if taken_by(&info, pod) {
        Verdict::TakenByDeadPod(info)
    } else {
        Verdict::Other(info)
    }
}

/// [`verdict`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody holds it.
    Free,
    /// The dead pod took it.
    TakenByDeadPod(LockInfo),
    /// Someone else holds it.
    Other(LockInfo),
}

/// The pod's own hostname in `Who`, or — when pods share the node's name (host network) — a
/// lock taken while the pod lived, which (one execution per template at a time) is its own.
fn taken_by(info: &LockInfo, pod: &DeadPod) -> bool {
    if info.who.ends_with(&format!("@{}", pod.name)) {
        return true;
    }
    info.created.is_some_and(|t| {
        t >= pod.started.saturating_sub(SLACK).unwrap_or(pod.started)
            && t <= pod.ended.saturating_add(SLACK).unwrap_or(pod.ended)
    })
}

/// Reads the lock at `at` and releases it when `pod` took it. The release is conditional on
/// the Lease's resource version, so a lock taken by someone else in between is left alone.
pub async fn settle(client: &Client, at: &StateLockRef, pod: &DeadPod) -> LockState {
    let StateLockRef::KubernetesLease { namespace, name } = at;
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let lease = match leases.get_opt(name).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return LockState::Free,
        Err(e) => {
            tracing::warn!(error = %e, lease = %name, "reading the state lock");
            return LockState::Unknown;
        }
    };
    match verdict(&lease, pod) {
        Verdict::Free => LockState::Free,
        Verdict::Other(info) => LockState::HeldByOther(info),
        Verdict::TakenByDeadPod(info) => match release(&leases, &lease).await {
            Ok(()) => {
                tracing::info!(lease = %name, lock = %info.id, pod = %pod.name, "released the state lock of a dead executor pod");
                LockState::Released(info)
            }
            Err(e) => LockState::StillHeld(info, e.to_string()),
        },
    }
}

async fn release(leases: &Api<Lease>, lease: &Lease) -> Result<(), kube::Error> {
    let name = lease.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": lease.metadata.resource_version,
            "annotations": {LOCK_INFO: null},
        },
        "spec": {"holderIdentity": null},
    });
    leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, info: Option<&str>) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "lock-tfstate-default-web-state",
                "annotations": info.map(|i| serde_json::json!({LOCK_INFO: i}))},
            "spec": {"holderIdentity": holder},
        }))
        .unwrap()
    }

    fn pod() -> DeadPod {
        DeadPod {
            name: "web-apply-1-abcde".into(),
            started: "2026-12-01T10:00:00Z".parse().unwrap(),
            ended: "2026-12-01T10:00:30Z".parse().unwrap(),
        }
    }

    fn info(who: &str, created: &str) -> String {
        format!(
            r#"{{"ID":"abc","Operation":"OperationTypeApply","Info":"","Who":"{who}","Version":"1.11.0","Created":"{created}","Path":""}}"#
        )
    }

    #[test]
    fn an_empty_holder_is_free() {
        assert_eq!(verdict(&lease(None, None), &pod()), Verdict::Free);
        assert_eq!(verdict(&lease(Some(""), None), &pod()), Verdict::Free);
    }

    #[test]
    fn a_lock_taken_while_the_pod_lived_is_its_own() {
        let text = info("@node-1", "2026-12-01T10:00:12.5Z");
        let v = verdict(&lease(Some("abc"), Some(&text)), &pod());
        assert!(
            matches!(v, Verdict::TakenByDeadPod(ref i) if i.id == "abc" && i.operation == "OperationTypeApply"),
            "{v:?}"
        );
    }

    #[test]
    fn the_pods_own_hostname_names_it_whenever_it_was_taken() {
        let text = info("@web-apply-1-abcde", "2026-12-01T09:00:00Z");
        assert!(matches!(
            verdict(&lease(Some("abc"), Some(&text)), &pod()),
            Verdict::TakenByDeadPod(_)
        ));
    }

    #[test]
    fn a_lock_taken_before_or_after_the_pod_is_someone_elses() {
        for created in ["2026-12-01T09:59:00Z", "2026-12-01T10:01:00Z"] {
            let text = info("alice@laptop", created);
            assert!(matches!(
                verdict(&lease(Some("abc"), Some(&text)), &pod()),
                Verdict::Other(ref i) if i.who == "alice@laptop"
            ));
        }
    }

    #[test]
    fn a_held_lock_without_readable_info_is_never_released() {
        assert!(matches!(
            verdict(&lease(Some("abc"), Some("not json")), &pod()),
            Verdict::Other(_)
        ));
    }

    #[test]
    fn sentences_name_the_lock_and_how_to_release_a_foreign_one() {
        let i = LockInfo {
            id: "abc".into(),
            operation: "OperationTypeApply".into(),
            who: "alice@laptop".into(),
            created: None,
        };
        assert!(
            LockState::HeldByOther(i.clone())
                .sentence()
                .contains("terraform force-unlock abc")
        );
        assert!(LockState::Released(i).sentence().contains("released"));
        assert_eq!(LockState::Unknown.sentence(), "");
    }
}
