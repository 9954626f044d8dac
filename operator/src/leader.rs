//! Leader election over a `coordination.k8s.io` Lease: only the leader reconciles, starts
//! executions and writes status. `kube-lease-manager` acquires, renews and releases the Lease;
//! this module decides when leadership is over. A leader that cannot confirm its own renewal
//! stops well before the Lease could expire for a standby (which takes it only after expiry),
//! so two operators never act at once even when the leader is cut off from the apiserver —
//! the crate alone would keep reporting "leader" while its renewals fail.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

/// How one operator takes part in the election.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This process's identity (unique per process: pod name plus a random part).
    pub identity: String,
    /// How long a renewal keeps the Lease for its holder.
    pub lease_duration: Duration,
}

impl ElectionConfig {
    /// The holder renews when a third of the lease duration has passed, so two renewals can
    /// fail before it steps down.
    fn renew_grace(&self) -> u64 {
        (self.lease_duration.as_secs() * 2 / 3).max(1)
    }

    /// A leader whose last confirmed renewal is older than this steps down: a margin before
    /// the Lease expires, for clock skew and the time stopping takes.
    fn step_down_after(&self) -> Duration {
        let margin = (self.lease_duration / 5).max(Duration::from_secs(2));
        self.lease_duration.saturating_sub(margin)
    }

    /// How often the leader reads the Lease back.
    fn check_every(&self) -> Duration {
        (self.lease_duration / 10).max(Duration::from_millis(500))
    }
}

/// A unique identity for this process: the pod's name (or the host's) and a random part, so
/// a restarted container never mistakes the Lease its predecessor held for its own.
pub fn identity(pod_name: Option<&str>) -> String {
    let base = pod_name
        .map(str::to_owned)
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "pangea-operator".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{base}_{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Whether this process may act now; checked right before every start and status write.
#[derive(Clone, Debug)]
pub struct Leading(Arc<AtomicBool>);

impl Leading {
    /// For an operator without election: always the leader.
    pub fn always() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    fn standby() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    /// Whether this process leads.
    pub fn holds(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn set(&self, leading: bool) {
        self.0.store(leading, Ordering::SeqCst);
    }
}

/// Election failures.
#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    /// The Lease could not be created or read.
    #[error("leader election Lease {namespace}/{name}: {source}")]
    Lease {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: LeaseManagerError,
    },
}

/// Why leadership ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Another process holds the Lease.
    Taken(Option<String>),
    /// This process could not confirm a renewal in time.
    NotRenewed,
    /// The renewing task stopped.
    ElectorStopped,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Taken(Some(holder)) => write!(f, "the Lease is held by {holder}"),
            Self::Taken(None) => f.write_str("the Lease has no holder"),
            Self::NotRenewed => f.write_str("the Lease could not be renewed in time"),
            Self::ElectorStopped => f.write_str("the elector stopped"),
        }
    }
}

/// What the Lease says about this process's leadership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Held by us, last renewed at this time.
    Held(jiff::Timestamp),
    /// Held by someone else, or by nobody.
    NotHeld(Option<String>),
}

/// Reads a Lease's spec for `identity`.
pub fn verdict(spec: Option<&LeaseSpec>, identity: &str) -> Verdict {
    let holder = spec.and_then(|s| s.holder_identity.clone());
    match (holder.as_deref(), spec.and_then(|s| s.renew_time.as_ref())) {
        (Some(h), Some(renewed)) if h == identity => Verdict::Held(renewed.0),
        _ => Verdict::NotHeld(holder),
    }
}

/// Whether a leader last confirmed at `renewed` must step down at `now`.
pub fn stale(renewed: jiff::Timestamp, now: jiff::Timestamp, step_down_after: Duration) -> bool {
    let age = now.duration_since(renewed);
    age > jiff::SignedDuration::try_from(step_down_after).unwrap_or(jiff::SignedDuration::MAX)
}

