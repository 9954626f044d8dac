//! End to end: the real `pangea-executor compile` binary and the real `ruby` against the
//! fixtures in `tests/fixtures/compile/<case>/` (`main.rb`, optional `args`, `pangea.yml`,
//! helper files, and `expected.json`). Documents are compared semantically; diagnostics by
//! file, line, class, template and message.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use assert_cmd::Command;
use rstest::rstest;
use serde_json::{Value, json};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    manifest_dir().join("tests/fixtures/compile")
}

/// The binary with a clean environment for the things that change compile results.
fn executor() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pangea-executor"));
    cmd.env_remove("PANGEA_NAMESPACE")
        .env_remove("PANGEA_RUBY")
        .current_dir(manifest_dir());
    cmd
}

fn compile(args: &[&str], file: &Path) -> Output {
    executor()
        .arg("compile")
        .args(args)
        .arg(file)
        .output()
        .expect("binary runs")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Neither a Rust panic nor a Ruby backtrace ever reaches the user.
fn assert_clean_stderr(stderr: &str) {
    assert!(
        !stderr.contains("panicked"),
        "Rust panic on stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("\tfrom "),
        "Ruby backtrace on stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains(".rb:") || !stderr.contains(":in `"),
        "Ruby backtrace:\n{stderr}"
    );
}

/// Compares one actual diagnostic with its expectation; paths are relative to the case dir.
fn assert_diagnostic(actual: &Value, expected: &Value, case_dir: &Path) {
    let file = actual["file"].as_str().map(|f| {
        Path::new(f)
            .strip_prefix(case_dir)
            .map_or_else(|_| f.to_string(), |p| p.display().to_string())
    });
    assert_eq!(
        file.as_deref(),
        expected["file"].as_str(),
        "file of {actual}"
    );
    for key in ["class", "line", "template"] {
        assert_eq!(actual[key], expected[key], "{key} of {actual}");
    }
    let message = actual["message"]
        .as_str()
        .unwrap_or_default()
        .replace(&format!("{}/", fixtures().display()), "");
    if let Some(prefix) = expected["message_prefix"].as_str() {
        assert!(
            message.starts_with(prefix),
            "message {message:?} should start {prefix:?}"
        );
    } else {
        assert_eq!(Some(message.as_str()), expected["message"].as_str());
    }
}

#[rstest]
// PANGEA_DSL.md §4, one case per row
#[case::provider_block("s4_provider_block")]
#[case::provider_repeated_merges("s4_provider_repeated_merges")]
#[case::provider_alias("s4_provider_alias")]
#[case::provider_without_block("s4_provider_without_block")]
#[case::resource_nested_block("s4_resource_nested_block")]
#[case::tags_hash_forms("s4_tags_hash_forms")]
#[case::data_filter("s4_data_filter")]
#[case::data_remote_state("s4_data_remote_state")]
#[case::variable_validation("s4_variable_validation")]
#[case::output("s4_output")]
#[case::locals("s4_locals")]
#[case::terraform_required_providers("s4_terraform_required_providers")]
#[case::terraform_backend("s4_terraform_backend")]
#[case::module_via_manifest("s4_module_via_manifest")]
#[case::depends_on("s4_depends_on")]
#[case::lifecycle("s4_lifecycle")]
#[case::count_for_each("s4_count_for_each")]
#[case::dynamic("s4_dynamic")]
#[case::provisioner("s4_provisioner")]
#[case::single_nested_blocks("s4_single_nested_blocks")]
#[case::route53_alias("s4_route53_alias")]
#[case::arrays_of_objects("s4_arrays_of_objects")]
// §6, one case per row
#[case::repeated_block_merges("s6_01_repeated_block_merges")]
#[case::array_then_block("s6_02_array_then_block")]
#[case::symbols_and_strings_merge("s6_03_symbols_and_strings_merge")]
#[case::scalars("s6_04_scalars")]
#[case::heredocs("s6_05_heredocs")]
#[case::clashing_names("s6_06_clashing_names")]
#[case::ruby_keywords("s6_07_ruby_keywords")]
#[case::reserved_helper_names("s6_08_reserved_helper_names")]
#[case::keywords_inside_blocks("s6_09_keywords_inside_blocks")]
#[case::block_parameters("s6_10_block_parameters")]
#[case::argument_plus_block("s6_11_argument_plus_block")]
#[case::too_many_arguments("s6_12_too_many_arguments")]
#[case::empty_blocks("s6_13_empty_blocks")]
#[case::hash_values_copied("s6_14_hash_values_copied")]
#[case::loops_conditionals("s6_15_loops_conditionals")]
#[case::return_values("s6_16_return_values")]
#[case::rescued_dsl_error_still_fatal("s6_17_rescued_dsl_error_still_fatal")]
// error classes and broken input
#[case::syntax_error("err_syntax")]
#[case::runtime_error_second_template("err_runtime_second_template")]
#[case::helper_arity("err_helper_arity")]
#[case::unknown_top_level("err_unknown_top_level")]
#[case::module_keyword("err_module_keyword")]
#[case::unknown_helper("err_unknown_helper")]
#[case::no_template("err_no_template")]
#[case::template_not_found("err_template_not_found")]
#[case::duplicate_template("err_duplicate_template")]
#[case::invalid_template_name("err_invalid_template_name")]
#[case::exit("err_exit")]
#[case::nan("err_nan")]
#[case::namespace_not_found("err_namespace_not_found")]
#[case::namespace_bad_state("err_namespace_bad_state")]
#[case::helper_file_raises("err_helper_file_raises")]
#[case::gem_not_loadable("err_gem_not_loadable")]
#[case::ruby_warning("ruby_warning")]
// files, namespaces, backends
#[case::multi_template("multi_template")]
#[case::require_relative_helper("require_relative_helper")]
#[case::namespace_s3("namespace_s3")]
#[case::namespace_local_dir("namespace_local_dir")]
#[case::namespace_local_file("namespace_local_file")]
#[case::backend_override("backend_override")]
#[case::backend_none("backend_none")]
fn fixture(#[case] name: &str) {
    let dir = fixtures().join(name);
    let args: Vec<String> = match std::fs::read_to_string(dir.join("args")) {
        Ok(text) => serde_json::from_str(&text).expect("args is a JSON array"),
        Err(_) => Vec::new(),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let file = dir.join("main.rb");
    let out = compile(&args, &file);
    let expected = read_json(&dir.join("expected.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let actual: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr:\n{stderr}"));

    assert_eq!(actual["templates"], expected["templates"]);
    let warnings: Vec<Value> = actual["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| json!({"class": w["class"], "line": w["line"]}))
        .collect();
    assert_eq!(Value::from(warnings), expected["warnings"]);

    let errors = actual["errors"].as_array().expect("errors");
    let wanted = expected["errors"].as_array().expect("expected errors");
    assert_eq!(errors.len(), wanted.len(), "errors: {errors:?}");
    for (error, want) in errors.iter().zip(wanted) {
        assert_diagnostic(error, want, &dir);
        let at = match error["line"].as_u64() {
            Some(line) => format!("{}:{line}: ", error["file"].as_str().unwrap_or_default()),
            None => format!("{}: ", error["file"].as_str().unwrap_or_default()),
        };
        let line = format!("{at}{}: ", error["class"].as_str().unwrap_or_default());
        assert!(stderr.contains(&line), "stderr lacks {line:?}:\n{stderr}");
    }
    assert_eq!(
        out.status.code(),
        Some(if wanted.is_empty() { 0 } else { 1 })
    );
    assert_clean_stderr(&stderr);
}

#[test]
fn out_writes_one_pretty_main_tf_json_per_template() {
    let out_dir = tempfile::tempdir().unwrap();
    let file = fixtures().join("multi_template/main.rb");
    let out = compile(&["--no-backend", "--out", path_str(out_dir.path())], &file);
    assert!(out.status.success());
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in ["network", "storage"] {
        let path = out_dir.path().join(name).join("main.tf.json");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\n  \""), "pretty-printed: {text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            stdout["templates"][name]
        );
    }
}

#[test]
fn out_writes_nothing_when_any_template_fails() {
    let out_dir = tempfile::tempdir().unwrap();
    let file = fixtures().join("err_runtime_second_template/main.rb");
    let out = compile(&["--out", path_str(out_dir.path())], &file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[test]
fn template_filter_compiles_only_that_template() {
    let file = fixtures().join("err_runtime_second_template/main.rb");
    let out = compile(&["--template", "first"], &file);
    assert!(out.status.success());
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&String> = stdout["templates"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["first"]);
}

#[test]
fn numbers_and_text_are_byte_exact_on_stdout() {
    let out = compile(&[], &fixtures().join("s6_04_scalars/main.rb"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for exact in [
        "\"ratio\": 30.0",
        "\"exponent\": 1.5e-07",
        "\"big\": 123456789012345678901234567890",
        "\"Zürich — 東京 ✓ </script> & \\\\ \\\"q\\\"\"",
    ] {
        assert!(stdout.contains(exact), "{exact} missing in:\n{stdout}");
    }
}

#[test]
fn table_lists_templates_resource_counts_and_warnings() {
    let file = fixtures().join("s6_13_empty_blocks/main.rb");
    let out = compile(&["--format", "table"], &file);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let row: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["main", "2", "0"]);
    assert!(stdout.contains("1 warning(s):"), "{stdout}");
    assert!(
        stdout.contains("main.rb:2: VanishedReferenceWarning: "),
        "{stdout}"
    );
}

#[test]
fn template_console_output_goes_to_stderr_not_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("noisy.rb");
    std::fs::write(
        &file,
        "puts 'top level'\ntemplate :t do\n  system('echo from a child')\n  \
         resource :r, :n do\n    x 1\n  end\nend\n",
    )
    .unwrap();
    let out = compile(&["--no-backend"], &file);
    assert!(out.status.success());
    let stdout: Value = serde_json::from_slice(&out.stdout).expect("stdout is only the result");
    assert_eq!(
        stdout["templates"]["t"],
        json!({"resource": {"r": {"n": {"x": 1}}}})
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("top level") && stderr.contains("from a child"),
        "{stderr}"
    );
}

#[test]
fn deadline_kills_a_hanging_template() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.rb");
    std::fs::write(&file, "sleep 30\ntemplate :t do\nend\n").unwrap();
    let started = std::time::Instant::now();
    let out = compile(&["--timeout", "1"], &file);
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed().as_secs() < 10);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("timed out"), "{stderr}");
    assert_clean_stderr(&stderr);
}

#[test]
fn missing_template_file_is_a_diagnostic() {
    let out = compile(&[], Path::new("no/such/template.rb"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no/such/template.rb: LoadError: cannot load such file"),
        "{stderr}"
    );
    assert_clean_stderr(&stderr);
}

#[test]
fn missing_ruby_is_a_clear_error() {
    let file = fixtures().join("s4_provider_block/main.rb");
    let out = executor()
        .env("PANGEA_RUBY", "/nonexistent/ruby")
        .args(["compile"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("/nonexistent/ruby does not exist"),
        "{stderr}"
    );
    assert_clean_stderr(&stderr);
}

#[test]
fn examples_compile_without_errors() {
    let examples = manifest_dir().join("../examples/templates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rb") {
            let out = compile(&["--namespace", "development"], &path);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", path.display());
            let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(stdout["warnings"], json!([]), "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected at least two example templates");
}

/// The Ruby engine's own minitest suite, with the real interpreter.
#[test]
fn ruby_minitest_suite_passes() {
    let out = std::process::Command::new(
        pangea_executor::compile::find_ruby(None).expect("ruby on PATH"),
    )
    .arg(manifest_dir().join("tests/ruby/run_all.rb"))
    .env_remove("PANGEA_NAMESPACE")
    .output()
    .expect("ruby runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.ends_with("0 failures, 0 errors, 0 skips"),
        "{summary}"
    );
    assert!(!summary.starts_with("0 runs"), "{summary}");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// `require_relative` loads helpers from the template's source tree and nothing outside it.
#[rstest]
#[case::own_directory(None, "lib/helpers", true)]
#[case::outside_the_tree(Some("tree"), "../../outside/evil", false)]
#[case::sibling_directory_with_a_wider_root(Some("tree"), "../lib/helpers", true)]
#[case::sibling_directory_without_it(None, "../lib/helpers", false)]
fn require_relative_stays_in_the_source_tree(
    #[case] root: Option<&str>,
    #[case] path: &str,
    #[case] allowed: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    for (file, text) in [
        (
            "tree/lib/helpers.rb",
            "def helper_tags\n  { team: \"platform\" }\nend\n",
        ),
        (
            "tree/net/lib/helpers.rb",
            "def helper_tags\n  { team: \"platform\" }\nend\n",
        ),
        (
            "outside/evil.rb",
            "def helper_tags\n  { stolen: true }\nend\n",
        ),
    ] {
        std::fs::create_dir_all(base.join(file).parent().unwrap()).unwrap();
        std::fs::write(base.join(file), text).unwrap();
    }
    let template_dir = base.join("tree/net");
    std::fs::create_dir_all(&template_dir).unwrap();
    let file = template_dir.join("main.rb");
    std::fs::write(&file, format!("require_relative {path:?}\ntemplate :t do\n  resource :terraform_data, :x do\n    input helper_tags\n  end\nend\n")).unwrap();
    let request = pangea_executor::compile::CompileRequest {
        file: file.clone(),
        root: root.map(|r| base.join(r)),
        backend: pangea_executor::compile::BackendChoice::None,
        ..Default::default()
    };
    let ruby = pangea_executor::compile::find_ruby(None).unwrap();
    let compiler = pangea_executor::compile::Compiler::new(ruby).with_cache_dir(base.join("cache"));
    let output = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(compiler.compile(&request))
        .unwrap();
    if allowed {
        assert!(output.is_ok(), "{:?}", output.errors);
    } else {
        let error = output.errors.first().expect("an error");
        assert_eq!(error.class, "LoadError");
        assert!(
            error.message.contains("leaves the template's source tree"),
            "{error:?}"
        );
        assert_eq!(error.line, Some(1));
    }
}
