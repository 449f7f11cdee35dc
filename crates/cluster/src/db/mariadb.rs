//! The MariaDB 10.11 plug-in (Debian's `mariadb-server`): asynchronous GTID replication,
//! one primary and the other members its replicas. Each member is one `mariadbd`
//! started directly (`--no-defaults`, every setting on its command line), so `kill`,
//! `pause` and the clock supervisor act on the server itself.
//!
//! ```text
//!   DIR/nI/data/         mariadb-install-db's fresh data directory, binlog, relay log
//!   DIR/nI/bootstrap.sql users and tables, run once by mariadb-install-db (not binlogged)
//!   DIR/nI/role.sql      --init-file, run at every start: `read_only` off on the primary
//!   DIR/nI/mysqld.sock   the socket the lab sets the member up through, as root
//!   DIR/nI/tmp/          its temporary files
//!   DIR/nI/mariadb.log   its stderr (the error log)
//! ```
//!
//! Roles are not elected: `up` makes `n1` the primary and points the others at it
//! (`CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos`), and [`failover`] is what an
//! operator does when the primary dies or is cut off: promote the most advanced
//! replica and repoint the others. Every member starts `read_only`; its `role.sql`
//! makes the primary writable again when it restarts. The old primary may hold
//! writes nobody else has, which strict GTID replication will not merge: [`rejoin`]
//! brings it back as a replica of the new primary from a data directory initialised
//! afresh and a dump of the new primary.
//!
//! **The primary** is the member named by the row of `splitbrain_lab.primary_member`
//! with the highest epoch among the members that answer. `up` writes epoch 1 (`n1`)
//! on the first primary, each failover writes epoch + 1 on the one it promotes, and
//! replication carries the row to every member that follows it; an old primary cut
//! off from the others keeps its old row, and loses to the higher epoch. That is the
//! leader lookup ([`Report::term`] is the epoch) and the clients' own rule.
//!
//! Users (the same on every member, made before any binlog exists):
//! - `splitbrain` (password `splitbrain`): the clients'. Only SELECT, INSERT, UPDATE and
//!   DELETE on the test database `splitbrain`, and SELECT on `splitbrain_lab`: a user
//!   with more (ALL) could write on a read-only replica and break strict replication;
//! - `sb_repl`: REPLICATION SLAVE, for the replicas' connections to the primary;
//! - `sb_monitor`: SLAVE MONITOR and SELECT on `splitbrain_lab`, for the readiness
//!   probe and the reports, which go over TCP to the member's client address.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{endpoint_addr, member_dir, member_id, Database, Failover, Health, MemberPlan, Report};
use crate::error::{Error, Result};
use crate::net::ensure_target_url;
use crate::node::Node;
use crate::sys;
use crate::topology::Lab;

/// The client port, which replicas also connect to.
pub(crate) const PORT: u16 = 3306;

/// The clients' user and password (see the module documentation).
pub const CLIENT_USER: &str = "splitbrain";
/// The test database the clients' tables live in.
pub const TEST_DATABASE: &str = "splitbrain";
const MONITOR_USER: &str = "sb_monitor";
const REPL_USER: &str = "sb_repl";

/// How long one `mariadb` call may take to connect.
const CONNECT_TIMEOUT_S: u32 = 2;
/// How long `up` waits for the replicas to have the primary's first row, and a
/// failover for a replica to apply what it had received.
const REPLICATION_WAIT: Duration = Duration::from_secs(30);

/// MariaDB 10.11 from Debian's `mariadb-server` (and `mariadb-client`).
#[derive(Debug)]
pub(crate) struct MariaDb;

