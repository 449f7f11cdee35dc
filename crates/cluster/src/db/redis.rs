//! The Redis plug-in: Redis 7.0 with Sentinel (Debian's `redis-server` and
//! `redis-sentinel`), primary-backup replication, the way Jepsen's 2013 Redis analysis
//! ran it. Each member is three things in its namespace:
//!
//! ```text
//!   redis-server   DIR/nI/redis.conf     port 6379   the member's main process (pid):
//!                                                    kill and pause act on it
//!   redis-sentinel DIR/nI/sentinel.conf  port 26379  an extra process of the member
//!   webdis         DIR/nI/webdis.json    port 7379   only in `redis-webdis`: Redis
//!                                                    over HTTP, in front of this
//!                                                    member's redis-server
//! ```
//!
//! Member `n1` starts as the primary, the others `replicaof` it. The sentinels
//! (quorum: a majority of the members) watch the primary under the name
//! [`MASTER_NAME`] and promote a replica when it is down for [`DOWN_AFTER_MS`].
//! Sentinel rewrites both config files on failover, so `up` writes them afresh for
//! every run; a restarted member reads what Sentinel last wrote, as in production.
//!
//! Readiness: each member's redis-server answers `ROLE`, its sentinel knows every
//! other sentinel and every replica, and a replica is connected to the primary its
//! sentinel names. The leader is the primary the sentinels name; the term is
//! Sentinel's `config-epoch`, which each failover raises, so a sentinel cut off with
//! an old primary loses to the majority's newer choice. Both are asked over RESP by
//! this file (a few lines: inline commands, one answer read).
//!
//! Two variants, two names: `redis` (clients speak RESP to port 6379, the `redis`
//! client) and `redis-webdis` (clients speak HTTP to webdis on port 7379, the generic
//! `http` client with `workloads/clients/webdis.toml`). A variant rather than an
//! option: a lab's client URLs name one port, and the plug-in is what says which.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use super::{member_dir, member_id, Database, Extra, Health, MemberPlan, Report};
use crate::error::{Error, Result};
use crate::net::ensure_target_url;
use crate::node::Node;
use crate::sys;
use crate::topology::Lab;

/// redis-server's port on each member's address.
pub(crate) const REDIS_PORT: u16 = 6379;
/// redis-sentinel's port.
pub(crate) const SENTINEL_PORT: u16 = 26379;
/// webdis's port (`redis-webdis`).
pub(crate) const WEBDIS_PORT: u16 = 7379;
/// The name the sentinels monitor the primary under; the `redis` client asks for it.
pub const MASTER_NAME: &str = "splitbrain";
/// How long the primary may be silent before a sentinel thinks it down: short, so a
/// failover happens within a fault of a few seconds.
const DOWN_AFTER_MS: u32 = 2000;
/// Sentinel's failover timeout; a failed attempt is retried after twice this.
const FAILOVER_TIMEOUT_MS: u32 = 6000;
/// How long one probe (connect, one command) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Redis with Sentinel; `webdis`: with a webdis per member, whose port is the
/// members' client port.
#[derive(Debug)]
pub(crate) struct Redis {
    pub webdis: bool,
}

