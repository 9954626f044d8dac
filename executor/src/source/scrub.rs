//! Removing secrets from text before it becomes an error message or a log field.
//!
//! git's stderr is the only text that can carry a credential back to us (a server echoing the
//! URL, a helper misbehaving, a user who put `user:password@` into the URL), so everything
//! taken from it passes through a [`Scrubber`] that knows the secrets of this fetch.

/// What replaces a secret.
const MASK: &str = "***";

/// Shorter secrets are not masked: they would match ordinary words, and no real token or key
/// line is this short.
const MIN_SECRET_LEN: usize = 4;

/// Lines of git output kept in a summary: the last ones carry the `fatal:` reason.
const SUMMARY_LINES: usize = 3;

/// Longest line kept in a summary, in characters.
const MAX_LINE_CHARS: usize = 300;

/// The secrets of one fetch, and the masking of them.
#[derive(Default, Clone)]
pub(crate) struct Scrubber {
    secrets: Vec<String>,
}

/// Shows how many secrets there are, never what they are: anything holding a scrubber may
/// end up in a `{:?}`.
impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Scrubber {
    /// Registers a secret value (e.g. a token); surrounding whitespace is ignored.
    pub(crate) fn add_secret(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET_LEN && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so a secret containing another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Registers every line of a credential file (e.g. an SSH private key) except PEM armour,
    /// so a partial leak of the file is masked too.
    pub(crate) fn add_file_content(&mut self, content: &str) {
        self.add_secret(content);
        for line in content
            .lines()
            .filter(|l| !l.trim_start().starts_with("-----"))
        {
            self.add_secret(line);
        }
    }

    /// `text` with every registered secret and every URL password masked.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        redact_url_passwords(&out)
    }

    /// A short, scrubbed summary of git's stderr: the last few lines that say something.
    pub(crate) fn summarise(&self, stderr: &str) -> String {
        let relevant: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|line| is_relevant(line))
            .collect();
        if relevant.is_empty() {
            return "git gave no reason".to_owned();
        }
        let start = relevant.len().saturating_sub(SUMMARY_LINES);
        let lines: Vec<String> = relevant[start..]
            .iter()
            .map(|line| truncate(&self.scrub(line)))
            .collect();
        lines.join("; ")
    }
}

/// Progress chatter and advice say nothing about why git failed.
fn is_relevant(line: &str) -> bool {
    !(line.is_empty()
        || line.starts_with("hint:")
        || line.starts_with("Cloning into")
        || line.starts_with("remote: Counting")
        || line.starts_with("remote: Compressing")
        || line.starts_with("remote: Enumerating")
        || line.starts_with("remote: Total")
        || line.starts_with("Receiving objects")
        || line.starts_with("Resolving deltas")
        // git's stock advice after "Could not read from remote repository".
        || line.starts_with("Please make sure you have the correct access rights")
        || line == "and the repository exists.")
}

fn truncate(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Masks the userinfo of every `scheme://user:password@host` in `text`; a user name alone
/// (`ssh://git@host`) is not secret and is kept.
pub(crate) fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after
            .find(|c: char| c == '/' || c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>'))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(sep) if authority[..sep].contains(':') => {
                out.push_str(MASK);
                out.push_str(&authority[sep..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_and_url_passwords() {
        let mut scrubber = Scrubber::default();
        scrubber.add_secret("s3cr3t-token\n");
        let text =
            "fatal: https://bob:hunter22@example.com/x.git said s3cr3t-token twice s3cr3t-token";
        let scrubbed = scrubber.scrub(text);
        assert_eq!(
            scrubbed,
            "fatal: https://***@example.com/x.git said *** twice ***"
        );
    }

    #[test]
    fn keeps_plain_user_names_and_other_text() {
        let text = "ssh://git@example.com:22/x.git and git@host:x.git at 10:30";
        assert_eq!(redact_url_passwords(text), text);
    }

    #[test]
    fn masks_key_lines_but_not_armour() {
        let mut scrubber = Scrubber::default();
        scrubber.add_file_content(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        let scrubbed =
            scrubber.scrub("leak: b3BlbnNzaC1rZXktdjEAAAAA -----END OPENSSH PRIVATE KEY-----");
        assert_eq!(scrubbed, "leak: *** -----END OPENSSH PRIVATE KEY-----");
    }

    #[test]
    fn summary_keeps_last_relevant_lines_scrubbed() {
        let mut scrubber = Scrubber::default();
        scrubber.add_secret("tok-123456");
        let stderr = "Cloning into 'x'...\nhint: something\nremote: bad tok-123456\n\nerror: one\nerror: two\nfatal: three\n";
        assert_eq!(
            scrubber.summarise(stderr),
            "error: one; error: two; fatal: three"
        );
        assert_eq!(
            scrubber.summarise("remote: bad tok-123456"),
            "remote: bad ***"
        );
        assert_eq!(scrubber.summarise("\n"), "git gave no reason");
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let mut scrubber = Scrubber::default();
        scrubber.add_secret("tok-123456");
        assert_eq!(format!("{scrubber:?}"), "Scrubber { secrets: 1 }");
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let mut scrubber = Scrubber::default();
        scrubber.add_secret("ab");
        assert_eq!(scrubber.scrub("about"), "about");
    }

    #[test]
    fn long_lines_are_truncated() {
        let line = "x".repeat(MAX_LINE_CHARS + 50);
        let summary = Scrubber::default().summarise(&line);
        assert_eq!(summary.chars().count(), MAX_LINE_CHARS + 1);
    }
}
