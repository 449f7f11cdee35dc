//! The interpreter: runs the generator's ops on `concurrency` workers and records
//! every invocation and completion.
//!
//! ```text
//!   worker w (node w mod N) ── process w ── invoke ─ ok/fail ─ invoke ─ info
//!                              process w+C ── invoke ─ ...       (Jepsen: a process
//!                                                                 that saw info is done)
//! ```
//!
//! The promise is *exactly one completion per invocation*: each worker races its call
//! against the op timeout and the abort signal, and whatever wins is recorded, so an
//! op that times out or is interrupted is `info` (a read: `fail`), never missing.
//! Stopping has two steps: [`Stop::stop`] ends generation and lets in-flight ops
//! finish (up to [`TestConfig::drain_timeout`]); [`Stop::abort`] cuts them short.

use crate::call::{Client, Outcome};
use crate::generator::{Generator, Next, Seen};
use crate::nemesis::{Nemesis, Schedule};
use crate::progress::Progress;
use crate::recorder::{self, Recorder};
use crate::Error;
use serde_json::Value;
use splitbrain_history::{Key, Op, OpType, Process};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a run is driven.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Base URLs; worker w talks to node w mod len.
    pub nodes: Vec<String>,
    pub concurrency: usize,
    /// Ops per second over all workers; `None`: as fast as they go.
    pub rate: Option<f64>,
    /// Stop generating after this long.
    pub time_limit: Option<Duration>,
    /// Stop generating after this many invocations.
    pub op_limit: Option<u64>,
    /// An op still unanswered after this long is `info` (reads: `fail`).
    pub op_timeout: Duration,
    /// After a stop, how long in-flight ops may take before they are cut short.
    pub drain_timeout: Duration,
    /// Final phase: wait this long for quiet, then read every key on every node.
    pub final_reads: Option<Duration>,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            nodes: Vec::new(),
            concurrency: 10,
            rate: None,
            time_limit: Some(Duration::from_secs(30)),
            op_limit: None,
            op_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            final_reads: Some(Duration::from_secs(1)),
        }
    }
}

/// Stops a run: first gently ([`stop`](Stop::stop)), then at once
/// ([`abort`](Stop::abort)). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stop {
    stop: Arc<watch::Sender<bool>>,
    abort: Arc<watch::Sender<bool>>,
    interrupts: Arc<AtomicU32>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            stop: Arc::new(watch::channel(false).0),
            abort: Arc::new(watch::channel(false).0),
            interrupts: Arc::default(),
        }
    }
}

impl Stop {
    /// Stop generating; in-flight ops complete or time out.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stop generating and cut in-flight ops short: each is recorded `info`
    /// (reads `fail`) with the error `interrupted`.
    pub fn abort(&self) {
        self.stop();
        self.abort.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn is_aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// How many Ctrl-Cs [`on_ctrl_c`](Stop::on_ctrl_c) has seen.
    pub fn interrupts(&self) -> u32 {
        self.interrupts.load(Ordering::SeqCst)
    }

    /// First Ctrl-C (SIGINT) stops, the second aborts. Spawns a task on the current
    /// runtime; from then on SIGINT no longer kills the process.
    pub fn on_ctrl_c(&self) {
        let me = self.clone();
        // Registered now, not when the task first runs, so no SIGINT slips through.
        let Ok(mut sigint) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        else {
            return;
        };
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                if me.interrupts.fetch_add(1, Ordering::SeqCst) == 0 {
                    me.stop();
                } else {
                    me.abort();
                }
            }
        });
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ops_written: u64,
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub elapsed: Duration,
    /// Stopped by [`Stop::stop`] before its limits.
    pub interrupted: bool,
    /// In-flight ops were cut short ([`Stop::abort`], or the drain timed out).
    pub aborted: bool,
    /// Faults the nemesis started.
    pub faults: u64,
}

