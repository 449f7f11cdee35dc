//! From a history to what the search needs: per key, the calls with their intervals,
//! compiled by the model, with indeterminate ops pruned where that is sound.
//!
//! Positions: the op at history index `i` sits at position `(i + 1) << 32`. A
//! *virtual* return placed just before another return sits one below it; chains of
//! such inferences (a cas observed, whose own expected value was written by an
//! indeterminate op, ...) step down one each, and never reach the previous real
//! event, which is 2^32 below.
//!
//! # Pruning indeterminate ops (register-like models only)
//!
//! An `info` op may take effect at any time after its invocation, or never. Left as
//! is, every one of them stays concurrent with the rest of the history, and the
//! search space doubles with each (this is where Porcupine and Knossos time out).
//! Two facts about registers, whose state is the last value written, cut that down:
//!
//! 1. An indeterminate op whose written value nobody observes (no read returns it,
//!    no cas expects it) can be dropped: in any linearization that includes it, the
//!    next op to touch the register overwrites it, so removing it changes nothing.
//! 2. If exactly one op writes value `v` (and `v` is not the initial value), every
//!    `ok` op that observes `v` proves that the writer took effect before the
//!    observer returned. The writer becomes required, and its return is moved to
//!    just before the observer's return.
//!
//! ```text
//!   p0 |--write 7-- ? (info)              becomes   p0 |--write 7--|
//!   p1        |--read 7--|                          p1        |--read 7--|
//! ```
//!
//! Both steps repeat until nothing changes (a cas that became required observes a
//! value in turn). Failed ops are dropped before all this: they did not happen.

use crate::model::{Model, Values};
use crate::CheckError;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use splitbrain_history::{History, Key, OpType, Pair, Process};

/// One call of the search: an op with its interval.
#[derive(Debug, Clone)]
pub(crate) struct Call<O> {
    pub op: O,
    /// Index into `History::pairs()`.
    pub pair: usize,
    pub process: i64,
    pub call: u64,
    /// `None`: may take effect at any time after `call`, or never.
    pub ret: Option<u64>,
    /// Must be linearized: it completed `ok`, or pruning proved it took effect.
    pub required: bool,
}

/// The calls on one key, before pruning.
#[derive(Debug)]
pub(crate) struct Partition<M: Model> {
    pub key: Option<Key>,
    pub calls: Vec<Call<M::Op>>,
    pub init: M::State,
    pub values: Values,
    /// Whether any call that completed `ok` carries the store's version: when none
    /// does, the versions cannot decide and need not be looked up op by op.
    pub versioned: bool,
}

/// One key's partition, or the key and the first error compiling it.
type KeyResult<M> = Result<Partition<M>, (Option<Key>, CheckError)>;

/// The distance between two real events.
const REAL: u64 = 1 << 32;
/// The longest chain of inferences pruning follows.
const MAX_CHAIN: u64 = 64;

pub(crate) fn pos(index: usize) -> u64 {
    (index as u64 + 1) * REAL
}

/// Splits a history by key and compiles every op that did not fail.
///
/// The history is read in file order, never key by key: on a large history the
/// ops of one key are spread over the whole op list, and jumping between them
/// costs a cache miss per op, more than compiling it. Each thread reads every
/// pair in order and compiles the keys that hash to it, so the work is still
/// spread over the cores. Partitions come out sorted by key; an error is the one
/// the first bad key (in key order) meets first, as if keys were compiled one by one.
pub(crate) fn partitions<M: Model>(
    model: &M,
    history: &History,
    init: &serde_json::Value,
) -> Result<Vec<Partition<M>>, CheckError> {
    let threads = if history.pairs().len() >= 1 << 14 {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let shares: Vec<Vec<KeyResult<M>>> = (0..threads)
        .into_par_iter()
        .map(|t| compile_share(model, history, init, t, threads))
        .collect();
    let mut all: Vec<KeyResult<M>> = shares.into_iter().flatten().collect();
    let key_of = |r: &KeyResult<M>| match r {
        Ok(p) => p.key.clone(),
        Err((k, _)) => k.clone(),
    };
    all.sort_by_cached_key(key_of);
    all.into_iter().map(|r| r.map_err(|(_, e)| e)).collect()
}

/// The key a pair acts on: its invocation's, else its completion's.
fn pair_key<'h>(history: &'h History, pair: &Pair) -> Option<&'h Key> {
    let ops = history.ops();
    ops[pair.invoke]
        .key
        .as_ref()
        .or_else(|| pair.completion.and_then(|c| ops[c].key.as_ref()))
}

