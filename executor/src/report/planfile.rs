//! Reads the two states out of a saved plan file (`terraform plan -out=FILE`), the only I/O of
//! report building.
//!
//! A plan file is a zip holding, among others, `tfstate-prev` (the state before refresh: what
//! was last applied) and `tfstate` (the refreshed state). Reading them directly saves the
//! `terraform show -json` run a drift check would otherwise need.

use std::{fs::File, io::Read, path::Path};

use zip::{ZipArchive, result::ZipError};

use super::{ReportError, state::StateV4};

/// Member holding the state before refresh.
pub const PREV_STATE: &str = "tfstate-prev";
/// Member holding the refreshed state.
pub const REFRESHED_STATE: &str = "tfstate";

/// Largest state member read (a state this size is far beyond any single template).
const MAX_STATE_BYTES: u64 = 256 * 1024 * 1024;

/// `(prev, refreshed)` states of the plan file at `path`.
///
/// A plan made against an empty state may carry no `tfstate-prev`; that is an empty state.
/// Note that Terraform writes `tfstate-prev` without lineage and serial: take those from the
/// refreshed state.
pub fn read_states(path: &Path) -> Result<(StateV4, StateV4), ReportError> {
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut archive = ZipArchive::new(file).map_err(|source| zip_error(path, source))?;
    let prev = read_member(&mut archive, path, PREV_STATE)?.unwrap_or_default();
    let refreshed = read_member(&mut archive, path, REFRESHED_STATE)?.ok_or_else(|| {
        ReportError::MissingMember {
            path: path.to_owned(),
            member: REFRESHED_STATE,
        }
    })?;
    Ok((prev, refreshed))
}

/// The state in `member`, or `None` when the plan file has no such member.
fn read_member(
    archive: &mut ZipArchive<File>,
    path: &Path,
    member: &'static str,
) -> Result<Option<StateV4>, ReportError> {
    let entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(source) => return Err(zip_error(path, source)),
    };
    let mut bytes = Vec::new();
    entry
        .take(MAX_STATE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|source| ReportError::Io {
            path: path.to_owned(),
            source,
        })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ReportError::State {
            path: path.to_owned(),
            member,
            source,
        })
}

fn zip_error(path: &Path, source: ZipError) -> ReportError {
    ReportError::PlanFile {
        path: path.to_owned(),
        source,
    }
}
