//! Eventual consistency, as convergence (Vogels 2009; Jepsen's set checker): once
//! faults are healed and writes have stopped, every node returns the same value,
//! and that value is one the clients could have caused.
//!
//! The history ends with *final reads*: `read` ops whose invocation or completion
//! carries `"final": true`, one per node (`"node": "n1"`).
//!
//! ```text
//!   p0 |--add 1--| |--add 2--|            final reads: n1 [1,2]  n2 [1,2]  n3 [1]
//!   p1 |--add 3-- ? (info)                → n3 disagrees; and on a set, add 2 is
//!                                           acknowledged yet missing on n3 (lost)
//! ```
//!
//! Per key (ops with keys are independent here: convergence is per object):
//!
//! - all final reads agree (sets compare as sets);
//! - nothing comes out of thin air: a register's agreed value was written by an op
//!   that did not `fail` (or is the initial value); a counter's total lies between
//!   what the `ok` adds give and what they give with any of the indeterminate ones;
//! - for sets, as Jepsen's set checker: every acknowledged add, and every initial
//!   member, is present (`lost` otherwise), nothing present was never attempted
//!   or failed (`unexpected`), and indeterminate adds that made it are
//!   `recovered` (fine, and reported).
//!
//! One pass over the history: linear in its length. It says nothing about reads
//! before the final ones: that is what the stronger levels are for.

use crate::model::{cas_pair, integer, ModelError, Values};
use crate::{CheckError, ModelKind};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::{History, Key, OpType, Process};
use std::collections::{BTreeMap, BTreeSet};

/// A final read as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FinalRead {
    pub node: String,
    pub value: Value,
    /// The line of its completion.
    pub line: usize,
}

/// What is wrong with one key's final state.
#[derive(Debug, Clone, Serialize)]
pub struct EventualViolation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The final reads, when they disagree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disagree: Vec<FinalRead>,
    /// A final value no op that did not fail could have produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritten: Option<Value>,
    /// Sets: acknowledged adds (or initial members) missing from some final read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<Value>,
    /// Sets: elements present that no add which did not fail put there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unexpected: Vec<Value>,
    /// Sets: indeterminate adds that are present (not a violation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<Value>,
}

/// Why a history did not converge: the first keys that did not (at most 10).
#[derive(Debug, Clone, Serialize)]
pub struct EventualCounterexample {
    pub final_reads: usize,
    pub violations: Vec<EventualViolation>,
}

pub(crate) enum EventualOutcome {
    Valid,
    /// No final reads: nothing to compare.
    NoFinalReads,
    Invalid(EventualCounterexample, Vec<Value>),
}

const SHOWN: usize = 10;

/// Per key: the final reads (node, value, line) and what the clients did.
#[derive(Default)]
struct KeyLog {
    finals: Vec<(String, Value, usize)>,
    /// Values written (register), elements added (set), by outcome.
    ok: Vec<Value>,
    maybe: Vec<Value>,
    failed: Vec<Value>,
    /// Counter: sum of ok adds, and of positive and negative indeterminate ones.
    sum_ok: i128,
    sum_pos: i128,
    sum_neg: i128,
}

