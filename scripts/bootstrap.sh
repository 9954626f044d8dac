#!/usr/bin/env bash
# Installs (idempotently) every tool the tests and the demo need, all under one cache directory:
#   kube-apiserver, kubelet, kube-controller-manager, kube-scheduler, etcd and a pause binary
#   built from the Go module proxy, a LocalStack venv (Python 3.13), a moto venv (Python 3.11),
#   Ruby, containerd, runc, the CNI plugins, podman and the OCI image tools from Debian, Helm
#   (Go module proxy) and the prometheus-operator CRDs the chart's optional objects need (from
#   the same module's examples). It DISCOVERS terraform/tofu and a provider
#   filesystem mirror and records what it found in "$PANGEA_CACHE_DIR/env".
# A warm run only checks stamps and finishes in seconds.
set -euo pipefail

KUBE_VERSION="${PANGEA_KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${PANGEA_ETCD_VERSION:-v3.6.16}"
LOCALSTACK_VERSION="${PANGEA_LOCALSTACK_VERSION:-2026.3.0}"
MOTO_VERSION="${PANGEA_MOTO_VERSION:-5.1.22}"
HELM_VERSION="${PANGEA_HELM_VERSION:-v3.21.4}"
PROMETHEUS_OPERATOR_VERSION="${PANGEA_PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"

CACHE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}"
BIN="$CACHE/bin"
STAMPS="$CACHE/stamps"
LOGS="$CACHE/bootstrap-logs"
mkdir -p "$BIN" "$STAMPS" "$LOGS"

log() { printf '[bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$STAMPS/$1"; }
timed() { local start=$SECONDS; "$@"; log "  took $((SECONDS - start))s"; }

# ---------- Go binaries: etcd, Kubernetes, pause --------------------------------------------
# Builds a one-file Go program (main.go on stdin) into $BIN/<name>; further arguments are the
# modules it needs from the Go module proxy.
build_go_program() { # name module@version...
  local name="$1" dir="$CACHE/src/$1"; shift
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/main.go"
  (
    cd "$dir"
    go mod init "pangea.local/$name" >/dev/null 2>&1
    if (($#)); then
      go get "$@" >"$LOGS/$name-get.log" 2>&1
      go mod tidy >>"$LOGS/$name-get.log" 2>&1
    fi
    CGO_ENABLED=0 go build -o "$BIN/$name.tmp" . >"$LOGS/$name-build.log" 2>&1
  )
  mv "$BIN/$name.tmp" "$BIN/$name"
}

build_etcd() {
  build_go_program etcd "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
}

# Every Kubernetes binary comes from one scratch module that requires k8s.io/kubernetes, so
# they share a version, a module graph and the Go build cache.
KUBE_BINARIES=(kube-apiserver kubelet kube-controller-manager kube-scheduler)
KUBE_MODULE_STAMP="${KUBE_VERSION} ${KUBE_BINARIES[*]} kubectl"

prepare_kube_module() {
  local dir="$CACHE/src/kubernetes"
  if stamp_ok kube-module "$KUBE_MODULE_STAMP" && [[ -f "$dir/go.sum" ]]; then return 0; fi
  local staging="v0.${KUBE_VERSION#v1.}"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init pangea.local/kubernetes >/dev/null 2>&1
    # k8s.io/kubernetes replaces its staging modules with ./staging paths, which do not exist
    # in the module zip: replace each by its published version.
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
    {
      echo "require k8s.io/kubernetes ${KUBE_VERSION}"
      grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
        awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
    } >>go.mod
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for name in "${KUBE_BINARIES[@]}" kubectl; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$name"; done
      printf ')\n'
    } >tools.go
    go mod tidy >"$LOGS/kube-tidy.log" 2>&1
  )
  stamp_set kube-module "$KUBE_MODULE_STAMP"
}

build_kube_binary() { # name
  local name="$1"
  (cd "$CACHE/src/kubernetes" &&
    CGO_ENABLED=0 go build -ldflags "$(kube_ldflags)" -o "$BIN/$name.tmp" "k8s.io/kubernetes/cmd/$name" \
      >"$LOGS/$name-build.log" 2>&1) || { tail -20 "$LOGS/$name-build.log" >&2; exit 1; }
  mv "$BIN/$name.tmp" "$BIN/$name"
}

# The sandbox ("pause") image's only binary: holds the pod's namespaces and exits on
# SIGTERM/SIGINT. Built here because there is no registry to pull registry.k8s.io/pause from.
build_pause() {
  build_go_program pangea-pause <<'GO'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
}
GO
}

kube_ldflags() {
  local pkg=k8s.io/component-base/version minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  echo "-s -w -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
}