impl Database for Redis {
    fn name(&self) -> &'static str {
        if self.webdis {
            "redis-webdis"
        } else {
            "redis"
        }
    }

    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        if self.webdis {
            &[
                ("redis-server", "redis-server"),
                ("redis-sentinel", "redis-sentinel"),
                ("webdis", "webdis"),
            ]
        } else {
            &[
                ("redis-server", "redis-server"),
                ("redis-sentinel", "redis-sentinel"),
            ]
        }
    }

    fn url_scheme(&self) -> &'static str {
        if self.webdis {
            "http"
        } else {
            "redis"
        }
    }

    fn client_port(&self) -> u16 {
        if self.webdis {
            WEBDIS_PORT
        } else {
            REDIS_PORT
        }
    }

    fn server_port(&self) -> u16 {
        REDIS_PORT
    }

    fn peer_port(&self) -> u16 {
        REDIS_PORT
    }

    fn log_file_name(&self) -> &'static str {
        "redis.log"
    }

    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String> {
        let mut argv = vec![
            plan.program.display().to_string(),
            redis_conf_path(node).display().to_string(),
        ];
        argv.extend(plan.extra.iter().cloned());
        argv
    }

    fn extra_processes(&self, node: &Node, _plan: &MemberPlan<'_>) -> Vec<Extra> {
        let mut extras = vec![Extra {
            name: "sentinel",
            argv: vec![
                program("redis-sentinel"),
                sentinel_conf_path(node).display().to_string(),
            ],
            log_file_name: "sentinel.log",
            port: SENTINEL_PORT,
        }];
        if self.webdis {
            extras.push(Extra {
                name: "webdis",
                argv: vec![
                    program("webdis"),
                    webdis_conf_path(node).display().to_string(),
                ],
                // webdis writes its own log (its `logfile`); this one gets what it
                // prints before opening it.
                log_file_name: "webdis.out",
                port: WEBDIS_PORT,
            });
        }
        extras
    }

    fn config_files(&self, node: &Node, nodes: &[Node]) -> Vec<(PathBuf, String)> {
        let mut files = vec![
            (redis_conf_path(node), redis_conf(node, nodes)),
            (sentinel_conf_path(node), sentinel_conf(node, nodes)),
        ];
        if self.webdis {
            files.push((webdis_conf_path(node), webdis_conf(node)));
        }
        files
    }

    fn serving_log_line(&self) -> Option<&'static str> {
        None
    }

    /// Removes the old data and makes the directory afresh: redis-server refuses to
    /// start when its `dir` is missing.
    fn wipe(&self, node: &Node) -> Result<()> {
        match std::fs::remove_dir_all(&node.data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format!("cannot remove old data {}", node.data_dir.display()),
                    e,
                ))
            }
            _ => {}
        }
        std::fs::create_dir_all(&node.data_dir)
            .map_err(|e| Error::io(format!("cannot create {}", node.data_dir.display()), e))
    }

    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        let answers = ask_all(endpoints, member_view)?;
        let primaries: Vec<Ipv4Addr> = answers
            .iter()
            .filter_map(|(_, v)| v.as_ref().ok()?.sentinel_primary)
            .collect();
        // What the primary says of its replicas: the offset each acknowledged.
        let primary = answers.iter().find_map(|(_, v)| {
            let v = v.as_ref().ok()?;
            (v.role == "master" && Some(v.addr) == v.sentinel_primary).then_some(v)
        });
        Ok(answers
            .iter()
            .map(|(endpoint, view)| {
                let endpoint = endpoint.clone();
                let error = match view {
                    Err(e) => Some(e.clone()),
                    Ok(v) => v
                        .unhealthy(endpoints.len(), &primaries)
                        .or_else(|| v.behind(primary)),
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
        let answers = ask_all(endpoints, member_view)?;
        Ok(answers
            .into_iter()
            .filter_map(|(endpoint, view)| {
                let v = view.ok()?;
                Some((
                    endpoint,
                    Report {
                        member_id: member_id(v.addr),
                        leader: v.sentinel_primary.map_or(0, member_id),
                        term: v.config_epoch.unwrap_or(0),
                        index: v.offset.unwrap_or(0),
                    },
                ))
            })
            .collect())
    }

    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        Ok(endpoints
            .iter()
            .filter_map(|e| endpoint_ip(e))
            .map(|ip| (member_id(ip), Lab::node_name(member_id(ip) as usize)))
            .collect())
    }

    fn render_log_line(&self, line: &str) -> String {
        render_log_line(line)
    }

    fn looks_like_a_cause(&self, line: &str) -> bool {
        // Redis marks warnings with `#`: `123:M 06 Dec 2026 03:40:01.123 # msg`.
        line.contains(" # ")
            || line.contains("FATAL")
            || line.contains("Bad directive")
            || line.contains("Address already in use")
    }
}

/// The program's path, found on the `PATH`. `up` checked that it is there (see
/// `programs`, which names the package); should it vanish in between, the bare name
/// makes the spawn fail with "no such file" for that name rather than a guessed path.
fn program(name: &str) -> String {
    sys::find_program(name)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| name.to_owned())
}

