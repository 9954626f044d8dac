#!/usr/bin/env bash
# The demo: a local control plane with a node (containerd + kubelet) + LocalStack + the operator
# installed with `helm install` of deploy/helm/pangea-operator (a pod, leader elected; executor
# Jobs) + the templates in examples/demo/; infrastructure changed out of band; `kubectl get
# pangeatemplates` goes Drifted (with severity) and back to Ready, with the executor Jobs that
# ran and the Events.
#   scripts/demo.sh          keeps running until Ctrl-C (prints how to point kubectl at it)
#   scripts/demo.sh --once   exits 0 after one full cycle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The operator and executor images (idempotent): the demo imports them into its node and
# installs the chart with them.
bash scripts/build-images.sh
export TF_CLI_CONFIG_FILE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}/terraformrc"
cargo build -q -p pangea-e2e --bins
exec target/debug/pangea-demo "$@"
