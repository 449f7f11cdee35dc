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

use crate::grudge::Grudge;
use crate::host::{Host, SshTarget};
use crate::iptables::{self, remove_chain, restore};
use crate::lab::ProcessKind;
use crate::nodes::{fill, redirects, ClockStrategy, NodeSpec, NodesFile};
use crate::packet::{self, Mechanism, PacketSpec};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The state file in the nodes file's state directory.
pub const STATE_FILE: &str = "remote.json";

/// A clock moved by a fault, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRecord {
    pub offset_ms: i64,
    /// Set once the bump command succeeded: before that, the clock may or may not
    /// have moved, and a heal must not apply the inverse offset blindly.
    pub applied: bool,
}

/// What the state file records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteFaults {
    /// Names this run's chains: `splitbrain-RUNID`, `splitbrain-RUNID-loss`.
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Grudge>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub killed: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub paused: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<(BTreeSet<String>, PacketSpec)>,
    /// Node -> the interface whose root qdisc is ours.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub qdiscs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks: BTreeMap<String, ClockRecord>,
}

impl RemoteFaults {
    pub fn is_empty(&self) -> bool {
        self.partition.is_none()
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.packet.is_none()
            && self.qdiscs.is_empty()
            && self.clocks.is_empty()
    }

    pub fn chain(&self) -> String {
        format!("splitbrain-{}", self.run_id)
    }

    pub fn loss_chain(&self) -> String {
        format!("splitbrain-{}-loss", self.run_id)
    }
}

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
}

impl std::fmt::Debug for RemoteNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNet")
            .field("nodes_file", &self.inner.file.path)
            .finish()
    }
}