fn redis_conf_path(node: &Node) -> PathBuf {
    member_dir(node).join("redis.conf")
}

fn sentinel_conf_path(node: &Node) -> PathBuf {
    member_dir(node).join("sentinel.conf")
}

fn webdis_conf_path(node: &Node) -> PathBuf {
    member_dir(node).join("webdis.json")
}

/// The sentinels' quorum: a majority of the members (2 of 3, 3 of 5; 1 alone).
fn quorum(members: usize) -> usize {
    members / 2 + 1
}

/// redis-server's configuration. Persistence is the append-only file, fsynced every
/// second (a usual production choice): a killed member restarts with its data, less
/// at most the last second. `set-proc-title no` keeps the command line as started,
/// which is how the lab recognises its processes.
pub(crate) fn redis_conf(node: &Node, nodes: &[Node]) -> String {
    let mut cfg = format!(
        "# written by splitbrain for lab member {name}; Sentinel may rewrite it\n\
         bind {addr}\n\
         port {REDIS_PORT}\n\
         protected-mode no\n\
         daemonize no\n\
         set-proc-title no\n\
         logfile \"\"\n\
         dir {data}\n\
         save \"\"\n\
         appendonly yes\n\
         appendfsync everysec\n\
         repl-diskless-sync-delay 0\n\
         replica-announce-ip {addr}\n",
        name = node.name,
        addr = node.addr,
        data = node.data_dir.display(),
    );
    if let Some(first) = nodes.first().filter(|f| f.name != node.name) {
        cfg.push_str(&format!("replicaof {} {REDIS_PORT}\n", first.addr));
    }
    cfg
}

/// The sentinel's configuration: it monitors the first member as the primary.
pub(crate) fn sentinel_conf(node: &Node, nodes: &[Node]) -> String {
    let first = nodes.first().map_or(node.addr, |f| f.addr);
    format!(
        "# written by splitbrain for lab member {name}; Sentinel rewrites it\n\
         bind {addr}\n\
         port {SENTINEL_PORT}\n\
         protected-mode no\n\
         daemonize no\n\
         set-proc-title no\n\
         logfile \"\"\n\
         dir {dir}\n\
         sentinel resolve-hostnames no\n\
         sentinel announce-ip {addr}\n\
         sentinel monitor {MASTER_NAME} {first} {REDIS_PORT} {quorum}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        name = node.name,
        addr = node.addr,
        dir = member_dir(node).display(),
        quorum = quorum(nodes.len()),
    )
}

/// webdis's configuration: this member's redis-server, HTTP on the member's address.
pub(crate) fn webdis_conf(node: &Node) -> String {
    serde_json::json!({
        "redis_host": node.addr.to_string(),
        "redis_port": REDIS_PORT,
        "http_host": node.addr.to_string(),
        "http_port": WEBDIS_PORT,
        "threads": 2,
        "pool_size": 10,
        "daemonize": false,
        "websockets": false,
        "database": 0,
        "verbosity": 4,
        "logfile": member_dir(node).join("webdis.log").display().to_string(),
    })
    .to_string()
}

/// `123:M 06 Dec 2026 03:40:01.123 * Ready to accept connections` as
/// `03:40:01.123 * Ready to accept connections`.
pub(crate) fn render_log_line(line: &str) -> String {
    let mut parts = line.splitn(6, ' ');
    let (Some(pid_role), Some(_day), Some(_month), Some(_year), Some(time), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return line.to_owned();
    };
    if !pid_role.contains(':') || time.len() != 12 {
        return line.to_owned();
    }
    format!("{time} {rest}")
}

