//! Faults on remote nodes over SSH, listed in a nodes file ([`crate::nodes`]).
//!
//! The same faults as on the local lab, carried out by commands on each node through
//! its [`Host`]: partitions are iptables rules in a chain of this run's own
//! (`splitbrain-RUNID`, always `-w`), packet faults netem where the node's kernel has
//! it and otherwise iptables `statistic` for loss and `tbf` for bandwidth (delay,
//! duplication and reordering without netem are refused, naming the node: the
//! lab's NFQUEUE delayer does not exist there), process faults the nodes file's
//! commands, clock faults `date` or the nodes file's commands.
//!
//! ```text
//!   STATE_DIR/remote.json   run id and every fault, written before it exists
//!   STATE_DIR/ssh-n1 ...    one multiplexed SSH connection per node, closed at the end
//! ```
//!
//! Every node is connected before any fault, so an unreachable node is an error that
//! changes nothing. [`RemoteNet::heal`] undoes what the state file records (removing
//! only this run's chains), so `splitbrain nemesis --nodes FILE heal` works after the
//! harness was killed.
//!
//! One module per fault kind, as on the lab side: `partition.rs`, `packet.rs`,
//! `process.rs` and `clock.rs` each add their fault's methods to [`RemoteNet`];
//! `state.rs` holds the state file, `heal.rs` the heal and the [`RemoteFault`] guard.

mod clock;
mod heal;
mod packet;
mod partition;
mod process;
mod state;

pub use clock::{date_shift_script, refuse_date_here, MAX_CLOCK_OFFSET_MS, NTP_STEP_SCRIPT};
pub use heal::RemoteFault;
pub use partition::check_partitionable;
pub use state::{ClockRecord, RemoteFaults, STATE_FILE};

use crate::fault::{ClockChange, ClockControl, Fault, FaultSpec, Healed, Mechanisms, Net};
use crate::host::{Host, SshTarget};
use crate::nodes::{redirects, NodeSpec, NodesFile};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Inner {
    file: NodesFile,
    hosts: Vec<Host>,
    /// Serializes this process's read-modify-write of the state file.
    state: Mutex<()>,
}

/// Remote nodes, connected. Clones share the connections, which close when the last
/// clone goes (or at [`RemoteNet::close`]).
#[derive(Clone)]
pub struct RemoteNet {
    inner: Arc<Inner>,
    /// The database the nodes run (a lab plug-in's name, see [`RemoteNet::with_db`]).
    db: Option<String>,
}

impl std::fmt::Debug for RemoteNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNet")
            .field("nodes_file", &self.inner.file.path)
            .field("db", &self.db)
            .finish()
    }
}

impl RemoteNet {
    /// Connects to every node (SSH master connections in the state directory). Any
    /// node that cannot be reached is an error, before anything was changed.
    pub fn open(file: NodesFile) -> Result<RemoteNet> {
        let (net, mut unreachable) = RemoteNet::open_lenient(file)?;
        if unreachable.is_empty() {
            return Ok(net);
        }
        net.close();
        Err(unreachable.remove(0))
    }

