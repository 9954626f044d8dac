//! Types only: the `pangea.io/v1alpha1` custom resources users write, and the contract between
//! the operator and the executor. Nothing here talks to a cluster or runs a process.
//!
//! - [`template`]: `PangeaTemplate` (one Pangea template kept in sync with reality).
//! - [`stack`]: `PangeaStack` (templates ordered by dependencies).
//! - [`report`]: drift / plan / compliance reports, shared by CR status and execution results.
//! - [`exec`]: the execution request and result exchanged with `pangea-executor`.

pub mod common;
pub mod exec;
pub mod report;
pub mod stack;
pub mod template;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use stack::{PangeaStack, PangeaStackSpec, PangeaStackStatus};
pub use template::{PangeaTemplate, PangeaTemplateSpec, PangeaTemplateStatus};

/// API group of every pangea kind.
pub const GROUP: &str = "pangea.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Every CRD this project defines, in install order. The single list used by `crdgen` (which
/// writes `deploy/crds/`) and by the test harness (which installs them into a real apiserver).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![PangeaTemplate::crd(), PangeaStack::crd()]
}