impl Database for MariaDb {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("mariadbd", "mariadb-server"),
            ("mariadb-install-db", "mariadb-server"),
            ("mariadb", "mariadb-client"),
            ("mariadb-dump", "mariadb-client"),
        ]
    }

    fn url_scheme(&self) -> &'static str {
        "mysql"
    }

    fn client_port(&self) -> u16 {
        PORT
    }

    fn peer_port(&self) -> u16 {
        PORT
    }

    fn log_file_name(&self) -> &'static str {
        "mariadb.log"
    }

    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String> {
        let dir = member_dir(node);
        let data = node.data_dir.display();
        let mut argv: Vec<String> = vec![
            plan.program.display().to_string(),
            "--no-defaults".into(),
            // mariadbd refuses to run as root unless told to; the lab runs as root.
            "--user=root".into(),
            format!("--datadir={data}"),
            format!("--socket={}", socket_path(node).display()),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--tmpdir={}", dir.join("tmp").display()),
            format!("--init-file={}", role_path(node).display()),
            format!("--bind-address={}", node.addr),
            format!("--port={PORT}"),
            format!("--server-id={}", member_id(node.addr)),
            format!("--log-bin={data}/binlog"),
            format!("--relay-log={data}/relay-bin"),
            "--binlog-format=ROW".into(),
            "--gtid-strict-mode=1".into(),
            "--log-slave-updates=1".into(),
            // Every member starts read-only; role.sql lifts it on the primary.
            "--read-only=1".into(),
            "--skip-name-resolve".into(),
            // A replica notices a silent primary within 4 s (heartbeats every 1 s).
            "--slave-net-timeout=4".into(),
            // Commits reach the OS at once and the disk once a second: a killed
            // mariadbd (the lab's fault) loses nothing, only a machine crash would.
            // Replicas applying one transaction at a time with an fsync each fell
            // seconds behind a primary serving ten workers on two cores.
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-log-file-size=16M".into(),
            "--performance-schema=0".into(),
        ];
        argv.extend(plan.extra.iter().cloned());
        argv
    }

    fn config_files(&self, node: &Node, nodes: &[Node]) -> Vec<(PathBuf, String)> {
        let first = nodes.first().map(|n| n.addr);
        vec![
            (member_dir(node).join("bootstrap.sql"), bootstrap_sql()),
            (role_path(node), role_sql(first == Some(node.addr))),
            (member_dir(node).join("tmp").join(".keep"), String::new()),
        ]
    }

    fn initialise(&self, node: &Node) -> Result<()> {
        let dir = member_dir(node);
        sys::run(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", node.data_dir.display()))
                .arg("--user=root")
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .arg("--skip-name-resolve")
                .arg(format!(
                    "--extra-file={}",
                    dir.join("bootstrap.sql").display()
                ))
                .arg(format!("--tmpdir={}", dir.join("tmp").display()))
                .arg("--innodb-log-file-size=16M"),
        )
        .map(drop)
    }

    fn after_up(&self, nodes: &[Node]) -> Result<()> {
        let Some((primary, replicas)) = nodes.split_first() else {
            return Ok(());
        };
        socket_sql(
            primary,
            &format!(
                "SET GLOBAL read_only=0; \
                 INSERT INTO splitbrain_lab.primary_member VALUES (1, 1, '{}', '{}')",
                primary.name, primary.addr
            ),
        )?;
        for r in replicas {
            socket_sql(r, &change_master(primary.addr))?;
        }
        // Replicating: each replica has the primary's row.
        let deadline = Instant::now() + REPLICATION_WAIT;
        for r in replicas {
            let ok = sys::poll(deadline, Duration::from_millis(50), || {
                let row = socket_sql(r, "SELECT epoch FROM splitbrain_lab.primary_member")
                    .unwrap_or_default();
                Ok((row.trim() == "1").then_some(()))
            })?;
            ok.ok_or_else(|| Error::Timeout {
                what: format!(
                    "replica {} replicating from {} ({})",
                    r.name,
                    primary.name,
                    slave_error(r)
                ),
                after: REPLICATION_WAIT,
            })?;
        }
        Ok(())
    }

    fn serving_log_line(&self) -> Option<&'static str> {
        None
    }

    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        let answers = ask_all(endpoints)?;
        // The primary's position, when it answered: a replica that has not reached
        // it is behind (its connection may still be recovering from a partition).
        let primary = newest_primary(&answers).and_then(|(_, addr)| {
            answers.iter().find_map(|(_, a)| {
                let m = a.as_ref().ok()?;
                (m.server_id == member_id(addr)).then(|| seq_no(&m.gtid_current_pos))
            })
        });
        Ok(answers
            .into_iter()
            .map(|(endpoint, answer)| {
                let error = match answer {
                    Err(e) => Some(e),
                    Ok(m) => m.replication_problem().or_else(|| {
                        let (at, of) = (seq_no(&m.gtid_current_pos), primary?);
                        (m.master_host.is_some() && at < of)
                            .then(|| format!("replica behind the primary (at {at} of {of})"))
                    }),
                };
                Health {
                    endpoint,
                    health: error.is_none(),
                    error,
                }
            })
            .collect())
    }

    fn reports(&self, endpoints: &[&str]) -> Result<Vec<(String, Report)>> {
        let answers = ask_all(endpoints)?;
        Ok(answers
            .into_iter()
            .filter_map(|(e, a)| Some((e, a.ok()?.report())))
            .collect())
    }

    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        Ok(endpoints
            .iter()
            .filter_map(|e| endpoint_addr(e))
            .map(|a| member_id(*a.ip()))
            .map(|id| (id, Lab::node_name(id as usize)))
            .collect())
    }

    fn operator_failover(&self) -> bool {
        true
    }

    fn failover(&self, nodes: &[Node]) -> Result<Failover> {
        failover(nodes)
    }

    fn rejoin_source<'a>(&self, node: &Node, nodes: &'a [Node]) -> Result<&'a Node> {
        rejoin_source(node, nodes)
    }

    fn rejoin(&self, node: &Node, primary: &Node) -> Result<()> {
        rejoin(node, primary)
    }

    fn render_log_line(&self, line: &str) -> String {
        line.to_owned()
    }

    fn looks_like_a_cause(&self, line: &str) -> bool {
        line.contains("[ERROR]") || line.contains("Address already in use")
    }
}

