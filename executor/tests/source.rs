//! Template sources against real git: repositories made with the git CLI, served over
//! `file://`, a real smart-HTTP server with Basic auth, and (when installed) a real sshd.

#[path = "support/git_fixture.rs"]
mod git_fixture;
#[path = "support/ssh_server.rs"]
mod ssh_server;

use std::{
    fs,
    net::TcpListener,
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use git_fixture::{HttpServer, Origin, files_containing, free_port, mirror_dirs};
use pangea_api::exec::RequestSource;
use pangea_executor::source::{self, FetchedSource, SourceError, Step};
use rstest::rstest;
use sha2::{Digest, Sha256};
use ssh_server::SshServer;

const DEADLINE: Duration = Duration::from_secs(60);
const TOKEN: &str = "tok-9f8e7d6c5b4a-SECRET";

fn content(text: &str, file_name: &str) -> RequestSource {
    RequestSource::Content {
        content: text.to_owned(),
        file_name: file_name.to_owned(),
    }
}

fn git_source(url: &str, git_ref: Option<&str>, path: &str, creds: Option<&Path>) -> RequestSource {
    RequestSource::Git {
        repository: url.to_owned(),
        git_ref: git_ref.map(str::to_owned),
        path: path.to_owned(),
        credentials_dir: creds.map(|p| p.to_str().unwrap().to_owned()),
    }
}

async fn fetch(source: &RequestSource, cache: &Path) -> Result<FetchedSource, SourceError> {
    source::fetch(source, cache, DEADLINE).await
}

/// Display and Debug of `err`, asserted free of `secret`.
fn assert_secret_free(err: &SourceError, secret: &str) -> String {
    let shown = format!("{err}\n{err:?}");
    assert!(!shown.contains(secret), "secret leaked: {shown}");
    shown
}

/// A credentials directory as the operator mounts it (Secret volumes are 0644).
fn credentials(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, value) in files {
        let path = dir.path().join(name);
        fs::write(&path, value).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

// ---- content sources ------------------------------------------------------------------

#[tokio::test]
async fn content_revision_is_stable_and_content_addressed() {
    let cache = tempfile::tempdir().unwrap();
    let text = "template :net do\nend\n";
    let first = fetch(&content(text, "main.rb"), cache.path())
        .await
        .unwrap();
    let again = fetch(&content(text, "main.rb"), cache.path())
        .await
        .unwrap();
    let other = fetch(&content("# other\n", "main.rb"), cache.path())
        .await
        .unwrap();

    let expected = format!("sha256:{}", hex::encode(Sha256::digest(text)));
    assert_eq!(first.revision, expected);
    assert_eq!(first, again);
    assert_ne!(other.revision, first.revision);
    assert_ne!(other.root, first.root);
    assert_eq!(fs::read_to_string(&first.file).unwrap(), text);
    assert_eq!(first.file, first.root.join("main.rb"));
    assert!(first.root.starts_with(cache.path().join("content")));
}

#[tokio::test]
async fn content_concurrent_fetches_agree() {
    let cache = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let cache = cache.path().to_path_buf();
            tokio::spawn(async move {
                source::fetch(&content("# same\n", "main.rb"), &cache, DEADLINE).await
            })
        })
        .collect();
    let mut results = vec![];
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(fs::read_to_string(&results[0].file).unwrap(), "# same\n");
    // One directory: staging copies of the losers are gone.
    assert_eq!(
        fs::read_dir(cache.path().join("content")).unwrap().count(),
        1
    );
}