# kubectl is usually on the machine; when it is not, build it from the same module.
ensure_kubectl() {
  if command -v kubectl >/dev/null 2>&1; then KUBECTL="$(command -v kubectl)"; return 0; fi
  KUBECTL="$BIN/kubectl"
  if stamp_ok kubectl "$KUBE_VERSION" && [[ -x "$KUBECTL" ]]; then return 0; fi
  log "kubectl not found: building ${KUBE_VERSION} from the Go module proxy"
  prepare_kube_module
  (cd "$CACHE/src/kubernetes" && CGO_ENABLED=0 timed go build -ldflags "$(kube_ldflags)" -o "$BIN/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >"$LOGS/kubectl-build.log" 2>&1)
  mv "$BIN/kubectl.tmp" "$KUBECTL"
  stamp_set kubectl "$KUBE_VERSION"
}

ensure_go_binaries() {
  command -v go >/dev/null || { log "go is required (not found on PATH)"; exit 1; }
  if ! stamp_ok etcd "$ETCD_VERSION" || [[ ! -x "$BIN/etcd" ]]; then
    log "building etcd ${ETCD_VERSION} from the Go module proxy"
    timed build_etcd
    stamp_set etcd "$ETCD_VERSION"
  fi
  local name
  for name in "${KUBE_BINARIES[@]}"; do
    if ! stamp_ok "$name" "$KUBE_VERSION" || [[ ! -x "$BIN/$name" ]]; then
      log "building $name ${KUBE_VERSION} from the Go module proxy (cold: apiserver ~5 min, then ~1 min each)"
      prepare_kube_module
      timed build_kube_binary "$name"
      stamp_set "$name" "$KUBE_VERSION"
    fi
  done
  if ! stamp_ok pause v1 || [[ ! -x "$BIN/pangea-pause" ]]; then
    log "building the pause binary"
    timed build_pause
    stamp_set pause v1
  fi
}

# ---------- Helm and the prometheus-operator CRDs ------------------------------------------
# Helm's Makefile sets its version and the Kubernetes version `helm template` and `helm lint`
# assume by ldflags; `go install` alone would report v3.x and Kubernetes v1.20, below the
# chart's kubeVersion. The assumed version is the one the harness runs.
ensure_helm() {
  local minor="${KUBE_VERSION#v1.}" want="$HELM_VERSION kube-${KUBE_VERSION}"
  minor="${minor%%.*}"
  if stamp_ok helm "$want" && [[ -x "$BIN/helm" ]]; then return 0; fi
  log "building helm ${HELM_VERSION} from the Go module proxy"
  local start=$SECONDS ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  local var
  for var in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/${var}.k8sVersionMajor=1 -X helm.sh/helm/v3/${var}.k8sVersionMinor=${minor}"
  done
  (cd "$CACHE" && GOBIN="$BIN" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >"$LOGS/helm-build.log" 2>&1) ||
    { tail -20 "$LOGS/helm-build.log" >&2; exit 1; }
  log "  took $((SECONDS - start))s"
  stamp_set helm "$want"
}

# ServiceMonitor and PrometheusRule, so tests can dry-run the chart's optional objects against
# a real apiserver. The module zip carries them under example/prometheus-operator-crd/.
PROMETHEUS_CRDS="$CACHE/crds/prometheus-operator"
ensure_prometheus_operator_crds() {
  local files=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
  if stamp_ok prometheus-operator-crds "$PROMETHEUS_OPERATOR_VERSION" &&
    [[ -f "$PROMETHEUS_CRDS/${files[0]}" && -f "$PROMETHEUS_CRDS/${files[1]}" ]]; then return 0; fi
  log "fetching the prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} CRDs from the Go module proxy"
  local dir
  dir="$(cd "$CACHE" && go mod download -json "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}" |
    sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  [[ -d "$dir/example/prometheus-operator-crd" ]] || { log "no CRDs in the module (dir: ${dir:-none})"; exit 1; }
  rm -rf "$PROMETHEUS_CRDS" && mkdir -p "$PROMETHEUS_CRDS"
  local file
  for file in "${files[@]}"; do
    install -m 0644 "$dir/example/prometheus-operator-crd/$file" "$PROMETHEUS_CRDS/$file"
  done
  stamp_set prometheus-operator-crds "$PROMETHEUS_OPERATOR_VERSION"
}