/// The outcome, and how many keys the history has.
pub(crate) fn check(
    kind: ModelKind,
    history: &History,
    init: &Value,
) -> Result<(EventualOutcome, usize), CheckError> {
    if kind == ModelKind::Mutex {
        return Err(CheckError::Level {
            model: kind.name(),
            level: "eventual",
            reason: "a mutex has no reads to converge",
        });
    }
    crate::init_fits(kind, init)?;
    let ops = history.ops();
    let mut keys: BTreeMap<Option<Key>, KeyLog> = BTreeMap::new();
    let mut final_reads = 0;
    for pair in history.pairs() {
        let inv = &ops[pair.invoke];
        let done = pair.completion.map(|c| &ops[c]);
        let key = inv.key.clone().or_else(|| done.and_then(|d| d.key.clone()));
        let log = keys.entry(key).or_default();
        let kind_done = done.map(|d| d.kind);
        let is_final = inv.is_final || done.is_some_and(|d| d.is_final);
        let bad = |problem: ModelError| CheckError::Op {
            file: history.source().to_string(),
            line: history.line(pair.completion.unwrap_or(pair.invoke)),
            problem,
        };
        match &*inv.f {
            "read" | "get" => {
                if let (true, Some(d), Some(OpType::Ok)) = (is_final, done, kind_done) {
                    let node = d
                        .node
                        .as_deref()
                        .or(inv.node.as_deref())
                        .map(str::to_string)
                        .unwrap_or_else(|| match inv.process {
                            Process::Client(p) => format!("p{p}"),
                            Process::Nemesis => "nemesis".into(),
                        });
                    let line = history.line(pair.completion.unwrap_or(pair.invoke));
                    log.finals.push((node, d.value.json().into_owned(), line));
                    final_reads += 1;
                }
            }
            f => {
                let written = match (kind, f) {
                    (ModelKind::Register | ModelKind::CasRegister, "write" | "put") => {
                        inv.value.json().into_owned()
                    }
                    (ModelKind::CasRegister, "cas") => {
                        cas_pair(&inv.value.json()).map_err(bad)?.1.clone()
                    }
                    (ModelKind::Set, "add") => inv.value.json().into_owned(),
                    (ModelKind::Counter, "add" | "incr") => {
                        // 128 bits: sums of 64-bit adds cannot overflow.
                        let n =
                            i128::from(integer(&inv.value.json(), "an add's value").map_err(bad)?);
                        match kind_done {
                            Some(OpType::Ok) => log.sum_ok = log.sum_ok.saturating_add(n),
                            Some(OpType::Fail) => {}
                            _ if n > 0 => log.sum_pos = log.sum_pos.saturating_add(n),
                            _ => log.sum_neg = log.sum_neg.saturating_add(n),
                        }
                        continue;
                    }
                    (ModelKind::Append, "write" | "put" | "append") => continue,
                    _ => {
                        return Err(bad(ModelError::unknown_function(
                            kind.name(),
                            f,
                            known_functions(kind),
                        )))
                    }
                };
                match kind_done {
                    Some(OpType::Ok) => log.ok.push(written),
                    Some(OpType::Fail) => log.failed.push(written),
                    _ => log.maybe.push(written),
                }
            }
        }
    }
    // With no client op at all there is nothing to converge: it holds vacuously.
    if final_reads == 0 && !keys.is_empty() {
        return Ok((EventualOutcome::NoFinalReads, keys.len()));
    }
    let mut violations = Vec::new();
    let mut bad_keys = Vec::new();
    for (key, log) in &keys {
        if log.finals.is_empty() {
            continue;
        }
        if let Some(v) = judge(kind, log, init) {
            let v = EventualViolation {
                key: key.as_ref().map(Key::to_json),
                ..v
            };
            if let Some(k) = &v.key {
                bad_keys.push(k.clone());
            }
            if violations.len() < SHOWN {
                violations.push(v);
            }
        }
    }
    let outcome = if violations.is_empty() {
        EventualOutcome::Valid
    } else {
        EventualOutcome::Invalid(
            EventualCounterexample {
                final_reads,
                violations,
            },
            bad_keys,
        )
    };
    Ok((outcome, keys.len()))
}

/// What the eventual check accepts, by model (a mutex is refused before).
fn known_functions(kind: ModelKind) -> &'static [&'static str] {
    match kind {
        ModelKind::Register => &["read", "write"],
        ModelKind::CasRegister => &["read", "write", "cas"],
        ModelKind::Set | ModelKind::Counter => &["add", "read"],
        ModelKind::Append => &["read", "write", "append"],
        ModelKind::Mutex => &["acquire", "release"],
    }
}

