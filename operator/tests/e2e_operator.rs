//! The operator end to end, as users see it: a real kube-apiserver, LocalStack, terraform with
//! the AWS provider, and the `pangea-operator` binary. Ignored by a plain `cargo test` (they
//! need the bootstrapped harness); `scripts/test.sh` runs them.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use pangea_api::{PangeaTemplate, common::condition};
use pangea_e2e::{AwsEmulator, ControlPlane, OperatorProcess, TestNamespace};

const WAIT: Duration = Duration::from_secs(300);

/// Field order is drop order: the operator stops before the servers it talks to.
struct Setup {
    operator: Option<OperatorProcess>,
    ns: TestNamespace,
    aws: AwsEmulator,
    cp: ControlPlane,
    state: tempfile::TempDir,
}

impl Setup {
    async fn start(prefix: &str) -> Result<Self> {
        let cp = ControlPlane::start().await?;
        let aws = AwsEmulator::start()?;
        let ns = cp.namespace(prefix).await?;
        let state = tempfile::tempdir()?;
        let operator = Some(Self::operator(&cp, &aws, &ns, state.path())?);
        Ok(Self {
            operator,
            ns,
            aws,
            cp,
            state,
        })
    }

    fn operator(
        cp: &ControlPlane,
        aws: &AwsEmulator,
        ns: &TestNamespace,
        state: &Path,
    ) -> Result<OperatorProcess> {
        Ok(OperatorProcess::start(
            Path::new(env!("CARGO_BIN_EXE_pangea-operator")),
            cp,
            aws,
            Some(&ns.name),
            state,
        )?)
    }

    fn api(&self) -> Api<PangeaTemplate> {
        self.ns.api()
    }

    async fn create(&self, name: &str, spec: serde_json::Value) -> Result<()> {
        Ok(self.ns.create_template(name, spec).await?)
    }

