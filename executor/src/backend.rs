//! Terraform configuration the executor adds around a compiled template: the state backend
//! from the request (`kubernetes`, `s3`, `local`), and — for emulators such as LocalStack —
//! provider overrides that point every AWS provider at one endpoint.

use std::path::PathBuf;

use pangea_api::{
    exec::StateLockRef,
    template::{KubernetesState, S3State, StateBackend},
};
use serde_json::{Map, Value, json};

/// What a `kubernetes` backend needs besides the spec.
#[derive(Clone, Debug, Default)]
pub struct KubernetesContext {
    /// Namespace holding the state Secret and lock Lease (the template's namespace).
    pub namespace: String,
    /// Suffix used when the spec gives none (derived from the template's name).
    pub default_suffix: String,
    /// Kubeconfig to use; in-cluster credentials when `None`.
    pub kubeconfig: Option<PathBuf>,
}

/// The `terraform.backend` object for `state`.
pub fn backend_json(state: &StateBackend, kube: &KubernetesContext) -> Option<Value> {
    if let Some(k) = &state.kubernetes {
        return Some(json!({ "kubernetes": kubernetes(k, kube) }));
    }
    if let Some(s3) = &state.s3 {
        return Some(json!({ "s3": s3_backend(s3) }));
    }
    state.local.as_ref().map(|l| {
        let path = l.path.clone().unwrap_or_else(|| "terraform.tfstate".into());
        json!({ "local": { "path": path } })
    })
}

fn kubernetes(spec: &KubernetesState, ctx: &KubernetesContext) -> Value {
    // Terraform refuses suffixes ending in `-<number>` (it reserves that form for its own
    // workspaces), and template names often do: the derived suffix always ends in `-state`.
    let suffix = spec
        .secret_suffix
        .clone()
        .unwrap_or_else(|| format!("{}-state", ctx.default_suffix));
    let mut cfg = Map::new();
    cfg.insert("secret_suffix".into(), sanitize_suffix(&suffix).into());
    cfg.insert("namespace".into(), ctx.namespace.clone().into());
    match &ctx.kubeconfig {
        Some(path) => cfg.insert("config_path".into(), path.display().to_string().into()),
        None => cfg.insert("in_cluster_config".into(), true.into()),
    };
    Value::Object(cfg)
}

/// The Lease that locks a `kubernetes` backend's state, from the compiled document's
/// `terraform.backend` (object or list form); `None` for other backends. Terraform names it
/// `lock-tfstate-<workspace>-<suffix>`; executions use the `default` workspace, and the
/// backend's own namespace default is `default` too.
pub fn state_lock(document: &Value) -> Option<StateLockRef> {
    let terraform = document.get("terraform")?;
    let blocks: Vec<&Value> = match terraform {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let config = blocks
        .iter()
        .find_map(|b| b.pointer("/backend/kubernetes"))
        .map(|k| match k {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        })?;
    let suffix = config.get("secret_suffix")?.as_str()?;
    let namespace = config
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    Some(StateLockRef::KubernetesLease {
        namespace: namespace.to_owned(),
        name: format!("lock-tfstate-default-{suffix}"),
    })
}

/// The Secret is named `tfstate-<workspace>-<suffix>`: keep the suffix a valid DNS label part.
fn sanitize_suffix(suffix: &str) -> String {
    let s: String = suffix
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').chars().take(200).collect()
}

fn s3_backend(s3: &S3State) -> Value {
    let mut cfg = Map::new();
    cfg.insert("bucket".into(), s3.bucket.clone().into());
    cfg.insert("key".into(), s3.key.clone().into());
    cfg.insert("region".into(), s3.region.clone().into());
    if let Some(table) = &s3.dynamodb_table {
        cfg.insert("dynamodb_table".into(), table.clone().into());
    }
    if let Some(lockfile) = s3.use_lockfile {
        cfg.insert("use_lockfile".into(), lockfile.into());
    }
    if let Some(encrypt) = s3.encrypt {
        cfg.insert("encrypt".into(), encrypt.into());
    }
    if let Some(endpoint) = &s3.endpoint {
        // A custom endpoint means an S3-compatible store: no AWS account lookups, path-style
        // addressing. DynamoDB locking uses the same endpoint unless the environment says
        // otherwise (AWS_ENDPOINT_URL_DYNAMODB).
        let dynamodb =
            std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| endpoint.clone());
        cfg.insert(
            "endpoints".into(),
            json!({ "s3": endpoint, "dynamodb": dynamodb }),
        );
        cfg.insert("use_path_style".into(), true.into());
        cfg.insert("skip_credentials_validation".into(), true.into());
        cfg.insert("skip_requesting_account_id".into(), true.into());
        cfg.insert("skip_metadata_api_check".into(), true.into());
        cfg.insert("skip_region_validation".into(), true.into());
    }
    Value::Object(cfg)
}

/// AWS services pointed at the emulator. Only names the AWS provider accepts in `endpoints`.
const EMULATED_SERVICES: &[&str] = &[
    "acm",
    "apigateway",
    "cloudformation",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "elb",
    "events",
    "iam",
    "kinesis",
    "kms",
    "lambda",
    "logs",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "ses",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
    "sts",
];

