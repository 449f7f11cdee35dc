//! One fault interface over both places faults happen: [`Net`] is implemented by
//! the local lab ([`crate::lab::LabNet`]) and by remote nodes over SSH
//! ([`crate::remote::RemoteNet`]). A fault is asked for as a value
//! ([`FaultSpec`]), and what is in place is a [`Fault`]: a guard that heals on
//! drop, whose heal, like [`Net::heal_all`], reports the same way on both:
//! `Result<Healed>`.
//!
//! ```text
//!   FaultSpec::Process { kind: Kill, nodes: ["n1"] }
//!        │ net.inject(..)            lab: SIGKILL n1's database process
//!        ▼                           remote: the nodes file's `kill` command
//!   Fault { kind: Kill, nodes: ["n1"] }
//!        │ fault.heal()  (or drop)   lab: start n1 again; remote: `start`
//!        ▼
//!   Ok(Healed { notes: [] })         Err(Error): what could not be undone
//! ```
//!
//! Where the two differ for real, the difference is a value, not a second API:
//! how a packet fault was carried out ([`Mechanisms`]: one plan for the lab's one
//! kernel, a plan per remote node) and which clock changes can be made
//! ([`ClockControl`]). Who leads is the database plug-in's lookup
//! (`splitbrain-cluster`), asked of the lab's members or of the remote nodes'
//! client URLs.

use crate::grudge::Grudge;
use crate::packet::{Mechanism, NodeMechanisms, PacketSpec};
use crate::{Error, Result};
use splitbrain_clock::format_duration;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The kinds of fault, as `--nemesis` names them and the history records them
/// (`start-partition`, `stop-kill`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Who may not hear whom ([`Grudge`]): iptables rules.
    Partition,
    /// Slow, lossy links ([`PacketSpec`]).
    Packet,
    /// The database's process killed (SIGKILL), restarted with its data by the heal.
    Kill,
    /// The database's process paused (SIGSTOP), resumed by the heal.
    Pause,
    /// Wall clocks moved ([`ClockChange`]); the heal puts them back.
    Clock,
}

impl FaultKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Partition,
        FaultKind::Packet,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Packet => "packet",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::UnknownFault {
                name: s.to_owned(),
                known: FaultKind::ALL.map(FaultKind::name).join(", "),
            })
    }
}

/// Kill or pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// SIGKILL; healed by restarting with the same data.
    Kill,
    /// SIGSTOP; healed by SIGCONT.
    Pause,
}

impl From<ProcessKind> for FaultKind {
    fn from(k: ProcessKind) -> FaultKind {
        match k {
            ProcessKind::Kill => FaultKind::Kill,
            ProcessKind::Pause => FaultKind::Pause,
        }
    }
}

/// What to do to a member's clock, from wherever it is now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClockChange {
    /// Jump by this many nanoseconds (negative: back).
    Bump { delta_ns: i64 },
    /// Run at this many fake seconds per real second.
    Skew { rate: f64 },
    /// Flip between `+delta` and where it is now, every `period`.
    Strobe { delta_ns: i64, period_ns: i64 },
    /// Back to real time.
    Reset,
}

impl ClockChange {
    /// `bump`, `skew`, `strobe` or `reset`.
    pub fn name(&self) -> &'static str {
        match self {
            ClockChange::Bump { .. } => "bump",
            ClockChange::Skew { .. } => "skew",
            ClockChange::Strobe { .. } => "strobe",
            ClockChange::Reset => "reset",
        }
    }
}

impl fmt::Display for ClockChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ClockChange::Bump { delta_ns } => write!(f, "bump {}", format_duration(delta_ns)),
            ClockChange::Skew { rate } => write!(f, "skew {rate}x"),
            ClockChange::Strobe {
                delta_ns,
                period_ns,
            } => write!(
                f,
                "strobe {} every {}",
                format_duration(delta_ns),
                format_duration(period_ns).trim_start_matches('+')
            ),
            ClockChange::Reset => write!(f, "reset"),
        }
    }
}

/// Which clock changes a [`Net`] can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockControl {
    /// Any [`ClockChange`], from wherever the clock is: the lab's clock
    /// supervisors answer each member's clock reads from an offset file.
    Supervisor,
    /// Only a [`ClockChange::Bump`] from true time, one at a time per node (a
    /// second waits for the heal): `date`, or the nodes file's commands.
    Offset,
}

/// A fault to make, on any [`Net`].
#[derive(Debug, Clone, PartialEq)]
pub enum FaultSpec {
    Partition(Grudge),
    /// `nodes` empty: every node.
    Packet {
        nodes: Vec<String>,
        spec: PacketSpec,
    },
    Process {
        kind: ProcessKind,
        nodes: Vec<String>,
        /// `None`: the database's own process; `Some("sentinel")`: the process of
        /// that name each member runs beside it (the lab only).
        process: Option<String>,
    },
    /// `nodes` empty: every node.
    Clock {
        nodes: Vec<String>,
        change: ClockChange,
    },
}

impl FaultSpec {
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultSpec::Partition(_) => FaultKind::Partition,
            FaultSpec::Packet { .. } => FaultKind::Packet,
            FaultSpec::Process { kind, .. } => (*kind).into(),
            FaultSpec::Clock { .. } => FaultKind::Clock,
        }
    }
}

/// What a heal did besides undoing: notes for the user (a clock that may still be
/// off, the NTP client that stepped it). A heal that failed is an `Err`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healed {
    pub notes: Vec<String>,
}