/// Promotes the most advanced replica of a failed primary; see [`Database::failover`].
fn failover(nodes: &[Node]) -> Result<Failover> {
    let answers = ask_sockets(nodes.iter());
    let refuse = |why: String| Error::Failover(why);
    let primary_row = newest_primary(&answers)
        .ok_or_else(|| refuse("no member answered with the primary's row".into()))?;
    let (epoch, primary_addr) = primary_row;
    let old = nodes
        .iter()
        .find(|n| n.addr == primary_addr)
        .ok_or_else(|| refuse(format!("the primary {primary_addr} is not a member")))?;
    let old_answer = answers
        .iter()
        .find(|(n, _)| n.addr == old.addr)
        .and_then(|(_, a)| a.as_ref().ok());
    let replicas: Vec<&Node> = answers
        .iter()
        .filter(|(n, a)| {
            n.addr != old.addr
                && a.as_ref()
                    .is_ok_and(|m| m.master_host.as_deref() == Some(&old.addr.to_string()))
        })
        .map(|(n, _)| *n)
        .collect();
    let connected = answers.iter().any(|(n, a)| {
        replicas.iter().any(|r| r.addr == n.addr)
            && a.as_ref()
                .is_ok_and(|m| m.io_running.as_deref() == Some("Yes"))
    });
    if old_answer.is_some() && connected {
        return Err(refuse(format!(
            "the primary {} is alive and its replicas are connected to it: nothing to fail over",
            old.name
        )));
    }
    if replicas.is_empty() {
        return Err(refuse(format!(
            "no answering member replicates from the primary {}",
            old.name
        )));
    }
    // Stop fetching, then let each replica apply what it has received: what it
    // holds is then what it will ever hold of the old primary.
    let mut positions = Vec::new();
    for r in &replicas {
        socket_sql(r, "STOP SLAVE IO_THREAD")?;
    }
    for r in &replicas {
        let deadline = Instant::now() + REPLICATION_WAIT;
        sys::poll(deadline, Duration::from_millis(50), || {
            let m = member_via_socket(r).map_err(|e| refuse(format!("{}: {e}", r.name)))?;
            Ok((m.sql_running.as_deref() != Some("Yes") || m.relay_applied).then_some(()))
        })?;
        let pos = socket_sql(r, "SELECT @@gtid_slave_pos")?.trim().to_owned();
        positions.push((r.name.clone(), pos));
    }
    // The most advanced: the highest sequence number in domain 0; the first on a tie.
    let (best, _) = positions
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, pos))| (seq_no(pos), std::cmp::Reverse(*i)))
        .map(|(i, p)| (i, p.clone()))
        .ok_or_else(|| refuse("no candidate".into()))?;
    let new = replicas[best];
    let new_epoch = epoch + 1;
    socket_sql(
        new,
        &format!(
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0; \
             UPDATE splitbrain_lab.primary_member SET epoch={new_epoch}, node='{}', addr='{}' WHERE id=1",
            new.name, new.addr
        ),
    )?;
    // Restarts keep the new roles: the new primary comes back writable, the old
    // one read-only and replicating from nobody (it may hold writes nobody else has).
    write_role(new, true)?;
    write_role(old, false)?;
    let fenced = old_answer.is_some() && socket_sql(old, "SET GLOBAL read_only=1").is_ok();
    let mut repointed = Vec::new();
    for r in replicas.iter().filter(|r| r.addr != new.addr) {
        socket_sql(r, &format!("STOP SLAVE; {}", change_master(new.addr)))?;
        repointed.push(r.name.clone());
    }
    Ok(Failover {
        old: old.name.clone(),
        new: new.name.clone(),
        epoch: new_epoch,
        positions,
        repointed,
        fenced,
    })
}