/// Everything a worker shares.
struct Shared {
    gen: Generator,
    /// What the run has seen: the one input of generation besides the seed.
    seen: Seen,
    /// Keys the workers handed out, for the final reads (each adds its own at the end).
    used: Mutex<BTreeSet<u64>>,
    rec: Recorder,
    start: Instant,
    progress: Arc<Progress>,
    config: TestConfig,
    issued: AtomicU64,
    /// Next free process id above every worker's, for final reads.
    max_process: AtomicI64,
    /// Rate limit: the next free send slot.
    next_slot: Mutex<Instant>,
    generating: AtomicBool,
}

/// Runs a test: generation until a limit or a stop, then (unless aborted) the final
/// reads. Writes the history to `history` as it goes.
pub async fn run(
    client: Arc<dyn Client>,
    gen: Generator,
    config: TestConfig,
    history: &Path,
    stop: Stop,
    progress: Arc<Progress>,
) -> Result<Summary, Error> {
    run_with(client, gen, config, history, stop, progress, None).await
}

/// [`run`] with a nemesis: faults start and stop on `schedule` while the workers
/// run, each recorded as a `nemesis` op; when generation ends every fault is healed
/// (also after Ctrl-C) and the cluster is healthy before the final reads.
pub async fn run_with(
    client: Arc<dyn Client>,
    gen: Generator,
    config: TestConfig,
    history: &Path,
    stop: Stop,
    progress: Arc<Progress>,
    nemesis: Option<(Box<dyn Nemesis>, Schedule)>,
) -> Result<Summary, Error> {
    if config.nodes.is_empty() {
        return Err(Error::Config("no nodes to test".into()));
    }
    if config.concurrency == 0 {
        return Err(Error::Config("concurrency must be at least 1".into()));
    }
    let mut conns = Vec::new();
    for w in 0..config.concurrency {
        let node = &config.nodes[w % config.nodes.len()];
        conns.push((node.clone(), Arc::<dyn Client>::from(client.open(node)?)));
    }
    // Final reads go to every node, even one no worker talks to (fewer workers
    // than nodes).
    let mut final_conns: Vec<(String, Arc<dyn Client>)> = Vec::new();
    for node in &config.nodes {
        if final_conns.iter().all(|(n, _)| n != node) {
            final_conns.push((node.clone(), Arc::from(client.open(node)?)));
        }
    }
    // Sessions before anything is recorded or faulted (a ZooKeeper session can only
    // be made through the leader); a client that could not connect tries again later.
    let mut connecting = tokio::task::JoinSet::new();
    for (_, conn) in conns.iter().chain(&final_conns) {
        let conn = conn.clone();
        let timeout = config.op_timeout;
        connecting.spawn(async move {
            let _ = tokio::time::timeout(timeout, conn.connect()).await;
        });
    }
    while connecting.join_next().await.is_some() {}
    let (rec, writer) = recorder::start(history)?;
    let start = Instant::now();
    let (nemesis_done, nemesis_done_rx) = watch::channel(false);
    let nemesis_task = nemesis.map(|(n, schedule)| {
        tokio::spawn(crate::nemesis::drive(
            n,
            schedule,
            rec.clone(),
            start,
            nemesis_done_rx,
            progress.clone(),
        ))
    });
    let shared = Arc::new(Shared {
        gen,
        seen: Seen::default(),
        used: Mutex::default(),
        rec,
        start,
        progress: progress.clone(),
        issued: AtomicU64::new(0),
        max_process: AtomicI64::new(config.concurrency as i64 - 1),
        next_slot: Mutex::new(start),
        generating: AtomicBool::new(true),
        config,
    });

    let mut workers = tokio::task::JoinSet::new();
    for (w, (node, conn)) in conns.iter().cloned().enumerate() {
        workers.spawn(worker(shared.clone(), w, node, conn, stop.clone()));
    }
    // Generation ends at the time limit or a stop; workers also stop at the op limit.
    let mut stopped = stop.stop.subscribe();
    let time_limit = shared.config.time_limit;
    let limit = async {
        match time_limit {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let all_done = async { while workers.join_next().await.is_some() {} };
    tokio::pin!(all_done);
    let mut interrupted = false;
    let mut done = false;
    tokio::select! {
        _ = &mut all_done => done = true,
        _ = limit => {}
        _ = until(&mut stopped) => interrupted = true,
    }
    shared.generating.store(false, Ordering::SeqCst);
    // The nemesis heals while in-flight ops drain.
    let _ = nemesis_done.send(true);
    // Drain: in-flight ops finish, or are cut short after the drain timeout.
    let mut aborted = stop.is_aborted();
    if !done {
        let drain = shared.config.drain_timeout;
        let mut abort_rx = stop.abort.subscribe();
        tokio::select! {
            _ = &mut all_done => {}
            _ = tokio::time::sleep(drain) => {
                aborted = true;
                stop.abort();
                all_done.as_mut().await;
            }
            _ = until(&mut abort_rx) => {
                aborted = true;
                all_done.as_mut().await;
            }
        }
    }

    // Every fault is healed, and the cluster healthy, before the final reads, and
    // also when the run was aborted: faults always heal.
    let mut faults = 0;
    if let Some(task) = nemesis_task {
        match task.await {
            Ok((_, n)) => faults = n,
            Err(e) => return Err(Error::Config(format!("nemesis task: {e}"))),
        }
    }
    if !aborted {
        if let Some(quiet) = shared.config.final_reads {
            final_reads(&shared, &final_conns, quiet, &stop).await;
        }
    }
    aborted |= stop.is_aborted();
    for (_, conn) in conns.iter().chain(&final_conns) {
        conn.close().await;
    }
    let elapsed = start.elapsed();
    drop(conns);
    drop(final_conns);
    let shared = Arc::into_inner(shared).expect("every worker has finished");
    drop(shared.rec);
    let ops_written = writer
        .await
        .map_err(|e| Error::Config(format!("history writer task: {e}")))??;
    Ok(Summary {
        ops_written,
        invoked: progress.invoked.load(Ordering::Relaxed),
        ok: progress.ok.load(Ordering::Relaxed),
        fail: progress.fail.load(Ordering::Relaxed),
        info: progress.info.load(Ordering::Relaxed),
        elapsed,
        interrupted,
        aborted,
        faults,
    })
}

/// How long a worker waits after its node refused a connection.
const REFUSED_BACKOFF: Duration = Duration::from_millis(100);

async fn worker(sh: Arc<Shared>, w: usize, node: String, conn: Arc<dyn Client>, stop: Stop) {
    let mut gen = sh.gen.worker(w, sh.config.concurrency);
    run_worker(&sh, &mut gen, w, &node, &conn, &stop).await;
    let mut used = sh.used.lock().unwrap_or_else(|p| p.into_inner());
    used.extend(gen.used().iter().copied());
}

async fn run_worker(
    sh: &Shared,
    gen: &mut crate::generator::WorkerGen,
    w: usize,
    node: &str,
    conn: &Arc<dyn Client>,
    stop: &Stop,
) {
    let c = sh.config.concurrency as i64;
    let mut process = w as i64;
    let mut stop_rx = stop.stop.subscribe();
    loop {
        if !sh.generating.load(Ordering::Relaxed) || stop.is_stopped() {
            return;
        }
        if let Some(limit) = sh.config.op_limit {
            if sh.issued.fetch_add(1, Ordering::Relaxed) >= limit {
                return;
            }
        }
        if let Some(rate) = sh.config.rate {
            let slot = {
                let mut next = sh.next_slot.lock().unwrap_or_else(|p| p.into_inner());
                let slot = (*next).max(Instant::now());
                *next = slot + Duration::from_secs_f64(1.0 / rate);
                slot
            };
            tokio::select! {
                _ = tokio::time::sleep_until(slot.into()) => {}
                _ = until(&mut stop_rx) => return,
            }
            if !sh.generating.load(Ordering::Relaxed) {
                return;
            }
        }
        let next = gen.next(&sh.seen);
        let (kind, refused) = invoke_one(sh, process, node, conn, &next, false, stop).await;
        if refused {
            // The node is down (killed, say): failing again at once would fill the
            // history with thousands of identical fails a second. Back off a little.
            tokio::select! {
                _ = tokio::time::sleep(REFUSED_BACKOFF) => {}
                _ = until(&mut stop_rx) => return,
            }
        }
        if kind == OpType::Info {
            // Jepsen: a process whose op is indeterminate never invokes again.
            process += c;
            sh.max_process.fetch_max(process, Ordering::Relaxed);
        }
    }
}

/// Records the invocation, runs the call, records exactly one completion.
async fn invoke_one(
    sh: &Shared,
    process: i64,
    node: &str,
    conn: &Arc<dyn Client>,
    next: &Next,
    is_final: bool,
    stop: &Stop,
) -> (OpType, bool) {
    let mut op = Op::new(
        Process::Client(process),
        OpType::Invoke,
        next.call.f(),
        next.call.value(),
    );
    op.key = next.key.map(|k| Key::Int(k as i64));
    op.node = Some(node.into());
    op.is_final = is_final;
    op.set_time(Some(sh.start.elapsed().as_nanos() as i64));
    sh.progress.count(OpType::Invoke);
    sh.rec.record(op.clone());

    let mut abort = stop.abort.subscribe();
    let outcome = tokio::select! {
        biased;
        _ = until(&mut abort) => Outcome::Info("interrupted: the run was aborted".into()),
        r = tokio::time::timeout(sh.config.op_timeout, conn.invoke(&next.call)) => match r {
            Ok(o) => o,
            Err(_) => Outcome::Info(format!(
                "timeout: no answer within {:?}", sh.config.op_timeout
            )),
        },
    }
    .for_call(&next.call);

    op.set_time(Some(sh.start.elapsed().as_nanos() as i64));
    let mut refused = false;
    match outcome {
        Outcome::Ok { value, version } => {
            op.kind = OpType::Ok;
            op.set_version(version);
            if next.call.is_read() {
                op.value = value.clone().into();
            }
            sh.seen.saw(next, &value);
        }
        Outcome::Fail(e) => {
            op.kind = OpType::Fail;
            op.error = Some(Box::new(Value::from(e)));
        }
        Outcome::Refused(e) => {
            op.kind = OpType::Fail;
            refused = true;
            op.error = Some(Box::new(Value::from(format!(
                "{}{e}",
                crate::call::REFUSED
            ))));
        }
        Outcome::Info(e) => {
            op.kind = OpType::Info;
            op.error = Some(Box::new(Value::from(e)));
        }
    }
    let kind = op.kind;
    sh.progress.count(kind);
    sh.rec.record(op);
    (kind, refused)
}

/// Waits for quiet, then reads every key used on every node (`"final": true`), one
/// fresh process per node. `conns`: one per distinct node.
async fn final_reads(
    sh: &Shared,
    conns: &[(String, Arc<dyn Client>)],
    quiet: Duration,
    stop: &Stop,
) {
    let mut abort = stop.abort.subscribe();
    tokio::select! {
        _ = tokio::time::sleep(quiet) => {}
        _ = until(&mut abort) => return,
    }
    let used = sh.used.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let reads = sh.gen.final_reads(used);
    let mut tasks = Vec::new();
    for (node, conn) in conns {
        let process = sh.max_process.fetch_add(1, Ordering::Relaxed) + 1;
        let reads = reads.clone();
        tasks.push(async move {
            let mut p = process;
            for next in &reads {
                if invoke_one(sh, p, node, conn, next, true, stop).await.0 == OpType::Info {
                    p = sh.max_process.fetch_add(1, Ordering::Relaxed) + 1;
                }
            }
        });
    }
    futures_util::future::join_all(tasks).await;
}

/// Waits until a stop flag is set. (`wait_for` alone hands back a read guard, which
/// would make `run`'s future not `Send` wherever an arm awaits.)
async fn until(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|set| *set).await;
}
