#!/usr/bin/env bash
# Runs every test: bootstraps the toolchain (idempotent), builds the container images the node
# tests run (idempotent), checks formatting and lints, then runs the unit, real-apiserver,
# emulator and node tests of the whole workspace (e2e included).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
# Built here rather than from inside a test so a cold build shows up as its own step.
bash scripts/build-images.sh
# The Terraform CLI config the bootstrap wrote (provider mirror, plugin cache).
export TF_CLI_CONFIG_FILE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}/terraformrc"

step() { printf '\n== %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test (workspace, e2e and harness-backed tests included)"
# Tests that need the bootstrapped harness are #[ignore]d for a plain `cargo test`.
cargo test --workspace --locked "$@" -- --include-ignored
