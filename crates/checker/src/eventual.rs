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
//! Each lost element is reported as Jepsen reports `:lost` and `:lost-count`, with
//! more: the process whose add was acknowledged, when (the `ok`'s `time`) and on
//! which line, the node it was sent to, and the nodes whose final reads miss it
//! ([`LostAdd`]). The count is over every key; the list keeps the first
//! [`MAX_LOST_LISTED`] by acknowledgement, so a store that lost a hundred
//! thousand adds still gives a small report.
//!
//! One pass over the history: linear in its length. It says nothing about reads
//! before the final ones: that is what the stronger levels are for.

use crate::model::{cas_pair, integer, ModelError, Values};
use crate::{CheckError, ModelKind};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::{History, Key, OpType, Pair, Process};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A final read as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FinalRead {
    pub node: String,
    pub value: Value,
    /// The line of its completion.
    pub line: usize,
}

/// What is wrong with one key's final state.
#[derive(Debug, Clone, Serialize, PartialEq)]
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

/// An acknowledged add (or initial member) missing from some final read: where
/// and when it was acknowledged, and which final reads miss it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LostAdd {
    pub element: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// An initial member, which no add put there: it has no process, time, line
    /// or node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub initial: bool,
    /// The process whose add was acknowledged (the first acknowledged, when the
    /// element was added more than once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<i64>,
    /// When: the `ok` completion's `time`, nanoseconds as the history records
    /// them (since the test began, for splitbrain's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// The line of the `ok` completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The node the add was sent to, when the history names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The nodes whose final reads of its key miss it.
    pub missing_from: Vec<String>,
}

/// The most lost elements a counterexample lists; `lost_count` counts them all.
pub const MAX_LOST_LISTED: usize = 1000;

/// Why a history did not converge: the first keys that did not (at most 10).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventualCounterexample {
    pub final_reads: usize,
    pub violations: Vec<EventualViolation>,
    /// Sets: every lost element, over all keys (not only those in `violations`).
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_count: usize,
    /// Sets: the first lost elements (at most [`MAX_LOST_LISTED`]), initial
    /// members first, then by the line of their acknowledgement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostAdd>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    /// The pair of each of `ok` (same length): where it was acknowledged.
    ok_pairs: Vec<usize>,
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
    for (pair_index, pair) in history.pairs().iter().enumerate() {
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
                    Some(OpType::Ok) => {
                        log.ok.push(written);
                        log.ok_pairs.push(pair_index);
                    }
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
    let mut lost = LostList::default();
    for (key, log) in &keys {
        if log.finals.is_empty() {
            continue;
        }
        if let Some((v, lost_here)) = judge(kind, log, init, history.pairs()) {
            let v = EventualViolation {
                key: key.as_ref().map(Key::to_json),
                ..v
            };
            for l in lost_here {
                lost.push(lost_add(history, v.key.as_ref(), l));
            }
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
        let (lost_count, lost) = lost.finish();
        EventualOutcome::Invalid(
            EventualCounterexample {
                final_reads,
                violations,
                lost_count,
                lost,
            },
            bad_keys,
        )
    };
    Ok((outcome, keys.len()))
}

/// A lost element as [`judge`] finds it: the pair that acknowledged it (none for
/// an initial member) and the nodes whose final reads miss it.
struct Lost {
    element: Value,
    pair: Option<usize>,
    missing_from: Vec<String>,
}

fn lost_add(history: &History, key: Option<&Value>, l: Lost) -> LostAdd {
    let ops = history.ops();
    let pair = l.pair.map(|p| history.pairs()[p]);
    let inv = pair.map(|p| &ops[p.invoke]);
    let done = pair.and_then(|p| p.completion);
    LostAdd {
        element: l.element,
        key: key.cloned(),
        initial: pair.is_none(),
        process: inv.and_then(|o| match o.process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }),
        time: done.and_then(|c| ops[c].time()),
        line: done.map(|c| history.line(c)),
        node: inv
            .and_then(|o| o.node.as_deref())
            .or(done.and_then(|c| ops[c].node.as_deref()))
            .map(str::to_string),
        missing_from: l.missing_from,
    }
}

/// The first [`MAX_LOST_LISTED`] lost elements in order of acknowledgement, and
/// how many there are in all; it never holds more than twice the list, however
/// many were lost.
#[derive(Default)]
struct LostList {
    count: usize,
    first: Vec<LostAdd>,
}

impl LostList {
    fn push(&mut self, l: LostAdd) {
        self.count += 1;
        self.first.push(l);
        if self.first.len() >= 2 * MAX_LOST_LISTED {
            self.cut();
        }
    }

    /// Keeps the first by acknowledgement; initial members (no line) first. The
    /// sort is stable, so ties keep key order.
    fn cut(&mut self) {
        self.first.sort_by_key(|l| l.line);
        self.first.truncate(MAX_LOST_LISTED);
    }