/// How a packet fault was carried out.
#[derive(Debug, Clone, PartialEq)]
pub enum Mechanisms {
    /// The same on every member: a lab's members share one kernel.
    Same(Vec<(&'static str, Mechanism)>),
    /// Node by node: each remote node has its own kernel (netem or not).
    PerNode(Vec<NodeMechanisms>),
}

/// The undoing half of a fault: each backend's guard (a partition, a killed
/// process, ...) implements it and heals when dropped; a [`Net`] made elsewhere (a
/// test's fake) brings its own.
pub trait Heal: Send + fmt::Debug {
    /// Undoes the fault now, and says how that went.
    fn heal(self: Box<Self>) -> Result<Healed>;
    /// Leaves the fault in place (recorded in the state file) for a later heal.
    fn keep(self: Box<Self>);
}

/// A fault in place, on either backend. Heals when dropped (or [`Fault::heal`] to
/// see errors, [`Fault::keep`] to leave it for `splitbrain nemesis heal`).
#[derive(Debug)]
pub struct Fault {
    kind: FaultKind,
    nodes: Vec<String>,
    /// A kill's or pause's process, when not the database's own.
    process: Option<String>,
    mechanisms: Option<Mechanisms>,
    undo: Box<dyn Heal>,
}

impl Fault {
    pub fn new(kind: FaultKind, nodes: Vec<String>, undo: Box<dyn Heal>) -> Fault {
        Fault {
            kind,
            nodes,
            process: None,
            mechanisms: None,
            undo,
        }
    }

    /// Says which process a kill or pause acts on (`None`: the database's own).
    pub fn with_process(mut self, process: Option<String>) -> Fault {
        self.process = process;
        self
    }

    /// The process a kill or pause acts on, when not the database's own.
    pub fn process(&self) -> Option<&str> {
        self.process.as_deref()
    }

    /// Says how a packet fault was carried out.
    pub fn with_mechanisms(mut self, m: Mechanisms) -> Fault {
        self.mechanisms = Some(m);
        self
    }

    pub fn kind(&self) -> FaultKind {
        self.kind
    }

    /// The nodes it hits (a partition: every node its grudge names).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// How a packet fault is carried out; `None` for other kinds.
    pub fn mechanisms(&self) -> Option<&Mechanisms> {
        self.mechanisms.as_ref()
    }

    /// Undoes it now, and says how that went.
    pub fn heal(self) -> Result<Healed> {
        self.undo.heal()
    }

    /// Leaves it in place (recorded in the state file) for `splitbrain nemesis heal`.
    pub fn keep(self) {
        self.undo.keep()
    }
}

/// Where faults happen: the local lab or remote nodes. Every method may block
/// (commands in namespaces, over SSH).
pub trait Net: Send + Sync + fmt::Debug {
    /// The nodes' names, in order.
    fn nodes(&self) -> Vec<String>;
    /// The leader or primary as the database plug-in's lookup finds it; `None`
    /// while there is none, or when it cannot be asked.
    fn leader(&self) -> Option<String>;
    /// Nodes a fault left killed or paused, as the state file records: no target
    /// for another kill or pause before a heal.
    fn down(&self) -> Result<BTreeSet<String>>;
    /// Which clock changes [`FaultSpec::Clock`] may ask for here.
    fn clock_control(&self) -> ClockControl;
    /// Makes `fault`; the guard undoes it.
    fn inject(&self, fault: &FaultSpec) -> Result<Fault>;
    /// Undoes every fault recorded, whatever made it (a killed harness too).
    /// Idempotent.
    fn heal_all(&self) -> Result<Healed>;
    /// Waits, after a heal, until the cluster serves again; [`Error::Unhealthy`]
    /// when it did not within `timeout`.
    fn wait_healthy(&self, timeout: Duration) -> Result<()>;
    /// Whether the database's primary is replaced only by an operator's
    /// [`failover`](Net::failover) (the lab's MariaDB), so that the test's nemesis
    /// makes it when a fault hits the primary. Default: no.
    fn operator_failover(&self) -> bool {
        false
    }
    /// Promotes a replica of a primary that died or is cut off, as an operator
    /// would (`splitbrain cluster failover`); the cluster crate's
    /// `Error::Failover` when the primary is fine. Default: not here.
    fn failover(&self) -> Result<splitbrain_cluster::Failover> {
        Err(Error::Unsupported(
            "a failover by the nemesis is for a local lab only".into(),
        ))
    }
    /// Brings `node`, a primary a failover replaced, back as a replica of the new
    /// one, its data initialised afresh. Default: not here.
    fn rejoin(&self, node: &str) -> Result<()> {
        Err(Error::Unsupported(format!(
            "rejoining {node} after a failover is for a local lab only"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_kinds_parse_from_their_names_and_refuse_others_listing_them() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), k);
            assert_eq!(k.to_string(), k.name());
        }
        let e = "earthquake".parse::<FaultKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown fault `earthquake` (available: partition, packet, kill, pause, clock)"
        );
        assert_eq!(FaultKind::from(ProcessKind::Pause), FaultKind::Pause);
        let spec = FaultSpec::Process {
            kind: ProcessKind::Kill,
            nodes: vec!["n1".into()],
            process: None,
        };
        assert_eq!(spec.kind(), FaultKind::Kill);
    }

    #[test]
    fn clock_changes_describe_themselves() {
        let s = 1_000_000_000;
        let bump = ClockChange::Bump {
            delta_ns: -3600 * s,
        };
        assert_eq!(bump.to_string(), "bump -1h");
        let strobe = ClockChange::Strobe {
            delta_ns: 5 * s,
            period_ns: s / 10,
        };
        assert_eq!(strobe.to_string(), "strobe +5s every 100ms");
        assert_eq!(ClockChange::Skew { rate: 2.0 }.to_string(), "skew 2x");
        assert_eq!(ClockChange::Reset.name(), "reset");
    }
}
