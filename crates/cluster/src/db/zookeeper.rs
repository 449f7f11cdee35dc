//! The ZooKeeper 3.8 plug-in (Debian's `zookeeper`): each member is one JVM started
//! directly (`java ... QuorumPeerMain DIR/nI/zoo.cfg`, no wrapper script), so `kill`,
//! `pause` and the clock supervisor act on the real server process. Readiness and the
//! leader come from the `srvr` four-letter word on the client port, spoken by this
//! crate over a plain TCP connection after the route check.
//!
//! ```text
//!   DIR/nI/zoo.cfg      tickTime=500, the quorum's server.I lines, srvr allowed
//!   DIR/nI/data/myid    I: the member's id is the last byte of its lab address
//!   DIR/nI/zookeeper.log  the JVM's stderr (slf4j-simple, one line per event)
//! ```

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use super::{endpoint_addr, member_dir, member_id, Database, Health, MemberPlan, Report};
use crate::error::{Error, Result};
use crate::net::ensure_target_url;
use crate::node::Node;
use crate::topology::Lab;

/// The client port (ZooKeeper's usual one).
pub(crate) const CLIENT_PORT: u16 = 2181;
/// Followers talk to the leader here.
pub(crate) const QUORUM_PORT: u16 = 2888;
/// Leader election.
pub(crate) const ELECTION_PORT: u16 = 3888;

/// The server's jar (its manifest's `Class-Path` names the libraries it needs) and the
/// slf4j binding that writes the log to stderr, as Debian installs them
/// (`dpkg -L libzookeeper-java libslf4j-java`, both dependencies of `zookeeper`).
const CLASSPATH: [&str; 2] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
];

/// How long a four-letter word may take, connect and answer each.
const FLW_TIMEOUT: Duration = Duration::from_secs(2);

/// ZooKeeper 3.8 from Debian's `zookeeper`, run by Debian's default JRE.
#[derive(Debug)]
pub(crate) struct ZooKeeper;

impl Database for ZooKeeper {
    fn name(&self) -> &'static str {
        "zookeeper"
    }

    fn programs(&self) -> &'static [(&'static str, &'static str)] {
        &[("java", "default-jre-headless")]
    }

    fn files(&self) -> &'static [(&'static str, &'static str)] {
        &[(CLASSPATH[0], "zookeeper"), (CLASSPATH[1], "zookeeper")]
    }

    fn url_scheme(&self) -> &'static str {
        "zk"
    }

    fn client_port(&self) -> u16 {
        CLIENT_PORT
    }

    fn peer_port(&self) -> u16 {
        QUORUM_PORT
    }

    fn log_file_name(&self) -> &'static str {
        "zookeeper.log"
    }

    fn member_argv(&self, node: &Node, plan: &MemberPlan<'_>) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            plan.program.display().to_string(),
            // Small and quick to start: three members share two cores with the harness.
            "-Xms32m".into(),
            "-Xmx256m".into(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            // No /tmp/hsperfdata_root/PID left behind by a SIGKILLed member.
            "-XX:-UsePerfData".into(),
            format!(
                "-XX:ErrorFile={}",
                member_dir(node).join("hs_err_%p.log").display()
            ),
            "-Djava.net.preferIPv4Stack=true".into(),
            "-Dorg.slf4j.simpleLogger.showDateTime=true".into(),
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS".into(),
            "-Dorg.slf4j.simpleLogger.showShortLogName=true".into(),
            "-Dzookeeper.jmx.log4j.disable=true".into(),
            "-cp".into(),
            CLASSPATH.join(":"),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
            config_path(node).display().to_string(),
        ];
        argv.extend(plan.extra.iter().cloned());
        argv
    }

    fn config_files(&self, node: &Node, nodes: &[Node]) -> Vec<(PathBuf, String)> {
        vec![
            (config_path(node), zoo_cfg(node, nodes)),
            (
                node.data_dir.join("myid"),
                format!("{}\n", member_id(node.addr)),
            ),
        ]
    }

    fn serving_log_line(&self) -> Option<&'static str> {
        None
    }

    fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>> {
        let answers = srvr_all(endpoints)?;
        Ok(answers
            .into_iter()
            .map(|(endpoint, answer)| match answer.map(|a| parse_srvr(&a)) {
                Ok(Some(_)) => Health {
                    endpoint,
                    health: true,
                    error: None,
                },
                Ok(None) => Health {
                    endpoint,
                    health: false,
                    error: Some("not serving requests (no quorum)".into()),
                },
                Err(e) => Health {
                    endpoint,
                    health: false,
                    error: Some(e),
                },
            })
            .collect())
    }

    fn reports(&self, endpoints: &[&str]) -> Result<Vec<(String, Report)>> {
        let answers = srvr_all(endpoints)?;
        let mut reports: Vec<(String, Report, bool)> = Vec::new();
        for (endpoint, answer) in answers {
            let (Ok(answer), Some(id)) = (answer, endpoint_member_id(&endpoint)) else {
                continue;
            };
            if let Some(s) = parse_srvr(&answer) {
                let leads = s.mode == "leader" || s.mode == "standalone";
                let report = Report {
                    member_id: id,
                    leader: if leads { id } else { 0 },
                    term: s.zxid >> 32,
                    index: s.zxid & 0xffff_ffff,
                };
                reports.push((endpoint, report, leads));
            }
        }
        // A follower does not say whom it follows. One that serves follows a leader:
        // the only one that answered, or else the one of its epoch (a follower's zxid
        // stays in the old epoch until the new leader's first write).
        let leaders: Vec<Report> = reports.iter().filter(|r| r.2).map(|r| r.1).collect();
        for (_, report, leads) in &mut reports {
            if !*leads {
                let of_epoch = leaders.iter().find(|l| l.term == report.term);
                if let Some(l) = of_epoch.or(leaders.first().filter(|_| leaders.len() == 1)) {
                    report.leader = l.member_id;
                }
            }
        }
        Ok(reports.into_iter().map(|(e, r, _)| (e, r)).collect())
    }

    fn member_ids(&self, endpoints: &[&str]) -> Result<Vec<(u64, String)>> {
        Ok(endpoints
            .iter()
            .filter_map(|e| endpoint_member_id(e))
            .map(|id| (id, Lab::node_name(id as usize)))
            .collect())
    }

    fn render_log_line(&self, line: &str) -> String {
        // `12:00:01.234 [thread] INFO QuorumPeerMain - msg`: without the thread, whose
        // name may hold brackets and spaces of its own.
        let level = [" ERROR ", " WARN ", " INFO ", " DEBUG ", " TRACE "]
            .iter()
            .filter_map(|l| line.find(l))
            .min();
        match (line.split_once(" ["), level) {
            (Some((time, _)), Some(at)) if time.len() == 12 => {
                format!("{time}{}", &line[at..])
            }
            _ => line.to_owned(),
        }
    }

    fn looks_like_a_cause(&self, line: &str) -> bool {
        line.contains(" ERROR ")
            || line.contains("Exception in thread")
            || line.contains("Error: Could not")
            || line.contains("Address already in use")
    }
}

