//! Building the executor's [`Request`] from a template's spec, what was resolved from the
//! cluster, and the decision. Secret values are written to private files here; the request
//! only names them.

use std::path::Path;

use pangea_api::{
    PangeaTemplate,
    exec::{ApplyLimits, ExecutionKind, Request, RequestSource},
    template::{KubernetesState, StateBackend},
};

use crate::{resolve::Resolved, secrets::SecretFiles};

/// What to run, decided by `decide`.
pub struct Intent<'a> {
    /// Execution id.
    pub id: &'a str,
    /// Kind.
    pub kind: ExecutionKind,
    /// Plan id an apply is approved for.
    pub approved_plan_id: Option<String>,
    /// What the status hands to this executor.
    pub carried: &'a crate::core::Carried,
}

/// The request plus the secret files it names (removed when the execution ends).
pub fn build(
    tpl: &PangeaTemplate,
    resolved: Resolved,
    intent: &Intent<'_>,
    secrets_root: &Path,
) -> std::io::Result<(Request, SecretFiles)> {
    let spec = &tpl.spec;
    let namespace = tpl.metadata.namespace.clone().unwrap_or_default();
    let name = tpl.metadata.name.clone().unwrap_or_default();
    let needs_files = !resolved.sensitive.is_empty() || !resolved.git_credentials.is_empty();
    let mut files = if needs_files {
        SecretFiles::create(secrets_root, intent.id)?
    } else {
        SecretFiles::none()
    };
    let mut sensitive_variable_files = std::collections::BTreeMap::new();
    for (var, value) in &resolved.sensitive {
        let path = files.write(&format!("var-{var}"), value)?;
        sensitive_variable_files.insert(var.clone(), path.display().to_string());
    }
    let source = with_git_credentials(resolved.source.clone(), &resolved, &mut files)?;
    let request = Request {
        id: intent.id.to_owned(),
        kind: intent.kind,
        template: format!("{namespace}/{name}"),
        source: source.unwrap_or(RequestSource::Content {
            content: String::new(),
            file_name: "main.rb".into(),
        }),
        pangea_namespace: spec.pangea.namespace.clone(),
        template_name: spec.pangea.template.clone(),
        variables: resolved.variables,
        sensitive_variable_files,
        // The template's own `pangea.yml` backend wins over the operator's default.
        backend: spec.state.clone(),
        default_backend: Some(default_backend()),
        binary: spec.executor.binary,
        timeout_seconds: std::time::Duration::from(spec.reconciliation.timeout).as_secs(),
        severity_rules: spec.drift_detection.severity_rules.clone(),
        ignore: spec.drift_detection.ignore.clone(),
        approved_plan_id: intent.approved_plan_id.clone(),
        limits: ApplyLimits {
            allow_destroy: spec.safety.allow_destroy,
            max_changes: spec.safety.max_changes.and_then(|m| u32::try_from(m).ok()),
            adopt_orphans: spec.safety.adopt_orphans,
        },
        compliance_profiles: Vec::new(),
        // An executor pod has no workspace journal: the status remembers it for the next one
        // (in-process, the executor merges it into the journal it kept).
        in_flight_creates: intent.carried.in_flight_creates.clone(),
        interrupted_apply: intent.carried.interrupted_apply.clone(),
        forget_orphans: intent.carried.forget_orphans.clone(),
    };
    Ok((request, files))
}

/// The operator keeps state in a Secret of the template's namespace unless told otherwise.
fn default_backend() -> StateBackend {
    StateBackend {
        kubernetes: Some(KubernetesState::default()),
        ..StateBackend::default()
    }
}

fn with_git_credentials(
    source: Option<RequestSource>,
    resolved: &Resolved,
    files: &mut SecretFiles,
) -> std::io::Result<Option<RequestSource>> {
    let Some(RequestSource::Git {
        repository,
        git_ref,
        path,
        ..
    }) = source
    else {
        return Ok(source);
    };
    let mut credentials_dir = None;
    for (key, value) in &resolved.git_credentials {
        let file = files.write(key, value)?;
        credentials_dir = file.parent().map(|d| d.display().to_string());
    }
    Ok(Some(RequestSource::Git {
        repository,
        git_ref,
        path,
        credentials_dir,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> PangeaTemplate {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn sensitive_values_become_files_and_state_defaults_to_kubernetes() {
        let tpl = template(
            "apiVersion: pangea.io/v1alpha1\nkind: PangeaTemplate\nmetadata: {name: web, namespace: team}\nspec:\n  source: {inline: x}\n  safety: {maxChanges: 3}\n",
        );
        let mut resolved = Resolved {
            source: Some(RequestSource::Content {
                content: "x".into(),
                file_name: "main.rb".into(),
            }),
            ..Resolved::default()
        };
        resolved
            .sensitive
            .insert("db_password".into(), b"hunter22".to_vec());
        let root = tempfile::tempdir().unwrap();
        let carried = crate::core::Carried::default();
        let intent = Intent {
            id: "web-apply-1",
            kind: ExecutionKind::Apply,
            approved_plan_id: None,
            carried: &carried,
        };
        let (req, files) = build(&tpl, resolved, &intent, root.path()).unwrap();
        assert_eq!(req.template, "team/web");
        // The template's pangea.yml may choose; otherwise the executor uses the default.
        assert!(req.backend.is_none());
        assert!(req.default_backend.unwrap().kubernetes.is_some());
        assert_eq!(req.limits.max_changes, Some(3));
        let path = &req.sensitive_variable_files["db_password"];
        assert_eq!(std::fs::read(path).unwrap(), b"hunter22");
        assert!(
            !serde_json::to_string(&req.variables)
                .unwrap()
                .contains("hunter22")
        );
        drop(files);
        assert!(!Path::new(path).exists());
    }

    #[test]
    fn what_the_status_hands_on_reaches_the_next_executor() {
        // The status as read is stale on purpose: the step's own status is what counts.
        let tpl = template(
            "apiVersion: pangea.io/v1alpha1\nkind: PangeaTemplate\nmetadata: {name: web, namespace: team}\nspec:\n  source: {inline: x}\nstatus:\n  inFlightCreates: [{address: aws_s3_bucket.old, resourceType: aws_s3_bucket}]\n",
        );
        let root = tempfile::tempdir().unwrap();
        let carried = crate::core::Carried {
            in_flight_creates: vec![pangea_api::exec::InFlightCreate {
                address: "aws_vpc.main".into(),
                resource_type: "aws_vpc".into(),
            }],
            interrupted_apply: Some("team.web.apply.1".into()),
            forget_orphans: vec!["aws_route53_zone.z".into()],
        };
        let intent = Intent {
            id: "web-apply-2",
            kind: ExecutionKind::Apply,
            approved_plan_id: None,
            carried: &carried,
        };
        let (req, _files) = build(&tpl, Resolved::default(), &intent, root.path()).unwrap();
        assert_eq!(req.in_flight_creates, carried.in_flight_creates);
        assert_eq!(req.interrupted_apply.as_deref(), Some("team.web.apply.1"));
        assert_eq!(req.forget_orphans, ["aws_route53_zone.z"]);
    }
}
