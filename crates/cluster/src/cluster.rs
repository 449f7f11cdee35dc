//! [`Cluster`]: bring a lab up, fault its members, read its health, take it down.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::db::{self, Database, MemberPlan};
use crate::error::{Error, Result};
use crate::net;
use crate::node::{Node, NodeName};
use crate::pidfd::{self, Pinned};
use crate::sshd::{self, SshAccess};
use crate::state::{DirLock, ExtraRecord, NodeRecord, State, VERSION};
use crate::sys::{self, Owner};
use crate::topology::{Lab, MAX_NODES};

/// Run directory used when none is given: state file, member data and logs live here.
pub const DEFAULT_DIR: &str = "/tmp/splitbrain/cluster";

/// How long `start` waits for a member to listen, and `kill` for it to die.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `up` waits for that line from one member before starting the next anyway.
const SERVING_WAIT: Duration = Duration::from_secs(2);
/// Lines of each member's log shown when something fails.
const LOG_TAIL: usize = 15;

/// What `up` builds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Run directory: state file, and per member `nI/data` and its log (`nI/etcd.log`).
    pub dir: PathBuf,
    /// The database the members run, by its plug-in's name (`etcd`, the default; see
    /// [`known_databases`](crate::known_databases)).
    pub db: String,
    /// Number of members, 1 to 9 (3 by default; 5 is the other usual choice).
    pub nodes: usize,
    /// Serve etcd's v2 keys API (`--enable-v2`), which the v2 workloads need.
    pub enable_v2: bool,
    /// Raft pre-vote (`--pre-vote`): without it a healed partition forces a disruptive
    /// re-election.
    pub pre_vote: bool,
    /// Use subnet `10.77.N.0/24` instead of the first free one.
    pub subnet: Option<u8>,
    /// How long `up` waits for every member to be healthy.
    pub health_timeout: Duration,
    /// More flags for every member, appended to the command line.
    pub extra_etcd_args: Vec<String>,
    /// Also run an OpenSSH server in each member's namespace, on its address, port 22
    /// (keys in `DIR/ssh`, see [`Cluster::ssh_access`]): remote nodes to test the SSH
    /// path of the nemesis against.
    pub sshd: bool,
    /// Start every member under this clock supervisor (its program and leading
    /// arguments, e.g. `splitbrain nemesis clock-supervisor`): member `nI` runs as
    /// `SUPERVISOR... --offset-file DIR/nI/clock -- etcd ...`, keeps the
    /// supervisor's pid, and its wall clock follows that offset file (see the
    /// `splitbrain-clock` crate), which the nemesis writes. Restarts go through it too.
    pub clock_supervisor: Option<Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: PathBuf::from(DEFAULT_DIR),
            db: db::DEFAULT_DB.to_owned(),
            nodes: 3,
            enable_v2: true,
            pre_vote: true,
            subnet: None,
            health_timeout: Duration::from_secs(30),
            extra_etcd_args: Vec::new(),
            sshd: false,
            clock_supervisor: None,
        }
    }
}

impl Config {
    /// The default configuration, in run directory `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Config {
            dir: dir.into(),
            ..Config::default()
        }
    }

    fn validate(&self) -> Result<()> {
        db::by_name(&self.db)?;
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(Error::InvalidConfig(format!(
                "{} members asked, 1 to {MAX_NODES} supported",
                self.nodes
            )));
        }
        if let Some(n) = self.subnet {
            if !(1..=254).contains(&n) {
                return Err(Error::InvalidConfig(format!(
                    "subnet 10.77.{n}.0/24 is outside 10.77.1.0/24 ..= 10.77.254.0/24"
                )));
            }
        }
        Ok(())
    }
}

/// A member's process, as `/proc` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Process {
    Running {
        pid: i32,
    },
    /// Stopped by SIGSTOP ([`Cluster::pause`]).
    Paused {
        pid: i32,
    },
    /// Killed, or exited on its own.
    Stopped,
}

/// One member's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberStatus {
    pub node: Node,
    pub process: Process,
    /// A linearizable read through this member succeeded.
    pub healthy: bool,
    /// Why it is not healthy.
    pub error: Option<String>,
    pub member_id: Option<u64>,
    /// The leader this member believes in.
    pub leader: Option<NodeName>,
    pub term: Option<u64>,
    pub raft_index: Option<u64>,
}

/// The whole cluster, as the members that answered see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    pub subnet: String,
    pub members: Vec<MemberStatus>,
    /// The leader of the highest term any member reports.
    pub leader: Option<NodeName>,
    pub term: Option<u64>,
}

impl Status {
    /// Every member is running and healthy.
    pub fn healthy(&self) -> bool {
        self.members.iter().all(|m| m.healthy)
    }
}

/// A local etcd cluster, one member per network namespace, described by the state file in
/// its run directory. Every method re-reads that file, so several processes (a test and
/// the `splitbrain cluster` command, say) can work on one cluster.
///
/// Members outlive the `Cluster` value and the process that started them; [`down`]
/// removes them (use [`ClusterGuard`] to do that on drop).
///
/// [`down`]: Cluster::down
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    /// The database plug-in the members run.
    db: &'static dyn Database,
    subnet: String,
    nodes: Vec<Node>,
    /// Whether the lab runs an sshd in each member's namespace.
    sshd: bool,
}

impl Cluster {
    /// Builds and starts a cluster, and returns once every member is healthy. On any
    /// failure it removes what it created, and the error carries the members' log tails.
    pub fn up(config: Config) -> Result<Cluster> {
        config.validate()?;
        sys::require_root("starting a lab cluster")?;
        let database = db::by_name(&config.db)?;
        for (program, package) in PROGRAMS.iter().chain(database.programs()) {
            sys::require_program(program, package)?;
        }
        for &(path, package) in database.files() {
            if !Path::new(path).is_file() {
                return Err(Error::MissingFile { path, package });
            }
        }
        let (program, package) = database.programs()[0];
        let member_program = sys::require_program(program, package)?;
        let sshd = match config.sshd {
            true => Some(sys::require_program("sshd", "openssh-server")?),
            false => None,
        };
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| Error::io(format!("cannot create {}", config.dir.display()), e))?;
        let dir = std::fs::canonicalize(&config.dir)
            .map_err(|e| Error::io(format!("cannot resolve {}", config.dir.display()), e))?;
        let _lock = DirLock::acquire(&dir)?;
        if config.sshd {
            sshd::check_ssh_dir(&dir)?;
        }
        if let Some(old) = State::read(&dir)? {
            let state_file = State::path(&dir);
            return Err(if is_alive(&old) {
                Error::AlreadyUp { dir, state_file }
            } else {
                Error::StaleState { dir, state_file }
            });
        }