/// What each of `nodes` answers through its socket (as root, which works while it
/// is cut off), all asked at once; [`ask_all`] asks endpoints over TCP.
fn ask_sockets<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<(&'a Node, MemberAnswer)> {
    let nodes: Vec<&Node> = nodes.collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .into_iter()
            .map(|n| (n, s.spawn(move || member_via_socket(n))))
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| (n, h.join().unwrap_or_else(|_| Err("panicked".into()))))
            .collect()
    })
}

type MemberAnswer = std::result::Result<Member, String>;

/// The primary row (epoch, address) with the highest epoch among `answers`.
fn newest_primary<T>(answers: &[(T, MemberAnswer)]) -> Option<(u64, Ipv4Addr)> {
    answers
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok()?.primary)
        .max_by_key(|p| p.0)
}

/// The primary the other members name, which `node` would rejoin; see
/// [`Database::rejoin_source`].
fn rejoin_source<'a>(node: &Node, nodes: &'a [Node]) -> Result<&'a Node> {
    let refuse = |why: String| Error::Failover(format!("rejoining {}: {why}", node.name));
    let answers = ask_sockets(nodes.iter().filter(|n| n.addr != node.addr));
    let (_, addr) = newest_primary(&answers)
        .ok_or_else(|| refuse("no other member answered with the primary's row".into()))?;
    nodes
        .iter()
        .find(|n| n.addr == addr && n.addr != node.addr)
        .ok_or_else(|| refuse(format!("the primary {addr} is not another member")))
}