/// One process's part in the election.
pub struct Elector {
    config: ElectionConfig,
    leases: Api<Lease>,
    leading: Leading,
    changes: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Elector {
    /// Joins the election (creating the Lease if needed); campaigns in the background.
    pub async fn start(client: Client, config: ElectionConfig) -> Result<Self, ElectionError> {
        let error = |source| ElectionError::Lease {
            namespace: config.namespace.clone(),
            name: config.lease_name.clone(),
            source,
        };
        let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
            .with_namespace(&config.namespace)
            .with_identity(&config.identity)
            .with_duration(config.lease_duration.as_secs().max(2))
            .with_grace(config.renew_grace())
            .build()
            .await
            .map_err(error)?;
        let (changes, task) = manager.watch().await;
        tracing::info!(lease = %config.lease_name, namespace = %config.namespace, identity = %config.identity, "joined leader election");
        Ok(Self {
            leases: Api::namespaced(client, &config.namespace),
            config,
            leading: Leading::standby(),
            changes,
            task,
        })
    }

    /// The handle checked before acting.
    pub fn leading(&self) -> Leading {
        self.leading.clone()
    }

    /// Waits until this process leads. `false` when the elector stopped first.
    pub async fn acquired(&mut self) -> bool {
        match self.changes.wait_for(|leading| *leading).await {
            Ok(_) => {
                self.leading.set(true);
                tracing::info!(identity = %self.config.identity, "leading");
                true
            }
            Err(_) => false,
        }
    }

    /// Resolves when leadership is over; by then [`Leading::holds`] is already false.
    pub async fn lost(&mut self) -> Loss {
        let loss = self.watch_for_loss().await;
        self.leading.set(false);
        tracing::error!(identity = %self.config.identity, reason = %loss, "leadership lost");
        loss
    }

    async fn watch_for_loss(&mut self) -> Loss {
        let mut confirmed = jiff::Timestamp::now();
        let mut tick = tokio::time::interval(self.config.check_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = self.changes.changed() => match changed {
                    Err(_) => return Loss::ElectorStopped,
                    Ok(()) if !*self.changes.borrow_and_update() => return Loss::Taken(None),
                    Ok(()) => {}
                },
                _ = tick.tick() => {
                    let read = tokio::time::timeout(self.config.check_every(), self.leases.get(&self.config.lease_name)).await;
                    match read {
                        Ok(Ok(lease)) => match verdict(lease.spec.as_ref(), &self.config.identity) {
                            Verdict::Held(renewed) => confirmed = confirmed.max(renewed),
                            Verdict::NotHeld(holder) => return Loss::Taken(holder),
                        },
                        Ok(Err(error)) => tracing::warn!(%error, "reading the leader Lease"),
                        Err(_) => tracing::warn!("reading the leader Lease timed out"),
                    }
                    if stale(confirmed, jiff::Timestamp::now(), self.config.step_down_after()) {
                        return Loss::NotRenewed;
                    }
                }
            }
        }
    }

    /// Steps down: releases the Lease (a standby takes it at once instead of waiting for it
    /// to expire), bounded so a dead apiserver cannot hold up the exit.
    pub async fn release(self) {
        self.leading.set(false);
        drop(self.changes);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader Lease released"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "releasing the leader Lease"),
            Ok(Err(error)) => tracing::warn!(%error, "leader election task failed"),
            Err(_) => tracing::warn!("releasing the leader Lease timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn spec(holder: Option<&str>, renewed: Option<&str>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(|t| MicroTime(t.parse().unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_ours_only_with_our_identity_and_a_renewal() {
        let t = "2026-12-01T10:00:00Z";
        assert_eq!(
            verdict(Some(&spec(Some("a_1"), Some(t))), "a_1"),
            Verdict::Held(t.parse().unwrap())
        );
        assert_eq!(
            verdict(Some(&spec(Some("b_2"), Some(t))), "a_1"),
            Verdict::NotHeld(Some("b_2".into()))
        );
        assert_eq!(
            verdict(Some(&spec(None, None)), "a_1"),
            Verdict::NotHeld(None)
        );
        assert_eq!(verdict(None, "a_1"), Verdict::NotHeld(None));
        assert_eq!(
            verdict(Some(&spec(Some("a_1"), None)), "a_1"),
            Verdict::NotHeld(Some("a_1".into()))
        );
    }

    #[test]
    fn a_leader_steps_down_before_a_standby_may_take_the_lease() {
        let config = ElectionConfig {
            namespace: "ns".into(),
            lease_name: "l".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
        };
        let after = config.step_down_after();
        assert!(after < config.lease_duration);
        assert_eq!(after, Duration::from_secs(12));
        // Renewals happen every 5 s: two may fail before stepping down.
        assert_eq!(config.lease_duration.as_secs() - config.renew_grace(), 5);
        let renewed: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let at = |s: i64| renewed + jiff::SignedDuration::from_secs(s);
        assert!(!stale(renewed, at(11), after));
        assert!(!stale(renewed, at(12), after));
        assert!(stale(renewed, at(13), after));
        // A clock behind the renewal is not a reason to step down.
        assert!(!stale(renewed, at(-3), after));
    }

    #[test]
    fn identity_names_the_pod_and_adds_a_random_part() {
        let a = identity(Some("pangea-operator-7d9f-abc"));
        assert!(a.starts_with("pangea-operator-7d9f-abc_"), "{a}");
        assert!(!identity(None).is_empty());
    }

    #[test]
    fn leading_handle_is_shared() {
        let leading = Leading::standby();
        let seen = leading.clone();
        assert!(!seen.holds());
        leading.set(true);
        assert!(seen.holds());
        assert!(Leading::always().holds());
    }
}