    /// Polls every second until `ok` holds for template `name`.
    async fn until(
        &self,
        name: &str,
        what: &str,
        ok: impl Fn(&PangeaTemplate) -> bool,
    ) -> Result<PangeaTemplate> {
        let start = Instant::now();
        loop {
            let tpl = self.api().get(name).await?;
            if ok(&tpl) {
                return Ok(tpl);
            }
            if start.elapsed() > WAIT {
                let log = self
                    .operator
                    .as_ref()
                    .map(|o| o.log_tail(60))
                    .unwrap_or_default();
                bail!(
                    "{name}: not {what} after {}s; status: {:#?}\noperator log:\n{log}",
                    WAIT.as_secs(),
                    tpl.status
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn event_reasons(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.ns.event_reasons(name).await?)
    }
}

fn cond<'a>(t: &'a PangeaTemplate, type_: &str) -> Option<&'a str> {
    pangea_e2e::condition_status(t, type_)
}

fn ready(t: &PangeaTemplate) -> bool {
    pangea_e2e::ready_and_checked(t)
}

fn drifted(t: &PangeaTemplate) -> bool {
    cond(t, condition::DRIFTED) == Some("True")
}

const AUDIT: &str = r#"template :audit do
  provider :aws do
    region "us-east-1"
  end
  resource :aws_s3_bucket, :audit do
    bucket "e2e-audit"
  end
  resource :aws_s3_bucket_versioning, :audit do
    bucket ref(:aws_s3_bucket, :audit, :id)
    versioning_configuration do
      status "Enabled"
    end
  end
end
"#;

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn drift_is_detected_with_detail_and_remediated_only_where_the_policy_says() -> Result<()> {
    let s = Setup::start("drift").await?;
    let drift = |remediate: bool| serde_json::json!({"interval": "1m", "autoRemediate": remediate, "remediationPolicy": "immediate"});
    s.create("web", serde_json::json!({"source": {"inline": web()}, "pangea": {"autoApprove": true}, "driftDetection": drift(true)})).await?;
    s.create("audit", serde_json::json!({"source": {"inline": AUDIT}, "pangea": {"autoApprove": true}, "driftDetection": drift(false)})).await?;
    for name in ["web", "audit"] {
        let t = s.until(name, "Ready", ready).await?;
        let status = t.status.unwrap();
        assert_eq!(status.resources.map(|r| r.total), Some(2), "{name}");
        assert!(!status.drift.unwrap().detected, "{name}");
    }

    s.aws
        .out_of_band(&["open-ingress", "e2e-web", "22", "0.0.0.0/0"])?;
    s.aws.out_of_band(&["suspend-versioning", "e2e-audit"])?;

    // Caught while drifted (the remediation apply takes seconds): attribute detail in status.
    let web = s.until("web", "Drifted", drifted).await?;
    let d = web.status.as_ref().and_then(|s| s.drift.clone()).unwrap();
    assert_eq!(d.severity, Some(pangea_api::common::Severity::Critical));
    let sg = d
        .resources
        .iter()
        .find(|r| r.address == "aws_security_group.web")
        .expect("sg drift in status");
    assert!(
        sg.attributes.iter().any(|a| a.path.starts_with("ingress")
            && a.actual.as_deref().is_some_and(|v| v.contains("0.0.0.0/0"))),
        "{sg:?}"
    );
    assert_eq!(cond(&web, condition::READY), Some("False"));

    let web = s
        .until("web", "remediated", |t| {
            cond(t, condition::READY) == Some("True")
                && cond(t, condition::DRIFTED) == Some("False")
        })
        .await?;
    assert!(!web.status.unwrap().drift.unwrap().detected);
    let reasons = s.event_reasons("web").await?;
    assert!(
        reasons.contains(&"DriftDetected".into()) && reasons.contains(&"DriftRemediated".into()),
        "{reasons:?}"
    );
    assert!(
        !s.aws
            .out_of_band(&["describe-ingress", "e2e-web"])?
            .contains("0.0.0.0/0"),
        "the world-open rule is still there"
    );

    let audit = s.until("audit", "Drifted", drifted).await?;
    let d = audit.status.unwrap().drift.unwrap();
    let versioning = d
        .resources
        .iter()
        .find(|r| r.address == "aws_s3_bucket_versioning.audit")
        .expect("versioning drift");
    let status_attr = versioning
        .attributes
        .iter()
        .find(|a| a.path.ends_with("status"))
        .expect("status attribute");
    assert_eq!(
        (
            status_attr.expected.as_deref(),
            status_attr.actual.as_deref()
        ),
        (Some("\"Enabled\""), Some("\"Suspended\""))
    );
    // autoRemediate: false — after another full interval the cloud object is untouched.
    tokio::time::sleep(Duration::from_secs(70)).await;
    assert!(drifted(&s.api().get("audit").await?));
    assert_eq!(
        s.aws.out_of_band(&["get-versioning", "e2e-audit"])?.trim(),
        "Suspended"
    );
    assert!(
        !s.event_reasons("audit")
            .await?
            .contains(&"DriftRemediated".into())
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn a_plan_that_deletes_without_allow_destroy_is_blocked_and_nothing_is_applied() -> Result<()>
{
    let s = Setup::start("blocked").await?;
    let two = "template :pair do\n  provider :aws do\n    region \"us-east-1\"\n  end\n  resource :aws_s3_bucket, :keep do\n    bucket \"e2e-keep\"\n  end\n  resource :aws_s3_bucket, :doomed do\n    bucket \"e2e-doomed\"\n  end\nend\n";
    s.create(
        "pair",
        serde_json::json!({"source": {"inline": two}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    s.until("pair", "Ready", ready).await?;
    let one = two.replace(
        "  resource :aws_s3_bucket, :doomed do\n    bucket \"e2e-doomed\"\n  end\n",
        "",
    );
    let patch = serde_json::json!({"spec": {"source": {"inline": one}}});
    s.api()
        .patch("pair", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let t = s
        .until("pair", "RemediationBlocked", |t| {
            cond(t, condition::REMEDIATION_BLOCKED) == Some("True")
        })
        .await?;
    let blocked = t
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == condition::REMEDIATION_BLOCKED)
        .unwrap();
    assert_eq!(blocked.reason, "DestroyNotAllowed", "{blocked:?}");
    assert!(blocked.message.contains("allowDestroy"), "{blocked:?}");
    assert!(
        s.event_reasons("pair")
            .await?
            .contains(&"RemediationBlocked".into())
    );
    assert!(
        s.aws
            .out_of_band(&["list-buckets"])?
            .lines()
            .any(|b| b == "e2e-doomed"),
        "the bucket was deleted"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn twenty_idle_templates_write_no_status_for_three_minutes() -> Result<()> {
    let s = Setup::start("idle").await?;
    let template = |i: usize| {
        format!(
            "template :idle do\n  resource :terraform_data, :marker do\n    input \"idle-{i}\"\n  end\nend\n"
        )
    };
    for i in 0..20 {
        let spec = serde_json::json!({
            "source": {"inline": template(i)}, "pangea": {"autoApprove": true},
            "reconciliation": {"interval": "30m"}, "driftDetection": {"interval": "30m"},
        });
        s.create(&format!("idle-{i}"), spec).await?;
    }
    for i in 0..20 {
        s.until(&format!("idle-{i}"), "Ready and checked", ready)
            .await?;
    }
    // Count every change to any template (status included) for three minutes.
    let api = s.api();
    let changes = watcher(api, watcher::Config::default())
        .applied_objects()
        .take_until(tokio::time::sleep(Duration::from_secs(180)));
    let versions: Vec<String> = changes
        .map_ok(|t| t.metadata.resource_version.unwrap_or_default())
        .try_collect()
        .await?;
    // The watch starts with the current objects (20 initial events); anything more is a write.
    assert_eq!(
        versions.len(),
        20,
        "objects were written while idle: {} events",
        versions.len()
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn a_killed_operator_converges_after_restart_without_duplicates() -> Result<()> {
    let mut s = Setup::start("crash").await?;
    s.create(
        "web",
        serde_json::json!({"source": {"inline": web()}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    // Kill -9 while the first apply runs.
    s.until("web", "Reconciling", |t| {
        cond(t, condition::RECONCILING) == Some("True")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.operator.take().expect("operator").kill_hard();
    let restarted = Setup::operator(&s.cp, &s.aws, &s.ns, s.state.path())?;
    s.operator = Some(restarted);
    let t = s.until("web", "Ready", ready).await?;
    assert_eq!(t.status.unwrap().resources.map(|r| r.total), Some(2));
    let groups = s.aws.out_of_band(&["count-groups", "e2e-web"])?;
    assert_eq!(groups.trim(), "1", "duplicate security groups");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn sigterm_interrupts_the_running_apply_and_releases_the_lock() -> Result<()> {
    let mut s = Setup::start("term").await?;
    s.create(
        "web",
        serde_json::json!({"source": {"inline": web()}, "pangea": {"autoApprove": true}}),
    )
    .await?;
    s.until("web", "Reconciling", |t| {
        cond(t, condition::RECONCILING) == Some("True")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let operator = s.operator.take().expect("operator");
    let log = operator.log_tail(200);
    let graceful = tokio::task::spawn_blocking(move || operator.stop()).await?;
    assert!(
        graceful,
        "the operator did not exit within its grace period:\n{log}"
    );
    // terraform's kubernetes backend holds its lock in a Lease: nobody holds it now.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = s.ns.api();
    let holder = leases
        .get_opt("lock-tfstate-default-web-state")
        .await?
        .and_then(|l| l.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|h| !h.is_empty());
    assert_eq!(holder, None, "the state lock is still held");
    s.operator = Some(Setup::operator(&s.cp, &s.aws, &s.ns, s.state.path())?);
    let t = s.until("web", "Ready", ready).await?;
    assert_eq!(t.status.unwrap().resources.map(|r| r.total), Some(2));
    assert_eq!(
        s.aws.out_of_band(&["count-groups", "e2e-web"])?.trim(),
        "1",
        "duplicate security groups"
    );
    Ok(())
}

fn bucket_template(bucket: &str) -> String {
    format!(
        "template :store do\n  provider :aws do\n    region \"us-east-1\"\n  end\n  resource :aws_s3_bucket, :store do\n    bucket \"{bucket}\"\n  end\nend\n"
    )
}

async fn until_gone(s: &Setup, name: &str) -> Result<()> {
    let start = Instant::now();
    while s.api().get_opt(name).await?.is_some() {
        if start.elapsed() > WAIT {
            let log = s
                .operator
                .as_ref()
                .map(|o| o.log_tail(60))
                .unwrap_or_default();
            bail!("{name} still exists after {}s\n{log}", WAIT.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn deleting_with_orphan_keeps_and_with_destroy_removes_the_infrastructure() -> Result<()> {
    let s = Setup::start("delete").await?;
    s.create("kept", serde_json::json!({"source": {"inline": bucket_template("e2e-kept")}, "pangea": {"autoApprove": true}})).await?;
    s.create(
        "gone",
        serde_json::json!({
            "source": {"inline": bucket_template("e2e-gone")}, "pangea": {"autoApprove": true},
            "safety": {"allowDestroy": true, "deletionPolicy": "Destroy"},
        }),
    )
    .await?;
    s.until("kept", "Ready", ready).await?;
    s.until("gone", "Ready", ready).await?;
    let buckets = s.aws.out_of_band(&["list-buckets"])?;
    assert!(
        buckets.contains("e2e-kept") && buckets.contains("e2e-gone"),
        "{buckets}"
    );
    for name in ["kept", "gone"] {
        s.api().delete(name, &Default::default()).await?;
    }
    until_gone(&s, "kept").await?;
    until_gone(&s, "gone").await?;
    let buckets: Vec<String> = s
        .aws
        .out_of_band(&["list-buckets"])?
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        buckets.contains(&"e2e-kept".to_owned()),
        "Orphan must leave the bucket: {buckets:?}"
    );
    assert!(
        !buckets.contains(&"e2e-gone".to_owned()),
        "Destroy must remove the bucket: {buckets:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the bootstrapped harness: scripts/test.sh runs it"]
async fn a_missing_configmap_and_a_ruby_error_are_reported_and_recover_when_fixed() -> Result<()> {
    let s = Setup::start("broken").await?;
    s.create("from-cm", serde_json::json!({"source": {"configMap": {"name": "later", "key": "main.rb"}}, "pangea": {"autoApprove": true}})).await?;
    let broken = "template :store do\n  provider :aws do\n    region nil.upcase\n  end\nend\n";
    s.create(
        "ruby",
        serde_json::json!({"source": {"inline": broken}, "pangea": {"autoApprove": true}}),
    )
    .await?;

    let not_ready = |t: &PangeaTemplate| cond(t, condition::READY) == Some("False");
    let t = s.until("from-cm", "Ready=False", not_ready).await?;
    let ready_cond = t
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == condition::READY)
        .unwrap();
    assert_eq!(ready_cond.reason, "InvalidSpec");
    assert!(
        ready_cond.message.contains("ConfigMap later not found"),
        "{ready_cond:?}"
    );
    assert!(
        s.event_reasons("from-cm")
            .await?
            .contains(&"InvalidSpec".into())
    );

    let t = s
        .until("ruby", "Ready=False with the Ruby error", |t| {
            not_ready(t)
                && t.status.as_ref().is_some_and(|st| {
                    st.conditions
                        .iter()
                        .any(|c| c.message.contains("main.rb:3: NoMethodError"))
                })
        })
        .await?;
    assert!(
        t.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.type_ == condition::READY && c.status == "False")
    );

    // Fix both: create the ConfigMap, correct the template.
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "later"}, "data": {"main.rb": bucket_template("e2e-from-cm")},
    }))?;
    s.ns.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    let fixed =
        serde_json::json!({"spec": {"source": {"inline": bucket_template("e2e-ruby-fixed")}}});
    s.api()
        .patch("ruby", &PatchParams::default(), &Patch::Merge(&fixed))
        .await?;
    s.until("from-cm", "recovered", ready).await?;
    s.until("ruby", "recovered", ready).await?;
    Ok(())
}

fn web() -> String {
    pangea_e2e::fixtures::web_template("10.70.0.0/16", "e2e-web")
}
