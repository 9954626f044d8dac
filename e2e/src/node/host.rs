//! What a node leaves on the machine besides its processes, and how it is removed: its cgroup
//! root in every hierarchy, containerd's shims (they leave containerd's process group on
//! purpose), mounts under the run directory, and its pod bridge. Everything is found by this
//! node's own names and paths, never by a program name.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
};

use nix::{
    mount::{MntFlags, umount2},
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{Result, io_err};

const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

/// The node's cgroup root, created in every mounted hierarchy (cgroup v1 and the unified one
/// of a hybrid setup), because the kubelet requires it to exist.
pub struct CgroupRoot {
    /// Name relative to each hierarchy, e.g. `/pangea-node-1a2b`.
    pub name: String,
    dirs: Vec<PathBuf>,
}

impl CgroupRoot {
    /// Creates `/<name>` in each hierarchy under /sys/fs/cgroup.
    pub fn create(name: &str) -> Result<Self> {
        let mut dirs = Vec::new();
        let hierarchies =
            std::fs::read_dir(CGROUP_MOUNT).map_err(io_err("listing cgroup hierarchies"))?;
        for entry in hierarchies.flatten() {
            let hierarchy = entry.path();
            // Controller aliases (cpu,cpuacct) are symlinks to a hierarchy already listed.
            if hierarchy.is_symlink() || !hierarchy.join("cgroup.procs").exists() {
                continue;
            }
            let dir = hierarchy.join(name);
            std::fs::create_dir_all(&dir)
                .map_err(io_err(format!("creating cgroup {}", dir.display())))?;
            dirs.push(dir);
        }
        Ok(Self {
            name: format!("/{name}"),
            dirs,
        })
    }

    /// The cgroup directories, one per hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Removes the cgroups bottom-up. A cgroup still holding a process stays (and is logged).
    pub fn remove(&self) {
        for dir in &self.dirs {
            remove_cgroup_tree(dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for child in entries.flatten().filter(|e| e.path().is_dir()) {
            remove_cgroup_tree(&child.path());
        }
    }
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(cgroup = %dir.display(), error = %e, "cgroup left behind");
    }
}

/// SIGKILLs every containerd shim started for the containerd at `socket`, and every process
/// below it (the containers). A shim is ours when its `-address` argument is our socket.
pub fn kill_shims(socket: &Path) -> usize {
    let processes = process_table();
    let shims: Vec<u32> = processes
        .keys()
        .copied()
        .filter(|pid| is_shim_of(*pid, socket))
        .collect();
    for shim in &shims {
        for pid in descendants(&processes, *shim).into_iter().rev() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let _ = kill(Pid::from_raw(*shim as i32), Signal::SIGKILL);
    }
    shims.len()
}

fn is_shim_of(pid: u32, socket: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let socket = socket.as_os_str().as_encoded_bytes();
    args.windows(2)
        .any(|pair| pair[0] == b"-address" && pair[1] == socket)
}

/// pid → parent pid of every process.
fn process_table() -> HashMap<u32, u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// Every process below `root`, parents before children.
fn descendants(table: &HashMap<u32, u32>, root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in table {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Lazily unmounts everything mounted below `dir` (deepest first): overlay root filesystems,
/// projected volumes, shm of pods the kubelet did not get to tear down.
pub fn unmount_below(dir: &Path) -> usize {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let mut points = mount_points_below(&info, dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points
        .iter()
        .filter(|p| umount2(p.as_path(), MntFlags::MNT_DETACH).is_ok())
        .count()
}

fn mount_points_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect()
}

/// Deletes the node's pod bridge if it exists.
pub fn delete_link(name: &str) {
    if Path::new("/sys/class/net").join(name).exists() {
        let status = Command::new("ip").args(["link", "delete", name]).status();
        if !matches!(status, Ok(s) if s.success()) {
            tracing::warn!(link = name, "could not delete network link");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_below_a_directory_only() {
        let info = "22 1 8:0 / / rw - ext4 /dev/vda rw\n\
                    90 22 0:50 / /cache/runs/node-1/containerd/state/x/rootfs rw - overlay o rw\n\
                    91 22 0:51 / /cache/runs/node-10/other rw - tmpfs t rw\n\
                    92 22 0:52 / /cache/runs/node-1/kubelet/root/pods/u/vol\\040x rw - tmpfs t rw\n";
        let found = mount_points_below(info, Path::new("/cache/runs/node-1"));
        assert_eq!(
            found,
            vec![
                PathBuf::from("/cache/runs/node-1/containerd/state/x/rootfs"),
                PathBuf::from("/cache/runs/node-1/kubelet/root/pods/u/vol x"),
            ]
        );
    }

    #[test]
    fn descendants_are_found_transitively() {
        let table = HashMap::from([(10, 1), (11, 10), (12, 11), (13, 1)]);
        let mut found = descendants(&table, 10);
        found.sort();
        assert_eq!(found, vec![11, 12]);
    }

    #[test]
    fn a_process_is_a_shim_only_of_its_own_socket() {
        // This test process has no -address argument.
        assert!(!is_shim_of(
            std::process::id(),
            Path::new("/nonexistent.sock")
        ));
    }
}