/// A value in a canonical form for comparing final reads: sets as sorted,
/// deduplicated ids; an append register's null as "".
fn canonical(kind: ModelKind, v: &Value, values: &mut Values) -> Vec<u32> {
    match (kind, v) {
        (ModelKind::Set, Value::Array(xs)) => {
            let mut ids: Vec<u32> = xs.iter().map(|x| values.id(x)).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        (ModelKind::Set, Value::Null) => Vec::new(),
        (ModelKind::Append, Value::Null) => vec![values.id(&Value::from(""))],
        _ => vec![values.id(v)],
    }
}

fn judge(kind: ModelKind, log: &KeyLog, init: &Value) -> Option<EventualViolation> {
    let mut values = Values::new();
    let mut v = EventualViolation {
        key: None,
        disagree: Vec::new(),
        unwritten: None,
        lost: Vec::new(),
        unexpected: Vec::new(),
        recovered: Vec::new(),
    };
    let forms: Vec<Vec<u32>> = log
        .finals
        .iter()
        .map(|(_, val, _)| canonical(kind, val, &mut values))
        .collect();
    if forms.iter().any(|f| *f != forms[0]) {
        v.disagree = log
            .finals
            .iter()
            .map(|(node, value, line)| FinalRead {
                node: node.clone(),
                value: value.clone(),
                line: *line,
            })
            .collect();
    }
    match kind {
        ModelKind::Register | ModelKind::CasRegister => {
            let mut possible: BTreeSet<u32> = log
                .ok
                .iter()
                .chain(&log.maybe)
                .map(|x| values.id(x))
                .collect();
            possible.insert(values.id(init));
            // The first final value nobody wrote (they may disagree).
            if let Some((_, val, _)) = log
                .finals
                .iter()
                .find(|(_, val, _)| !possible.contains(&values.id(val)))
            {
                v.unwritten = Some(val.clone());
            }
        }
        ModelKind::Counter => {
            let base = i128::from(init.as_i64().unwrap_or(0)).saturating_add(log.sum_ok);
            let (lo, hi) = (
                base.saturating_add(log.sum_neg),
                base.saturating_add(log.sum_pos),
            );
            if let Some((_, val, _)) = log.finals.iter().find(|(_, val, _)| {
                !val.as_i64()
                    .map(i128::from)
                    .is_some_and(|n| lo <= n && n <= hi)
            }) {
                v.unwritten = Some(val.clone());
            }
        }
        ModelKind::Set => {
            // The initial members were there before any add: they must stay, as
            // acknowledged adds must.
            let init_set: BTreeSet<u32> = canonical(kind, init, &mut values).into_iter().collect();
            let ok: BTreeSet<u32> = log
                .ok
                .iter()
                .map(|x| values.id(x))
                .chain(init_set.iter().copied())
                .collect();
            let maybe: BTreeSet<u32> = log.maybe.iter().map(|x| values.id(x)).collect();
            let present_everywhere: BTreeSet<u32> = forms
                .iter()
                .map(|f| f.iter().copied().collect::<BTreeSet<u32>>())
                .reduce(|a, b| a.intersection(&b).copied().collect())
                .unwrap_or_default();
            let present_anywhere: BTreeSet<u32> = forms.iter().flatten().copied().collect();
            v.lost = ok
                .difference(&present_everywhere)
                .map(|&i| values.get(i).clone())
                .collect();
            v.unexpected = present_anywhere
                .iter()
                .filter(|i| !ok.contains(i) && !maybe.contains(i))
                .map(|&i| values.get(i).clone())
                .collect();
            v.recovered = maybe
                .iter()
                .filter(|i| !ok.contains(i) && present_anywhere.contains(i))
                .map(|&i| values.get(i).clone())
                .collect();
        }
        ModelKind::Append | ModelKind::Mutex => {}
    }
    let broken = !v.disagree.is_empty()
        || v.unwritten.is_some()
        || !v.lost.is_empty()
        || !v.unexpected.is_empty();
    broken.then_some(v)
}
