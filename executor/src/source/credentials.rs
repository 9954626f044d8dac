//! Git credentials from the files the operator mounts (a Secret): `token` (+ optional
//! `username`) for HTTP(S), `identity` (+ optional `known_hosts`) for SSH.
//!
//! Secrets never reach git's argv (visible in `ps`), the environment, git config on disk, logs
//! or error text. What git gets instead are *paths*:
//!
//! - HTTP(S): a credential helper, a tiny shell script in the cache that `cat`s the token file
//!   when git asks. Chosen over `GIT_ASKPASS` because the helper protocol is structured
//!   (username and password in one answer, no prompt text to parse) and can be scoped with
//!   `credential.<origin>.helper` to the repository's own server, so a redirect elsewhere gets
//!   nothing. Chosen over `http.extraHeader` in `GIT_CONFIG_*` variables because those put the
//!   token into the environment of every git child process (readable in `/proc/*/environ`,
//!   inherited by hooks and helpers) and send it to any host. The token lives only in its file
//!   and, briefly, in git's memory.
//! - SSH: `GIT_SSH_COMMAND` naming the key file, with batch mode and host key checking.

use std::{
    ffi::OsString,
    fs, io,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use super::{
    SourceError,
    atomic::{self, Staging},
    scrub::Scrubber,
    url::{RepoUrl, Transport},
};

/// Answers git's `get` with the token file; ignores `store` and `erase`, so nothing is ever
/// written anywhere. `$1` is the credentials directory, `$2` the operation. Without a
/// `username` file the user is `x-access-token` (GitHub's convention; GitLab and Gitea accept
/// any name with a token).
const HELPER_SCRIPT: &str = r#"#!/bin/sh
# git credential helper of pangea-executor: reads the token from the credentials directory.
[ "$2" = get ] || exit 0
cat >/dev/null
if [ -s "$1/username" ]; then user=$(cat "$1/username"); else user=x-access-token; fi
printf 'username=%s\npassword=%s\n' "$user" "$(cat "$1/token")"
"#;

/// What one git invocation needs to authenticate.
#[derive(Debug, Default)]
pub(crate) struct GitAuth {
    /// `-c key=value` settings; paths only, no secrets.
    pub(crate) config: Vec<String>,
    /// Environment for git; paths only, no secrets.
    pub(crate) env: Vec<(&'static str, OsString)>,
    /// Knows the secret values so git's output can be cleaned of them.
    pub(crate) scrubber: Scrubber,
    /// A private copy of the SSH key, removed when the fetch is done.
    _key_copy: Option<Staging>,
}

#[cfg(test)]
impl GitAuth {
    /// No credentials, but a scrubber that knows `scrubber`'s secrets.
    pub(crate) fn for_tests(scrubber: Scrubber) -> Self {
        Self {
            scrubber,
            ..Self::default()
        }
    }
}

/// Credentials for `url` from `dir`. Every fetch resets git's credential helpers first, so a
/// helper configured on the machine neither answers for nor stores anything of ours.
pub(crate) fn load(
    dir: Option<&Path>,
    url: &RepoUrl,
    cache_dir: &Path,
) -> Result<GitAuth, SourceError> {
    let mut auth = match (url.transport(), dir) {
        (Transport::Http, Some(dir)) => token(dir, url, cache_dir)?,
        (Transport::Ssh, Some(dir)) => ssh_key(dir, cache_dir)?,
        (Transport::Ssh, None) => GitAuth {
            env: vec![("GIT_SSH_COMMAND", "ssh -o BatchMode=yes".into())],
            ..GitAuth::default()
        },
        // file:// and git:// have no authentication; HTTP without a Secret is anonymous.
        _ => GitAuth::default(),
    };
    auth.config.insert(0, "credential.helper=".to_owned());
    Ok(auth)
}

fn token(dir: &Path, url: &RepoUrl, cache_dir: &Path) -> Result<GitAuth, SourceError> {
    ensure_dir(dir)?;
    let token = read_optional(&dir.join("token"))?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| missing(dir, "token", url.transport()))?;
    let mut scrubber = Scrubber::default();
    scrubber.add_secret(&token);
    let helper = install_helper(cache_dir)?;
    // Scoped to the repository's origin: other servers (redirect targets) get no answer.
    let origin = url.origin().unwrap_or(url.as_str());
    let helper_command = format!("!{} {}", sh_quote(&helper), sh_quote(dir));
    Ok(GitAuth {
        config: vec![format!("credential.{origin}.helper={helper_command}")],
        scrubber,
        ..GitAuth::default()
    })
}

fn ssh_key(dir: &Path, cache_dir: &Path) -> Result<GitAuth, SourceError> {
    ensure_dir(dir)?;
    let identity = dir.join("identity");
    let key = read_optional(&identity)?.ok_or_else(|| missing(dir, "identity", Transport::Ssh))?;
    let mut scrubber = Scrubber::default();
    scrubber.add_file_content(&key);
    let (key_path, key_copy) = usable_key(&identity, &key, cache_dir)?;
    let known_hosts = dir.join("known_hosts");
    // A pinned host list is enforced strictly; without one the first key seen is accepted
    // (into /dev/null, so nothing is remembered across runs).
    let (hosts_file, checking) = if known_hosts.is_file() {
        (known_hosts, "yes")
    } else {
        (PathBuf::from("/dev/null"), "accept-new")
    };
    let command = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking={checking} -o BatchMode=yes",
        sh_quote(&key_path),
        sh_quote(&hosts_file),
    );
    Ok(GitAuth {
        env: vec![("GIT_SSH_COMMAND", command.into())],
        scrubber,
        _key_copy: key_copy,
        ..GitAuth::default()
    })
}

