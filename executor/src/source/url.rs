//! Repository URLs: which transports are allowed, and the parts of a URL that credentials and
//! logs need. Validated once, before any git process sees the URL.

use super::{SourceError, scrub::redact_url_passwords};

/// How git reaches the repository; decides which credentials apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `file://` (tests, local mirrors).
    File,
    /// `http://` or `https://`.
    Http,
    /// `ssh://` or scp-like `user@host:path`.
    Ssh,
    /// `git://`: anonymous, unauthenticated.
    Git,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Http => "HTTP(S)",
            Self::Ssh => "SSH",
            Self::Git => "git://",
        }
    }
}

/// A repository URL git may be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepoUrl {
    raw: String,
    transport: Transport,
    /// `scheme://host[:port]` for HTTP(S), to scope the credential helper to that server.
    origin: Option<String>,
}

impl RepoUrl {
    /// Accepts `https`, `http`, `ssh`, `git`, `file` URLs and scp-like SSH addresses.
    pub(crate) fn parse(raw: &str) -> Result<Self, SourceError> {
        let invalid = |reason| SourceError::InvalidUrl {
            url: redact_url_passwords(raw),
            reason,
        };
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        // Whitespace and control characters have no place in a URL and could smuggle extra
        // words into the shell-parsed `GIT_SSH_COMMAND`; a leading `-` would read as an option.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("it contains whitespace or control characters"));
        }
        if raw.starts_with('-') {
            return Err(invalid("it starts with `-`"));
        }
        match raw.split_once("://") {
            Some((scheme, rest)) => Self::parse_with_scheme(raw, scheme, rest).map_err(invalid),
            None => Self::parse_scp_like(raw).map_err(invalid),
        }
    }

    fn parse_with_scheme(raw: &str, scheme: &str, rest: &str) -> Result<Self, &'static str> {
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "https" | "http" => Transport::Http,
            "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
            "git" => Transport::Git,
            "file" => Transport::File,
            _ => return Err("unsupported scheme (use https, http, ssh, git or file)"),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if userinfo.is_some_and(|u| u.contains(':')) {
            return Err("it carries a password; put the token in the credentials Secret instead");
        }
        if transport != Transport::File && host.is_empty() {
            return Err("it has no host");
        }
        let origin = (transport == Transport::Http).then(|| format!("{scheme}://{host}"));
        Ok(Self {
            raw: raw.to_owned(),
            transport,
            origin,
        })
    }

    fn parse_scp_like(raw: &str) -> Result<Self, &'static str> {
        // git reads `transport::address` as a remote helper invocation (`ext::` runs commands).
        if raw.contains("::") {
            return Err("the `transport::address` form is not supported");
        }
        let Some((host_part, _path)) = raw.split_once(':') else {
            return Err("not a URL; use file:// for local repositories");
        };
        let host = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
        if host.is_empty() || host_part.contains('/') {
            return Err("not a URL; use file:// for local repositories");
        }
        Ok(Self {
            raw: raw.to_owned(),
            transport: Transport::Ssh,
            origin: None,
        })
    }

    /// The URL as given (it holds no password: [`parse`](Self::parse) rejects those).
    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    pub(crate) fn transport(&self) -> Transport {
        self.transport
    }

    /// `scheme://host[:port]` of an HTTP(S) URL.
    pub(crate) fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(
        "https://example.com/org/repo.git",
        Transport::Http,
        Some("https://example.com")
    )]
    #[case(
        "http://127.0.0.1:8080/x.git",
        Transport::Http,
        Some("http://127.0.0.1:8080")
    )]
    #[case(
        "https://bot@example.com/x",
        Transport::Http,
        Some("https://example.com")
    )]
    #[case("ssh://git@example.com:2222/x.git", Transport::Ssh, None)]
    #[case("git@github.com:org/repo.git", Transport::Ssh, None)]
    #[case("git://example.com/x.git", Transport::Git, None)]
    #[case("file:///srv/git/x.git", Transport::File, None)]
    fn accepts(#[case] raw: &str, #[case] transport: Transport, #[case] origin: Option<&str>) {
        let url = RepoUrl::parse(raw).unwrap();
        assert_eq!(url.transport(), transport);
        assert_eq!(url.origin(), origin);
        assert_eq!(url.as_str(), raw);
    }

    #[rstest]
    #[case("", "empty")]
    #[case("ext::sh -c touch% /tmp/pwned", "whitespace")]
    #[case("ext::sh", "transport::address")]
    #[case("-uhttps://x", "starts with")]
    #[case("ftp://example.com/x", "unsupported scheme")]
    #[case("/srv/git/x.git", "not a URL")]
    #[case("https:///x.git", "no host")]
    fn rejects(#[case] raw: &str, #[case] why: &str) {
        let err = RepoUrl::parse(raw).unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }

    #[test]
    fn rejects_passwords_without_echoing_them() {
        let err = RepoUrl::parse("https://bob:hunter22@example.com/x.git").unwrap_err();
        assert!(matches!(err, SourceError::InvalidUrl { .. }));
        assert!(!err.to_string().contains("hunter22"));
        assert!(!format!("{err:?}").contains("hunter22"));
        assert!(err.to_string().contains("credentials Secret"));
    }
}