/// How a node's packet fault is carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMechanisms {
    pub node: String,
    pub mechanisms: Vec<(&'static str, Mechanism)>,
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
                    return Err(Error::NodesFile {
                        path: file.path.clone(),
                        message: format!(
                            "node `{}`, field `ssh_options`: `{o}` could send SSH elsewhere than \
                             its host or run a command here; only with --allow-remote",
                            n.name
                        ),
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
        };
        let unreachable = net
            .each(|_, h| h.connect())
            .into_iter()
            .filter_map(|r| r.err())
            .collect();
        Ok((net, unreachable))
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

    fn state_file(&self) -> PathBuf {
        self.state_dir().join(STATE_FILE)
    }

    /// What the state file records (a fresh run id when there is none).
    pub fn recorded(&self) -> Result<RemoteFaults> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::State(path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RemoteFaults {
                run_id: format!("{:08x}", rand::random::<u32>()),
                ..RemoteFaults::default()
            }),
            Err(e) => Err(Error::State(path, e.to_string())),
        }
    }

    fn record(&self, faults: &RemoteFaults) -> Result<()> {
        let path = self.state_file();
        if faults.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::State(path, e.to_string()))
                }
                _ => Ok(()),
            };
        }
        let tmp = self.state_dir().join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(faults).unwrap_or_default() + "\n";
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::State(path, e.to_string()))
    }

    /// An exclusive `flock` on the state directory, released when dropped.
    fn lock_dir(&self) -> Result<nix::fcntl::Flock<std::fs::File>> {
        let dir = self.state_dir();
        let f =
            std::fs::File::open(dir).map_err(|e| Error::State(dir.to_path_buf(), e.to_string()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::State(dir.to_path_buf(), format!("cannot lock: {e}")))
    }

    /// Read, change, write the state file; returns it as written.
    fn update(&self, f: impl FnOnce(&mut RemoteFaults)) -> Result<RemoteFaults> {
        let _lock = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        // And across processes: a heal by hand while a test runs.
        let _flock = self.lock_dir()?;
        let mut faults = self.recorded()?;
        f(&mut faults);
        self.record(&faults)?;
        Ok(faults)
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

    /// The etcd leader, asked through the nodes' client URLs (`None` when there is
    /// none, or the nodes have no client URLs).
    pub fn leader(&self) -> Option<String> {
        let urls: Vec<&str> = self
            .inner
            .file
            .nodes
            .iter()
            .filter_map(|n| n.client_url.as_deref())
            .collect();
        if urls.is_empty() {
            return None;
        }
        let leader =
            splitbrain_cluster::leader_endpoint(&urls, self.inner.file.allow_remote).ok()??;
        self.inner
            .file
            .nodes
            .iter()
            .find(|n| n.client_url.as_deref() == Some(leader.as_str()))
            .map(|n| n.name.clone())
    }

    fn check_nodes<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for n in nodes {
            self.index(n)?;
        }
        Ok(())
    }

    // ---- partitions ----

    /// Applies `grudge` with iptables on each node (this run's chain, one atomic
    /// `iptables-restore` per node), replacing a partition in place.
    pub fn partition(&self, grudge: &Grudge) -> Result<RemoteFault> {
        self.check_nodes(grudge.nodes())?;
        check_partitionable(&self.inner.file.nodes)?;
        let faults = self.update(|f| f.partition = Some(grudge.clone()))?;
        let guard = RemoteFault::new(self, Undo::Partition);
        let chain = faults.chain();
        first_error(self.each(|i, h| {
            let me = &self.spec(i).name;
            let drops = grudge.0.get(me).cloned().unwrap_or_default();
            if drops.is_empty() {
                return remove_chain(h, &chain, "INPUT");
            }
            let addrs: Vec<&str> = self
                .inner
                .file
                .nodes
                .iter()
                .filter(|p| drops.contains(&p.name))
                .map(|p| p.host.as_str())
                .collect();
            let rules = iptables::partition_rules(&chain, &addrs);
            match restore(h, &rules) {
                Ok(()) => Ok(()),
                Err(_) => remove_chain(h, &chain, "INPUT").and_then(|()| restore(h, &rules)),
            }
        }))?;
        Ok(guard)
    }

    /// Nodes that hold this run's partition chain.
    pub fn partitioned_members(&self) -> Result<Vec<String>> {
        let chain = self.recorded()?.chain();
        let found = self.each(|_, h| iptables::has_chain(h, &chain));
        let mut out = Vec::new();
        for (i, has) in found.into_iter().enumerate() {
            if has? {
                out.push(self.spec(i).name.clone());
            }
        }
        Ok(out)
    }

    // ---- packet faults ----

    /// Degrades `nodes` (every node when empty): netem where the node's kernel has
    /// it, otherwise iptables `statistic` (loss) and `tbf` (rate). What a node cannot
    /// do is refused before anything changes, naming the node.
    pub fn packet_fault(
        &self,
        nodes: &[String],
        spec: &PacketSpec,
    ) -> Result<(RemoteFault, Vec<NodeMechanisms>)> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let targets: BTreeSet<String> = if nodes.is_empty() {
            self.nodes().into_iter().collect()
        } else {
            nodes.iter().cloned().collect()
        };
        let recorded = self.recorded()?;
        // Plan every node first: a refusal changes nothing.
        let plans = self.each(|i, h| {
            let n = self.spec(i);
            if !targets.contains(&n.name) {
                return Ok(None);
            }
            let netem = has_netem(h)?;
            let plan = packet::plan_remote(spec, netem).map_err(|e| {
                Error::Unsupported(format!("on node {} ({}): {e}", n.name, h.address()))
            })?;
            let iface = match &plan.qdisc {
                None => None,
                Some(_) => {
                    let iface = match &n.interface {
                        Some(i) => i.clone(),
                        None => self.find_interface(i, h)?,
                    };
                    let shown = h.check(&["tc", "qdisc", "show", "dev", &iface, "root"])?;
                    let ours = recorded.qdiscs.get(&n.name) == Some(&iface);
                    if !ours && (shown.contains("netem") || shown.contains("tbf")) {
                        return Err(Error::Unsupported(format!(
                            "on node {} ({}): {iface} already has a root qdisc splitbrain did not add ({}); not replacing it",
                            n.name,
                            h.address(),
                            shown.trim()
                        )));
                    }
                    Some(iface)
                }
            };
            Ok(Some((plan, iface)))
        });
        let mut planned = Vec::new();
        for (i, p) in plans.into_iter().enumerate() {
            if let Some(p) = p? {
                planned.push((i, p));
            }
        }
        let faults = self.update(|f| {
            f.packet = Some((targets.clone(), spec.clone()));
            for (i, (_, iface)) in &planned {
                if let Some(iface) = iface {
                    f.qdiscs.insert(self.spec(*i).name.clone(), iface.clone());
                }
            }
        })?;
        let guard = RemoteFault::new(self, Undo::Packet);
        let loss_chain = faults.loss_chain();
        first_error(self.each(|i, h| {
            let Some((_, (plan, iface))) = planned.iter().find(|(j, _)| *j == i) else {
                return Ok(());
            };
            remove_chain(h, &loss_chain, "INPUT")?;
            if let Some(p) = plan.loss_rule {
                // The port sshd has on the node's side of our connection: not the
                // configured one when a port mapping (2201 -> 22) sits in between.
                let seen = h.check_shell("echo \"$SSH_CONNECTION\"")?;
                let port = ssh_server_port(&seen).unwrap_or(self.spec(i).port);
                restore(h, &iptables::loss_rules(&loss_chain, p, Some(port)))?;
            }
            if let (Some(args), Some(iface)) = (&plan.qdisc, iface) {
                let mut all = vec!["tc", "qdisc", "replace", "dev", iface.as_str(), "root"];
                all.extend(args.iter().map(String::as_str));
                h.check(&all)?;
            }
            Ok(())
        }))?;
        let how = planned
            .iter()
            .map(|(i, (plan, _))| NodeMechanisms {
                node: self.spec(*i).name.clone(),
                mechanisms: plan.mechanisms.clone(),
            })
            .collect();
        Ok((guard, how))
    }

    /// The interface a node reaches its first peer through (`ip -o route get PEER`).
    fn find_interface(&self, i: usize, h: &Host) -> Result<String> {
        let n = self.spec(i);
        let peer = self
            .inner
            .file
            .nodes
            .iter()
            .find(|p| p.name != n.name)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "node {}: set `interface` in the nodes file (there is no peer to find it by)",
                    n.name
                ))
            })?;
        let route = h.check(&["ip", "-o", "route", "get", &peer.host])?;
        let words: Vec<&str> = route.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|p| words.get(p + 1))
            .map(|s| s.to_string())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "node {}: cannot tell its interface from `{}`; set `interface` in the nodes file",
                    n.name,
                    route.trim()
                ))
            })
    }

    // ---- processes ----

    /// Kills or pauses `nodes` with the nodes file's commands; the guard starts or
    /// resumes them.
    pub fn process_fault(&self, kind: ProcessKind, nodes: &[String]) -> Result<RemoteFault> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let names: BTreeSet<String> = nodes.iter().cloned().collect();
        for n in &names {
            let p = &self.spec(self.index(n)?).process;
            let (cmd, what) = match kind {
                ProcessKind::Kill => (&p.kill, "kill (`process.kill` and `process.start`)"),
                ProcessKind::Pause => (&p.pause, "pause (`process.pause` and `process.resume`)"),
            };
            if cmd.is_none() {
                return Err(Error::Unsupported(format!(
                    "{what} is unsupported on node {n}: the nodes file says no command for it \
                     (set process.service, process.pid_file or the commands)"
                )));
            }
        }
        self.update(|f| match kind {
            ProcessKind::Kill => f.killed.extend(names.iter().cloned()),
            ProcessKind::Pause => f.paused.extend(names.iter().cloned()),
        })?;
        let guard = RemoteFault::new(self, Undo::Process(kind, names.clone()));
        self.each_of(&names, |i, h| {
            let n = self.spec(i);
            let t = match kind {
                ProcessKind::Kill => &n.process.kill,
                ProcessKind::Pause => &n.process.pause,
            };
            let cmd = fill(t.as_deref().unwrap_or("false"), &n.name, &n.host, 0);
            h.check_shell(&cmd)?;
            if kind == ProcessKind::Kill {
                // A killed process is no longer paused: nothing to resume (a resume
                // of a dead process would fail the heal).
                self.update(|f| {
                    f.paused.remove(&n.name);
                })?;
            }
            Ok(())
        })?;
        Ok(guard)
    }

    fn undo_process(&self, kind: ProcessKind, names: &BTreeSet<String>) -> Result<()> {
        let killed = self.recorded()?.killed;
        self.each_of(names, |i, h| {
            let n = self.spec(i);
            let fill = |t: &str| fill(t, &n.name, &n.host, 0);
            match kind {
                // Also recorded as killed (the run stopped between the kill and
                // clearing the pause): the process may be dead, and the kill's undo
                // starts it; a resume is only worth a try.
                ProcessKind::Pause if killed.contains(&n.name) => {
                    if let Some(t) = &n.process.resume {
                        let _ = h.shell(&fill(t))?;
                    }
                    Ok(())
                }
                ProcessKind::Pause => match &n.process.resume {
                    Some(t) => h.check_shell(&fill(t)).map(|_| ()),
                    None => Ok(()),
                },
                ProcessKind::Kill => {
                    if let Some(r) = &n.process.running {
                        if h.shell(&fill(r))?.success() {
                            return Ok(());
                        }
                    }
                    match &n.process.start {
                        Some(t) => h.check_shell(&fill(t)).map(|_| ()),
                        None => Ok(()),
                    }
                }
            }
        })?;
        self.update(|f| {
            for n in names {
                match kind {
                    ProcessKind::Kill => f.killed.remove(n),
                    ProcessKind::Pause => f.paused.remove(n),
                };
            }
        })
        .map(|_| ())
    }

    // ---- clocks ----

    /// Moves the clocks of `nodes` by `offset_ms` (the nodes file says how); the
    /// guard puts them back.
    pub fn clock_fault(&self, nodes: &[String], offset_ms: i64) -> Result<RemoteFault> {
        if offset_ms.abs() > MAX_CLOCK_OFFSET_MS {
            return Err(Error::Unsupported(format!(
                "a clock jump of {offset_ms} ms: at most 3650 days either way \
                 (a remote `date`'s arithmetic would overflow past a few centuries)"
            )));
        }
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let names: BTreeSet<String> = nodes.iter().cloned().collect();
        let recorded = self.recorded()?;
        for n in &names {
            let i = self.index(n)?;
            if let Some(c) = recorded.clocks.get(n) {
                return Err(Error::Unsupported(format!(
                    "node {n}'s clock is already moved by {} ms: heal first",
                    c.offset_ms
                )));
            }
            match &self.spec(i).clock {
                ClockStrategy::None => {
                    return Err(Error::Unsupported(format!(
                        "clock faults are unsupported on node {n}: its clock strategy is \"none\""
                    )))
                }
                ClockStrategy::Date => self.refuse_own_clock(i)?,
                ClockStrategy::Command { .. } => {}
            }
        }
        self.update(|f| {
            for n in &names {
                f.clocks.insert(
                    n.clone(),
                    ClockRecord {
                        offset_ms,
                        applied: false,
                    },
                );
            }
        })?;
        let guard = RemoteFault::new(self, Undo::Clock(names.clone()));
        let bumped = self.each_of(&names, |i, h| {
            let n = self.spec(i);
            let script = match &n.clock {
                ClockStrategy::Date => date_shift_script(offset_ms),
                ClockStrategy::Command { bump, .. } => fill(bump, &n.name, &n.host, offset_ms),
                ClockStrategy::None => return Ok(()),
            };
            h.check_shell(&script)?;
            self.update(|f| {
                if let Some(c) = f.clocks.get_mut(&n.name) {
                    c.applied = true;
                }
            })
            .map(|_| ())
        });
        bumped?;
        Ok(guard)
    }

    /// The `date` strategy sets the whole host's clock: never this machine's. Refused
    /// outright for loopback and lab addresses (whatever the node answers), then
    /// unless the node proves it runs another kernel: its boot id, exactly one and
    /// not ours. A node sharing this machine's kernel (a lab namespace, a container)
    /// has ours; a shell that prints anything else (a banner, a .bashrc echo, a
    /// ForceCommand) proves nothing, and is refused too.
    fn refuse_own_clock(&self, i: usize) -> Result<()> {
        const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
        let n = self.spec(i);
        let refuse = |why: String| date_refusal(&n.name, &why);
        if let Some(why) = date_refused_for_host(&n.host) {
            return Err(refuse(why));
        }
        let ours = std::fs::read_to_string(BOOT_ID).unwrap_or_default();
        let theirs = self.inner.hosts[i].check(&["cat", BOOT_ID])?;
        check_boot_ids(&ours, &theirs).map_err(refuse)
    }

    /// Puts back the clocks of `nodes` that a clock fault moved (others are left
    /// alone); returns notes for the user.
    pub fn clock_reset(&self, nodes: &[String]) -> Result<Vec<String>> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        self.undo_clocks(&nodes.iter().cloned().collect())
    }

    /// Puts back the clocks of `names` as recorded; returns notes for the user.
    fn undo_clocks(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        let recorded = self.recorded()?;
        let notes = Mutex::new(Vec::new());
        self.each_of(names, |i, h| {
            let n = self.spec(i);
            let Some(rec) = recorded.clocks.get(&n.name) else {
                return Ok(());
            };
            match &n.clock {
                ClockStrategy::Date => {
                    // Checked again: the nodes file may have changed since the bump,
                    // and this machine's clock is never set, not even to heal.
                    self.refuse_own_clock(i)?;
                    if rec.applied {
                        h.check_shell(&date_shift_script(-rec.offset_ms))?;
                    }
                    let ntp = h.check_shell(NTP_STEP_SCRIPT)?;
                    let ntp = ntp.trim();
                    let mut notes = notes.lock().unwrap_or_else(|p| p.into_inner());
                    if !rec.applied {
                        notes.push(format!(
                            "node {}: the clock may be off by {} ms (the run stopped while setting it){}",
                            n.name,
                            rec.offset_ms,
                            if ntp == "none" { "; no NTP client to step it" } else { "; NTP stepped it" }
                        ));
                    } else if ntp != "none" {
                        notes.push(format!("node {}: clock stepped by {ntp}", n.name));
                    }
                }
                ClockStrategy::Command { reset, .. } => {
                    h.check_shell(&fill(reset, &n.name, &n.host, rec.offset_ms))?;
                }
                ClockStrategy::None => {}
            }
            Ok(())
        })?;
        self.update(|f| {
            for n in names {
                f.clocks.remove(n);
            }
        })?;
        Ok(notes.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    // ---- heal ----

    fn heal_rules(&self, faults: &RemoteFaults, qdiscs_only: bool) -> Result<()> {
        let chains = [(faults.chain(), "INPUT"), (faults.loss_chain(), "INPUT")];
        first_error(self.each(|i, h| {
            let n = &self.spec(i).name;
            let wanted: Vec<(&str, &str)> = chains
                .iter()
                .skip(usize::from(qdiscs_only))
                .map(|(c, k)| (c.as_str(), *k))
                .collect();
            iptables::sweep(h, &wanted)?;
            if let Some(iface) = faults.qdiscs.get(n) {
                let out = h.run(&["tc", "qdisc", "show", "dev", iface, "root"])?;
                // The interface is gone (a container restarted): so is our qdisc.
                if !out.success() && out.stderr.contains("Cannot find device") {
                    return Ok(());
                }
                let shown = h.ok(format!("tc qdisc show dev {iface} root"), out)?;
                if shown.contains("netem") || shown.contains("tbf") {
                    h.check(&["tc", "qdisc", "del", "dev", iface, "root"])?;
                }
            }
            Ok(())
        }))
        .map(|_| ())
    }

    /// Undoes every fault the state file records: this run's chains and qdiscs go,
    /// killed nodes start, paused ones resume, clocks go back; then the state file.
    /// Returns notes for the user (a clock that may still be off, say). Idempotent.
    pub fn heal(&self) -> Result<Vec<String>> {
        let faults = self.recorded()?;
        let rules = self.heal_rules(&faults, false);
        let paused = self.undo_process(ProcessKind::Pause, &faults.paused);
        let killed = self.undo_process(ProcessKind::Kill, &faults.killed);
        let clocks: BTreeSet<String> = faults.clocks.keys().cloned().collect();
        let notes = self.undo_clocks(&clocks);
        rules?;
        paused?;
        killed?;
        let notes = notes?;
        self.update(|f| *f = RemoteFaults::default())?;
        Ok(notes)
    }
}

/// A partition drops packets by source address on each node, so every node needs
/// an IPv4 address of its own that its peers' packets come from. Loopback is none:
/// nodes sharing 127.0.0.1 (containers behind port mappings) would have a DROP for
/// 127.0.0.1 in this machine's INPUT, cutting the SSH link the heal needs, and the
/// peers' traffic does not come from it anyway.
pub fn check_partitionable(nodes: &[NodeSpec]) -> Result<()> {
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for n in nodes {
        let addr = match n.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => IpAddr::V4(a),
            Ok(IpAddr::V6(_)) => {
                return Err(Error::Unsupported(format!(
                    "partitions are iptables rules, IPv4 only: node {} has the IPv6 address `{}`",
                    n.name, n.host
                )))
            }
            Err(_) => {
                return Err(Error::Unsupported(format!(
                    "partitions need every node's address as an IP (node {} has `{}`)",
                    n.name, n.host
                )))
            }
        };
        if addr.is_loopback() {
            return Err(Error::Unsupported(format!(
                "partitions need each node's own address, not loopback: node {} has `{}` \
                 (a DROP for it would cut this machine's own loopback, the SSH link included)",
                n.name, n.host
            )));
        }
        if let Some(other) = seen.insert(addr, &n.name) {
            return Err(Error::Unsupported(format!(
                "partitions need a distinct address per node: nodes {other} and {} are both `{}`",
                n.name, n.host
            )));
        }
    }
    Ok(())
}

