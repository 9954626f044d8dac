# The Rust binaries and the CRD YAML. Each derivation runs the command the scripts and the
# README run (`cargo build -p …`, `pangea-crdgen --out …`), against the committed Cargo.lock.
{ pkgs, pangeaLib, src, version }:
let
  inherit (pkgs) lib rustPlatform;

  # One builder for every workspace package: the same vendored dependencies (Cargo.lock), the
  # same flags; `cargo test` is a check of its own (checks.nix), not part of a package build.
  workspacePackage = { package, bin, ... }@args:
    rustPlatform.buildRustPackage ({
      pname = package;
      inherit version src;
      cargoLock.lockFile = ../Cargo.lock;
      cargoBuildFlags = [ "--locked" "-p" package "--bin" bin ];
      doCheck = false;
      meta = {
        description = "pangea-operator workspace: ${package}";
        license = lib.licenses.asl20;
        mainProgram = bin;
      };
    } // builtins.removeAttrs args [ "package" "bin" ]);

  pangea-operator = workspacePackage pangeaLib.binaries.pangea-operator;

  # The Pangea compiler (executor/ruby/) is compiled into the binary (include_str!) and run by
  # the system Ruby: the wrapper pins that Ruby, and git/ssh for git sources and OpenTofu as
  # the engine (terraform is unfree in nixpkgs; the executor discovers either).
  pangea-executor = workspacePackage (pangeaLib.binaries.pangea-executor // {
    nativeBuildInputs = [ pkgs.makeWrapper ];
    postInstall = ''
      wrapProgram $out/bin/pangea-executor \
        --set-default PANGEA_RUBY ${pkgs.ruby}/bin/ruby \
        --prefix PATH : ${lib.makeBinPath [ pkgs.ruby pkgs.git pkgs.openssh pkgs.opentofu ]}
    '';
  });

  pangea-crdgen = workspacePackage pangeaLib.binaries.pangea-crdgen;

  # `cargo run -p pangea-crdgen` writes deploy/crds/; here the same program writes $out.
  crds = pkgs.runCommand "pangea-crds-${version}" { } ''
    ${pangea-crdgen}/bin/pangea-crdgen --out $out
  '';
in
{
  inherit pangea-operator pangea-executor pangea-crdgen crds;
}