    /// As [`RemoteNet::open`], but a node that cannot be reached is returned as an
    /// error beside the net instead of failing it: for a heal, which should undo
    /// what it can on the nodes it reaches (and keep the state file for the rest).
    /// A node whose address fails the route check is still an error: nothing is
    /// ever sent there.
    pub fn open_lenient(file: NodesFile) -> Result<(RemoteNet, Vec<Error>)> {
        let dir = &file.state_dir;
        // Every address and option is checked before anything is created or sent.
        for n in &file.nodes {
            check_address(n, file.allow_remote)?;
            if !file.allow_remote {
                if let Some(o) = n.ssh_options.iter().find(|o| redirects(o)) {
                    return Err(Error::RedirectNotAllowed {
                        path: file.path.clone(),
                        node: n.name.clone(),
                        option: o.clone(),
                    });
                }
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::State(dir.clone(), e.to_string()))?;
        let mut hosts = Vec::new();
        for n in &file.nodes {
            let control_path = dir.join(format!("ssh-{}", n.name));
            // A unix socket's path has room for 107 bytes.
            if control_path.as_os_str().len() > 100 {
                return Err(Error::NodesFile {
                    path: file.path.clone(),
                    message: format!(
                        "the SSH socket {} would be too long a path for a unix socket: set a shorter `state_dir`",
                        control_path.display()
                    ),
                });
            }
            hosts.push(Host::ssh(SshTarget {
                node: n.name.clone(),
                host: n.host.clone(),
                port: n.port,
                user: n.user.clone(),
                identity: n.identity.clone(),
                known_hosts: n.known_hosts.clone(),
                connect_timeout: n.connect_timeout,
                command_timeout: n.command_timeout,
                control_path,
                state_known_hosts: dir.join("known_hosts"),
                options: n.ssh_options.clone(),
                read_config: file.allow_remote,
            }));
        }
        let net = RemoteNet {
            inner: Arc::new(Inner {
                file,
                hosts,
                state: Mutex::new(()),
            }),
            db: None,
        };
        let unreachable = net
            .each(|_, h| h.connect())
            .into_iter()
            .filter_map(|r| r.err())
            .collect();
        Ok((net, unreachable))
    }

    /// Says which database the nodes run (a name `splitbrain-cluster` knows:
    /// `etcd`, `zookeeper`, ...), whose plug-in finds their leader through their
    /// client URLs. Without it (`None`), the nodes have no leader to find.
    pub fn with_db(mut self, db: Option<&str>) -> RemoteNet {
        self.db = db.map(str::to_owned);
        self
    }

    pub fn nodes_file(&self) -> &NodesFile {
        &self.inner.file
    }

    pub fn nodes(&self) -> Vec<String> {
        self.inner.file.names()
    }

    pub fn state_dir(&self) -> &Path {
        &self.inner.file.state_dir
    }

    /// The host of node `name`.
    pub fn host(&self, name: &str) -> Result<&Host> {
        let i = self.index(name)?;
        Ok(&self.inner.hosts[i])
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.inner
            .file
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| Error::UnknownNode(name.to_string(), self.nodes().join(", ")))
    }

    fn spec(&self, i: usize) -> &NodeSpec {
        &self.inner.file.nodes[i]
    }

    /// Closes the SSH connections this process opened.
    pub fn close(&self) {
        for h in &self.inner.hosts {
            h.close();
        }
    }

    fn each<T: Send>(&self, f: impl Fn(usize, &Host) -> Result<T> + Sync) -> Vec<Result<T>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .inner
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let f = &f;
                    s.spawn(move || f(i, h))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// Runs `f` on the named nodes in parallel.
    fn each_of(
        &self,
        names: &BTreeSet<String>,
        f: impl Fn(usize, &Host) -> Result<()> + Sync,
    ) -> Result<()> {
        first_error(self.each(|i, h| {
            if names.contains(&self.spec(i).name) {
                f(i, h)
            } else {
                Ok(())
            }
        }))
        .map(|_| ())
    }

    /// The leader or primary, as the nodes' database plug-in finds it through their
    /// client URLs (`None` when there is none, no node answers, or the database or
    /// the client URLs are not known).
    pub fn leader(&self) -> Option<String> {
        self.ask_leader().ok().flatten()
    }

    fn ask_leader(&self) -> Result<Option<String>> {
        let Some(db) = &self.db else {
            return Ok(None);
        };
        let nodes = &self.inner.file.nodes;
        let urls: Vec<&str> = nodes
            .iter()
            .filter_map(|n| n.client_url.as_deref())
            .collect();
        if urls.is_empty() {
            return Ok(None);
        }
        let leader = splitbrain_cluster::leader_endpoint(db, &urls, self.inner.file.allow_remote)?;
        Ok(leader.and_then(|l| {
            nodes
                .iter()
                .find(|n| n.client_url.as_deref() == Some(l.as_str()))
                .map(|n| n.name.clone())
        }))
    }

    fn check_nodes<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for n in nodes {
            self.index(n)?;
        }
        Ok(())
    }
}

/// Remote nodes as a [`Net`]: the same faults as the inherent methods, as [`Fault`]s.
impl Net for RemoteNet {
    fn nodes(&self) -> Vec<String> {
        RemoteNet::nodes(self)
    }

    fn leader(&self) -> Option<String> {
        RemoteNet::leader(self)
    }

