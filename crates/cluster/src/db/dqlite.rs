//! The dqlite plug-in: `dqlite-demo` from Debian's `go-dqlite` (1.11), a Raft-replicated
//! SQLite table `model(key, value)` behind a plain-text HTTP API (`PUT /KEY` with the
//! value as body, `GET /KEY`). Every member's API forwards to the leader through the
//! dqlite driver, so any member serves every request while a leader is reachable.
//!
//! - Command line: `dqlite-demo --api ADDR:8001 --db ADDR:9001 --dir DATA -v`; members
//!   after the first add `--join FIRST:9001`. The data lives in `DATA/ADDR:9001/`; a
//!   restarted member finds its `info.yaml` there and ignores `--join`.
//! - Readiness: the API listens only once the member joined and the schema exists; then
//!   a `GET` of a probe key must answer (a value, or `Error: sql: no rows in result
//!   set`, which is how 1.11 says "absent", with status 200).
//! - Leader: the `dqlite` shell (same package), `.leader;.cluster` through each member's
//!   database address, which answers only when a leader confirmed itself. dqlite shows
//!   no Raft term: every report says term 1, so the lab trusts the leader a member
//!   reached (a member cut off from the leader answers nothing).
//! - Log: `-v` lines on stderr, `2026/12/06 01:11:02 API: LEVEL: message`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Database, Health, MemberPlan, Report};
use crate::error::{Error, Result};
use crate::net::ensure_target_url;
use crate::node::Node;
use crate::sys;

/// The HTTP API's port on each member's address.
const API_PORT: u16 = 8001;
/// The port members replicate on (dqlite's own protocol).
const DB_PORT: u16 = 9001;
/// How long one probe (an HTTP GET, a `dqlite` shell call) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The key the readiness probe reads; workloads use other keys.
const PROBE_KEY: &str = "splitbrain-probe";
/// dqlite-demo 1.11 answers a GET of an absent key with this, status 200.
const ABSENT: &str = "sql: no rows in result set";

#[derive(Debug)]
pub(crate) struct Dqlite;

impl Database for Dqlite {
    fn name(&self) -> &'static str {
        "dqlite"
    }

    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[("dqlite-demo", "go-dqlite"), ("dqlite", "go-dqlite")]
    }

    fn client_port(&self) -> u16 {
        API_PORT
    }

    fn peer_port(&self) -> u16 {
        DB_PORT
    }

    fn log_file_name(&self) -> &'static str {
        "dqlite.log"
    }

    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String> {
        let mut argv = vec![
            plan.program.display().to_string(),
            "--api".into(),
            format!("{}:{API_PORT}", node.addr),
            "--db".into(),
            format!("{}:{DB_PORT}", node.addr),
            "--dir".into(),
            node.data_dir.display().to_string(),
            "--verbose".into(),
        ];
        // The first member bootstraps the cluster; the others join through it (and
        // ignore `--join` once their data exists, so a restart keeps this command line).
        if let Some(first) = plan.nodes.first().filter(|f| f.name != node.name) {
            argv.extend(["--join".into(), format!("{}:{DB_PORT}", first.addr)]);
        }
        argv.extend(plan.extra.iter().cloned());
        argv
    }

    fn serving_log_line(&self) -> Option<&'static str> {
        None
    }

    fn start_one_by_one(&self) -> bool {
        // Two members joining at once: one exits with "database is locked".
        true
    }

    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        for e in endpoints {
            ensure_target_url(e, false)?;
        }
        let answers: Vec<Health> = std::thread::scope(|s| {
            let asked: Vec<_> = endpoints
                .iter()
                .map(|e| s.spawn(move || probe(e)))
                .collect();
            asked
                .into_iter()
                .zip(endpoints)
                .map(|(h, e)| {
                    h.join().unwrap_or_else(|_| Health {
                        endpoint: (*e).to_owned(),
                        health: false,
                        error: Some("probe panicked".into()),
                    })
                })
                .collect()
        });
        if !answers.is_empty()
            && answers
                .iter()
                .all(|h| h.error.as_deref().is_some_and(|e| e.starts_with("connect")))
        {
            return Err(Error::Command {
                command: format!("GET /{PROBE_KEY} on {}", endpoints.join(",")),
                status: "no member answered".into(),
                stderr: answers[0].error.clone().unwrap_or_default(),
            });
        }
        Ok(answers)
    }

    fn reports(&self, endpoints: &[&str]) -> Result<Vec<(String, Report)>> {
        for e in endpoints {
            ensure_target_url(e, false)?;
        }
        let shell = sys::require_program("dqlite", "go-dqlite")?;
        let answers: Vec<Result<Option<Report>>> = std::thread::scope(|s| {
            let asked: Vec<_> = endpoints
                .iter()
                .map(|e| {
                    let shell = &shell;
                    s.spawn(move || member_report(shell, e))
                })
                .collect();
            asked
                .into_iter()
                .map(|h| h.join().unwrap_or(Ok(None)))
                .collect()
        });
        let mut reports = Vec::new();
        for (e, r) in endpoints.iter().zip(answers) {
            if let Some(r) = r? {
                reports.push(((*e).to_owned(), r));
            }
        }
        if reports.is_empty() && !endpoints.is_empty() {
            return Err(Error::Command {
                command: format!("dqlite -s {} demo .leader", db_addrs(endpoints).join(",")),
                status: "no member answered".into(),
                stderr: "no member reached a leader".into(),
            });
        }
        Ok(reports)
    }

    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        for e in endpoints {
            ensure_target_url(e, false)?;
        }
        let shell = sys::require_program("dqlite", "go-dqlite")?;
        let servers = db_addrs(endpoints).join(",");
        let out = shell_output(&shell, &servers, ".leader;.cluster")?;
        let (_, members) = parse_leader_and_cluster(&out).map_err(|reason| Error::Parse {
            command: format!("dqlite -s {servers} -f json demo .leader;.cluster"),
            reason,
            output: out.chars().take(500).collect(),
        })?;
        Ok(members
            .into_iter()
            .filter_map(|m| Some((m.id, node_name_of(&m.address)?)))
            .collect())
    }

    fn render_log_line(&self, line: &str) -> String {
        render_log_line(line)
    }

    fn looks_like_a_cause(&self, line: &str) -> bool {
        let l = line.to_ascii_lowercase();
        [
            "error",
            "panic",
            "fatal",
            "unknown flag",
            "address already in use",
        ]
        .iter()
        .any(|k| l.contains(k))
    }
}

