//! What a template refers to, read from the cluster before deciding and executing: the
//! template text of a ConfigMap source, git credentials, and variables from Secrets,
//! ConfigMaps and other templates' outputs. A missing reference is a problem a person must
//! fix, reported as a condition, not a silent retry.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use pangea_api::{
    PangeaTemplate, PangeaTemplateSpec,
    exec::RequestSource,
    template::{SourceKind, VariablesFrom},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Inputs of one execution as found in the cluster.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The source as the executor receives it (git credentials added later, as files).
    pub source: Option<RequestSource>,
    /// Revision of inline/ConfigMap content, computed like the executor's; `None` for git.
    pub source_revision: Option<String>,
    /// Plain variables.
    pub variables: BTreeMap<String, Value>,
    /// Sensitive variables (from Secrets): name → value.
    pub sensitive: BTreeMap<String, Vec<u8>>,
    /// Git credential files: file name → content.
    pub git_credentials: BTreeMap<String, Vec<u8>>,
}

/// A reference could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The spec names an object or key that does not exist.
    #[error("{0}")]
    Missing(String),
    /// The spec is inconsistent in a way the schema cannot express.
    #[error("{0}")]
    Invalid(String),
    /// The apiserver could not be asked.
    #[error("reading {what}: {source}")]
    Kube {
        /// What was being read.
        what: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
}

impl ResolveError {
    /// Missing and invalid references need a person; apiserver trouble is retried.
    pub fn needs_person(&self) -> bool {
        !matches!(self, Self::Kube { .. })
    }
}

/// `sha256:<hex>` of template text: the revision the executor records for content sources.
pub fn content_revision(content: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(content.as_bytes())))
}

/// Reads everything `spec` refers to in `namespace`.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    spec: &PangeaTemplateSpec,
) -> Result<Resolved, ResolveError> {
    let mut resolved = Resolved::default();
    match spec.source.kind() {
        Some(SourceKind::Inline(text)) => set_content(&mut resolved, text.to_owned()),
        Some(SourceKind::ConfigMap(cm)) => {
            let text = config_map_key(client, namespace, &cm.name, &cm.key).await?;
            set_content(&mut resolved, text);
        }
        Some(SourceKind::Git(git)) => {
            resolved.source = Some(RequestSource::Git {
                repository: git.repository.clone().unwrap_or_default(),
                git_ref: git.git_ref.clone(),
                path: git.path.clone().unwrap_or_else(|| "main.rb".into()),
                credentials_dir: None,
            });
            if let Some(auth) = &git.auth_secret_ref {
                resolved.git_credentials = secret_data(client, namespace, &auth.name).await?;
            }
        }
        None => {
            return Err(ResolveError::Invalid(
                "source must set exactly one of git, configMap or inline".into(),
            ));
        }
    }
    resolved.variables = spec.pangea.variables.clone();
    for from in &spec.pangea.variables_from {
        add_variables(client, namespace, from, &mut resolved).await?;
    }
    Ok(resolved)
}

fn set_content(resolved: &mut Resolved, content: String) {
    resolved.source_revision = Some(content_revision(&content));
    resolved.source = Some(RequestSource::Content {
        content,
        file_name: "main.rb".into(),
    });
}

async fn add_variables(
    client: &Client,
    ns: &str,
    from: &VariablesFrom,
    out: &mut Resolved,
) -> Result<(), ResolveError> {
    let prefix = from.prefix.clone().unwrap_or_default();
    if let Some(sel) = &from.secret_ref {
        let data = secret_data(client, ns, &sel.name).await?;
        for (k, v) in pick(data, sel.key.as_deref(), &format!("Secret {}", sel.name))? {
            out.sensitive.insert(format!("{prefix}{k}"), v);
        }
    }
    if let Some(sel) = &from.config_map_ref {
        let data = config_map_data(client, ns, &sel.name).await?;
        for (k, v) in pick(data, sel.key.as_deref(), &format!("ConfigMap {}", sel.name))? {
            out.variables
                .insert(format!("{prefix}{k}"), Value::String(v));
        }
    }
    if let Some(outputs) = &from.template_outputs {
        let api: Api<PangeaTemplate> = Api::namespaced(client.clone(), ns);
        let other = get(&api, &outputs.name, "PangeaTemplate").await?;
        let available = other.status.map(|s| s.outputs).unwrap_or_default();
        for (k, v) in available {
            if outputs.outputs.is_empty() || outputs.outputs.contains(&k) {
                out.variables.insert(format!("{prefix}{k}"), v);
            }
        }
    }
    Ok(())
}

/// All entries, or only `key` (which must exist).
fn pick<V>(
    data: BTreeMap<String, V>,
    key: Option<&str>,
    what: &str,
) -> Result<BTreeMap<String, V>, ResolveError> {
    match key {
        None => Ok(data),
        Some(key) => {
            let mut data = data;
            let value = data
                .remove(key)
                .ok_or_else(|| ResolveError::Missing(format!("{what} has no key {key}")))?;
            Ok(BTreeMap::from([(key.to_owned(), value)]))
        }
    }
}

async fn config_map_key(
    client: &Client,
    ns: &str,
    name: &str,
    key: &str,
) -> Result<String, ResolveError> {
    let mut data = config_map_data(client, ns, name).await?;
    data.remove(key)
        .ok_or_else(|| ResolveError::Missing(format!("ConfigMap {name} has no key {key}")))
}

async fn config_map_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let cm = get(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        name,
        "ConfigMap",
    )
    .await?;
    Ok(cm.data.unwrap_or_default())
}

async fn secret_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, ResolveError> {
    let secret = get(
        &Api::<Secret>::namespaced(client.clone(), ns),
        name,
        "Secret",
    )
    .await?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.insert(k, v.into_bytes());
    }
    Ok(data)
}

async fn get<K>(api: &Api<K>, name: &str, kind: &str) -> Result<K, ResolveError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(obj)) => Ok(obj),
        Ok(None) => Err(ResolveError::Missing(format!("{kind} {name} not found"))),
        Err(source) => Err(ResolveError::Kube {
            what: format!("{kind} {name}"),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_revision_matches_the_executor() {
        // The executor's content source hashes the same bytes the same way.
        assert_eq!(
            content_revision("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pick_keeps_one_key_or_all() {
        let data = BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]);
        assert_eq!(pick(data.clone(), None, "x").unwrap().len(), 2);
        assert_eq!(
            pick(data.clone(), Some("b"), "x").unwrap(),
            BTreeMap::from([("b".to_owned(), 2)])
        );
        let err = pick(data, Some("c"), "Secret s").unwrap_err();
        assert_eq!(err.to_string(), "Secret s has no key c");
        assert!(err.needs_person());
    }
}