# ---------- Python emulators ---------------------------------------------------------------
find_python() { # $1 = wanted minor version, e.g. 3.13
  # pyenv shims exist for every installed version but only run the selected ones, so each
  # candidate is proven by running it.
  local want="$1" cand root=""
  command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"
  for cand in ${root:+"$root"/versions/"$want"*/bin/python"$want"} "python$want"; do
    if "$cand" -c 'import sys' >/dev/null 2>&1; then command -v "$cand"; return 0; fi
  done
  return 1
}

ensure_venv() { # name python-minor stamp-value pip-args...
  local name="$1" minor="$2" value="$3"; shift 3
  local venv="$CACHE/venv/$name"
  if stamp_ok "venv-$name" "$value" && [[ -x "$venv/bin/python" ]]; then return 0; fi
  local py
  py="$(find_python "$minor")" || { log "Python $minor not found (needed for $name)"; exit 1; }
  log "creating $name venv with $py"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  local start=$SECONDS
  "$venv/bin/pip" install --quiet "$@" >"$LOGS/pip-$name.log" 2>&1 ||
    { tail -20 "$LOGS/pip-$name.log" >&2; exit 1; }
  log "  took $((SECONDS - start))s"
  stamp_set "venv-$name" "$value"
}

ensure_emulators() {
  ensure_venv localstack 3.13 "$LOCALSTACK_VERSION" \
    "localstack-core[runtime]==${LOCALSTACK_VERSION}" 'cbor2<6' 'pyopenssl<26' 'cryptography<47' boto3
  ensure_venv moto 3.11 "$MOTO_VERSION" "moto[server]==${MOTO_VERSION}" boto3
}

# ---------- Debian packages ----------------------------------------------------------------
# Ruby runs the bundled Pangea compiler; git and sshd serve the source tests (a real SSH
# server on loopback). containerd, runc and the CNI plugins are the harness's node; umoci and
# skopeo build and convert the images (no Docker daemon, no registry); podman serves a
# Docker-compatible API so tests can run the executor image outside Kubernetes.
CNI_BIN_DIR=/usr/lib/cni

ensure_debian_packages() {
  local missing=()
  command -v ruby >/dev/null 2>&1 || missing+=(ruby)
  command -v git >/dev/null 2>&1 || missing+=(git)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v containerd >/dev/null 2>&1 || missing+=(containerd)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  [[ -x "$CNI_BIN_DIR/bridge" ]] || missing+=(containernetworking-plugins)
  command -v umoci >/dev/null 2>&1 || missing+=(umoci)
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
  # nix-instantiate parse-checks and evaluates the flake's pure parts (no nixpkgs here).
  command -v nix-instantiate >/dev/null 2>&1 || missing+=(nix-bin)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]} from Debian"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  # Packages must not start services (sshd would listen on every interface): a policy-rc.d
  # that denies starts, unless the machine already has one.
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && own_policy=1
  fi
  timed bash -c "$sudo apt-get update -qq >'$LOGS/apt.log' 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends ${missing[*]} >>'$LOGS/apt.log' 2>&1"
  [[ -z $own_policy ]] || $sudo rm -f "$policy"
}

# ---------- Discovery: terraform/tofu and provider mirror ----------------------------------
discover_provider_mirror() {
  # A filesystem mirror is <root>/<hostname>/<namespace>/<type>/<version>/<os_arch>/terraform-provider-*.
  local hit
  for root in ${PANGEA_PROVIDER_MIRROR:-} /opt /usr/share/terraform /usr/local/share/terraform "$HOME/.terraform.d" "$HOME/.local/share/terraform"; do
    [[ -d "$root" ]] || continue
    hit="$(find "$root" -maxdepth 8 -type f -name 'terraform-provider-*' 2>/dev/null | head -1)"
    if [[ -n "$hit" ]]; then
      # strip /<hostname>/<ns>/<type>/<version>/<os_arch>/<file>
      echo "$hit" | awk -F/ '{ OFS="/"; NF=NF-6; print }'
      return 0
    fi
  done
  return 1
}

