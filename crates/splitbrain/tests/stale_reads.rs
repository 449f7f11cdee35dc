//! etcd's and ZooKeeper's stale read modes, caught every time: a scripted scenario on the real local
//! lab instead of a random workload (whose stale reads depend on luck and load).
//!
//! Write 1, isolate a follower, write 2 through the majority, then read on the
//! isolated follower. A local read (v2 without `quorum`, v3 `serializable`) answers
//! 1 after 2 was acknowledged: the history is not linearizable, and `splitbrain check`
//! must say so with the stale read in its counterexample. A quorum (v2) or
//! linearizable (v3) read on the isolated follower cannot answer at all, so the
//! same script stays linearizable. After healing, final reads on every member see 2:
//! every mode is eventually consistent.
//!
//! ZooKeeper's plain reads are local reads too: a follower cut off from the leader
//! serves its old state until it gives up on the leader (`syncLimit` ticks, 5 s in the
//! lab), so the read right after the second write answers 1. With `sync` first, the
//! follower must reach the leader, cannot, and the read fails.
//!
//! Needs root, etcd and iproute2/iptables (`sudo scripts/setup`); without them the
//! tests print `SKIPPED: ...` and pass, except under `CI=true`, where that fails.

use serde_json::Value;
use splitbrain_cluster::{Cluster, Config};
use splitbrain_control::etcd_v3::{EtcdV3, ReadMode};
use splitbrain_control::http::{HttpClient, HttpConfig};
use splitbrain_control::zookeeper::{self, ZooKeeper};
use splitbrain_control::{Call, Client, Outcome};
use splitbrain_history::{jsonl, Key, Op, OpType, Process};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::lab::LabNet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(3);

fn lab() -> bool {
    splitbrain_testkit::lab_available(&["iptables"])
}

/// Records every call it makes as an invocation and its completion.
struct Recorder {
    ops: Vec<Op>,
    start: Instant,
}

impl Recorder {
    fn op(&self, process: i64, kind: OpType, call: &Call, value: Value, node: &str) -> Op {
        let mut op = Op::new(Process::Client(process), kind, call.f(), value);
        op.key = Some(Key::Str(call.key().into()));
        op.node = Some(node.into());
        op.set_time(Some(self.start.elapsed().as_nanos() as i64));
        op
    }

    async fn call(
        &mut self,
        process: i64,
        client: &dyn Client,
        node: &str,
        call: Call,
        is_final: bool,
    ) -> Outcome {
        let mut inv = self.op(process, OpType::Invoke, &call, call.value(), node);
        inv.is_final = is_final;
        self.ops.push(inv);
        let outcome = match tokio::time::timeout(TIMEOUT, client.invoke(&call)).await {
            Ok(o) => o.for_call(&call),
            Err(_) => Outcome::unknown(&call, "timed out"),
        };
        let (kind, value, error) = match &outcome {
            Outcome::Ok { value, .. } if call.is_read() => (OpType::Ok, value.clone(), None),
            Outcome::Ok { .. } => (OpType::Ok, call.value(), None),
            Outcome::Fail(e) => (OpType::Fail, call.value(), Some(e.clone())),
            Outcome::Refused(e) => (OpType::Fail, call.value(), Some(format!("connect: {e}"))),
            Outcome::Info(e) => (OpType::Info, call.value(), Some(e.clone())),
        };
        let mut done = self.op(process, kind, &call, value, node);
        done.error = error.map(|e| Box::new(Value::from(e)));
        done.is_final = is_final;
        self.ops.push(done);
        outcome
    }

    fn write_to(&self, path: &Path) {
        let mut w = jsonl::Writer::new(std::fs::File::create(path).unwrap());
        for op in &self.ops {
            w.write(op).unwrap();
        }
        w.flush().unwrap();
    }
}