/// Makes `node`, fresh from `mariadb-install-db`, a replica of `primary`: loads a dump of the primary's tables, taken in one transaction with
/// its GTID position, and replicates from that position.
///
/// Not by replicating the primary's binlog from its beginning: the events the old
/// primary wrote carry its own server id, which a replica skips as its own (the loop
/// guard of circular replication), so it would miss every write made before the
/// failover. The dump is loaded with `sql_log_bin=0` and sets `gtid_slave_pos`
/// itself (`--master-data=1 --gtid`); the member's binlog state starts there too, so
/// that if it is promoted before it replicated anything its writes still number on
/// from the primary's (strict GTID mode refuses a sequence number that goes back).
/// Returns once both replication threads run; catching up is the readiness probe's
/// business.
fn rejoin(node: &Node, primary: &Node) -> Result<()> {
    let refuse = |why: String| Error::Failover(format!("rejoining {}: {why}", node.name));
    // A restart keeps it a replica; it already is one (the failover wrote the file).
    write_role(node, false)?;
    socket_sql(node, "SET GLOBAL read_only=1")?;
    let dump = member_dir(node).join("tmp").join("rejoin.sql");
    sys::run(
        Command::new("mariadb-dump")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket_path(primary).display()))
            .args([
                "-uroot",
                "--single-transaction",
                "--gtid",
                "--master-data=1",
            ])
            .arg(format!("--result-file={}", dump.display()))
            .args(["--databases", TEST_DATABASE, "splitbrain_lab"]),
    )?;
    let loaded = socket_sql(
        node,
        &format!(
            "SET SESSION sql_log_bin=0; SOURCE {}; SELECT @@GLOBAL.gtid_slave_pos",
            dump.display()
        ),
    );
    let _ = std::fs::remove_file(&dump);
    let pos = loaded?.trim().to_owned();
    if !pos
        .chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
    {
        return Err(refuse(format!("the dump set gtid_slave_pos to `{pos}`")));
    }
    // A literal: `SET GLOBAL gtid_binlog_state=@@GLOBAL.gtid_slave_pos` hangs the
    // server (10.11.19).
    socket_sql(
        node,
        &format!(
            "RESET MASTER; SET GLOBAL gtid_binlog_state='{pos}'; {}",
            change_master(primary.addr)
        ),
    )?;
    let deadline = Instant::now() + REPLICATION_WAIT;
    let running = sys::poll(deadline, Duration::from_millis(50), || {
        let m = member_via_socket(node).map_err(refuse)?;
        let both =
            m.io_running.as_deref() == Some("Yes") && m.sql_running.as_deref() == Some("Yes");
        Ok(both.then_some(()))
    })?;
    running.ok_or_else(|| Error::Timeout {
        what: format!(
            "{} replicating from {} after its rejoin ({})",
            node.name,
            primary.name,
            slave_error(node)
        ),
        after: REPLICATION_WAIT,
    })
}

