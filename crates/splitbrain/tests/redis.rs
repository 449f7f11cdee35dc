//! `--db redis` against real Redis 7.0 members with Sentinel (Debian `redis-server`,
//! `redis-sentinel`), one member per namespace: root, iproute2 and both packages are
//! needed (`sudo scripts/setup`). Without them a test prints `SKIPPED: ...` and
//! passes, except under `CI=true`, where that is a failure.

mod common;
use common::{cluster, leader, splitbrain, test_cmd, text, Down, Ran};

use std::path::Path;
use std::sync::MutexGuard;

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["redis-server", "redis-sentinel"])
}

/// Process ids of Redis processes (`redis-server` or `redis-sentinel`) whose command
/// line names `dir`.
fn redis_of(dir: &Path, program: &str) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = text(&std::fs::read(e.path().join("cmdline")).ok()?);
            (cmdline.contains(program) && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

/// A member is redis-server plus its sentinel; the sentinels fail over when the
/// primary is killed; `start` brings it back as a replica; `down` leaves no process.
#[test]
fn a_redis_lab_fails_over_a_killed_primary_and_leaves_no_process() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let _down = Down(dir.clone());
    let up = Ran::of(splitbrain().args([
        "cluster",
        "up",
        "--db",
        "redis",
        "--dir",
        dir.to_str().unwrap(),
        "--timeout",
        "60",
    ]))
    .exits(0)
    .stdout;
    assert!(up.contains("redis://") && up.contains(":6379"), "{up}");
    assert_eq!(redis_of(&dir, "redis-server").len(), 3);
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 3);
    // The state file records each sentinel's pid beside its member's.
    let state = std::fs::read_to_string(dir.join("cluster.json")).unwrap();
    assert_eq!(
        state.matches("\"name\": \"sentinel\"").count(),
        3,
        "{state}"
    );
    assert_eq!(leader(&dir).as_deref(), Some("n1"));

    // Kill acts on redis-server only; the sentinels promote a replica.
    cluster(&["kill", "n1"], &dir).exits(0);
    assert_eq!(redis_of(&dir, "redis-server").len(), 2);
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 3);
    let new =
        splitbrain_testkit::eventually("a promoted replica", || leader(&dir).filter(|l| l != "n1"));
    assert!(new == "n2" || new == "n3", "{new}");
    // Restarted, the old primary is turned into a replica of the new one.
    cluster(&["start", "n1"], &dir).exits(0);
    splitbrain_testkit::eventually("every member healthy again", || {
        (cluster(&["status"], &dir).code == Some(0)).then_some(())
    });
    assert_eq!(leader(&dir).as_deref(), Some(new.as_str()));

    // `--process sentinel` acts on a member's sentinel alone; `start` brings back
    // whichever of its processes is down; a process it does not run is named.
    cluster(&["kill", "n2", "--process", "sentinel"], &dir).exits(0);
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 2);
    assert_eq!(redis_of(&dir, "redis-server").len(), 3);
    cluster(&["pause", "n3", "--process", "sentinel"], &dir).exits(0);
    cluster(&["resume", "n3", "--process", "sentinel"], &dir).exits(0);
    cluster(&["start", "n2"], &dir).exits(0);
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 3);
    let wrong = cluster(&["kill", "n2", "--process", "webdis"], &dir);
    assert_ne!(wrong.code, Some(0));
    assert!(
        wrong.stderr.contains("no process `webdis`") && wrong.stderr.contains("sentinel"),
        "{}",
        wrong.stderr
    );
    // The nemesis's hand command likewise, and its heal restarts the sentinel.
    let nemesis = |args: &[&str]| {
        let mut cmd = splitbrain();
        cmd.arg("nemesis")
            .args(args)
            .args(["--dir", dir.to_str().unwrap()]);
        Ran::of(&mut cmd)
    };
    let killed = nemesis(&["kill", "n1", "--process", "sentinel"]).exits(0);
    assert!(
        killed.stdout.contains("the sentinel of n1"),
        "{}",
        killed.stdout
    );
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 2);
    nemesis(&["heal"]).exits(0);
    assert_eq!(redis_of(&dir, "redis-sentinel").len(), 3);
    assert_eq!(redis_of(&dir, "redis-server").len(), 3);

    cluster(&["down"], &dir).exits(0);
    assert!(
        redis_of(&dir, "redis-server").is_empty(),
        "redis-server left"
    );
    assert!(redis_of(&dir, "redis-sentinel").is_empty(), "sentinel left");
}

/// The one-line demo of the finding, shortened: a set workload on Redis under a
/// partition that cuts the primary off (seeded so that the first partition isolates
/// it, the other workers following the sentinels to the promoted replica) loses
/// acknowledged adds, and the run says so.
#[test]
fn a_redis_set_under_a_partition_of_the_primary_loses_acknowledged_adds() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = Ran::of(&mut test_cmd(
        "--db redis --workload set --nemesis partition --nemesis-interval 2 \
         --nemesis-duration 10 --time-limit 12 --rate 300 --concurrency 6 \
         --consistency all --seed 1",
        &store,
    ));
    // 1: not linearizable, which the run prints.
    assert_eq!(
        out.code,
        Some(1),
        "{}\n{}\n{}",
        out.command,
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("lost"), "{}", out.stdout);
    let history = std::fs::read_to_string(common::latest(&store).join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""n1":["n2","n3"]"#),
        "the seed no longer isolates the primary n1 first"
    );
    assert!(
        redis_of(tmp.path(), "redis-").is_empty(),
        "redis left running after the test"
    );
}

/// `--nemesis-process sentinel,server`: the run's kills and pauses hit the sentinels
/// as well as the servers, each says which in the history, and every sentinel is
/// back (and nothing left) when the run ends.
#[test]
fn the_nemesis_kills_and_pauses_sentinels_when_asked() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = Ran::of(&mut test_cmd(
        "--db redis --workload register --nemesis kill,pause \
         --nemesis-process sentinel,server --nemesis-interval 1 --nemesis-duration 2 \
         --time-limit 14 --rate 100 --concurrency 3 --seed 7",
        &store,
    ));
    assert!(
        matches!(out.code, Some(0 | 1)),
        "{}\n{}\n{}",
        out.command,
        out.stdout,
        out.stderr
    );
    let ops = common::history(&common::latest(&store));
    let faults: Vec<&serde_json::Value> = ops
        .iter()
        .filter(|o| {
            o["process"] == "nemesis" && o["f"].as_str().is_some_and(|f| f.starts_with("start-"))
        })
        .collect();
    assert!(
        faults.iter().any(|o| o["value"]["process"] == "sentinel"),
        "no fault hit a sentinel: {faults:?}"
    );
    assert!(
        faults.iter().all(|o| o["error"].is_null()),
        "a fault failed: {faults:?}"
    );
    assert!(
        redis_of(tmp.path(), "redis-").is_empty(),
        "redis left running after the test"
    );
}