    fn finish(mut self) -> (usize, Vec<LostAdd>) {
        self.cut();
        (self.count, self.first)
    }
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

/// What is wrong with one key, and for a set the elements it lost. `pairs`: the
/// history's, which `log.ok_pairs` index.
fn judge(
    kind: ModelKind,
    log: &KeyLog,
    init: &Value,
    pairs: &[Pair],
) -> Option<(EventualViolation, Vec<Lost>)> {
    let mut lost = Vec::new();
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
            let lost_ids: Vec<u32> = ok.difference(&present_everywhere).copied().collect();
            // Each lost element's first acknowledgement (the earliest completion).
            let mut acked: HashMap<u32, usize> = HashMap::new();
            for (x, &p) in log.ok.iter().zip(&log.ok_pairs) {
                let id = values.id(x);
                if lost_ids.binary_search(&id).is_ok() {
                    let done = |p: usize| pairs[p].completion;
                    acked
                        .entry(id)
                        .and_modify(|q| {
                            if done(p) < done(*q) {
                                *q = p;
                            }
                        })
                        .or_insert(p);
                }
            }
            v.lost = lost_ids.iter().map(|&i| values.get(i).clone()).collect();
            lost = lost_ids
                .iter()
                .map(|&i| Lost {
                    element: values.get(i).clone(),
                    pair: acked.get(&i).copied(),
                    missing_from: log
                        .finals
                        .iter()
                        .zip(&forms)
                        .filter(|(_, form)| form.binary_search(&i).is_err())
                        .map(|((node, _, _), _)| node.clone())
                        .collect(),
                })
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
    broken.then_some((v, lost))
}

#[cfg(test)]
mod tests {
    use crate::{check, render_text, Consistency, EventualCounterexample, ModelKind, Options};
    use serde_json::{json, Value};
    use splitbrain_history::History;

    fn history(lines: &[String]) -> History {
        splitbrain_history::jsonl::parse("t.jsonl", &lines.join("\n")).unwrap()
    }

    fn eventual(h: &History, init: Value) -> (EventualCounterexample, String) {
        let opts = Options {
            model: ModelKind::Set,
            consistency: Consistency::Eventual,
            init,
            ..Options::default()
        };
        let r = check(h, &opts).unwrap();
        let text = render_text(&r);
        let c = r.counterexample.unwrap().eventual().unwrap().clone();
        (c, text)
    }

