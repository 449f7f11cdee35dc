//! The database as a plug-in, the way Jepsen's `db` protocol works: the lab (network
//! namespaces, state file, ownership checks, signals, teardown) is shared, and everything
//! that knows one database lives in one file here (`etcd.rs`, ...).
//!
//! A new database implements [`Database`] and is added to [`KNOWN`]. It provides:
//! - the programs it runs or calls, with their Debian packages ([`Database::programs`];
//!   `scripts/setup` installs them, a unit test checks the list there);
//! - files it needs besides programs ([`Database::files`]: ZooKeeper's jars), with their
//!   packages;
//! - each member's command line, from the member's node and the cluster's plan
//!   ([`Database::member_argv`]), the configuration files it reads
//!   ([`Database::config_files`], written once at `up`), its client and peer ports, the
//!   scheme of its client URLs and its log file name;
//! - a readiness probe ([`Database::health`]) and, optionally, a log line that says a
//!   member serves ([`Database::serving_log_line`]) so members start one after another;
//! - what each member says of the cluster ([`Database::reports`]: its id, the leader it
//!   believes in, term and index), from which the lab finds the leader (highest term),
//!   and so does the nemesis for remote nodes ([`leader_endpoint`]; a plug-in that can
//!   ask members on other machines overrides [`Database::reports_from`]);
//! - how to read its log ([`Database::render_log_line`], [`Database::looks_like_a_cause`]);
//! - wiping a member's data ([`Database::wipe`]).
//!
//! A member's main process is the one whose command line is `member_argv`: its pid is
//! what `kill`, `pause` and the clock supervisor act on. A member may own more
//! processes ([`Database::extra_processes`]: Redis's sentinel, webdis), each with its
//! own command line, log and port; the lab starts them after every main process
//! listens, records their pids beside the main one, waits for them to listen, and
//! stops them at teardown (and `cluster down`) exactly like the main one. `start`
//! after `kill` restarts the main process and any extra one that is not running.

pub(crate) mod dqlite;
pub(crate) mod etcd;
pub(crate) mod mariadb;
pub(crate) mod redis;
pub(crate) mod zookeeper;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::node::{Node, NodeName};

/// What the plug-in needs to know of the cluster to write a member's command line.
#[derive(Debug, Clone)]
pub(crate) struct MemberPlan<'a> {
    /// Every member of the cluster, in order.
    pub nodes: &'a [Node],
    /// The lab's prefix (`sbN`), unique among the labs on this machine.
    pub prefix: &'a str,
    /// The program of [`Database::programs`]' first entry, found on the `PATH`.
    pub program: &'a Path,
    /// etcd: serve the v2 keys API.
    pub enable_v2: bool,
    /// etcd: Raft pre-vote.
    pub pre_vote: bool,
    /// More flags for every member, appended to its command line.
    pub extra: &'a [String],
}

/// One member's answer to the readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Health {
    /// The member's client URL.
    pub endpoint: String,
    pub health: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// What one member says of itself and of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    /// The database's own id of the member.
    pub member_id: u64,
    /// The database id of the leader this member believes in; 0 when it knows none.
    pub leader: u64,
    /// Term (etcd), epoch (ZooKeeper): the leader of the highest one wins.
    pub term: u64,
    /// Position in the replicated log.
    pub index: u64,
}

/// `DIR/nI`, a member's own directory (its data directory's parent): where the
/// plug-ins keep its configuration files and logs.
pub(crate) fn member_dir(node: &Node) -> PathBuf {
    node.data_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| node.data_dir.clone())
}

/// A member's number, for the plug-ins that need one (ZooKeeper's `myid`, the
/// Redis and MariaDB reports): the last byte of its lab address, which is its
/// number in the lab (`n2` is `10.77.N.2`).
pub(crate) fn member_id(addr: Ipv4Addr) -> u64 {
    u64::from(addr.octets()[3])
}

/// `SCHEME://ADDR:PORT` (or `ADDR:PORT`, a trailing `/` allowed) as a socket address.
pub(crate) fn endpoint_addr(endpoint: &str) -> Option<SocketAddrV4> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    rest.trim_end_matches('/').parse().ok()
}

