//! Cross-checks the causal checker (Bouajjani et al.'s bad patterns) against the
//! definition of causal memory (Ahamad et al. 1995), by brute force.
//!
//! The oracle shares nothing with the checker but the history type. For every
//! choice of which indeterminate writes happened (`fail` ones did not), it builds
//! the causal order `(po ∪ wr)+` from the unique written values, and for each
//! process searches every order of all writes and that process's own ops that
//! respects the causal order, running a memory along it: every read must return
//! the last value written to its key (null before any). The history is causal
//! memory iff, for some choice, the causal order is acyclic, every read reads a
//! write that happened (or null), and every process has such an order. A cas is a
//! read of its expected value followed by a write of its new value.
//!
//! ```text
//!   p0 |-write x 1-|                    p2's view: write x 1, read x 1?  no:
//!   p1 |-read x 1-| |-write y 2-|       x=1 is causally before read y 2, so
//!   p2 |-read y 2-| |-read x null-|     it comes before read x null: no order works
//! ```
//!
//! Exponential, and fine for the ≤ 7-op histories of 2 or 3 processes and 2 keys
//! generated here. Random reads (of null, of any value written to their key, of a
//! value nobody wrote) make both verdicts common. `PROPTEST_CASES=100000` hunts
//! longer.

use proptest::prelude::*;
use serde_json::{json, Value};
use splitbrain_checker::{check, Consistency, ModelKind, Options, Verdict};
use splitbrain_history::{jsonl, History};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Read,
    Write,
    Cas,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Info,
    Fail,
}

/// One generated op: who, what, on which key, with which values.
#[derive(Debug, Clone)]
struct GenOp {
    process: i64,
    kind: Kind,
    key: u8,
    /// Read: the value read; cas: the expected value. `None` is null.
    read: Option<u32>,
    /// Write and cas: the value written (unique in the history).
    write: u32,
    outcome: Outcome,
}

