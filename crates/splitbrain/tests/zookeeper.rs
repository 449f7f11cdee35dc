//! ZooKeeper 3.8 in the lab (`--db zookeeper`), as a user drives it: the cluster's
//! commands, the native client, and `splitbrain test` with faults. Needs root and
//! Debian's `zookeeper` and a JRE (`sudo scripts/setup`); without them each test prints
//! `SKIPPED: ...` and passes, except under `CI=true`, where that is a failure.
//!
//! A JVM takes a while to start, so one cluster serves the first test's steps, each
//! checked before the next.

mod common;
use common::{
    assert_lab_gone, cluster, count, history, lab_namespaces, latest, test_cmd, Down, Ran,
};

use std::sync::MutexGuard;

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab_of("zookeeper", &[])
}

#[test]
fn a_zookeeper_lab_comes_up_serves_the_client_survives_faults_and_leaves_nothing() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let store = tmp.path().join("store");
    let _down = Down(dir.to_path_buf());

    let up = cluster(&["up", "--db", "zookeeper"], &dir).exits(0).stdout;
    assert!(up.contains("endpoints: zk://10.77."), "{up}");
    assert!(up.contains("zookeeper.log"), "{up}");
    let netns = lab_namespaces(&dir);
    let endpoints = cluster(&["endpoints"], &dir)
        .exits(0)
        .stdout
        .trim()
        .to_owned();
    let status = cluster(&["status"], &dir).exits(0).stdout;
    assert!(
        status.contains("healthy") && status.contains('*'),
        "{status}"
    );
    // The member is the JVM itself: its command line is the server's main class.
    let state = std::fs::read_to_string(dir.join("cluster.json")).unwrap();
    assert!(state.contains("QuorumPeerMain"), "{state}");

    // The native client, both read modes: reads carry the node's mzxid, compares
    // that lose fail, nothing is left unknown without faults.
    // With sync the client is named; with plain it follows the zk:// URLs.
    for (mode, client) in [("plain", ""), ("sync", "--client zookeeper")] {
        let args = format!(
            "--nodes {endpoints} {client} --read-mode {mode} --workload cas-register --time-limit 4 --concurrency 6 --consistency sequential --name zk-{mode}"
        );
        let ran = Ran::of(&mut test_cmd(&args, &store));
        assert!(
            matches!(ran.code, Some(0 | 1)),
            "{} -> {:?}\n{}",
            ran.command,
            ran.code,
            ran.stderr
        );
        let ops = history(&latest(&store));
        let ok = |f: &'static str| move |o: &serde_json::Value| o["type"] == "ok" && o["f"] == f;
        assert!(count(&ops, ok("read")) > 0, "no ok read ({mode})");
        assert!(count(&ops, ok("write")) > 0, "no ok write ({mode})");
        assert!(count(&ops, ok("cas")) > 0, "no ok cas ({mode})");
        assert!(
            count(&ops, |o| o["type"] == "ok"
                && o["f"] == "write"
                && o["version"].as_u64().is_none())
                == 0,
            "a write without its mzxid ({mode})"
        );
        assert!(
            count(&ops, |o| o["type"] == "fail"
                && o["f"] == "cas"
                && o["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("compare failed")))
                > 0,
            "no cas lost its compare ({mode})"
        );
        assert_eq!(
            count(&ops, |o| o["type"] == "info"),
            0,
            "info without faults ({mode})"
        );
    }

    // Kill the leader: another is elected; it comes back as a follower.
    let leader = cluster(&["leader"], &dir).exits(0).stdout.trim().to_owned();
    cluster(&["kill", &leader], &dir).exits(0);
    let new = splitbrain_testkit::eventually("a new leader after the kill", || {
        let l = cluster(&["leader"], &dir);
        (l.code == Some(0) && l.stdout.trim() != leader).then(|| l.stdout.trim().to_owned())
    });
    assert_ne!(new, leader);
    cluster(&["start", &leader], &dir).exits(0);
    splitbrain_testkit::eventually("every member healthy after the restart", || {
        (cluster(&["status"], &dir).code == Some(0)).then_some(())
    });

    // A paused JVM and a killed one at `down`: both gone, and every namespace.
    let others: Vec<String> = ["n1", "n2", "n3"]
        .iter()
        .filter(|n| **n != new)
        .map(|n| n.to_string())
        .collect();
    cluster(&["pause", &others[0]], &dir).exits(0);
    cluster(&["kill", &others[1]], &dir).exits(0);
    cluster(&["down"], &dir).exits(0);
    assert_lab_gone(&dir, &netns);
}

#[test]
fn splitbrain_test_runs_zookeeper_under_every_process_and_network_fault_and_cleans_up() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // The one-line demo's shape, short, with kills and pauses too, on five members
    // (the first test has three); the client follows the database.
    let ran = Ran::of(&mut test_cmd(
        "--db zookeeper --cluster-size 5 --read-mode plain --nemesis partition,kill,pause --nemesis-interval 2 --nemesis-duration 3 --time-limit 14 --workload register --keys 3 --ops-per-key 150 --consistency all",
        &store,
    ));
    assert!(
        matches!(ran.code, Some(0 | 1)),
        "{} -> {:?}\n{}",
        ran.command,
        ran.code,
        ran.stderr
    );
    let run = latest(&store);
    assert!(
        run.display().to_string().contains("register-zookeeper"),
        "{}",
        run.display()
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert!(
        results["run"]["faults"].as_u64().unwrap_or(0) > 0,
        "{results}"
    );
    let ops = history(&run);
    assert!(
        count(&ops, |o| o["process"] == "nemesis"
            || o["f"].as_str().is_some_and(|f| f.starts_with("start-")))
            > 0
    );
    // Every member's log says it ran; the lab is gone.
    let cluster_dir = run.join("cluster");
    for n in 1..=5 {
        assert!(
            cluster_dir.join(format!("n{n}/zookeeper.log")).is_file(),
            "n{n}"
        );
    }
    assert!(
        !cluster_dir.join("cluster.json").exists(),
        "state file left"
    );
    assert_lab_gone(&cluster_dir, &[]);
}
