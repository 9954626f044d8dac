//! Reading why a git fetch failed from its stderr, to decide between "retry later" and "a
//! person must fix something". git has no machine-readable error codes; its messages (with
//! `LC_ALL=C`) and those of curl and ssh it relays are stable enough to match on.

use super::{super::SourceError, command::Git};

/// What kind of failure git reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Auth,
    HostKey,
    Tls,
    RepositoryMissing,
    RefMissing,
    Network,
    Other,
}

/// Ordered: the first matching group wins. Auth comes before network because ssh ends an
/// auth failure with "Could not read from remote repository" and git over HTTP with
/// "unable to access", which on their own look like connectivity.
const PATTERNS: &[(Failure, &[&str])] = &[
    (
        Failure::HostKey,
        &[
            "host key verification failed",
            "remote host identification has changed",
            "no matching host key type",
        ],
    ),
    (
        Failure::Auth,
        &[
            "authentication failed",
            "could not read username",
            "could not read password",
            "terminal prompts disabled",
            "permission denied (publickey",
            "permission denied (password",
            "invalid username or password",
            "requested url returned error: 401",
            "requested url returned error: 403",
            "http basic: access denied",
        ],
    ),
    (
        Failure::Tls,
        &[
            "ssl certificate problem",
            "certificate verify failed",
            "server certificate verification failed",
            "no alternative certificate subject name",
        ],
    ),
    (
        Failure::RefMissing,
        &[
            "couldn't find remote ref",
            "not our ref",
            "unadvertised object",
            "no such remote ref",
        ],
    ),
    (
        Failure::RepositoryMissing,
        &[
            "repository not found",
            "does not appear to be a git repository",
            "requested url returned error: 404",
            "' not found",
        ],
    ),
    (
        Failure::Network,
        &[
            "could not resolve host",
            "could not resolve hostname",
            "temporary failure in name resolution",
            "failed to connect",
            "connection refused",
            "connection timed out",
            "connection reset",
            "connection closed by",
            "operation timed out",
            "network is unreachable",
            "no route to host",
            "the remote end hung up unexpectedly",
            "early eof",
            "rpc failed",
            "unexpected disconnect",
            "requested url returned error: 429",
            "requested url returned error: 5",
            "empty reply from server",
        ],
    ),
];

/// The kind of failure `stderr` describes.
pub(crate) fn classify(stderr: &str) -> Failure {
    let text = stderr.to_ascii_lowercase();
    PATTERNS
        .iter()
        .find(|(_, needles)| needles.iter().any(|needle| text.contains(needle)))
        .map_or(Failure::Other, |(failure, _)| *failure)
}

/// The error for a failed `git fetch` of `url` (wanting `git_ref`; `None` = default branch).
pub(crate) fn fetch_error(
    git: &Git,
    stderr: &str,
    url: &str,
    git_ref: Option<&str>,
) -> SourceError {
    let detail = git.summarise(stderr);
    let url = git.scrub(url);
    match classify(stderr) {
        Failure::Auth => SourceError::AuthFailed { url, detail },
        Failure::HostKey => SourceError::HostKeyRejected { url, detail },
        Failure::Tls => SourceError::TlsRejected { url, detail },
        Failure::RepositoryMissing => SourceError::RepositoryNotFound { url, detail },
        Failure::RefMissing => SourceError::RefNotFound {
            url,
            git_ref: git.scrub(git_ref.unwrap_or("HEAD")),
        },
        Failure::Network => SourceError::Unreachable { url, detail },
        Failure::Other => SourceError::Git {
            step: super::super::Step::Fetch,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rstest::rstest;

    use super::{
        super::super::{credentials::GitAuth, scrub::Scrubber},
        *,
    };

    #[rstest]
    #[case(
        "fatal: Authentication failed for 'http://127.0.0.1:1/x.git/'",
        Failure::Auth
    )]
    #[case(
        "fatal: could not read Username for 'https://h': terminal prompts disabled",
        Failure::Auth
    )]
    #[case(
        "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
        Failure::Auth
    )]
    #[case(
        "Host key verification failed.\nfatal: Could not read from remote repository.",
        Failure::HostKey
    )]
    #[case(
        "fatal: unable to access 'https://h/': SSL certificate problem: self signed",
        Failure::Tls
    )]
    #[case(
        "fatal: repository 'http://h/x.git/' not found",
        Failure::RepositoryMissing
    )]
    #[case(
        "fatal: '/srv/x' does not appear to be a git repository",
        Failure::RepositoryMissing
    )]
    #[case("fatal: couldn't find remote ref HEAD", Failure::RefMissing)]
    #[case(
        "fatal: remote error: upload-pack: not our ref 0123",
        Failure::RefMissing
    )]
    #[case(
        "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9",
        Failure::Network
    )]
    #[case(
        "fatal: unable to access 'https://nohost/': Could not resolve host: nohost",
        Failure::Network
    )]
    #[case("ssh: connect to host h port 22: Connection refused", Failure::Network)]
    #[case(
        "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502",
        Failure::Network
    )]
    #[case("fatal: something new", Failure::Other)]
    fn classifies(#[case] stderr: &str, #[case] expected: Failure) {
        assert_eq!(classify(stderr), expected);
    }

    /// Every kind of fetch error, built from stderr and a URL that both carry the token,
    /// shows neither the token nor the URL's password in Display or Debug.
    #[test]
    fn no_fetch_error_shows_a_secret() {
        let token = "ghp_SuperSecretToken123";
        let mut scrubber = Scrubber::default();
        scrubber.add_secret(token);
        let git = Git::new(Duration::from_secs(1), GitAuth::for_tests(scrubber), vec![]);
        let url = format!("https://bot:{token}@example.com/{token}.git");
        let samples = [
            "fatal: Authentication failed for '{url}'",
            "Host key verification failed. {url}",
            "fatal: unable to access '{url}': SSL certificate problem",
            "fatal: repository '{url}' not found",
            "fatal: couldn't find remote ref {token}",
            "fatal: unable to access '{url}': Failed to connect",
            "fatal: something new about {url}",
        ];
        for sample in samples {
            let stderr = sample.replace("{url}", &url).replace("{token}", token);
            let err = fetch_error(&git, &stderr, &url, Some(token));
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(token), "{shown}");
            assert!(!shown.contains("SuperSecret"), "{shown}");
        }
    }
}