/// Which of `threads` shares a key belongs to.
fn share_of(key: Option<&Key>, threads: usize) -> usize {
    use std::hash::{Hash, Hasher};
    if threads == 1 {
        return 0;
    }
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    (h.finish() % threads as u64) as usize
}

/// Compiles, in file order, every pair whose key falls in share `t` of `threads`.
fn compile_share<M: Model>(
    model: &M,
    history: &History,
    init: &serde_json::Value,
    t: usize,
    threads: usize,
) -> Vec<KeyResult<M>> {
    /// A key another thread compiles.
    const OTHERS: usize = usize::MAX;
    let ops = history.ops();
    let mut index: HashMap<Option<&Key>, usize> = HashMap::default();
    let mut parts: Vec<KeyResult<M>> = Vec::new();
    for (i, pair) in history.pairs().iter().enumerate() {
        let key = pair_key(history, pair);
        let slot = match index.get(&key) {
            Some(&OTHERS) => continue,
            Some(&slot) => slot,
            None => {
                if share_of(key, threads) != t {
                    index.insert(key, OTHERS);
                    continue;
                }
                let mut values = Values::new();
                let part = model
                    .init(init, &mut values)
                    .map(|init_state| Partition {
                        key: key.cloned(),
                        calls: Vec::new(),
                        init: init_state,
                        values,
                        versioned: false,
                    })
                    .map_err(|problem| {
                        (
                            key.cloned(),
                            CheckError::Init {
                                model: model.name(),
                                problem,
                            },
                        )
                    });
                index.insert(key, parts.len());
                parts.push(part);
                parts.len() - 1
            }
        };
        let Ok(part) = &mut parts[slot] else {
            // This key already failed: its first error is the one reported.
            continue;
        };
        let inv = &ops[pair.invoke];
        let done = pair.completion.map(|c| &ops[c]);
        let (output, ret, required) = match done {
            Some(c) if c.kind == OpType::Fail => continue,
            Some(c) if c.kind == OpType::Ok => (Some(&c.value), pair.completion.map(pos), true),
            _ => (None, None, false),
        };
        // Blame the line that holds the value the model looked at.
        let line = match (output, pair.completion) {
            (Some(_), Some(c)) => c,
            _ => pair.invoke,
        };
        match model.compile_op(&inv.f, &inv.value, output, &mut part.values) {
            Ok(Some(op)) => {
                part.versioned |= required && done.is_some_and(|c| c.version().is_some());
                part.calls.push(Call {
                    op,
                    pair: i,
                    process: match inv.process {
                        Process::Client(p) => p,
                        Process::Nemesis => -1,
                    },
                    call: pos(pair.invoke),
                    ret,
                    required,
                })
            }
            Ok(None) => {}
            Err(problem) => {
                parts[slot] = Err((
                    key.cloned(),
                    CheckError::Op {
                        file: history.source().to_string(),
                        line: history.line(line),
                        problem,
                    },
                ));
            }
        }
    }
    for p in parts.iter_mut().flatten() {
        p.calls.shrink_to_fit();
    }
    parts
}

