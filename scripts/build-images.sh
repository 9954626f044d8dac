#!/usr/bin/env bash
# Builds the container images without a Docker daemon or a registry, into
# "$PANGEA_CACHE_DIR/images/": one OCI layout per image (umoci) plus an OCI archive per tag
# (skopeo) ready for `ctr -n k8s.io images import`, and `images.txt` listing "<ref> <archive>".
#
#   localhost/pangea-pause:1               the pod sandbox image (the bootstrap's pause binary)
#   localhost/pangea-executor:<v>-slim     pangea-executor, Ruby + bundled compiler, terraform/tofu
#   localhost/pangea-executor:<v>-full     slim + the provider filesystem mirror and a terraformrc
#   localhost/pangea-operator:<v>          pangea-operator for the Job backend (no Ruby, no terraform)
#
# Usage: scripts/build-images.sh            (run scripts/bootstrap.sh first)
#        PANGEA_EXECUTOR_BIN=path ...       use this binary instead of `cargo build --release`
#        PANGEA_OPERATOR_BIN=path ...       the same for pangea-operator
# Idempotent: a stamp over every input makes a warm run take about a second.
#
# The root filesystem is a closure of this machine's files, not a debootstrap: the Debian
# packages Ruby needs (dpkg's own file lists, following Depends) plus the shared libraries of
# pangea-executor (ldd), terraform/tofu as discovered, and the CA bundle. It needs no network,
# takes seconds instead of minutes, carries exactly the Ruby and terraform the tests verify on
# the host, and is smaller than a minbase system (no shell, no apt, no coreutils).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

CACHE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}"
OUT="$CACHE/images"
WORK="$OUT/work"
# The non-root user the executor runs as (the distroless "nonroot" id).
USER_ID=65532
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
MIRROR_IN_IMAGE=/usr/share/terraform/providers

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

[[ -f "$CACHE/env" ]] || die "$CACHE/env missing: run scripts/bootstrap.sh first"
# shellcheck disable=SC1091
source "$CACHE/env"
for tool in umoci skopeo dpkg-query ldd; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/bootstrap.sh"
done
mkdir -p "$OUT" "$WORK"
# Tests and people may run this at the same time: one build at a time per cache.
exec 9>"$OUT/.lock"
flock 9

