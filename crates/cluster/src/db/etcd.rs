//! The etcd 3.4 plug-in: a member's command line, what `etcdctl` says about the cluster
//! (health, leader, term), and etcd's zap JSON log. This crate speaks no HTTP itself:
//! `etcdctl` does, after every endpoint passed the route check.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use super::{Database, Health, MemberPlan, Report};
use crate::error::{Error, Result};
use crate::net::ensure_target_url;
use crate::node::Node;
use crate::sys;
use crate::topology::{CLIENT_PORT, PEER_PORT};

/// What etcd 3.4 logs once it serves peers and clients.
const SERVING_LOG_LINE: &str = "now serving peer/client/metrics";

/// etcd 3.4 from Debian's `etcd-server`, driven through `etcdctl` (`etcd-client`).
#[derive(Debug)]
pub(crate) struct Etcd;

impl Database for Etcd {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[("etcd", "etcd-server"), ("etcdctl", "etcd-client")]
    }

    fn client_port(&self) -> u16 {
        CLIENT_PORT
    }

    fn peer_port(&self) -> u16 {
        PEER_PORT
    }

    fn log_file_name(&self) -> &'static str {
        "etcd.log"
    }

    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String> {
        let initial_cluster = plan
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("splitbrain-{}", plan.prefix);
        member_argv(
            node,
            &MemberFlags {
                etcd: plan.program.display().to_string(),
                initial_cluster: &initial_cluster,
                token: &token,
                enable_v2: plan.enable_v2,
                pre_vote: plan.pre_vote,
                extra: plan.extra,
            },
        )
    }

    fn serving_log_line(&self) -> Option<&'static str> {
        Some(SERVING_LOG_LINE)
    }

    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        etcdctl(false)?.health(endpoints)
    }

    fn reports(&self, endpoints: &[&str]) -> Result<Vec<(String, Report)>> {
        etcdctl(false)?.status(endpoints)
    }

    fn reports_from(
        &self,
        endpoints: &[&str],
        allow_remote: bool,
    ) -> Result<Vec<(String, Report)>> {
        etcdctl(allow_remote)?.status(endpoints)
    }

    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        etcdctl(false)?.members(endpoints)
    }

    fn render_log_line(&self, line: &str) -> String {
        render_log_line(line)
    }

    fn looks_like_a_cause(&self, line: &str) -> bool {
        let l = line.to_ascii_lowercase();
        [
            "\"level\":\"fatal\"",
            "\"level\":\"panic\"",
            "\"level\":\"error\"",
            "error:",
            "flag provided",
        ]
        .iter()
        .any(|k| l.contains(k))
    }
}

fn etcdctl(allow_remote: bool) -> Result<Etcdctl> {
    Ok(Etcdctl {
        program: sys::require_program("etcdctl", "etcd-client")?,
        allow_remote,
    })
}

/// One log line for a human: etcd's zap JSON as `12:00:01.234 warn msg key=value ...`.
pub(crate) fn render_log_line(line: &str) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
        Ok(map) if map.contains_key("msg") => {
            let field = |k: &str| map.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let time = field("ts")
                .split('T')
                .nth(1)
                .unwrap_or("")
                .trim_end_matches('Z');
            let mut s = format!("{time} {} {}", field("level"), field("msg"));
            for (k, v) in &map {
                if !matches!(k.as_str(), "ts" | "level" | "msg" | "caller") {
                    match v {
                        serde_json::Value::String(v) => s.push_str(&format!(" {k}={v}")),
                        v => s.push_str(&format!(" {k}={v}")),
                    }
                }
            }
            s
        }
        _ => line.to_owned(),
    }
}

/// Options that shape a member's command line.
pub(crate) struct MemberFlags<'a> {
    pub etcd: String,
    pub initial_cluster: &'a str,
    pub token: &'a str,
    pub enable_v2: bool,
    pub pre_vote: bool,
    pub extra: &'a [String],
}

/// The member's full command line. Restarting with the same one is fine: etcd ignores the
/// `--initial-*` flags once its data directory exists.
pub(crate) fn member_argv(node: &Node, f: &MemberFlags<'_>) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        f.etcd.clone(),
        "--name".into(),
        node.name.to_string(),
        "--data-dir".into(),
        node.data_dir.display().to_string(),
        // Its own address for the harness and the peers, loopback for tools run inside
        // its namespace.
        "--listen-client-urls".into(),
        format!("{},http://127.0.0.1:2379", node.client_url),
        "--advertise-client-urls".into(),
        node.client_url.clone(),
        "--listen-peer-urls".into(),
        node.peer_url.clone(),
        "--initial-advertise-peer-urls".into(),
        node.peer_url.clone(),
        "--initial-cluster".into(),
        f.initial_cluster.into(),
        "--initial-cluster-token".into(),
        f.token.into(),
        "--initial-cluster-state".into(),
        "new".into(),
        format!("--enable-v2={}", f.enable_v2),
        format!("--pre-vote={}", f.pre_vote),
        "--logger=zap".into(),
        "--log-outputs=stderr".into(),
    ];
    argv.extend(f.extra.iter().cloned());
    argv
}

