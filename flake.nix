# The Nix entry point: packages (operator, executor, CRD YAML, both images), a devShell with
# the whole toolchain, apps (crds, release) and checks (fmt, clippy, tests, generated-file
# diffs). The derivations run the same commands as scripts/; nix/lib.nix holds the pure parts
# (version, image settings) that the test suite evaluates without nixpkgs.
{
  description = "pangea-operator: drift detection and remediation for Pangea templates on Kubernetes";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      pangeaLib = import ./nix/lib.nix;
      version = pangeaLib.cargoVersion ./Cargo.toml;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # Only what cargo reads: a change to docs or scripts rebuilds nothing.
      src = nixpkgs.lib.fileset.toSource {
        root = ./.;
        fileset = nixpkgs.lib.fileset.unions [
          ./Cargo.toml
          ./Cargo.lock
          ./rustfmt.toml
          ./api
          ./executor
          ./operator
          ./crdgen
          ./e2e
          ./deploy
          ./examples
          ./scripts
        ];
      };

      perSystem = pkgs: rec {
        packages = import ./nix/packages.nix { inherit pkgs pangeaLib src version; };
        images = import ./nix/images.nix { inherit pkgs pangeaLib packages version; };
      };
    in
    {
      lib = pangeaLib;

      packages = forAllSystems (pkgs:
        let p = perSystem pkgs;
        in p.packages // p.images // { default = p.packages.pangea-operator; });

      devShells = forAllSystems (pkgs: { default = import ./nix/devshell.nix { inherit pkgs; }; });

      apps = forAllSystems (pkgs: import ./nix/apps.nix {
        inherit pkgs;
        inherit (perSystem pkgs) packages;
      });

      checks = forAllSystems (pkgs: import ./nix/checks.nix {
        inherit pkgs src version;
        inherit (perSystem pkgs) packages;
      });
    };
}