    fn down(&self) -> Result<BTreeSet<String>> {
        let f = self.recorded()?;
        Ok(f.killed.union(&f.paused).cloned().collect())
    }

    fn clock_control(&self) -> ClockControl {
        ClockControl::Offset
    }

    fn inject(&self, fault: &FaultSpec) -> Result<Fault> {
        let kind = fault.kind();
        let every = |nodes: &[String]| {
            if nodes.is_empty() {
                self.nodes()
            } else {
                nodes.to_vec()
            }
        };
        Ok(match fault {
            FaultSpec::Partition(grudge) => {
                let nodes = grudge.nodes().into_iter().map(str::to_owned).collect();
                Fault::new(kind, nodes, Box::new(self.partition(grudge)?))
            }
            FaultSpec::Packet { nodes, spec } => {
                let (f, how) = self.packet_fault(nodes, spec)?;
                Fault::new(kind, every(nodes), Box::new(f))
                    .with_mechanisms(Mechanisms::PerNode(how))
            }
            FaultSpec::Process {
                process: Some(p), ..
            } => {
                return Err(Error::Unsupported(format!(
                    "remote nodes: kill and pause run the nodes file's commands for the \
                     database; there is none for a `{p}` process"
                )))
            }
            FaultSpec::Process {
                kind: pk,
                nodes,
                process: None,
            } => Fault::new(
                kind,
                nodes.clone(),
                Box::new(self.process_fault(*pk, nodes)?),
            ),
            FaultSpec::Clock {
                nodes,
                change: ClockChange::Bump { delta_ns },
            } => {
                let nodes = every(nodes);
                let f = self.clock_fault(&nodes, delta_ns / 1_000_000)?;
                Fault::new(kind, nodes, Box::new(f))
            }
            FaultSpec::Clock { change, .. } => {
                return Err(Error::Unsupported(format!(
                    "remote nodes take clock bumps from true time; `{change}` needs the \
                     local cluster's clock supervisor"
                )))
            }
        })
    }

    fn heal_all(&self) -> Result<Healed> {
        self.heal()
    }

    /// The nodes are not a lab this process knows: a leader again is the sign of a
    /// working cluster. Without a database to ask (or when the plug-in may not ask
    /// these nodes), the final reads tell.
    fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ask_leader() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if self.db.is_none() => return Ok(()),
                Err(Error::Cluster(splitbrain_cluster::Error::RemoteNotAllowed { .. })) => {
                    return Ok(())
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(Error::Unhealthy(format!(
                    "the nodes elected no leader within {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn first_error<T>(results: Vec<Result<T>>) -> Result<Vec<T>> {
    results.into_iter().collect()
}

/// A node's address must be one this machine may send to: loopback or a lab address
/// whose route stays on the machine, or, when the user allowed other machines
/// (`--allow-remote`), any host but a lab address off its lab's route.
fn check_address(n: &NodeSpec, allow_remote: bool) -> Result<()> {
    splitbrain_cluster::ensure_target(&n.host, allow_remote).map_err(|e| Error::Refused {
        node: n.name.clone(),
        addr: format!("{}@{}:{}", n.user, n.host, n.port),
        reason: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirecting_ssh_options_need_allow_remote_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nodes.toml");
        let text = "[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\n\
                    ssh_options = [\"ProxyCommand=ssh -W %h:%p elsewhere\"]\n";
        let file = NodesFile::parse(text, &path).unwrap();
        let e = RemoteNet::open_lenient(file).unwrap_err().to_string();
        assert!(e.contains("node `n1`, field `ssh_options`"), "{e}");
        assert!(e.contains("other machines were not allowed"), "{e}");
        assert!(!e.contains("--allow"), "no flag in a library error: {e}");
        assert!(!tmp.path().join("nodes.nemesis").exists());
        // A refused address is "refused", not "unreachable", and creates nothing.
        let text = "[[node]]\nname = \"n1\"\nhost = \"db1.example\"\n";
        let file = NodesFile::parse(text, &path).unwrap();
        let e = RemoteNet::open_lenient(file).unwrap_err().to_string();
        assert!(
            e.starts_with("node n1 (root@db1.example:22) refused"),
            "{e}"
        );
        assert!(!tmp.path().join("nodes.nemesis").exists());
    }
}