/// One endpoint's answer to `etcdctl endpoint status`.
pub(crate) type EndpointStatus = Report;

#[derive(Deserialize)]
struct RawStatus {
    #[serde(rename = "Endpoint")]
    endpoint: String,
    #[serde(rename = "Status")]
    status: RawStatusBody,
}

// etcdctl prints protobuf messages, which leave out zero fields: a member that knows no
// leader has no `leader` at all. Hence the defaults.
#[derive(Deserialize)]
struct RawStatusBody {
    header: RawHeader,
    #[serde(default)]
    leader: u64,
    #[serde(rename = "raftTerm", default)]
    raft_term: u64,
    #[serde(rename = "raftIndex", default)]
    raft_index: u64,
}

#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    member_id: u64,
}

#[derive(Deserialize)]
struct RawMembers {
    members: Vec<RawMember>,
}

#[derive(Deserialize)]
struct RawMember {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(default)]
    name: String,
}

/// `etcdctl`, v3 API, with short timeouts so a paused member costs seconds, not minutes.
pub(crate) struct Etcdctl {
    pub program: PathBuf,
    /// Endpoints may be on other machines (the user said `--allow-remote`); lab
    /// addresses are route-checked either way.
    pub allow_remote: bool,
}

impl Etcdctl {
    fn command(&self, endpoints: &[&str], args: &[&str]) -> Result<Command> {
        for e in endpoints {
            ensure_target_url(e, self.allow_remote)?;
        }
        let mut cmd = Command::new(&self.program);
        sys::without_proxies(&mut cmd)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .args(["--dial-timeout=1s", "--command-timeout=2s", "-w", "json"])
            .args(args);
        Ok(cmd)
    }

    /// Runs etcdctl and returns its JSON. etcdctl exits non-zero when one endpoint fails,
    /// but still prints the others: only an empty stdout is an error.
    fn json(&self, endpoints: &[&str], args: &[&str]) -> Result<String> {
        let mut cmd = self.command(endpoints, args)?;
        let out = sys::output(&mut cmd)?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if stdout.is_empty() {
            return Err(Error::Command {
                command: sys::describe(&cmd),
                status: out.status.to_string(),
                stderr: last_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        Ok(stdout)
    }

    pub fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        let args = ["endpoint", "health"];
        let out = self.json(endpoints, &args)?;
        parse_health(&out).map_err(|reason| parse_error(endpoints, &args, reason, &out))
    }

    pub fn status(&self, endpoints: &[&str]) -> Result<Vec<(String, EndpointStatus)>> {
        let args = ["endpoint", "status"];
        let out = self.json(endpoints, &args)?;
        parse_status(&out).map_err(|reason| parse_error(endpoints, &args, reason, &out))
    }

    /// `(member id, name)` of every member.
    pub fn members(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        let args = ["member", "list"];
        let out = self.json(endpoints, &args)?;
        parse_members(&out).map_err(|reason| parse_error(endpoints, &args, reason, &out))
    }
}

fn parse_error(endpoints: &[&str], args: &[&str], reason: String, out: &str) -> Error {
    Error::Parse {
        command: format!(
            "etcdctl --endpoints={} {}",
            endpoints.join(","),
            args.join(" ")
        ),
        reason,
        output: out.chars().take(500).collect(),
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .to_owned()
}

pub(crate) fn parse_health(json: &str) -> std::result::Result<Vec<Health>, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

pub(crate) fn parse_status(
    json: &str,
) -> std::result::Result<Vec<(String, EndpointStatus)>, String> {
    let raw: Vec<RawStatus> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let s = r.status;
            let status = EndpointStatus {
                member_id: s.header.member_id,
                leader: s.leader,
                term: s.raft_term,
                index: s.raft_index,
            };
            (r.endpoint, status)
        })
        .collect())
}

