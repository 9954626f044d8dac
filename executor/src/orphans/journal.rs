//! The in-flight journal: a small file in the workspace that lists the creates of the saved
//! plan, written before `apply` starts and removed after the apply ends on its own. After an
//! interruption it is narrowed to the creates terraform had started (from the apply's event
//! log, which terraform writes into the workspace as it goes), so the next run knows which
//! resources may exist outside state. If this process died mid-apply, the next run narrows it
//! from the event log left behind; no log means terraform never started, so nothing was
//! created.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use pangea_api::exec::InFlightCreate;
use serde::{Deserialize, Serialize};

use crate::terraform::events;

const JOURNAL: &str = ".pangea-inflight.json";
/// Where the apply's `-json` event stream goes while it runs.
pub const APPLY_LOG: &str = ".pangea-apply.jsonl";

/// Journal I/O failures.
#[derive(Debug, thiserror::Error)]
#[error("in-flight journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    /// `false` while the apply may still be running: every create of the plan is listed.
    narrowed: bool,
    creates: Vec<InFlightCreate>,
    /// Still unresolved from an earlier apply (this apply imports them): kept as they are.
    #[serde(default)]
    carried: Vec<InFlightCreate>,
}

/// The journal of one workspace directory.
pub struct Journal<'a> {
    dir: &'a Path,
}

impl<'a> Journal<'a> {
    /// The journal in `dir`.
    pub fn new(dir: &'a Path) -> Self {
        Self { dir }
    }

    /// Creates that may exist outside state, narrowing an apply this process never saw end.
    pub fn pending(&self) -> Result<Vec<InFlightCreate>, JournalError> {
        let file = self.read()?;
        if file.narrowed {
            return Ok(merge(file.carried, file.creates));
        }
        self.interrupted()?;
        let file = self.read()?;
        Ok(merge(file.carried, file.creates))
    }

    /// Records the plan's creates; called right before `apply`. Returns everything that may
    /// be in flight from now on (the plan's creates and those carried from earlier).
    pub fn before_apply(
        &self,
        creates: Vec<InFlightCreate>,
    ) -> Result<Vec<InFlightCreate>, JournalError> {
        let carried = self.pending()?;
        self.remove(APPLY_LOG)?;
        let listed = merge(carried.clone(), creates.clone());
        self.write(&File {
            narrowed: false,
            creates,
            carried,
        })?;
        Ok(listed)
    }

    /// The apply ended on its own (success or failure): nothing is in flight.
    pub fn finished(&self) -> Result<(), JournalError> {
        self.remove(APPLY_LOG)?;
        self.remove(JOURNAL)
    }

    /// The apply was interrupted: keep only the creates terraform started and that the cloud
    /// did not refuse as already existing.
    pub fn interrupted(&self) -> Result<(), JournalError> {
        let file = self.read()?;
        let log = match std::fs::read_to_string(self.path(APPLY_LOG)) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(self.err(APPLY_LOG, source)),
        };
        let creates = match (file.narrowed, log) {
            (true, _) => merge(Vec::new(), file.creates),
            // Terraform never started: it created nothing.
            (false, None) => Vec::new(),
            (false, Some(log)) => {
                let progress = events::progress(&log);
                file.creates
                    .into_iter()
                    .filter(|c| {
                        progress.started.contains(&c.address)
                            && !progress.already_existed.contains(&c.address)
                    })
                    .collect()
            }
        };
        self.remove(APPLY_LOG)?;
        self.save(merge(file.carried, creates))
    }

    /// Adds creates handed back by the operator (a previous executor's result).
    pub fn add(&self, creates: &[InFlightCreate]) -> Result<(), JournalError> {
        if creates.is_empty() {
            return Ok(());
        }
        let current = self.pending()?;
        self.save(merge(current, creates.to_vec()))
    }

    /// Drops the named addresses (adopted, never created, or resolved by a person).
    pub fn forget(&self, addresses: &[String]) -> Result<(), JournalError> {
        let kept = self
            .pending()?
            .into_iter()
            .filter(|c| !addresses.contains(&c.address))
            .collect();
        self.save(kept)
    }

    fn save(&self, creates: Vec<InFlightCreate>) -> Result<(), JournalError> {
        if creates.is_empty() {
            return self.remove(JOURNAL);
        }
        self.write(&File {
            narrowed: true,
            creates,
            carried: Vec::new(),
        })
    }

    fn read(&self) -> Result<File, JournalError> {
        match std::fs::read(self.path(JOURNAL)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.err(JOURNAL, std::io::Error::other(e))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(source) => Err(self.err(JOURNAL, source)),
        }
    }

    /// Written whole to a temporary file and renamed: a crash never leaves half a journal.
    fn write(&self, file: &File) -> Result<(), JournalError> {
        let bytes = serde_json::to_vec_pretty(file).expect("journal serialises");
        let tmp = self.path(&format!("{JOURNAL}.tmp"));
        std::fs::write(&tmp, bytes).map_err(|e| self.err(JOURNAL, e))?;
        std::fs::rename(&tmp, self.path(JOURNAL)).map_err(|e| self.err(JOURNAL, e))
    }

    fn remove(&self, name: &str) -> Result<(), JournalError> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.err(name, e)),
            _ => Ok(()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn err(&self, name: &str, source: std::io::Error) -> JournalError {
        JournalError {
            path: self.path(name),
            source,
        }
    }
}

