//! Creating arbitrary YAML manifests (any kind the apiserver knows) in a test namespace, the
//! way `kubectl create -f` would, so tests can feed user-facing files unchanged.

use std::path::{Path, PathBuf};

use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, PostParams},
    discovery::pinned_kind,
};
use serde::Deserialize;

use crate::{Error, Result};

/// The `.yaml` files directly in `dir`, sorted: the manifests a directory ships.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(crate::io_err("reading a manifest directory"))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    Ok(files)
}

/// Splits a multi-document YAML text into objects (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<DynamicObject>> {
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| Error::Kubeconfig(format!("YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_yaml::from_value(value)
            .map_err(|e| Error::Kubeconfig(format!("manifest: {e}")))?;
        objects.push(obj);
    }
    Ok(objects)
}

/// A typed object from a manifest the harness wrote as JSON.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Toolchain(format!("bad manifest: {e}")))
}

/// Creates `obj` in `namespace`, resolving its kind through discovery. Returns the apiserver's
/// answer so tests can assert on rejections.
pub async fn create(
    client: &Client,
    namespace: &str,
    obj: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let types = obj.types.clone().unwrap_or_default();
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| {
        kube::Error::Discovery(kube::error::DiscoveryError::MissingKind(e.to_string()))
    })?;
    let (resource, _caps) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.create(&PostParams::default(), obj).await
}