/// ssh refuses keys readable by others, and Secret volumes are `0644` by default: such a key
/// is copied into a `0700` directory as `0600` for the duration of the fetch.
fn usable_key(
    identity: &Path,
    key: &str,
    cache_dir: &Path,
) -> Result<(PathBuf, Option<Staging>), SourceError> {
    let mode = fs::metadata(identity)
        .map_err(|source| unreadable(identity, source))?
        .permissions()
        .mode();
    if mode & 0o077 == 0 {
        return Ok((identity.to_path_buf(), None));
    }
    let parent = cache_dir.join("tmp");
    let private =
        Staging::new(&parent, "ssh").map_err(SourceError::io("create a directory in", &parent))?;
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700))
        .map_err(SourceError::io("restrict", private.path()))?;
    let copy = private.path().join("identity");
    atomic::write_file(&copy, key.as_bytes(), 0o600).map_err(SourceError::io("write", &copy))?;
    Ok((copy, Some(private)))
}

/// Installs the helper script once per content; the name carries its hash so an upgraded
/// executor never runs an older script left in a shared cache.
fn install_helper(cache_dir: &Path) -> Result<PathBuf, SourceError> {
    let hash = hex::encode(Sha256::digest(HELPER_SCRIPT));
    let path = cache_dir
        .join("bin")
        .join(format!("git-credential-pangea-{}", &hash[..12]));
    if !path.is_file() {
        atomic::write_file(&path, HELPER_SCRIPT.as_bytes(), 0o755)
            .map_err(SourceError::io("install the credential helper at", &path))?;
    }
    Ok(path)
}

fn ensure_dir(dir: &Path) -> Result<(), SourceError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(unreadable(dir, io::Error::other("not a directory"))),
        Err(source) => Err(unreadable(dir, source)),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, SourceError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(unreadable(path, source)),
    }
}

fn unreadable(path: &Path, source: io::Error) -> SourceError {
    SourceError::CredentialsUnreadable {
        path: path.to_path_buf(),
        source,
    }
}

fn missing(dir: &Path, expected: &'static str, transport: Transport) -> SourceError {
    SourceError::CredentialsMissing {
        dir: dir.to_path_buf(),
        expected,
        transport: transport.name(),
    }
}

