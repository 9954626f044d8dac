#!/usr/bin/env bash
# The demo: a local control plane + LocalStack + the operator (local execution backend) + the
# templates in examples/demo/; infrastructure changed out of band; `kubectl get
# pangeatemplates` goes Drifted (with severity) and back to Ready, with the Events.
#   scripts/demo.sh          keeps running until Ctrl-C (prints how to point kubectl at it)
#   scripts/demo.sh --once   exits 0 after one full cycle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CLI_CONFIG_FILE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}/terraformrc"
cargo build -q -p pangea-operator -p pangea-e2e --bins
exec target/debug/pangea-demo "$@"