fn write_role(node: &Node, primary: bool) -> Result<()> {
    let path = role_path(node);
    std::fs::write(&path, role_sql(primary))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// The replication statement that makes a member a replica of `primary`.
fn change_master(primary: Ipv4Addr) -> String {
    format!(
        "CHANGE MASTER TO MASTER_HOST='{primary}', MASTER_PORT={PORT}, \
         MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{REPL_USER}', \
         MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1; \
         START SLAVE"
    )
}

/// Why a replica does not replicate, for an error message.
fn slave_error(node: &Node) -> String {
    match member_via_socket(node) {
        Ok(m) => m
            .replication_problem()
            .unwrap_or_else(|| "replication runs".into()),
        Err(e) => e,
    }
}

/// Run once by `mariadb-install-db` on every member, before any binlog exists: the
/// same users and empty tables everywhere, so replication starts from nothing.
/// (`FLUSH PRIVILEGES` loads the grant tables, which the bootstrap runs without.)
fn bootstrap_sql() -> String {
    format!(
        "FLUSH PRIVILEGES;\n\
         CREATE DATABASE {TEST_DATABASE};\n\
         CREATE TABLE {TEST_DATABASE}.registers (k VARCHAR(191) PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB;\n\
         CREATE TABLE {TEST_DATABASE}.sets (k VARCHAR(191) NOT NULL, e BIGINT NOT NULL, PRIMARY KEY (k, e)) ENGINE=InnoDB;\n\
         CREATE DATABASE splitbrain_lab;\n\
         CREATE TABLE splitbrain_lab.primary_member (id TINYINT PRIMARY KEY, epoch BIGINT NOT NULL, node VARCHAR(16) NOT NULL, addr VARCHAR(64) NOT NULL) ENGINE=InnoDB;\n\
         CREATE USER '{CLIENT_USER}'@'%' IDENTIFIED BY '{CLIENT_USER}';\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON {TEST_DATABASE}.* TO '{CLIENT_USER}'@'%';\n\
         GRANT SELECT ON splitbrain_lab.* TO '{CLIENT_USER}'@'%';\n\
         CREATE USER '{MONITOR_USER}'@'%' IDENTIFIED BY '{MONITOR_USER}';\n\
         GRANT SLAVE MONITOR ON *.* TO '{MONITOR_USER}'@'%';\n\
         GRANT SELECT ON splitbrain_lab.* TO '{MONITOR_USER}'@'%';\n\
         CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_USER}';\n\
         GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%';\n"
    )
}

/// `--init-file`, run at every start.
fn role_sql(primary: bool) -> String {
    format!("SET GLOBAL read_only={};\n", u8::from(!primary))
}

fn socket_path(node: &Node) -> PathBuf {
    member_dir(node).join("mysqld.sock")
}

fn role_path(node: &Node) -> PathBuf {
    member_dir(node).join("role.sql")
}

/// The sequence number of domain 0 in a GTID position (`0-1-42,1-3-7`): 0 if none.
pub(crate) fn seq_no(pos: &str) -> u64 {
    pos.split(',')
        .filter_map(|g| {
            let mut parts = g.trim().splitn(3, '-');
            let (d, _, s) = (parts.next()?, parts.next()?, parts.next()?);
            (d == "0").then(|| s.parse().ok()).flatten()
        })
        .max()
        .unwrap_or(0)
}

/// Runs `sql` on a member as root, through its socket (no network involved).
fn socket_sql(node: &Node, sql: &str) -> Result<String> {
    sys::run(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket_path(node).display()))
            .arg(format!("--connect-timeout={CONNECT_TIMEOUT_S}"))
            .args(["-uroot", "-N", "-B", "-e", sql]),
    )
}

/// What the lab asks each member: who it is, whom it follows, how far it is.
const STATUS_SQL: &str = "SELECT @@server_id AS server_id, @@read_only AS read_only, \
     @@gtid_current_pos AS gtid_current_pos, \
     IFNULL((SELECT CONCAT(epoch, ' ', addr) FROM splitbrain_lab.primary_member WHERE id = 1), '') AS primary_row; \
     SHOW SLAVE STATUS";

/// One member's answer to [`STATUS_SQL`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Member {
    server_id: u64,
    read_only: bool,
    gtid_current_pos: String,
    /// The epoch and address of the primary this member knows of.
    primary: Option<(u64, Ipv4Addr)>,
    /// Replication, when it is configured.
    master_host: Option<String>,
    io_running: Option<String>,
    sql_running: Option<String>,
    last_error: Option<String>,
    /// The SQL thread has applied everything received.
    relay_applied: bool,
}

impl Member {
    fn report(&self) -> Report {
        Report {
            member_id: self.server_id,
            leader: self.primary.map_or(0, |(_, a)| member_id(a)),
            term: self.primary.map_or(0, |(e, _)| e),
            index: seq_no(&self.gtid_current_pos),
        }
    }

    /// Why a replica is not replicating, or has not applied everything it received;
    /// `None` for a primary, or a replica that is caught up.
    fn replication_problem(&self) -> Option<String> {
        let host = self.master_host.as_deref()?;
        let io = self.io_running.as_deref().unwrap_or("?");
        let sql = self.sql_running.as_deref().unwrap_or("?");
        if io == "Yes" && sql == "Yes" && !self.relay_applied {
            // Replicating but behind: final reads right after a heal would read a
            // past the replica is still catching up from.
            return Some(format!("replica of {host}: applying its relay log"));
        }
        (io != "Yes" || sql != "Yes").then(|| {
            let mut why = format!("replica of {host}: io {io}, sql {sql}");
            if let Some(e) = self.last_error.as_deref().filter(|e| !e.is_empty()) {
                why.push_str(": ");
                why.push_str(e);
            }
            why
        })
    }
}

