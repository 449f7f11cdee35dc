//! The control loop against servers that misbehave on loopback (no prerequisites),
//! and against the real local etcd lab (root, etcd, iproute2: `sudo scripts/setup`;
//! without them those tests print `SKIPPED: ...` and pass, except under `CI=true`).

use serde_json::Value;
use splitbrain_checker::{check, ModelKind, Options, Verdict};
use splitbrain_control::etcd_v3::{EtcdV3, ReadMode};
use splitbrain_control::http::{HttpClient, HttpConfig};
use splitbrain_control::{
    run, Generator, Mix, Progress, Stop, Summary, TestConfig, Workload, WorkloadKind,
};
use splitbrain_history::{History, OpType};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

// ---------------------------------------------------------------- helpers

/// Every invocation has exactly one completion, reads never end `info`, and every
/// `fail` and `info` says why.
fn assert_complete(h: &History) {
    for pair in h.pairs() {
        let inv = &h.ops()[pair.invoke];
        let Some(c) = pair.completion else {
            panic!("line {}: {inv} never completed", h.line(pair.invoke));
        };
        let c = &h.ops()[c];
        assert!(
            inv.node.is_some() && c.node.is_some(),
            "node missing on {c}"
        );
        if matches!(c.kind, OpType::Fail | OpType::Info) {
            assert!(
                c.error
                    .as_ref()
                    .and_then(|e| e.as_str())
                    .is_some_and(|e| !e.is_empty()),
                "{c} has no error"
            );
        }
        if &*c.f == "read" {
            assert_ne!(c.kind, OpType::Info, "a read ended info: {c}");
        }
    }
}

fn kinds(h: &History, f: &str) -> Vec<(OpType, String)> {
    h.ops()
        .iter()
        .filter(|o| o.kind != OpType::Invoke && &*o.f == f)
        .map(|o| {
            let e = o.error.as_ref().and_then(|e| e.as_str()).unwrap_or("");
            (o.kind, e.to_owned())
        })
        .collect()
}

struct Run {
    summary: Summary,
    history: History,
}

async fn run_against(
    nodes: Vec<String>,
    config: TestConfig,
    workload: Workload,
    dir: &Path,
) -> Run {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    // Runs on one cluster must not share keys: each starts from absent.
    let run_no = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let client = EtcdV3::new(ReadMode::Linearizable, config.op_timeout).unwrap();
    let path = dir.join(format!("history-{run_no}.jsonl"));
    let summary = run(
        Arc::new(client),
        Generator::new(workload, format!("t/{}/{run_no}/", std::process::id())),
        TestConfig { nodes, ..config },
        &path,
        Stop::default(),
        Arc::new(Progress::default()),
    )
    .await
    .unwrap();
    let history = History::read_path(&path).unwrap();
    assert_eq!(history.len() as u64, summary.ops_written);
    assert_complete(&history);
    Run { summary, history }
}

fn small(ops: u64) -> TestConfig {
    TestConfig {
        concurrency: 4,
        time_limit: Some(Duration::from_secs(20)),
        op_limit: Some(ops),
        op_timeout: Duration::from_millis(400),
        drain_timeout: Duration::from_secs(2),
        final_reads: None,
        ..TestConfig::default()
    }
}

/// A loopback server that answers every connection with `answer`.
fn serve(answer: fn(TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || answer(s));
        }
    });
    format!("http://{addr}")
}

/// Reads one request's head (the body is small and follows at once).
fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    matches!(s.read(&mut buf), Ok(n) if n > 0)
}

