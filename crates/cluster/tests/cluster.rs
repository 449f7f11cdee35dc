//! Real clusters on this machine: needs root, etcd, etcdctl, iproute2 and curl
//! (`sudo scripts/setup`). Without them a test prints `SKIPPED: ...` and passes, except
//! under `CI=true`, where a missing prerequisite is a failure.
//!
//! Every cluster is held by a `ClusterGuard`, so it is taken down even when an assertion
//! fails; tests that start clusters run one at a time (two cores, and etcd's elections
//! are sensitive to a starved CPU).

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;

use splitbrain_cluster::{ensure_lab_url, Cluster, Config, Error, Process};
use splitbrain_testkit::{eventually, up, WAIT};

/// The lock for a cluster test, or `None` (after a loud line) if this machine cannot run
/// one. Under CI a missing prerequisite fails the test.
fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["curl"])
}

/// curl, after the route check, never through a proxy. Returns the body.
fn curl(url: &str, args: &[&str]) -> String {
    ensure_lab_url(url).expect("lab route");
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-m", "10"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn base64(s: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn v3_put(endpoint: &str, key: &str, value: &str) -> String {
    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key), base64(value));
    curl(
        &format!("{endpoint}/v3/kv/put"),
        &["-X", "POST", "-d", &body],
    )
}

fn v2_put(endpoint: &str, key: &str, value: &str) -> String {
    let data = format!("value={value}");
    curl(
        &format!("{endpoint}/v2/keys/{key}"),
        &["-X", "PUT", "-d", &data],
    )
}

/// The value of a v2 key, read with `quorum=true` (linearized) or locally.
fn v2_get(endpoint: &str, key: &str, quorum: bool) -> Option<String> {
    let body = curl(&format!("{endpoint}/v2/keys/{key}?quorum={quorum}"), &[]);
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["node"]["value"].as_str().map(str::to_owned)
}

/// What a cluster left on this machine, judged from its state file (read before `down`):
/// namespaces, root-namespace interfaces, root iptables rules, processes.
struct Footprint {
    subnet_prefix: String,
    netns: Vec<String>,
    links: Vec<String>,
    netns_inodes: Vec<u64>,
    argvs: Vec<Vec<String>>,
}

