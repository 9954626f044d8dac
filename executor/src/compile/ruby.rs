//! Finding the Ruby interpreter and running the compiler program under a deadline.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use tokio::{io::AsyncWriteExt, process::Command};

use super::CompileError;

/// The interpreter to use: `explicit` if given (it must exist), else `ruby` on `PATH`.
pub fn find_ruby(explicit: Option<&Path>) -> Result<PathBuf, CompileError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(CompileError::RubyMissing(path.to_path_buf()))
        };
    }
    let path = env::var_os("PATH").ok_or(CompileError::RubyNotFound)?;
    env::split_paths(&path)
        .map(|dir| dir.join("ruby"))
        .find(|candidate| candidate.is_file())
        .ok_or(CompileError::RubyNotFound)
}

/// Runs `ruby entry` with `input` on stdin; the child is killed if the deadline passes.
pub(crate) async fn run(
    ruby: &Path,
    entry: &Path,
    input: &[u8],
    deadline: Duration,
) -> Result<Output, CompileError> {
    let spawn_err = |source| CompileError::Spawn {
        ruby: ruby.to_path_buf(),
        source,
    };
    let mut child = Command::new(ruby)
        // No gems: templates may load the standard library and their own files, nothing else;
        // skipping rubygems also saves most of Ruby's start-up time.
        .arg("--disable-gems")
        .arg(entry)
        .env_remove("RUBYOPT")
        .env_remove("RUBYLIB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| spawn_err(std::io::Error::other("stdin was not piped")))?;
    let exchange = async {
        // The request is small and read before anything is written, so no deadlock.
        stdin.write_all(input).await?;
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(result) => result.map_err(spawn_err),
        // Dropping the future drops the child: kill_on_drop ends it.
        Err(_) => Err(CompileError::Timeout(deadline)),
    }
}
