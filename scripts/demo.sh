#!/usr/bin/env bash
# The demo: a local control plane with a node (containerd + kubelet) + LocalStack + the operator
# with the Job execution backend (the executor image, built by scripts/build-images.sh on the
# first run) + the templates in examples/demo/; infrastructure changed out of band; `kubectl
# get pangeatemplates` goes Drifted (with severity) and back to Ready, with the executor Jobs
# that ran and the Events.
#   scripts/demo.sh          keeps running until Ctrl-C (prints how to point kubectl at it)
#   scripts/demo.sh --once   exits 0 after one full cycle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export TF_CLI_CONFIG_FILE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}/terraformrc"
cargo build -q -p pangea-operator -p pangea-e2e --bins
exec target/debug/pangea-demo "$@"
