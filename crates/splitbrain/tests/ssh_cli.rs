//! Faults on remote nodes over SSH, for real: a lab whose members each run sshd
//! (`splitbrain cluster up --sshd`), faulted through `splitbrain nemesis --nodes
//! DIR/nodes.toml` and `splitbrain test --nodes DIR/nodes.toml`. Needs root, etcd,
//! iproute2, iptables and OpenSSH (`sudo scripts/setup`); without them a test prints
//! `SKIPPED: ...` and passes, except under `CI=true`, where that is a failure.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_cluster::lab_available_for_tests(&["sshd", "ssh", "ssh-keygen", "iptables", "curl"])
        .then(|| ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()))
}

fn splitbrain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    c.stdin(Stdio::null());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run splitbrain");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A 3-member lab with sshd in every member, taken down on drop.
struct SshLab {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SshLab {
    fn up() -> SshLab {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lab");
        let lab = SshLab { dir, _tmp: tmp };
        let out = ok(splitbrain()
            .args(["cluster", "up", "--sshd", "--dir"])
            .arg(&lab.dir));
        assert!(out.contains("nodes.toml"), "{out}");
        lab
    }

    fn nodes(&self) -> PathBuf {
        self.dir.join("nodes.toml")
    }

    fn nemesis(&self, args: &[&str]) -> Output {
        splitbrain()
            .arg("nemesis")
            .arg("--nodes")
            .arg(self.nodes())
            .args(args)
            .output()
            .unwrap()
    }

    fn nemesis_ok(&self, args: &[&str]) -> String {
        let out = self.nemesis(args);
        assert!(
            out.status.success(),
            "nemesis {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn addr(&self, node: &str) -> String {
        let i: u8 = node[1..].parse().unwrap();
        let cluster = splitbrain_cluster::Cluster::load(&self.dir).unwrap();
        cluster.nodes()[usize::from(i - 1)].addr.to_string()
    }

    /// `iptables -S` on `node`, asked over SSH with the lab's key.
    fn rules_over_ssh(&self, node: &str) -> String {
        ok(&mut self.ssh(node, &["iptables", "-w", "-S"]))
    }

    /// `argv` on `node`, over SSH with the lab's key.
    fn ssh(&self, node: &str, argv: &[&str]) -> Command {
        let ssh = self.dir.join("ssh");
        let mut cmd = Command::new("ssh");
        cmd.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                ssh.join("known_hosts").display()
            ))
            .arg("-i")
            .arg(ssh.join("id_ed25519"))
            .arg(format!("root@{}", self.addr(node)))
            .args(argv)
            .stdin(Stdio::null());
        cmd
    }

    /// Whether `from` gets an answer from `to`'s etcd (a request inside the lab).
    fn reaches(&self, from: &str, to: &str) -> bool {
        let url = format!("http://{}:2379/version", self.addr(to));
        self.ssh(from, &["curl", "-sf", "--max-time", "1", &url])
            .output()
            .unwrap()
            .status
            .success()
    }

    fn processes(&self) -> Vec<String> {
        splitbrain_cluster::Cluster::load(&self.dir)
            .unwrap()
            .processes()
            .unwrap()
            .into_iter()
            .map(|(n, p)| format!("{n} {p:?}"))
            .collect()
    }

    fn all_running(&self) -> bool {
        self.processes().iter().all(|p| p.contains("Running"))
    }
}

impl Drop for SshLab {
    fn drop(&mut self) {
        let out = splitbrain()
            .args(["cluster", "down", "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!("cleanup: cluster down failed: {}", text(&out.stderr));
        }
    }
}

/// Live (not zombie) processes whose command line contains `needle`.
fn live_processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = text(&raw).replace('\0', " ");
        if cmdline.contains(needle) && !cmdline.contains("cargo") {
            found.push(cmdline);
        }
    }
    found
}