/// The leader according to the reports with the highest term that name one, with that
/// term: a member cut off from the majority may still believe in an older leader of an
/// older term.
pub(crate) fn leader_of(reports: &[Report]) -> Option<(u64, u64)> {
    reports
        .iter()
        .filter(|s| s.leader != 0)
        .max_by_key(|s| s.term)
        .map(|s| (s.leader, s.term))
}

/// Which of `endpoints` (the client URLs of members of database `db`) is the leader
/// or primary, as the members that answer say: the highest term wins. `None` while
/// there is none, or when no member answers. For nodes that are not a local lab
/// (remote nodes over SSH), whose leader only their client URLs can tell; a lab
/// asks through [`crate::Cluster::leader`].
///
/// `allow_remote`: endpoints may be on other machines (see
/// [`ensure_target`](crate::ensure_target)).
pub fn leader_endpoint(db: &str, endpoints: &[&str], allow_remote: bool) -> Result<Option<String>> {
    let reports = match by_name(db)?.reports_from(endpoints, allow_remote) {
        Ok(r) => r,
        Err(Error::Command { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let all: Vec<Report> = reports.iter().map(|(_, s)| *s).collect();
    Ok(leader_of(&all).and_then(|(id, _)| {
        reports
            .iter()
            .find(|(_, s)| s.member_id == id)
            .map(|(e, _)| e.clone())
    }))
}

/// What [`Cluster::failover`](crate::Cluster::failover) did (primary-backup databases).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Failover {
    /// The primary that failed.
    pub old: NodeName,
    /// The replica promoted in its place.
    pub new: NodeName,
    /// The new primary's epoch (the leader lookup's term).
    pub epoch: u64,
    /// Each candidate replica with its `gtid_slave_pos` once it had applied what it
    /// had received, the promoted one's highest. Serialized as an object.
    #[serde(serialize_with = "as_map")]
    pub positions: Vec<(NodeName, String)>,
    /// The replicas repointed at the new primary.
    pub repointed: Vec<NodeName>,
    /// Whether the old primary answered, and was made read-only (fenced).
    pub fenced: bool,
}

fn as_map<S: serde::Serializer>(pairs: &[(NodeName, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

impl Failover {
    /// `new` promoted in place of `old` at `epoch`, with no candidates' positions,
    /// repointed replicas or fence recorded (a fake's answer, for tests elsewhere).
    pub fn new(old: NodeName, new: NodeName, epoch: u64) -> Failover {
        Failover {
            old,
            new,
            epoch,
            positions: Vec::new(),
            repointed: Vec::new(),
            fenced: false,
        }
    }
}

/// The refusal of [`Database::failover`] and [`Database::rejoin`] by a database that
/// elects its own leader.
fn elects_its_own(db: &str) -> Error {
    Error::Failover(format!(
        "{db} elects its own leader: there is no failover to make"
    ))
}

/// A process a member owns besides its main one (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extra {
    /// What it is, for messages (`sentinel`).
    pub name: &'static str,
    /// Its exact command line: a pid is this process only if its `/proc/PID/cmdline`
    /// is this.
    pub argv: Vec<String>,
    /// Its log (stdout and stderr) inside the member's directory `DIR/nI/`.
    pub log_file_name: &'static str,
    /// The port it listens on, on the member's address, once it is ready.
    pub port: u16,
}

/// A database the lab can run. See the module documentation for what it must provide.
pub(crate) trait Database: std::fmt::Debug + Send + Sync {
    /// Its name on the command line (`--db NAME`) and in the state file.
    fn name(&self) -> &'static str;
    /// Programs it needs, each with its Debian package; the first is the member's.
    fn programs(&self) -> &'static [(&'static str, &'static str)];
    /// Files it needs besides programs (absolute paths), each with its Debian package.
    fn files(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The scheme of its members' client URLs (`http://ADDR:PORT`, `zk://ADDR:PORT`).
    fn url_scheme(&self) -> &'static str {
        "http"
    }
    /// The port clients connect to on each member's address.
    fn client_port(&self) -> u16;
    /// The port the member's main process listens on, which the lab waits for after
    /// starting it: the client port unless clients speak to an extra process.
    fn server_port(&self) -> u16 {
        self.client_port()
    }
    /// The port the members talk to each other on.
    fn peer_port(&self) -> u16;
    /// The member's log file name inside its directory `DIR/nI/`.
    fn log_file_name(&self) -> &'static str;
    /// The member's full command line. Restarting with the same one keeps its data.
    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String>;
    /// The member's other processes (none by default), started once every member's
    /// main process listens.
    fn extra_processes(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<Extra> {
        let _ = (node, plan);
        Vec::new()
    }
    /// Files `node` reads at start (path, content), given every member: written once by
    /// `up` after the wipe, kept across restarts.
    fn config_files(&self, node: &Node, nodes: &[Node]) -> Vec<(std::path::PathBuf, String)> {
        let _ = (node, nodes);
        Vec::new()
    }
    /// A log line that says the member serves its peers, if it writes one.
    fn serving_log_line(&self) -> Option<&'static str>;
    /// Whether a member must listen on its client port before the next one starts:
    /// members that join through the first (dqlite) fail with "database is locked"
    /// when two join at once. Members that need a quorum to serve start together.
    fn start_one_by_one(&self) -> bool {
        false
    }
    /// Readiness: each member at `endpoints` (client URLs, route-checked) answers.
    /// [`Error::Command`] when none answers at all.
    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>>;
    /// Each answering member's report, with its client URL. [`Error::Command`] when
    /// none answers at all.
    fn reports(&self, endpoints: &[&str]) -> Result<Vec<(String, Report)>>;
    /// [`Database::reports`] from members that may be on other machines
    /// (`allow_remote`: the user said so; lab addresses are route-checked either way),
    /// for [`leader_endpoint`]. By default the members are asked as the lab asks its
    /// own, so other machines are refused; a plug-in that can ask them overrides it.
    fn reports_from(
        &self,
        endpoints: &[&str],
        allow_remote: bool,
    ) -> Result<Vec<(String, Report)>> {
        let _ = allow_remote;
        self.reports(endpoints)
    }
    /// `(member id, node name)` of every member, once the cluster is healthy.
    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>>;
    /// One log line for a human.
    fn render_log_line(&self, line: &str) -> String;
    /// Whether a log line looks like the cause of a failure (shown even when it is older
    /// than the tail).
    fn looks_like_a_cause(&self, line: &str) -> bool;
    /// Prepares a member's fresh data directory before its first start, after
    /// [`Database::config_files`] (MariaDB: `mariadb-install-db`). Default: nothing.
    fn initialise(&self, node: &Node) -> Result<()> {
        let _ = node;
        Ok(())
    }
    /// Runs once at `up`, when every member is healthy: roles the database does not
    /// elect itself (MariaDB: the primary, and replicas pointed at it). Default: nothing.
    fn after_up(&self, nodes: &[Node]) -> Result<()> {
        let _ = nodes;
        Ok(())
    }
    /// Whether a failed primary is replaced only by an operator's
    /// [`Database::failover`] (MariaDB): the test's nemesis then fails over by itself
    /// when a fault hits the primary, and rejoins the old one after the heal
    /// ([`Database::rejoin`]). Default: no, the database elects its own leader.
    fn operator_failover(&self) -> bool {
        false
    }
    /// What an operator does when the primary of a primary-backup database has died
    /// or is cut off: promote the most advanced replica, repoint the others.
    /// [`Error::Failover`] when it cannot or need not; databases that elect their
    /// own leader do not have it.
    fn failover(&self, nodes: &[Node]) -> Result<Failover> {
        let _ = nodes;
        Err(elects_its_own(self.name()))
    }
    /// The primary `node` would rejoin: another member, named by the others.
    /// [`crate::Cluster::rejoin`] asks before it touches `node`, so that a rejoin
    /// that cannot work (of the primary itself, or with nobody answering) refuses
    /// with the member's data intact. Only for databases with an
    /// [`operator_failover`](Database::operator_failover).
    fn rejoin_source<'a>(&self, node: &Node, nodes: &'a [Node]) -> Result<&'a Node> {
        let _ = (node, nodes);
        Err(elects_its_own(self.name()))
    }
    /// Makes `node`, a former primary a failover replaced, a replica of `primary`
    /// ([`Database::rejoin_source`]). [`crate::Cluster::rejoin`] calls it once the
    /// member runs again on a data directory initialised afresh
    /// ([`Database::wipe`], then [`Database::initialise`]): what the old primary
    /// held that nobody else has is gone, and it replicates everything from the
    /// new primary.
    fn rejoin(&self, node: &Node, primary: &Node) -> Result<()> {
        let _ = (node, primary);
        Err(elects_its_own(self.name()))
    }
    /// Removes a member's data from a previous run.
    fn wipe(&self, node: &Node) -> Result<()> {
        match std::fs::remove_dir_all(&node.data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("cannot remove old data {}", node.data_dir.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// Member `nI` of a lab on 10.77.3.0/24 as `db` would place it: a fixture for the
/// plug-ins' unit tests.
#[cfg(test)]
pub(crate) fn test_node(db: &dyn Database, i: u8) -> Node {
    let scheme = db.url_scheme();
    Node {
        name: format!("n{i}").as_str().into(),
        netns: format!("sb3-n{i}"),
        interface: format!("sb3n{i}"),
        addr: std::net::Ipv4Addr::new(10, 77, 3, i),
        client_url: format!("{scheme}://10.77.3.{i}:{}", db.client_port()),
        peer_url: format!("{scheme}://10.77.3.{i}:{}", db.peer_port()),
        data_dir: format!("/run/x/n{i}/data").into(),
        log_file: format!("/run/x/n{i}/{}", db.log_file_name()).into(),
        clock_file: None,
    }
}

/// Every database the lab knows, the default first.
pub(crate) const KNOWN: &[&dyn Database] = &[
    &etcd::Etcd,
    &zookeeper::ZooKeeper,
    &dqlite::Dqlite,
    &mariadb::MariaDb,
    &redis::Redis { webdis: false },
    &redis::Redis { webdis: true },
];

/// The name of the default database.
pub const DEFAULT_DB: &str = "etcd";

/// The names of the databases the lab can run, the default first.
pub fn known_databases() -> Vec<&'static str> {
    KNOWN.iter().map(|d| d.name()).collect()
}

/// The database called `name`, or an error listing the known ones.
pub(crate) fn by_name(name: &str) -> Result<&'static dyn Database> {
    KNOWN
        .iter()
        .copied()
        .find(|d| d.name() == name)
        .ok_or_else(|| Error::UnknownDatabase {
            name: name.to_owned(),
            known: known_databases().join(", "),
        })
}

/// Whether database `name`'s primary is replaced only by an operator's failover
/// (MariaDB), so that the test's nemesis makes one; false for an unknown name.
pub fn operator_failover(name: &str) -> bool {
    by_name(name).is_ok_and(|d| d.operator_failover())
}

/// The Debian packages `name` needs (its programs'), or an error listing the known
/// databases. `scripts/setup` installs these.
pub fn packages(name: &str) -> Result<Vec<&'static str>> {
    let db = by_name(name)?;
    let mut packages: Vec<&str> = db
        .programs()
        .iter()
        .chain(db.files())
        .map(|p| p.1)
        .collect();
    packages.dedup();
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_database_is_refused_with_the_known_ones() {
        assert_eq!(by_name("etcd").unwrap().name(), "etcd");
        let e = by_name("zookeper").unwrap_err().to_string();
        assert!(
            e.contains("zookeper") && e.contains("etcd, zookeeper"),
            "{e}"
        );
    }

    #[test]
    fn scripts_setup_installs_every_package_of_every_database() {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup");
        let text = std::fs::read_to_string(&setup).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("packages=("))
            .expect("scripts/setup has a packages=(...) line");
        let listed: Vec<&str> = line
            .trim_start_matches("packages=(")
            .trim_end_matches(')')
            .split_whitespace()
            .collect();
        for db in KNOWN {
            for (program, package) in db.programs().iter().chain(db.files()) {
                assert!(
                    listed.contains(package),
                    "scripts/setup does not install {package} ({program} for {})",
                    db.name()
                );
            }
        }
    }
}