/// Override file content pointing every `aws` provider block of `document` (the default one
/// and each alias) at `endpoint`, the way emulator users configure the provider by hand.
pub fn aws_endpoint_override(document: &Value, endpoint: &str) -> Option<Value> {
    let blocks = aws_provider_aliases(document);
    if blocks.is_empty() {
        return None;
    }
    let endpoints: Map<String, Value> = EMULATED_SERVICES
        .iter()
        .map(|s| ((*s).to_owned(), endpoint.into()))
        .collect();
    let overrides: Vec<Value> = blocks
        .into_iter()
        .map(|alias| {
            let mut block = json!({
                "endpoints": [endpoints],
                "s3_use_path_style": true,
                "skip_credentials_validation": true,
                "skip_requesting_account_id": true,
                "skip_metadata_api_check": true,
            });
            if let Some(alias) = alias {
                block["alias"] = alias.into();
            }
            block
        })
        .collect();
    Some(json!({ "provider": { "aws": overrides } }))
}

/// `None` for the default `aws` provider block, `Some(alias)` for each aliased one. Pangea
/// writes a single block as an object and several as an array.
fn aws_provider_aliases(document: &Value) -> Vec<Option<String>> {
    let Some(aws) = document.pointer("/provider/aws") else {
        return Vec::new();
    };
    let blocks: Vec<&Value> = match aws {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    blocks
        .into_iter()
        .map(|b| b.get("alias").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube_ctx() -> KubernetesContext {
        KubernetesContext {
            namespace: "team".into(),
            default_suffix: "team-Web_App".into(),
            kubeconfig: None,
        }
    }

    #[test]
    fn kubernetes_backend_defaults() {
        let state = StateBackend {
            kubernetes: Some(KubernetesState::default()),
            ..Default::default()
        };
        let v = backend_json(&state, &kube_ctx()).unwrap();
        assert_eq!(
            v,
            json!({"kubernetes": {"secret_suffix": "team-web-app-state", "namespace": "team", "in_cluster_config": true}})
        );
    }

    #[test]
    fn the_lock_lease_of_a_kubernetes_backend_is_found_in_either_form() {
        let lease = |namespace: &str, name: &str| {
            Some(StateLockRef::KubernetesLease {
                namespace: namespace.into(),
                name: name.into(),
            })
        };
        let object = json!({"terraform": {"backend": {"kubernetes": {"secret_suffix": "web-state", "namespace": "team"}}}});
        assert_eq!(
            state_lock(&object),
            lease("team", "lock-tfstate-default-web-state")
        );
        let list = json!({"terraform": [{"required_providers": {}}, {"backend": {"kubernetes": [{"secret_suffix": "x"}]}}]});
        assert_eq!(
            state_lock(&list),
            lease("default", "lock-tfstate-default-x")
        );
        let s3 = json!({"terraform": {"backend": {"s3": {"bucket": "b"}}}});
        assert_eq!(state_lock(&s3), None);
        assert_eq!(state_lock(&json!({"resource": {}})), None);
    }

    #[test]
    fn kubernetes_backend_with_kubeconfig() {
        let state = StateBackend {
            kubernetes: Some(KubernetesState {
                secret_suffix: Some("x".into()),
            }),
            ..Default::default()
        };
        let ctx = KubernetesContext {
            kubeconfig: Some("/k/config".into()),
            ..kube_ctx()
        };
        let v = backend_json(&state, &ctx).unwrap();
        assert_eq!(v["kubernetes"]["config_path"], "/k/config");
        assert_eq!(v["kubernetes"]["secret_suffix"], "x");
    }

    #[test]
    fn s3_backend_keeps_only_given_fields_and_emulator_settings() {
        let s3 = S3State {
            bucket: "b".into(),
            key: "k".into(),
            region: "r".into(),
            dynamodb_table: Some("locks".into()),
            ..Default::default()
        };
        let v = backend_json(
            &StateBackend {
                s3: Some(s3.clone()),
                ..Default::default()
            },
            &kube_ctx(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"s3": {"bucket": "b", "key": "k", "region": "r", "dynamodb_table": "locks"}})
        );
        let with_endpoint = S3State {
            endpoint: Some("http://127.0.0.1:1".into()),
            ..s3
        };
        let v = backend_json(
            &StateBackend {
                s3: Some(with_endpoint),
                ..Default::default()
            },
            &kube_ctx(),
        )
        .unwrap();
        assert_eq!(v["s3"]["use_path_style"], true);
        assert_eq!(v["s3"]["endpoints"]["s3"], "http://127.0.0.1:1");
    }

    #[test]
    fn endpoint_override_covers_every_alias() {
        let doc = json!({"provider": {"aws": [{"region": "us-east-1"}, {"region": "eu-west-1", "alias": "eu"}]}});
        let v = aws_endpoint_override(&doc, "http://e").unwrap();
        let blocks = v["provider"]["aws"].as_array().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1]["alias"], "eu");
        assert_eq!(blocks[0]["endpoints"][0]["s3"], "http://e");
        assert!(aws_endpoint_override(&json!({"provider": {"google": {}}}), "http://e").is_none());
    }
}
