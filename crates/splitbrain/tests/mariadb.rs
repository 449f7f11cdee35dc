//! MariaDB 10.11 in the lab (`--db mariadb`), as a user drives it: the cluster's
//! commands, the native client in both read modes, a failover after the primary is
//! killed and the old primary's rejoin, and `splitbrain test` whose nemesis fails
//! over by itself. Needs root and Debian's `mariadb-server` and `mariadb-client`
//! (`sudo scripts/setup`); without them the test prints `SKIPPED: ...` and passes,
//! except under `CI=true`, where that is a failure.
//!
//! In the first test one cluster serves every step, each checked before the next.

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
    // The primary itself cannot rejoin: refused before it is touched (the same
    // process still runs, its data with it), it still leads.
    let pid_of = |name: &str| {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap())
                .unwrap();
        state["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| n["pid"].clone())
    };
    let before = pid_of(&leader);
    assert!(before.as_ref().is_some_and(|p| p.is_i64()), "{before:?}");
    let refused = cluster(&["rejoin", &leader], &dir).exits(1).stderr;
    assert!(refused.contains("is not another member"), "{refused}");
    assert_eq!(pid_of(&leader), before, "the primary was restarted");
    assert_eq!(cluster(&["leader"], &dir).exits(0).stdout.trim(), leader);
    // Rejoined, it is initialised afresh from the new primary and replicates from it:
    // every member healthy, the new primary still leads.
    let rejoined = cluster(&["rejoin", "n1"], &dir).exits(0).stdout;
    assert!(rejoined.contains("n1 rejoined"), "{rejoined}");
    splitbrain_testkit::eventually("every member healthy after the rejoin", || {
        (cluster(&["status"], &dir).code == Some(0)).then_some(())
    });
    assert_eq!(cluster(&["leader"], &dir).exits(0).stdout.trim(), leader);

    // A paused and a killed member at `down`: both gone, and every namespace.
    let rest: Vec<&str> = ["n2", "n3"].into_iter().filter(|n| *n != leader).collect();
    cluster(&["pause", &leader], &dir).exits(0);
    cluster(&["kill", rest[0]], &dir).exits(0);
    cluster(&["down"], &dir).exits(0);
    assert_lab_gone(&dir, &netns);
}

/// `splitbrain test` with kills: the seed's first fault kills the primary n1, the
/// nemesis fails over two seconds into it, the clients follow the promoted replica,
/// and the heal rejoins n1 as a replica so that the final read on every member works.
#[test]
fn a_mariadb_test_run_fails_over_a_killed_primary_by_itself_and_leaves_nothing() {
    let Some(_lab) = splitbrain_testkit::lab_of("mariadb", &[]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let ran = Ran::of(&mut test_cmd(
        "--db mariadb --workload set --nemesis kill --nemesis-interval 2 --nemesis-duration 8 \
         --time-limit 11 --rate 300 --concurrency 6 --consistency all --seed 1",
        &store,
    ));
    // A verdict: 0 or 1 (a failover may lose what the primary had not shipped).
    assert!(
        matches!(ran.code, Some(0 | 1)),
        "{} -> {:?}\n{}\n{}",
        ran.command,
        ran.code,
        ran.stdout,
        ran.stderr
    );
    let run = latest(&store);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert!(
        results["report"]["levels"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{results}"
    );
    let ops = history(&run);
    let nemesis: Vec<&serde_json::Value> =
        ops.iter().filter(|o| o["process"] == "nemesis").collect();
    let fs: Vec<&str> = nemesis.iter().filter_map(|o| o["f"].as_str()).collect();
    assert!(fs.len() >= 3, "too few nemesis ops: {nemesis:?}");
    assert_eq!(
        fs[..3],
        ["start-kill", "failover", "stop-kill"],
        "the seed no longer kills the primary first: {nemesis:?}"
    );
    let (kill, failover, stop) = (nemesis[0], nemesis[1], nemesis[2]);
    assert_eq!(kill["value"], serde_json::json!(["n1"]));
    assert_eq!(failover["value"]["old"], "n1", "{failover}");
    assert_eq!(failover["value"]["epoch"], 2, "{failover}");
    // Each candidate's position by member, the promoted one among them.
    let positions = failover["value"]["positions"].as_object();
    assert!(
        positions.is_some_and(|p| p.contains_key(failover["value"]["new"].as_str().unwrap_or("?"))),
        "{failover}"
    );
    assert!(failover["error"].is_null(), "{failover}");
    let new = failover["value"]["new"].as_str().unwrap();
    assert!(new == "n2" || new == "n3", "{failover}");
    assert_eq!(stop["value"]["rejoined"], "n1", "{stop}");
    let heal = nemesis.last().unwrap();
    assert!(heal["f"] == "heal" && heal["error"].is_null(), "{heal}");
    // With n1 dead, every add acknowledged between the failover and the restart was
    // written on the promoted replica.
    let (from, to) = (
        failover["index"].as_u64().unwrap(),
        stop["index"].as_u64().unwrap(),
    );
    let adds = count(&ops, |o| {
        o["type"] == "ok"
            && o["f"] == "add"
            && o["index"].as_u64().is_some_and(|i| from < i && i < to)
    });
    assert!(adds > 0, "no add acknowledged after the failover");
    // The final read works on every member, the rejoined one too.
    let finals: Vec<&serde_json::Value> = ops
        .iter()
        .filter(|o| o["type"] == "ok" && o["final"] == true)
        .collect();
    let nodes: std::collections::BTreeSet<&str> =
        finals.iter().filter_map(|o| o["node"].as_str()).collect();
    assert_eq!(nodes.len(), 3, "final reads: {finals:?}");
    let log = std::fs::read_to_string(run.join("test.log")).unwrap();
    assert!(
        log.contains("nemesis: failover from n1") && log.contains("n1 rejoined"),
        "{log}"
    );
    let cluster_dir = run.join("cluster");
    assert!(
        !cluster_dir.join("cluster.json").exists(),
        "state file left"
    );
    assert_lab_gone(&cluster_dir, &[]);
}
