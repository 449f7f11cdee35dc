//! The nemesis: faults injected into a cluster under test, always healed.
//!
//! Faults come in pairs (apply, heal) and are guards that heal on drop, as in
//! turmoil; teardown never depends on the happy path. What exists today:
//!
//! - [`grudge`]: who may not hear whom, as pure values built by small functions
//!   (isolate a node, random halves, bridge, majorities ring, one way), as in Jepsen.
//! - [`lab`]: faults on a local lab (`splitbrain-cluster`): partitions and packet
//!   loss with iptables in chains of ours inside each member's network namespace,
//!   bandwidth limits with `tbf` (or everything with netem where the kernel has
//!   it, see [`packet`]), and killed or paused members.
//! - [`clock`]: a member's wall clock bumped, skewed, strobed or reset through its
//!   clock supervisor's offset file (the host clock is never touched).
//! - [`remote`]: the same faults, and clock faults, on remote nodes listed in a nodes
//!   file ([`nodes`]), through a [`host::Host`] per node: commands over the system
//!   `ssh` with one multiplexed connection per node.
//! - [`fault`]: one interface over both, [`fault::Net`]: a fault asked for as a
//!   value ([`fault::FaultSpec`]), a [`fault::Fault`] guard for each, the kinds as
//!   one enum ([`fault::FaultKind`]) and every heal reported as `Result<Healed>`.
//!
//! ```no_run
//! # fn main() -> Result<(), splitbrain_nemesis::Error> {
//! use splitbrain_nemesis::{grudge::Grudge, lab::LabNet};
//! let net = LabNet::load("/tmp/splitbrain/cluster")?;
//! let partition = net.partition(&Grudge::isolate(&net.nodes(), "n1"))?;
//! // ... the workload runs against a partitioned cluster ...
//! partition.heal()?; // or just drop it
//! # Ok(()) }
//! ```

pub mod clock;
pub mod delayer;
pub mod fault;
pub mod grudge;
pub mod host;
pub mod iptables;
pub mod lab;
pub mod nodes;
pub mod packet;
pub mod remote;

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a fault could not be applied or healed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Cluster(#[from] splitbrain_cluster::Error),
    #[error("no node `{0}` in this cluster (it has {1})")]
    UnknownNode(String, String),
    #[error("iptables on {node}: {message}")]
    Iptables { node: String, message: String },
    #[error("cannot run `{0}`: {1} (is iptables installed? `sudo scripts/setup` installs it)")]
    Command(String, String),
    #[error("tc on {node}: {message}")]
    Tc { node: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// A member process name the database does not run (`--process NAME`).
    #[error("no process `{process}` on the members (they run {known})")]
    UnknownProcess { process: String, known: String },
    #[error(transparent)]
    Packet(#[from] packet::PlanError),
    #[error("nemesis state file {0}: {1}")]
    State(PathBuf, String),
    #[error("node {node} ({addr}) is unreachable over SSH: {message}")]
    Unreachable {
        node: String,
        addr: String,
        message: String,
    },
    /// A node's address failed the cluster crate's target check; nothing was sent.
    #[error("node {node} ({addr}) refused: {reason}")]
    Refused {
        node: String,
        addr: String,
        reason: Box<splitbrain_cluster::Error>,
    },
    /// An `ssh_options` entry that could send SSH elsewhere than the node's host, or
    /// run a command here, for nodes that were not allowed to be other machines.
    #[error("nodes file {path}: node `{node}`, field `ssh_options`: `{option}` could send SSH elsewhere than its host or run a command here, and other machines were not allowed")]
    RedirectNotAllowed {
        path: PathBuf,
        node: String,
        option: String,
    },
    #[error("on node {node} ({addr}), `{command}` failed: {message}")]
    OnHost {
        node: String,
        addr: String,
        command: String,
        message: String,
    },
    #[error("nodes file {path}: {message}")]
    NodesFile { path: PathBuf, message: String },
    /// The lab's members were not started under the clock supervisor (the binary
    /// says how to start a lab that has it).
    #[error("the cluster in {0} runs without clock control (its members were not started under the clock supervisor)")]
    NoClockControl(PathBuf),
    #[error("clock fault: {0}")]
    Clock(String),
    #[error("unknown fault `{name}` (available: {known})")]
    UnknownFault { name: String, known: String },
    /// Every fault is healed, but the cluster did not serve again in time.
    #[error("{0}")]
    Unhealthy(String),
}
