//! `pangea-executor`: runs one Pangea template end to end: fetch the source ([`source`]),
//! compile it to Terraform JSON ([`compile`]), run terraform/tofu, and turn what it finds into
//! typed drift / plan / compliance reports ([`report`]).

pub mod backend;
pub mod compile;
pub mod execute;
pub mod orphans;
pub mod report;
pub mod result_codec;
pub mod scrub;
pub mod source;
pub mod terraform;
pub mod workspace;