/// `DIR/nI/zoo.cfg`.
fn config_path(node: &Node) -> PathBuf {
    member_dir(node).join("zoo.cfg")
}

/// `DIR/nI`, where the member's data directory, log and configuration live.
fn endpoint_member_id(endpoint: &str) -> Option<u64> {
    endpoint_addr(endpoint).map(|a| member_id(*a.ip()))
}

/// The member's configuration. `tickTime=500`: a follower cut off from the leader
/// gives up after `syncLimit` ticks (5 s), an election settles within seconds.
pub(crate) fn zoo_cfg(node: &Node, nodes: &[Node]) -> String {
    let mut cfg = format!(
        "# written by splitbrain for lab member {name}\n\
         tickTime=500\n\
         initLimit=20\n\
         syncLimit=10\n\
         dataDir={data}\n\
         clientPort={CLIENT_PORT}\n\
         clientPortAddress={addr}\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=srvr\n\
         preAllocSize=4096\n\
         quorumListenOnAllIPs=false\n",
        name = node.name,
        data = node.data_dir.display(),
        addr = node.addr,
    );
    for n in nodes {
        cfg.push_str(&format!(
            "server.{}={}:{QUORUM_PORT}:{ELECTION_PORT}\n",
            member_id(n.addr),
            n.addr
        ));
    }
    cfg
}

