//! `pangea-executor` subcommands that run terraform, on inputs that must fail cleanly: a clear
//! message, the right exit code, no panic. (The happy paths run against LocalStack in
//! `e2e_drift.rs`.)

use std::path::Path;

use assert_cmd::Command;

fn executor(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pangea-executor").unwrap();
    cmd.env("PANGEA_EXECUTOR_CACHE", cache)
        .env("RUST_LOG", "warn");
    cmd
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn broken_second_template_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.rb");
    std::fs::write(&file, "template :ok do\n  resource :null_resource, :a do\n  end\nend\n\ntemplate :bad do\n  resource :null_resource, :b do\n    triggers nil.upcase\n  end\nend\n").unwrap();
    let out = executor(dir.path())
        .args(["drift", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a template error is the user's to fix"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("two.rb:8: NoMethodError"), "{stdout}");
    assert!(stdout.contains("\"reason\": \"TemplateError\""), "{stdout}");
    assert_no_panic(&String::from_utf8_lossy(&out.stderr));
}

#[test]
fn missing_terraform_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.rb");
    std::fs::write(&file, "template :t do\n  resource :null_resource, :a do\n    triggers({ a: \"1\" })\n  end\nend\n").unwrap();
    let ruby = pangea_executor::compile::find_ruby(None).unwrap();
    let out = executor(dir.path())
        .args(["plan", "--format", "table", "--ruby"])
        .arg(ruby)
        .arg(&file)
        .env("PATH", dir.path())
        .env_remove("PANGEA_TERRAFORM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("BinaryNotFound: terraform not found: install it or put it on PATH"),
        "{stdout}"
    );
    assert_no_panic(&String::from_utf8_lossy(&out.stderr));
}

#[test]
fn run_rejects_a_malformed_request() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.json");
    std::fs::write(&request, r#"{"id": "x", "kind": "teleport"}"#).unwrap();
    let out = executor(dir.path())
        .args(["run", "--request"])
        .arg(&request)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("the request is not a valid pangea request"),
        "{stderr}"
    );
    assert_no_panic(&stderr);
}

#[test]
fn run_writes_a_typed_failure_result() {
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.json");
    let out_file = dir.path().join("result.json");
    let req = serde_json::json!({
        "id": "exec-1", "kind": "drift", "template": "team/web", "timeoutSeconds": 60,
        "source": {"content": {"content": "template :web do\n  bogus :x do\n  end\nend\n", "fileName": "web.rb"}}
    });
    std::fs::write(&request, req.to_string()).unwrap();
    let out = executor(dir.path())
        .args(["run", "--request"])
        .arg(&request)
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let result: pangea_api::exec::ExecutionResult =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(result.id, "exec-1");
    assert_eq!(result.outcome, pangea_api::exec::Outcome::Failed);
    let error = result.error.unwrap();
    assert_eq!(error.reason, "TemplateError");
    assert!(
        error
            .message
            .starts_with("web.rb:2: InvalidSynthesizerKeyError"),
        "{}",
        error.message
    );
    assert!(!error.transient);
}
