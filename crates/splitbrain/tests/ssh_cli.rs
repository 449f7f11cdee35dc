//! Faults on remote nodes over SSH, for real: a lab whose members each run sshd
//! (`splitbrain cluster up --sshd`), faulted through `splitbrain nemesis --nodes
//! DIR/nodes.toml` and `splitbrain test --nodes DIR/nodes.toml`. Needs root, etcd,
//! iproute2, iptables and OpenSSH (`sudo scripts/setup`); without them a test prints
//! `SKIPPED: ...` and passes, except under `CI=true`, where that is a failure.

mod common;
use common::{now_secs, parse_http_date, splitbrain, test_cmd, text, Ran};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&["sshd", "ssh", "ssh-keygen", "iptables", "curl"])
}

fn ok(cmd: &mut Command) -> String {
    Ran::of(cmd).exits(0).stdout
}

/// `splitbrain nemesis --nodes NODES ARGS`, run to its end.
fn nemesis(nodes: &Path, args: &[&str]) -> Ran {
    Ran::of(
        splitbrain()
            .arg("nemesis")
            .arg("--nodes")
            .arg(nodes)
            .args(args),
    )
}

/// `splitbrain test --nodes NODES ARGS --store STORE`.
fn test_on(nodes: &Path, args: &str, store: &Path) -> Command {
    let mut cmd = test_cmd(args, store);
    cmd.arg("--nodes").arg(nodes);
    cmd
}

/// A 3-member lab with sshd in every member, taken down on drop.
struct SshLab {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SshLab {
    fn up() -> SshLab {
        SshLab::up_with(&[])
    }

    /// A lab started with `extra` flags too (`--clock`).
    fn up_with(extra: &[&str]) -> SshLab {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lab");
        let lab = SshLab { dir, _tmp: tmp };
        let out = ok(splitbrain()
            .args(["cluster", "up", "--sshd"])
            .args(extra)
            .arg("--dir")
            .arg(&lab.dir));
        assert!(out.contains("nodes.toml"), "{out}");
        lab
    }

    fn nodes(&self) -> PathBuf {
        self.dir.join("nodes.toml")
    }

    fn nemesis(&self, args: &[&str]) -> Ran {
        nemesis(&self.nodes(), args)
    }

