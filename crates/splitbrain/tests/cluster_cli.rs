//! `splitbrain cluster ...` as a user types it: real clusters, so root, etcd, etcdctl and
//! iproute2 are needed (`sudo scripts/setup`). Without them a test prints `SKIPPED: ...`
//! and passes, except under `CI=true`, where that is a failure.

mod common;
use common::{cluster, now_secs, parse_http_date, splitbrain, test_cmd, text, Down, Ran};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["setpriv"])
}

fn ok(args: &[&str], dir: &Path) -> String {
    cluster(args, dir).exits(0).stdout
}

/// Runs a command that must fail, and returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let err = Ran::of(cmd.stdin(Stdio::null())).exits(1).stderr;
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Names and command lines our cluster recorded, to look for after `down`.
fn recorded(dir: &Path) -> (Vec<String>, Vec<String>) {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let mut netns = vec![state["bridge_netns"].as_str().unwrap().to_owned()];
    let mut data_dirs = Vec::new();
    for n in state["nodes"].as_array().unwrap() {
        netns.push(n["netns"].as_str().unwrap().to_owned());
        data_dirs.push(n["data_dir"].as_str().unwrap().to_owned());
    }
    (netns, data_dirs)
}

fn assert_nothing_left(netns: &[String], data_dirs: &[String]) {
    let listed = text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    for ns in netns {
        assert!(
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "namespace {ns} left: {listed}"
        );
    }
    // Any etcd whose command line names one of our data directories is ours.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = text(&cmdline).replace('\0', " ");
        for d in data_dirs {
            assert!(
                !cmdline.contains(&format!(" {d} ")),
                "process left: {cmdline}"
            );
        }
    }
}

/// A process as `/proc` shows it: its pid and start time, so that a reused pid is
/// not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: i32,
    start: u64,
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Proc {
    fn of(pid: i32) -> Option<Proc> {
        Some(Proc {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Still in `/proc`, zombies included: a zombie is gone only once collected.
    fn exists(self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Every process of the lab in `dir` now: the pids its state file records
/// (members, sshds) and whatever runs with `dir` on its command line (members,
/// clock supervisors and handlers).
fn lab_processes(dir: &Path) -> Vec<Proc> {
    let mut pids = Vec::new();
    let state: Option<serde_json::Value> = std::fs::read_to_string(dir.join("cluster.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(state) = state {
        for n in state["nodes"].as_array().into_iter().flatten() {
            pids.extend(n["pid"].as_i64());
            pids.extend(n["sshd"]["pid"].as_i64());
        }
    }
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if text(&cmdline).contains(&needle) {
            pids.push(pid);
        }
    }
    let mut procs: Vec<Proc> = pids
        .into_iter()
        .filter_map(|p| Proc::of(i32::try_from(p).ok()?))
        .collect();
    procs.sort();
    procs.dedup();
    procs
}

/// Checked the instant a command returned: no wait, no retry.
fn assert_gone(procs: &[Proc], after: &str) {
    let left: Vec<String> = procs
        .iter()
        .filter(|p| p.exists())
        .map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)).unwrap_or_default();
            format!("{} ({})", p.pid, stat.trim())
        })
        .collect();
    assert!(left.is_empty(), "still there after {after}: {left:?}");
}

#[test]
fn a_user_session_up_status_faults_and_down() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _down = Down(dir.to_owned());

    let up = ok(&["up", "--nodes", "3"], dir);
    assert!(up.starts_with("cluster up in "), "{up}");
    let endpoints = ok(&["endpoints"], dir);
    let urls: Vec<&str> = endpoints.trim().split(',').collect();
    assert_eq!(urls.len(), 3, "{endpoints}");
    assert!(urls
        .iter()
        .all(|u| u.starts_with("http://10.77.") && u.ends_with(":2379")));

    let status = ok(&["status"], dir);
    assert!(
        status.contains("healthy") && status.contains("n1"),
        "{status}"
    );
    let leader = ok(&["leader"], dir).trim().to_owned();
    assert!(["n1", "n2", "n3"].contains(&leader.as_str()), "{leader}");

    assert!(ok(&["kill", &leader], dir).contains("killed"));
    let out = cluster(&["status"], dir);
    assert_eq!(out.code, Some(1), "a killed member makes status fail");
    assert!(out.stdout.contains("stopped"));
    let again = fails(
        splitbrain()
            .args(["cluster", "kill", &leader, "--dir"])
            .arg(dir),
    );
    assert!(
        again.contains(&format!("node {leader} is not running")),
        "{again}"
    );
    ok(&["start", &leader], dir);

    let leader = wait_for_leader(dir);
    ok(&["pause", &leader], dir);
    assert!(cluster(&["status"], dir).stdout.contains("paused"));
    ok(&["resume", &leader], dir);

    let unknown = fails(
        splitbrain()
            .args(["cluster", "pause", "n9", "--dir"])
            .arg(dir),
    );
    assert!(
        unknown.contains("no node n9 in this cluster (nodes: n1, n2, n3)"),
        "{unknown}"
    );

    let (netns, data_dirs) = recorded(dir);
    let procs = lab_processes(dir);
    assert_eq!(procs.len(), 3, "{procs:?}");
    assert!(ok(&["down"], dir).contains("is down"));
    assert_gone(&procs, "cluster down");
    assert_nothing_left(&netns, &data_dirs);
    assert!(
        ok(&["down"], dir).contains("nothing to do"),
        "down is idempotent"
    );
    let none = fails(splitbrain().args(["cluster", "status", "--dir"]).arg(dir));
    assert!(none.contains("no cluster in"), "{none}");
}

