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
    // Known since the fetch: the operator records which revision failed.
    assert!(result.source_revision.is_some(), "no revision");
}

/// A `run` request for a template whose compile never ends.
fn hanging_request(dir: &Path, timeout_seconds: u64) -> std::path::PathBuf {
    let request = dir.join("request.json");
    let req = serde_json::json!({
        "id": "exec-hang", "kind": "plan", "template": "team/slow", "timeoutSeconds": timeout_seconds,
        "source": {"content": {"content": "Kernel.sleep(600)\ntemplate :slow do\nend\n", "fileName": "slow.rb"}}
    });
    std::fs::write(&request, req.to_string()).unwrap();
    request
}

fn read_result(path: &Path) -> pangea_api::exec::ExecutionResult {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_compile_that_never_ends_stops_at_the_executions_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let request = hanging_request(dir.path(), 2);
    let out_file = dir.path().join("result.json");
    let started = std::time::Instant::now();
    let out = executor(dir.path())
        .args(["run", "--request"])
        .arg(&request)
        .arg("--out")
        .arg(&out_file)
        .timeout(std::time::Duration::from_secs(50))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // Not the compiler's own minute: the request's two seconds.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    let result = read_result(&out_file);
    assert_eq!(result.outcome, pangea_api::exec::Outcome::TimedOut);
    let error = result.error.unwrap();
    assert_eq!(error.reason, "DeadlineExceeded");
    assert!(
        error.message.starts_with("compiling the template"),
        "{}",
        error.message
    );
}

/// Whether process `pid` has a child (any of its threads may have forked it).
fn has_child(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .is_ok_and(|c| !c.trim().is_empty())
        })
}

#[test]
fn sigterm_stops_a_compile_that_never_ends_and_the_result_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let request = hanging_request(dir.path(), 600);
    let out_file = dir.path().join("result.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pangea-executor"))
        .env("PANGEA_EXECUTOR_CACHE", dir.path())
        .env("RUST_LOG", "warn")
        .args(["run", "--request"])
        .arg(&request)
        .arg("--out")
        .arg(&out_file)
        .spawn()
        .unwrap();
    // Ruby running means the executor is compiling (and its SIGTERM handler is installed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !has_child(child.id()) {
        assert!(std::time::Instant::now() < deadline, "Ruby never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let stopped = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(stopped.elapsed().as_secs() < 30, "{:?}", stopped.elapsed());
    let error = read_result(&out_file).error.unwrap();
    assert_eq!(error.reason, "Cancelled");
    assert!(
        error.message.starts_with("compiling the template"),
        "{}",
        error.message
    );
}