    fn nemesis_ok(&self, args: &[&str]) -> String {
        self.nemesis(args).exits(0).stdout
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

    /// Nothing of the nemesis is left: no chain on any node, no state file, and
    /// its SSH masters exit.
    fn assert_nemesis_gone(&self) {
        no_chain_anywhere(self);
        assert!(!self.dir.join("nodes.nemesis").join("remote.json").exists());
        wait_for("the SSH masters to exit", Duration::from_secs(5), || {
            self.masters().is_empty()
        });
    }

    /// SSH master connections of this lab's nemesis still running.
    fn masters(&self) -> Vec<String> {
        live_processes_naming(&format!("{}/nodes.nemesis/ssh-", self.dir.display()))
    }

    /// The `Date` header of `node`'s etcd, asked inside the node over SSH, as
    /// seconds since the epoch: etcd's own wall clock.
    fn etcd_date(&self, node: &str) -> i64 {
        let answer = ok(&mut self.ssh(
            node,
            // GET (etcd refuses HEAD), headers to stdout, the body away.
            &[
                "curl",
                "-sf",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "--max-time",
                "5",
                "http://127.0.0.1:2379/version",
            ],
        ));
        let date = answer
            .lines()
            .find_map(|l| {
                l.strip_prefix("Date: ")
                    .or_else(|| l.strip_prefix("date: "))
            })
            .unwrap_or_else(|| panic!("no Date header: {answer}"));
        parse_http_date(date.trim())
    }

    /// Asserts that `node`'s etcd reads real time plus `offset` seconds, give or
    /// take a few (the header has one-second resolution).
    fn assert_clock(&self, node: &str, offset: i64) {
        let before = now_secs();
        let date = self.etcd_date(node);
        let after = now_secs();
        assert!(
            date >= before + offset - 3 && date <= after + offset + 3,
            "{node} says {date}, real time was {before}..={after}, offset {offset} expected"
        );
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
    let lab = SshLab::up_with(&["--clock"]);
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

    // Clocks: the lab's nodes file drives each member's clock supervisor over SSH
    // (never `date`, which would set this machine's clock): etcd's Date header moves.
    lab.assert_clock("n3", 0);
    lab.nemesis_ok(&["clock", "bump", "-30s", "n3"]);
    lab.assert_clock("n3", -30);
    lab.assert_clock("n1", 0);
    assert!(lab
        .nemesis_ok(&["status"])
        .contains("clock of n3: moved by -30000 ms"));
    lab.nemesis_ok(&["clock", "reset", "n3"]);
    lab.assert_clock("n3", 0);
    lab.nemesis_ok(&["clock", "bump", "+2h", "n3"]);
    lab.assert_clock("n3", 7200);
    lab.nemesis_ok(&["heal"]);
    lab.assert_clock("n3", 0);

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
    let err = nemesis(&date, &["clock", "bump", "5s"]).exits(1).stderr;
    assert!(
        err.contains("clock strategy \"date\" refused on node n1") && err.contains("lab address"),
        "{err}"
    );

    // What a node cannot do is refused before anything changes, naming the node: no
    // process commands, no kill; no netem, no delay (the lab's kernel has none).
    let bare = lab.dir.join("bare.toml");
    let without_process: Vec<&str> = text_file
        .lines()
        .filter(|l| !l.starts_with("process"))
        .collect();
    std::fs::write(&bare, without_process.join("\n")).unwrap();
    let err = nemesis(&bare, &["kill", "n2"]).exits(1).stderr;
    assert!(err.contains("unsupported on node n2"), "{err}");
    assert!(lab.all_running(), "{:?}", lab.processes());
    let out = lab.nemesis(&["packet", "--delay", "50"]);
    if out.code == Some(0) {
        lab.nemesis_ok(&["heal"]); // this kernel has netem
    } else {
        let err = out.stderr;
        assert!(
            err.contains("on node n") && err.contains("needs tc netem"),
            "{err}"
        );
    }
    lab.assert_nemesis_gone();
}

#[test]
fn a_kill_that_never_happened_heals_and_so_does_a_pause_then_kill() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let state_dir = lab.dir.join("nodes.nemesis");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("remote.json");
    // The run recorded a kill of n1 and died before carrying it out: n1 runs.
    std::fs::write(&state, r#"{"run_id": "0badc0de", "killed": ["n1"]}"#).unwrap();
    let healed = lab.nemesis_ok(&["heal"]);
    assert!(healed.contains("healed over SSH"), "{healed}");
    assert!(!state.exists());
    assert!(lab.all_running(), "{:?}", lab.processes());

    // n2 paused, then killed, and the run died before clearing the pause: the heal
    // must not fail on resuming a dead process.
    ok(splitbrain()
        .args(["cluster", "kill", "n2", "--dir"])
        .arg(&lab.dir));
    std::fs::write(
        &state,
        r#"{"run_id": "0badc0de", "killed": ["n2"], "paused": ["n2"]}"#,
    )
    .unwrap();
    let healed = lab.nemesis_ok(&["heal"]);
    assert!(healed.contains("healed over SSH"), "{healed}");
    assert!(!state.exists());
    assert!(lab.all_running(), "{:?}", lab.processes());

    // Through the nemesis: pause, then kill, of the same node; one heal.
    lab.nemesis_ok(&["pause", "n3"]);
    lab.nemesis_ok(&["kill", "n3"]);
    let status = lab.nemesis_ok(&["status"]);
    assert!(
        status.contains("killed: n3") && !status.contains("paused: n3"),
        "{status}"
    );
    lab.nemesis_ok(&["heal"]);
    assert!(lab.all_running(), "{:?}", lab.processes());
    // A command that hangs is given up after `command_timeout`, naming the node; the
    // kill's guard heals it (it never happened), and the `sleep` it leaves running
    // on the node is no obstacle to `cluster down`.
    let slow = lab.dir.join("slow.toml");
    // An argument no other process on this machine has.
    let nap = format!("29.{}", std::process::id());
    let text_file = std::fs::read_to_string(lab.nodes()).unwrap();
    std::fs::write(
        &slow,
        text_file
            .replacen("[defaults]\n", "[defaults]\ncommand_timeout = 1\n", 1)
            .replace("kill = \"", &format!("kill = \"sleep {nap} || ")),
    )
    .unwrap();
    let err = nemesis(&slow, &["kill", "n1"]).exits(1).stderr;
    assert!(
        err.contains("on node n1") && err.contains("no answer within 1 s"),
        "{err}"
    );
    nemesis(&slow, &["heal"]).exits(0);
    assert!(!lab.dir.join("slow.nemesis").join("remote.json").exists());
    assert!(lab.all_running(), "{:?}", lab.processes());
    let hung = || {
        live_processes_naming(&format!("sleep {nap}"))
            .iter()
            .any(|c| c.starts_with(&format!("sleep {nap}")))
    };
    assert!(hung(), "the given-up command still runs on n1");

    // A recorded qdisc whose interface is gone (a container restarted) is healed.
    std::fs::write(
        &state,
        r#"{"run_id": "0badc0de", "qdiscs": {"n1": "nosuch0"}}"#,
    )
    .unwrap();
    lab.nemesis_ok(&["heal"]);
    assert!(!state.exists());

    // A command that exits 255 is its own failure, not "unreachable over SSH".
    let exits_255 = lab.dir.join("exits-255.toml");
    std::fs::write(
        &exits_255,
        text_file.replace("kill = \"", "kill = \"exit 255; "),
    )
    .unwrap();
    let err = nemesis(&exits_255, &["kill", "n2"]).exits(1).stderr;
    assert!(
        err.contains("on node n2") && err.contains("exit 255"),
        "{err}"
    );
    assert!(!err.contains("unreachable"), "{err}");
    assert!(lab.all_running(), "{:?}", lab.processes());

    // A lab without --clock has no clock faults to offer, and says so.
    let err = lab.nemesis(&["clock", "bump", "5s", "n1"]).exits(1).stderr;
    assert!(err.contains("its clock strategy is \"none\""), "{err}");
    // `cluster down` ends the session's orphan too (it used to refuse: "not started
    // by splitbrain: left running").
    ok(splitbrain()
        .args(["cluster", "down", "--dir"])
        .arg(&lab.dir));
    assert!(!hung());
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
    let err = nemesis(&bad, &["partition", "isolate", "n1"])
        .exits(1)
        .stderr;
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
    let run = Ran::of(&mut test_on(
        &bad,
        "--nemesis kill --time-limit 5",
        store.path(),
    ));
    let err = run.exits(254).stderr;
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
    let err = nemesis(&same_state, &["heal"]).exits(1).stderr;
    assert!(err.contains("node n2"), "{err}");
    for n in ["n1", "n3"] {
        assert!(!lab.rules_over_ssh(n).contains("splitbrain"), "{n} healed");
    }
    assert!(lab.rules_over_ssh("n2").contains("splitbrain"));
    assert!(lab.dir.join("nodes.nemesis").join("remote.json").exists());
    lab.nemesis_ok(&["heal"]);
    no_chain_anywhere(&lab);

    // Without a known_hosts of its own, keys accepted on first use go to the state
    // directory, never to the user's ~/.ssh/known_hosts.
    let tofu = lab.dir.join("tofu.toml");
    let without_known: Vec<&str> = text_file
        .lines()
        .filter(|l| !l.starts_with("known_hosts"))
        .collect();
    std::fs::write(&tofu, without_known.join("\n")).unwrap();
    let home_known = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".ssh")
        .join("known_hosts");
    let before = std::fs::read_to_string(&home_known).ok();
    nemesis(&tofu, &["status"]).exits(0);
    let accepted = std::fs::read_to_string(lab.dir.join("tofu.nemesis").join("known_hosts"))
        .unwrap_or_default();
    for n in ["n1", "n2", "n3"] {
        assert!(accepted.contains(&lab.addr(n)), "{n}: {accepted}");
    }
    assert_eq!(std::fs::read_to_string(&home_known).ok(), before);

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
    let err = nemesis(&named, &["status"]).exits(1).stderr;
    assert!(err.contains("node n1") && err.contains("refusing"), "{err}");
    assert!(err.contains("say so with --allow-remote"), "{err}");
}

#[test]
fn a_killed_harness_leaves_faults_that_heal_from_the_nodes_file() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let store = tempfile::tempdir().unwrap();
    let faults = "--nemesis partition,pause --nemesis-interval 0.5 --nemesis-duration 60";
    let mut run = test_on(
        &lab.nodes(),
        &format!("{faults} --time-limit 60"),
        store.path(),
    )
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
    assert!(lab.all_running(), "{:?}", lab.processes());
    lab.assert_nemesis_gone();
}

#[test]
fn a_test_run_through_ssh_faults_ends_linearizable() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let store = tempfile::tempdir().unwrap();
    let faults = "--nemesis partition,kill,pause --nemesis-interval 1 --nemesis-duration 3";
    let args = format!("{faults} --time-limit 20");
    let Ran { stdout, stderr, .. } =
        Ran::of(&mut test_on(&lab.nodes(), &args, store.path())).exits(0);
    assert!(stdout.contains(": linearizable"), "{stdout}");
    assert!(stderr.contains("nemesis over SSH"), "{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.path().join("latest").join("results.json")).unwrap(),
    )
    .unwrap();
    assert!(results["run"]["faults"].as_u64().unwrap() >= 2, "{results}");
    assert!(lab.all_running(), "{:?}", lab.processes());
    lab.assert_nemesis_gone();
}

