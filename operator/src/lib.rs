//! Kubernetes controllers for `PangeaTemplate` and `PangeaStack`.
//!
//! The pure core (no client, no I/O, no clock reads; `now` is always an input):
//! - [`core`]: one reconcile as a pure `step` (record a finished result, resolve-or-stall,
//!   decide, deletion) and `carry_out`, the one order its outcome is put into effect.
//! - [`decide`]: what to do next for one template, from its spec, status and running execution.
//! - [`status`]: how the status changes when an execution starts or finishes, or a decision
//!   blocks; the Events to publish; whether anything changed at all (to skip writes).
//! - [`conditions`]: setting conditions so `lastTransitionTime` moves only on transitions.
//! - [`schedule`]: maintenance windows, jitter and retry backoff.
//!
//! The runtime around it (watchers, execution backends, server-side-apply status writes,
//! Events, metrics) calls these functions and does the I/O.

pub mod conditions;
pub mod core;
pub mod decide;
pub mod schedule;
pub mod status;

// The runtime: I/O around the pure core.
pub mod backend;
pub mod context;
pub mod controller;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod request;
pub mod resolve;
pub mod run;
pub mod secrets;