/// The member's address, from `SCHEME://ADDR:PORT`.
fn endpoint_ip(endpoint: &str) -> Option<Ipv4Addr> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    host.parse().ok()
}

/// What one member's redis-server and sentinel say.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberView {
    addr: Ipv4Addr,
    /// `master` or `slave`.
    role: String,
    /// A replica: the primary it replicates, and whether its link is up.
    replicates: Option<(Ipv4Addr, bool)>,
    /// Its replication offset.
    offset: Option<u64>,
    /// The primary its sentinel names.
    sentinel_primary: Option<Ipv4Addr>,
    /// A primary: each replica's address and the offset it acknowledged.
    replica_acks: Vec<(Ipv4Addr, u64)>,
    /// The sentinel's config epoch for the primary.
    config_epoch: Option<u64>,
    /// How many other sentinels and replicas its sentinel knows.
    other_sentinels: usize,
    replicas: usize,
}

impl MemberView {
    /// Why a replica is not caught up with `primary`, if it is not: the primary must
    /// list it with an acknowledged offset equal to its own. A replica whose link
    /// came back after a partition may be "connected" and still far behind (TCP
    /// retransmits back off), and the final reads must not see that as a loss.
    fn behind(&self, primary: Option<&MemberView>) -> Option<String> {
        if self.role != "slave" {
            return None;
        }
        let Some(p) = primary else {
            return Some("no primary answered".into());
        };
        let primary_offset = p.offset.unwrap_or(0);
        match p.replica_acks.iter().find(|(ip, _)| *ip == self.addr) {
            Some((_, acked)) if *acked >= primary_offset => None,
            Some((_, acked)) => Some(format!(
                "replication offset {acked} behind the primary's {primary_offset}"
            )),
            None => Some(format!("not among {}'s replicas", p.addr)),
        }
    }

    /// Why this member is not ready, if it is not (`members`: the cluster's size,
    /// `primaries`: the primaries every answering sentinel names).
    fn unhealthy(&self, members: usize, primaries: &[Ipv4Addr]) -> Option<String> {
        let Some(primary) = self.sentinel_primary else {
            return Some("its sentinel names no primary".into());
        };
        if primaries.iter().any(|p| *p != primary) {
            return Some("the sentinels disagree on the primary".into());
        }
        if self.other_sentinels + 1 < members {
            return Some(format!(
                "its sentinel knows {} of {} other sentinels",
                self.other_sentinels,
                members - 1
            ));
        }
        if self.replicas + 1 < members {
            return Some(format!(
                "its sentinel knows {} of {} replicas",
                self.replicas,
                members - 1
            ));
        }
        match (self.role.as_str(), self.replicates) {
            ("master", _) if self.addr == primary => None,
            ("master", _) => Some(format!("a primary, but the sentinels name {primary}")),
            ("slave", Some((of, true))) if of == primary => None,
            ("slave", Some((of, true))) => {
                Some(format!("replicates {of}, but the sentinels name {primary}"))
            }
            ("slave", _) => Some("its replication link is down".into()),
            (role, _) => Some(format!("role {role}")),
        }
    }
}