fn wait_for_leader(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster(&["leader"], dir);
        if out.code == Some(0) {
            return out.stdout.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no leader after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn down_cleans_up_after_up_was_killed_mid_way() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _down = Down(dir.to_owned());
    let state_file = dir.join("cluster.json");

    let mut up = splitbrain()
        .args(["cluster", "up", "--nodes", "5", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first member runs and before the last one is started: namespaces
    // built, processes half started, `up` still waiting.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mid_way = loop {
        let state: Option<serde_json::Value> = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(state) = state {
            let pids: Vec<bool> = state["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["pid"].is_i64())
                .collect();
            if pids[0] && !pids[4] {
                break true;
            }
            if pids[4] {
                break false;
            }
        }
        assert!(Instant::now() < deadline, "up never started a member");
        std::thread::sleep(Duration::from_millis(1));
    };
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(
        mid_way,
        "up got past the last member before it could be killed"
    );

    let (netns, data_dirs) = recorded(dir);
    let listed = text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        listed.contains(&netns[1]),
        "namespaces exist before down: {listed}"
    );

    let stale = fails(splitbrain().args(["cluster", "up", "--dir"]).arg(dir));
    assert!(stale.contains("already running"), "{stale}");
    assert!(ok(&["down"], dir).contains("is down"));
    assert_nothing_left(&netns, &data_dirs);
    assert!(!state_file.exists(), "state file removed last");
}

#[test]
fn an_unknown_database_is_refused_with_the_known_ones() {
    // Needs no lab: the name is checked before anything is created.
    let tmp = tempfile::tempdir().unwrap();
    let err = fails(
        splitbrain()
            .args(["cluster", "up", "--db", "nosuch", "--dir"])
            .arg(tmp.path()),
    );
    assert!(
        err.contains("unknown database `nosuch` (known: etcd"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn errors_name_the_cause_and_the_fix() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // etcd missing: a PATH with iproute2 but without etcd.
    let err = fails(
        splitbrain()
            .env("PATH", "/usr/sbin:/sbin")
            .args(["cluster", "up", "--dir"])
            .arg(dir),
    );
    assert!(err.contains("`etcd` not found on PATH"), "{err}");
    assert!(
        err.contains("scripts/setup") && err.contains("etcd-server"),
        "{err}"
    );

    // Not root.
    let err = fails(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_splitbrain"))
            .args(["cluster", "up", "--dir", "/tmp/splitbrain-not-root"]),
    );
    assert!(err.contains("needs root"), "{err}");

    // A stale state file: its cluster is gone.
    let _down = Down(dir.to_owned());
    ok(&["up", "--nodes", "1"], dir);

    // iptables missing, or not root: a fault says so before it touches anything.
    let err = fails(
        splitbrain()
            .env("PATH", "/usr/bin:/bin")
            .args(["nemesis", "partition", "isolate", "n1", "--dir"])
            .arg(dir),
    );
    assert!(err.contains("`iptables` not found on PATH"), "{err}");
    assert!(err.contains("apt-get install iptables"), "{err}");
    for fault in [
        &["partition", "isolate", "n1"][..],
        &["kill", "n1"],
        &["heal"],
    ] {
        let err = fails(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_splitbrain"))
                .arg("nemesis")
                .args(fault)
                .arg("--dir")
                .arg(dir),
        );
        assert!(err.contains("needs root"), "{fault:?}: {err}");
    }
    assert!(!dir.join("nemesis.json").exists(), "nothing was recorded");

    let saved = std::fs::read(dir.join("cluster.json")).unwrap();
    ok(&["down"], dir);
    std::fs::write(dir.join("cluster.json"), saved).unwrap();
    let err = fails(splitbrain().args(["cluster", "up", "--dir"]).arg(dir));
    assert!(err.contains("stale state file"), "{err}");
    assert!(
        err.contains(&format!("splitbrain cluster down --dir {}", dir.display())),
        "{err}"
    );
    ok(&["down"], dir);

    // An address in use: a route already claims the subnet asked for.
    let route = "10.77.233.0/24";
    let _ = Command::new("ip")
        .args(["route", "del", "blackhole", route])
        .stderr(Stdio::null())
        .status();
    assert!(Command::new("ip")
        .args(["route", "add", "blackhole", route])
        .status()
        .unwrap()
        .success());
    let out = cluster(&["up", "--subnet", "233"], dir);
    let _ = Command::new("ip")
        .args(["route", "del", "blackhole", route])
        .status();
    let err = out.exits(1).stderr;
    assert!(
        err.contains("subnet 10.77.233.0/24 is already in use"),
        "{err}"
    );
}

fn nemesis(args: &[&str], dir: &Path) -> Ran {
    Ran::of(splitbrain().arg("nemesis").args(args).arg("--dir").arg(dir))
}

fn nemesis_ok(args: &[&str], dir: &Path) -> String {
    nemesis(args, dir).exits(0).stdout
}

#[test]
fn a_partition_outlives_its_command_and_heal_removes_it() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _down = Down(dir.to_owned());
    ok(&["up", "--nodes", "3"], dir);
    let leader = wait_for_leader(dir);

    // The command that made the partition has exited, as a killed harness would.
    let made = nemesis_ok(&["partition", "isolate", "leader"], dir);
    assert!(
        made.contains(&format!("{leader} drops")),
        "isolates the leader {leader}: {made}"
    );
    let status = nemesis_ok(&["status"], dir);
    assert!(
        status.contains("members with partition rules: n1, n2, n3"),
        "{status}"
    );
    // The isolated leader cannot reach a quorum: the cluster is not healthy.
    assert_eq!(cluster(&["status"], dir).code, Some(1));

    let healed = nemesis_ok(&["heal"], dir);
    assert!(healed.starts_with("healed"), "{healed}");
    let status = nemesis_ok(&["status"], dir);
    assert!(status.contains("no partition recorded"), "{status}");
    assert!(status.contains("no member has partition rules"), "{status}");

    // Process faults: down until heal restarts and resumes them.
    let killed = nemesis_ok(&["kill", "minority"], dir);
    assert!(killed.starts_with("killed n"), "{killed}");
    let paused = nemesis_ok(&["pause", "minority"], dir);
    assert!(paused.starts_with("paused n"), "{paused}");
    let status = nemesis_ok(&["status"], dir);
    assert!(
        status.contains("killed: n") && status.contains("paused: n"),
        "{status}"
    );
    let too_many = nemesis(&["pause", "majority"], dir).exits(1).stderr;
    assert!(too_many.contains("heal first"), "{too_many}");
    let healed = nemesis_ok(&["heal"], dir);
    assert!(healed.contains("every member runs"), "{healed}");
    let status = ok(&["status"], dir);
    assert!(
        !status.contains("stopped") && !status.contains("paused"),
        "{status}"
    );

    let unknown = nemesis(&["partition", "isolate", "n9"], dir)
        .exits(1)
        .stderr;
    assert!(unknown.contains("no node `n9`"), "{unknown}");
    let no_clock = nemesis(&["clock", "bump", "1s"], dir).exits(1).stderr;
    assert!(
        no_clock.contains("runs without clock control"),
        "{no_clock}"
    );
    assert!(
        no_clock.contains("start it with `splitbrain cluster up --clock"),
        "{no_clock}"
    );
}

/// The `Date` header of a member's answer to `GET /version`, in seconds since the
/// epoch: etcd's own wall clock, as Go's net/http reads it.
fn etcd_date(url: &str) -> i64 {
    use std::io::{Read, Write};
    splitbrain_cluster::ensure_lab_url(url).expect("a lab address");
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the member");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /version HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let date = answer
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap_or_else(|| panic!("no Date header: {answer}"));
    parse_http_date(date.trim())
}

/// Asserts that `url`'s etcd clock reads real time plus `offset` seconds, give or
/// take a few seconds (the header has one-second resolution, and the test may be
/// slow).
fn assert_clock(url: &str, offset: i64, what: &str) {
    let before = now_secs();
    let date = etcd_date(url);
    let after = now_secs();
    assert!(
        date >= before + offset - 2 && date <= after + offset + 2,
        "{what}: {url} says {date}, real time was {before}..={after}, offset {offset} expected"
    );
}

#[test]
fn clock_faults_move_etcds_date_header_while_it_runs_and_heal_resets_them() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _down = Down(dir.to_owned());
    let up = ok(&["up", "--nodes", "3", "--clock"], dir);
    assert!(
        up.contains("clock control: splitbrain nemesis clock"),
        "{up}"
    );
    let endpoints = ok(&["endpoints"], dir);
    let urls: Vec<&str> = endpoints.trim().split(',').collect();
    let (n1, n2) = (urls[0], urls[1]);
    const DAY: i64 = 86400;
    const HOUR: i64 = 3600;
    assert_clock(n1, 0, "before any fault");

    let set = nemesis_ok(&["clock", "bump", "1d", "n1"], dir);
    assert!(set.contains("n1: +1d"), "{set}");
    assert_clock(n1, DAY, "n1 bumped by a day");
    assert_clock(n2, 0, "n2 untouched");
    // Changed again while etcd runs: a day and an hour back, to an hour behind.
    let set = nemesis_ok(&["clock", "bump", "-25h", "n1"], dir);
    assert!(set.contains("n1: -1h"), "{set}");
    assert_clock(n1, -HOUR, "n1 an hour behind");
    let status = nemesis_ok(&["status"], dir);
    assert!(
        status.contains("clocks: n1 -1h; n2 real time; n3 real time"),
        "{status}"
    );
    // A restarted member runs under the supervisor again, with its offset.
    ok(&["kill", "n1"], dir);
    ok(&["start", "n1"], dir);
    assert_clock(n1, -HOUR, "n1 restarted");
    // Clock faults do not break the cluster: raft runs on monotonic time.
    wait_healthy(dir);

    nemesis_ok(
        &[
            "clock", "strobe", "--delta", "10s", "--period", "50ms", "n2",
        ],
        dir,
    );
    nemesis_ok(&["clock", "skew", "2x"], dir);
    assert!(std::fs::read_dir(dir.join("n2"))
        .unwrap()
        .any(|e| e.unwrap().file_name() == "clock"));
    let healed = nemesis_ok(&["heal"], dir);
    assert!(healed.contains("every clock reads real time"), "{healed}");
    for url in &urls {
        assert_clock(url, 0, "after heal");
    }
    for n in ["n1", "n2", "n3"] {
        assert!(
            !dir.join(n).join("clock").exists(),
            "{n}'s offset file left"
        );
    }
    assert!(!dir.join("nemesis.json").exists());
    let status = nemesis_ok(&["status"], dir);
    assert!(
        status.contains("clocks: n1 real time; n2 real time; n3 real time"),
        "{status}"
    );
    wait_healthy(dir);

    // Bad input says what is wrong.
    for (args, says) in [
        (vec!["clock", "bump", "10"], "has no unit"),
        (vec!["clock", "skew", "0x"], "must run forward"),
        (vec!["clock", "bump", "1s", "n9"], "no node `n9`"),
    ] {
        let out = nemesis(&args, dir);
        assert_ne!(out.code, Some(0), "{args:?}");
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }

    // Down leaves nothing: no member, no supervisor, no clock handler, not even
    // as a zombie.
    let (netns, data_dirs) = recorded(dir);
    let procs = lab_processes(dir);
    assert_eq!(procs.len(), 6, "members and clock handlers: {procs:?}");
    assert!(ok(&["down"], dir).contains("is down"));
    assert_gone(&procs, "cluster down of a lab with clock control");
    assert_nothing_left(&netns, &data_dirs);
}

fn wait_healthy(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster(&["status"], dir).code != Some(0) {
        assert!(Instant::now() < deadline, "not healthy 30 s after the heal");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run directory of the one lab a `splitbrain test` with `--store store` runs.
fn test_lab_dir(store: &Path) -> Option<PathBuf> {
    // Real directories only: `store/latest` is a symbolic link.
    let dir_in = |d: &Path| {
        std::fs::read_dir(d)
            .ok()?
            .flatten()
            .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
    };
    Some(dir_in(&dir_in(store)?)?.join("cluster"))
}

/// `splitbrain` with a registry of its own: the `--all` commands below see only the
/// labs of this test, never those of whatever else runs on the machine.
fn splitbrain_in(registry: &Path) -> Command {
    let mut cmd = splitbrain();
    cmd.env(splitbrain_cluster::REGISTRY_ENV, registry);
    cmd
}

/// `splitbrain test ARGS --store STORE` in the background, its output dropped,
/// with `registry` as its lab registry.
fn spawn_test(registry: &Path, args: &str, store: &Path) -> Child {
    test_cmd(args, store)
        .env(splitbrain_cluster::REGISTRY_ENV, registry)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run splitbrain test")
}

#[test]
fn a_test_returns_only_once_every_process_of_its_lab_is_gone() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let registry = tmp.path().join("registry");
    // Kills and partitions: members restarted by a heal are this run's children too.
    let faults = "--nemesis kill,partition --nemesis-interval 1 --nemesis-duration 1";
    let args = format!("--time-limit 5 --concurrency 3 {faults}");
    let mut test = spawn_test(&registry, &args, &store);
    // Every process the lab ever shows while the test runs.
    let mut seen = Vec::new();
    let status = loop {
        if let Some(dir) = test_lab_dir(&store) {
            seen.extend(lab_processes(&dir));
        }
        if let Some(status) = test.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_gone(&seen, "splitbrain test");
    seen.sort();
    seen.dedup();
    assert!(
        seen.len() >= 3,
        "the lab's members were seen while the test ran: {seen:?}"
    );
    assert!(
        matches!(status.code(), Some(0..=2)),
        "a verdict, not a failure: {status}"
    );
    let registered = std::fs::read_dir(&registry).map_or(0, |d| d.count());
    assert_eq!(registered, 0, "the lab is forgotten");
}

#[test]
fn after_a_killed_test_heal_and_down_say_where_to_look_and_all_cleans_up() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let registry = tmp.path().join("registry");
    let faults = "--nemesis partition --nemesis-interval 1 --nemesis-duration 120";
    let args = format!("--time-limit 120 --concurrency 3 {faults}");
    let mut test = spawn_test(&registry, &args, &store);
    // SIGKILL in the middle of a partition: nothing of the test's cleans up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let dir = loop {
        if let Some(dir) = test_lab_dir(&store) {
            let faults = std::fs::read_to_string(dir.join("nemesis.json")).unwrap_or_default();
            if faults.contains("partition") && !lab_processes(&dir).is_empty() {
                break dir;
            }
        }
        assert!(Instant::now() < deadline, "no partition within 120 s");
        assert_eq!(test.try_wait().unwrap(), None, "the test ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    test.kill().unwrap();
    test.wait().unwrap();
    let (netns, data_dirs) = recorded(&dir);
    let procs = lab_processes(&dir);
    assert_eq!(
        procs.len(),
        3,
        "the members outlive the killed test: {procs:?}"
    );

    // The commands a user tries first say where the lab is, and what cleans up.
    let nowhere = tmp.path().join("nowhere");
    std::fs::create_dir(&nowhere).unwrap();
    for args in [&["nemesis", "heal"][..], &["cluster", "status"]] {
        let err = fails(
            splitbrain_in(&registry)
                .args(args)
                .arg("--dir")
                .arg(&nowhere),
        );
        assert!(err.contains("no cluster in"), "{args:?}: {err}");
        assert!(
            err.contains(&dir.display().to_string()),
            "{args:?} names the lab: {err}"
        );
        assert!(
            err.contains("splitbrain nemesis heal --all")
                && err.contains("splitbrain cluster down --all"),
            "{args:?}: {err}"
        );
    }
    let said = Ran::of(
        splitbrain_in(&registry)
            .args(["cluster", "down", "--dir"])
            .arg(&nowhere),
    )
    .exits(0)
    .stdout;
    assert!(
        said.contains("nothing to do") && said.contains("cluster down --all"),
        "{said}"
    );

    let all = |args: &[&str]| Ran::of(splitbrain_in(&registry).args(args).arg("--all"));
    let healed = all(&["nemesis", "heal"]).exits(0).stdout;
    assert!(
        healed.contains(&format!("healed the lab in {}", dir.display())),
        "{healed}"
    );
    let status = nemesis_ok(&["status"], &dir);
    assert!(status.contains("no member has partition rules"), "{status}");
    assert!(!dir.join("nemesis.json").exists(), "every fault forgotten");

    let down = all(&["cluster", "down"]).exits(0).stdout;
    assert!(down.contains("is down"), "{down}");
    assert_gone(&procs, "cluster down --all");
    assert_nothing_left(&netns, &data_dirs);
    let again = all(&["cluster", "down"]).exits(0).stdout;
    assert!(again.contains("no clusters registered"), "{again}");
}
