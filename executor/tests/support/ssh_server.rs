//! A throw-away OpenSSH server on 127.0.0.1 for git-over-SSH tests: its own host key, one
//! authorised client key, config in a temporary directory, stopped by PID.

use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tempfile::TempDir;

use crate::git_fixture::{free_port, stop_by_pid};

const SSHD: &str = "/usr/sbin/sshd";

pub struct SshServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl SshServer {
    /// Starts sshd, or `None` when it is not installed (Debian: `openssh-server`).
    pub fn start() -> Option<Self> {
        if !Path::new(SSHD).is_file() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        keygen(&dir.path().join("stranger_key"));
        fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("sshd_config");
        fs::write(&config, sshd_config(dir.path(), port)).unwrap();
        // sshd running as root insists on its privilege separation directory.
        let _ = fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut server = Self { child, port, dir };
        server.wait_until_listening();
        Some(server)
    }

    fn wait_until_listening(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > until || matches!(self.child.try_wait(), Ok(Some(_))) {
                stop_by_pid(&mut self.child);
                panic!("sshd did not start listening on 127.0.0.1:{}", self.port);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// URL of a repository at an absolute path on this machine.
    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}", user(), self.port, repo.display())
    }

    /// The private key sshd accepts.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A valid private key sshd does not accept.
    pub fn stranger_key(&self) -> PathBuf {
        self.dir.path().join("stranger_key")
    }

    /// A `known_hosts` line pinning this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let public = fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "))
    }

    /// A `known_hosts` line claiming a different key for this server.
    pub fn wrong_known_hosts_line(&self) -> String {
        let public = fs::read_to_string(self.dir.path().join("stranger_key.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "))
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        stop_by_pid(&mut self.child);
    }
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         PermitRootLogin prohibit-password\nAllowUsers {}\nLogLevel ERROR\n",
        user()
    )
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pangea-test", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
}

fn user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