        // Write-ahead, even for the claim: if we die right after `ip netns add`, `down`
        // finds the (still empty) bridge namespace named in the state file.
        let mut planned = None;
        let claimed = net::claim_lab(config.subnet, |lab| {
            let state = plan(
                lab,
                &dir,
                &config,
                database,
                &member_program,
                sshd.as_deref(),
            );
            state.write()?;
            planned = Some(state);
            Ok(())
        });
        let lab = match claimed {
            Ok(lab) => lab,
            Err(e) => {
                // Nothing was claimed: the planned state records nothing that exists.
                let _ = State::remove(&dir);
                return Err(e);
            }
        };
        // `record` ran for the lab that was claimed, so `planned` is its plan.
        let mut state = planned.unwrap_or_else(|| {
            plan(
                lab,
                &dir,
                &config,
                database,
                &member_program,
                sshd.as_deref(),
            )
        });
        state.bridge_netns_inode = sys::netns_inode(&state.bridge_netns);
        state.write()?;
        let cluster = Cluster::from_state(&state)?;
        tracing::debug!(subnet = %state.subnet, dir = %dir.display(), "claimed lab");
        match cluster.build(lab, &mut state, config.health_timeout) {
            Ok(()) => Ok(cluster),
            Err(e) => {
                if let Err(down) = cluster.teardown(&mut state) {
                    tracing::error!("cleaning up after a failed up: {down}");
                    return Err(Error::Leftover(format!(
                        "{e}\nand cleaning up failed too: {down}"
                    )));
                }
                Err(e)
            }
        }
    }

    /// The cluster recorded in run directory `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Cluster> {
        let dir = dir.as_ref();
        let no_cluster = || Error::NoCluster {
            dir: dir.to_owned(),
            state_file: State::path(dir),
        };
        let dir = std::fs::canonicalize(dir).map_err(|_| no_cluster())?;
        let state = State::read(&dir)?.ok_or_else(no_cluster)?;
        Cluster::from_state(&state)
    }

    fn from_state(state: &State) -> Result<Cluster> {
        Ok(Cluster {
            db: db::by_name(&state.db)?,
            dir: state.dir.clone(),
            subnet: state.subnet.clone(),
            nodes: state.nodes.iter().map(|r| r.node.clone()).collect(),
            sshd: state.nodes.iter().any(|r| r.sshd.is_some()),
        })
    }

    /// The name of the database the members run (`etcd`, ...).
    pub fn db(&self) -> &'static str {
        self.db.name()
    }

    /// Returns a guard that takes the cluster down when dropped.
    pub fn guard(self) -> ClusterGuard {
        ClusterGuard { cluster: self }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file (`DIR/cluster.json`).
    pub fn state_file(&self) -> PathBuf {
        State::path(&self.dir)
    }

    /// The lab's subnet, `10.77.N.0/24`.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: impl AsRef<str>) -> Result<&Node> {
        let name = name.as_ref();
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::UnknownNode {
                node: name.to_owned(),
                known: self.node_names(),
            })
    }

    /// How to reach the members over SSH, when the lab runs an sshd in each
    /// (`Config::sshd`).
    pub fn ssh_access(&self) -> Option<SshAccess> {
        self.sshd.then(|| sshd::access(&self.dir))
    }

    /// Whether members run under the clock supervisor, each with its offset file
    /// ([`Node::clock_file`]).
    pub fn has_clock_control(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.iter().all(|n| n.clock_file.is_some())
    }

    /// Every member's client URL, in node order.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.client_url.clone()).collect()
    }

    /// A command that runs `program` inside `node`'s network namespace (`ip netns exec`),
    /// e.g. `iptables` for a partition. Rules made there vanish with the namespace.
    pub fn netns_command(&self, node: impl AsRef<str>, program: &str) -> Result<Command> {
        Ok(sys::netns_command(&self.node(node)?.netns, program))
    }

    /// SIGKILLs `node`'s database process and waits until it has exited (its ports
    /// are free; if this process started it, it is collected too). Its data stays for
    /// [`start`].
    ///
    /// [`start`]: Cluster::start
    pub fn kill(&self, node: impl AsRef<str>) -> Result<()> {
        self.kill_process(node, None)
    }

    /// Like [`kill`](Cluster::kill), for one of the member's processes: `None` is the
    /// database's own, `Some(name)` one the plug-in runs beside it (Redis's
    /// `sentinel`, `webdis`: see [`extra_process_names`](Cluster::extra_process_names)).
    pub fn kill_process(&self, node: impl AsRef<str>, process: Option<&str>) -> Result<()> {
        sys::require_root("killing a lab member")?;
        let name = self.node(node)?.name.clone();
        self.with_state(|state| {
            let rec = state.node_mut(&name)?;
            let target = Target::of(rec, process)?;
            let what = target.describe(rec);
            let pid = target.our_pid(rec)?;
            let pinned =
                Pinned::open(pid).ok_or_else(|| Error::NotRunning { node: what.clone() })?;
            // Checked again once pinned: from then on the pid cannot change hands.
            target.our_pid(rec)?;
            pinned.signal(Signal::SIGKILL);
            pidfd::wait_exited(&pinned, || {
                format!("node {what} (pid {pid}) exiting on SIGKILL")
            })?;
            *target.pid_mut(rec) = None;
            Ok(())
        })
    }

    /// The names of the processes a member runs besides the database's own, which
    /// [`kill_process`](Cluster::kill_process) and friends accept (empty for most
    /// databases; `sentinel`, and `webdis` with it, for Redis).
    pub fn extra_process_names(&self) -> Result<Vec<String>> {
        let state = self.read_state()?;
        Ok(state
            .nodes
            .first()
            .map(|r| r.extras.iter().map(|e| e.name.clone()).collect())
            .unwrap_or_default())
    }

    /// Restarts a killed member with the same command line and data, and waits until it
    /// listens for clients (not until it is healthy: it may have no quorum to rejoin).
    pub fn start(&self, node: impl AsRef<str>) -> Result<()> {
        sys::require_root("starting a lab member")?;
        let name = self.node(node)?.name.clone();
        let started = self.with_state(|state| {
            let rec = state.node_mut(&name)?;
            let main_running = rec
                .pid
                .filter(|&pid| sys::owner(pid, &rec.argv, rec.netns_inode) == Owner::Ours);
            let extra_running = |extra: &ExtraRecord| {
                extra
                    .pid
                    .is_some_and(|pid| sys::owner(pid, &extra.argv, rec.netns_inode) == Owner::Ours)
            };
            if let Some(pid) = main_running {
                if rec.extras.iter().all(extra_running) {
                    return Err(Error::AlreadyRunning {
                        node: name.to_string(),
                        pid,
                    });
                }
            }
            if rec.netns_inode.is_none() || sys::netns_inode(&rec.node.netns) != rec.netns_inode {
                return Err(Error::Inconsistent {
                    dir: self.dir.clone(),
                    what: format!("namespace {} of node {name} is gone", rec.node.netns),
                });
            }
            if main_running.is_none() {
                self.spawn(rec)?;
            }
            // Its other processes too, if they died with it or were killed.
            for i in 0..rec.extras.len() {
                let extra = &rec.extras[i];
                let running = extra.pid.is_some_and(|pid| {
                    sys::owner(pid, &extra.argv, rec.netns_inode) == Owner::Ours
                });
                if !running {
                    if let Some(pid) = extra.pid {
                        pidfd::reap(pid);
                    }
                    spawn_extra(&rec.node, &mut rec.extras[i])?;
                }
            }
            Ok(rec.clone())
        })?;
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        self.wait_listening(&started, deadline)?;
        self.wait_extras_listening(&started, deadline)
    }

    /// SIGSTOPs `node`'s database process and returns once it is stopped: it stays in
    /// the cluster but answers nothing.
    pub fn pause(&self, node: impl AsRef<str>) -> Result<()> {
        self.pause_process(node, None)
    }

    /// SIGCONTs a paused member and returns once it runs again.
    pub fn resume(&self, node: impl AsRef<str>) -> Result<()> {
        self.resume_process(node, None)
    }

    /// [`pause`](Cluster::pause) for one of the member's processes (see
    /// [`kill_process`](Cluster::kill_process)).
    pub fn pause_process(&self, node: impl AsRef<str>, process: Option<&str>) -> Result<()> {
        self.stop_or_continue(node, process, Signal::SIGSTOP, "pausing a lab member")
    }

    /// [`resume`](Cluster::resume) for one of the member's processes (see
    /// [`kill_process`](Cluster::kill_process)).
    pub fn resume_process(&self, node: impl AsRef<str>, process: Option<&str>) -> Result<()> {
        self.stop_or_continue(node, process, Signal::SIGCONT, "resuming a lab member")
    }

    fn stop_or_continue(
        &self,
        node: impl AsRef<str>,
        process: Option<&str>,
        sig: Signal,
        action: &'static str,
    ) -> Result<()> {
        sys::require_root(action)?;
        let name = self.node(node)?.name.clone();
        self.with_state(|state| {
            let rec = state.node_mut(&name)?;
            let target = Target::of(rec, process)?;
            let what = target.describe(rec);
            let pid = target.our_pid(rec)?;
            sys::signal(pid, sig)?;
            // Delivery is asynchronous: every thread of the Go runtime has to stop (or
            // continue) before the member really is paused (or running).
            let want_stopped = sig == Signal::SIGSTOP;
            let deadline = Instant::now() + PROCESS_TIMEOUT;
            let done = sys::poll(deadline, Duration::from_millis(2), || {
                let moving = sys::proc_state(pid).is_some_and(|s| (s == 'T') != want_stopped);
                Ok((!moving).then_some(()))
            })?;
            done.ok_or_else(|| {
                let verb = if want_stopped {
                    "stopping"
                } else {
                    "continuing"
                };
                Error::Timeout {
                    what: format!("node {what} (pid {pid}) {verb} on {sig}"),
                    after: PROCESS_TIMEOUT,
                }
            })
        })
    }

    /// The current leader: the one named by the highest term among the members that
    /// answer (a paused or killed member is not asked). `None` while there is none.
    pub fn leader(&self) -> Result<Option<NodeName>> {
        Ok(self.status_of(false)?.leader)
    }

    /// For a primary-backup database (MariaDB): promotes the most advanced replica of
    /// a primary that died or is cut off, and repoints the other replicas, as an
    /// operator would. [`Error::Failover`] when the primary is fine, or the database
    /// elects its own leader.
    pub fn failover(&self) -> Result<db::Failover> {
        sys::require_root("failing over a lab cluster")?;
        let _lock = DirLock::acquire(&self.dir)?;
        self.db.failover(&self.nodes)
    }

    /// Whether this cluster's primary is replaced only by [`failover`](Cluster::failover)
    /// (MariaDB), not elected by the database itself.
    pub fn operator_failover(&self) -> bool {
        self.db.operator_failover()
    }

    /// For a primary-backup database whose failover an operator makes (MariaDB):
    /// brings `node`, a former primary a failover replaced, back as a replica of the
    /// current primary. It may hold writes nobody else has, which replication will
    /// not merge, so its data goes: the member is stopped (SIGKILL) if it runs, its
    /// data directory is initialised afresh, and once it listens again it copies
    /// everything from the primary. [`Error::Failover`] for a database that elects
    /// its own leader (nothing is touched).
    pub fn rejoin(&self, node: impl AsRef<str>) -> Result<()> {
        sys::require_root("rejoining a lab member")?;
        let node = self.node(node)?.clone();
        // Before anything is touched: a rejoin that cannot work (a database that
        // elects its own leader, the primary itself, nobody answering) refuses
        // with the member's data intact.
        let primary = self.db.rejoin_source(&node, &self.nodes)?.clone();
        match self.kill(&node.name) {
            Ok(()) | Err(Error::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        self.db.wipe(&node)?;
        self.db.initialise(&node)?;
        self.start(&node.name)?;
        let _lock = DirLock::acquire(&self.dir)?;
        self.db.rejoin(&node, &primary)
    }

    /// Members, processes, health, leader and term.
    pub fn status(&self) -> Result<Status> {
        self.status_of(true)
    }

    /// Each member's process, from `/proc` alone (no request to etcd): what a heal
    /// needs to find members that are stopped or paused.
    pub fn processes(&self) -> Result<Vec<(NodeName, Process)>> {
        let state = self.read_state()?;
        Ok(state
            .nodes
            .iter()
            .map(|r| (r.node.name.clone(), process_of(r)))
            .collect())
    }

    /// Each member's processes besides the database's own, as `(node, name,
    /// process)`, from `/proc` alone: what a heal needs to find a killed or paused
    /// sentinel.
    pub fn extra_processes(&self) -> Result<Vec<(NodeName, String, Process)>> {
        let state = self.read_state()?;
        Ok(state
            .nodes
            .iter()
            .flat_map(|r| {
                r.extras.iter().map(|e| {
                    let process = process_state(e.pid, &e.argv, r.netns_inode);
                    (r.node.name.clone(), e.name.clone(), process)
                })
            })
            .collect())
    }

    /// Waits until every member that should be running is healthy (a linearizable read
    /// through it succeeds); fails early if one of them died.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let state = self.read_state()?;
        self.wait_healthy_in(&state, timeout)
    }

    /// Stops every member and removes every namespace and interface of this cluster, then
    /// the state file. Idempotent.
    pub fn down(&self) -> Result<()> {
        sys::require_root("taking a lab cluster down")?;
        let _lock = DirLock::acquire(&self.dir)?;
        match State::read(&self.dir)? {
            Some(mut state) => self.teardown(&mut state),
            None => Ok(()),
        }
    }

    // ---- building ----

    fn build(&self, lab: Lab, state: &mut State, health_timeout: Duration) -> Result<()> {
        net::create_bridge(lab)?;
        for i in 1..=state.nodes.len() {
            net::create_node_netns(lab, i)?;
            let rec = &mut state.nodes[i - 1];
            rec.netns_inode = sys::netns_inode(&rec.node.netns);
            state.write()?;
            net::wire_node(lab, i)?;
        }
        let nodes: Vec<Node> = state.nodes.iter().map(|r| r.node.clone()).collect();
        for node in &nodes {
            fresh_member_dir(self.db, node)?;
            write_config_files(self.db, node, &nodes)?;
        }
        initialise_all(self.db, &nodes)?;
        for i in 0..state.nodes.len() {
            self.spawn(&mut state.nodes[i])?;
            state.write()?;
            self.wait_serving(&state.nodes[i])?;
            if self.db.start_one_by_one() {
                self.wait_listening(&state.nodes[i], Instant::now() + health_timeout)?;
            }
        }
        if state.nodes.iter().any(|r| !r.extras.is_empty()) {
            // Once every main process listens: a sentinel that found its primary
            // silent would start a failover among members still starting.
            let deadline = Instant::now() + health_timeout;
            for rec in &state.nodes {
                self.wait_listening(rec, deadline)?;
            }
            for i in 0..state.nodes.len() {
                for j in 0..state.nodes[i].extras.len() {
                    let node = state.nodes[i].node.clone();
                    let extra = &mut state.nodes[i].extras[j];
                    // A previous run's log would only mislead.
                    std::fs::write(&extra.log_file, b"").map_err(|e| {
                        Error::io(format!("cannot create {}", extra.log_file.display()), e)
                    })?;
                    spawn_extra(&node, extra)?;
                    state.write()?;
                }
            }
            for rec in &state.nodes {
                self.wait_extras_listening(rec, deadline)?;
            }
        }
        self.wait_healthy_in(state, health_timeout)?;
        self.db.after_up(&nodes)?;
        let endpoints = self.endpoints();
        let endpoints: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        for (id, name) in self.db.member_ids(&endpoints)? {
            if let Some(rec) = state
                .nodes
                .iter_mut()
                .find(|r| r.node.name == name.as_str())
            {
                rec.member_id = Some(id);
            }
        }
        state.write()?;
        self.start_sshds(state)
    }

    /// Starts the sshd of every member that has one planned (`Config::sshd`).
    fn start_sshds(&self, state: &mut State) -> Result<()> {
        if state.nodes.iter().all(|r| r.sshd.is_none()) {
            return Ok(());
        }
        let nodes: Vec<Node> = state.nodes.iter().map(|r| r.node.clone()).collect();
        sshd::prepare(&state.dir, &nodes)?;
        for i in 0..state.nodes.len() {
            let rec = &mut state.nodes[i];
            let Some(planned) = rec.sshd.as_mut() else {
                continue;
            };
            let child =
                sys::spawn_in_netns(&rec.node.netns, &planned.argv, &sshd::log_path(&rec.node))?;
            // Like the members, it outlives this process, and teardown finds it by its
            // recorded pid (and collects it, when this process is its parent).
            planned.pid = Some(pidfd::adopt(child)?);
            state.write()?;
        }
        state.nodes.iter().try_for_each(sshd::wait_listening)
    }

    /// Starts a member and records its pid (the caller writes the state). Under a
    /// clock supervisor, returns once the supervisor has become etcd (same pid), so
    /// the pid's command line is the member's from then on.
    fn spawn(&self, rec: &mut NodeRecord) -> Result<()> {
        let child = sys::spawn_in_netns(&rec.node.netns, &rec.launch_argv(), &rec.node.log_file)?;
        let pid = pidfd::adopt(child)?;
        rec.pid = Some(pid);
        tracing::debug!(node = %rec.node.name, pid, "started member");
        if !rec.launcher.is_empty() {
            self.wait_supervised_exec(rec, pid)?;
        }
        Ok(())
    }

    /// Waits until the clock supervisor `pid` has exec'd etcd (its handler traces
    /// it first, which takes a few milliseconds).
    fn wait_supervised_exec(&self, rec: &NodeRecord, pid: i32) -> Result<()> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let exec = sys::poll(deadline, Duration::from_millis(1), || {
            match sys::owner(pid, &rec.argv, rec.netns_inode) {
                Owner::Ours => Ok(Some(())),
                // It failed, and said why in the member's log. (In the middle of the
                // exec the command line reads empty for a moment: not gone yet.)
                Owner::Gone if matches!(sys::proc_state(pid), None | Some('Z' | 'X' | 'x')) => {
                    self.check_alive(rec).map(Some)
                }
                Owner::Gone | Owner::Foreign(_) => Ok(None),
            }
        })?;
        exec.ok_or_else(|| Error::Timeout {
            what: format!(
                "node {} (pid {pid}) starting etcd under the clock supervisor",
                rec.node.name
            ),
            after: PROCESS_TIMEOUT,
        })
    }

    // ---- processes ----

    /// Fails with the member's log tail if a member that should run is gone.
    fn check_alive(&self, rec: &NodeRecord) -> Result<()> {
        let Some(pid) = rec.pid else { return Ok(()) };
        if sys::owner(pid, &rec.argv, rec.netns_inode) == Owner::Ours {
            return Ok(());
        }
        let status = pidfd::reap(pid)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let tail = sys::log_excerpt(&rec.node.log_file, LOG_TAIL, self.db);
        if let Some(line) = tail
            .lines()
            .find(|l| l.to_ascii_lowercase().contains("address already in use"))
        {
            return Err(Error::AddressInUse {
                what: format!("an address of node {} ({})", rec.node.name, rec.node.addr),
                detail: format!("{} says: {}", self.db.name(), line.trim()),
            });
        }
        Err(Error::MemberExited {
            node: rec.node.name.to_string(),
            status,
            log: rec.node.log_file.clone(),
            tail,
        })
    }

    /// Waits (briefly) until a new member serves its peers, before the next one starts.
    ///
    /// etcd 3.4 asks every peer at start whether it was bootstrapped already, giving each
    /// one second. A peer that has bound its port but not yet served holds the request;
    /// two members starting together can hold each other's and both lose a second per
    /// peer. Started one after the other, each finds its predecessors serving. Only a
    /// speed-up: if the log line never comes, the member goes on starting as usual.
    fn wait_serving(&self, rec: &NodeRecord) -> Result<()> {
        let Some(serving_line) = self.db.serving_log_line() else {
            return Ok(());
        };
        let deadline = Instant::now() + SERVING_WAIT;
        sys::poll(deadline, Duration::from_millis(5), || {
            self.check_alive(rec)?;
            let log = std::fs::read(&rec.node.log_file).unwrap_or_default();
            Ok(String::from_utf8_lossy(&log)
                .contains(serving_line)
                .then_some(()))
        })?;
        Ok(())
    }

    /// Waits until a started member listens on its client address. It looks in `/proc`
    /// rather than connecting: nothing is sent, and a squatter holding the port does
    /// not pass for the member (the member then exits, and says why in its log).
    fn wait_listening(&self, rec: &NodeRecord, deadline: Instant) -> Result<()> {
        let addr = SocketAddrV4::new(rec.node.addr, self.db.server_port());
        let started = Instant::now();
        let listening = sys::poll(deadline, Duration::from_millis(10), || {
            self.check_alive(rec)?;
            Ok(rec
                .pid
                .is_some_and(|pid| sys::listens(pid, addr))
                .then_some(()))
        })?;
        listening.ok_or_else(|| Error::StartTimeout {
            node: rec.node.name.to_string(),
            addr: addr.to_string(),
            timeout: started.elapsed(),
            log: rec.node.log_file.clone(),
            tail: sys::log_excerpt(&rec.node.log_file, LOG_TAIL, self.db),
        })
    }

    /// Waits until each of a member's extra processes listens on its port.
    fn wait_extras_listening(&self, rec: &NodeRecord, deadline: Instant) -> Result<()> {
        let started = Instant::now();
        for extra in &rec.extras {
            let addr = SocketAddrV4::new(rec.node.addr, extra.port);
            let listening = sys::poll(deadline, Duration::from_millis(10), || {
                self.check_extra_alive(rec, extra)?;
                Ok(extra
                    .pid
                    .is_some_and(|pid| sys::listens(pid, addr))
                    .then_some(()))
            })?;
            listening.ok_or_else(|| Error::StartTimeout {
                node: format!("{} ({})", rec.node.name, extra.name),
                addr: addr.to_string(),
                timeout: started.elapsed(),
                log: extra.log_file.clone(),
                tail: sys::log_excerpt(&extra.log_file, LOG_TAIL, self.db),
            })?;
        }
        Ok(())
    }

    /// Fails with its log tail if an extra process that should run is gone.
    fn check_extra_alive(&self, rec: &NodeRecord, extra: &ExtraRecord) -> Result<()> {
        let Some(pid) = extra.pid else { return Ok(()) };
        if sys::owner(pid, &extra.argv, rec.netns_inode) == Owner::Ours {
            return Ok(());
        }
        let status = pidfd::reap(pid)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        Err(Error::MemberExited {
            node: format!("{} ({})", rec.node.name, extra.name),
            status,
            log: extra.log_file.clone(),
            tail: sys::log_excerpt(&extra.log_file, LOG_TAIL, self.db),
        })
    }

    // ---- health ----

    fn wait_healthy_in(&self, state: &State, timeout: Duration) -> Result<()> {
        let endpoints: Vec<&str> = state
            .nodes
            .iter()
            .filter(|r| r.pid.is_some())
            .map(|r| r.node.client_url.as_str())
            .collect();
        let deadline = Instant::now() + timeout;
        for rec in state.nodes.iter().filter(|r| r.pid.is_some()) {
            self.wait_listening(rec, deadline)?;
        }
        // What the last answer said, for the error if none is healthy in time.
        let mut last = String::new();
        let healthy = sys::poll(deadline, Duration::from_millis(100), || {
            for rec in &state.nodes {
                self.check_alive(rec)?;
                if rec.pid.is_some() {
                    for extra in &rec.extras {
                        self.check_extra_alive(rec, extra)?;
                    }
                }
            }
            last = match self.db.health(&endpoints) {
                Ok(h) if h.len() == endpoints.len() && h.iter().all(|h| h.health) => {
                    return Ok(Some(()))
                }
                Ok(h) => h
                    .iter()
                    .filter(|h| !h.health)
                    .map(|h| {
                        format!(
                            "{}: {}",
                            h.endpoint,
                            h.error.as_deref().unwrap_or("unhealthy")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(e) => e.to_string(),
            };
            Ok(None)
        })?;
        healthy.ok_or_else(|| Error::Unhealthy {
            timeout,
            last,
            tails: log_tails(self.db, state),
        })
    }

    fn status_of(&self, with_health: bool) -> Result<Status> {
        let state = self.read_state()?;
        let processes: Vec<Process> = state.nodes.iter().map(process_of).collect();
        // A paused member would only make the database's tool wait for its timeout.
        let asked: Vec<&str> = state
            .nodes
            .iter()
            .zip(&processes)
            .filter(|(_, p)| matches!(p, Process::Running { .. }))
            .map(|(r, _)| r.node.client_url.as_str())
            .collect();
        let (reports, health) = if asked.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            // In parallel: a member cut off by a partition costs each call its timeout.
            let (reports, health) = std::thread::scope(|s| {
                let health = s.spawn(|| {
                    if with_health {
                        self.db.health(&asked)
                    } else {
                        Ok(Vec::new())
                    }
                });
                let reports = self.db.reports(&asked);
                (reports, health.join().unwrap_or_else(|_| Ok(Vec::new())))
            });
            (no_answer_is_empty(reports)?, no_answer_is_empty(health)?)
        };

        let mut ids: HashMap<u64, NodeName> = state
            .nodes
            .iter()
            .filter_map(|r| Some((r.member_id?, r.node.name.clone())))
            .collect();
        for (endpoint, s) in &reports {
            if let Some(r) = state.nodes.iter().find(|r| r.node.client_url == *endpoint) {
                ids.insert(s.member_id, r.node.name.clone());
            }
        }
        let all: Vec<_> = reports.iter().map(|(_, s)| *s).collect();
        let leader = db::leader_of(&all);

        let members = state
            .nodes
            .iter()
            .zip(processes)
            .map(|(rec, process)| {
                let report = reports
                    .iter()
                    .find(|(e, _)| *e == rec.node.client_url)
                    .map(|(_, s)| *s);
                let h = health.iter().find(|h| h.endpoint == rec.node.client_url);
                let (healthy, error) = match (process, h) {
                    (Process::Stopped, _) => (false, Some("not running".to_owned())),
                    (Process::Paused { .. }, _) => (false, Some("paused".to_owned())),
                    (_, Some(h)) => (h.health, h.error.clone()),
                    (_, None) if with_health => (false, Some("no answer".to_owned())),
                    (_, None) => (report.is_some(), None),
                };
                MemberStatus {
                    node: rec.node.clone(),
                    process,
                    healthy,
                    error,
                    member_id: report.map(|s| s.member_id).or(rec.member_id),
                    leader: report
                        .filter(|s| s.leader != 0)
                        .and_then(|s| ids.get(&s.leader).cloned()),
                    term: report.map(|s| s.term),
                    raft_index: report.map(|s| s.index),
                }
            })
            .collect();
        Ok(Status {
            subnet: state.subnet.clone(),
            members,
            leader: leader.and_then(|(id, _)| ids.get(&id).cloned()),
            term: leader.map(|(_, term)| term),
        })
    }

    // ---- state ----

    fn read_state(&self) -> Result<State> {
        State::read(&self.dir)?.ok_or_else(|| Error::NoCluster {
            dir: self.dir.clone(),
            state_file: State::path(&self.dir),
        })
    }

    /// Runs `f` on the state under the directory lock, and writes the state back if `f`
    /// changed it (also when `f` fails half way: what it did is recorded).
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let _lock = DirLock::acquire(&self.dir)?;
        let mut state = self.read_state()?;
        let before = state.clone();
        let result = f(&mut state);
        if state != before {
            state.write()?;
        }
        result
    }

    fn node_names(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    // ---- teardown ----

    /// Kills our processes, deletes our interfaces and namespaces, and removes the state
    /// file only if nothing of ours is left. Missing things are already gone.
    fn teardown(&self, state: &mut State) -> Result<()> {
        if state.bridge_netns_inode.is_none() {
            // `up` died around its claim, before recording it: at most an empty bridge
            // namespace of ours exists. One with a bridge inside is another cluster's.
            if net::is_abandoned_claim(&state.bridge_netns) {
                net::delete_netns(&state.bridge_netns, None)?;
            }
            return State::remove(&state.dir);
        }
        // The `sbN` names are ours while our bridge namespace holds the claim, or once
        // nobody holds it; not if another cluster claimed `sbN` after ours was removed.
        let names_ours = sys::netns_inode(&state.bridge_netns)
            .is_none_or(|now| Some(now) == state.bridge_netns_inode);
        let mut left = Vec::new();
        // Every process of ours, pinned, to be stopped all at once below: members
        // first (SIGTERM), the processes that end with them second.
        let (mut members, mut followers) = (Vec::new(), Vec::new());
        for rec in &mut state.nodes {
            // Its sessions would otherwise be strangers in the member's namespace.
            if let Err(e) = sshd::stop(rec) {
                left.push(e.to_string());
            }
            // `up` records a namespace right after creating it; if it died in between,
            // the namespace is found by its (claimed, prefixed) name.
            if rec.netns_inode.is_none() && names_ours {
                rec.netns_inode = sys::netns_inode(&rec.node.netns);
            }
            // An sshd whose pid `up` never recorded, and its sessions, before the
            // scan below would call them strangers.
            if let Err(e) = sshd::stop_unrecorded(rec) {
                left.push(e.to_string());
            }
            if let Err(e) = sshd::stop_orphaned_sessions(rec) {
                left.push(e.to_string());
            }
            // Also look inside the namespace: `up` may have died between starting a
            // member and recording its pid.
            let inside = rec.netns_inode.map(sys::pids_in_netns).unwrap_or_default();
            let mut pids: Vec<i32> = rec
                .pid
                .into_iter()
                .chain(rec.extras.iter().filter_map(|e| e.pid))
                .chain(inside.iter().copied())
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let launched = rec.launch_argv();
            for pid in pids {
                let Some(pinned) = Pinned::open(pid) else {
                    continue; // gone
                };
                // Checked once pinned: from now on the pid cannot change hands.
                let extra = rec
                    .extras
                    .iter()
                    .any(|e| sys::owner(pid, &e.argv, rec.netns_inode) == Owner::Ours);
                match sys::owner(pid, &rec.argv, rec.netns_inode) {
                    Owner::Ours => members.push(pinned),
                    // A member's other process (its sentinel): stopped with the members.
                    Owner::Foreign(_) if extra => members.push(pinned),
                    // Under a clock supervisor: the supervisor before it exec'd etcd,
                    // or its clock handler, whose command line is the supervisor's.
                    // Both end when the member does.
                    Owner::Foreign(_)
                        if !rec.launcher.is_empty()
                            && sys::owner(pid, &launched, rec.netns_inode) == Owner::Ours =>
                    {
                        followers.push(pinned)
                    }
                    Owner::Foreign(found) if inside.contains(&pid) => left.push(format!(
                        "process {pid} (`{found}`) in namespace {} was not started by splitbrain: left running",
                        rec.node.netns
                    )),
                    // Gone (a member this process killed: collected now, if it has
                    // not been), or a recorded pid reused outside our namespace.
                    Owner::Gone | Owner::Foreign(_) => {
                        pidfd::reap(pid);
                    }
                }
            }
            rec.pid = None;
            for e in &mut rec.extras {
                e.pid = None;
            }
        }
        // Only once every member and follower is gone (collected, not a zombie): a
        // caller may count processes, or start a new lab, the moment we return.
        if let Err(e) = pidfd::terminate(&members, &followers, pidfd::TERM_GRACE) {
            left.push(e.to_string());
        }
        // Deleting the root-side veth first removes both of its ends at once; the bridge
        // namespace would take it too, but asynchronously.
        if names_ours {
            if let Err(e) = net::delete_host_veth(&state.host_veth) {
                left.push(e.to_string());
            }
        }
        for rec in state.nodes.iter().filter(|r| r.netns_inode.is_some()) {
            if let Err(e) = net::delete_netns(&rec.node.netns, rec.netns_inode) {
                left.push(e.to_string());
            }
        }
        if let Err(e) = net::delete_netns(&state.bridge_netns, state.bridge_netns_inode) {
            left.push(e.to_string());
        }
        if left.is_empty() {
            State::remove(&state.dir)
        } else {
            state.write()?;
            Err(Error::Leftover(left.join("; ")))
        }
    }
}

/// Takes its cluster down when dropped, even when a test fails or panics: a test that
/// holds one leaves nothing behind. Derefs to [`Cluster`].
#[derive(Debug)]
pub struct ClusterGuard {
    cluster: Cluster,
}

impl std::ops::Deref for ClusterGuard {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.down() {
            // Drop cannot return it, and a silent leftover is the worst outcome.
            eprintln!(
                "splitbrain-cluster: taking down the cluster in {} failed: {e}",
                self.cluster.dir.display()
            );
        }
    }
}

