# `nix flake check`: the gates scripts/test.sh runs that need no cluster, each the same
# command as there (fmt, clippy, the workspace's unit tests) plus the generated-file diffs.
{ pkgs, src, packages, version }:
let
  inherit (pkgs) rustPlatform;

  # A workspace derivation whose build is one cargo command over the vendored Cargo.lock.
  cargoCheck = name: command: extraInputs:
    rustPlatform.buildRustPackage {
      pname = "pangea-${name}";
      inherit version src;
      cargoLock.lockFile = ../Cargo.lock;
      nativeBuildInputs = extraInputs;
      buildPhase = ''
        runHook preBuild
        ${command}
        runHook postBuild
      '';
      doCheck = false;
      installPhase = "touch $out";
    };
in
{
  fmt = pkgs.runCommand "pangea-fmt" { nativeBuildInputs = [ pkgs.cargo pkgs.rustfmt ]; } ''
    export HOME=$TMPDIR
    cd ${src} && cargo fmt --all -- --check && touch $out
  '';

  clippy = cargoCheck "clippy"
    "cargo clippy --workspace --all-targets --locked -- -D warnings"
    [ pkgs.clippy ];

  # The default members' tests need Ruby, git and sshd (real processes), no cluster.
  tests = cargoCheck "tests" "cargo test --locked"
    [ pkgs.ruby pkgs.git pkgs.openssh ];

  # The committed CRDs, and the chart's copy, are what crdgen writes (the diff gate of the
  # crdgen test).
  crds-diff = pkgs.runCommand "pangea-crds-diff" { } ''
    diff -ru ${src}/deploy/crds ${packages.crds}
    if [ -d ${src}/deploy/helm/pangea-operator/crds ]; then
      diff -ru ${src}/deploy/helm/pangea-operator/crds ${packages.crds}
    fi
    touch $out
  '';

  # The committed manifests are the chart rendered with its defaults: the repository's own
  # render script, run by the devShell's helm, compared with deploy/manifests/.
  manifests-diff = pkgs.runCommand "pangea-manifests-diff"
    { nativeBuildInputs = [ pkgs.kubernetes-helm pkgs.bash pkgs.coreutils pkgs.diffutils ]; } ''
    cp -r ${src} repo && chmod -R u+w repo && cd repo
    bash scripts/render-manifests.sh
    diff -ru ${src}/deploy/manifests deploy/manifests && touch $out
  '';
}
