//! How fast the control loop goes, and what it adds to each request.
//!
//!     scripts/bench-control            (cargo run --release --example bench)
//!
//! Starts a trivial key-value server on 127.0.0.1 (in this process: a hand-written
//! HTTP/1.1 loop over a hash map), then:
//! 1. a plain loop: 32 tasks sending the same kinds of requests with the same HTTP
//!    client and nothing else;
//! 2. the harness: `run` with 32 workers, the generic `http` client, cas-register
//!    over 100 keys, the full history recorded to a file.
//!
//! It prints ops/s and latency percentiles of both; the difference is what recording,
//! generation and outcome handling cost.

use splitbrain_control::http::{HttpClient, HttpConfig};
use splitbrain_control::{run, Call, Client, Generator, Mix, Seen, Stop, TestConfig, Workload};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const CLIENT: &str = r#"
[read]
method = "GET"
path = "/kv/{key}"
value = "raw"
outcome = [{ status = [200], result = "ok" }, { status = [404], result = "absent" }]
[write]
method = "PUT"
path = "/kv/{key}"
body = "{value}"
outcome = [{ status = [200], result = "ok" }]
[cas]
method = "PUT"
path = "/cas/{key}?old={old}"
body = "{new}"
outcome = [{ status = [200], result = "ok" }, { status = [409], result = "fail" }]
"#;

type Store = Arc<Mutex<HashMap<String, String>>>;

async fn serve(listener: TcpListener, store: Store) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(connection(s, store.clone()));
    }
}

/// One keep-alive connection: request line, headers, Content-Length body.
async fn connection(s: TcpStream, store: Store) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let (status, answer) = {
            let mut kv = store.lock().unwrap();
            match (method.as_str(), target.split_once('?')) {
                ("GET", None) => match kv.get(&target[4..]) {
                    Some(v) => (200, v.clone()),
                    None => (404, String::new()),
                },
                ("PUT", None) => {
                    kv.insert(target[4..].to_owned(), body);
                    (200, String::new())
                }
                ("PUT", Some((path, query))) => {
                    let key = &path[5..];
                    let old = query.strip_prefix("old=").unwrap_or("");
                    let current = kv.get(key).map_or("", String::as_str);
                    if current == old {
                        kv.insert(key.to_owned(), body);
                        (200, String::new())
                    } else {
                        (409, String::new())
                    }
                }
                _ => (400, String::new()),
            }
        };
        let reason = if status == 200 { "OK" } else { "X" };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        w.write_all((head + &answer).as_bytes()).await?;
    }
}

fn percentiles(mut ns: Vec<u64>) -> (f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize] as f64 / 1e3;
    (at(0.5), at(0.99))
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let workers = 32;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, Store::default()));
    let config = HttpConfig::from_toml(CLIENT).unwrap();
    let client = HttpClient::new(config, Duration::from_secs(5)).unwrap();
    let workload = Workload {
        keys: Some(100),
        ops_per_key: 1000,
        mix: Mix::default(),
        ..Workload::default()
    };

    // 1. A plain loop: the same client, the same kinds of requests, nothing recorded.
    let conn: Arc<dyn Client> = Arc::from(client.open(&url).unwrap());
    let gen = Generator::new(workload.clone(), "p/").with_seed(7);
    let seen = Arc::new(Seen::default());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for w in 0..workers {
        let (conn, seen) = (conn.clone(), seen.clone());
        let mut gen = gen.worker(w, workers);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let call: Call = gen.next(&seen).call;
                let t = Instant::now();
                let _ = conn.invoke(&call).await;
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = lat.len();
    let (p50b, p99b) = percentiles(lat);
    let plain_rate = n as f64 / elapsed;
    println!(
        "plain loop {workers} tasks   {secs}s: {plain_rate:>8.0} ops/s  p50 {p50b:>7.1} us  p99 {p99b:>7.1} us"
    );
    // 2. The harness, recording everything. (Second, so that any warm-up favours
    // the plain loop, not us.)
    let dir = std::env::temp_dir().join(format!("splitbrain-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("history.jsonl");
    let summary = run(
        Arc::new(client.clone()),
        Generator::new(workload.clone(), "b/"),
        TestConfig {
            nodes: vec![url.clone()],
            concurrency: workers,
            time_limit: Some(Duration::from_secs(secs)),
            final_reads: None,
            ..TestConfig::default()
        },
        &history,
        Stop::default(),
        Arc::default(),
    )
    .await
    .unwrap();
    let h = splitbrain_history::History::read_path(&history).unwrap();
    let lat: Vec<u64> = h
        .pairs()
        .iter()
        .filter_map(|p| {
            let c = p.completion?;
            Some((h.ops()[c].time()? - h.ops()[p.invoke].time()?) as u64)
        })
        .collect();
    let size = std::fs::metadata(&history).map(|m| m.len()).unwrap_or(0);
    let (p50, p99) = percentiles(lat);
    let harness_rate = summary.invoked as f64 / summary.elapsed.as_secs_f64();
    println!(
        "harness    {workers} workers {secs}s: {:>8.0} ops/s  p50 {p50:>7.1} us  p99 {p99:>7.1} us  ({} ops, {} ok, {} fail, {} info; history {:.1} MiB)",
        harness_rate,
        summary.invoked,
        summary.ok,
        summary.fail,
        summary.info,
        size as f64 / (1 << 20) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "harness adds: p50 {:+.1} us, p99 {:+.1} us; throughput {:.0}% of the plain loop; target >= 20000 ops/s: {}",
        p50 - p50b,
        p99 - p99b,
        100.0 * harness_rate / plain_rate,
        if harness_rate >= 20000.0 { "met" } else { "NOT met" }
    );
}