impl Footprint {
    fn of(cluster: &Cluster) -> Footprint {
        let text = std::fs::read_to_string(cluster.state_file()).expect("state file");
        let state: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
        let nodes = state["nodes"].as_array().expect("nodes").clone();
        let subnet = state["subnet"].as_str().expect("subnet");
        let host_veth = state["host_veth"].as_str().expect("host_veth").to_owned();
        let mut netns = vec![state["bridge_netns"].as_str().expect("bridge").to_owned()];
        let mut netns_inodes = vec![state["bridge_netns_inode"].as_u64().expect("inode")];
        let mut argvs = Vec::new();
        for n in &nodes {
            netns.push(n["netns"].as_str().expect("netns").to_owned());
            netns_inodes.push(n["netns_inode"].as_u64().expect("node inode"));
            argvs.push(
                n["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("arg").to_owned())
                    .collect(),
            );
        }
        Footprint {
            subnet_prefix: subnet.trim_end_matches("0/24").to_owned(),
            netns,
            links: vec![host_veth],
            netns_inodes,
            argvs,
        }
    }

    /// Everything of ours that is still there.
    fn remains(&self) -> Vec<String> {
        let mut left = Vec::new();
        let listed = run("ip", &["netns", "list"]);
        for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
            if self.netns.iter().any(|n| n == name) {
                left.push(format!("namespace {name}"));
            }
        }
        let links = run("ip", &["-o", "link", "show"]);
        for link in &self.links {
            if links.contains(&format!(" {link}:")) || links.contains(&format!(" {link}@")) {
                left.push(format!("interface {link}"));
            }
        }
        // Only the default backend: merely listing with iptables-legacy would create
        // legacy tables in the root namespace.
        let rules = run("iptables", &["-w", "-S"]);
        for rule in rules.lines().filter(|r| r.contains(&self.subnet_prefix)) {
            left.push(format!("iptables rule {rule}"));
        }
        let argvs: HashSet<&Vec<String>> = self.argvs.iter().collect();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv: Vec<String> = raw
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if argvs.contains(&argv) {
                left.push(format!("process {pid} {}", argv.join(" ")));
            }
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap_or_default();
            let ns = ns.to_string_lossy();
            if self
                .netns_inodes
                .iter()
                .any(|i| ns == format!("net:[{i}]").as_str())
            {
                left.push(format!("process {pid} inside one of our namespaces"));
            }
        }
        left
    }

    fn assert_gone(&self) {
        let left = self.remains();
        assert!(left.is_empty(), "down left behind: {left:#?}");
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn three_members_serve_v3_puts_and_v2_quorum_reads_on_every_member() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 3);
    assert_eq!(cluster.nodes().len(), 3);
    let endpoints = cluster.endpoints();
    let addrs: HashSet<_> = cluster.nodes().iter().map(|n| n.addr).collect();
    assert_eq!(addrs.len(), 3, "every member has its own address");

    for (i, e) in endpoints.iter().enumerate() {
        let reply = v3_put(e, &format!("k{i}"), &format!("v{i}"));
        assert!(reply.contains("\"revision\""), "v3 put via {e}: {reply}");
        v2_put(e, &format!("w{i}"), &format!("x{i}"));
    }
    // Every member serves a linearized read of every write, whichever member took it.
    for e in &endpoints {
        for i in 0..endpoints.len() {
            assert_eq!(
                v2_get(e, &format!("w{i}"), true),
                Some(format!("x{i}")),
                "{e}"
            );
        }
    }

    let status = cluster.status().unwrap();
    assert!(status.healthy(), "{status:?}");
    assert!(status.leader.is_some() && status.term.is_some());
    let footprint = Footprint::of(&cluster);
    cluster.down().unwrap();
    footprint.assert_gone();
    assert!(!cluster.state_file().exists(), "state file removed last");
    cluster.down().expect("down is idempotent");
}

#[test]
fn five_members_come_up_healthy_and_go_down_clean() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 5);
    let status = cluster.status().unwrap();
    assert_eq!(status.members.len(), 5);
    assert!(status.healthy(), "{status:?}");
    let leader = cluster.leader().unwrap().expect("a leader");
    assert!(status
        .members
        .iter()
        .all(|m| m.leader.as_ref() == Some(&leader)));
    let footprint = Footprint::of(&cluster);
    drop(cluster);
    footprint.assert_gone();
}

#[test]
fn kill_leader_then_restart_catches_up() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 3);
    let old = cluster.leader().unwrap().expect("a leader");
    let old_url = cluster.node(&old).unwrap().client_url.clone();

    cluster.kill(&old).unwrap();
    let status = cluster.status().unwrap();
    let killed = status.members.iter().find(|m| m.node.name == old).unwrap();
    assert_eq!(killed.process, Process::Stopped);
    assert!(matches!(cluster.kill(&old), Err(Error::NotRunning { .. })));

    let new = eventually("a new leader", || {
        cluster.leader().ok().flatten().filter(|l| *l != old)
    });
    let new_url = cluster.node(&new).unwrap().client_url.clone();
    v2_put(&new_url, "after", "kill");

    cluster.start(&old).unwrap();
    assert!(matches!(
        cluster.start(&old),
        Err(Error::AlreadyRunning { .. })
    ));
    // A local (non-quorum) read shows the old leader's own state: it caught up.
    eventually("the restarted member to catch up", || {
        (v2_get(&old_url, "after", false).as_deref() == Some("kill")).then_some(())
    });
    cluster.wait_healthy(WAIT).unwrap();
}

