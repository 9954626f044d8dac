# OCI images with dockerTools.buildLayeredImage: the same contents and settings as
# scripts/build-images.sh (user 65532, /tmp writable for a read-only root filesystem, CA
# certificates); the settings come from lib.nix, which the test compares with the script.
# Here the closure is Nix store paths instead of this machine's Debian files.
{ pkgs, pangeaLib, packages, version }:
let
  tags = pangeaLib.imageTags version;

  # /etc/passwd, /etc/group, /etc/nsswitch.conf, the CA bundle and a sticky /tmp, as
  # write_base_files does.
  baseFiles = pkgs.runCommand "pangea-image-base" { } ''
    mkdir -p $out/etc/ssl/certs $out/tmp
    # The path the script-built images use (Debian's name for the bundle).
    cp ${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt $out/etc/ssl/certs/ca-certificates.crt
    printf '%s' ${pkgs.lib.escapeShellArg pangeaLib.passwd} >$out/etc/passwd
    printf '%s' ${pkgs.lib.escapeShellArg pangeaLib.group} >$out/etc/group
    printf 'hosts: files dns\n' >$out/etc/nsswitch.conf
  '';
  fixTmp = ''
    chmod 1777 tmp
  '';
in
{
  # localhost/pangea-executor:<v>-slim: pangea-executor, Ruby (the compiler's interpreter),
  # OpenTofu, git, CA certificates. No provider mirror: the -full variant of the script adds
  # this machine's mirror, which has no Nix counterpart.
  executor-image = pkgs.dockerTools.buildLayeredImage {
    name = "localhost/pangea-executor";
    tag = tags.executorSlim;
    contents = [ packages.pangea-executor baseFiles ];
    extraCommands = fixTmp;
    config = pangeaLib.executorConfig {
      inherit version;
      entrypoint = "${packages.pangea-executor}/bin/pangea-executor";
    };
  };

  # localhost/pangea-operator:<v>: the binary and CA certificates, nothing else.
  operator-image = pkgs.dockerTools.buildLayeredImage {
    name = "localhost/pangea-operator";
    tag = tags.operator;
    contents = [ baseFiles ];
    extraCommands = fixTmp;
    config = pangeaLib.operatorConfig {
      inherit version;
      entrypoint = "${packages.pangea-operator}/bin/pangea-operator";
    };
  };
}
