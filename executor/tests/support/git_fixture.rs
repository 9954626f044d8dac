//! Real git repositories made with the git CLI, and real servers for them (the smart-HTTP
//! server in `git_http_server.py`), started on 127.0.0.1 and stopped by PID.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// Runs git in `dir` with a fixed identity; panics with git's stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Pangea Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A work repository served as the origin. Default branch `trunk` (not `main`, so resolving
/// the remote's HEAD is really exercised). History:
/// - c1: `main.rb` ("trunk v1"), `lib/helpers.rb`, `stacks/net.rb`; annotated tag `v1.0.0`;
/// - branch `feature` off c1: `main.rb` ("feature");
/// - c2 on `trunk`: `main.rb` ("trunk v2").
pub struct Origin {
    dir: TempDir,
}

impl Origin {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        git(path, &["init", "--quiet", "--initial-branch=trunk"]);
        write(
            path,
            "main.rb",
            "require_relative \"lib/helpers\"\n# trunk v1\n",
        );
        write(path, "lib/helpers.rb", "HELPER = 1\n");
        write(path, "stacks/net.rb", "# network stack\n");
        git(path, &["add", "--all"]);
        git(path, &["commit", "--quiet", "-m", "c1"]);
        git(path, &["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
        git(path, &["checkout", "--quiet", "-b", "feature"]);
        write(path, "main.rb", "# feature\n");
        git(path, &["commit", "--quiet", "-am", "feature"]);
        git(path, &["checkout", "--quiet", "trunk"]);
        let origin = Self { dir };
        origin.commit(
            "main.rb",
            "require_relative \"lib/helpers\"\n# trunk v2\n",
            "c2",
        );
        origin
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// The commit `rev` names in the origin.
    pub fn rev(&self, rev: &str) -> String {
        git(self.path(), &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// Commits `content` as `file` on the current branch; returns the new SHA.
    pub fn commit(&self, file: &str, content: &str, message: &str) -> String {
        write(self.path(), file, content);
        git(self.path(), &["add", "--all"]);
        git(self.path(), &["commit", "--quiet", "-m", message]);
        self.rev("HEAD")
    }

    /// A bare copy at `dest` (for servers, which serve bare repositories).
    pub fn bare_copy(&self, dest: &Path) {
        let parent = dest.parent().unwrap();
        fs::create_dir_all(parent).unwrap();
        let origin = self.path().to_str().unwrap();
        git(
            parent,
            &["clone", "--quiet", "--bare", origin, dest.to_str().unwrap()],
        );
    }
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The mirror directories in a cache.
pub fn mirror_dirs(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(cache.join("git")) else {
        return vec![];
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Stops a server we started: SIGTERM, a grace period, then SIGKILL. By PID only.
pub fn stop_by_pid(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `git_http_server.py`: bare repositories under `root` behind Basic auth.
pub struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    /// Serves `root`; the password is the content of `token_file`, the user `user` (any if
    /// `None`). Returns once the server listens.
    pub fn start(root: &Path, token_file: &Path, user: Option<&str>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/git_http_server.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg("--root")
            .arg(root)
            .arg("--token-file")
            .arg(token_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(user) = user {
            command.args(["--user", user]);
        }
        let mut child = command.spawn().expect("start python3 git_http_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        else {
            stop_by_pid(&mut child);
            panic!("git_http_server.py did not report its port: {line:?}");
        };
        Self { child, port }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        stop_by_pid(&mut self.child);
    }
}
