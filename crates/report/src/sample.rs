//! A generated history for tests and benchmarks of the report: a register under
//! 16 processes whose ops overlap, times in ns (0.2 ms apart, so 100,000 ops last
//! 20 s), a partition every other 10 s, and one stale read planted in the middle,
//! so it is not linearizable (initial value 0).

use serde_json::{json, Value};
use splitbrain_history::{History, Op, OpType, Process};

/// A register history of `n` ops over 16 processes with overlapping ops, times in
/// ns, faults every 10 s, and one stale read planted in the middle.
pub fn register_history(n: usize) -> History {
    let mut ops = Vec::with_capacity(2 * n + 20);
    let procs = 16;
    let mut last_written = 0i64;
    let mut t = 0i64;
    let mut open: Vec<Option<(String, Value)>> = vec![None; procs];
    let mut fault_on = false;
    for i in 0..n {
        let p = i % procs;
        t += 200_000; // 0.2 ms between events
        if t / 10_000_000_000 % 2 == 1 && !fault_on {
            fault_on = true;
            let mut o = Op::new(
                Process::Nemesis,
                OpType::Info,
                "start-partition",
                json!({"shape": "halves"}),
            );
            o.set_time(Some(t));
            ops.push(o);
        } else if t / 10_000_000_000 % 2 == 0 && fault_on {
            fault_on = false;
            let mut o = Op::new(
                Process::Nemesis,
                OpType::Info,
                "stop-partition",
                Value::Null,
            );
            o.set_time(Some(t));
            ops.push(o);
        }
        // Complete this process's previous op, then invoke the next: ops of
        // different processes overlap.
        if let Some((f, v)) = open[p].take() {
            let mut o = Op::new(Process::Client(p as i64), OpType::Ok, f, v);
            o.set_time(Some(t));
            ops.push(o);
        }
        let (f, inv, done) = if i % 3 == 0 {
            last_written = i as i64;
            ("write", json!(i), json!(i))
        } else if i == n / 6 * 3 + 1 {
            // A stale read: that write completed, and was overwritten by one that
            // completed too, before this read began.
            ("read", Value::Null, json!(last_written - 45))
        } else {
            ("read", Value::Null, json!(last_written))
        };
        let mut o = Op::new(Process::Client(p as i64), OpType::Invoke, f, inv);
        o.set_time(Some(t + 1));
        ops.push(o);
        // Reads return what was last written before they were invoked: complete
        // them at once, so no later write overlaps them.
        if f == "read" {
            let mut o = Op::new(Process::Client(p as i64), OpType::Ok, f, done);
            o.set_time(Some(t + 50_000));
            ops.push(o);
        } else {
            open[p] = Some((f.to_string(), done));
        }
    }
    for (p, o) in open.into_iter().enumerate() {
        if let Some((f, v)) = o {
            t += 1000;
            let mut o = Op::new(Process::Client(p as i64), OpType::Ok, f, v);
            o.set_time(Some(t));
            ops.push(o);
        }
    }
    History::new("generated.jsonl", ops, None).expect("a well-formed history")
}
