//! Drift, plan and compliance reports built from Terraform state and plan JSON (pure).
//!
//! Where it sits: the runner leaves a saved plan file; [`read_states`] takes the two states out
//! of it (the only I/O here), [`build_drift_report`] turns them into the typed
//! [`DriftReport`](pangea_api::report::DriftReport) (diff, ignore rules, severity, computed
//! mirrors, redaction, size bounds), and [`build_plan_report`] reads a normal plan's
//! `terraform show -json` into a [`PlanReport`](pangea_api::report::PlanReport) whose id
//! ([`plan_id`]) approvals bind to.

mod diff;
mod drift;
mod glob;
mod ignore;
mod mirror;
mod normalize;
mod path;
mod plan;
mod planfile;
mod render;
mod severity;
mod state;

use std::path::PathBuf;

pub use self::{
    drift::{DriftOptions, ReportBounds, build_drift_report},
    plan::{
        DEFAULT_MAX_CHANGES, after_interruption, build_plan_report, plan_content, plan_id,
        stamp_plan,
    },
    planfile::{PREV_STATE, REFRESHED_STATE, read_states},
    render::REDACTED,
    severity::UNCLASSIFIED,
    state::{InstanceV4, ResourceV4, StateV4, instance_address},
};

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The plan file could not be opened or read.
    #[error("cannot read plan file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The plan file is not a readable zip archive.
    #[error("{path} is not a readable plan file")]
    PlanFile {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// The plan file lacks a member every plan has.
    #[error("plan file {path} has no {member}")]
    MissingMember { path: PathBuf, member: &'static str },
    /// A state in the plan file is not Terraform state JSON.
    #[error("{member} in plan file {path} is not a Terraform state")]
    State {
        path: PathBuf,
        member: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A severity or ignore rule has an invalid glob (a mistake in the template's spec).
    #[error("invalid glob {pattern:?} in a drift rule")]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },
}