#[test]
fn cluster_down_stops_every_sshd_and_session() {
    let Some(_lab) = lab() else { return };
    let lab = SshLab::up();
    let dir = lab.dir.clone();
    let ssh = dir.join("ssh");
    // A session in progress when the lab goes down: `sleep` in n1's namespace,
    // with an argument no other process on this machine has.
    let nap = format!("3600.{}", std::process::id());
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
        .args(["sleep", &nap])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The remote command itself (not the ssh client naming it).
    let sleeping = || {
        live_processes_naming(&format!("sleep {nap}"))
            .iter()
            .any(|c| c.starts_with(&format!("sleep {nap}")))
    };
    wait_for("the session's sleep", Duration::from_secs(10), sleeping);
    let sshd_config = dir.join("n1").join("sshd_config");
    assert_eq!(
        live_processes_naming(&sshd_config.display().to_string()).len(),
        1
    );
    // n2's sshd as if `up` had died before recording its pid: down finds it in the
    // namespace and stops it (it used to fail: "not started by splitbrain").
    let state_file = dir.join(splitbrain_cluster::STATE_FILE);
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["nodes"][1]["sshd"]["pid"] = serde_json::Value::Null;
    std::fs::write(&state_file, state.to_string()).unwrap();
    let n2_config = dir.join("n2").join("sshd_config").display().to_string();
    assert_eq!(live_processes_naming(&n2_config).len(), 1);
    ok(splitbrain().args(["cluster", "down", "--dir"]).arg(&dir));
    assert!(live_processes_naming(&n2_config).is_empty());
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

#[test]
fn faults_that_would_hit_this_machine_are_refused_before_any_ssh() {
    // No lab needed: nothing listens on port 1, and nothing may be asked anyway.
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path().join("nodes.toml");
    std::fs::write(
        &nodes,
        "[defaults]\nport = 1\nclock = { strategy = \"date\" }\n\
         [[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\nclient_url = \"http://127.0.0.1:1\"\n",
    )
    .unwrap();
    let store = tmp.path().join("store");
    for (what, out) in [
        (
            "nemesis clock bump 5s n1",
            nemesis(&nodes, &["clock", "bump", "5s", "n1"]),
        ),
        (
            "nemesis clock bump 5s",
            nemesis(&nodes, &["clock", "bump", "5s"]),
        ),
        (
            "test --nemesis clock",
            Ran::of(&mut test_on(
                &nodes,
                "--nemesis clock --time-limit 1",
                &store,
            )),
        ),
    ] {
        let err = out.stderr;
        assert_ne!(out.code, Some(0), "{what}: {err}");
        assert!(
            err.contains("clock strategy \"date\" refused on node n1")
                && !err.contains("unreachable"),
            "{what}: {err}"
        );
    }
    assert!(!tmp.path().join("nodes.nemesis").exists());

    // Nodes sharing 127.0.0.1 (port mappings) cannot be partitioned: said before
    // the run, naming the nodes.
    std::fs::write(
        &nodes,
        "[defaults]\nclock = { strategy = \"none\" }\n\
         [[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\nport = 2201\nclient_url = \"http://127.0.0.1:1\"\n\
         [[node]]\nname = \"n2\"\nhost = \"127.0.0.1\"\nport = 2202\nclient_url = \"http://127.0.0.1:2\"\n",
    )
    .unwrap();
    let store = tmp.path().join("store");
    let out = Ran::of(&mut test_on(
        &nodes,
        "--nemesis partition --time-limit 1",
        &store,
    ));
    let err = out.stderr;
    assert_ne!(out.code, Some(0), "{err}");
    assert!(err.contains("node n1") && err.contains("loopback"), "{err}");
    assert!(!tmp.path().join("nodes.nemesis").exists());
}