#[test]
fn paused_leader_is_replaced_and_resumes_as_a_member() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 3);
    let old = cluster.leader().unwrap().expect("a leader");

    cluster.pause(&old).unwrap();
    let status = cluster.status().unwrap();
    let paused = status.members.iter().find(|m| m.node.name == old).unwrap();
    assert!(
        matches!(paused.process, Process::Paused { .. }),
        "{paused:?}"
    );
    let new = eventually("a new leader", || {
        cluster.leader().ok().flatten().filter(|l| *l != old)
    });
    assert_ne!(new, old);

    cluster.resume(&old).unwrap();
    cluster.wait_healthy(WAIT).unwrap();
    let status = cluster.status().unwrap();
    assert!(status.healthy(), "{status:?}");
    let resumed = status.members.iter().find(|m| m.node.name == old).unwrap();
    assert!(matches!(resumed.process, Process::Running { .. }));
}

#[test]
fn start_says_which_address_is_taken_when_the_port_is_in_use() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 3);
    let node = cluster.nodes()[0].clone();
    cluster.kill(&node.name).unwrap();

    // Squat n1's client port from inside its namespace: a thread that enters it binds a
    // socket that stays there.
    let netns = Path::new("/run/netns").join(&node.netns);
    let addr = SocketAddr::new(node.addr.into(), splitbrain_cluster::CLIENT_PORT);
    let squatter: TcpListener = std::thread::spawn(move || {
        let ns = std::fs::File::open(netns).expect("namespace");
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        TcpListener::bind(addr).expect("bind in namespace")
    })
    .join()
    .unwrap();

    let err = cluster.start(&node.name).unwrap_err();
    assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("n1") && msg.contains(&node.addr.to_string()),
        "{msg}"
    );

    drop(squatter);
    cluster.start(&node.name).unwrap();
    cluster.wait_healthy(WAIT).unwrap();
}

#[test]
fn two_clusters_coexist_and_down_removes_only_its_own() {
    let Some(_lab) = lab() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = up(dir_a.path(), 3);
    let b = up(dir_b.path(), 3);
    assert_ne!(a.subnet(), b.subnet());
    let footprint_a = Footprint::of(&a);
    a.down().unwrap();
    footprint_a.assert_gone();
    let status = b.status().unwrap();
    assert!(
        status.healthy(),
        "the other cluster is untouched: {status:?}"
    );
    assert!(Footprint::of(&b).remains().len() > 3);
}

#[test]
fn requests_to_a_downed_lab_are_refused() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 1);
    let url = cluster.endpoints()[0].clone();
    ensure_lab_url(&url).expect("route through the lab while it is up");
    cluster.down().unwrap();
    let err = ensure_lab_url(&url).unwrap_err();
    assert!(matches!(err, Error::UnsafeRoute { .. }), "{err}");
}

#[test]
fn up_refuses_a_live_or_stale_state_file_and_a_taken_subnet() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 1);
    let err = Cluster::up(Config::in_dir(dir.path())).unwrap_err();
    assert!(matches!(err, Error::AlreadyUp { .. }), "{err}");

    let saved = std::fs::read(cluster.state_file()).unwrap();
    cluster.down().unwrap();
    std::fs::write(cluster.state_file(), saved).unwrap();
    let err = Cluster::up(Config::in_dir(dir.path())).unwrap_err();
    assert!(matches!(err, Error::StaleState { .. }), "{err}");
    // The state file is named; what to run is the binary's to say.
    assert!(err.to_string().contains("cluster.json"), "{err}");
    assert!(!err.to_string().contains("--dir"), "no flags: {err}");
    cluster.down().expect("down clears a stale state file");
    assert!(!cluster.state_file().exists());

    // A route to a lab subnet that is not ours: the subnet is taken.
    let octet = 231;
    let route = format!("10.77.{octet}.0/24");
    let _ = Command::new("ip")
        .args(["route", "del", "blackhole", &route])
        .stderr(std::process::Stdio::null())
        .status();
    assert!(Command::new("ip")
        .args(["route", "add", "blackhole", &route])
        .status()
        .unwrap()
        .success());
    struct DelRoute(String);
    impl Drop for DelRoute {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["route", "del", "blackhole", &self.0])
                .status();
        }
    }
    let _route = DelRoute(route);
    let mut config = Config::in_dir(dir.path());
    config.subnet = Some(octet);
    let err = Cluster::up(config).unwrap_err();
    assert!(matches!(err, Error::AddressInUse { .. }), "{err}");
    assert!(err.to_string().contains("10.77.231.0/24"), "{err}");
    assert!(
        !cluster.state_file().exists(),
        "a refused up records nothing"
    );
}

