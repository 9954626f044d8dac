//! The Nix flake as far as this machine can check it without a package set: every `.nix`
//! file of the repository parses (`nix-instantiate --parse`, Debian's Nix), a broken copy does
//! not, and the pure helpers of `nix/lib.nix` evaluate to the settings `scripts/build-images.sh`
//! uses, so the flake's images and the script's stay the same.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, Result, ensure};
use pangea_e2e::{Toolchain, images::repo_root};
use serde_json::Value;

/// Every `.nix` file below `dir`, skipping build output and VCS data.
fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(name, "target" | ".git" | "node_modules") {
                nix_files(&path, out)?;
            }
        } else if name.ends_with(".nix") {
            out.push(path);
        }
    }
    Ok(())
}

fn nix_instantiate(tools: &Toolchain, args: &[&str], file: Option<&Path>) -> Result<Output> {
    let mut command = Command::new(tools.nix_instantiate()?);
    // A read-only evaluation needs no store database: nothing is built or copied, and the
    // test neither needs root nor touches /nix.
    command.arg("--readonly-mode").args(args);
    if let Some(file) = file {
        command.arg(file);
    }
    command.output().context("running nix-instantiate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "needs the bootstrapped nix-instantiate: scripts/test.sh runs it"]
fn every_nix_file_parses_and_a_broken_one_does_not() -> Result<()> {
    let tools = Toolchain::load()?;
    let mut files = Vec::new();
    nix_files(&repo_root(), &mut files)?;
    files.sort();
    let names: Vec<_> = files
        .iter()
        .filter_map(|f| f.strip_prefix(repo_root()).ok())
        .map(|f| f.display().to_string())
        .collect();
    for wanted in [
        "flake.nix",
        "nix/lib.nix",
        "nix/packages.nix",
        "nix/images.nix",
    ] {
        ensure!(
            names.iter().any(|n| n == wanted),
            "{wanted} not found: {names:?}"
        );
    }
    let mut failures = Vec::new();
    for file in &files {
        let out = nix_instantiate(&tools, &["--parse"], Some(file))?;
        if !out.status.success() {
            failures.push(format!("{}: {}", file.display(), stderr(&out)));
        }
    }
    assert!(
        failures.is_empty(),
        "parse errors:\n{}",
        failures.join("\n")
    );

    // The same check on a copy with one brace missing must fail, naming the error.
    let scratch = tempfile::tempdir()?;
    let broken = scratch.path().join("flake.nix");
    let text = std::fs::read_to_string(repo_root().join("flake.nix"))?;
    let cut = text.rfind('}').context("flake.nix has no closing brace")?;
    std::fs::write(&broken, format!("{}{}", &text[..cut], &text[cut + 1..]))?;
    let out = nix_instantiate(&tools, &["--parse"], Some(&broken))?;
    ensure!(
        !out.status.success(),
        "a flake.nix without its last brace parsed"
    );
    ensure!(stderr(&out).contains("syntax error"), "{}", stderr(&out));
    eprintln!("{} .nix files parse: {names:?}", files.len());
    Ok(())
}

/// `--config.<key> <value>` arguments of the `umoci config` in build-images.sh's
/// `configure_executor`, the settings both executor variants share.
fn script_config(script: &str, key: &str) -> Vec<String> {
    let body = script
        .split_once("configure_executor() {")
        .and_then(|(_, rest)| rest.split_once("\n}\n"))
        .map_or("", |(body, _)| body);
    let flag = format!("--config.{key} ");
    body.split(&flag)
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs the bootstrapped nix-instantiate: scripts/test.sh runs it"]
fn lib_nix_evaluates_to_what_build_images_uses() -> Result<()> {
    let tools = Toolchain::load()?;
    let root = repo_root();
    let expr = format!(
        r#"let
             l = import {root}/nix/lib.nix;
             flake = import {root}/flake.nix;
           in {{
             version = l.cargoVersion {root}/Cargo.toml;
             executor = l.executorConfig {{ version = "v"; entrypoint = "/usr/bin/pangea-executor"; }};
             operator = l.operatorConfig {{ version = "v"; entrypoint = "/bin/op"; }};
             inherit (l) passwd group;
             tags = l.imageTags "1.2.3";
             flake = builtins.attrNames flake;
             nixpkgs = flake.inputs.nixpkgs.url;
           }}"#,
        root = root.display()
    );
    let out = nix_instantiate(&tools, &["--eval", "--strict", "--json", "-E", &expr], None)?;
    ensure!(out.status.success(), "evaluation failed: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout)?;

    assert_eq!(
        v["version"],
        env!("CARGO_PKG_VERSION"),
        "version from Cargo.toml"
    );
    let script = std::fs::read_to_string(root.join("scripts/build-images.sh"))?;
    let user_id = script
        .lines()
        .find_map(|l| l.strip_prefix("USER_ID="))
        .context("USER_ID in build-images.sh")?;
    let user = format!("{user_id}:{user_id}");
    let executor = &v["executor"];
    assert_eq!(executor["User"], user.as_str());
    assert_eq!(v["operator"]["User"], user.as_str());
    assert_eq!(
        executor["WorkingDir"],
        script_config(&script, "workingdir")[0].as_str()
    );
    assert_eq!(
        executor["Entrypoint"][0],
        script_config(&script, "entrypoint")[0].as_str()
    );
    let env: Vec<&str> = executor["Env"]
        .as_array()
        .context("Env")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(env, script_config(&script, "env"), "executor environment");
    // The passwd lines the script writes (its printf template with the user id filled in).
    let passwd_line = format!("pangea:x:{user_id}:{user_id}:pangea:/tmp:/sbin/nologin");
    assert!(script.contains("pangea:x:%s:%s:pangea:/tmp:/sbin/nologin"));
    assert!(
        v["passwd"]
            .as_str()
            .unwrap_or_default()
            .contains(&passwd_line)
    );
    assert!(
        v["group"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("pangea:x:{user_id}:"))
    );
    assert_eq!(v["tags"]["executorSlim"], "1.2.3-slim");
    assert_eq!(
        v["flake"],
        serde_json::json!(["description", "inputs", "outputs"])
    );
    assert!(
        v["nixpkgs"]
            .as_str()
            .is_some_and(|u| u.starts_with("github:NixOS/nixpkgs/"))
    );
    Ok(())
}
