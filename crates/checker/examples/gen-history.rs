//! Generates a realistic register history by simulation, as JSON Lines on stdout.
//!
//! Workers issue ops back to back; each op takes effect at a random instant inside
//! its interval, on a real register per key, so the history is linearizable unless
//! `--stale-read` plants a read of an overwritten value. A fraction of ops (`--info`)
//! time out: they may or may not have taken effect, and their worker continues under
//! a new process id, as in Jepsen. Written values are unique per key.
//!
//! ```text
//! cargo run --release -p splitbrain-checker --example gen-history -- \
//!     --ops 100000 --processes 32 --keys 100 --model cas-register > h.jsonl
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use splitbrain_history::{jsonl, Key, Op, OpType, Process};
use std::io::{BufWriter, Write};

struct Args {
    ops: usize,
    processes: usize,
    keys: usize,
    info: f64,
    cas: bool,
    stale_read: bool,
    /// Reads may return any of the last `lag` values of their key, never older than
    /// what their process saw or wrote before: sequentially consistent, and (with
    /// lag > 0) not linearizable, like a follower read.
    lag: usize,
    /// After the run, read every key on this many nodes, marked `"final": true`.
    final_reads: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ops: 5000,
        processes: 8,
        keys: 1,
        info: 0.01,
        cas: false,
        stale_read: false,
        lag: 0,
        final_reads: 0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ops" => a.ops = val()?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--processes" => a.processes = val()?.parse().map_err(|e| format!("--processes: {e}"))?,
            "--keys" => a.keys = val()?.parse().map_err(|e| format!("--keys: {e}"))?,
            "--info" => a.info = val()?.parse().map_err(|e| format!("--info: {e}"))?,
            "--seed" => a.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--model" => a.cas = val()? == "cas-register",
            "--stale-read" => a.stale_read = true,
            "--lag" => a.lag = val()?.parse().map_err(|e| format!("--lag: {e}"))?,
            "--final-reads" => {
                a.final_reads = val()?.parse().map_err(|e| format!("--final-reads: {e}"))?
            }
            "--help" | "-h" => {
                return Err("usage: gen-history [--ops N] [--processes P] [--keys K] [--info FRACTION] [--model register|cas-register] [--stale-read] [--lag K] [--final-reads NODES] [--seed S]".into())
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.processes == 0 || a.keys == 0 {
        return Err("--processes and --keys must be at least 1".into());
    }
    Ok(a)
}

#[derive(Clone, Copy, PartialEq)]
enum F {
    Read,
    Write,
    Cas,
}

struct Sim {
    process: i64,
    key: usize,
    f: F,
    start: u64,
    end: u64,
    at: u64,
    /// For writes, the value; for cas, the new value.
    value: i64,
    expected: i64,
    info: bool,
    /// Whether an indeterminate op took effect.
    applied: bool,
    result: Option<i64>,
    ok: bool,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let per_worker = args.ops.div_ceil(args.processes);
    let mut sims: Vec<Sim> = Vec::with_capacity(args.ops);
    let mut next_value = vec![1i64; args.keys];
    for w in 0..args.processes {
        let mut t: u64 = rng.random_range(0..1000);
        let mut process = w as i64;
        for _ in 0..per_worker {
            if sims.len() >= args.ops {
                break;
            }
            let key = rng.random_range(0..args.keys);
            let r: f64 = rng.random();
            let f = if args.cas && r < 0.3 {
                F::Cas
            } else if r < 0.6 {
                F::Read
            } else {
                F::Write
            };
            let len = rng.random_range(200..20_000u64);
            let value = if f == F::Read {
                0
            } else {
                next_value[key] += 1;
                next_value[key]
            };
            let info = rng.random_bool(args.info);
            sims.push(Sim {
                process,
                key,
                f,
                start: t,
                end: t + len,
                at: rng.random_range(t + 1..t + len),
                value,
                expected: 0,
                info,
                applied: !info || rng.random_bool(0.5),
                result: None,
                ok: true,
            });
            t += len + rng.random_range(10..2_000u64);
            if info {
                process += args.processes as i64;
            }
        }
    }
    // Take effect in linearization order.
    let mut order: Vec<usize> = (0..sims.len()).collect();
    order.sort_by_key(|&i| sims[i].at);
    let mut state: Vec<i64> = vec![0; args.keys]; // 0 is null
    let mut seen: Vec<Vec<i64>> = vec![vec![0]; args.keys];
    // With --lag: one log of every applied write, all keys; per key, (position in
    // the log, value); and the log position each process has seen. A read returns
    // its key's value as of a position no older than its process's view: the
    // processes move through one sequence of states, each at its own pace.
    let mut log_len: usize = 0;
    let mut by_pos: Vec<Vec<(usize, i64)>> = vec![vec![(0, 0)]; args.keys];
    let mut view: std::collections::HashMap<i64, usize> = Default::default();
    for i in order {
        let s = &mut sims[i];
        let cur = state[s.key];
        match s.f {
            F::Read if args.lag > 0 => {
                let v = view.entry(s.process).or_insert(0);
                let from = (*v).max(log_len.saturating_sub(args.lag));
                let at = rng.random_range(from..=log_len);
                *v = at;
                let entries = &by_pos[s.key];
                let n = entries.partition_point(|&(p, _)| p <= at);
                s.result = Some(entries[n - 1].1);
            }
            F::Read => s.result = Some(cur),
            F::Write => {
                if s.applied {
                    state[s.key] = s.value;
                    seen[s.key].push(s.value);
                    log_len += 1;
                    by_pos[s.key].push((log_len, s.value));
                    view.insert(s.process, log_len);
                }
            }
            F::Cas => {
                let hist = &seen[s.key];
                s.expected = if rng.random_bool(0.5) {
                    cur
                } else {
                    hist[rng.random_range(0..hist.len())]
                };
                view.insert(s.process, log_len);
                if s.expected == cur && s.applied {
                    state[s.key] = s.value;
                    seen[s.key].push(s.value);
                    log_len += 1;
                    by_pos[s.key].push((log_len, s.value));
                    view.insert(s.process, log_len);
                } else if s.expected != cur {
                    s.ok = false;
                }
            }
        }
    }
    if args.stale_read {
        plant_stale_read(&mut sims);
    }
    // Events in real-time order.
    let mut events: Vec<(u64, usize, bool)> = Vec::with_capacity(sims.len() * 2);
    for (i, s) in sims.iter().enumerate() {
        events.push((s.start, i, false));
        events.push((s.end, i, true));
    }
    events.sort_unstable();
    let events_end = events.last().map_or(0, |e| e.0);
    let stdout = std::io::stdout();
    let mut w = jsonl::Writer::new(BufWriter::with_capacity(1 << 20, stdout.lock()));
    let val = |v: i64| if v == 0 { Value::Null } else { json!(v) };
    for (t, i, done) in events {
        let s = &sims[i];
        let (f, input) = match s.f {
            F::Read => ("read", Value::Null),
            F::Write => ("write", json!(s.value)),
            F::Cas => ("cas", json!([val(s.expected), s.value])),
        };
        let (kind, value) = match (done, s.f) {
            (false, _) => (OpType::Invoke, input),
            (true, _) if s.info => (OpType::Info, input),
            (true, F::Read) => (OpType::Ok, val(s.result.unwrap_or(0))),
            (true, F::Cas) if !s.ok => (OpType::Fail, input),
            (true, _) => (OpType::Ok, input),
        };
        let mut op = Op::new(Process::Client(s.process), kind, f, value);
        if args.keys > 1 {
            op.key = Some(Key::Int(s.key as i64));
        }
        op.set_time(Some(t as i64 * 1000));
        if w.write(&op).is_err() {
            std::process::exit(0); // stdout closed
        }
    }
    // Final reads: every node agrees on what the run left (info writes that took
    // effect included).
    let mut process = sims.iter().map(|s| s.process).max().unwrap_or(0) + 1;
    let mut t = events_end;
    for (key, &v) in state.iter().enumerate() {
        for node in 0..args.final_reads {
            for (kind, value) in [(OpType::Invoke, Value::Null), (OpType::Ok, val(v))] {
                let mut op = Op::new(Process::Client(process), kind, "read", value);
                if args.keys > 1 {
                    op.key = Some(Key::Int(key as i64));
                }
                op.node = Some(format!("n{}", node + 1).into());
                op.is_final = true;
                t += 1;
                op.set_time(Some(t as i64 * 1000));
                if w.write(&op).is_err() {
                    std::process::exit(0);
                }
            }
            process += 1;
        }
    }
    let _ = w.flush();
    let _ = std::io::stdout().flush();
}

/// Makes one read, late in the history, return a value that two later writes
/// (each finished before the next began) had definitely overwritten.
fn plant_stale_read(sims: &mut [Sim]) {
    let mut by_end: Vec<usize> = (0..sims.len())
        .filter(|&i| sims[i].f == F::Write && !sims[i].info && sims[i].key == 0)
        .collect();
    by_end.sort_by_key(|&i| sims[i].end);
    let mut candidates: Vec<usize> = (0..sims.len())
        .filter(|&i| sims[i].f == F::Read && !sims[i].info && sims[i].key == 0)
        .collect();
    candidates.sort_by_key(|&i| sims[i].start);
    let Some(&r) = candidates.get(candidates.len() * 3 / 4) else {
        return;
    };
    let r_start = sims[r].start;
    // w_new: a write that ended before r began; w_old: one that ended before w_new began.
    for &new in by_end.iter().rev() {
        if sims[new].end >= r_start {
            continue;
        }
        let new_start = sims[new].start;
        if let Some(&old) = by_end.iter().rev().find(|&&o| sims[o].end < new_start) {
            sims[r].result = Some(sims[old].value);
            eprintln!(
                "planted a stale read: process {} reads {} after write {} finished",
                sims[r].process, sims[old].value, sims[new].value
            );
            return;
        }
    }
}
