//! A real local database cluster for splitbrain (etcd 3.4, or ZooKeeper 3.8: the database
//! is a plug-in, see `db/`): one member per network namespace, each with its own address
//! on a bridge, so that a partition is a real partition.
//!
//! ```text
//!   harness (root namespace) ── sbNh 10.77.N.254
//!                                  │
//!                          bridge sbNbr (namespace sbN-br)
//!                        ┌─────────┼─────────┐
//!                  n1 10.77.N.1  n2 .2     n3 .3      one namespace each: sbN-n1 ...
//! ```
//!
//! [`Cluster::up`] claims a free subnet `10.77.N.0/24`, builds the namespaces, starts the
//! database in each (etcd: v2 API and pre-vote on by default), and returns once every member is
//! healthy. The run directory (default [`DEFAULT_DIR`]) holds the state file
//! `cluster.json`, written ahead of every namespace and process it records, so
//! [`Cluster::down`] (or `splitbrain cluster down`) cleans up even after `up` was killed
//! half way. Members outlive the process that started them.
//!
//! ```no_run
//! use splitbrain_cluster::{Cluster, Config};
//! # fn main() -> splitbrain_cluster::Result<()> {
//! let cluster = Cluster::up(Config::in_dir("/tmp/my-run"))?.guard(); // down on drop
//! let leader = cluster.leader()?.expect("a healthy cluster has a leader");
//! cluster.kill(&leader)?;        // SIGKILL, data kept
//! cluster.start(&leader)?;       // same command line, same data
//! cluster.pause("n2")?;          // SIGSTOP
//! cluster.resume("n2")?;         // SIGCONT
//! # Ok(()) }
//! ```
//!
//! What this crate keeps true:
//! - it sends nothing to a lab address before [`ensure_lab_route`] said the route goes
//!   through that lab's own interface (a torn-down lab's subnet would route off the
//!   machine);
//! - it signals a pid only after `/proc/PID/cmdline` proved it is the exact command line
//!   it started, inside the namespace it created; it never kills by name;
//! - everything it creates carries the lab's `sbN` prefix, so `down` removes only its own;
//! - it speaks no HTTP and uses no async runtime: `etcdctl` and `ip` do the talking.

mod cluster;
mod db;
mod error;
mod net;
mod node;
mod pidfd;
mod registry;
mod sshd;
mod state;
mod sys;
mod topology;

pub use cluster::{
    down, down_all, missing_prerequisites, missing_prerequisites_for, Cluster, ClusterGuard,
    Config, MemberStatus, Process, Status, DEFAULT_DIR,
};
pub use db::{known_databases, leader_endpoint, operator_failover, packages, Failover, DEFAULT_DB};
pub use error::{Error, Result};
pub use net::{ensure_lab_route, ensure_lab_url, ensure_target, ensure_target_url};
pub use node::{Node, NodeName};
pub use pidfd::{terminate, Pinned, TERM_GRACE};
pub use registry::{registered, registry_dir, REGISTRY, REGISTRY_ENV};
pub use sshd::{SshAccess, SSH_PORT};
pub use state::STATE_FILE;
pub use sys::{require_program, require_root};
pub use topology::{CLIENT_PORT, MAX_NODES, PEER_PORT};
