//! Where a template comes from (`spec.source`) and where its Terraform state lives
//! (`spec.state`).

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::common::{KeySelector, LocalObjectReference};

/// Where the template file comes from. Exactly one of `git`, `configMap`, `inline`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.git), has(self.configMap), has(self.inline)].filter(x, x).size() == 1"
).message("source must set exactly one of git, configMap or inline"))]
pub struct TemplateSource {
    /// A file in a git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// A key of a ConfigMap in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    /// The template's Ruby text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 262144))]
    pub inline: Option<String>,
}

/// The borrowed, validated view of [`TemplateSource`]: exactly one variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SourceKind<'a> {
    /// `source.git`.
    Git(&'a GitSource),
    /// `source.configMap`.
    ConfigMap(&'a ConfigMapSource),
    /// `source.inline`.
    Inline(&'a str),
}

impl TemplateSource {
    /// The one source that is set, or `None` when zero or several are (the schema rejects
    /// both; this guards objects that bypassed it).
    pub fn kind(&self) -> Option<SourceKind<'_>> {
        match (&self.git, &self.config_map, &self.inline) {
            (Some(g), None, None) => Some(SourceKind::Git(g)),
            (None, Some(c), None) => Some(SourceKind::ConfigMap(c)),
            (None, None, Some(i)) => Some(SourceKind::Inline(i)),
            _ => None,
        }
    }
}

/// A template file in a git repository.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
// On the object, not the field: a required field would be rejected with the generic
// "Required value" instead of this message.
#[x_kube(validation = Rule::new("has(self.repository) && size(self.repository) > 0")
    .message("source.git.repository is required: the URL of the repository to clone"))]
pub struct GitSource {
    /// Repository URL: `https://...`, `ssh://...`, `git@host:path` or `file://...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) == 0 || self.matches('^(https?://|ssh://|git@|file://)')").message("source.git.repository must start with https://, http://, ssh://, git@ or file://"))]
    #[schemars(length(max = 2048))]
    pub repository: Option<String>,
    /// Branch, tag or commit to check out. Defaults to the remote's default branch.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Path of the template file inside the repository; files beside it can be loaded with
    /// `require_relative`. Defaults to `main.rb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')").message("source.git.path must be relative to the repository root and must not contain '..'"))]
    pub path: Option<String>,
    /// Secret with credentials: key `token` (HTTPS) or `identity` plus optional
    /// `known_hosts` (SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<LocalObjectReference>,
}

/// A template stored in a ConfigMap.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigMapSource {
    /// Name of the ConfigMap in this namespace.
    pub name: String,
    /// Key holding the template's Ruby text.
    pub key: String,
}

/// Terraform state backend. Exactly one of `kubernetes`, `s3`, `local`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.kubernetes), has(self.s3), has(self.local)].filter(x, x).size() == 1"
).message("state must set exactly one of kubernetes, s3 or local"))]
pub struct StateBackend {
    /// State in a Secret in the template's namespace, locked with a Lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesState>,
    /// State in an S3 bucket, optionally locked with a DynamoDB table or a lock file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3State>,
    /// State on the executor's local disk. For trials only: it is lost with the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalState>,
}

/// `kubernetes` backend settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesState {
    /// Suffix of the state Secret name (`tfstate-default-<suffix>`). Defaults to
    /// `<template name>-state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("!self.matches('-[0-9]+$')").message("state.kubernetes.secretSuffix must not end with '-<number>' (terraform reserves that form)"))]
    #[schemars(length(max = 200))]
    pub secret_suffix: Option<String>,
}

/// `s3` backend settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.dynamodbTable) && has(self.useLockfile) && self.useLockfile)")
    .message("state.s3: choose one lock mechanism, dynamodbTable or useLockfile"))]
pub struct S3State {
    /// Bucket holding the state.
    pub bucket: String,
    /// Object key of the state.
    pub key: String,
    /// Region of the bucket.
    pub region: String,
    /// DynamoDB table used for locking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb_table: Option<String>,
    /// Lock with an S3 lock file instead of DynamoDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_lockfile: Option<bool>,
    /// Server-side encryption of the state object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    /// Custom S3/DynamoDB endpoint (S3-compatible stores, emulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret with `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and optionally
    /// `AWS_SESSION_TOKEN`) for the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectReference>,
}

/// `local` backend settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalState {
    /// Path of the state file, relative to the executor's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A string-keyed object whose values are arbitrary JSON (Terraform variables, outputs).
pub(crate) fn free_form_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// Used by `KeySelector` consumers that need to know which defaults apply.
impl KeySelector {
    /// The key, or `default` when none was given.
    pub fn key_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.key.as_deref().unwrap_or(default)
    }
}
