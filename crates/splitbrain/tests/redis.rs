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