/// Programs the lab itself needs whatever the database, with the Debian package of each
/// (`scripts/setup` installs them; the database plug-in lists its own).
const PROGRAMS: [(&str, &str); 1] = [("ip", "iproute2")];

/// What this machine lacks to run a local etcd cluster: `root`, and each missing program
/// with its Debian package. Empty when [`Cluster::up`] can work. Tests use it to skip
/// with a loud line, or to fail under CI, where everything must be installed.
pub fn missing_prerequisites() -> Vec<String> {
    missing_prerequisites_for(db::DEFAULT_DB).unwrap_or_default()
}

/// What this machine lacks to run a local cluster of database `name` (see
/// [`missing_prerequisites`]); an error names the known databases if `name` is none.
pub fn missing_prerequisites_for(name: &str) -> Result<Vec<String>> {
    let database = db::by_name(name)?;
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".to_owned());
    }
    for (program, package) in database.programs().iter().chain(&PROGRAMS) {
        if sys::find_program(program).is_none() {
            missing.push(format!("{program} (package {package})"));
        }
    }
    for (path, package) in database.files() {
        if !Path::new(path).is_file() {
            missing.push(format!("{path} (package {package})"));
        }
    }
    Ok(missing)
}

/// Takes down the cluster recorded in `dir`, even after a crashed `up`. Returns whether
/// there was one.
pub fn down(dir: impl AsRef<Path>) -> Result<bool> {
    sys::require_root("taking a lab cluster down")?;
    match Cluster::load(dir) {
        Ok(cluster) => cluster.down().map(|()| true),
        Err(Error::NoCluster { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes down every cluster whose run directory is registered (see
/// [`crate::registered`]): the recovery after test runs or scripts that died without
/// cleaning up. Returns each directory with what happened to it.
pub fn down_all() -> Result<Vec<(PathBuf, Result<bool>)>> {
    sys::require_root("taking down every registered lab")?;
    Ok(crate::registry::registered()
        .into_iter()
        .map(|dir| {
            let result = down(&dir);
            if matches!(result, Ok(false)) {
                // The directory holds no cluster any more: nothing to find there.
                crate::registry::remove(&dir);
            }
            (dir, result)
        })
        .collect())
}

/// Every name, address and command line of a new lab, before anything exists.
fn plan(
    lab: Lab,
    dir: &Path,
    config: &Config,
    database: &dyn Database,
    program: &Path,
    sshd: Option<&Path>,
) -> State {
    let nodes: Vec<Node> = (1..=config.nodes)
        .map(|i| {
            let name = Lab::node_name(i);
            let addr = lab.node_addr(i);
            Node {
                netns: lab.node_netns(i),
                interface: lab.node_veth(i),
                addr,
                client_url: format!(
                    "{}://{addr}:{}",
                    database.url_scheme(),
                    database.client_port()
                ),
                peer_url: format!(
                    "{}://{addr}:{}",
                    database.url_scheme(),
                    database.peer_port()
                ),
                data_dir: dir.join(&name).join("data"),
                log_file: dir.join(&name).join(database.log_file_name()),
                clock_file: None,
                name: NodeName(name),
            }
        })
        .collect();
    let prefix = lab.prefix();
    let member_plan = MemberPlan {
        nodes: &nodes,
        prefix: &prefix,
        program,
        enable_v2: config.enable_v2,
        pre_vote: config.pre_vote,
        extra: &config.extra_etcd_args,
    };
    let argvs: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| database.member_argv(n, &member_plan))
        .collect();
    let extras: Vec<Vec<ExtraRecord>> = nodes
        .iter()
        .map(|n| {
            let dir = n.log_file.parent().unwrap_or(Path::new("."));
            database
                .extra_processes(n, &member_plan)
                .into_iter()
                .map(|e| ExtraRecord {
                    name: e.name.to_owned(),
                    argv: e.argv,
                    log_file: dir.join(e.log_file_name),
                    port: e.port,
                    pid: None,
                })
                .collect()
        })
        .collect();
    let clock_file = |node: &Node| dir.join(node.name.as_str()).join("clock");
    State {
        version: VERSION,
        db: database.name().to_owned(),
        dir: dir.to_owned(),
        subnet: lab.subnet(),
        host_veth: lab.host_veth(),
        host_addr: lab.host_addr(),
        bridge_netns: lab.bridge_netns(),
        bridge_netns_inode: None,
        nodes: nodes
            .into_iter()
            .zip(argvs)
            .zip(extras)
            .map(|((mut node, argv), extras)| {
                let launcher = match &config.clock_supervisor {
                    Some(supervisor) => {
                        let file = clock_file(&node);
                        let mut l = supervisor.clone();
                        l.extend([
                            "--offset-file".to_owned(),
                            file.display().to_string(),
                            "--".to_owned(),
                        ]);
                        node.clock_file = Some(file);
                        l
                    }
                    None => Vec::new(),
                };
                NodeRecord {
                    argv,
                    launcher,
                    sshd: sshd.map(|program| sshd::SshdRecord {
                        argv: sshd::argv(program, &node),
                        pid: None,
                    }),
                    node,
                    netns_inode: None,
                    pid: None,
                    member_id: None,
                    extras,
                }
            })
            .collect(),
    }
}

/// Starts one of a member's extra processes in its namespace and records its pid (the
/// caller writes the state). Like a member, it outlives this process; teardown finds
/// it by that pid.
fn spawn_extra(node: &Node, extra: &mut ExtraRecord) -> Result<()> {
    let child = sys::spawn_in_netns(&node.netns, &extra.argv, &extra.log_file)?;
    let pid = pidfd::adopt(child)?;
    extra.pid = Some(pid);
    tracing::debug!(node = %node.name, pid, process = extra.name, "started extra process");
    Ok(())
}

/// Empties a member's directory of a previous run's data, log and clock offset.
fn fresh_member_dir(database: &dyn Database, node: &Node) -> Result<()> {
    if let Some(clock) = &node.clock_file {
        match std::fs::remove_file(clock) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format!("cannot remove old clock offset {}", clock.display()),
                    e,
                ))
            }
            _ => {}
        }
    }
    database.wipe(node)?;
    let parent = node.log_file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    std::fs::write(&node.log_file, b"")
        .map_err(|e| Error::io(format!("cannot create {}", node.log_file.display()), e))
}