// ---------------------------------------------------------------- misbehaving servers

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_garbage_gives_info_for_writes_and_fail_for_reads() {
    let url = serve(|mut s| {
        while read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nxyzzy!!");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let r = run_against(vec![url], small(40), Workload::default(), dir.path()).await;
    assert_eq!(r.summary.ok, 0);
    for (kind, error) in kinds(&r.history, "write")
        .into_iter()
        .chain(kinds(&r.history, "cas"))
    {
        assert_eq!(kind, OpType::Info, "{error}");
        assert!(error.contains("unparseable"), "{error}");
    }
    assert!(kinds(&r.history, "read")
        .iter()
        .all(|(k, _)| *k == OpType::Fail));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_speaks_no_http_gives_info() {
    let url = serve(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let r = run_against(vec![url], small(20), Workload::default(), dir.path()).await;
    assert_eq!(r.summary.ok, 0);
    assert!(kinds(&r.history, "write")
        .iter()
        .all(|(k, _)| *k == OpType::Info));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_gives_info_after_the_timeout() {
    let url = serve(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(5));
    });
    let dir = tempfile::tempdir().unwrap();
    let r = run_against(vec![url], small(12), Workload::default(), dir.path()).await;
    assert_eq!(r.summary.ok, 0);
    for (kind, error) in kinds(&r.history, "write") {
        assert_eq!(kind, OpType::Info);
        assert!(error.contains("timeout"), "{error}");
    }
    // A worker whose op is indeterminate carries on as a new process.
    assert!(r.history.process_count() > 4, "no process was renumbered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_mid_answer_gives_info() {
    let url = serve(|mut s| {
        if read_request(&mut s) {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"hea");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let r = run_against(vec![url], small(20), Workload::default(), dir.path()).await;
    assert_eq!(r.summary.ok, 0);
    let mutations: Vec<_> = kinds(&r.history, "write")
        .into_iter()
        .chain(kinds(&r.history, "cas"))
        .collect();
    assert!(!mutations.is_empty());
    assert!(mutations.iter().all(|(k, _)| *k == OpType::Info));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_refuses_connections_gives_fail() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let r = run_against(
        vec![format!("http://127.0.0.1:{port}")],
        small(20),
        Workload::default(),
        dir.path(),
    )
    .await;
    assert_eq!(r.summary.fail, 20);
    for (kind, error) in kinds(&r.history, "write") {
        assert_eq!(kind, OpType::Fail);
        assert!(error.starts_with("connect"), "{error}");
    }
    // Failing ops say nothing, so an all-fail history is trivially valid.
    assert_eq!(
        check(&r.history, &Options::default()).unwrap().verdict,
        Verdict::Valid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_completes_every_open_op_as_info() {
    let url = serve(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(10));
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let stop = Stop::default();
    let s2 = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.abort();
    });
    let config = TestConfig {
        nodes: vec![url],
        op_timeout: Duration::from_secs(30),
        ..small(1000)
    };
    let client = EtcdV3::new(ReadMode::Linearizable, config.op_timeout).unwrap();
    let summary = run(
        Arc::new(client),
        Generator::new(Workload::default(), "t/"),
        config,
        &path,
        stop,
        Arc::default(),
    )
    .await
    .unwrap();
    assert!(summary.aborted);
    let h = History::read_path(&path).unwrap();
    assert_complete(&h);
    assert_eq!(h.pairs().len(), 4, "one open op per worker");
    for (_, e) in kinds(&h, "write").into_iter().chain(kinds(&h, "read")) {
        assert!(e.contains("interrupted"), "{e}");
    }
}

// ---------------------------------------------------------------- the real lab

fn lab() -> Option<MutexGuard<'static, ()>> {
    splitbrain_testkit::lab(&[])
}

fn up(dir: &Path) -> splitbrain_cluster::ClusterGuard {
    let cluster = splitbrain_testkit::up(&dir.join("cluster"), 3);
    for url in cluster.endpoints() {
        splitbrain_cluster::ensure_lab_url(&url).unwrap();
    }
    cluster
}

fn cas_register() -> Options {
    Options {
        model: ModelKind::CasRegister,
        ..Options::default()
    }
}

#[test]
fn etcd_v3_cas_register_with_ten_workers_is_linearizable() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = TestConfig {
        concurrency: 10,
        time_limit: Some(Duration::from_secs(12)),
        ..TestConfig::default()
    };
    let r = rt.block_on(run_against(
        cluster.endpoints(),
        config,
        Workload::default(),
        dir.path(),
    ));
    assert!(
        r.summary.ops_written >= 2000,
        "only {} ops",
        r.summary.ops_written
    );
    assert!(r.summary.ok > 500, "{:?}", r.summary);
    // Every op names its node, and every node got some.
    for node in cluster.endpoints() {
        assert!(r
            .history
            .ops()
            .iter()
            .any(|o| o.node.as_deref() == Some(node.as_str())));
    }
    let finals = r
        .history
        .ops()
        .iter()
        .filter(|o| o.is_final && o.kind == OpType::Ok)
        .count();
    assert_eq!(finals, 3, "one final read per node");
    assert_eq!(
        check(&r.history, &cas_register()).unwrap().verdict,
        Verdict::Valid
    );

    // Many keys, each retired after 50 ops, on the same cluster.
    let keyed = Workload {
        keys: Some(5),
        ops_per_key: 50,
        mix: Mix {
            read: 2,
            write: 1,
            cas: 1,
        },
        ..Workload::default()
    };
    let config = TestConfig {
        concurrency: 10,
        time_limit: Some(Duration::from_secs(4)),
        ..TestConfig::default()
    };
    let r = rt.block_on(run_against(cluster.endpoints(), config, keyed, dir.path()));
    let report = check(&r.history, &cas_register()).unwrap();
    assert_eq!(report.verdict, Verdict::Valid);
    assert!(report.keys > 5, "keys did not retire: {}", report.keys);
}

#[test]
fn a_node_killed_mid_run_gives_fail_or_info_never_a_crash() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path());
    let victim = cluster.nodes()[2].clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = TestConfig {
        nodes: cluster.endpoints(),
        concurrency: 6,
        time_limit: Some(Duration::from_secs(6)),
        ..TestConfig::default()
    };
    let path = dir.path().join("history.jsonl");
    let summary = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            cluster.kill(victim.name.as_str()).unwrap();
        });
        let client = EtcdV3::new(ReadMode::Linearizable, Duration::from_secs(5)).unwrap();
        rt.block_on(run(
            Arc::new(client),
            Generator::new(Workload::default(), "t/"),
            config,
            &path,
            Stop::default(),
            Arc::default(),
        ))
        .unwrap()
    });
    let h = History::read_path(&path).unwrap();
    assert_complete(&h);
    let on_victim: Vec<_> = h
        .ops()
        .iter()
        .filter(|o| {
            o.node.as_deref() == Some(victim.client_url.as_str()) && o.kind != OpType::Invoke
        })
        .collect();
    let failed = on_victim.iter().filter(|o| o.kind != OpType::Ok).count();
    assert!(failed > 0, "nothing failed on the killed node: {summary:?}");
    assert!(
        on_victim.iter().any(|o| o.kind == OpType::Ok),
        "nothing worked before the kill"
    );
    assert_eq!(check(&h, &cas_register()).unwrap().verdict, Verdict::Valid);
}