# ---------- inputs ---------------------------------------------------------------------------
# Sets EXECUTOR_BIN and OPERATOR_BIN: the given binaries, or one `cargo build --release` of
# those not given (one invocation shares the dependency builds).
release_binaries() {
  local packages=()
  EXECUTOR_BIN="${PANGEA_EXECUTOR_BIN:-}"
  OPERATOR_BIN="${PANGEA_OPERATOR_BIN:-}"
  [[ -n "$EXECUTOR_BIN" ]] || packages+=(-p pangea-executor --bin pangea-executor)
  [[ -n "$OPERATOR_BIN" ]] || packages+=(-p pangea-operator --bin pangea-operator)
  if ((${#packages[@]})); then
    log "cargo build --release ${packages[*]}"
    cargo build --release --locked --quiet "${packages[@]}" >&2
  fi
  local target="${CARGO_TARGET_DIR:-target}/release"
  EXECUTOR_BIN="${EXECUTOR_BIN:-$target/pangea-executor}"
  OPERATOR_BIN="${OPERATOR_BIN:-$target/pangea-operator}"
}

# Installed packages reachable from $@ through Depends/Pre-Depends (first installed
# alternative). debconf is a maintainer-script tool: nothing runs it inside the image.
package_closure() {
  local -A seen=()
  local todo=("$@") pkg dep
  while ((${#todo[@]})); do
    pkg="${todo[-1]}"; unset 'todo[-1]'
    [[ -n "${seen[$pkg]:-}" || "$pkg" == debconf ]] && continue
    seen[$pkg]=1
    while read -r dep; do todo+=("$dep"); done < <(installed_deps "$pkg")
  done
  printf '%s\n' "${!seen[@]}" | sort
}

installed_deps() { # pkg -> one installed dependency per line
  dpkg-query -W -f '${Depends},${Pre-Depends}\n' "$1" | tr ',' '\n' | while read -r alternatives; do
    [[ -z "$alternatives" ]] && continue
    local alt name
    IFS='|' read -ra alt <<<"$alternatives"
    for name in "${alt[@]}"; do
      name="$(awk '{print $1}' <<<"$name")"; name="${name%%:*}"
      if dpkg-query -W -f '${Status}' "$name" 2>/dev/null | grep -q ' installed$'; then
        echo "$name"; break
      fi
    done
  done
}

# ---------- root filesystem ------------------------------------------------------------------
# Copies a file or symlink to the same canonical directory under $ROOT (Debian 12 merges /lib
# into /usr/lib; the image gets the same symlinks).
put() { # root path
  local root="$1" src="$2" dir
  dir="$(realpath "$(dirname "$src")")"
  mkdir -p "$root$dir"
  cp -a --no-dereference "$src" "$root$dir/"
}

put_libraries() { # root binary
  local root="$1" bin="$2" lib
  # Static binaries (terraform, tofu) make ldd fail: they need nothing more.
  ldd "$bin" >/dev/null 2>&1 || return 0
  # [[:space:]], not \s: Debian's awk is mawk, which has no \s, and the loader's line
  # (`/lib64/ld-linux-x86-64.so.2 (0x…)`) would be skipped.
  for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+ \(/{print $1}'); do
    put "$root" "$lib"
    if [[ -L "$lib" ]]; then put "$root" "$(realpath "$lib")"; fi
  done
  return 0
}

# One tar pipe for the ~2,700 package files (a copy per file takes minutes); names under the
# merged /bin, /sbin, /lib, /lib64 are rewritten to /usr like put() does.
put_packages() { # root packages...
  local root="$1" path; shift
  dpkg-query -L "$@" | grep -vE '^/usr/share/(doc|man|info|lintian|locale|bug)(/|$)' | sort -u |
    while read -r path; do
      if [[ -L "$path" || ! -d "$path" ]] && [[ -e "$path" || -L "$path" ]]; then echo "${path#/}"; fi
    done >"$WORK/package-files.txt"
  tar -C / --no-recursion -cf - -T "$WORK/package-files.txt" |
    tar -C "$root" -xf - --transform 's,^\(bin\|sbin\|lib64\|lib\)/,usr/\1/,'
}

write_base_files() { # root
  local root="$1"
  for link in bin sbin lib lib64; do [[ -e "$root/$link" ]] || ln -s "usr/$link" "$root/$link"; done
  mkdir -p "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\npangea:x:%s:%s:pangea:/tmp:/sbin/nologin\n' \
    "$USER_ID" "$USER_ID" >"$root/etc/passwd"
  printf 'root:x:0:\npangea:x:%s:\n' "$USER_ID" >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

build_executor_rootfs() { # root executor
  local root="$1" executor="$2" ruby_pkg
  rm -rf "$root" && mkdir -p "$root"
  ruby_pkg="$(dpkg-query -S "$(command -v ruby)" | cut -d: -f1)"
  # shellcheck disable=SC2046
  put_packages "$root" $(package_closure "$ruby_pkg")
  write_base_files "$root"
  local tool
  for tool in "$executor" "${PANGEA_TERRAFORM:-}" "${PANGEA_TOFU:-}"; do
    [[ -n "$tool" ]] || continue
    install -D -m 0755 "$tool" "$root/usr/bin/$(basename "$tool")"
    put_libraries "$root" "$tool"
  done
  find "$root" -depth -type d -empty -not -path "$root/tmp" -delete
}

# The operator with the Job backend runs no Ruby and no terraform (executor pods do): its root
# filesystem is the binary, its shared libraries and the CA bundle.
build_operator_rootfs() { # root operator
  local root="$1" operator="$2"
  rm -rf "$root" && mkdir -p "$root"
  write_base_files "$root"
  install -D -m 0755 "$operator" "$root/usr/bin/pangea-operator"
  put_libraries "$root" "$operator"
}

# ---------- images ---------------------------------------------------------------------------
new_image() { # layout tag
  rm -rf "$1" && umoci init --layout "$1" && umoci new --image "$1:$2"
}

# Environment shared by both variants: HOME and TMPDIR point at /tmp, where the pod mounts an
# emptyDir, so the image works with a read-only root filesystem.
configure_executor() { # layout tag
  umoci config --image "$1:$2" --no-history \
    --config.user "$USER_ID:$USER_ID" --config.workingdir /tmp \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env HOME=/tmp \
    --config.env TMPDIR=/tmp --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.env TF_IN_AUTOMATION=1 --config.env CHECKPOINT_DISABLE=1 \
    --config.entrypoint /usr/bin/pangea-executor \
    --config.label "org.opencontainers.image.version=$VERSION"
}

export_archive() { # layout tag ref
  local archive="$OUT/$(basename "$1")-$2.tar"
  rm -f "$archive"
  skopeo copy --quiet "oci:$1:$2" "oci-archive:$archive:$3" >&2
  printf '%s %s\n' "$3" "$archive"
}

build_pause() {
  local layout="$OUT/pangea-pause" root="$WORK/pause"
  rm -rf "$root" && mkdir -p "$root"
  install -m 0755 "$PANGEA_PAUSE" "$root/pause"
  new_image "$layout" 1
  umoci insert --image "$layout:1" --history.created_by "build-images.sh: pause" "$root/pause" /pause
  umoci config --image "$layout:1" --no-history --config.user 65535:65535 --config.entrypoint /pause
  umoci gc --layout "$layout"
  export_archive "$layout" 1 localhost/pangea-pause:1
}

build_executor() { # executor binary
  local layout="$OUT/pangea-executor" root="$WORK/executor" slim="$VERSION-slim" full="$VERSION-full"
  build_executor_rootfs "$root" "$1"
  new_image "$layout" "$slim"
  umoci insert --image "$layout:$slim" --history.created_by "build-images.sh: host closure" "$root" /
  configure_executor "$layout" "$slim"
  export_archive "$layout" "$slim" "localhost/pangea-executor:$slim"
  [[ -n "${PANGEA_PROVIDER_MIRROR:-}" ]] || { log "no provider mirror found: skipping -full"; return 0; }
  local rc="$WORK/terraformrc"
  printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n  }\n  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n' \
    "$MIRROR_IN_IMAGE" >"$rc"
  umoci insert --image "$layout:$slim" --tag "$full" \
    --history.created_by "build-images.sh: provider mirror" "$PANGEA_PROVIDER_MIRROR" "$MIRROR_IN_IMAGE"
  umoci insert --image "$layout:$full" --history.created_by "build-images.sh: terraformrc" "$rc" /etc/terraformrc
  umoci config --image "$layout:$full" --no-history --config.env TF_CLI_CONFIG_FILE=/etc/terraformrc
  umoci gc --layout "$layout"
  export_archive "$layout" "$full" "localhost/pangea-executor:$full"
}

# HOME and TMPDIR point at /tmp (an emptyDir in the chart's pod) for the read-only root
# filesystem; --state-dir is the other emptyDir.
build_operator() { # operator binary
  local layout="$OUT/pangea-operator" root="$WORK/operator"
  build_operator_rootfs "$root" "$1"
  new_image "$layout" "$VERSION"
  umoci insert --image "$layout:$VERSION" --history.created_by "build-images.sh: operator" "$root" /
  umoci config --image "$layout:$VERSION" --no-history \
    --config.user "$USER_ID:$USER_ID" --config.workingdir /tmp \
    --config.env PATH=/usr/bin:/bin --config.env HOME=/tmp --config.env TMPDIR=/tmp \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.entrypoint /usr/bin/pangea-operator \
    --config.label "org.opencontainers.image.version=$VERSION"
  umoci gc --layout "$layout"
  export_archive "$layout" "$VERSION" "localhost/pangea-operator:$VERSION"
}

# ---------- stamp ----------------------------------------------------------------------------
inputs_digest() { # executor binary, operator binary
  {
    cat "$0"
    sha256sum "$1" "$2" "$PANGEA_PAUSE" | cut -d' ' -f1
    for tool in "${PANGEA_TERRAFORM:-}" "${PANGEA_TOFU:-}"; do
      if [[ -n "$tool" ]]; then stat -L -c '%n %s %Y' "$tool"; fi
    done
    dpkg-query -W -f '${Package} ${Version}\n' "$(dpkg-query -S "$(command -v ruby)" | cut -d: -f1)"
    stat -L -c '%Y' /etc/ssl/certs/ca-certificates.crt
    if [[ -n "${PANGEA_PROVIDER_MIRROR:-}" ]]; then
      find -L "$PANGEA_PROVIDER_MIRROR" -type f -printf '%P %s %T@\n' | sort
    fi
  } | sha256sum | cut -d' ' -f1
}

report_sizes() {
  local tag
  for tag in "$VERSION-slim" "$VERSION-full"; do
    local archive="$OUT/pangea-executor-$tag.tar"
    [[ -f "$archive" ]] || continue
    log "pangea-executor:$tag: $(du -m "$archive" | cut -f1) MB archive (compressed layers)"
  done
  log "unpacked root filesystem: $(du -sm "$WORK/executor" | cut -f1) MB + provider mirror" \
    "$( [[ -n "${PANGEA_PROVIDER_MIRROR:-}" ]] && du -smL "$PANGEA_PROVIDER_MIRROR" | cut -f1) MB"
  log "pangea-operator:$VERSION: $(du -k "$OUT/pangea-operator-$VERSION.tar" | cut -f1) KB archive," \
    "$(du -sk "$WORK/operator" | cut -f1) KB unpacked"
}

main() {
  local start=$SECONDS digest
  release_binaries
  [[ -x "$EXECUTOR_BIN" ]] || die "pangea-executor binary not found at $EXECUTOR_BIN"
  [[ -x "$OPERATOR_BIN" ]] || die "pangea-operator binary not found at $OPERATOR_BIN"
  digest="$(inputs_digest "$EXECUTOR_BIN" "$OPERATOR_BIN")"
  if [[ -f "$OUT/stamp" && "$(cat "$OUT/stamp")" == "$digest" && -f "$OUT/images.txt" ]]; then
    log "images up to date ($OUT/images.txt)"
    return 0
  fi
  log "building images into $OUT"
  rm -f "$OUT/stamp"
  {
    build_pause
    build_executor "$EXECUTOR_BIN"
    build_operator "$OPERATOR_BIN"
  } >"$OUT/images.txt.tmp"
  mv "$OUT/images.txt.tmp" "$OUT/images.txt"
  printf '%s' "$digest" >"$OUT/stamp"
  report_sizes
  log "images built in $((SECONDS - start))s: $(tr '\n' ' ' <"$OUT/images.txt")"
}

main "$@"