#[rstest]
#[case("../main.rb")]
#[case("lib/../../main.rb")]
#[case("/etc/main.rb")]
#[case("")]
#[tokio::test]
async fn content_rejects_escaping_file_names(#[case] file_name: &str) {
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(&content("# x\n", file_name), cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::InvalidFileName { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(!cache.path().join("etc").exists());
}

// ---- git over file:// -------------------------------------------------------------------

#[rstest]
#[case::default_branch(None, "trunk", "# trunk v2")]
#[case::branch(Some("feature"), "feature", "# feature")]
#[case::tag(Some("v1.0.0"), "v1.0.0", "# trunk v1")]
#[case::head_means_default(Some("HEAD"), "trunk", "# trunk v2")]
#[tokio::test]
async fn git_resolves_refs_and_checks_out_siblings(
    #[case] git_ref: Option<&str>,
    #[case] origin_rev: &str,
    #[case] marker: &str,
) {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let fetched = fetch(
        &git_source(&origin.url(), git_ref, "main.rb", None),
        cache.path(),
    )
    .await
    .unwrap();

    assert_eq!(fetched.revision, origin.rev(origin_rev));
    assert_eq!(
        fetched.root,
        cache.path().join("checkouts").join(&fetched.revision)
    );
    assert_eq!(fetched.file, fetched.root.join("main.rb"));
    assert!(fs::read_to_string(&fetched.file).unwrap().contains(marker));
    assert!(
        fetched.root.join("lib/helpers.rb").is_file(),
        "sibling missing"
    );
    assert!(!fetched.root.join(".git").exists());
}

#[tokio::test]
async fn git_resolves_full_and_short_commit_shas() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let c1 = origin.rev("v1.0.0");
    for git_ref in [c1.clone(), c1[..10].to_owned()] {
        let fetched = fetch(
            &git_source(&origin.url(), Some(&git_ref), "main.rb", None),
            cache.path(),
        )
        .await
        .unwrap();
        assert_eq!(fetched.revision, c1);
        assert!(
            fs::read_to_string(&fetched.file)
                .unwrap()
                .contains("# trunk v1")
        );
    }
}

#[tokio::test]
async fn git_path_selects_a_nested_template() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let fetched = fetch(
        &git_source(&origin.url(), None, "stacks/net.rb", None),
        cache.path(),
    )
    .await
    .unwrap();
    assert_eq!(fetched.file, fetched.root.join("stacks/net.rb"));
    assert_eq!(
        fs::read_to_string(&fetched.file).unwrap(),
        "# network stack\n"
    );
}

#[tokio::test]
async fn git_second_fetch_reuses_the_mirror_and_sees_new_commits() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let source = git_source(&origin.url(), None, "main.rb", None);
    let first = fetch(&source, cache.path()).await.unwrap();
    let mirrors = mirror_dirs(cache.path());
    assert_eq!(mirrors.len(), 1);
    // A re-clone would replace the directory and lose this file.
    let marker = mirrors[0].join("pangea-test-marker");
    fs::write(&marker, "kept").unwrap();

    let new_head = origin.commit("main.rb", "# trunk v3\n", "c3");
    let second = fetch(&source, cache.path()).await.unwrap();

    assert_ne!(second.revision, first.revision);
    assert_eq!(second.revision, new_head);
    assert_eq!(fs::read_to_string(&second.file).unwrap(), "# trunk v3\n");
    assert_eq!(mirror_dirs(cache.path()), mirrors);
    assert!(marker.is_file(), "the mirror was re-created");
    // The old checkout is untouched, for runs still using it.
    assert!(
        fs::read_to_string(&first.file)
            .unwrap()
            .contains("# trunk v2")
    );
}