fn no_chain_anywhere(lab: &SshLab) {
    for n in ["n1", "n2", "n3"] {
        let rules = lab.rules_over_ssh(n);
        assert!(!rules.contains("splitbrain"), "{n} still has: {rules}");
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn partitions_process_and_clock_faults_go_through_ssh_and_heal() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let cluster = splitbrain_cluster::Cluster::load(&lab.dir).unwrap();
    let old = cluster.leader().unwrap().expect("a leader").to_string();

    // Isolate the leader: rules in every member's namespace, seen over SSH.
    let out = lab.nemesis_ok(&["partition", "isolate", "leader"]);
    assert!(out.contains(&format!("{old} drops")), "{out}");
    let rules = lab.rules_over_ssh(&old);
    assert!(rules.contains("-A INPUT -j splitbrain-"), "{rules}");
    assert!(rules.contains("-j DROP"), "{rules}");
    let status = lab.nemesis_ok(&["status"]);
    assert!(
        status.contains("nodes with partition rules: n1, n2, n3"),
        "{status}"
    );
    // The majority elects a new leader; the old one hears nobody.
    wait_for("a new leader", Duration::from_secs(30), || {
        cluster
            .leader()
            .ok()
            .flatten()
            .is_some_and(|l| l.as_str() != old)
    });
    let peer = ["n1", "n2", "n3"].into_iter().find(|n| *n != old).unwrap();
    assert!(
        !lab.reaches(&old, peer),
        "the isolated {old} still reaches {peer}"
    );
    let healed = lab.nemesis_ok(&["heal"]);
    assert!(healed.contains("healed over SSH"), "{healed}");
    no_chain_anywhere(&lab);
    assert!(lab.reaches(&old, peer), "{old} reaches {peer} again");

    // Kill and restart, pause and resume, through the nodes file's commands over SSH.
    lab.nemesis_ok(&["kill", "n1"]);
    assert!(
        lab.processes()[0].contains("Stopped"),
        "{:?}",
        lab.processes()
    );
    lab.nemesis_ok(&["pause", "n2"]);
    assert!(
        lab.processes()[1].contains("Paused"),
        "{:?}",
        lab.processes()
    );
    lab.nemesis_ok(&["heal"]);
    assert!(lab.all_running(), "{:?}", lab.processes());
    cluster.wait_healthy(Duration::from_secs(60)).unwrap();

    // Clocks: the lab's nodes file uses the command strategy (an offset file), never
    // `date`, which would set this machine's clock.
    let offset = lab.dir.join("n3").join("clock-offset-ms");
    lab.nemesis_ok(&["clock", "bump", "-30s", "n3"]);
    assert_eq!(std::fs::read_to_string(&offset).unwrap().trim(), "-30000");
    assert!(lab
        .nemesis_ok(&["status"])
        .contains("clock of n3: moved by -30000 ms"));
    lab.nemesis_ok(&["clock", "reset", "n3"]);
    assert_eq!(std::fs::read_to_string(&offset).unwrap().trim(), "0");
    lab.nemesis_ok(&["clock", "bump", "+2h", "n3"]);
    assert_eq!(std::fs::read_to_string(&offset).unwrap().trim(), "7200000");
    lab.nemesis_ok(&["heal"]);
    assert_eq!(std::fs::read_to_string(&offset).unwrap().trim(), "0");

    // A node whose clock strategy is `date` and who shares this kernel is refused.
    let date = lab.dir.join("date.toml");
    let text_file = std::fs::read_to_string(lab.nodes()).unwrap();
    let first_node = text_file.split("[[node]]").nth(1).unwrap();
    let date_node = first_node
        .lines()
        .filter(|l| !l.starts_with("clock"))
        .collect::<Vec<_>>()
        .join("\n");
    let defaults = text_file.split("[[node]]").next().unwrap();
    std::fs::write(
        &date,
        format!("{defaults}[[node]]{date_node}\nclock = {{ strategy = \"date\" }}\n"),
    )
    .unwrap();
    let out = splitbrain()
        .args(["nemesis", "--nodes"])
        .arg(&date)
        .args(["clock", "bump", "5s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("shares this machine's kernel"),
        "{}",
        text(&out.stderr)
    );

    // What a node cannot do is refused before anything changes, naming the node: no
    // process commands, no kill; no netem, no delay (the lab's kernel has none).
    let bare = lab.dir.join("bare.toml");
    let without_process: Vec<&str> = text_file
        .lines()
        .filter(|l| !l.starts_with("process"))
        .collect();
    std::fs::write(&bare, without_process.join("\n")).unwrap();
    let out = splitbrain()
        .args(["nemesis", "--nodes"])
        .arg(&bare)
        .args(["kill", "n2"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unsupported on node n2"), "{err}");
    assert!(lab.all_running(), "{:?}", lab.processes());
    let out = lab.nemesis(&["packet", "--delay", "50"]);
    if out.status.success() {
        lab.nemesis_ok(&["heal"]); // this kernel has netem
    } else {
        let err = text(&out.stderr);
        assert!(
            err.contains("on node n") && err.contains("needs tc netem"),
            "{err}"
        );
    }
    no_chain_anywhere(&lab);

    // Nothing of ours is left: no state, no SSH master.
    assert!(!lab.dir.join("nodes.nemesis").join("remote.json").exists());
    assert!(live_processes_naming("nodes.nemesis/ssh-").is_empty());
}

#[test]
fn an_unreachable_node_is_named_before_any_fault() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    // n2 on a port where nothing listens.
    let text_file = std::fs::read_to_string(lab.nodes()).unwrap();
    let bad = lab.dir.join("bad.toml");
    let n2 = format!("host = \"{}\"", lab.addr("n2"));
    std::fs::write(&bad, text_file.replace(&n2, &format!("{n2}\nport = 2"))).unwrap();
    let out = splitbrain()
        .args(["nemesis", "--nodes"])
        .arg(&bad)
        .args(["partition", "isolate", "n1"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "node n2 (root@{}:2) is unreachable over SSH",
            lab.addr("n2")
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    // Nothing was applied anywhere.
    no_chain_anywhere(&lab);
    assert!(!lab.dir.join("bad.nemesis").join("remote.json").exists());

    // `splitbrain test` stops there too, before any op or fault (exit 254).
    let store = tempfile::tempdir().unwrap();
    let out = splitbrain()
        .arg("test")
        .arg("--nodes")
        .arg(&bad)
        .args(["--nemesis", "kill", "--time-limit", "5", "--store"])
        .arg(store.path())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{err}");
    assert!(err.contains("node n2 (root@"), "{err}");
    assert!(!store.path().join("latest").join("history.jsonl").exists());
    assert!(lab.all_running(), "{:?}", lab.processes());

    // A heal undoes what it can where it can: with n2 unreachable, n1 and n3 lose
    // their rules, and the state file stays for a heal once n2 is back.
    lab.nemesis_ok(&["partition", "isolate", "n2"]);
    let same_state = lab.dir.join("bad-same-state.toml");
    std::fs::write(
        &same_state,
        format!(
            "state_dir = \"nodes.nemesis\"\n{}",
            std::fs::read_to_string(&bad).unwrap()
        ),
    )
    .unwrap();
    let out = splitbrain()
        .args(["nemesis", "--nodes"])
        .arg(&same_state)
        .arg("heal")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("node n2"), "{err}");
    for n in ["n1", "n3"] {
        assert!(!lab.rules_over_ssh(n).contains("splitbrain"), "{n} healed");
    }
    assert!(lab.rules_over_ssh("n2").contains("splitbrain"));
    assert!(lab.dir.join("nodes.nemesis").join("remote.json").exists());
    lab.nemesis_ok(&["heal"]);
    no_chain_anywhere(&lab);

    // A host name is refused unless the user allowed other machines.
    let named = lab.dir.join("named.toml");
    std::fs::write(
        &named,
        text_file.replacen(
            &format!("host = \"{}\"", lab.addr("n1")),
            "host = \"db1.example\"",
            1,
        ),
    )
    .unwrap();
    let out = splitbrain()
        .args(["nemesis", "--nodes"])
        .arg(&named)
        .arg("status")
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("node n1"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("say so with --allow-remote"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_killed_harness_leaves_faults_that_heal_from_the_nodes_file() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let store = tempfile::tempdir().unwrap();
    let mut run = splitbrain()
        .arg("test")
        .arg("--nodes")
        .arg(lab.nodes())
        .args([
            "--nemesis",
            "partition,pause",
            "--nemesis-interval",
            "0.5",
            "--nemesis-duration",
            "60",
            "--time-limit",
            "60",
            "--store",
        ])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = lab.dir.join("nodes.nemesis").join("remote.json");
    let faulted = || {
        std::fs::read_to_string(&state)
            .is_ok_and(|s| s.contains("partition") || s.contains("paused"))
            && (lab.processes().iter().any(|p| p.contains("Paused"))
                || ["n1", "n2", "n3"]
                    .iter()
                    .any(|n| lab.rules_over_ssh(n).contains("-j DROP")))
    };
    wait_for("a fault in place", Duration::from_secs(30), faulted);
    run.kill().unwrap(); // SIGKILL: nothing of the harness runs any more
    run.wait().unwrap();
    assert!(state.exists(), "the state file outlives the harness");

    let healed = lab.nemesis_ok(&["heal"]);
    assert!(healed.contains("healed over SSH"), "{healed}");
    no_chain_anywhere(&lab);
    assert!(lab.all_running(), "{:?}", lab.processes());
    assert!(!state.exists());
    assert!(
        live_processes_naming("nodes.nemesis/ssh-").is_empty(),
        "{:?}",
        live_processes_naming("nodes.nemesis/ssh-")
    );
}

#[test]
fn a_test_run_through_ssh_faults_ends_linearizable() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let store = tempfile::tempdir().unwrap();
    let out = splitbrain()
        .arg("test")
        .arg("--nodes")
        .arg(lab.nodes())
        .args([
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "1",
            "--nemesis-duration",
            "3",
            "--time-limit",
            "20",
            "--store",
        ])
        .arg(store.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(": linearizable"), "{stdout}");
    assert!(stderr.contains("nemesis over SSH"), "{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.path().join("latest").join("results.json")).unwrap(),
    )
    .unwrap();
    assert!(results["run"]["faults"].as_u64().unwrap() >= 2, "{results}");
    no_chain_anywhere(&lab);
    assert!(lab.all_running(), "{:?}", lab.processes());
    assert!(!lab.dir.join("nodes.nemesis").join("remote.json").exists());
    assert!(live_processes_naming("nodes.nemesis/ssh-").is_empty());
}

#[test]
fn cluster_down_stops_every_sshd_and_session() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let dir = lab.dir.clone();
    let ssh = dir.join("ssh");
    // A session in progress when the lab goes down: `sleep` in n1's namespace.
    let mut session = Command::new("ssh")
        .args(["-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            ssh.join("known_hosts").display()
        ))
        .arg("-i")
        .arg(ssh.join("id_ed25519"))
        .arg(format!("root@{}", lab.addr("n1")))
        .args(["sleep", "3600"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The remote command itself (not the ssh client naming it).
    let sleeping = || {
        live_processes_naming("sleep 3600")
            .iter()
            .any(|c| c.starts_with("sleep 3600"))
    };
    wait_for("the session's sleep", Duration::from_secs(10), sleeping);
    let sshd_config = dir.join("n1").join("sshd_config");
    assert_eq!(
        live_processes_naming(&sshd_config.display().to_string()).len(),
        1
    );
    drop(lab);
    // The session was ended from the server side, and nothing of the lab runs.
    wait_for(
        "the ssh client to see its session end",
        Duration::from_secs(10),
        || session.try_wait().unwrap().is_some(),
    );
    assert!(!sleeping());
    assert!(
        live_processes_naming(&format!("{}/", dir.display())).is_empty(),
        "{:?}",
        live_processes_naming(&format!("{}/", dir.display()))
    );
}
