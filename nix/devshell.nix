# Every tool the scripts bootstrap on a Debian machine, from nixpkgs instead: with this shell,
# scripts/bootstrap.sh finds them on PATH and builds only what nixpkgs does not carry in the
# version the harness pins (kube-apiserver and friends from the Go module proxy).
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [
    # Rust workspace
    cargo rustc rustfmt clippy
    # Go: the harness's control plane, etcd and pause binaries, Flux's CRDs
    go
    # the Pangea compiler's interpreter; OpenTofu as the engine (terraform is unfree)
    ruby opentofu
    # cluster tools
    kubectl kubernetes-helm etcd
    # the harness's node and the image builders
    containerd runc cni-plugins umoci skopeo podman
    # the AWS emulators' venvs (LocalStack wants 3.13, moto 3.11)
    python313 python311
    # git sources and the SSH tests
    git openssh
    # parse checks of the flake itself
    nix
  ];
  # Debian's path of the CNI plugins is what the harness defaults to.
  CNI_PATH = "${pkgs.cni-plugins}/bin";
  TF_IN_AUTOMATION = "1";
}