/// Sends `srvr` to every endpoint at once (a member cut off by a partition costs its
/// timeout, not one per member). Each answer, or why there is none. [`Error::Command`]
/// when none answers at all; a refused route is an error before anything is sent.
fn srvr_all(endpoints: &[&str]) -> Result<Vec<(String, std::result::Result<String, String>)>> {
    let mut addrs = Vec::new();
    for e in endpoints {
        ensure_target_url(e, false)?;
        let addr = endpoint_addr(e).ok_or_else(|| Error::Parse {
            command: "srvr".into(),
            reason: format!("`{e}` is not ADDRESS:PORT"),
            output: String::new(),
        })?;
        addrs.push((e.to_string(), addr));
    }
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|(e, a)| (e.clone(), s.spawn(move || four_letter_word(*a, "srvr"))))
            .collect();
        handles
            .into_iter()
            .map(|(e, h)| {
                let answer = h
                    .join()
                    .unwrap_or_else(|_| Err("the srvr thread panicked".into()));
                (e, answer)
            })
            .collect()
    });
    if !answers.is_empty() && answers.iter().all(|(_, a)| a.is_err()) {
        return Err(Error::Command {
            command: format!("srvr to {}", endpoints.join(",")),
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

/// One four-letter word: connect, send it, read until the server closes.
fn four_letter_word(addr: SocketAddrV4, word: &str) -> std::result::Result<String, String> {
    let mut conn = TcpStream::connect_timeout(&SocketAddr::V4(addr), FLW_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    conn.set_read_timeout(Some(FLW_TIMEOUT))
        .and_then(|()| conn.set_write_timeout(Some(FLW_TIMEOUT)))
        .and_then(|()| conn.write_all(word.as_bytes()))
        .map_err(|e| format!("{word}: {e}"))?;
    let mut answer = String::new();
    conn.take(64 * 1024)
        .read_to_string(&mut answer)
        .map_err(|e| format!("{word}: {e}"))?;
    Ok(answer)
}

/// What `srvr` says of a member that serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Srvr {
    /// `leader`, `follower`, `observer` or `standalone`.
    pub mode: String,
    /// The last transaction it has seen: epoch in the high 32 bits, counter in the low.
    pub zxid: u64,
}

/// `None` when the member does not serve ("This ZooKeeper instance is not currently
/// serving requests": no quorum) or the answer has no mode.
pub(crate) fn parse_srvr(answer: &str) -> Option<Srvr> {
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    let mode = field("Mode:")?;
    let zxid = field("Zxid:")
        .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Some(Srvr { mode, zxid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> Node {
        crate::db::test_node(&ZooKeeper, i)
    }

    #[test]
    fn srvr_answers_parse() {
        // Captured from ZooKeeper 3.8.0.
        let leader = "Zookeeper version: 3.8.0-debian--1, built on 2023-02-09 13:14 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x200000003\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";
        assert_eq!(
            parse_srvr(leader),
            Some(Srvr {
                mode: "leader".into(),
                zxid: 0x2_0000_0003
            })
        );
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        assert_eq!(parse_srvr(""), None);
    }

    #[test]
    fn the_configuration_names_every_member_by_its_address() {
        let nodes = [node(1), node(2), node(3)];
        let cfg = zoo_cfg(&nodes[1], &nodes);
        for want in [
            "tickTime=500\n",
            "admin.enableServer=false\n",
            "4lw.commands.whitelist=srvr\n",
            "clientPortAddress=10.77.3.2\n",
            "dataDir=/run/x/n2/data\n",
            "server.1=10.77.3.1:2888:3888\n",
            "server.3=10.77.3.3:2888:3888\n",
        ] {
            assert!(cfg.contains(want), "{want} missing from {cfg}");
        }
        let files = ZooKeeper.config_files(&nodes[1], &nodes);
        assert_eq!(
            files[1],
            (PathBuf::from("/run/x/n2/data/myid"), "2\n".into())
        );
        assert_eq!(files[0].0, PathBuf::from("/run/x/n2/zoo.cfg"));
    }

    #[test]
    fn the_member_is_the_jvm_itself() {
        let nodes = [node(1)];
        let plan = MemberPlan {
            nodes: &nodes,
            prefix: "sb3",
            program: std::path::Path::new("/usr/bin/java"),
            enable_v2: true,
            pre_vote: true,
            extra: &[],
        };
        let argv = ZooKeeper.member_argv(&nodes[0], &plan);
        assert_eq!(argv[0], "/usr/bin/java");
        let main = argv
            .iter()
            .position(|a| a == "org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .unwrap();
        assert_eq!(argv[main + 1], "/run/x/n1/zoo.cfg");
        assert_eq!(endpoint_member_id("zk://10.77.3.2:2181"), Some(2));
        assert_eq!(endpoint_member_id("10.77.3.3:2181"), Some(3));
    }

    #[test]
    fn log_lines_lose_the_thread() {
        let line = "00:41:07.386 [QuorumPeer[myid=1](plain=10.77.1.1:2181)(secure=disabled)] INFO Leader - LEADING - LEADER ELECTION TOOK - 30 MS";
        assert_eq!(
            ZooKeeper.render_log_line(line),
            "00:41:07.386 INFO Leader - LEADING - LEADER ELECTION TOOK - 30 MS"
        );
        assert!(ZooKeeper.looks_like_a_cause(
            "00:41:07.386 [main] ERROR QuorumPeerMain - Invalid config, exiting abnormally"
        ));
    }
}
