# Pure helpers of the flake: no nixpkgs, no store paths, so `nix-instantiate --eval` checks
# them on a machine that cannot download a package set (the e2e test `nix` does).
# The image settings mirror scripts/build-images.sh, which stays the one way images are built
# outside Nix; the test compares the two.
rec {
  # The workspace version, read from Cargo.toml the way build-images.sh reads it.
  cargoVersion = cargoToml:
    (builtins.fromTOML (builtins.readFile cargoToml)).workspace.package.version;

  # The non-root user every image runs as (the distroless "nonroot" id).
  userId = 65532;

  # Both executor variants: HOME and TMPDIR point at /tmp, where the pod mounts an emptyDir,
  # so the image works with a read-only root filesystem.
  executorEnv = [
    "PATH=/usr/local/bin:/usr/bin:/bin"
    "HOME=/tmp"
    "TMPDIR=/tmp"
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    "TF_IN_AUTOMATION=1"
    "CHECKPOINT_DISABLE=1"
  ];

  imageTags = version: {
    executorSlim = "${version}-slim";
    executorFull = "${version}-full";
    operator = version;
  };

  # OCI image config (dockerTools' `config`) of the executor; `entrypoint` is a store path in
  # the flake and /usr/bin/pangea-executor in the script-built image.
  executorConfig = { version, entrypoint }: {
    User = "${toString userId}:${toString userId}";
    WorkingDir = "/tmp";
    Env = executorEnv;
    Entrypoint = [ entrypoint ];
    Labels = { "org.opencontainers.image.version" = version; };
  };

  # The operator needs only its binary and CA certificates (it talks to the apiserver).
  operatorConfig = { version, entrypoint }: {
    User = "${toString userId}:${toString userId}";
    WorkingDir = "/tmp";
    Env = [ "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" ];
    Entrypoint = [ entrypoint ];
    Labels = { "org.opencontainers.image.version" = version; };
  };

  # /etc/passwd and /etc/group of the images, the same lines build-images.sh writes.
  passwd = ''
    root:x:0:0:root:/root:/sbin/nologin
    pangea:x:${toString userId}:${toString userId}:pangea:/tmp:/sbin/nologin
  '';
  group = ''
    root:x:0:
    pangea:x:${toString userId}:
  '';

  # The Cargo packages and binaries the flake builds, one `-p` per package like the scripts.
  binaries = {
    pangea-operator = { package = "pangea-operator"; bin = "pangea-operator"; };
    pangea-executor = { package = "pangea-executor"; bin = "pangea-executor"; };
    pangea-crdgen = { package = "pangea-crdgen"; bin = "pangea-crdgen"; };
  };
}
