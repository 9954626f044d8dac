//! One working directory per template, reused across runs so providers and modules are not
//! re-initialised every time: the compiled configuration, variables and overrides are
//! (re)written each run, and `init` runs only when what it depends on changed.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Files the executor owns inside a workspace.
const MAIN: &str = "main.tf.json";
const OVERRIDE: &str = "zz_pangea_override.tf.json";
const TFVARS: &str = "pangea.auto.tfvars.json";
/// Import blocks adopting orphans of an interrupted apply; present only while they are needed.
const IMPORTS: &str = "zz_pangea_imports.tf.json";
const INIT_STAMP: &str = ".pangea-init";
const LOCK_FILE: &str = ".terraform.lock.hcl";

/// Workspace I/O failures.
#[derive(Debug, thiserror::Error)]
#[error("workspace {path}: {source}")]
pub struct WorkspaceError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// A template's working directory.
#[derive(Clone, Debug)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// `<root>/workspaces/<readable name>-<hash>` for template id `namespace/name` (any string).
    pub fn open(root: &Path, template_id: &str) -> Result<Self, WorkspaceError> {
        let dir = root.join("workspaces").join(dir_name(template_id));
        std::fs::create_dir_all(&dir).map_err(|source| WorkspaceError {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file inside the workspace (plan files, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the compiled document, the override file (removed when `None`) and the plain
    /// variables. Sensitive variables never touch the disk: they travel as `TF_VAR_*`.
    pub fn write_config(
        &self,
        document: &str,
        overrides: Option<&Value>,
        variables: &serde_json::Map<String, Value>,
    ) -> Result<(), WorkspaceError> {
        self.write(MAIN, document.as_bytes())?;
        // Imports are decided anew each run from the in-flight journal.
        self.remove(IMPORTS)?;
        match overrides {
            Some(v) => self.write(OVERRIDE, v.to_string().as_bytes())?,
            None => self.remove(OVERRIDE)?,
        }
        if variables.is_empty() {
            self.remove(TFVARS)
        } else {
            self.write(
                TFVARS,
                Value::Object(variables.clone()).to_string().as_bytes(),
            )
        }
    }

    /// Writes the import blocks file, or removes it when `None`.
    pub fn write_imports(&self, blocks: Option<&Value>) -> Result<(), WorkspaceError> {
        match blocks {
            Some(v) => self.write(IMPORTS, v.to_string().as_bytes()),
            None => self.remove(IMPORTS),
        }
    }

    /// Whether `init` must run for a configuration with this fingerprint.
    pub fn needs_init(&self, fingerprint: &str) -> bool {
        let stamp = std::fs::read_to_string(self.path(INIT_STAMP)).unwrap_or_default();
        !self.path(".terraform").is_dir() || stamp != self.stamp(fingerprint)
    }

    /// Records a successful `init` for this fingerprint (including the lock file it wrote).
    pub fn mark_initialized(&self, fingerprint: &str) -> Result<(), WorkspaceError> {
        self.write(INIT_STAMP, self.stamp(fingerprint).as_bytes())
    }

    /// Fingerprint plus the dependency lock file, which `init` itself may rewrite.
    fn stamp(&self, fingerprint: &str) -> String {
        let lock = std::fs::read(self.path(LOCK_FILE)).unwrap_or_default();
        format!("{fingerprint}:{}", hex::encode(Sha256::digest(lock)))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), WorkspaceError> {
        let path = self.path(name);
        // Skip identical rewrites: terraform and the init check look at these files.
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        std::fs::write(&path, bytes).map_err(|source| WorkspaceError { path, source })
    }

    fn remove(&self, name: &str) -> Result<(), WorkspaceError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(WorkspaceError { path, source: e })
            }
            _ => Ok(()),
        }
    }
}

/// What `init` depends on: the `terraform` block (required providers, backend), the providers
/// used (configured or implied by resource types) and the CLI configuration (mirror). Resource
/// arguments do not matter, so editing a bucket name does not re-run `init`.
pub fn init_fingerprint(document: &Value, backend: Option<&Value>, cli_config: &str) -> String {
    let mut hasher = Sha256::new();
    let terraform = document.get("terraform").cloned().unwrap_or(Value::Null);
    hasher.update(terraform.to_string());
    hasher.update(backend.map(Value::to_string).unwrap_or_default());
    for provider in providers_used(document) {
        hasher.update(provider);
        hasher.update([0]);
    }
    hasher.update(cli_config);
    hex::encode(hasher.finalize())
}

/// Local provider names: `provider` block keys and the prefix of every resource/data type.
fn providers_used(document: &Value) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        keys(document.get("provider")).map(str::to_owned).collect();
    for section in ["resource", "data"] {
        for ty in keys(document.get(section)) {
            names.insert(ty.split('_').next().unwrap_or(ty).to_owned());
        }
    }
    names
}

fn keys(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys().map(String::as_str))
}

/// A directory name that a person can recognise and that cannot collide or escape.
fn dir_name(template_id: &str) -> String {
    let readable: String = template_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let hash = hex::encode(&Sha256::digest(template_id.as_bytes())[..6]);
    format!("{readable}-{hash}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dir_names_are_safe_and_distinct() {
        let a = dir_name("team-a/web");
        let b = dir_name("team-a_web");
        assert!(a.starts_with("team-a_web-") && b.starts_with("team-a_web-"));
        assert_ne!(a, b);
        assert!(!dir_name("../../etc").contains('/'));
    }

    #[test]
    fn fingerprint_ignores_resource_arguments_but_not_providers() {
        let base = json!({"provider": {"aws": {"region": "us-east-1"}}, "resource": {"aws_s3_bucket": {"a": {"bucket": "x"}}}});
        let renamed = json!({"provider": {"aws": {"region": "us-east-1"}}, "resource": {"aws_s3_bucket": {"a": {"bucket": "y"}}}});
        let more = json!({"provider": {"aws": {"region": "us-east-1"}}, "resource": {"aws_s3_bucket": {"a": {}}, "random_id": {"r": {}}}});
        let fp = |d: &Value| init_fingerprint(d, None, "cfg");
        assert_eq!(fp(&base), fp(&renamed));
        assert_ne!(fp(&base), fp(&more));
        assert_ne!(
            fp(&base),
            init_fingerprint(&base, Some(&json!({"local": {}})), "cfg")
        );
    }

    #[test]
    fn init_is_needed_until_marked_and_again_when_the_lock_file_changes() {
        let root = tempfile::tempdir().unwrap();
        let ws = Workspace::open(root.path(), "ns/t").unwrap();
        assert!(ws.needs_init("fp"));
        std::fs::create_dir(ws.path(".terraform")).unwrap();
        ws.mark_initialized("fp").unwrap();
        assert!(!ws.needs_init("fp"));
        assert!(ws.needs_init("other"));
        std::fs::write(ws.path(LOCK_FILE), "changed").unwrap();
        assert!(ws.needs_init("fp"));
    }

    #[test]
    fn variables_file_follows_the_variables() {
        let root = tempfile::tempdir().unwrap();
        let ws = Workspace::open(root.path(), "t").unwrap();
        let mut vars = serde_json::Map::new();
        vars.insert("a".into(), json!(1));
        ws.write_config("{}", None, &vars).unwrap();
        assert!(ws.path(TFVARS).exists());
        ws.write_config("{}", Some(&json!({})), &serde_json::Map::new())
            .unwrap();
        assert!(!ws.path(TFVARS).exists() && ws.path(OVERRIDE).exists());
    }
}