#[test]
fn the_shipped_etcd_v2_client_config_is_the_built_in_one() {
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/clients/etcd-v2.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    assert_eq!(
        HttpConfig::from_toml(&text).unwrap(),
        HttpConfig::etcd_v2(true)
    );
    let consul = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/clients/consul.toml");
    let consul = HttpConfig::from_toml(&std::fs::read_to_string(consul).unwrap()).unwrap();
    assert!(consul.supports("read") && consul.supports("write") && !consul.supports("cas"));
}

/// dqlite-demo 1.11 answers everything with 200 and plain text (answers captured
/// from it): the shipped description tells them apart by their bodies.
#[test]
fn the_shipped_dqlite_client_config_reads_plain_text_answers() {
    use splitbrain_control::http::answer;
    use splitbrain_control::{Call, Outcome};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/clients/dqlite.toml");
    let dqlite = HttpConfig::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(dqlite.supports("read") && dqlite.supports("write") && !dqlite.supports("cas"));
    let (read, write) = (
        dqlite.read.as_ref().unwrap(),
        dqlite.write.as_ref().unwrap(),
    );
    let r = Call::Read { key: "k".into() };
    let w = Call::Write {
        key: "k".into(),
        value: 3,
    };
    assert_eq!(answer(read, &r, 200, b"3\n"), Outcome::ok(Value::from(3)));
    let absent = b"Error: sql: no rows in result set\n";
    assert_eq!(answer(read, &r, 200, absent), Outcome::ok(Value::Null));
    let locked = b"Error: database is locked\n";
    assert!(matches!(answer(read, &r, 200, locked), Outcome::Fail(_)));
    assert!(matches!(
        answer(write, &w, 200, b"done\n"),
        Outcome::Ok { .. }
    ));
    assert!(matches!(answer(write, &w, 200, locked), Outcome::Fail(_)));
    let lost = b"Error: context deadline exceeded\n";
    assert!(matches!(answer(write, &w, 200, lost), Outcome::Info(_)));
}