#[tokio::test]
async fn git_mirrored_commit_needs_no_network() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let sha = origin.rev("trunk");
    let source = git_source(&origin.url(), Some(&sha), "main.rb", None);
    fetch(&source, cache.path()).await.unwrap();
    let url = origin.url();
    drop(origin); // the repository is gone
    let again = fetch(&source, cache.path()).await.unwrap();
    assert_eq!(again.revision, sha);
    let err = fetch(
        &git_source(&url, Some("trunk"), "main.rb", None),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SourceError::RepositoryNotFound { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn git_concurrent_fetches_share_one_mirror() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = ["trunk", "feature", "v1.0.0", "trunk"]
        .into_iter()
        .map(|git_ref| {
            let source = git_source(&origin.url(), Some(git_ref), "main.rb", None);
            let cache = cache.path().to_path_buf();
            tokio::spawn(async move { source::fetch(&source, &cache, DEADLINE).await })
        })
        .collect();
    let mut revisions = vec![];
    for task in tasks {
        revisions.push(task.await.unwrap().unwrap().revision);
    }
    assert_eq!(revisions[0], origin.rev("trunk"));
    assert_eq!(revisions[1], origin.rev("feature"));
    assert_eq!(revisions[2], origin.rev("v1.0.0"));
    assert_eq!(revisions[3], revisions[0]);
    assert_eq!(mirror_dirs(cache.path()).len(), 1);
}

#[rstest]
#[case("no-such-branch")]
#[case("0123456789abcdef0123456789abcdef01234567")]
#[tokio::test]
async fn git_unknown_ref_needs_a_person(#[case] git_ref: &str) {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(
        &git_source(&origin.url(), Some(git_ref), "main.rb", None),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::RefNotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(err.reason(), "SourceRefNotFound");
    assert!(err.to_string().contains(git_ref), "{err}");
}

#[tokio::test]
async fn git_missing_path_is_named() {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(
        &git_source(&origin.url(), None, "stacks/nope.rb", None),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::PathNotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("stacks/nope.rb"), "{err}");
    assert!(err.to_string().contains(&origin.rev("trunk")), "{err}");
}

#[rstest]
#[case("../outside.rb")]
#[case("/etc/passwd")]
#[tokio::test]
async fn git_path_must_stay_inside_the_checkout(#[case] path: &str) {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(&git_source(&origin.url(), None, path, None), cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::InvalidPath { .. }), "{err:?}");
    // Rejected before any git work.
    assert!(mirror_dirs(cache.path()).is_empty());
}

#[rstest]
#[case("ext::sh -c touch% /tmp/pangea-pwned")]
#[case("main~1")]
#[tokio::test]
async fn git_hostile_urls_and_refs_are_refused_up_front(#[case] value: &str) {
    let origin = Origin::new();
    let cache = tempfile::tempdir().unwrap();
    let by_url = fetch(&git_source(value, None, "main.rb", None), cache.path()).await;
    let by_ref = fetch(
        &git_source(&origin.url(), Some(value), "main.rb", None),
        cache.path(),
    )
    .await;
    assert!(
        matches!(by_url, Err(SourceError::InvalidUrl { .. })),
        "{by_url:?}"
    );
    assert!(
        matches!(by_ref, Err(SourceError::InvalidRef { .. })),
        "{by_ref:?}"
    );
    assert!(!Path::new("/tmp/pangea-pwned").exists());
}

// ---- network failures and deadlines ---------------------------------------------------

#[tokio::test]
async fn git_unreachable_repository_is_transient_and_fast() {
    let cache = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/x.git", free_port());
    let started = Instant::now();
    let err = fetch(&git_source(&url, None, "main.rb", None), cache.path())
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&url), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn git_hanging_server_times_out_naming_the_step() {
    // Accepts connections (the kernel completes the handshake) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/hang.git");
    let cache = tempfile::tempdir().unwrap();
    let deadline = Duration::from_secs(3);
    let started = Instant::now();
    let err = source::fetch(
        &git_source(&url, None, "main.rb", None),
        cache.path(),
        deadline,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Timeout {
                step: Step::Fetch,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains("git fetch"), "{err}");
    assert!(started.elapsed() < deadline + Duration::from_secs(10));
    // git's HTTP helper was killed with it, not left blocked on the socket.
    assert!(
        wait_until_no_process_mentions(&format!("127.0.0.1:{port}")),
        "a git process outlived the deadline"
    );
    drop(listener);
}

/// Polls `/proc/*/cmdline` for up to 5 s until no process names `needle`.
fn wait_until_no_process_mentions(needle: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .any(|entry| {
                fs::read(entry.path().join("cmdline"))
                    .map(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
                    .unwrap_or(false)
            });
        if !alive {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- HTTP(S) token auth against a real server ----------------------------------------

/// An origin served by `git_http_server.py` as `repo.git`, password [`TOKEN`].
struct AuthServer {
    origin: Origin,
    server: HttpServer,
    _root: tempfile::TempDir,
}

impl AuthServer {
    fn start(user: Option<&str>) -> Self {
        let origin = Origin::new();
        let root = tempfile::tempdir().unwrap();
        origin.bare_copy(&root.path().join("repo.git"));
        let token_file = root.path().join("server-token");
        fs::write(&token_file, TOKEN).unwrap();
        let server = HttpServer::start(root.path(), &token_file, user);
        Self {
            origin,
            server,
            _root: root,
        }
    }

    fn url(&self) -> String {
        self.server.url("repo.git")
    }
}

#[tokio::test]
async fn http_token_from_file_authenticates_and_is_stored_nowhere() {
    let server = AuthServer::start(Some("x-access-token"));
    let creds = credentials(&[("token", &format!("{TOKEN}\n"))]);
    let cache = tempfile::tempdir().unwrap();
    let source = git_source(
        &server.url(),
        Some("feature"),
        "main.rb",
        Some(creds.path()),
    );

    let fetched = fetch(&source, cache.path()).await.unwrap();
    assert_eq!(fetched.revision, server.origin.rev("feature"));
    assert!(fetched.root.join("lib/helpers.rb").is_file());

    let mirror = &mirror_dirs(cache.path())[0];
    let config = fs::read_to_string(mirror.join("config")).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    assert!(config.contains(&server.url()), "{config}");
    assert!(!config.contains("credential"), "{config}");
    assert_eq!(
        files_containing(cache.path(), TOKEN),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test]
async fn http_username_file_is_used() {
    let server = AuthServer::start(Some("pangea-bot"));
    let cache = tempfile::tempdir().unwrap();
    let plain = credentials(&[("token", TOKEN)]);
    let named = credentials(&[("token", TOKEN), ("username", "pangea-bot\n")]);

    let err = fetch(
        &git_source(&server.url(), None, "main.rb", Some(plain.path())),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    let fetched = fetch(
        &git_source(&server.url(), None, "main.rb", Some(named.path())),
        cache.path(),
    )
    .await
    .unwrap();
    assert_eq!(fetched.revision, server.origin.rev("trunk"));
}

#[tokio::test]
async fn http_wrong_token_needs_a_person_and_is_not_shown() {
    let server = AuthServer::start(None);
    let wrong = "tok-WRONG-0000-SECRET";
    let creds = credentials(&[("token", wrong)]);
    let cache = tempfile::tempdir().unwrap();
    let err = fetch(
        &git_source(&server.url(), None, "main.rb", Some(creds.path())),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(err.reason(), "SourceAuthFailed");
    let shown = assert_secret_free(&err, wrong);
    assert!(!shown.contains(TOKEN));
    assert!(shown.contains(&server.url()), "{shown}");
    assert!(files_containing(cache.path(), wrong).is_empty());
}

#[tokio::test]
async fn http_without_credentials_fails_without_prompting() {
    let server = AuthServer::start(None);
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = fetch(
        &git_source(&server.url(), None, "main.rb", None),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn http_missing_token_file_and_password_in_url_are_clear() {
    let server = AuthServer::start(None);
    let cache = tempfile::tempdir().unwrap();
    let empty = credentials(&[("identity", "not for https")]);
    let err = fetch(
        &git_source(&server.url(), None, "main.rb", Some(empty.path())),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SourceError::CredentialsMissing { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("`token`"), "{err}");

    let with_password = server
        .url()
        .replace("http://", &format!("http://bot:{TOKEN}@"));
    let err = fetch(
        &git_source(&with_password, None, "main.rb", None),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::InvalidUrl { .. }), "{err:?}");
    assert_secret_free(&err, TOKEN);
}

/// Every error these tests can provoke with a token in play, Display and Debug, token-free.
#[tokio::test]
async fn no_error_shows_the_token() {
    let server = AuthServer::start(None);
    let creds = credentials(&[("token", TOKEN)]);
    let wrong = credentials(&[("token", "tok-not-the-right-one")]);
    let cache = tempfile::tempdir().unwrap();
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!(
        "http://127.0.0.1:{}/x.git",
        hanging.local_addr().unwrap().port()
    );
    let closed_url = format!("http://127.0.0.1:{}/x.git", free_port());
    let url = server.url();
    let attempts = [
        git_source(&url, Some("no-such-ref"), "main.rb", Some(creds.path())),
        git_source(&url, None, "nope.rb", Some(creds.path())),
        git_source(&url, None, "../x.rb", Some(creds.path())),
        git_source(&url, Some("a..b"), "main.rb", Some(creds.path())),
        git_source(
            &server.server.url("missing.git"),
            None,
            "main.rb",
            Some(creds.path()),
        ),
        git_source(&closed_url, None, "main.rb", Some(creds.path())),
        git_source(
            &url.replace("http://", &format!("http://u:{TOKEN}@")),
            None,
            "main.rb",
            None,
        ),
        git_source(&url, None, "main.rb", Some(wrong.path())),
    ];
    for attempt in &attempts {
        let err = fetch(attempt, cache.path()).await.unwrap_err();
        assert_secret_free(&err, TOKEN);
    }
    let err = source::fetch(
        &git_source(&hang_url, None, "main.rb", Some(creds.path())),
        cache.path(),
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert_secret_free(&err, TOKEN);
    assert!(files_containing(cache.path(), TOKEN).is_empty());
}

/// Everything the source module logs (down to TRACE) while fetching with a token: the URL,
/// ref, revision and timing are there, the token is not.
#[tokio::test]
async fn logs_name_the_fetch_but_never_the_token() {
    let logs = LogCapture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let capture = tracing::Dispatch::new(subscriber);
    // With a single registered dispatcher, tracing-core caches a callsite's interest from the
    // default of whichever thread hits it first: another test's thread, with no subscriber,
    // would disable our events for good. A second live dispatcher makes it consult all.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // The test runtime is single-threaded, so a thread-local default sees every task.
    let _guard = tracing::dispatcher::set_default(&capture);

    let server = AuthServer::start(None);
    let cache = tempfile::tempdir().unwrap();
    let good = credentials(&[("token", TOKEN)]);
    let bad = credentials(&[("token", "tok-bad-bad-bad-bad")]);
    let fetched = fetch(
        &git_source(&server.url(), Some("feature"), "main.rb", Some(good.path())),
        cache.path(),
    )
    .await
    .unwrap();
    fetch(
        &git_source(&server.url(), None, "main.rb", Some(bad.path())),
        cache.path(),
    )
    .await
    .unwrap_err();

    let text = logs.text();
    assert!(text.contains("fetched git source"), "{text}");
    assert!(text.contains(&server.url()), "{text}");
    assert!(text.contains("feature"), "{text}");
    assert!(text.contains(&fetched.revision), "{text}");
    assert!(text.contains("elapsed_ms"), "{text}");
    assert!(text.contains("git source fetch failed"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!text.contains("tok-bad-bad-bad-bad"), "{text}");
}

/// A `tracing` writer keeping everything in memory.
#[derive(Clone, Default)]
struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// ---- SSH against a real sshd ----------------------------------------------------------

/// sshd plus a bare copy of the origin it serves. `scripts/bootstrap.sh` installs sshd; a
/// machine without it fails here rather than silently skipping SSH coverage.
fn ssh_setup() -> (SshServer, Origin, tempfile::TempDir) {
    let server = SshServer::start().expect(
        "/usr/sbin/sshd not installed: run scripts/bootstrap.sh (Debian package openssh-server)",
    );
    let origin = Origin::new();
    let repos = tempfile::tempdir().unwrap();
    origin.bare_copy(&repos.path().join("repo.git"));
    (server, origin, repos)
}

#[tokio::test]
async fn ssh_key_with_pinned_host_fetches() {
    let (server, origin, repos) = ssh_setup();
    let key = fs::read_to_string(server.client_key()).unwrap();
    let creds = credentials(&[
        ("identity", &key),
        ("known_hosts", &server.known_hosts_line()),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let url = server.url(&repos.path().join("repo.git"));
    let fetched = fetch(
        &git_source(&url, Some("v1.0.0"), "main.rb", Some(creds.path())),
        cache.path(),
    )
    .await
    .unwrap();
    assert_eq!(fetched.revision, origin.rev("v1.0.0"));
    assert!(fetched.root.join("lib/helpers.rb").is_file());
    // The 0644 key was used through a private copy that is gone again.
    let tmp = cache.path().join("tmp");
    assert!(!tmp.exists() || fs::read_dir(&tmp).unwrap().count() == 0);
    let key_line = key.lines().nth(1).unwrap();
    assert!(files_containing(cache.path(), key_line).is_empty());
}

#[tokio::test]
async fn ssh_without_known_hosts_accepts_the_first_key() {
    let (server, origin, repos) = ssh_setup();
    let key = fs::read_to_string(server.client_key()).unwrap();
    let creds = credentials(&[("identity", &key)]);
    let cache = tempfile::tempdir().unwrap();
    let url = server.url(&repos.path().join("repo.git"));
    let fetched = fetch(
        &git_source(&url, None, "main.rb", Some(creds.path())),
        cache.path(),
    )
    .await
    .unwrap();
    assert_eq!(fetched.revision, origin.rev("trunk"));
}

#[tokio::test]
async fn ssh_wrong_host_key_and_unknown_client_key_need_a_person() {
    let (server, _origin, repos) = ssh_setup();
    let cache = tempfile::tempdir().unwrap();
    let url = server.url(&repos.path().join("repo.git"));
    let key = fs::read_to_string(server.client_key()).unwrap();
    let spoofed = credentials(&[
        ("identity", &key),
        ("known_hosts", &server.wrong_known_hosts_line()),
    ]);
    let err = fetch(
        &git_source(&url, None, "main.rb", Some(spoofed.path())),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, SourceError::HostKeyRejected { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());

    let stranger = fs::read_to_string(server.stranger_key()).unwrap();
    let creds = credentials(&[
        ("identity", &stranger),
        ("known_hosts", &server.known_hosts_line()),
    ]);
    let err = fetch(
        &git_source(&url, None, "main.rb", Some(creds.path())),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SourceError::AuthFailed { .. }), "{err:?}");
    for line in stranger.lines().filter(|l| !l.starts_with("-----")) {
        assert_secret_free(&err, line);
    }
}