/// `2026/12/06 01:11:02 10.77.1.1:8001: DEBUG: message` as `01:11:02 debug message`.
pub(crate) fn render_log_line(line: &str) -> String {
    let mut parts = line.splitn(5, ' ');
    let (Some(date), Some(time), Some(_api), Some(level), Some(msg)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return line.to_owned();
    };
    if date.len() != 10 || !level.ends_with(':') {
        return line.to_owned();
    }
    format!(
        "{time} {} {}",
        level.trim_end_matches(':').to_ascii_lowercase(),
        msg.trim_end()
    )
}

/// One member's readiness: a GET of the probe key through its API (which goes to the
/// leader) answers a value or "absent".
fn probe(endpoint: &str) -> Health {
    let health = |error: Option<String>| Health {
        endpoint: endpoint.to_owned(),
        health: error.is_none(),
        error,
    };
    match http_get(endpoint, PROBE_KEY) {
        Ok((200, body)) if !body.starts_with("Error:") || body.contains(ABSENT) => health(None),
        Ok((status, body)) => health(Some(format!("HTTP {status}: {}", body.trim()))),
        Err(e) => health(Some(e)),
    }
}

/// A bare HTTP/1.0 GET with timeouts (the probe needs nothing more); `Err` starts with
/// `connect` when nothing listens.
fn http_get(endpoint: &str, key: &str) -> std::result::Result<(u16, String), String> {
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, r)| r)
        .trim_end_matches('/');
    let addr: SocketAddr = authority
        .parse()
        .map_err(|e| format!("bad endpoint {endpoint}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("{addr}: no answer within {PROBE_TIMEOUT:?} (no leader reachable?)")
        }
        _ => format!("{addr}: {e}"),
    };
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "GET /{key} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_http(&raw).ok_or_else(|| format!("{addr}: not an HTTP answer"))
}

fn parse_http(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// The database address (`HOST:9001`) of a member, from its API URL.
fn db_addr(endpoint: &str) -> String {
    let authority = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = authority
        .trim_end_matches('/')
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h);
    format!("{host}:{DB_PORT}")
}

fn db_addrs(endpoints: &[&str]) -> Vec<String> {
    endpoints.iter().map(|e| db_addr(e)).collect()
}

/// A lab member's name from its database address: member `i` has address `10.77.N.i`.
fn node_name_of(address: &str) -> Option<String> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let last = host.parse::<std::net::Ipv4Addr>().ok()?.octets()[3];
    Some(crate::topology::Lab::node_name(usize::from(last)))
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Member {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(rename = "Address")]
    address: String,
}

/// The `dqlite` shell's answer to `.leader;.cluster` in JSON format: the leader's
/// address on the first line, then the members.
fn parse_leader_and_cluster(out: &str) -> std::result::Result<(String, Vec<Member>), String> {
    let (leader, rest) = out.trim().split_once('\n').ok_or("expected two answers")?;
    let members: Vec<Member> = serde_json::from_str(rest).map_err(|e| e.to_string())?;
    Ok((leader.trim().to_owned(), members))
}