/// Parses `mariadb -B` output of [`STATUS_SQL`]: a header line and a row, then the
/// same for `SHOW SLAVE STATUS` if replication is configured.
fn parse_status(out: &str) -> Option<Member> {
    let lines: Vec<&str> = out.lines().collect();
    let fields = |header: &str, row: &str| -> Vec<(String, String)> {
        header
            .split('\t')
            .map(str::to_owned)
            .zip(row.split('\t').map(str::to_owned))
            .collect()
    };
    let first = fields(lines.first()?, lines.get(1)?);
    let get = |f: &[(String, String)], name: &str| {
        f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let mut m = Member {
        server_id: get(&first, "server_id")?.parse().ok()?,
        read_only: get(&first, "read_only")? == "1",
        gtid_current_pos: get(&first, "gtid_current_pos")?,
        primary: get(&first, "primary_row").and_then(|r| {
            let (e, a) = r.split_once(' ')?;
            Some((e.parse().ok()?, a.parse().ok()?))
        }),
        ..Member::default()
    };
    if let (Some(h), Some(r)) = (lines.get(2), lines.get(3)) {
        let slave = fields(h, r);
        m.master_host = get(&slave, "Master_Host").filter(|h| !h.is_empty());
        m.io_running = get(&slave, "Slave_IO_Running");
        m.sql_running = get(&slave, "Slave_SQL_Running");
        m.last_error = [get(&slave, "Last_IO_Error"), get(&slave, "Last_SQL_Error")]
            .into_iter()
            .flatten()
            .filter(|e| !e.is_empty())
            .reduce(|a, b| format!("{a}; {b}"));
        m.relay_applied = get(&slave, "Slave_SQL_Running_State")
            .is_some_and(|s| s.contains("read all relay log"));
    }
    Some(m)
}

fn member_via_socket(node: &Node) -> std::result::Result<Member, String> {
    let out = socket_sql_with_headers(node).map_err(|e| e.to_string())?;
    parse_status(&out).ok_or_else(|| format!("cannot parse the status of {}: {out}", node.name))
}

fn socket_sql_with_headers(node: &Node) -> Result<String> {
    sys::run(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket_path(node).display()))
            .arg(format!("--connect-timeout={CONNECT_TIMEOUT_S}"))
            .args(["-uroot", "-B", "-e", STATUS_SQL]),
    )
}

