//! `--db dqlite` against real dqlite-demo members (Debian `go-dqlite`), one per
//! namespace: root, iproute2 and go-dqlite are needed (`sudo scripts/setup`).
//! Without them a test prints `SKIPPED: ...` and passes, except under `CI=true`,
//! where that is a failure.

mod common;
use common::{cluster, lab_namespaces, leader, splitbrain, test_cmd, text, Down, Ran};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;
use std::time::Duration;

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["dqlite-demo", "dqlite"])
}

/// One request to dqlite-demo's API; `None` when no answer came (a member without a
/// leader holds requests).
fn http(method: &str, url: &str, body: &str) -> Option<String> {
    let authority = url.trim_start_matches("http://");
    let (authority, path) = authority.split_once('/').unwrap();
    let mut s = TcpStream::connect(authority).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} /{path} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    Some(body.trim().to_owned())
}

/// Process ids of dqlite-demo members whose command line names `dir`.
fn members_of(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = text(&std::fs::read(e.path().join("cmdline")).ok()?);
            (cmdline.contains("dqlite-demo") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

fn namespaces() -> String {
    text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
}

#[test]
fn a_dqlite_lab_replicates_survives_a_killed_leader_and_leaves_nothing() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let dir_s = dir.to_str().unwrap();
    let _down = Down(dir.clone());
    let up = Ran::of(splitbrain().args([
        "cluster",
        "up",
        "--db",
        "dqlite",
        "--dir",
        dir_s,
        "--timeout",
        "60",
    ]))
    .exits(0)
    .stdout;
    // Client addresses the way etcd's are printed: one API URL per member.
    let endpoints: Vec<String> = up
        .lines()
        .find_map(|l| l.strip_prefix("endpoints: "))
        .unwrap_or_else(|| panic!("no endpoints line: {up}"))
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(endpoints.len(), 3, "{up}");
    assert!(endpoints.iter().all(|e| e.ends_with(":8001")), "{up}");
    assert!(up.contains("/nI/dqlite.log"), "{up}");
    let netns = lab_namespaces(&dir);
    assert_eq!(members_of(&dir).len(), 3);

    // A write through one member is read through another (both go to the leader).
    let url = |i: usize, key: &str| format!("{}/{key}", endpoints[i]);
    assert_eq!(http("PUT", &url(1, "k"), "41").as_deref(), Some("done"));
    assert_eq!(http("GET", &url(2, "k"), "").as_deref(), Some("41"));
    assert_eq!(
        http("GET", &url(0, "absent"), "").as_deref(),
        Some("Error: sql: no rows in result set")
    );

    // The plug-in's leader lookup names a member; kill it, and another takes over
    // with the data.
    let old = splitbrain_testkit::eventually("a leader", || leader(&dir));
    cluster(&["kill", &old], &dir).exits(0);
    splitbrain_testkit::eventually("a new leader", || leader(&dir).filter(|l| *l != old));
    let survivor = (0..3).find(|i| format!("n{}", i + 1) != old).unwrap();
    assert_eq!(http("GET", &url(survivor, "k"), "").as_deref(), Some("41"));
    assert_eq!(
        http("PUT", &url(survivor, "k"), "42").as_deref(),
        Some("done")
    );
    // Restarted with its data, the old leader catches up.
    cluster(&["start", &old], &dir).exits(0);
    let i_old: usize = old.trim_start_matches('n').parse().unwrap();
    splitbrain_testkit::eventually("the restarted member serving the new value", || {
        (http("GET", &url(i_old - 1, "k"), "").as_deref() == Some("42")).then_some(())
    });
    splitbrain_testkit::eventually("every member healthy again", || {
        (cluster(&["status"], &dir).code == Some(0)).then_some(())
    });

    cluster(&["down"], &dir).exits(0);
    assert!(members_of(&dir).is_empty(), "dqlite-demo left running");
    let listed = namespaces();
    for ns in &netns {
        assert!(
            !listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "namespace {ns} left: {listed}"
        );
    }
}

/// `splitbrain test --db dqlite` with its default client (http + dqlite.toml) under
/// partitions and kills: a verdict on a real history, and nothing left after it.
#[test]
fn a_dqlite_test_under_partitions_and_kills_checks_a_real_history() {
    let Some(_lab) = lab() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = Ran::of(&mut test_cmd(
        "--db dqlite --time-limit 12 --nemesis partition,kill --nemesis-interval 3 \
         --nemesis-duration 3 --consistency all --concurrency 5",
        &store,
    ));
    // 0: valid, 1: invalid (a finding, printed by the run); not unknown, not a
    // set-up failure.
    assert!(
        matches!(out.code, Some(0 | 1)),
        "{}: {:?}\n{}\n{}",
        out.command,
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("levels:"), "{}", out.stdout);
    let run = std::fs::read_dir(store.join("register-http"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("history.jsonl").is_file())
        .expect("a run directory");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("client = \"http\""), "{config}");
    assert!(config.contains("workloads/clients/dqlite.toml"), "{config}");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let ok = |f: &str| {
        history
            .lines()
            .filter(|l| l.contains("\"type\":\"ok\"") && l.contains(&format!("\"f\":\"{f}\"")))
            .count()
    };
    assert!(ok("read") > 0 && ok("write") > 0, "no ok reads or writes");
    assert!(
        history.contains("start-kill") || history.contains("start-partition"),
        "no fault injected"
    );
    assert!(
        members_of(tmp.path()).is_empty(),
        "dqlite-demo left running after the test"
    );
}