/// Applies the two pruning rules (module docs) until nothing changes. Returns the
/// calls the search should consider, sorted by invocation.
pub(crate) fn prune<M: Model>(
    model: &M,
    calls: &[Call<M::Op>],
    init: &M::State,
    values: &Values,
) -> Vec<Call<M::Op>> {
    let mut calls: Vec<Call<M::Op>> = calls.to_vec();
    if !calls.iter().any(|c| model.writes(&c.op).is_some()) {
        return calls;
    }
    // Reads of the initial value need no writer.
    let init_id = values.lookup(&model.describe_state(init, values));
    let mut dropped = vec![false; calls.len()];
    // Value ids are dense, so plain vectors index by value.
    let n_values = values.len();
    const NONE: u32 = u32::MAX;
    let mut writer = vec![NONE; n_values];
    let mut writer_count = vec![0u32; n_values];
    let mut observers = vec![0u32; n_values];
    loop {
        let mut changed = false;
        writer_count.fill(0);
        observers.fill(0);
        for (i, c) in calls.iter().enumerate() {
            if dropped[i] {
                continue;
            }
            if let Some(v) = model.writes(&c.op) {
                writer[v as usize] = i as u32;
                writer_count[v as usize] += 1;
            }
            if let Some(v) = model.observes(&c.op) {
                observers[v as usize] += 1;
            }
        }
        // Rule 1: unobserved indeterminate writes did not matter.
        for i in 0..calls.len() {
            if dropped[i] || calls[i].required {
                continue;
            }
            if let Some(v) = model.writes(&calls[i].op) {
                let own = u32::from(model.observes(&calls[i].op) == Some(v));
                if observers[v as usize] == own {
                    dropped[i] = true;
                    changed = true;
                }
            }
        }
        // Rule 2: the only writer of an observed value took effect before the
        // observer returned.
        for r in 0..calls.len() {
            if dropped[r] || !calls[r].required {
                continue;
            }
            let (Some(v), Some(r_ret)) = (model.observes(&calls[r].op), calls[r].ret) else {
                continue;
            };
            if Some(v) == init_id {
                continue;
            }
            if writer_count[v as usize] != 1 {
                continue;
            }
            let w = writer[v as usize] as usize;
            if w == r {
                continue;
            }
            let bound = r_ret - 1;
            // How many inferences this bound sits behind the real return it comes
            // from. A cycle (cas a→b the only writer of b, cas b→a the only writer
            // of a) would step down forever; it can never be linearized, and not
            // tightening is always sound, so chains stop at MAX_CHAIN.
            if bound.next_multiple_of(REAL) - bound > MAX_CHAIN {
                continue;
            }
            let wc = &mut calls[w];
            if bound <= wc.call {
                // The writer began after the observer returned: no ordering can
                // help, and the search will say so.
                continue;
            }
            if !wc.required || wc.ret.is_none_or(|ret| ret > bound) {
                wc.required = true;
                wc.ret = Some(bound);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    calls
        .into_iter()
        .zip(dropped)
        .filter(|(_, d)| !d)
        .map(|(c, _)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Register, RegisterOp};
    use crate::tests::h as history;
    use serde_json::{json, Value};

    /// The one key's calls after pruning.
    fn pruned(m: &Register, h: &History) -> Vec<Call<RegisterOp>> {
        let p = &partitions(m, h, &Value::Null).unwrap()[0];
        prune(m, &p.calls, &p.init, &p.values)
    }

    #[test]
    fn unobserved_info_write_is_dropped_and_observed_one_becomes_required() {
        use OpType::*;
        let h = history(&[
            (0, Invoke, "write", json!(1)),
            (1, Invoke, "write", json!(2)),
            (0, Info, "write", json!(1)),
            (1, Info, "write", json!(2)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(2)),
        ]);
        let m = Register { cas: false };
        assert_eq!(partitions(&m, &h, &Value::Null).unwrap().len(), 1);
        let pruned = pruned(&m, &h);
        // write 1 dropped; write 2 required, returning just before the read returns.
        assert_eq!(pruned.len(), 2);
        assert!(pruned[0].required);
        assert_eq!(pruned[0].ret, Some(pos(5) - 1));
    }

    #[test]
    fn failed_ops_and_indeterminate_reads_are_gone() {
        use OpType::*;
        let h = history(&[
            (0, Invoke, "write", json!(1)),
            (0, Fail, "write", json!(1)),
            (1, Invoke, "read", Value::Null),
            (1, Info, "read", Value::Null),
            (2, Invoke, "read", Value::Null),
        ]);
        let parts = partitions(&Register { cas: false }, &h, &Value::Null).unwrap();
        assert!(parts[0].calls.is_empty());
    }

    #[test]
    fn repeated_values_are_not_assumed_unique() {
        use OpType::*;
        let h = history(&[
            (0, Invoke, "write", json!(1)),
            (1, Invoke, "write", json!(1)),
            (0, Info, "write", json!(1)),
            (1, Info, "write", json!(1)),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(1)),
        ]);
        let pruned = pruned(&Register { cas: false }, &h);
        assert_eq!(pruned.len(), 3);
        assert!(!pruned[0].required && !pruned[1].required);
    }

    #[test]
    fn a_cycle_of_cas_inferences_ends() {
        use OpType::*;
        // cas 2→1 is the only writer of 1, cas 1→2 the only writer of 2: each
        // proves the other came first. Pruning must stop, and the verdict is invalid.
        let h = history(&[
            (0, Invoke, "cas", json!([2, 1])),
            (1, Invoke, "cas", json!([1, 2])),
            (2, Invoke, "read", Value::Null),
            (2, Ok, "read", json!(1)),
        ]);
        let pruned = pruned(&Register { cas: true }, &h);
        assert!(pruned
            .iter()
            .all(|c| c.ret.is_some_and(|r| pos(3) - r <= MAX_CHAIN)));
        let opts = crate::Options {
            model: crate::ModelKind::CasRegister,
            ..Default::default()
        };
        assert_eq!(
            crate::check(&h, &opts).unwrap().verdict,
            crate::Verdict::Invalid
        );
    }
}
