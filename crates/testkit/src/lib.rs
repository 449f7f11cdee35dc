//! What the workspace's integration tests share (a dev-dependency only, never
//! shipped): the rule for tests that need something this machine may lack, the lab
//! detection and lock, and a bounded wait.
//!
//! The rule: a test that needs root, a lab or a database **skips** with a loud
//! `SKIPPED: ...` line on a developer's machine, and **fails** under `CI=true`,
//! where everything is installed.
//!
//! ```no_run
//! use splitbrain_testkit::{eventually, lab, up};
//! let Some(_lab) = lab(&["curl"]) else { return }; // SKIPPED, or a panic under CI
//! let dir = std::path::Path::new("/tmp/t");
//! let cluster = up(dir, 3); // taken down when dropped
//! let leader = eventually("a leader", || cluster.leader().ok().flatten());
//! ```

#![forbid(unsafe_code)]

use splitbrain_cluster::{Cluster, ClusterGuard, Config};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long [`eventually`] waits, and a lab's health timeout in [`up`]: generous,
/// since the machine may be busy. Nothing here measures speed; running out is a
/// failure that names what never happened.
pub const WAIT: Duration = Duration::from_secs(60);

/// Whether this is CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The skip-or-fail rule: prints `SKIPPED: {why}` (straight to stderr, which the
/// test harness does not capture) off CI; panics under `CI=true`.
pub fn skip(why: &str) {
    if under_ci() {
        panic!("CI=true, and this test cannot run: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// `true` when this process runs as root; otherwise [`skip`]s with `why`.
pub fn root_or_skip(why: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    if !root {
        skip(why);
    }
    root
}

/// What a lab needs that this machine lacks: root, network namespaces, etcd,
/// etcdctl, iproute2 (from the cluster crate), and any of `programs` not on `PATH`.
pub fn missing(programs: &[&str]) -> Vec<String> {
    let mut missing = splitbrain_cluster::missing_prerequisites();
    let path = std::env::var_os("PATH").unwrap_or_default();
    missing.extend(
        programs
            .iter()
            .filter(|p| !std::env::split_paths(&path).any(|d| d.join(p).is_file()))
            .map(|p| p.to_string()),
    );
    missing
}

/// Whether a lab (and `programs`) can run here; if not, [`skip`]s naming what is
/// missing.
pub fn lab_available(programs: &[&str]) -> bool {
    let missing = missing(programs);
    if !missing.is_empty() {
        skip(&format!(
            "needs {} (run the tests as root after `sudo scripts/setup`)",
            missing.join(", ")
        ));
    }
    missing.is_empty()
}

/// [`lab`] for a lab of database `db` (`zookeeper`, ...): the lab lock if root and the
/// database's programs and files are here, or `None` after the skip-or-fail rule.
pub fn lab_of(db: &str, programs: &[&str]) -> Option<MutexGuard<'static, ()>> {
    let mut missing = match splitbrain_cluster::missing_prerequisites_for(db) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    missing.extend(
        self::missing(programs)
            .into_iter()
            .filter(|m| m != "root" && !m.contains("etcd")),
    );
    if !missing.is_empty() {
        skip(&format!(
            "needs {} for a {db} lab (run the tests as root after `sudo scripts/setup`)",
            missing.join(", ")
        ));
        return None;
    }
    Some(lab_lock())
}

static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The process-wide lab lock: tests that start labs run one at a time (two cores,
/// and etcd's elections are sensitive to a starved CPU). A test that panicked while
/// holding it does not poison the others.
pub fn lab_lock() -> MutexGuard<'static, ()> {
    ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lab lock if a lab (and `programs`) can run here, or `None` after the
/// skip-or-fail rule.
pub fn lab(programs: &[&str]) -> Option<MutexGuard<'static, ()>> {
    lab_available(programs).then(lab_lock)
}

/// A local cluster of `nodes` members in `dir`, healthy, taken down when the
/// guard drops.
pub fn up(dir: &Path, nodes: usize) -> ClusterGuard {
    let mut config = Config::in_dir(dir);
    config.nodes = nodes;
    config.health_timeout = WAIT;
    match Cluster::up(config) {
        Ok(cluster) => cluster.guard(),
        Err(e) => panic!("cluster up in {} failed: {e}", dir.display()),
    }
}

/// Polls `f` until it returns `Some`, for at most [`WAIT`]; then fails naming
/// `what`. A bound on waiting, not an assertion about speed.
pub fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, WAIT, f)
}

/// [`eventually`] with its own bound.
pub fn eventually_within<T>(what: &str, wait: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "gave up waiting for {what} (nothing after {} s)",
                wait.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventually_returns_the_first_some() {
        let mut n = 0;
        assert_eq!(
            eventually("n to reach 3", || {
                n += 1;
                (n >= 3).then_some(n)
            }),
            3
        );
    }

    #[test]
    #[should_panic(expected = "gave up waiting for nothing")]
    fn eventually_gives_up_naming_what() {
        eventually_within("nothing", Duration::ZERO, || None::<()>);
    }

    #[test]
    fn a_missing_program_is_named() {
        assert!(missing(&["no-such-program-here"]).contains(&"no-such-program-here".to_string()));
    }
}