/// What the member at `endpoint` says: `None` when it reaches no leader in time.
fn member_report(shell: &std::path::Path, endpoint: &str) -> Result<Option<Report>> {
    let me = db_addr(endpoint);
    let out = match shell_output(shell, &me, ".leader;.cluster") {
        Ok(out) => out,
        Err(Error::Command { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Ok((leader, members)) = parse_leader_and_cluster(&out) else {
        return Ok(None);
    };
    let id_of = |a: &str| members.iter().find(|m| m.address == a).map(|m| m.id);
    Ok(id_of(&me).map(|member_id| Report {
        member_id,
        leader: id_of(&leader).unwrap_or(0),
        term: 1,
        index: 0,
    }))
}

/// Runs `dqlite -s SERVERS -f json demo COMMANDS`, killing it after [`PROBE_TIMEOUT`]:
/// the shell waits for a leader for ever. [`Error::Command`] when it fails or times out.
fn shell_output(shell: &std::path::Path, servers: &str, commands: &str) -> Result<String> {
    let mut cmd = Command::new(shell);
    sys::without_proxies(&mut cmd)
        .args(["-s", servers, "-f", "json", "demo", commands])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // It must not outlive this process either (a SIGKILLed harness would leave it
    // waiting for a leader for ever).
    // SAFETY: between fork and exec, only the async-signal-safe prctl.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let described = sys::describe(&cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {described}"), e))?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    match status {
        Some(s) if s.success() && !stdout.trim().is_empty() => Ok(stdout),
        Some(s) => Err(Error::Command {
            command: described,
            status: s.to_string(),
            stderr: stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("no output")
                .to_owned(),
        }),
        None => Err(Error::Command {
            command: described,
            status: format!("no answer within {PROBE_TIMEOUT:?}"),
            stderr: "no leader reachable".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn node(i: u8) -> Node {
        crate::db::test_node(&Dqlite, i)
    }

    #[test]
    fn the_first_member_bootstraps_and_the_others_join_it() {
        let nodes = [node(1), node(2), node(3)];
        let plan = MemberPlan {
            nodes: &nodes,
            prefix: "sb3",
            program: Path::new("/usr/bin/dqlite-demo"),
            enable_v2: false,
            pre_vote: false,
            extra: &[],
        };
        let first = Dqlite.member_argv(&nodes[0], &plan).join(" ");
        assert_eq!(
            first,
            "/usr/bin/dqlite-demo --api 10.77.3.1:8001 --db 10.77.3.1:9001 --dir /run/x/n1/data --verbose"
        );
        let third = Dqlite.member_argv(&nodes[2], &plan).join(" ");
        assert!(
            third.contains("--api 10.77.3.3:8001 --db 10.77.3.3:9001"),
            "{third}"
        );
        assert!(third.ends_with("--join 10.77.3.1:9001"), "{third}");
    }

    #[test]
    fn the_shell_answer_names_leader_and_members() {
        // Captured from dqlite (go-dqlite 1.11.5) with `-f json demo '.leader;.cluster'`.
        let out = "127.0.0.1:19001\n[\n\t{\n\t\t\"ID\": 3297041220608546238,\n\t\t\"Address\": \"127.0.0.1:19001\",\n\t\t\"Role\": 0\n\t},\n\t{\n\t\t\"ID\": 2141285997527644926,\n\t\t\"Address\": \"127.0.0.1:19002\",\n\t\t\"Role\": 0\n\t}\n]\n";
        let (leader, members) = parse_leader_and_cluster(out).unwrap();
        assert_eq!(leader, "127.0.0.1:19001");
        assert_eq!(members[1].id, 2141285997527644926);
        assert_eq!(members[1].address, "127.0.0.1:19002");
        assert!(parse_leader_and_cluster("127.0.0.1:19001\n").is_err());
        assert!(parse_leader_and_cluster("x\nnot json").is_err());
    }

    #[test]
    fn addresses_map_to_db_addresses_and_node_names() {
        assert_eq!(db_addr("http://10.77.3.2:8001"), "10.77.3.2:9001");
        assert_eq!(node_name_of("10.77.3.2:9001").as_deref(), Some("n2"));
        assert_eq!(node_name_of("nonsense"), None);
    }

    #[test]
    fn http_answers_and_log_lines_parse() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Length: 34\r\n\r\nError: sql: no rows in result set\n";
        let (status, body) = parse_http(raw).unwrap();
        assert_eq!(status, 200);
        assert!(body.contains(ABSENT));
        assert_eq!(parse_http(b"garbage"), None);
        assert_eq!(
            render_log_line("2026/12/06 01:11:02 127.0.0.1:18001: DEBUG: attempt 1: connected"),
            "01:11:02 debug attempt 1: connected"
        );
        assert_eq!(render_log_line("panic: boom"), "panic: boom");
    }
}