/// Union by address, sorted.
fn merge(a: Vec<InFlightCreate>, b: Vec<InFlightCreate>) -> Vec<InFlightCreate> {
    let by_address: BTreeMap<String, InFlightCreate> = a
        .into_iter()
        .chain(b)
        .map(|c| (c.address.clone(), c))
        .collect();
    by_address.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::orphans::create_for_test as create;

    fn addresses(creates: &[InFlightCreate]) -> Vec<&str> {
        creates.iter().map(|c| c.address.as_str()).collect()
    }

    const STARTED_SSM: &str = r#"{"type":"apply_start","hook":{"resource":{"addr":"aws_ssm_parameter.p"},"action":"create"}}"#;

    #[test]
    fn an_interrupted_apply_keeps_only_started_creates() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.before_apply(vec![create("aws_ssm_parameter.p"), create("aws_vpc.v")])
            .unwrap();
        std::fs::write(dir.path().join(APPLY_LOG), STARTED_SSM).unwrap();
        j.interrupted().unwrap();
        assert_eq!(addresses(&j.pending().unwrap()), ["aws_ssm_parameter.p"]);
        assert!(
            !dir.path().join(APPLY_LOG).exists(),
            "the event log is removed"
        );
        j.forget(&["aws_ssm_parameter.p".into()]).unwrap();
        assert!(j.pending().unwrap().is_empty());
        assert!(!dir.path().join(JOURNAL).exists());
    }

    #[test]
    fn a_journal_left_by_a_dead_executor_is_narrowed_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        Journal::new(dir.path())
            .before_apply(vec![create("aws_ssm_parameter.p"), create("aws_vpc.v")])
            .unwrap();
        std::fs::write(dir.path().join(APPLY_LOG), STARTED_SSM).unwrap();
        let next_run = Journal::new(dir.path());
        assert_eq!(
            addresses(&next_run.pending().unwrap()),
            ["aws_ssm_parameter.p"]
        );
    }

    #[test]
    fn no_log_means_the_apply_never_started_but_carried_orphans_stay() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.add(&[create("aws_s3_bucket.b")]).unwrap();
        j.before_apply(vec![create("aws_vpc.v")]).unwrap();
        assert_eq!(addresses(&j.pending().unwrap()), ["aws_s3_bucket.b"]);
    }

    #[test]
    fn a_finished_apply_clears_everything_and_handed_back_creates_merge() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        j.add(&[create("aws_s3_bucket.b")]).unwrap();
        j.add(&[create("aws_s3_bucket.b"), create("aws_iam_role.r")])
            .unwrap();
        assert_eq!(
            addresses(&j.pending().unwrap()),
            ["aws_iam_role.r", "aws_s3_bucket.b"]
        );
        j.finished().unwrap();
        assert!(j.pending().unwrap().is_empty());
    }
}
