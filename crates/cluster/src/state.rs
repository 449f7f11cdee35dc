//! The state file: the write-ahead record of everything a cluster created.
//!
//! `up` writes it before it claims the lab's subnet (naming the bridge namespace it is
//! about to create), and rewrites it (write to a temporary file, then rename) as each
//! namespace and process comes to life. So whatever moment `up` dies at, `down` finds in
//! the file every name and pid it must remove, and the namespace ids and command lines
//! that prove they are ours.

use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::node::{Node, NodeName};

/// File name of the state file inside the run directory.
pub const STATE_FILE: &str = "cluster.json";
/// Format version written in the state file.
pub(crate) const VERSION: u32 = 1;

/// How long a command waits for another splitbrain process to release the run directory.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A member as recorded: the node, and the proof of what is ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    #[serde(flatten)]
    pub node: Node,
    /// Id of the namespace we created (its nsfs inode), set once it exists.
    pub netns_inode: Option<u64>,
    /// The exact command line we start the member with; a pid is ours only if its
    /// `/proc/PID/cmdline` is this.
    pub argv: Vec<String>,
    /// What runs the member when it is not started directly: the clock supervisor
    /// and its arguments, ending in `--`. The process starts as `launcher ++ argv`
    /// and becomes `argv` (same pid) once the supervisor execs etcd; its clock
    /// handler keeps the `launcher ++ argv` command line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launcher: Vec<String>,
    /// The running member's pid; `None` when it is killed or not started yet.
    pub pid: Option<i32>,
    /// etcd's member id, known once the cluster was healthy.
    pub member_id: Option<u64>,
    /// The sshd in the member's namespace, when the lab has them (`Config::sshd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshd: Option<SshdRecord>,
    /// The member's processes besides the main one (Redis's sentinel, webdis), in
    /// the order the database plug-in lists them. `pid` above stays the main
    /// process's: kill and pause act on it alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraRecord>,
}

/// A process a member owns besides its main one, recorded like the main one: the
/// command line that proves a pid is ours, and the pid once started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExtraRecord {
    /// What it is (`sentinel`), for messages.
    pub name: String,
    /// The exact command line it is started with.
    pub argv: Vec<String>,
    /// Its stdout and stderr.
    pub log_file: PathBuf,
    /// The port it listens on, on the member's address.
    pub port: u16,
    pub pid: Option<i32>,
}

/// An sshd we start in a member's namespace (`cluster up --sshd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SshdRecord {
    /// The exact command line it is started with.
    pub argv: Vec<String>,
    pub pid: Option<i32>,
}

impl NodeRecord {
    /// The command line the member is started with.
    pub fn launch_argv(&self) -> Vec<String> {
        self.launcher.iter().chain(&self.argv).cloned().collect()
    }
}

/// Everything `down` needs, and `status`, `endpoints` and the node operations read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub version: u32,
    /// The database plug-in the members run (`--db`); files written before plug-ins
    /// existed ran etcd.
    #[serde(default = "default_db")]
    pub db: String,
    pub dir: PathBuf,
    pub subnet: String,
    pub host_veth: String,
    pub host_addr: Ipv4Addr,
    pub bridge_netns: String,
    pub bridge_netns_inode: Option<u64>,
    pub nodes: Vec<NodeRecord>,
}