fn history_text(ops: &[GenOp]) -> String {
    let key = |k: u8| if k == 0 { "x" } else { "y" };
    let val = |v: Option<u32>| v.map_or(Value::Null, |v| json!(v));
    let mut out = String::new();
    for o in ops {
        let (f, inv, done) = match o.kind {
            Kind::Read => ("read", Value::Null, val(o.read)),
            Kind::Write => ("write", json!(o.write), json!(o.write)),
            Kind::Cas => (
                "cas",
                json!([val(o.read), o.write]),
                json!([val(o.read), o.write]),
            ),
        };
        let kind = match o.outcome {
            Outcome::Ok => "ok",
            Outcome::Info => "info",
            Outcome::Fail => "fail",
        };
        let done = if o.outcome == Outcome::Ok {
            done
        } else {
            inv.clone()
        };
        out.push_str(&format!(
            "{}\n{}\n",
            json!({"process": o.process, "type": "invoke", "f": f, "key": key(o.key), "value": inv}),
            json!({"process": o.process, "type": kind, "f": f, "key": key(o.key), "value": done})
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// The oracle.

/// A read or a write that happened.
#[derive(Debug, Clone, Copy)]
struct Ev {
    process: i64,
    key: u8,
    write: bool,
    value: Option<u32>,
}

fn oracle(ops: &[GenOp]) -> bool {
    let maybe: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome == Outcome::Info && ops[i].kind != Kind::Read)
        .collect();
    (0u32..1 << maybe.len()).any(|mask| {
        let happened = |i: usize| match ops[i].outcome {
            Outcome::Ok => true,
            Outcome::Fail => false,
            Outcome::Info => match maybe.iter().position(|&m| m == i) {
                Some(b) => mask & (1 << b) != 0,
                None => false,
            },
        };
        let mut evs = Vec::new();
        for (_, o) in ops.iter().enumerate().filter(|&(i, _)| happened(i)) {
            if o.kind != Kind::Write {
                evs.push(Ev {
                    process: o.process,
                    key: o.key,
                    write: false,
                    value: o.read,
                });
            }
            if o.kind != Kind::Read {
                evs.push(Ev {
                    process: o.process,
                    key: o.key,
                    write: true,
                    value: Some(o.write),
                });
            }
        }
        causal_memory(&evs)
    })
}

/// Whether these events, in history order, are causal memory.
#[allow(clippy::needless_range_loop)] // Floyd–Warshall reads best with indices
fn causal_memory(evs: &[Ev]) -> bool {
    let n = evs.len();
    // co = (po ∪ wr)+, by Floyd–Warshall.
    let mut co = vec![vec![false; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            if evs[i].process == evs[j].process {
                co[i][j] = true;
            }
        }
        if !evs[i].write && evs[i].value.is_some() {
            let Some(w) = (0..n).find(|&w| {
                evs[w].write && evs[w].key == evs[i].key && evs[w].value == evs[i].value
            }) else {
                return false; // read of a value no write that happened wrote
            };
            co[w][i] = true;
        }
    }
    for k in 0..n {
        for i in 0..n {
            if co[i][k] {
                for j in 0..n {
                    if co[k][j] {
                        co[i][j] = true;
                    }
                }
            }
        }
    }
    if (0..n).any(|i| co[i][i]) {
        return false;
    }
    let mut processes: Vec<i64> = evs.iter().map(|e| e.process).collect();
    processes.sort_unstable();
    processes.dedup();
    processes.into_iter().all(|p| {
        let view: Vec<usize> = (0..n)
            .filter(|&i| evs[i].write || evs[i].process == p)
            .collect();
        serializes(evs, &co, &view, &mut vec![false; n], [None, None])
    })
}

/// Depth first: place, one at a time, an op of `view` whose causal predecessors
/// in `view` are placed, with the memory `mem` (per key) so far.
fn serializes(
    evs: &[Ev],
    co: &[Vec<bool>],
    view: &[usize],
    placed: &mut Vec<bool>,
    mem: [Option<u32>; 2],
) -> bool {
    let Some(_) = view.iter().find(|&&i| !placed[i]) else {
        return true;
    };
    for &i in view {
        if placed[i] || view.iter().any(|&j| !placed[j] && co[j][i]) {
            continue;
        }
        let e = evs[i];
        let k = usize::from(e.key);
        let mut next = mem;
        if e.write {
            next[k] = e.value;
        } else if mem[k] != e.value {
            continue;
        }
        placed[i] = true;
        let ok = serializes(evs, co, view, placed, next);
        placed[i] = false;
        if ok {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Generation.

fn gen_ops() -> impl Strategy<Value = Vec<GenOp>> {
    (
        2i64..=3,
        prop::collection::vec((0i64..3, 0u8..10, 0u8..2, any::<u8>(), 0u8..10), 1..=7),
    )
        .prop_map(|(procs, raw)| {
            // Written values: unique, the op's position + 1.
            let writes: Vec<(u8, u32)> = raw
                .iter()
                .enumerate()
                .filter(|(_, r)| r.1 >= 5)
                .map(|(i, r)| (r.2, i as u32 + 1))
                .collect();
            let mut fresh = 100;
            raw.iter()
                .enumerate()
                .map(|(i, &(p, kind, key, pick, outcome))| {
                    let kind = match kind {
                        0..=4 => Kind::Read,
                        5..=8 => Kind::Write,
                        _ => Kind::Cas,
                    };
                    // Null, a value written to this key, or (rarely) one nobody wrote.
                    let mut choices: Vec<Option<u32>> = vec![None];
                    choices.extend(writes.iter().filter(|w| w.0 == key).map(|w| Some(w.1)));
                    let read = if pick == 255 {
                        Some(99)
                    } else {
                        choices[usize::from(pick) % choices.len()]
                    };
                    let outcome = match (kind, outcome) {
                        (_, 0) => Outcome::Fail,
                        (Kind::Read, _) => Outcome::Ok,
                        (_, 1) => Outcome::Info,
                        _ => Outcome::Ok,
                    };
                    // An op that ended info is its process's last: give it its own.
                    let process = if outcome == Outcome::Info {
                        fresh += 1;
                        fresh
                    } else {
                        p % procs
                    };
                    GenOp {
                        process,
                        kind,
                        key,
                        read,
                        write: i as u32 + 1,
                        outcome,
                    }
                })
                .collect()
        })
}

fn run(h: &History, model: ModelKind, consistency: Consistency) -> Verdict {
    let opts = Options {
        model,
        consistency,
        ..Options::default()
    };
    match check(h, &opts) {
        Ok(r) => r.verdict,
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The bad patterns find a violation exactly when no process's view can be
    /// serialized; and causal is implied by sequential.
    #[test]
    fn causal_checker_agrees_with_the_definition(ops in gen_ops()) {
        let text = history_text(&ops);
        let h = jsonl::parse("gen.jsonl", &text).expect("generated histories parse");
        let want = oracle(&ops);
        let model = if ops.iter().any(|o| o.kind == Kind::Cas) {
            ModelKind::CasRegister
        } else {
            ModelKind::Register
        };
        let got = run(&h, model, Consistency::Causal);
        prop_assert_eq!(
            got,
            if want { Verdict::Valid } else { Verdict::Invalid },
            "oracle says causal={}, on:\n{}", want, text
        );
        if run(&h, model, Consistency::Sequential) == Verdict::Valid {
            prop_assert!(want, "sequential but not causal:\n{}", text);
        }
    }
}

/// The examples in the module docs and the golden histories' shapes, by name.
#[test]
fn oracle_knows_the_classic_shapes() {
    let w = |process, key, v| GenOp {
        process,
        kind: Kind::Write,
        key,
        read: None,
        write: v,
        outcome: Outcome::Ok,
    };
    let r = |process, key, v: Option<u32>| GenOp {
        process,
        kind: Kind::Read,
        key,
        read: v,
        write: 0,
        outcome: Outcome::Ok,
    };
    // IRIW: causal.
    let iriw = [
        w(0, 0, 1),
        w(1, 1, 2),
        r(2, 0, Some(1)),
        r(2, 1, None),
        r(3, 1, Some(2)),
        r(3, 0, None),
    ];
    assert!(oracle(&iriw));
    // WriteCOInitRead: not causal.
    let bad = [
        w(0, 0, 1),
        r(1, 0, Some(1)),
        w(1, 1, 2),
        r(2, 1, Some(2)),
        r(2, 0, None),
    ];
    assert!(!oracle(&bad));
    for (ops, want) in [(&iriw[..], Verdict::Valid), (&bad[..], Verdict::Invalid)] {
        let h = jsonl::parse("t.jsonl", &history_text(ops)).expect("parses");
        assert_eq!(run(&h, ModelKind::Register, Consistency::Causal), want);
    }
}

/// Values written twice, and models other than registers, are refused with a
/// typed error, not judged.
#[test]
fn causal_refuses_what_it_cannot_decide() {
    let twice = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                 {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
                 {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                 {\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
                 {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                 {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n\
                 {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                 {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n";
    let h = jsonl::parse("twice.jsonl", twice).expect("parses");
    let opts = Options {
        model: ModelKind::Register,
        consistency: Consistency::Causal,
        ..Options::default()
    };
    let e = check(&h, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "twice.jsonl:3: causal consistency is decided for histories whose written values \
         are unique per key, but 1 is written again (first at line 1)"
    );
    // `all` still reports every other level (reading 1, then null, rules out
    // the stronger ones), and says why causal was not checked.
    let all = check(
        &h,
        &Options {
            consistency: Consistency::All,
            ..opts.clone()
        },
    )
    .expect("all checks the other levels");
    let causal = all
        .levels
        .iter()
        .find(|l| l.consistency == "causal")
        .expect("causal is listed");
    assert_eq!(causal.verdict, None);
    assert!(causal.note.as_deref().unwrap_or("").contains("not checked"));
    let e = check(
        &h,
        &Options {
            model: ModelKind::Set,
            ..opts
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be checked for causal consistency"),
        "{e}"
    );
}