/// Asks every endpoint in parallel (a member cut off costs each probe its timeout).
/// [`Error::Command`] when none answers at all.
fn ask_all<T: Send>(
    endpoints: &[&str],
    ask: fn(Ipv4Addr) -> std::result::Result<T, String>,
) -> Result<Vec<(String, std::result::Result<T, String>)>> {
    let mut ips = Vec::new();
    for e in endpoints {
        ensure_target_url(e, false)?;
        ips.push(endpoint_ip(e).ok_or_else(|| Error::InvalidConfig(format!("bad endpoint {e}")))?);
    }
    let answers: Vec<std::result::Result<T, String>> = std::thread::scope(|s| {
        let asked: Vec<_> = ips.iter().map(|ip| s.spawn(move || ask(*ip))).collect();
        asked
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("probe panicked".into())))
            .collect()
    });
    if !answers.is_empty() && answers.iter().all(|a| a.is_err()) {
        let why = answers
            .iter()
            .find_map(|a| a.as_ref().err().cloned())
            .unwrap_or_default();
        return Err(Error::Command {
            command: format!("ROLE on {}", endpoints.join(",")),
            status: "no member answered".into(),
            stderr: why,
        });
    }
    Ok(endpoints
        .iter()
        .map(|e| (*e).to_owned())
        .zip(answers)
        .collect())
}

/// `ROLE` from the member's redis-server, `SENTINEL MASTER` from its sentinel.
fn member_view(addr: Ipv4Addr) -> std::result::Result<MemberView, String> {
    let role = command(SocketAddrV4::new(addr, REDIS_PORT), "ROLE")?;
    let master = command(
        SocketAddrV4::new(addr, SENTINEL_PORT),
        &format!("SENTINEL MASTER {MASTER_NAME}"),
    )?;
    view_of(addr, &role, &master)
}

fn view_of(addr: Ipv4Addr, role: &Resp, master: &Resp) -> std::result::Result<MemberView, String> {
    let Resp::Array(role) = role else {
        return Err(format!("ROLE answered {role:?}"));
    };
    let kind = role.first().and_then(Resp::text).unwrap_or_default();
    let mut replica_acks = Vec::new();
    let (replicates, offset) = match kind.as_str() {
        // ["master", offset, [[ip, port, offset], ...]]
        "master" => {
            if let Some(Resp::Array(replicas)) = role.get(2) {
                for r in replicas {
                    if let Resp::Array(r) = r {
                        let ip = r.first().and_then(Resp::text).and_then(|s| s.parse().ok());
                        if let (Some(ip), Some(acked)) = (ip, r.get(2).and_then(Resp::int)) {
                            replica_acks.push((ip, acked));
                        }
                    }
                }
            }
            (None, role.get(1).and_then(Resp::int))
        }
        // ["slave", ip, port, "connected"|"connect"|"sync"|..., offset]
        "slave" => {
            let ip = role
                .get(1)
                .and_then(Resp::text)
                .and_then(|s| s.parse().ok());
            let up = role.get(3).and_then(Resp::text).as_deref() == Some("connected");
            (ip.map(|ip| (ip, up)), role.get(4).and_then(Resp::int))
        }
        other => return Err(format!("ROLE says `{other}`")),
    };
    let fields = match master {
        Resp::Array(items) => items,
        Resp::Error(e) => return Err(format!("its sentinel: {e}")),
        other => return Err(format!("SENTINEL MASTER answered {other:?}")),
    };
    let field = |name: &str| {
        fields
            .chunks(2)
            .find(|kv| kv[0].text().as_deref() == Some(name))
            .and_then(|kv| kv.get(1)?.text())
    };
    let count = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(MemberView {
        addr,
        role: kind,
        replicates,
        offset,
        replica_acks,
        sentinel_primary: field("ip").and_then(|ip| ip.parse().ok()),
        config_epoch: field("config-epoch").and_then(|v| v.parse().ok()),
        other_sentinels: count("num-other-sentinels"),
        replicas: count("num-slaves"),
    })
}

/// A RESP answer, as far as the probes need.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Resp>),
}

