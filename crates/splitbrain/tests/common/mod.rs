//! Helpers shared by the binary's integration tests (each test file is its own
//! crate: `mod common;` brings these in, and each uses some of them).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary, with stdin closed: a test never types.
pub fn splitbrain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    c.stdin(Stdio::null());
    c
}

/// `splitbrain test ARGS --store STORE`, ARGS split on whitespace (an argument
/// with a space in it goes on with `.arg`).
pub fn test_cmd(args: &str, store: &Path) -> Command {
    let mut c = splitbrain();
    c.arg("test")
        .args(args.split_whitespace())
        .arg("--store")
        .arg(store);
    c
}

/// Output as text, for assertions and their messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a finished command said.
pub struct Ran {
    /// The command line, for messages.
    pub command: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Runs `cmd` to its end.
    pub fn of(cmd: &mut Command) -> Ran {
        let command = format!("{cmd:?}");
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        Ran {
            command,
            code: out.status.code(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// Asserts the exit code, showing the command and what it printed when it
    /// differs.
    #[track_caller]
    pub fn exits(self, code: i32) -> Ran {
        assert_eq!(
            self.code,
            Some(code),
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The newest run's directory in a store, through `store/latest` (a relative link).
pub fn latest(store: &Path) -> PathBuf {
    let link = store.join("latest");
    let target = std::fs::read_link(&link).expect("store/latest is a symlink");
    assert!(
        target.is_relative(),
        "latest should be relative: {target:?}"
    );
    store.join(target)
}

/// A loopback URL where nothing listens.
pub fn closed_port() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// `Mon, 23 Nov 2026 08:28:47 GMT` -> seconds since the epoch.
pub fn parse_http_date(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    let day: i64 = f[1].parse().unwrap();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == f[2]).unwrap() as i64 + 1;
    let year: i64 = f[3].parse().unwrap();
    let hms: Vec<i64> = f[4].split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// Seconds since the epoch, by this machine's clock.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `splitbrain cluster ARGS --dir DIR`, run to its end.
pub fn cluster(args: &[&str], dir: &Path) -> Ran {
    Ran::of(splitbrain().arg("cluster").args(args).arg("--dir").arg(dir))
}

/// Takes the cluster in `dir` down when dropped, whatever the test did.
pub struct Down(pub PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let out = cluster(&["down"], &self.0);
        if out.code != Some(0) {
            eprintln!("cleanup: splitbrain cluster down failed: {}", out.stderr);
        }
    }
}

/// The lab's namespaces (its bridge's and every member's), from its state file.
pub fn lab_namespaces(dir: &Path) -> Vec<String> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let mut netns = vec![state["bridge_netns"].as_str().unwrap().to_owned()];
    for n in state["nodes"].as_array().unwrap() {
        netns.push(n["netns"].as_str().unwrap().to_owned());
    }
    netns
}

/// None of `netns` is left, and no process whose command line names `dir` (every
/// member's server names its config or data directory there).
pub fn assert_lab_gone(dir: &Path, netns: &[String]) {
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
    let dir = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = text(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default());
        assert!(
            !cmdline.contains(&dir),
            "process left: {}",
            cmdline.replace('\0', " ")
        );
    }
}

/// A run's history, one JSON value per op.
pub fn history(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// How many of `ops` satisfy `f`.
pub fn count(ops: &[serde_json::Value], f: impl Fn(&serde_json::Value) -> bool) -> usize {
    ops.iter().filter(|o| f(o)).count()
}

/// `cluster leader`'s answer, `None` while there is none.
pub fn leader(dir: &Path) -> Option<String> {
    let out = cluster(&["leader"], dir);
    (out.code == Some(0)).then(|| out.stdout.trim().to_owned())
}
