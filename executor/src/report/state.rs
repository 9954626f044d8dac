//! Terraform state format v4, typed as far as the drift diff needs it.
//!
//! Both states of a refresh-only plan (before and after refresh) arrive in this shape, whichever
//! engine produced them. Fields the diff does not use are ignored, and every field has a default,
//! so newer Terraform versions that add fields still parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole state snapshot (`terraform.tfstate`, or `tfstate`/`tfstate-prev` in a plan file).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StateV4 {
    /// Format version; 4 for every Terraform since 0.12.
    #[serde(default)]
    pub version: u32,
    /// Terraform version that wrote the state.
    #[serde(default)]
    pub terraform_version: String,
    /// Incremented on every write of the same lineage.
    #[serde(default)]
    pub serial: i64,
    /// Random id fixed when the state was first created.
    #[serde(default)]
    pub lineage: String,
    /// Resources, managed and data.
    #[serde(default)]
    pub resources: Vec<ResourceV4>,
}

/// One resource block (all instances of a `count`/`for_each`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ResourceV4 {
    /// Module path such as `module.net` or `module.a["x"].module.b`; absent in the root module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// `managed` or `data`.
    #[serde(default)]
    pub mode: String,
    /// Resource type, e.g. `aws_s3_bucket`.
    #[serde(default, rename = "type")]
    pub resource_type: String,
    /// Resource name in the configuration.
    #[serde(default)]
    pub name: String,
    /// Provider configuration address.
    #[serde(default)]
    pub provider: String,
    /// Instances; one without `index_key` when neither `count` nor `for_each` is used.
    #[serde(default)]
    pub instances: Vec<InstanceV4>,
}

/// One instance of a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct InstanceV4 {
    /// `count` index (number) or `for_each` key (string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_key: Option<Value>,
    /// `tainted` when marked for replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Set on a deposed object (an old copy kept during create-before-destroy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<String>,
    /// Provider schema version of `attributes`.
    #[serde(default)]
    pub schema_version: u64,
    /// Attribute values as the provider last reported them.
    #[serde(default)]
    pub attributes: Value,
    /// Paths of sensitive values inside `attributes`, in Terraform's path-step format.
    #[serde(default)]
    pub sensitive_attributes: Vec<Value>,
    /// Addresses this instance depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
}

/// A managed resource instance with its Terraform address, as the diff walks them.
#[derive(Clone, Copy, Debug)]
pub struct Located<'a> {
    /// Resource block the instance belongs to.
    pub resource: &'a ResourceV4,
    /// The instance itself.
    pub instance: &'a InstanceV4,
}

impl Located<'_> {
    /// The instance's `id` attribute, Terraform's identity of the remote object.
    pub fn id(&self) -> Option<&str> {
        self.instance.attributes.get("id").and_then(Value::as_str)
    }
}

impl StateV4 {
    /// Current (non-deposed) instances of managed resources, keyed by address.
    ///
    /// Data sources are re-read on every plan and are never drift; deposed objects are leftovers
    /// of an interrupted replacement that the next apply deletes, so they are not compared either.
    pub fn managed_instances(&self) -> BTreeMap<String, Located<'_>> {
        self.resources
            .iter()
            .filter(|r| r.mode == "managed")
            .flat_map(|resource| {
                resource
                    .instances
                    .iter()
                    .filter(|i| i.deposed.is_none())
                    .map(move |instance| {
                        let address = instance_address(resource, instance.index_key.as_ref());
                        (address, Located { resource, instance })
                    })
            })
            .collect()
    }
}

/// Terraform's address of an instance: `module.m.aws_x.y`, `aws_x.y[0]`, `aws_x.y["k"]`.
pub fn instance_address(resource: &ResourceV4, index_key: Option<&Value>) -> String {
    let mut address = String::new();
    if let Some(module) = resource.module.as_deref().filter(|m| !m.is_empty()) {
        address.push_str(module);
        address.push('.');
    }
    if resource.mode == "data" {
        address.push_str("data.");
    }
    address.push_str(&resource.resource_type);
    address.push('.');
    address.push_str(&resource.name);
    if let Some(key) = index_key {
        address.push_str(&index_suffix(key));
    }
    address
}

/// `[0]` for a count index, `["key"]` (JSON-quoted, as Terraform prints it) for a for_each key.
fn index_suffix(key: &Value) -> String {
    match key {
        Value::Number(n) => format!("[{n}]"),
        Value::String(s) => format!("[{}]", Value::String(s.clone())),
        other => format!("[{other}]"),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn resource(module: Option<&str>, mode: &str) -> ResourceV4 {
        ResourceV4 {
            module: module.map(str::to_owned),
            mode: mode.into(),
            resource_type: "aws_instance".into(),
            name: "web".into(),
            ..ResourceV4::default()
        }
    }

    #[rstest]
    #[case::plain(None, "managed", None, "aws_instance.web")]
    #[case::count(None, "managed", Some(json!(0)), "aws_instance.web[0]")]
    #[case::for_each(None, "managed", Some(json!("a")), r#"aws_instance.web["a"]"#)]
    #[case::for_each_quoted(None, "managed", Some(json!("a\"b")), r#"aws_instance.web["a\"b"]"#)]
    #[case::module(Some("module.m"), "managed", None, "module.m.aws_instance.web")]
    #[case::nested_module(
        Some(r#"module.a["x"].module.b"#),
        "managed",
        Some(json!(2)),
        r#"module.a["x"].module.b.aws_instance.web[2]"#
    )]
    #[case::data(None, "data", None, "data.aws_instance.web")]
    fn formats_addresses_like_terraform(
        #[case] module: Option<&str>,
        #[case] mode: &str,
        #[case] key: Option<Value>,
        #[case] expected: &str,
    ) {
        assert_eq!(
            instance_address(&resource(module, mode), key.as_ref()),
            expected
        );
    }

    #[test]
    fn managed_instances_skip_data_sources_and_deposed_objects() {
        let state: StateV4 = serde_json::from_value(json!({
            "version": 4, "serial": 3, "lineage": "l", "some_future_field": true,
            "resources": [
                {"mode": "data", "type": "aws_ami", "name": "a", "instances": [{"attributes": {}}]},
                {"mode": "managed", "type": "aws_instance", "name": "web", "instances": [
                    {"index_key": 0, "attributes": {"id": "i-1"}},
                    {"index_key": 0, "deposed": "abcd", "attributes": {"id": "i-0"}},
                    {"index_key": 1, "attributes": {"id": "i-2"}, "unknown": 1}
                ]}
            ]
        }))
        .unwrap();
        let found = state.managed_instances();
        let ids: Vec<_> = found.iter().map(|(a, l)| (a.as_str(), l.id())).collect();
        assert_eq!(
            ids,
            [
                ("aws_instance.web[0]", Some("i-1")),
                ("aws_instance.web[1]", Some("i-2"))
            ]
        );
    }
}