/// Reads `key` on `client` without recording, until it answers `want` (replication
/// to a follower is asynchronous; an unrecorded read constrains nothing).
async fn await_value(client: &dyn Client, key: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let call = Call::Read { key: key.into() };
    loop {
        if let Ok(Outcome::Ok { value, .. }) =
            tokio::time::timeout(TIMEOUT, client.invoke(&call)).await
        {
            if value == want {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{key} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the script saw on the isolated follower.
struct Script {
    history: tempfile::NamedTempFile,
    /// The recorded read on the isolated follower.
    isolated_read: Outcome,
}

/// The script, on a fresh 3-member etcd lab, with `client` (not yet bound to a node).
fn script(client: &dyn Client) -> Script {
    script_on("etcd", client)
}

/// The script on a fresh 3-member lab of database `db`.
fn script_on(db: &str, client: &dyn Client) -> Script {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_dir(dir.path().join("cluster"));
    config.db = db.to_owned();
    config.health_timeout = splitbrain_testkit::WAIT;
    let cluster = Cluster::up(config).unwrap().guard();
    let leader = cluster.leader().unwrap().expect("a leader after up");
    let nodes: Vec<String> = cluster.nodes().iter().map(|n| n.name.0.clone()).collect();
    let follower = nodes.iter().find(|n| **n != leader.0).unwrap().clone();
    let url = |name: &str| {
        let u = cluster.node(name).unwrap().client_url.clone();
        splitbrain_cluster::ensure_lab_url(&u).unwrap();
        u
    };
    let at_leader = client.open(&url(&leader.0)).unwrap();
    let at_follower = client.open(&url(&follower)).unwrap();
    let net = LabNet::of(&cluster);
    let key = "stale";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rec = Recorder {
        ops: Vec::new(),
        start: Instant::now(),
    };
    let isolated_read = rt.block_on(async {
        let write = |value| Call::Write {
            key: key.into(),
            value,
        };
        let first = rec.call(0, &*at_leader, &leader.0, write(1), false).await;
        assert!(
            matches!(first, Outcome::Ok { .. }),
            "the first write: {first:?}"
        );
        await_value(&*at_follower, key, 1).await;

        let partition = net.partition(&Grudge::isolate(&nodes, &follower)).unwrap();
        // The leader keeps its majority: the write commits without the follower.
        let second = rec.call(0, &*at_leader, &leader.0, write(2), false).await;
        assert!(
            matches!(second, Outcome::Ok { .. }),
            "the second write: {second:?}"
        );
        let read = Call::Read { key: key.into() };
        let isolated_read = rec.call(1, &*at_follower, &follower, read, false).await;
        partition.heal().unwrap();
        assert!(
            net.recorded().unwrap().is_empty(),
            "healed faults are forgotten"
        );
        assert!(
            net.partitioned_members().unwrap().is_empty(),
            "no rule left"
        );

        cluster.wait_healthy(Duration::from_secs(30)).unwrap();
        for (i, node) in nodes.iter().enumerate() {
            let c = client.open(&url(node)).unwrap();
            await_value(&*c, key, 2).await;
            let read = Call::Read { key: key.into() };
            rec.call(10 + i as i64, &*c, node, read, true).await;
        }
        isolated_read
    });
    let history = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    rec.write_to(history.path());
    drop(cluster);
    Script {
        history,
        isolated_read,
    }
}

/// `splitbrain check --model register --consistency LEVEL HISTORY`: exit code, stdout.
fn check(history: &Path, level: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args(["check", "--model", "register", "--consistency", level])
        .arg(history)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), stdout)
}

fn assert_caught_stale(s: &Script) {
    assert!(
        matches!(&s.isolated_read, Outcome::Ok { value, .. } if *value == 1),
        "the isolated follower answers from its own, old state: {:?}",
        s.isolated_read
    );
    let (code, stdout) = check(s.history.path(), "linearizable");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("NOT linearizable"), "{stdout}");
    assert!(stdout.contains("^ cannot be linearized"), "{stdout}");
    // The culprit is the isolated follower's read of 1, after the write of 2.
    assert!(stdout.contains("cannot linearize: p1 read 1"), "{stdout}");
    assert!(stdout.contains("p0 write 2"), "{stdout}");
    let (code, stdout) = check(s.history.path(), "eventual");
    assert_eq!(code, Some(0), "eventually consistent: {stdout}");
}

fn assert_not_stale(s: &Script) {
    assert!(
        !matches!(s.isolated_read, Outcome::Ok { .. }),
        "an isolated follower cannot serve a linearizable read: {:?}",
        s.isolated_read
    );
    let (code, stdout) = check(s.history.path(), "linearizable");
    assert_eq!(code, Some(0), "{stdout}");
}

#[test]
fn etcd_v2_local_reads_on_an_isolated_follower_are_caught_stale() {
    if !lab() {
        return;
    }
    let client = HttpClient::new(HttpConfig::etcd_v2(false), TIMEOUT).unwrap();
    assert_caught_stale(&script(&client));
}

#[test]
fn etcd_v2_quorum_reads_on_an_isolated_follower_are_not_stale() {
    if !lab() {
        return;
    }
    let client = HttpClient::new(HttpConfig::etcd_v2(true), TIMEOUT).unwrap();
    assert_not_stale(&script(&client));
}

#[test]
fn etcd_v3_serializable_reads_on_an_isolated_follower_are_caught_stale() {
    if !lab() {
        return;
    }
    let client = EtcdV3::new(ReadMode::Serializable, TIMEOUT).unwrap();
    assert_caught_stale(&script(&client));
}

#[test]
fn etcd_v3_linearizable_reads_on_an_isolated_follower_are_not_stale() {
    if !lab() {
        return;
    }
    let client = EtcdV3::new(ReadMode::Linearizable, TIMEOUT).unwrap();
    assert_not_stale(&script(&client));
}

#[test]
fn zookeeper_plain_reads_on_an_isolated_follower_are_caught_stale() {
    let Some(_lab) = splitbrain_testkit::lab_of("zookeeper", &["iptables"]) else {
        return;
    };
    let client = ZooKeeper::new(zookeeper::ReadMode::Plain, TIMEOUT).unwrap();
    assert_caught_stale(&script_on("zookeeper", &client));
}

#[test]
fn zookeeper_sync_reads_on_an_isolated_follower_are_not_stale() {
    let Some(_lab) = splitbrain_testkit::lab_of("zookeeper", &["iptables"]) else {
        return;
    };
    let client = ZooKeeper::new(zookeeper::ReadMode::Sync, TIMEOUT).unwrap();
    assert_not_stale(&script_on("zookeeper", &client));
}
