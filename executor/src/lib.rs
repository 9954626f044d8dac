//! `pangea-executor`: runs one Pangea template end to end. Today it holds the compiler
//! ([`compile`]): Pangea template files (Ruby) to Terraform JSON, via the bundled stdlib-only
//! Ruby program and the system `ruby`. Plan, drift, apply and compliance build on it.

pub mod compile;