    fn op(p: i64, kind: &str, f: &str, value: Value, extra: &str) -> String {
        format!(r#"{{"process":{p},"type":"{kind}","f":"{f}","value":{value}{extra}}}"#)
    }

    #[test]
    fn each_lost_add_names_its_process_time_line_node_and_the_reads_that_miss_it() {
        let h = history(&[
            // line 1-2: add 1 via n1, kept.
            op(0, "invoke", "add", json!(1), r#","time":1000,"node":"n1""#),
            op(0, "ok", "add", json!(1), r#","time":2000,"node":"n1""#),
            // 3-4: add 2 via n1 at 12.345 s, lost on n2 only.
            op(
                3,
                "invoke",
                "add",
                json!(2),
                r#","time":12000000000,"node":"n1""#,
            ),
            op(
                3,
                "ok",
                "add",
                json!(2),
                r#","time":12345000000,"node":"n1""#,
            ),
            // 5-8: add 5 twice; the first acknowledgement (line 7) is named.
            op(
                1,
                "invoke",
                "add",
                json!(5),
                r#","time":13000000000,"node":"n2""#,
            ),
            op(
                2,
                "invoke",
                "add",
                json!(5),
                r#","time":13100000000,"node":"n3""#,
            ),
            op(
                2,
                "ok",
                "add",
                json!(5),
                r#","time":13200000000,"node":"n3""#,
            ),
            op(
                1,
                "ok",
                "add",
                json!(5),
                r#","time":13300000000,"node":"n2""#,
            ),
            // 9-10: no time, no node.
            op(4, "invoke", "add", json!(6), ""),
            op(4, "ok", "add", json!(6), ""),
            op(
                10,
                "invoke",
                "read",
                Value::Null,
                r#","final":true,"node":"n1""#,
            ),
            op(
                10,
                "ok",
                "read",
                json!([1, 2]),
                r#","final":true,"node":"n1""#,
            ),
            op(
                11,
                "invoke",
                "read",
                Value::Null,
                r#","final":true,"node":"n2""#,
            ),
            op(11, "ok", "read", json!([1]), r#","final":true,"node":"n2""#),
        ]);
        // 9 was there from the start and is gone too.
        let (c, text) = eventual(&h, json!([9]));
        assert_eq!(c.lost_count, 4);
        let lost: Vec<Value> = c
            .lost
            .iter()
            .map(|l| serde_json::to_value(l).unwrap())
            .collect();
        assert_eq!(
            lost,
            [
                json!({"element": 9, "initial": true, "missing_from": ["n1", "n2"]}),
                json!({"element": 2, "process": 3, "time": 12345000000_i64, "line": 4,
                       "node": "n1", "missing_from": ["n2"]}),
                json!({"element": 5, "process": 2, "time": 13200000000_i64, "line": 7,
                       "node": "n3", "missing_from": ["n1", "n2"]}),
                json!({"element": 6, "process": 4, "line": 10, "missing_from": ["n1", "n2"]}),
            ]
        );
        for needle in [
            "lost acknowledged adds (4 in all, earliest acknowledged first):",
            "    initial member 9 (never added); missing on n1, n2",
            "    add 2 acknowledged at 12.345 s by p3 via n1, line 4; missing on n2",
            "    add 5 acknowledged at 13.200 s by p2 via n3, line 7; missing on n1, n2",
            "    add 6 acknowledged by p4, line 10; missing on n1, n2",
        ] {
            assert!(text.contains(needle), "no {needle:?} in:\n{text}");
        }
        assert!(!text.contains("more (results.json"), "{text}");
    }

    #[test]
    fn the_summary_names_the_earliest_lost_add_not_the_first_key_s() {
        // Key 5's add is acknowledged first (line 2), key 1's later (line 4); the
        // counterexample lists key 1 first (keys in order).
        let mut lines = vec![
            op(0, "invoke", "add", json!(50), r#","key":5"#),
            op(0, "ok", "add", json!(50), r#","key":5"#),
            op(1, "invoke", "add", json!(10), r#","key":1"#),
            op(1, "ok", "add", json!(10), r#","key":1"#),
        ];
        for k in [1, 5] {
            for node in ["n1", "n2"] {
                let extra = format!(r#","key":{k},"final":true,"node":"{node}""#);
                lines.push(op(10, "invoke", "read", Value::Null, &extra));
                lines.push(op(10, "ok", "read", json!([]), &extra));
            }
        }
        let h = history(&lines);
        let (c, _) = eventual(&h, Value::Null);
        assert_eq!(c.violations[0].key, Some(json!(1)));
        let summary = crate::explain::summary(&crate::Explanation::Eventual(c));
        assert_eq!(
            summary.as_deref(),
            Some(
                "key 5: add 50 acknowledged at line 2, absent from every final read (1 more lost)"
            )
        );
    }

    #[test]
    fn the_lost_count_is_exact_over_every_key_when_the_lists_are_capped() {
        // 12 keys, 200 lost adds each, acknowledged round-robin: more keys than a
        // counterexample shows, more lost adds than it lists (and than it holds
        // before cutting its list).
        let (keys, per_key) = (12, 200);
        let mut lines = Vec::new();
        for i in 0..keys * per_key {
            let extra = format!(r#","key":{},"time":{},"node":"n1""#, i % keys, i * 1000);
            lines.push(op(i % 4, "invoke", "add", json!(i), &extra));
            lines.push(op(i % 4, "ok", "add", json!(i), &extra));
        }
        for k in 0..keys {
            for node in ["n1", "n2"] {
                let extra = format!(r#","key":{k},"final":true,"node":"{node}""#);
                lines.push(op(10, "invoke", "read", Value::Null, &extra));
                lines.push(op(10, "ok", "read", json!([]), &extra));
            }
        }
        let (c, text) = eventual(&history(&lines), Value::Null);
        assert_eq!(c.violations.len(), 10, "the keys shown stay capped");
        assert_eq!(c.lost_count, (keys * per_key) as usize);
        assert_eq!(c.lost.len(), crate::MAX_LOST_LISTED);
        // The first acknowledged, in order, from every key (not only the 10 shown).
        let listed: Vec<i64> = c.lost.iter().map(|l| l.element.as_i64().unwrap()).collect();
        assert_eq!(listed, (0..1000).collect::<Vec<i64>>());
        assert_eq!(c.lost[11].key, Some(json!(11)));
        assert_eq!(c.lost[999].line, Some(2000));
        assert!(
            text.contains("lost acknowledged adds (2400 in all, earliest acknowledged first):"),
            "{text}"
        );
        assert!(
            text.contains("    add 9 to key 9 acknowledged at 0.000 s by p1 via n1, line 20; missing on n1, n2"),
            "{text}"
        );
        assert!(
            text.contains(
                "    ... and 2390 more (results.json and --format json list the first 1000)"
            ),
            "{text}"
        );
        assert!(!text.contains("add 10 to key 10"), "{text}");
        // JSON stays small: the records are capped, not the count.
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""lost_count":2400"#));
    }
}