write_env() {
  local tf tofu mirror ruby_bin
  tf="$(command -v terraform || true)"
  tofu="$(command -v tofu || true)"
  mirror="$(discover_provider_mirror || true)"
  ruby_bin="$(command -v ruby || true)"
  local rc="$CACHE/terraformrc"
  if [[ -n "$mirror" ]]; then
    cat >"$rc" <<RC
provider_installation {
  filesystem_mirror {
    path = "$mirror"
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
plugin_cache_dir = "$CACHE/plugin-cache"
RC
  else
    printf 'plugin_cache_dir = "%s"\n' "$CACHE/plugin-cache" >"$rc"
  fi
  mkdir -p "$CACHE/plugin-cache"
  cat >"$CACHE/env" <<ENV
PANGEA_CACHE_DIR=$CACHE
PANGEA_KUBE_APISERVER=$BIN/kube-apiserver
PANGEA_KUBELET=$BIN/kubelet
PANGEA_KUBE_CONTROLLER_MANAGER=$BIN/kube-controller-manager
PANGEA_KUBE_SCHEDULER=$BIN/kube-scheduler
PANGEA_PAUSE=$BIN/pangea-pause
PANGEA_CONTAINERD=$(command -v containerd || true)
PANGEA_CTR=$(command -v ctr || true)
PANGEA_RUNC=$(command -v runc || true)
PANGEA_PODMAN=$(command -v podman || true)
PANGEA_SKOPEO=$(command -v skopeo || true)
PANGEA_CNI_BIN_DIR=$CNI_BIN_DIR
PANGEA_ETCD=$BIN/etcd
PANGEA_LOCALSTACK_PYTHON=$CACHE/venv/localstack/bin/python
PANGEA_MOTO_PYTHON=$CACHE/venv/moto/bin/python
PANGEA_RUBY=$ruby_bin
PANGEA_KUBECTL=$KUBECTL
PANGEA_HELM=$BIN/helm
PANGEA_PROMETHEUS_OPERATOR_CRDS=$PROMETHEUS_CRDS
PANGEA_TERRAFORM=$tf
PANGEA_TOFU=$tofu
PANGEA_PROVIDER_MIRROR=$mirror
PANGEA_TF_CLI_CONFIG=$rc
ENV
  log "found: terraform=${tf:-none} tofu=${tofu:-none} ruby=${ruby_bin:-none} kubectl=$KUBECTL"
  log "found: containerd=$(command -v containerd || echo none) runc=$(command -v runc || echo none) podman=$(command -v podman || echo none)"
  log "found: provider mirror=${mirror:-none (registry)}"
  log "wrote $CACHE/env"
}

# ---------- Flux CRDs (Go module proxy) ---------------------------------------------------
# The controllers' own modules carry their CRDs in config/crd/bases/ (the api/ modules do not):
# the newest set the Go module proxy serves here, one Flux release line.
FLUX_CONTROLLERS=(
  "source-controller@${PANGEA_FLUX_SOURCE_VERSION:-v1.9.6}"
  "kustomize-controller@${PANGEA_FLUX_KUSTOMIZE_VERSION:-v1.9.6}"
  "helm-controller@${PANGEA_FLUX_HELM_VERSION:-v1.6.4}"
)
FLUX_CRDS="$CACHE/crds/flux"

ensure_flux_crds() {
  if stamp_ok flux-crds "${FLUX_CONTROLLERS[*]}" && compgen -G "$FLUX_CRDS/*.yaml" >/dev/null; then return 0; fi
  log "fetching Flux CRDs (${FLUX_CONTROLLERS[*]}) from the Go module proxy"
  local start=$SECONDS tmp="$FLUX_CRDS.tmp" module dir
  rm -rf "$tmp" && mkdir -p "$tmp"
  for module in "${FLUX_CONTROLLERS[@]}"; do
    dir="$(go mod download -json "github.com/fluxcd/$module" 2>>"$LOGS/flux-crds.log" |
      sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
    [[ -n "$dir" ]] || { log "go mod download github.com/fluxcd/$module failed"; tail -5 "$LOGS/flux-crds.log" >&2; exit 1; }
    # The module cache is read-only; install gives the copies ordinary modes.
    install -m 0644 "$dir"/config/crd/bases/*.yaml "$tmp/"
  done
  rm -rf "$FLUX_CRDS" && mv "$tmp" "$FLUX_CRDS"
  stamp_set flux-crds "${FLUX_CONTROLLERS[*]}"
  log "  $(find "$FLUX_CRDS" -name '*.yaml' | wc -l) CRDs in $((SECONDS - start))s"
}

# Adds (or replaces) one KEY=value line of $CACHE/env after write_env has written it.
record_env() { # key value
  sed -i "/^$1=/d" "$CACHE/env"
  printf '%s=%s\n' "$1" "$2" >>"$CACHE/env"
}

record_flux_nix_env() {
  record_env PANGEA_FLUX_CRDS "$FLUX_CRDS"
  record_env PANGEA_NIX_INSTANTIATE "$(command -v nix-instantiate || true)"
}

main() {
  local start=$SECONDS
  ensure_debian_packages
  ensure_emulators
  ensure_go_binaries
  ensure_kubectl
  ensure_flux_crds
  ensure_helm
  ensure_prometheus_operator_crds
  write_env
  record_flux_nix_env
  log "bootstrap complete in $((SECONDS - start))s (cache: $CACHE)"
}

main "$@"