#[test]
fn down_after_a_crash_at_the_claim_removes_only_an_empty_claim() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 1);
    // The state file as `up` writes it just before `ip netns add` of the bridge namespace.
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.state_file()).unwrap()).unwrap();
    cluster.down().unwrap();
    state["bridge_netns_inode"] = serde_json::Value::Null;
    for node in state["nodes"].as_array_mut().unwrap() {
        node["netns_inode"] = serde_json::Value::Null;
        node["pid"] = serde_json::Value::Null;
    }
    let bridge_ns = state["bridge_netns"].as_str().unwrap().to_owned();
    let write_state = || std::fs::write(cluster.state_file(), state.to_string()).unwrap();
    let netns_exists = || {
        run("ip", &["netns", "list"])
            .lines()
            .any(|l| l.split_whitespace().next() == Some(bridge_ns.as_str()))
    };
    struct DelNetns(String);
    impl Drop for DelNetns {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }

    // Died right after claiming: an empty bridge namespace, not yet recorded.
    assert!(Command::new("ip")
        .args(["netns", "add", &bridge_ns])
        .status()
        .unwrap()
        .success());
    let _cleanup = DelNetns(bridge_ns.clone());
    write_state();
    cluster.down().unwrap();
    assert!(
        !netns_exists(),
        "the abandoned claim {bridge_ns} is removed"
    );
    assert!(!cluster.state_file().exists());

    // Died before claiming, and another cluster holds the name: its namespace has a bridge.
    assert!(Command::new("ip")
        .args(["netns", "add", &bridge_ns])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"])
        .status()
        .unwrap()
        .success());
    write_state();
    cluster.down().unwrap();
    assert!(
        netns_exists(),
        "another cluster's {bridge_ns} is left alone"
    );
    assert!(!cluster.state_file().exists());
}

#[test]
fn iptables_in_a_member_namespace_really_partitions_it() {
    let Some(_lab) = lab() else { return };
    if Command::new("iptables").arg("--version").output().is_err() {
        // iptables is only needed here; the lab check above does not ask for it.
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true needs iptables"
        );
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED: needs iptables");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path(), 3);
    let leader = cluster.leader().unwrap().expect("a leader");
    let others: Vec<_> = cluster
        .nodes()
        .iter()
        .filter(|n| n.name != leader)
        .cloned()
        .collect();
    for other in &others {
        for (chain, flag) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            let status = cluster
                .netns_command(&leader, "iptables")
                .unwrap()
                .args([
                    "-w",
                    "-A",
                    chain,
                    flag,
                    &other.addr.to_string(),
                    "-j",
                    "DROP",
                ])
                .status()
                .unwrap();
            assert!(status.success(), "iptables in {leader}'s namespace");
        }
    }
    // The majority elects a new leader; the isolated one stays behind.
    let new = eventually("a leader on the majority side", || {
        cluster.leader().ok().flatten().filter(|l| *l != leader)
    });
    assert!(others.iter().any(|o| o.name == new));
    let footprint = Footprint::of(&cluster);
    cluster.down().unwrap();
    footprint.assert_gone();
}

#[test]
fn a_forgotten_cluster_is_found_through_the_registry_and_taken_down() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Recovered below as if the test that started it had been killed; the guard only
    // keeps a failing assertion from leaking it (down is idempotent).
    let cluster = up(dir.path(), 3);
    let footprint = Footprint::of(&cluster);
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert!(
        splitbrain_cluster::registered().contains(&canonical),
        "{} is not in {}",
        canonical.display(),
        splitbrain_cluster::registry_dir().display()
    );
    // What `cluster down --all` does for each registered directory (not called here:
    // it would also take down clusters a developer has running).
    assert!(splitbrain_cluster::down(&canonical).unwrap());
    footprint.assert_gone();
    assert!(!splitbrain_cluster::registered().contains(&canonical));
    drop(cluster);
}
