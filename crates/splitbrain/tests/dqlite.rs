//! dqlite (`dqlite-demo` from Debian's go-dqlite) as the lab's second database: `cluster
//! up --db dqlite` as a user types it, and `splitbrain test --db dqlite` through the
//! generic http client (workloads/clients/dqlite.toml) with partitions and kills. Real
//! members, so root, iproute2 and go-dqlite are needed (`sudo scripts/setup`); without
//! them a test prints `SKIPPED: ...` and passes, except under `CI=true`, where that is
//! a failure.

mod common;
use common::{latest, splitbrain, test_cmd, text, Ran};

use splitbrain_history::{History, OpType};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::MutexGuard;

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["dqlite-demo", "dqlite", "curl"])
}

/// `splitbrain cluster ARGS --dir DIR`, run to its end.
fn cluster(args: &[&str], dir: &Path) -> Ran {
    Ran::of(splitbrain().arg("cluster").args(args).arg("--dir").arg(dir))
}

fn ok(args: &[&str], dir: &Path) -> String {
    cluster(args, dir).exits(0).stdout
}

/// Takes the cluster in `dir` down when dropped, whatever the test did.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let out = cluster(&["down"], &self.0);
        if out.code != Some(0) {
            eprintln!("cleanup: splitbrain cluster down failed: {}", out.stderr);
        }
    }
}

/// `curl` against a member's API (inside the lab, reached through its bridge).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--noproxy", "*"])
        .args(args)
        .output()
        .unwrap();
    text(&out.stdout)
}

/// The lab's member processes still running: any process whose command line names
/// `dir` (members are started with their data directory in it).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()))
        .filter_map(|e| {
            let cmdline = text(&std::fs::read(e.path().join("cmdline")).unwrap_or_default());
            cmdline.contains(&needle).then(|| cmdline.replace('\0', " "))
        })
        .collect()
}

/// The network namespaces the state file in `dir` records.
fn recorded_netns(dir: &Path) -> Vec<String> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let mut netns = vec![state["bridge_netns"].as_str().unwrap().to_owned()];
    for n in state["nodes"].as_array().unwrap() {
        netns.push(n["netns"].as_str().unwrap().to_owned());
    }
    netns
}

fn assert_netns_gone(netns: &[String]) {
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
}

fn leader(dir: &Path) -> String {
    splitbrain_testkit::eventually("a dqlite leader", || {
        let out = cluster(&["leader"], dir);
        (out.code == Some(0)).then(|| out.stdout.trim().to_owned())
    })
}

#[test]
fn a_dqlite_cluster_comes_up_serves_keeps_data_across_a_leader_kill_and_goes_down_without_a_trace(
) {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let _down = Down(dir.clone());

    let up = ok(&["up", "--db", "dqlite", "--nodes", "3"], &dir);
    assert!(up.starts_with("cluster up in "), "{up}");
    let line = up
        .lines()
        .find(|l| l.starts_with("endpoints: "))
        .unwrap_or_else(|| panic!("no endpoints line: {up}"));
    let urls: Vec<String> = line["endpoints: ".len()..]
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(urls.len(), 3, "{up}");
    assert!(
        urls.iter()
            .all(|u| u.starts_with("http://10.77.") && u.ends_with(":8001")),
        "{urls:?}"
    );
    assert!(up.contains("/nI/dqlite.log"), "{up}");
    assert_eq!(ok(&["endpoints"], &dir).trim(), urls.join(","));
    let status = ok(&["status"], &dir);
    assert!(status.contains("healthy"), "{status}");

    // A write through one member is read through another: every API goes to the leader.
    assert_eq!(
        curl(&["-X", "PUT", "--data-binary", "42", &format!("{}/k", urls[1])]).trim(),
        "done"
    );
    assert_eq!(curl(&[&format!("{}/k", urls[2])]).trim(), "42");
    assert!(
        curl(&[&format!("{}/absent", urls[0])]).contains("no rows in result set"),
        "an absent key"
    );

    // Kill the leader: the others elect one and still have the value.
    let first = leader(&dir);
    assert!(ok(&["kill", &first], &dir).contains("killed"));
    assert_eq!(cluster(&["status"], &dir).code, Some(1), "a member is down");
    let second = leader(&dir);
    assert_ne!(first, second, "a killed member cannot lead");
    let survivor = urls
        .iter()
        .enumerate()
        .find(|(i, _)| format!("n{}", i + 1) != first)
        .map(|(_, u)| u.clone())
        .unwrap();
    let read = splitbrain_testkit::eventually("a read after the leader's kill", || {
        let v = curl(&[&format!("{survivor}/k")]);
        (!v.starts_with("Error") && !v.is_empty()).then_some(v)
    });
    assert_eq!(read.trim(), "42");
    // It comes back with its data and the same command line (its --join is ignored).
    ok(&["start", &first], &dir);
    splitbrain_testkit::eventually("every member healthy again", || {
        (cluster(&["status"], &dir).code == Some(0)).then_some(())
    });

    let logs = std::fs::read_to_string(dir.join("n1").join("dqlite.log")).unwrap();
    assert!(!logs.is_empty(), "the member's log is kept");
    let netns = recorded_netns(&dir);
    assert_eq!(processes_naming(&dir).len(), 3, "three members");
    assert!(ok(&["down"], &dir).contains("is down"));
    let left = processes_naming(&dir);
    assert!(left.is_empty(), "left after down: {left:?}");
    assert_netns_gone(&netns);
}

/// `splitbrain test --db dqlite` with its defaults (the http client and
/// workloads/clients/dqlite.toml, the register workload), under partitions and kills.
#[test]
fn dqlite_through_the_generic_http_client_stays_linearizable_under_partitions_and_kills() {
    let Some(_lab) = lab() else { return };
    let store = tempfile::tempdir().unwrap();
    let faults = "--nemesis partition,kill --nemesis-interval 2 --nemesis-duration 3";
    let out = Ran::of(&mut test_cmd(
        &format!("--db dqlite --keys 3 {faults} --time-limit 12 --consistency all"),
        store.path(),
    ));
    let run = latest(store.path());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("linearizable holds"),
        "{}",
        out.stdout
    );
    assert!(
        run.display().to_string().contains("register-http"),
        "the default workload and client: {}",
        run.display()
    );

    let h = History::from_jsonl_file(run.join("history.jsonl")).unwrap();
    let ok_reads = h
        .ops()
        .iter()
        .filter(|o| o.f == "read" && o.kind == OpType::Ok && !o.is_final)
        .count();
    let ok_writes = h
        .ops()
        .iter()
        .filter(|o| o.f == "write" && o.kind == OpType::Ok)
        .count();
    assert!(ok_reads > 0 && ok_writes > 0, "{ok_reads} reads, {ok_writes} writes");
    let starts: Vec<&str> = h
        .ops()
        .iter()
        .filter(|o| o.is_nemesis() && o.f.starts_with("start-"))
        .map(|o| o.f.as_str())
        .collect();
    assert!(starts.contains(&"start-partition"), "{starts:?}");
    assert!(starts.contains(&"start-kill"), "{starts:?}");
    assert_eq!(results["run"]["faults"].as_u64(), Some(starts.len() as u64));

    // The run's lab is gone: no dqlite-demo, no namespace, nothing for `down` to do.
    let lab_dir = run.join("cluster");
    assert!(processes_naming(&lab_dir).is_empty());
    assert!(!splitbrain_cluster::down(&lab_dir).unwrap());
}