fn default_db() -> String {
    crate::db::DEFAULT_DB.to_owned()
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state file of `dir`; `Ok(None)` if there is none.
    pub fn read(dir: &Path) -> Result<Option<State>> {
        let path = State::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let state: State = serde_json::from_str(&text).map_err(|source| Error::BadStateFile {
            path: path.clone(),
            source,
        })?;
        if state.version != VERSION {
            return Err(Error::InvalidConfig(format!(
                "{} has format version {}, this splitbrain reads version {VERSION}",
                path.display(),
                state.version
            )));
        }
        Ok(Some(state))
    }

    /// Replaces the state file atomically (readers never see half a file) and durably.
    /// The run directory is registered first, so `down --all` can always find it.
    pub fn write(&self) -> Result<()> {
        crate::registry::add(&self.dir);
        let path = State::path(&self.dir);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let what = |verb: &str| format!("cannot {verb} {}", tmp.display());
        let mut json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::io(format!("cannot encode {}", path.display()), e.into()))?;
        json.push('\n');
        let mut f = File::create(&tmp).map_err(|e| Error::io(what("create"), e))?;
        f.write_all(json.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(what("write"), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io(format!("cannot replace {}", path.display()), e))
    }

    pub fn remove(dir: &Path) -> Result<()> {
        let path = State::path(dir);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(format!("cannot remove {}", path.display()), e))
            }
            _ => {
                crate::registry::remove(dir);
                Ok(())
            }
        }
    }

    pub fn node_mut(&mut self, name: &NodeName) -> Result<&mut NodeRecord> {
        let err = self.unknown(name);
        self.nodes
            .iter_mut()
            .find(|n| n.node.name == *name)
            .ok_or(err)
    }

    fn unknown(&self, name: &NodeName) -> Error {
        Error::UnknownNode {
            node: name.to_string(),
            known: self
                .nodes
                .iter()
                .map(|n| n.node.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// An exclusive lock on the run directory (flock on the directory itself), held while a
/// command changes the cluster; released when dropped or when the process dies.
pub(crate) struct DirLock {
    _lock: Flock<File>,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let start = Instant::now();
        let mut file = File::open(dir)
            .map_err(|e| Error::io(format!("cannot open run directory {}", dir.display()), e))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(DirLock { _lock: lock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) if start.elapsed() < LOCK_WAIT => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::Locked {
                        dir: dir.to_owned(),
                        waited: LOCK_WAIT,
                    })
                }
                Err((_, e)) => {
                    return Err(Error::errno(format!("cannot lock {}", dir.display()), e))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> State {
        State {
            version: VERSION,
            db: "etcd".into(),
            dir: dir.to_owned(),
            subnet: "10.77.3.0/24".into(),
            host_veth: "sb3h".into(),
            host_addr: Ipv4Addr::new(10, 77, 3, 254),
            bridge_netns: "sb3-br".into(),
            bridge_netns_inode: Some(4026532314),
            nodes: vec![NodeRecord {
                node: Node {
                    name: "n1".into(),
                    netns: "sb3-n1".into(),
                    interface: "sb3n1".into(),
                    addr: Ipv4Addr::new(10, 77, 3, 1),
                    client_url: "http://10.77.3.1:2379".into(),
                    peer_url: "http://10.77.3.1:2380".into(),
                    data_dir: dir.join("n1/data"),
                    log_file: dir.join("n1/etcd.log"),
                    clock_file: None,
                },
                netns_inode: None,
                argv: vec!["/usr/bin/etcd".into(), "--name".into(), "n1".into()],
                launcher: Vec::new(),
                pid: Some(1234),
                // Above 2^53: JSON tools that read numbers as doubles would round it.
                member_id: Some(u64::MAX - 1),
                sshd: None,
                extras: vec![ExtraRecord {
                    name: "sentinel".into(),
                    argv: vec!["/usr/bin/redis-sentinel".into(), "s.conf".into()],
                    log_file: dir.join("n1/sentinel.log"),
                    port: 26379,
                    pid: Some(1235),
                }],
            }],
        }
    }

    #[test]
    fn state_file_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::read(dir.path()).unwrap(), None);
        let state = sample(dir.path());
        state.write().unwrap();
        assert_eq!(State::read(dir.path()).unwrap(), Some(state.clone()));
        let text = std::fs::read_to_string(State::path(dir.path())).unwrap();
        assert!(
            text.contains("\"client_url\": \"http://10.77.3.1:2379\""),
            "{text}"
        );
        State::remove(dir.path()).unwrap();
        State::remove(dir.path()).unwrap();
        assert_eq!(State::read(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_state_file_from_before_database_plug_ins_ran_etcd() {
        let dir = tempfile::tempdir().unwrap();
        let state = sample(dir.path());
        let mut json = serde_json::to_value(&state).unwrap();
        json.as_object_mut().unwrap().remove("db");
        std::fs::write(State::path(dir.path()), json.to_string()).unwrap();
        let read = State::read(dir.path()).unwrap().unwrap();
        assert_eq!(read.db, "etcd");
        assert_eq!(read, state);
    }

    #[test]
    fn a_corrupt_state_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(State::path(dir.path()), "{ not json").unwrap();
        let err = State::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("cluster.json"), "{err}");
    }

    #[test]
    fn unknown_nodes_list_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = sample(dir.path());
        let err = state.node_mut(&"n9".into()).unwrap_err().to_string();
        assert_eq!(err, "no node n9 in this cluster (nodes: n1)");
    }

    #[test]
    fn the_directory_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let other = File::open(dir.path()).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let again = File::open(dir.path()).unwrap();
        assert!(Flock::lock(again, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