/// Quotes a path for the shell that runs helpers and `GIT_SSH_COMMAND`.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> RepoUrl {
        RepoUrl::parse(raw).unwrap()
    }

    #[test]
    fn token_goes_to_a_scoped_helper_not_to_config_or_env() {
        let creds = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(creds.path().join("token"), "tok-SECRET-1234\n").unwrap();
        let auth = load(
            Some(creds.path()),
            &url("https://example.com:8443/x.git"),
            cache.path(),
        )
        .unwrap();
        assert_eq!(auth.config[0], "credential.helper=");
        assert!(auth.config[1].starts_with("credential.https://example.com:8443.helper=!'"));
        let everything = format!("{:?} {:?}", auth.config, auth.env);
        assert!(!everything.contains("tok-SECRET-1234"), "{everything}");
        assert_eq!(auth.scrubber.scrub("x tok-SECRET-1234 y"), "x *** y");
    }

    #[test]
    fn helper_answers_get_from_the_files_only() {
        let creds = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(creds.path().join("token"), "tok-SECRET-1234\n").unwrap();
        let helper = install_helper(cache.path()).unwrap();
        let run = |op: &str| {
            std::process::Command::new(&helper)
                .arg(creds.path())
                .arg(op)
                .output()
                .unwrap()
        };
        let get = run("get");
        assert_eq!(
            String::from_utf8(get.stdout).unwrap(),
            "username=x-access-token\npassword=tok-SECRET-1234\n"
        );
        assert!(run("store").stdout.is_empty());
        fs::write(creds.path().join("username"), "oauth2\n").unwrap();
        let get = String::from_utf8(run("get").stdout).unwrap();
        assert!(get.starts_with("username=oauth2\n"), "{get}");
    }

    #[test]
    fn missing_token_is_a_clear_error() {
        let creds = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let err = load(Some(creds.path()), &url("https://h/x.git"), cache.path()).unwrap_err();
        assert!(err.to_string().contains("no `token` file"), "{err}");
        let err = load(
            Some(&creds.path().join("nope")),
            &url("https://h/x.git"),
            cache.path(),
        )
        .unwrap_err();
        assert!(matches!(err, SourceError::CredentialsUnreadable { .. }));
    }

    #[test]
    fn open_ssh_keys_are_copied_privately_and_removed_afterwards() {
        let creds = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let identity = creds.path().join("identity");
        fs::write(
            &identity,
            "-----BEGIN KEY-----\nAAAAkeymaterial0123\n-----END KEY-----\n",
        )
        .unwrap();
        fs::set_permissions(&identity, fs::Permissions::from_mode(0o644)).unwrap();
        let auth = load(Some(creds.path()), &url("git@host:x.git"), cache.path()).unwrap();
        let command = auth.env[0].1.to_string_lossy().into_owned();
        assert!(
            command.contains("StrictHostKeyChecking=accept-new"),
            "{command}"
        );
        assert!(
            command.contains("UserKnownHostsFile='/dev/null'"),
            "{command}"
        );
        assert!(!command.contains(&*identity.to_string_lossy()), "{command}");
        let copies = cache.path().join("tmp");
        let copy = fs::read_dir(&copies)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mode = fs::metadata(copy.join("identity"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(auth.scrubber.scrub("AAAAkeymaterial0123"), "***");
        drop(auth);
        assert_eq!(fs::read_dir(&copies).unwrap().count(), 0);
    }

    #[test]
    fn pinned_known_hosts_are_checked_strictly() {
        let creds = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let identity = creds.path().join("identity");
        fs::write(&identity, "key-material-0123").unwrap();
        fs::set_permissions(&identity, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(creds.path().join("known_hosts"), "host ssh-ed25519 AAAA\n").unwrap();
        let auth = load(
            Some(creds.path()),
            &url("ssh://git@host/x.git"),
            cache.path(),
        )
        .unwrap();
        let command = auth.env[0].1.to_string_lossy().into_owned();
        assert!(command.contains("StrictHostKeyChecking=yes"), "{command}");
        assert!(command.contains(&*identity.to_string_lossy()), "{command}");
        assert!(!cache.path().join("tmp").exists());
    }

    #[test]
    fn quoting_survives_quotes_in_paths() {
        assert_eq!(sh_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
