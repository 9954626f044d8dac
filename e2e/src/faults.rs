//! Faults injected through the real apiserver, without webhooks or a patched client: a
//! `ValidatingAdmissionPolicy` (CEL, evaluated inside the apiserver) that denies every write
//! of one template's status while its binding exists. The operator sees exactly what a
//! failing status write looks like in production (an API error from the apiserver), and the
//! test decides when the fault starts and ends by creating and deleting the binding.

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
};

use crate::{Result, control_plane::FIELD_MANAGER, manifests::from_json};

/// The denial's message: the operator logs it with the failed write.
pub const DENIED: &str = "pangea-e2e denies status writes of this template";

/// A policy denying status writes of one template; bound (denying) or not.
pub struct StatusWriteDenial {
    client: Client,
    name: String,
    namespace: String,
}

impl StatusWriteDenial {
    /// Creates the (unbound, so not yet denying) policy for template `template` in
    /// `namespace`.
    pub async fn install(client: Client, namespace: &str, template: &str) -> Result<Self> {
        let name = format!("pangea-e2e-deny-status-{namespace}-{template}");
        // UPDATE covers PATCH, server-side apply included: the apiserver admits a patch of an
        // existing object as an update. The resource rule names the status subresource only,
        // so the finalizer and spec stay writable.
        let policy: ValidatingAdmissionPolicy = from_json(serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["pangea.io"], "apiVersions": ["*"],
                    "operations": ["UPDATE"],
                    "resources": ["pangeatemplates/status"],
                    "resourceNames": [template]
                }]},
                "validations": [{"expression": "false", "message": DENIED}]
            }
        }))?;
        Api::<ValidatingAdmissionPolicy>::all(client.clone())
            .patch(&name, &apply(), &Patch::Apply(&policy))
            .await?;
        Ok(Self {
            client,
            name,
            namespace: namespace.to_owned(),
        })
    }

    /// Starts denying: binds the policy to the template's namespace.
    pub async fn bind(&self) -> Result<()> {
        let binding: ValidatingAdmissionPolicyBinding = from_json(serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": self.name},
            "spec": {
                "policyName": self.name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": self.namespace
                }}}
            }
        }))?;
        self.bindings()
            .patch(&self.name, &apply(), &Patch::Apply(&binding))
            .await?;
        Ok(())
    }

    /// Stops denying: deletes the binding (the policy stays, inert).
    pub async fn unbind(&self) -> Result<()> {
        match self
            .bindings()
            .delete(&self.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn bindings(&self) -> Api<ValidatingAdmissionPolicyBinding> {
        Api::all(self.client.clone())
    }
}

fn apply() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}