/// The largest clock jump a remote node takes, ten years either way.
pub const MAX_CLOCK_OFFSET_MS: i64 = 3650 * 86_400 * 1_000;

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
        message: e.to_string(),
    })
}

fn date_refusal(node: &str, why: &str) -> Error {
    Error::Unsupported(format!(
        "clock strategy \"date\" refused on node {node}: {why}, and `date -s` must never \
         set this machine's own clock; give it clock = {{ strategy = \"command\", \
         bump = ..., reset = ... }}"
    ))
}

/// Refuses, before any SSH, a clock fault on `names` (every node when empty) whose
/// strategy is `date` and whose host is this machine or a lab namespace.
pub fn refuse_date_here(file: &NodesFile, names: &[String]) -> Result<()> {
    for n in &file.nodes {
        if !names.is_empty() && !names.contains(&n.name) {
            continue;
        }
        if n.clock == ClockStrategy::Date {
            if let Some(why) = date_refused_for_host(&n.host) {
                return Err(date_refusal(&n.name, &why));
            }
        }
    }
    Ok(())
}

/// Why the `date` strategy is refused for `host` before asking it anything: loopback
/// and unspecified addresses are this machine, lab addresses (10.77.0.0/16) are
/// namespaces on this machine's kernel.
fn date_refused_for_host(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(format!("`{host}` is this machine"));
    }
    match bare.parse::<IpAddr>() {
        Ok(a) if a.is_loopback() || a.is_unspecified() => Some(format!("`{host}` is this machine")),
        Ok(IpAddr::V4(v4)) if v4.octets()[..2] == [10, 77] => Some(format!(
            "`{host}` is a splitbrain lab address, a namespace on this machine's kernel"
        )),
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()) => {
            Some(format!("`{host}` is this machine"))
        }
        _ => None,
    }
}

