# `nix run .#crds` and `nix run .#release`: thin wrappers over the programs and scripts the
# repository already uses, run from the repository root, so there is one way to do each thing.
{ pkgs, packages }:
let
  atRoot = ''
    if [ ! -f Cargo.toml ] || [ ! -d deploy/crds ]; then
      echo "run this from the root of the pangea-operator repository" >&2
      exit 1
    fi
  '';
  crds = pkgs.writeShellApplication {
    name = "pangea-crds";
    runtimeInputs = [ packages.pangea-crdgen ];
    # crdgen's default output directories are compiled in from its source tree, which is a
    # store path here: name the repository's directories explicitly.
    text = atRoot + ''
      outs=(--out deploy/crds)
      if [ -d deploy/helm/pangea-operator ]; then outs+=(--out deploy/helm/pangea-operator/crds); fi
      pangea-crdgen "''${outs[@]}"
    '';
  };
  release = pkgs.writeShellApplication {
    name = "pangea-release";
    runtimeInputs = with pkgs; [ bash cargo rustc kubernetes-helm umoci skopeo git ];
    text = atRoot + ''
      ${crds}/bin/pangea-crds
      bash scripts/build-images.sh
      helm lint deploy/helm/pangea-operator
      bash scripts/render-manifests.sh
    '';
  };
in
{
  crds = { type = "app"; program = "${crds}/bin/pangea-crds"; };
  release = { type = "app"; program = "${release}/bin/pangea-release"; };
}