pub(crate) fn parse_members(json: &str) -> std::result::Result<Vec<(u64, String)>, String> {
    let raw: RawMembers = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(raw.members.into_iter().map(|m| (m.id, m.name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::leader_of;
    use std::net::Ipv4Addr;

    #[test]
    fn health_json_parses_with_and_without_errors() {
        // Captured from etcdctl 3.4.23.
        let json = r#"[{"endpoint":"http://10.77.3.1:2379","health":true,"took":"4.956908ms"},{"endpoint":"http://10.77.3.2:2379","health":false,"took":"1.000970298s","error":"context deadline exceeded"}]"#;
        let h = parse_health(json).unwrap();
        assert_eq!(h.len(), 2);
        assert!(h[0].health && h[0].error.is_none());
        assert!(!h[1].health);
        assert_eq!(h[1].error.as_deref(), Some("context deadline exceeded"));
    }

    #[test]
    fn status_json_keeps_64_bit_member_ids_exact() {
        // Captured from etcdctl 3.4.23; ids above 2^53 must not be rounded.
        let json = r#"[{"Endpoint":"http://10.77.3.1:2379","Status":{"header":{"cluster_id":324952591200643719,"member_id":17293822569102704642,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":3319814642761637952,"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":16384}}]"#;
        let s = parse_status(json).unwrap();
        assert_eq!(s[0].0, "http://10.77.3.1:2379");
        assert_eq!(
            s[0].1,
            EndpointStatus {
                member_id: 17293822569102704642,
                leader: 3319814642761637952,
                term: 2,
                index: 4,
            }
        );
        assert!(parse_status("[{}]").is_err());

        // A member cut off from the others: no leader, so no `leader` field.
        let json = r#"[{"Endpoint":"http://10.77.1.1:2379","Status":{"header":{"cluster_id":7452484524661852397,"member_id":7375816623040501071,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"raftIndex":8,"raftTerm":2,"raftAppliedIndex":8,"errors":["etcdserver: no leader"],"dbSizeInUse":16384}}]"#;
        let s = parse_status(json).unwrap();
        assert_eq!(s[0].1.leader, 0);
        assert_eq!(s[0].1.term, 2);
        assert_eq!(leader_of(&[s[0].1]), None);
    }

    #[test]
    fn member_list_json_parses() {
        let json = r#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"raft_term":2},"members":[{"ID":3319814642761637952,"name":"n1","peerURLs":["http://10.77.3.1:2380"],"clientURLs":["http://10.77.3.1:2379"]},{"ID":17293822569102704642,"peerURLs":["http://10.77.3.2:2380"]}]}"#;
        assert_eq!(
            parse_members(json).unwrap(),
            vec![
                (3319814642761637952, "n1".into()),
                (17293822569102704642, String::new())
            ]
        );
    }

    #[test]
    fn the_highest_term_names_the_leader() {
        let s = |member_id, leader, term| EndpointStatus {
            member_id,
            leader,
            term,
            index: 0,
        };
        // n1 was isolated while leader of term 2; the majority elected 3 in term 4.
        let reports = [s(1, 1, 2), s(2, 3, 4), s(3, 3, 4)];
        assert_eq!(leader_of(&reports), Some((3, 4)));
        assert_eq!(leader_of(&[s(1, 0, 5)]), None);
        assert_eq!(leader_of(&[]), None);
    }

    #[test]
    fn member_argv_has_v2_pre_vote_and_its_own_address() {
        let node = Node {
            name: "n2".into(),
            netns: "sb3-n2".into(),
            interface: "sb3n2".into(),
            addr: Ipv4Addr::new(10, 77, 3, 2),
            client_url: "http://10.77.3.2:2379".into(),
            peer_url: "http://10.77.3.2:2380".into(),
            data_dir: "/run/x/n2/data".into(),
            log_file: "/run/x/n2/etcd.log".into(),
            clock_file: None,
        };
        let flags = MemberFlags {
            etcd: "/usr/bin/etcd".into(),
            initial_cluster: "n1=http://10.77.3.1:2380,n2=http://10.77.3.2:2380",
            token: "splitbrain-sb3",
            enable_v2: true,
            pre_vote: false,
            extra: &["--heartbeat-interval=50".into()],
        };
        let argv = member_argv(&node, &flags);
        assert_eq!(argv[0], "/usr/bin/etcd");
        let joined = argv.join(" ");
        for want in [
            "--name n2",
            "--data-dir /run/x/n2/data",
            "--listen-client-urls http://10.77.3.2:2379,http://127.0.0.1:2379",
            "--listen-peer-urls http://10.77.3.2:2380",
            "--enable-v2=true",
            "--pre-vote=false",
        ] {
            assert!(joined.contains(want), "{want} missing from {joined}");
        }
        assert_eq!(argv.last().unwrap(), "--heartbeat-interval=50");
    }
}