impl Resp {
    fn text(&self) -> Option<String> {
        match self {
            Resp::Simple(s) | Resp::Bulk(Some(s)) => Some(s.clone()),
            Resp::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    fn int(&self) -> Option<u64> {
        match self {
            Resp::Int(i) => u64::try_from(*i).ok(),
            other => other.text()?.parse().ok(),
        }
    }
}

/// One inline command to `addr` (after the route check), its answer.
fn command(addr: SocketAddrV4, line: &str) -> std::result::Result<Resp, String> {
    ensure_target_url(&addr.to_string(), false).map_err(|e| e.to_string())?;
    let stream = TcpStream::connect_timeout(&addr.into(), PROBE_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{addr}: {e}");
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    (&stream)
        .write_all(format!("{line}\r\n").as_bytes())
        .map_err(io)?;
    let mut reader = BufReader::new(&stream);
    read_resp(&mut reader, 0).map_err(|e| format!("{addr}: {e}"))
}

/// One RESP value. Nesting is bounded: the probes' answers are two levels deep.
fn read_resp(r: &mut impl BufRead, depth: usize) -> std::result::Result<Resp, String> {
    if depth > 4 {
        return Err("answer nested too deeply".into());
    }
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or("connection closed")?;
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("bad answer `{line}`"))
    };
    Ok(match kind {
        "+" => Resp::Simple(rest.to_owned()),
        "-" => Resp::Error(rest.to_owned()),
        ":" => Resp::Int(number()?),
        "$" => match number()? {
            n if n < 0 => Resp::Bulk(None),
            n if n > 1 << 20 => return Err(format!("bulk of {n} bytes")),
            n => {
                let mut buf = vec![0; n as usize + 2];
                std::io::Read::read_exact(r, &mut buf).map_err(|e| e.to_string())?;
                buf.truncate(n as usize);
                Resp::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        },
        "*" => match number()? {
            n if n < 0 => Resp::Array(Vec::new()),
            n if n > 10_000 => return Err(format!("array of {n} items")),
            n => Resp::Array(
                (0..n)
                    .map(|_| read_resp(r, depth + 1))
                    .collect::<std::result::Result<_, _>>()?,
            ),
        },
        _ => return Err(format!("not RESP: `{line}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> Node {
        crate::db::test_node(&Redis { webdis: false }, i)
    }

    #[test]
    fn the_first_member_is_the_primary_and_the_sentinels_watch_it() {
        let nodes = [node(1), node(2), node(3)];
        let first = redis_conf(&nodes[0], &nodes);
        assert!(first.contains("bind 10.77.3.1\n"), "{first}");
        assert!(first.contains("protected-mode no\n"), "{first}");
        assert!(first.contains("repl-diskless-sync-delay 0\n"), "{first}");
        assert!(first.contains("replica-announce-ip 10.77.3.1\n"), "{first}");
        assert!(first.contains("set-proc-title no\n"), "{first}");
        assert!(!first.contains("replicaof"), "{first}");
        let second = redis_conf(&nodes[1], &nodes);
        assert!(second.contains("replicaof 10.77.3.1 6379\n"), "{second}");
        let s = sentinel_conf(&nodes[2], &nodes);
        assert!(
            s.contains("sentinel monitor splitbrain 10.77.3.1 6379 2\n"),
            "{s}"
        );
        assert!(s.contains("sentinel announce-ip 10.77.3.3\n"), "{s}");
        assert!(
            s.contains("sentinel down-after-milliseconds splitbrain 2000\n"),
            "{s}"
        );
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(5), 3);
    }

    #[test]
    fn webdis_fronts_its_own_member() {
        let web = Redis { webdis: true };
        let n = crate::db::test_node(&web, 2);
        assert_eq!(n.client_url, "http://10.77.3.2:7379");
        let conf: serde_json::Value = serde_json::from_str(&webdis_conf(&n)).unwrap();
        assert_eq!(conf["redis_host"], "10.77.3.2");
        assert_eq!(conf["http_port"], 7379);
        assert_eq!(conf["daemonize"], false);
        let nodes = [n.clone()];
        let plan = MemberPlan {
            nodes: &nodes,
            prefix: "sb3",
            program: std::path::Path::new("/usr/bin/redis-server"),
            enable_v2: false,
            pre_vote: false,
            extra: &[],
        };
        let extras: Vec<&str> = web
            .extra_processes(&n, &plan)
            .iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(extras, ["sentinel", "webdis"]);
        assert_eq!(Redis { webdis: false }.extra_processes(&n, &plan).len(), 1);
        assert_eq!(
            web.member_argv(&n, &plan).join(" "),
            "/usr/bin/redis-server /run/x/n2/redis.conf"
        );
    }

    fn parse(raw: &str) -> Resp {
        read_resp(&mut raw.as_bytes(), 0).unwrap()
    }

    #[test]
    fn role_and_sentinel_answers_make_a_view() {
        // Captured from redis 7.0.15: ROLE on a replica, SENTINEL MASTER (abridged).
        let role =
            parse("*5\r\n$5\r\nslave\r\n$9\r\n10.77.3.1\r\n:6379\r\n$9\r\nconnected\r\n:1234\r\n");
        let master = parse(
            "*8\r\n$2\r\nip\r\n$9\r\n10.77.3.1\r\n$12\r\nconfig-epoch\r\n$1\r\n3\r\n\
             $19\r\nnum-other-sentinels\r\n$1\r\n2\r\n$10\r\nnum-slaves\r\n$1\r\n2\r\n",
        );
        let v = view_of(Ipv4Addr::new(10, 77, 3, 2), &role, &master).unwrap();
        assert_eq!(v.replicates, Some((Ipv4Addr::new(10, 77, 3, 1), true)));
        assert_eq!(v.offset, Some(1234));
        assert_eq!(v.config_epoch, Some(3));
        let p1 = Ipv4Addr::new(10, 77, 3, 1);
        assert_eq!(v.unhealthy(3, &[p1]), None);
        assert!(v.unhealthy(5, &[p1]).unwrap().contains("sentinels"));
        let p3 = Ipv4Addr::new(10, 77, 3, 3);
        assert!(v.unhealthy(3, &[p1, p3]).unwrap().contains("disagree"));

        let primary = parse("*3\r\n$6\r\nmaster\r\n:99\r\n*0\r\n");
        let v = view_of(Ipv4Addr::new(10, 77, 3, 2), &primary, &master).unwrap();
        assert!(v.unhealthy(3, &[p1]).unwrap().contains("sentinels name"));
        // The primary lists the replica at 1234 of its 1300: behind; at 1300: caught up.
        let replica = view_of(Ipv4Addr::new(10, 77, 3, 2), &role, &master).unwrap();
        let acks = |acked: &str| {
            parse(&format!(
                "*3\r\n$6\r\nmaster\r\n:1300\r\n*1\r\n*3\r\n$9\r\n10.77.3.2\r\n$4\r\n6379\r\n${}\r\n{acked}\r\n",
                acked.len()
            ))
        };
        let p = view_of(p1, &acks("1234"), &master).unwrap();
        assert!(replica.behind(Some(&p)).unwrap().contains("behind"));
        let p = view_of(p1, &acks("1300"), &master).unwrap();
        assert_eq!(replica.behind(Some(&p)), None);
        assert!(replica.behind(None).is_some());
        let err = parse("-ERR No such master with that name\r\n");
        assert!(view_of(p1, &primary, &err).is_err());
        assert!(read_resp(&mut "?x\r\n".as_bytes(), 0).is_err());
        assert!(read_resp(&mut "".as_bytes(), 0).is_err());
    }

    #[test]
    fn log_lines_lose_pid_and_date() {
        assert_eq!(
            render_log_line("4242:M 06 Dec 2026 03:40:01.123 * Ready to accept connections tcp"),
            "03:40:01.123 * Ready to accept connections tcp"
        );
        assert_eq!(render_log_line("oops"), "oops");
        assert!(Redis { webdis: false }.looks_like_a_cause("1:X 06 Dec 2026 03:40:01.123 # +sdown"));
    }
}
