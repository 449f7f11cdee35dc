//! Network faults on a local lab (a `splitbrain-cluster` cluster): partitions are
//! iptables rules inside each member's own network namespace, in a chain of ours.
//!
//! ```text
//!   member n1's namespace, for the grudge {n1: [n2, n3]}:
//!     -N splitbrain
//!     -A splitbrain -s 10.77.1.2 -j DROP
//!     -A splitbrain -s 10.77.1.3 -j DROP
//!     -I INPUT 1 -j splitbrain
//! ```
//!
//! Only the `splitbrain` chain and the one jump to it are ever touched, so healing
//! removes exactly what a partition added. Each member gets one `iptables-restore`
//! call, atomic for that member, and members are done in parallel. A partition is
//! a guard that heals on drop; the state file `nemesis.json` in the cluster's run
//! directory is written before any rule exists and removed after every rule is gone,
//! and [`LabNet::heal`] sweeps every member whatever the state file says, so
//! `splitbrain nemesis heal` undoes a partition left by a killed harness.

use crate::fault::{ClockControl, Fault, FaultSpec, Heal, Healed, Mechanisms, Net, ProcessKind};
use crate::grudge::Grudge;
use crate::host::Host;
use crate::iptables;
use crate::packet::{self, Mechanism, PacketSpec};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use splitbrain_cluster::Cluster;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Our chain in each member's namespace. The namespaces are the lab's own, so the
/// name needs no run id.
pub const CHAIN: &str = "splitbrain";
/// Our chain for random packet loss (the iptables fallback for netem's loss).
pub const LOSS_CHAIN: &str = "splitbrain-loss";
/// Our chain sending outgoing packets to the delayer (the fallback for netem's delay).
pub const DELAY_CHAIN: &str = "splitbrain-delay";
/// The nemesis state file, beside the cluster's own.
pub const STATE_FILE: &str = "nemesis.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) name: String,
    netns: String,
    /// The member's link, inside its namespace.
    interface: String,
    addr: Ipv4Addr,
    /// The member's clock offset file, when it runs under the clock supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clock_file: Option<PathBuf>,
}

impl Member {
    /// Where this member's commands run: its own network namespace.
    fn host(&self) -> Host {
        Host::netns(&self.name, &self.netns)
    }
}

/// The network of a local lab, for faults.
#[derive(Debug, Clone)]
pub struct LabNet {
    pub(crate) dir: PathBuf,
    pub(crate) members: Vec<Member>,
    /// The command that runs [`crate::delayer::run`] (the program and its leading
    /// arguments), for delay on kernels without netem.
    delayer: Option<Vec<String>>,
    /// Plan packet faults as if the kernel had no netem ([`LabNet::without_netem`]).
    no_netem: bool,
    /// The database's primary is replaced only by a failover (MariaDB).
    operator_failover: bool,
}

/// A delayer process we started, as recorded before it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayerRecord {
    pub node: String,
    pub netns: String,
    /// Its exact command line: a pid is signalled only when `/proc` shows this.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

/// The faults a lab's state file records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Grudge>,
    /// Members killed (SIGKILL), or `n1/sentinel` for a process beside the
    /// database's own; a heal restarts them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub killed: BTreeSet<String>,
    /// Members paused (SIGSTOP), named like `killed`; a heal resumes them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub paused: BTreeSet<String>,
    /// A packet fault and the members it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<(BTreeSet<String>, PacketSpec)>,
    /// Delayer processes started for the packet fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delayers: Vec<DelayerRecord>,
    /// Members whose wall clock is faked, and how; a heal sets them back to real
    /// time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks: BTreeMap<String, splitbrain_clock::FakeClock>,
}

impl Faults {
    pub fn is_empty(&self) -> bool {
        self.partition.is_none()
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.packet.is_none()
            && self.delayers.is_empty()
            && self.clocks.is_empty()
    }
}