#[test]
fn etcd_v2_through_the_generic_http_config_with_quorum_reads_is_linearizable() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = dir.path().join("history.jsonl");
    let config = TestConfig {
        nodes: cluster.endpoints(),
        concurrency: 10,
        time_limit: Some(Duration::from_secs(6)),
        ..TestConfig::default()
    };
    let client = HttpClient::new(HttpConfig::etcd_v2(true), config.op_timeout).unwrap();
    let summary = rt
        .block_on(run(
            Arc::new(client),
            Generator::new(Workload::default(), "t/v2/"),
            config,
            &path,
            Stop::default(),
            Arc::default(),
        ))
        .unwrap();
    let h = History::read_path(&path).unwrap();
    assert_complete(&h);
    assert!(summary.ok > 500, "{summary:?}");
    // Failed compares are fail (errorCode 101), and some cas succeeded.
    let cas = kinds(&h, "cas");
    assert!(cas.iter().any(|(k, _)| *k == OpType::Ok));
    assert!(cas
        .iter()
        .any(|(k, e)| *k == OpType::Fail && e.contains("101")));
    assert_eq!(check(&h, &cas_register()).unwrap().verdict, Verdict::Valid);
}

#[test]
fn etcd_v3_set_and_counter_check_valid_with_final_reads_on_every_node() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cluster = up(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = || TestConfig {
        concurrency: 8,
        time_limit: Some(Duration::from_secs(3)),
        ..TestConfig::default()
    };
    let set = Workload {
        kind: WorkloadKind::Set,
        ..Workload::default()
    };
    let r = rt.block_on(run_against(cluster.endpoints(), config(), set, dir.path()));
    let finals: Vec<_> = r
        .history
        .ops()
        .iter()
        .filter(|o| o.is_final && o.kind == OpType::Ok)
        .collect();
    assert_eq!(finals.len(), 3, "one final read per node");
    let added = kinds(&r.history, "add")
        .iter()
        .filter(|(k, _)| *k == OpType::Ok)
        .count();
    assert!(finals
        .iter()
        .all(|o| o.value.json().as_array().map(Vec::len) == Some(added)));
    let opts = |model| Options {
        model,
        ..Options::default()
    };
    assert_eq!(
        check(&r.history, &opts(ModelKind::Set)).unwrap().verdict,
        Verdict::Valid
    );

    let counter = Workload {
        kind: WorkloadKind::Counter,
        keys: Some(4),
        ..Workload::default()
    };
    let r = rt.block_on(run_against(
        cluster.endpoints(),
        config(),
        counter,
        dir.path(),
    ));
    assert!(r.summary.ok > 50, "{:?}", r.summary);
    assert_eq!(
        check(&r.history, &opts(ModelKind::Counter))
            .unwrap()
            .verdict,
        Verdict::Valid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_reaches_the_disk_while_ops_are_still_in_flight() {
    let url = serve(|mut s| {
        read_request(&mut s);
        std::thread::sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let stop = Stop::default();
    let config = TestConfig {
        nodes: vec![url],
        op_timeout: Duration::from_secs(60),
        ..small(1000)
    };
    let client = EtcdV3::new(ReadMode::Linearizable, config.op_timeout).unwrap();
    let running = run(
        Arc::new(client),
        Generator::new(Workload::default(), "t/"),
        config,
        &path,
        stop.clone(),
        Arc::default(),
    );
    // Every worker's invocation is on disk (the periodic flush) long before any op
    // can complete; the bound here is generous, the flush is every second.
    let watch = async {
        let mut on_disk = 0;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            on_disk = std::fs::read_to_string(&path).map_or(0, |t| t.lines().count());
            if on_disk == 4 {
                break;
            }
        }
        stop.abort();
        on_disk
    };
    let (summary, on_disk) = tokio::join!(running, watch);
    assert_eq!(on_disk, 4, "the open invocations never reached the disk");
    assert!(summary.unwrap().aborted);
    assert_complete(&History::read_path(&path).unwrap());
}

#[test]
fn a_run_can_be_spawned_on_any_runtime_thread() {
    fn send<T: Send>(_: &T) {}
    let client = EtcdV3::new(ReadMode::Linearizable, Duration::from_secs(1)).unwrap();
    let path = Path::new("unused.jsonl");
    let future = run(
        Arc::new(client),
        Generator::new(Workload::default(), "t/"),
        small(1),
        path,
        Stop::default(),
        Arc::default(),
    );
    send(&future); // never polled: nothing runs, nothing is created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_reads_reach_every_node_even_with_fewer_workers_than_nodes() {
    // A stand-in for etcd that knows nothing: every answer is an empty header.
    let etcd = || {
        serve(|mut s| {
            while read_request(&mut s) {
                let body = r#"{"header":{}}"#;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s.write_all((head + body).as_bytes());
            }
        })
    };
    let nodes = vec![etcd(), etcd(), etcd()];
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig {
        concurrency: 1,
        final_reads: Some(Duration::from_millis(10)),
        ..small(5)
    };
    let r = run_against(nodes.clone(), config, Workload::default(), dir.path()).await;
    for node in &nodes {
        assert!(
            r.history
                .ops()
                .iter()
                .any(|o| o.is_final && o.kind == OpType::Ok && o.node.as_deref() == Some(node)),
            "no final read on {node}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_caps_invocations_over_all_workers() {
    let url = serve(|mut s| {
        while read_request(&mut s) {
            let body = r#"{"header":{}}"#;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = s.write_all((head + body).as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig {
        concurrency: 8,
        rate: Some(50.0),
        time_limit: Some(Duration::from_millis(400)),
        op_limit: None,
        ..small(0)
    };
    let r = run_against(vec![url], config, Workload::default(), dir.path()).await;
    // Send slots are 20 ms apart from the start, and an op is invoked no earlier
    // than its slot: the k-th invocation comes k * 20 ms or more after the start.
    // (A slow machine only makes them later.)
    let mut times: Vec<i64> = r
        .history
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Invoke)
        .map(|o| o.time().unwrap())
        .collect();
    times.sort_unstable();
    assert!(!times.is_empty());
    for (k, t) in times.iter().enumerate() {
        assert!(*t >= k as i64 * 20_000_000, "invocation {k} at {t} ns");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_error_answers_are_fail_only_when_the_request_was_refused() {
    fn answer(mut s: TcpStream, status: &str) {
        while read_request(&mut s) {
            let body = r#"{"error":"etcdserver: something","code":14}"#;
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all((head + body).as_bytes());
        }
    }
    let refused = serve(|s| answer(s, "400 Bad Request"));
    let unavailable = serve(|s| answer(s, "503 Service Unavailable"));
    let aborted = serve(|s| answer(s, "409 Conflict"));
    for (url, expected) in [
        (refused, OpType::Fail),
        (unavailable, OpType::Info),
        (aborted, OpType::Info),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let r = run_against(
            vec![url.clone()],
            small(20),
            Workload::default(),
            dir.path(),
        )
        .await;
        for (kind, error) in kinds(&r.history, "write")
            .into_iter()
            .chain(kinds(&r.history, "cas"))
        {
            assert_eq!(kind, expected, "{url}: {error}");
            assert!(error.contains("etcdserver: something"), "{error}");
        }
    }
}
