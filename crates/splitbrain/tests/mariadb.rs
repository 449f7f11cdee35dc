//! MariaDB 10.11 in the lab (`--db mariadb`), as a user drives it: the cluster's
//! commands, the native client in both read modes, and a failover after the primary
//! is killed. Needs root and Debian's `mariadb-server` and `mariadb-client`
//! (`sudo scripts/setup`); without them the test prints `SKIPPED: ...` and passes,
//! except under `CI=true`, where that is a failure.
//!
//! One cluster serves every step, each checked before the next.

mod common;
use common::{
    assert_lab_gone, cluster, count, history, lab_namespaces, latest, test_cmd, Down, Ran,
};

#[test]
fn a_mariadb_lab_replicates_serves_both_read_modes_fails_over_and_leaves_nothing() {
    let Some(_lab) = splitbrain_testkit::lab_of("mariadb", &[]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let store = tmp.path().join("store");
    let _down = Down(dir.to_path_buf());

    let up = cluster(&["up", "--db", "mariadb"], &dir).exits(0).stdout;
    assert!(up.contains("endpoints: mysql://10.77."), "{up}");
    assert!(up.contains("leader n1"), "{up}");
    let netns = lab_namespaces(&dir);
    let endpoints = cluster(&["endpoints"], &dir)
        .exits(0)
        .stdout
        .trim()
        .to_owned();
    let status = cluster(&["status"], &dir).exits(0).stdout;
    assert!(status.contains("healthy"), "{status}");
    assert_eq!(cluster(&["leader"], &dir).exits(0).stdout.trim(), "n1");
    // The member is mariadbd itself, and everything it writes is in the run directory.
    let state = std::fs::read_to_string(dir.join("cluster.json")).unwrap();
    assert!(
        state.contains("mariadbd") && state.contains("--no-defaults"),
        "{state}"
    );
    for n in 1..=3 {
        for file in [
            "mysqld.sock",
            "mysqld.pid",
            "data/binlog.index",
            "mariadb.log",
        ] {
            let path = dir.join(format!("n{n}/{file}"));
            assert!(path.exists(), "{} missing", path.display());
        }
    }
    // Nothing to fail over while the primary replicates.
    let refused = cluster(&["failover"], &dir).exits(1).stderr;
    assert!(refused.contains("nothing to fail over"), "{refused}");

    // The native client in both read modes: writes carry their GTID's sequence
    // number, compares that lose fail, nothing is unknown without faults. Through the
    // primary the register is linearizable; the mysql:// URLs name the client.
    for (mode, expect) in [("primary", Some(0)), ("replica", None)] {
        let args = format!(
            "--nodes {endpoints} --read-mode {mode} --workload cas-register --keys 4 --time-limit 3 --concurrency 6 --consistency linearizable --name mariadb-{mode}"
        );
        let ran = Ran::of(&mut test_cmd(&args, &store));
        match expect {
            Some(code) => assert_eq!(
                ran.code,
                Some(code),
                "{}\n{}\n{}",
                ran.command,
                ran.stdout,
                ran.stderr
            ),
            None => assert!(
                matches!(ran.code, Some(0 | 1)),
                "{} -> {:?}\n{}",
                ran.command,
                ran.code,
                ran.stderr
            ),
        }
        let ops = history(&latest(&store));
        let ok = |f: &'static str| move |o: &serde_json::Value| o["type"] == "ok" && o["f"] == f;
        assert!(count(&ops, ok("read")) > 0, "no ok read ({mode})");
        assert!(count(&ops, ok("write")) > 0, "no ok write ({mode})");
        assert!(count(&ops, ok("cas")) > 0, "no ok cas ({mode})");
        assert_eq!(
            count(&ops, |o| o["type"] == "ok"
                && o["f"] == "write"
                && o["version"].as_u64().is_none()),
            0,
            "a write without its GTID ({mode})"
        );
        assert!(
            count(&ops, |o| o["type"] == "fail"
                && o["f"] == "cas"
                && o["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("did not hold")))
                > 0,
            "no cas lost its compare ({mode})"
        );
        assert_eq!(
            count(&ops, |o| o["type"] == "info"),
            0,
            "info without faults ({mode})"
        );
    }

    // Kill the primary: the failover promotes a replica, the clients find it.
    cluster(&["kill", "n1"], &dir).exits(0);
    let failover = cluster(&["failover"], &dir).exits(0).stdout;
    assert!(
        failover.contains("in place of n1") && failover.contains("epoch 2"),
        "{failover}"
    );
    let leader = cluster(&["leader"], &dir).exits(0).stdout.trim().to_owned();
    assert!(leader == "n2" || leader == "n3", "{leader}");
    assert!(
        failover.contains(&format!("promoted {leader}")),
        "{failover}"
    );
    let others: Vec<String> = endpoints
        .split(',')
        .filter(|e| !e.contains(".1:"))
        .map(str::to_owned)
        .collect();
    let args = format!(
        "--nodes {} --workload set --time-limit 2 --concurrency 4 --consistency linearizable --name mariadb-after-failover",
        others.join(",")
    );
    let ran = Ran::of(&mut test_cmd(&args, &store));
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.command, ran.stderr);
    let ops = history(&latest(&store));
    assert!(
        count(&ops, |o| o["type"] == "ok" && o["f"] == "add") > 0,
        "no add on the new primary"
    );
    // The old primary comes back read-only, following nobody: the new one stays.
    cluster(&["start", "n1"], &dir).exits(0);
    splitbrain_testkit::eventually("n1 answering after its restart", || {
        let s = cluster(&["status"], &dir).stdout;
        s.lines()
            .any(|l| l.starts_with("n1 ") && l.contains("healthy") && !l.contains("no:"))
            .then_some(())
    });
    assert_eq!(cluster(&["leader"], &dir).exits(0).stdout.trim(), leader);

    // A paused and a killed member at `down`: both gone, and every namespace.
    let rest: Vec<&str> = ["n2", "n3"].into_iter().filter(|n| *n != leader).collect();
    cluster(&["pause", &leader], &dir).exits(0);
    cluster(&["kill", rest[0]], &dir).exits(0);
    cluster(&["down"], &dir).exits(0);
    assert_lab_gone(&dir, &netns);
}