fn is_boot_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Ok only when the node's `cat boot_id` printed exactly one boot id, and not ours.
fn check_boot_ids(ours: &str, theirs: &str) -> std::result::Result<(), String> {
    let ours = ours.trim().to_ascii_lowercase();
    if !is_boot_id(&ours) {
        return Err(
            "this machine's boot id cannot be read, so nothing shows the node has another kernel"
                .into(),
        );
    }
    let theirs = theirs.trim().to_ascii_lowercase();
    if theirs.contains(&ours) {
        return Err("it shares this machine's kernel (same boot id)".into());
    }
    if !is_boot_id(&theirs) {
        return Err(format!(
            "its answer to `cat /proc/sys/kernel/random/boot_id` was not one boot id \
             (`{}`: a banner, or a shell startup file that prints?), so nothing shows it has another kernel",
            theirs.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// The server port in `$SSH_CONNECTION` ("client_ip client_port server_ip server_port").
fn ssh_server_port(ssh_connection: &str) -> Option<u16> {
    let words: Vec<&str> = ssh_connection.split_whitespace().collect();
    match words.as_slice() {
        [_, _, _, port] => port.parse().ok(),
        _ => None,
    }
}

/// Whether the host's kernel has netem: loaded, loadable or built in. Looked up,
/// never tried: a trial qdisc would change the node before anything is recorded.
fn has_netem(h: &Host) -> Result<bool> {
    let out = h.check_shell(
        "if [ -d /sys/module/sch_netem ] || modinfo sch_netem >/dev/null 2>&1 \
         || grep -qs '/sch_netem.ko' \"/lib/modules/$(uname -r)/modules.builtin\"; \
         then echo netem; else echo none; fi",
    )?;
    Ok(out.trim() == "netem")
}

/// A shell script that moves the host's clock by `offset_ms`, to the nanosecond of
/// the moment it reads the clock (GNU date). Only ever run on a remote host whose
/// boot id differs from this machine's.
pub fn date_shift_script(offset_ms: i64) -> String {
    format!(
        "n=$(date +%s%N) && t=$((n + ({offset_ms}) * 1000000)) && \
         date -u -s \"@$((t / 1000000000)).$(printf %09d $((t % 1000000000)))\" >/dev/null"
    )
}

/// Steps the clock back to true time where an NTP client is there; prints which one.
pub const NTP_STEP_SCRIPT: &str = "if command -v chronyc >/dev/null 2>&1; then chronyc -a makestep >/dev/null && echo chronyc; \
     elif command -v timedatectl >/dev/null 2>&1 && timedatectl set-ntp true 2>/dev/null; then echo timedatectl; \
     else echo none; fi";

#[derive(Debug, Clone)]
enum Undo {
    Partition,
    Packet,
    Process(ProcessKind, BTreeSet<String>),
    Clock(BTreeSet<String>),
}

/// A fault on remote nodes. Undone when dropped (or [`RemoteFault::heal`] to see
/// errors, [`RemoteFault::keep`] to leave it for `splitbrain nemesis heal`).
#[derive(Debug)]
pub struct RemoteFault {
    net: RemoteNet,
    undo: Undo,
    armed: bool,
}

impl RemoteFault {
    fn new(net: &RemoteNet, undo: Undo) -> RemoteFault {
        RemoteFault {
            net: net.clone(),
            undo,
            armed: true,
        }
    }

    /// Undoes it now; returns notes for the user.
    pub fn heal(mut self) -> Result<Vec<String>> {
        self.armed = false;
        self.undo()
    }

    pub fn keep(mut self) {
        self.armed = false;
    }

    /// `partition`, `packet`, `kill`, `pause` or `clock`.
    pub fn kind(&self) -> &'static str {
        match &self.undo {
            Undo::Partition => "partition",
            Undo::Packet => "packet",
            Undo::Process(ProcessKind::Kill, _) => "kill",
            Undo::Process(ProcessKind::Pause, _) => "pause",
            Undo::Clock(_) => "clock",
        }
    }

    fn undo(&self) -> Result<Vec<String>> {
        let net = &self.net;
        match &self.undo {
            Undo::Partition => {
                let faults = net.recorded()?;
                let chain = faults.chain();
                first_error(net.each(|_, h| remove_chain(h, &chain, "INPUT")))?;
                net.update(|f| f.partition = None)?;
            }
            Undo::Packet => {
                let faults = net.recorded()?;
                net.heal_rules(&faults, true)?;
                net.update(|f| {
                    f.packet = None;
                    f.qdiscs.clear();
                })?;
            }
            Undo::Process(kind, names) => net.undo_process(*kind, names)?,
            Undo::Clock(names) => return net.undo_clocks(names),
        }
        Ok(Vec::new())
    }
}

impl Drop for RemoteFault {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.undo() {
                eprintln!("splitbrain-nemesis: undoing a fault on remote nodes failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_strategy_shifts_by_the_offset_and_back() {
        let s = date_shift_script(-1500);
        assert!(
            s.starts_with("n=$(date +%s%N) && t=$((n + (-1500) * 1000000))"),
            "{s}"
        );
        assert!(s.contains("date -u -s \"@$((t / 1000000000))."), "{s}");
        assert!(date_shift_script(1500).contains("(1500) * 1000000"));
        assert!(NTP_STEP_SCRIPT.contains("chronyc -a makestep"));
        assert!(NTP_STEP_SCRIPT.contains("timedatectl set-ntp true"));
    }

    const OURS: &str = "0f2c9a9e-5b8e-4d6c-9a51-7c1e2d3b4a59\n";

    #[test]
    fn date_needs_one_boot_id_that_is_not_ours() {
        let other = "d1b2c3d4-e5f6-4789-8abc-def012345678\n";
        assert_eq!(check_boot_ids(OURS, other), Ok(()));
        let same = check_boot_ids(OURS, OURS).unwrap_err();
        assert!(same.contains("same boot id"), "{same}");
        // A shell that prints more than the boot id: ours inside, or unknown text.
        for noisy in [
            format!("Welcome to the lab\n{OURS}"),
            format!("{OURS}bye\n"),
            format!("{}\n", OURS.trim().to_uppercase()),
        ] {
            assert!(check_boot_ids(OURS, &noisy).is_err(), "{noisy}");
        }
        let banner = check_boot_ids(OURS, &format!("hello from .bashrc\n{other}")).unwrap_err();
        assert!(banner.contains("not one boot id"), "{banner}");
        assert!(check_boot_ids(OURS, "").is_err());
        assert!(check_boot_ids("", other).is_err(), "our own must be known");
    }

    #[test]
    fn date_is_refused_up_front_for_this_machine_and_the_lab() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "0.0.0.0",
            "localhost",
            "LocalHost",
            "10.77.1.2",
            "::ffff:127.0.0.1",
        ] {
            assert!(date_refused_for_host(host).is_some(), "{host}");
        }
        for host in ["192.0.2.7", "db1.example", "10.78.1.2"] {
            assert_eq!(date_refused_for_host(host), None, "{host}");
        }
    }

    #[test]
    fn date_on_this_machine_is_refused_from_the_nodes_file_alone() {
        let text = "[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\n\
                    [[node]]\nname = \"n2\"\nhost = \"192.0.2.2\"\n";
        let file = NodesFile::parse(text, Path::new("/x/nodes.toml")).unwrap();
        let e = refuse_date_here(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("refused on node n1"), "{e}");
        assert!(refuse_date_here(&file, &["n2".to_string()]).is_ok());
    }

    fn node(name: &str, host: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            host: host.into(),
            port: 22,
            user: "root".into(),
            identity: None,
            known_hosts: None,
            connect_timeout: 5,
            command_timeout: 120,
            ssh_options: vec![],
            client_url: None,
            interface: None,
            process: Default::default(),
            clock: ClockStrategy::None,
        }
    }

    #[test]
    fn partitions_need_a_distinct_ipv4_address_per_node() {
        let ok = [node("n1", "10.77.1.1"), node("n2", "10.77.1.2")];
        assert!(check_partitionable(&ok).is_ok());
        let e = |nodes: &[NodeSpec]| check_partitionable(nodes).unwrap_err().to_string();
        let shared = e(&[node("n1", "192.0.2.1"), node("n2", "192.0.2.1")]);
        assert!(
            shared.contains("nodes n1 and n2 are both `192.0.2.1`"),
            "{shared}"
        );
        let lo = e(&[node("n1", "127.0.0.1"), node("n2", "10.77.1.2")]);
        assert!(lo.contains("node n1") && lo.contains("loopback"), "{lo}");
        let v6 = e(&[node("n1", "10.77.1.1"), node("n2", "2001:db8::2")]);
        assert!(v6.contains("IPv4 only: node n2"), "{v6}");
        assert!(e(&[node("n1", "db1.example")]).contains("as an IP"));
    }

    #[test]
    fn loss_spares_the_port_sshd_sees() {
        assert_eq!(
            ssh_server_port("10.77.1.254 40312 10.77.1.1 22\n"),
            Some(22)
        );
        assert_eq!(ssh_server_port("172.17.0.1 5555 172.17.0.2 22"), Some(22));
        assert_eq!(ssh_server_port("\n"), None);
    }

    #[test]
    fn redirecting_ssh_options_need_allow_remote_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nodes.toml");
        let text = "[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\n\
                    ssh_options = [\"ProxyCommand=ssh -W %h:%p elsewhere\"]\n";
        let file = NodesFile::parse(text, &path).unwrap();
        let e = RemoteNet::open_lenient(file).unwrap_err().to_string();
        assert!(e.contains("node `n1`, field `ssh_options`"), "{e}");
        assert!(e.contains("--allow-remote"), "{e}");
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

    #[test]
    fn chain_names_fit_iptables() {
        let f = RemoteFaults {
            run_id: "0123abcd".into(),
            ..RemoteFaults::default()
        };
        assert!(f.loss_chain().len() <= 28);
        assert_eq!(f.chain(), "splitbrain-0123abcd");
    }
}