/// Asks every endpoint at once, over TCP as the monitor user (after the route check):
/// each answer, or why there is none. [`Error::Command`] when none answers at all.
fn ask_all(endpoints: &[&str]) -> Result<Vec<(String, MemberAnswer)>> {
    let mut addrs = Vec::new();
    for e in endpoints {
        ensure_target_url(e, false)?;
        let addr = endpoint_addr(e).ok_or_else(|| Error::Parse {
            command: "mariadb".into(),
            reason: format!("`{e}` is not ADDRESS:PORT"),
            output: String::new(),
        })?;
        addrs.push((e.to_string(), addr));
    }
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|(e, a)| (e.clone(), s.spawn(move || ask(*a))))
            .collect();
        handles
            .into_iter()
            .map(|(e, h)| (e, h.join().unwrap_or_else(|_| Err("panicked".into()))))
            .collect()
    });
    if !answers.is_empty() && answers.iter().all(|(_, a)| a.is_err()) {
        return Err(Error::Command {
            command: format!("mariadb status to {}", endpoints.join(",")),
            status: "no answer".into(),
            stderr: answers
                .iter()
                .map(|(e, a)| format!("{e}: {}", a.as_ref().err().cloned().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(answers)
}

fn ask(addr: SocketAddrV4) -> std::result::Result<Member, String> {
    let mut cmd = Command::new("mariadb");
    cmd.arg("--no-defaults")
        .arg(format!("--host={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg("--protocol=TCP")
        .arg(format!("--connect-timeout={CONNECT_TIMEOUT_S}"))
        .arg(format!("--user={MONITOR_USER}"))
        .arg(format!("--password={MONITOR_USER}"))
        .args(["-B", "-e", STATUS_SQL]);
    sys::without_proxies(&mut cmd);
    let out = sys::run(&mut cmd).map_err(|e| match e {
        Error::Command { stderr, .. } => stderr,
        e => e.to_string(),
    })?;
    parse_status(&out).ok_or_else(|| format!("cannot parse `{}`", out.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn node(i: u8) -> Node {
        crate::db::test_node(&MariaDb, i)
    }

    #[test]
    fn gtid_positions_give_domain_zero_s_sequence_number() {
        assert_eq!(seq_no("0-1-42"), 42);
        assert_eq!(seq_no("1-3-7,0-2-9"), 9);
        assert_eq!(seq_no(""), 0);
        assert_eq!(seq_no("garbage"), 0);
    }

    #[test]
    fn the_member_is_mariadbd_itself_with_everything_in_its_directory() {
        let nodes = [node(1), node(2)];
        let plan = MemberPlan {
            nodes: &nodes,
            prefix: "sb3",
            program: Path::new("/usr/sbin/mariadbd"),
            enable_v2: true,
            pre_vote: true,
            extra: &[],
        };
        let argv = MariaDb.member_argv(&nodes[1], &plan);
        assert_eq!(argv[0], "/usr/sbin/mariadbd");
        assert_eq!(argv[1], "--no-defaults");
        for want in [
            "--datadir=/run/x/n2/data",
            "--socket=/run/x/n2/mysqld.sock",
            "--tmpdir=/run/x/n2/tmp",
            "--init-file=/run/x/n2/role.sql",
            "--bind-address=10.77.3.2",
            "--server-id=2",
            "--gtid-strict-mode=1",
            "--log-slave-updates=1",
            "--read-only=1",
        ] {
            assert!(argv.iter().any(|a| a == want), "{want} missing: {argv:?}");
        }
        let files = MariaDb.config_files(&nodes[0], &nodes);
        assert_eq!(files[1].1, "SET GLOBAL read_only=0;\n");
        let files = MariaDb.config_files(&nodes[1], &nodes);
        assert_eq!(files[1].1, "SET GLOBAL read_only=1;\n");
        assert!(files[0]
            .1
            .contains("GRANT SELECT, INSERT, UPDATE, DELETE ON splitbrain.* TO 'splitbrain'@'%'"));
    }

    #[test]
    fn status_answers_parse() {
        let primary =
            "server_id\tread_only\tgtid_current_pos\tprimary_row\n1\t0\t0-1-17\t1 10.77.3.1\n";
        let m = parse_status(primary).unwrap();
        assert_eq!(
            m.report(),
            Report {
                member_id: 1,
                leader: 1,
                term: 1,
                index: 17
            }
        );
        assert_eq!(m.replication_problem(), None);
        let replica = "server_id\tread_only\tgtid_current_pos\tprimary_row\n\
            2\t1\t0-1-15\t1 10.77.3.1\n\
            Slave_IO_State\tMaster_Host\tMaster_User\tSlave_IO_Running\tSlave_SQL_Running\tLast_IO_Error\tLast_SQL_Error\tSlave_SQL_Running_State\n\
            Reconnecting\t10.77.3.1\tsb_repl\tConnecting\tYes\terror reconnecting to master\t\tSlave has read all relay log; waiting for more updates\n";
        let m = parse_status(replica).unwrap();
        assert_eq!(m.report().leader, 1);
        assert_eq!(m.report().index, 15);
        assert!(m.relay_applied);
        let why = m.replication_problem().unwrap();
        assert!(
            why.contains("io Connecting") && why.contains("error reconnecting"),
            "{why}"
        );
        assert_eq!(parse_status("garbage"), None);
        let fresh = "server_id\tread_only\tgtid_current_pos\tprimary_row\n3\t1\t\t\n";
        assert_eq!(parse_status(fresh).unwrap().report().leader, 0);
    }
}