impl LabNet {
    pub fn of(cluster: &Cluster) -> LabNet {
        LabNet {
            dir: cluster.dir().to_path_buf(),
            members: cluster
                .nodes()
                .iter()
                .map(|n| Member {
                    name: n.name.to_string(),
                    netns: n.netns.clone(),
                    interface: n.interface.clone(),
                    addr: n.addr,
                    clock_file: n.clock_file.clone(),
                })
                .collect(),
            delayer: None,
            no_netem: false,
            operator_failover: cluster.operator_failover(),
        }
    }

    /// Plans packet faults as if the kernel had no netem: the fallbacks (iptables
    /// statistic, tbf, the delayer) are used even where netem exists, so they can
    /// be tested, and chosen, on every kernel.
    pub fn without_netem(mut self) -> LabNet {
        self.no_netem = true;
        self
    }

    /// Runs delay faults with `argv` (program and leading arguments; the delayer's
    /// own `--queue`, `--delay-ms`, `--jitter-ms` follow) where the kernel has no
    /// netem. The `splitbrain` binary passes itself: `splitbrain nemesis delayer`.
    pub fn with_delayer(mut self, argv: Vec<String>) -> LabNet {
        self.delayer = Some(argv);
        self
    }

    /// The lab whose cluster is recorded in run directory `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<LabNet> {
        Ok(LabNet::of(&Cluster::load(dir)?))
    }

    pub fn nodes(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The faults the state file records.
    pub fn recorded(&self) -> Result<Faults> {
        match std::fs::read_to_string(self.state_file()) {
            Ok(text) => serde_json::from_str::<Faults>(&text)
                .map_err(|e| Error::State(self.state_file(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Faults::default()),
            Err(e) => Err(Error::State(self.state_file(), e.to_string())),
        }
    }

    /// Writes the state file (before the faults it names exist: write-ahead).
    pub(crate) fn record(&self, faults: &Faults) -> Result<()> {
        let text = serde_json::to_string_pretty(faults).unwrap_or_default();
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, self.state_file()))
            .map_err(|e| Error::State(self.state_file(), e.to_string()))
    }

    pub(crate) fn check_nodes<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for n in nodes {
            if !self.members.iter().any(|m| m.name == n) {
                return Err(Error::UnknownNode(n.to_string(), self.nodes().join(", ")));
            }
        }
        Ok(())
    }

    /// Kills (SIGKILL) or pauses (SIGSTOP) `nodes`: their database processes, or with
    /// `process` the one of that name each member runs beside it (Redis's
    /// `sentinel`). The guard restarts or resumes them when dropped.
    pub fn process_fault(
        &self,
        kind: ProcessKind,
        nodes: &[String],
        process: Option<&str>,
    ) -> Result<ProcessFault> {
        splitbrain_cluster::require_root(match kind {
            ProcessKind::Kill => "killing a lab member",
            ProcessKind::Pause => "pausing a lab member",
        })?;
        self.check_nodes(nodes.iter().map(|n| n.as_str()))?;
        let cluster = Cluster::load(&self.dir)?;
        if let Some(p) = process {
            let known = cluster.extra_process_names()?;
            if !known.iter().any(|k| k == p) {
                return Err(Error::UnknownProcess {
                    process: p.to_owned(),
                    known: if known.is_empty() {
                        "only the database's own".into()
                    } else {
                        format!("the database's own, {}", known.join(", "))
                    },
                });
            }
        }
        let entries: Vec<String> = nodes.iter().map(|n| fault_entry(n, process)).collect();
        let mut faults = self.recorded()?;
        match kind {
            ProcessKind::Kill => faults.killed.extend(entries.iter().cloned()),
            ProcessKind::Pause => faults.paused.extend(entries.iter().cloned()),
        }
        self.record(&faults)?;
        let guard = ProcessFault {
            net: self.clone(),
            kind,
            nodes: nodes.to_vec(),
            process: process.map(str::to_owned),
            armed: true,
        };
        for n in nodes {
            match kind {
                ProcessKind::Kill => cluster.kill_process(n, process)?,
                ProcessKind::Pause => cluster.pause_process(n, process)?,
            }
        }
        Ok(guard)
    }

    /// Applies `grudge`, replacing any partition in place. The returned guard heals
    /// when dropped (or call [`Partition::heal`] to see errors, or
    /// [`Partition::keep`] to leave it for `splitbrain nemesis heal`).
    pub fn partition(&self, grudge: &Grudge) -> Result<Partition> {
        require_iptables("partitioning a lab")?;
        self.check_nodes(grudge.nodes())?;
        // Write-ahead: the state file names the partition before any rule exists.
        let mut faults = self.recorded()?;
        faults.partition = Some(grudge.clone());
        self.record(&faults)?;
        let guard = Partition {
            net: self.clone(),
            grudge: grudge.clone(),
            armed: true,
        };
        let results = self.each_member(|m| {
            let drops = grudge.0.get(&m.name).cloned().unwrap_or_default();
            if drops.is_empty() {
                return remove_chain(m);
            }
            let addrs: Vec<Ipv4Addr> = self
                .members
                .iter()
                .filter(|p| drops.contains(&p.name))
                .map(|p| p.addr)
                .collect();
            match restore(m, &add_rules(&addrs)) {
                Ok(()) => Ok(()),
                // A partition was already in place here: replace it.
                Err(_) => remove_chain(m).and_then(|()| restore(m, &add_rules(&addrs))),
            }
        });
        // On failure the guard heals what was applied.
        first_error(results)?;
        Ok(guard)
    }

    /// Heals everything, whatever the state file says: removes every rule of ours
    /// from every member, restarts stopped members and resumes paused ones; then
    /// removes the state file. Idempotent.
    pub fn heal(&self) -> Result<Healed> {
        splitbrain_cluster::require_root("healing a lab's faults")?;
        self.heal_rules()?;
        self.stop_delayers()?;
        self.heal_clocks()?;
        self.heal_processes()?;
        self.forget()?;
        Ok(Healed::default())
    }

    /// The current leader, as the lab's database plug-in finds it.
    pub fn leader(&self) -> Option<String> {
        Cluster::load(&self.dir)
            .ok()?
            .leader()
            .ok()
            .flatten()
            .map(|n| n.to_string())
    }

    fn heal_packets(&self) -> Result<()> {
        first_error(self.each_member(|m| {
            remove_named_chain(m, LOSS_CHAIN, "INPUT")?;
            remove_named_chain(m, DELAY_CHAIN, "OUTPUT")?;
            remove_qdisc(m)
        }))?;
        self.stop_delayers()
    }

    /// Stops the delayers the state file records (their rules must be gone first:
    /// with the rule gone traffic flows again).
    fn stop_delayers(&self) -> Result<()> {
        for d in self.recorded()?.delayers {
            if let Some(pid) = d.pid {
                stop_delayer(pid, &d.argv)?;
            }
        }
        Ok(())
    }

    /// Whether this kernel has `tc netem` (tried on a member's loopback, which no
    /// fault uses).
    pub fn netem_available(&self) -> bool {
        let Some(m) = self.members.first() else {
            return false;
        };
        let tc = |args: &[&str]| {
            Command::new("ip")
                .args(["netns", "exec", &m.netns, "tc", "qdisc"])
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = tc(&["add", "dev", "lo", "root", "netem", "delay", "0ms"]);
        if ok {
            tc(&["del", "dev", "lo", "root"]);
        }
        ok
    }

    /// Applies `spec` to `nodes` (every member when empty): netem where the kernel
    /// has it, otherwise iptables `statistic` for loss and `tbf` for bandwidth. The
    /// guard undoes it on drop; [`PacketFault::mechanisms`] says what was used.
    pub fn packet_fault(&self, nodes: &[String], spec: &PacketSpec) -> Result<PacketFault> {
        require_iptables("a packet fault in a lab")?;
        self.check_nodes(nodes.iter().map(|n| n.as_str()))?;
        let targets: BTreeSet<String> = if nodes.is_empty() {
            self.nodes().into_iter().collect()
        } else {
            nodes.iter().cloned().collect()
        };
        let netem = !self.no_netem && self.netem_available();
        let plan = packet::plan(spec, netem, self.delayer.is_some())?;
        let mut faults = self.recorded()?;
        faults.packet = Some((targets.clone(), spec.clone()));
        if let (Some((delay, jitter)), Some(prefix)) = (plan.delayer, &self.delayer) {
            // Write-ahead: each delayer's command line before it runs.
            faults.delayers = self
                .members
                .iter()
                .filter(|m| targets.contains(&m.name))
                .map(|m| DelayerRecord {
                    node: m.name.clone(),
                    netns: m.netns.clone(),
                    argv: prefix
                        .iter()
                        .cloned()
                        .chain([
                            "--queue".into(),
                            crate::delayer::QUEUE.to_string(),
                            "--delay-ms".into(),
                            delay.to_string(),
                            "--jitter-ms".into(),
                            jitter.to_string(),
                        ])
                        .collect(),
                    pid: None,
                })
                .collect();
        }
        self.record(&faults)?;
        for i in 0..faults.delayers.len() {
            let d = faults.delayers[i].clone();
            let log = self.dir.join(format!("delayer-{}.log", d.node));
            let log = std::fs::File::create(&log)
                .map_err(|e| Error::State(log.clone(), e.to_string()))?;
            let child = Command::new("ip")
                .args(["netns", "exec", &d.netns])
                .args(&d.argv)
                .stdin(Stdio::null())
                .stdout(
                    log.try_clone()
                        .map_err(|e| Error::Command("delayer".into(), e.to_string()))?,
                )
                .stderr(log)
                .process_group(0)
                .spawn()
                .map_err(|e| Error::Command(d.argv.join(" "), e.to_string()))?;
            faults.delayers[i].pid = Some(child.id() as i32);
            self.record(&faults)?;
        }
        let guard = PacketFault {
            net: self.clone(),
            mechanisms: plan.mechanisms.clone(),
            armed: true,
        };
        let results = self.each_member(|m| {
            if !targets.contains(&m.name) {
                return Ok(());
            }
            remove_named_chain(m, LOSS_CHAIN, "INPUT")?;
            remove_named_chain(m, DELAY_CHAIN, "OUTPUT")?;
            if plan.delayer.is_some() {
                let rules = format!(
                    "*filter\n-N {DELAY_CHAIN}\n-A {DELAY_CHAIN} -j NFQUEUE --queue-num {} --queue-bypass\n-I OUTPUT 1 -j {DELAY_CHAIN}\nCOMMIT\n",
                    crate::delayer::QUEUE
                );
                restore(m, &rules)?;
            }
            if let Some(p) = plan.loss_rule {
                let rules = format!(
                    "*filter\n-N {LOSS_CHAIN}\n-A {LOSS_CHAIN} -m statistic --mode random --probability {p} -j DROP\n-I INPUT 1 -j {LOSS_CHAIN}\nCOMMIT\n"
                );
                restore(m, &rules)?;
            }
            match &plan.qdisc {
                Some(args) => {
                    let mut all = vec!["qdisc", "replace", "dev", m.interface.as_str(), "root"];
                    all.extend(args.iter().map(String::as_str));
                    tc(m, &all)
                }
                None => remove_qdisc(m),
            }
        });
        first_error(results)?;
        Ok(guard)
    }

    fn heal_partition(&self) -> Result<()> {
        first_error(self.each_member(remove_chain))
    }

    /// One look at each member's rules, then one change removing exactly our
    /// chains and jumps, then our qdisc if there is one: two or three process
    /// spawns per member, however many kinds of fault there were.
    fn heal_rules(&self) -> Result<()> {
        first_error(self.each_member(|m| {
            iptables::sweep(
                &m.host(),
                &[
                    (CHAIN, "INPUT"),
                    (LOSS_CHAIN, "INPUT"),
                    (DELAY_CHAIN, "OUTPUT"),
                ],
            )?;
            remove_qdisc(m)
        }))
    }

    fn heal_processes(&self) -> Result<()> {
        use splitbrain_cluster::Process;
        let cluster = Cluster::load(&self.dir)?;
        let mut stopped = BTreeSet::new();
        for (node, process) in cluster.processes()? {
            match process {
                Process::Stopped => {
                    cluster.start(&node)?;
                    stopped.insert(node.to_string());
                }
                Process::Paused { .. } => cluster.resume(&node)?,
                _ => {}
            }
        }
        // A sentinel killed or paused on its own (`start` above brought back the
        // extras of the members it restarted).
        for (node, name, process) in cluster.extra_processes()? {
            match process {
                Process::Stopped if !stopped.contains(node.as_str()) => {
                    cluster.start(&node)?;
                    stopped.insert(node.to_string());
                }
                Process::Paused { .. } => cluster.resume_process(&node, Some(&name))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn forget(&self) -> Result<()> {
        match std::fs::remove_file(self.state_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::State(self.state_file(), e.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Removes one healed fault from the state file; the file goes when none is left.
    pub(crate) fn forget_fault(&self, f: impl FnOnce(&mut Faults)) -> Result<()> {
        let mut faults = self.recorded()?;
        f(&mut faults);
        if faults.is_empty() {
            self.forget()
        } else {
            self.record(&faults)
        }
    }

    /// Members whose namespace still holds our chain (for tests and `status`).
    pub fn partitioned_members(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for m in &self.members {
            if has_chain(m)? {
                out.push(m.name.clone());
            }
        }
        Ok(out)
    }

    fn each_member(&self, f: impl Fn(&Member) -> Result<()> + Sync) -> Vec<Result<()>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self.members.iter().map(|m| s.spawn(|| f(m))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

/// Runs `tc ARGS` inside `m`'s namespace.
fn tc(m: &Member, args: &[&str]) -> Result<()> {
    let mut argv = vec!["tc"];
    argv.extend_from_slice(args);
    let out = m.host().run(&argv)?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Tc {
            node: m.name.clone(),
            message: out.stderr.trim().to_string(),
        })
    }
}

/// Removes a root qdisc of ours (netem or tbf) from `m`'s link; the link's default
/// is fine.
fn remove_qdisc(m: &Member) -> Result<()> {
    let shown = m
        .host()
        .run(&["tc", "qdisc", "show", "dev", &m.interface, "root"])?
        .stdout;
    if shown.contains("netem") || shown.contains("tbf") {
        tc(m, &["qdisc", "del", "dev", &m.interface, "root"])
    } else {
        Ok(())
    }
}

/// Stops a delayer we started, only if `/proc/PID/cmdline` is exactly the command
/// line we recorded (a pid may have been reused); gone already is fine. Returns
/// once it is gone: it lets held packets go on SIGTERM, and gets SIGKILL if it has
/// not exited after a grace.
fn stop_delayer(pid: i32, argv: &[String]) -> Result<()> {
    let Some(pinned) = splitbrain_cluster::Pinned::open(pid) else {
        return Ok(());
    };
    // Checked once pinned: from now on the pid cannot change hands.
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return Ok(());
    };
    let running: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if running != argv {
        return Ok(());
    }
    splitbrain_cluster::terminate(&[pinned], &[], DELAYER_GRACE)?;
    Ok(())
}

/// How long a delayer gets to let its held packets go and exit.
const DELAYER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `pid` is a live process (a zombie has exited: only its parent's wait
/// is missing).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn first_error(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().collect()
}

fn add_rules(addrs: &[Ipv4Addr]) -> String {
    iptables::partition_rules(CHAIN, addrs)
}

/// Root and iptables, checked before a fault touches anything (the state file
/// included), so that a missing piece is named rather than met half-way.
fn require_iptables(action: &'static str) -> Result<()> {
    splitbrain_cluster::require_root(action)?;
    for program in ["iptables", "iptables-restore"] {
        splitbrain_cluster::require_program(program, "iptables")?;
    }
    Ok(())
}

/// One atomic change of `m`'s rules (`iptables-restore -w --noflush` in its namespace).
fn restore(m: &Member, input: &str) -> Result<()> {
    iptables::restore(&m.host(), input)
}

/// Whether `m`'s namespace holds our chain.
fn has_chain(m: &Member) -> Result<bool> {
    iptables::has_chain(&m.host(), CHAIN)
}

/// Removes our partition chain from `m`'s namespace; nothing there is fine.
fn remove_chain(m: &Member) -> Result<()> {
    remove_named_chain(m, CHAIN, "INPUT")
}

/// Removes the jump(s) from `hook` to `chain` and `chain` itself from `m`'s namespace.
fn remove_named_chain(m: &Member, chain: &str, hook: &str) -> Result<()> {
    iptables::remove_chain(&m.host(), chain, hook)
}

/// A partition in place. Heals when dropped.
#[derive(Debug)]
pub struct Partition {
    net: LabNet,
    grudge: Grudge,
    armed: bool,
}

impl Partition {
    pub fn grudge(&self) -> &Grudge {
        &self.grudge
    }

    /// Heals now, and says whether that worked.
    pub fn heal(mut self) -> Result<Healed> {
        self.armed = false;
        self.net.heal_partition()?;
        self.net.forget_fault(|f| f.partition = None)?;
        Ok(Healed::default())
    }

    /// Leaves the partition in place (recorded in the state file) for
    /// `splitbrain nemesis heal`.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Heal for Partition {
    fn heal(self: Box<Self>) -> Result<Healed> {
        (*self).heal()
    }

    fn keep(self: Box<Self>) {
        (*self).keep()
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if self.armed {
            let healed = self
                .net
                .heal_partition()
                .and_then(|()| self.net.forget_fault(|f| f.partition = None));
            if let Err(e) = healed {
                // Drop cannot return it, and a silent leftover is the worst outcome.
                eprintln!("splitbrain-nemesis: healing the partition failed: {e}");
            }
        }
    }
}

/// How the state file names a killed or paused process: the member (`n1`), or
/// the member and the process (`n1/sentinel`).
fn fault_entry(node: &str, process: Option<&str>) -> String {
    match process {
        None => node.to_owned(),
        Some(p) => format!("{node}/{p}"),
    }
}

/// Killed or paused members (or one of their processes). Restarts or resumes them
/// when dropped.
#[derive(Debug)]
pub struct ProcessFault {
    net: LabNet,
    kind: ProcessKind,
    nodes: Vec<String>,
    /// `None`: the database's own process.
    process: Option<String>,
    armed: bool,
}

impl ProcessFault {
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn kind(&self) -> ProcessKind {
        self.kind
    }

    /// The process it acts on, when not the database's own.
    pub fn process(&self) -> Option<&str> {
        self.process.as_deref()
    }

    /// Restarts or resumes the members now, and says whether that worked.
    pub fn heal(mut self) -> Result<Healed> {
        self.armed = false;
        self.undo()?;
        Ok(Healed::default())
    }

    /// Leaves the members down (recorded in the state file) for
    /// `splitbrain nemesis heal`.
    pub fn keep(mut self) {
        self.armed = false;
    }

    fn undo(&self) -> Result<()> {
        use splitbrain_cluster::Process;
        let cluster = Cluster::load(&self.net.dir)?;
        let process = self.process.as_deref();
        let states: Vec<(String, Process)> = match process {
            None => cluster
                .processes()?
                .into_iter()
                .map(|(n, p)| (n.to_string(), p))
                .collect(),
            Some(name) => cluster
                .extra_processes()?
                .into_iter()
                .filter(|(_, e, _)| e == name)
                .map(|(n, _, p)| (n.to_string(), p))
                .collect(),
        };
        for n in &self.nodes {
            let state = states.iter().find(|(name, _)| name == n).map(|(_, p)| *p);
            match (self.kind, state) {
                // `start` brings back whichever of the member's processes is down.
                (ProcessKind::Kill, Some(Process::Stopped)) => cluster.start(n)?,
                (ProcessKind::Pause, Some(Process::Paused { .. })) => {
                    cluster.resume_process(n, process)?
                }
                _ => {}
            }
        }
        let entries: Vec<String> = self.nodes.iter().map(|n| fault_entry(n, process)).collect();
        let kind = self.kind;
        self.net.forget_fault(move |f| {
            for e in &entries {
                match kind {
                    ProcessKind::Kill => f.killed.remove(e),
                    ProcessKind::Pause => f.paused.remove(e),
                };
            }
        })
    }
}

impl Heal for ProcessFault {
    fn heal(self: Box<Self>) -> Result<Healed> {
        (*self).heal()
    }

    fn keep(self: Box<Self>) {
        (*self).keep()
    }
}

impl Drop for ProcessFault {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.undo() {
                eprintln!("splitbrain-nemesis: restarting or resuming members failed: {e}");
            }
        }
    }
}

/// A packet fault in place. Undone when dropped.
#[derive(Debug)]
pub struct PacketFault {
    net: LabNet,
    mechanisms: Vec<(&'static str, Mechanism)>,
    armed: bool,
}

impl PacketFault {
    /// Which mechanism carries out each part (`("loss", IptablesStatistic)`, ...).
    pub fn mechanisms(&self) -> &[(&'static str, Mechanism)] {
        &self.mechanisms
    }

    /// Undoes it now, and says whether that worked.
    pub fn heal(mut self) -> Result<Healed> {
        self.armed = false;
        self.net.heal_packets()?;
        self.net.forget_fault(|f| {
            f.packet = None;
            f.delayers.clear();
        })?;
        Ok(Healed::default())
    }

    /// Leaves it in place (recorded in the state file) for `splitbrain nemesis heal`.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Heal for PacketFault {
    fn heal(self: Box<Self>) -> Result<Healed> {
        (*self).heal()
    }

    fn keep(self: Box<Self>) {
        (*self).keep()
    }
}

impl Drop for PacketFault {
    fn drop(&mut self) {
        if self.armed {
            let healed = self.net.heal_packets().and_then(|()| {
                self.net.forget_fault(|f| {
                    f.packet = None;
                    f.delayers.clear();
                })
            });
            if let Err(e) = healed {
                eprintln!("splitbrain-nemesis: undoing the packet fault failed: {e}");
            }
        }
    }
}

/// The lab as a [`Net`]: the same faults as the inherent methods, as [`Fault`]s.
impl Net for LabNet {
    fn nodes(&self) -> Vec<String> {
        LabNet::nodes(self)
    }

    fn leader(&self) -> Option<String> {
        LabNet::leader(self)
    }

    fn down(&self) -> Result<BTreeSet<String>> {
        let f = self.recorded()?;
        Ok(f.killed.union(&f.paused).cloned().collect())
    }

    fn clock_control(&self) -> ClockControl {
        ClockControl::Supervisor
    }

    fn inject(&self, fault: &FaultSpec) -> Result<Fault> {
        let kind = fault.kind();
        Ok(match fault {
            FaultSpec::Partition(grudge) => {
                let nodes = grudge.nodes().into_iter().map(str::to_owned).collect();
                Fault::new(kind, nodes, Box::new(self.partition(grudge)?))
            }
            FaultSpec::Packet { nodes, spec } => {
                let f = self.packet_fault(nodes, spec)?;
                let how = Mechanisms::Same(f.mechanisms().to_vec());
                let nodes = if nodes.is_empty() {
                    self.nodes()
                } else {
                    nodes.clone()
                };
                Fault::new(kind, nodes, Box::new(f)).with_mechanisms(how)
            }
            FaultSpec::Process {
                kind: pk,
                nodes,
                process,
            } => Fault::new(
                kind,
                nodes.clone(),
                Box::new(self.process_fault(*pk, nodes, process.as_deref())?),
            )
            .with_process(process.clone()),
            FaultSpec::Clock { nodes, change } => {
                let f = self.clock_fault(nodes, *change)?;
                Fault::new(kind, f.nodes().to_vec(), Box::new(f))
            }
        })
    }

    fn heal_all(&self) -> Result<Healed> {
        self.heal()
    }

    fn wait_healthy(&self, timeout: std::time::Duration) -> Result<()> {
        Cluster::load(&self.dir)
            .and_then(|c| c.wait_healthy(timeout))
            .map_err(|e| Error::Unhealthy(format!("the cluster did not become healthy: {e}")))
    }

    fn operator_failover(&self) -> bool {
        self.operator_failover
    }

    fn failover(&self) -> Result<splitbrain_cluster::Failover> {
        Ok(Cluster::load(&self.dir)?.failover()?)
    }

    fn rejoin(&self, node: &str) -> Result<()> {
        self.check_nodes([node])?;
        Ok(Cluster::load(&self.dir)?.rejoin(node)?)
    }
}