/// Prepares every member's data directory at once (`mariadb-install-db` takes seconds).
fn initialise_all(database: &dyn Database, nodes: &[Node]) -> Result<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| s.spawn(move || database.initialise(n)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::InvalidConfig(
                    "initialising a member panicked".into(),
                ))
            })
        })
    })
}

/// Writes the files the database reads at start (its configuration), creating their
/// directories.
fn write_config_files(database: &dyn Database, node: &Node, nodes: &[Node]) -> Result<()> {
    for (path, content) in database.config_files(node, nodes) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    }
    Ok(())
}

/// Which of a member's processes a kill, pause or resume acts on: the database's
/// own (`None`), or the extra process at this index.
#[derive(Debug, Clone, Copy)]
struct Target(Option<usize>);

impl Target {
    fn of(rec: &NodeRecord, process: Option<&str>) -> Result<Target> {
        let Some(want) = process else {
            return Ok(Target(None));
        };
        match rec.extras.iter().position(|e| e.name == want) {
            Some(i) => Ok(Target(Some(i))),
            None => Err(Error::UnknownProcess {
                node: rec.node.name.to_string(),
                process: want.to_owned(),
                known: rec
                    .extras
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// `n1`, or `n1's sentinel`, for messages (which say "node ...").
    fn describe(&self, rec: &NodeRecord) -> String {
        match self.0 {
            None => rec.node.name.to_string(),
            Some(i) => format!("{}'s {}", rec.node.name, rec.extras[i].name),
        }
    }

    fn pid_mut<'r>(&self, rec: &'r mut NodeRecord) -> &'r mut Option<i32> {
        match self.0 {
            None => &mut rec.pid,
            Some(i) => &mut rec.extras[i].pid,
        }
    }

    /// The recorded pid of the running process, after checking it is still ours.
    fn our_pid(&self, rec: &mut NodeRecord) -> Result<i32> {
        let node = self.describe(rec);
        let netns = rec.netns_inode;
        let (slot, argv) = match self.0 {
            None => (&mut rec.pid, &rec.argv),
            Some(i) => {
                let extra = &mut rec.extras[i];
                (&mut extra.pid, &extra.argv)
            }
        };
        let pid = slot.ok_or_else(|| Error::NotRunning { node: node.clone() })?;
        match sys::owner(pid, argv, netns) {
            Owner::Ours => Ok(pid),
            Owner::Gone => {
                pidfd::reap(pid);
                *slot = None;
                Err(Error::NotRunning { node })
            }
            Owner::Foreign(found) => {
                *slot = None;
                Err(Error::NotOurProcess { node, pid, found })
            }
        }
    }
}

fn process_of(rec: &NodeRecord) -> Process {
    process_state(rec.pid, &rec.argv, rec.netns_inode)
}

fn process_state(pid: Option<i32>, argv: &[String], netns_inode: Option<u64>) -> Process {
    match pid {
        Some(pid) if sys::owner(pid, argv, netns_inode) == Owner::Ours => {
            if sys::proc_state(pid) == Some('T') {
                Process::Paused { pid }
            } else {
                Process::Running { pid }
            }
        }
        _ => Process::Stopped,
    }
}

/// Whether anything a state file records still exists.
fn is_alive(state: &State) -> bool {
    let ns_alive =
        |name: &str, inode: Option<u64>| inode.is_some() && sys::netns_inode(name) == inode;
    ns_alive(&state.bridge_netns, state.bridge_netns_inode)
        || state.nodes.iter().any(|r| {
            ns_alive(&r.node.netns, r.netns_inode)
                || r.pid
                    .is_some_and(|pid| sys::owner(pid, &r.argv, r.netns_inode) == Owner::Ours)
                || r.extras.iter().any(|e| {
                    e.pid
                        .is_some_and(|pid| sys::owner(pid, &e.argv, r.netns_inode) == Owner::Ours)
                })
        })
}

/// etcdctl found no member to answer: a status too (every member unreachable). Any other
/// failure (a refused route, etcdctl missing) is an error.
fn no_answer_is_empty<T>(result: Result<Vec<T>>) -> Result<Vec<T>> {
    match result {
        Err(Error::Command { .. }) => Ok(Vec::new()),
        other => other,
    }
}

fn log_tails(database: &dyn Database, state: &State) -> String {
    state
        .nodes
        .iter()
        .map(|r| {
            format!(
                "--- {} ({}) ---\n{}",
                r.node.name,
                r.node.log_file.display(),
                sys::log_excerpt(&r.node.log_file, LOG_TAIL, database)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
