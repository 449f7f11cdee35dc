//! Operations as a counterexample shows them: [`OpRef`] (an op with its lines in the
//! file) and [`timeline`], which draws a few of them. Every explanation uses these;
//! they use nothing of the explanations.

use crate::model::Model;
use crate::prepare::{pos, Call, Partition};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::{History, OpType, Process};
use std::fmt::Write;

/// An operation as the history holds it, with where it is in the file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpRef {
    pub process: i64,
    /// How it completed: `ok`, `info`, or `pending` (never completed).
    #[serde(rename = "type")]
    pub outcome: &'static str,
    pub f: String,
    /// The invocation's value.
    pub value: Value,
    /// The completion's value, when it completed `ok` with a different value (what a
    /// read returned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The model's short description, e.g. `read 1` or `cas 1→2`.
    pub label: String,
    /// The line of the invocation.
    pub line: usize,
    /// The line of the completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    /// Positions in the history, for drawing: invocation, and `ok` completion.
    #[serde(skip)]
    pub(crate) span: (u64, Option<u64>),
}

/// Timelines wider than a screen or two help nobody.
pub(crate) const MAX_DRAWN: usize = 40;

pub(crate) fn op_ref<M: Model>(
    model: &M,
    history: &History,
    part: &Partition<M>,
    call: &Call<M::Op>,
) -> OpRef {
    let pair = history.pairs()[call.pair];
    let inv = &history.ops()[pair.invoke];
    let done = pair.completion.map(|c| &history.ops()[c]);
    let ok = done.filter(|c| c.kind == OpType::Ok);
    OpRef {
        process: match inv.process {
            Process::Client(p) => p,
            Process::Nemesis => -1,
        },
        outcome: done.map_or("pending", |c| c.kind.as_str()),
        f: inv.f.to_string(),
        value: inv.value.json().into_owned(),
        result: ok
            .map(|c| c.value.json().into_owned())
            .filter(|v| *v != inv.value),
        label: model.describe_op(&call.op, &part.values),
        line: history.line(pair.invoke),
        end_line: pair.completion.map(|c| history.line(c)),
        span: (pos(pair.invoke), ok.and(pair.completion).map(pos)),
    }
}

/// Draws ops as an ASCII timeline, one row per process, time flowing right:
///
/// ```text
/// p0  |-write 1-|
/// p1             |-write 2-|
/// p2                         |-read 1-|
///                            ^ cannot be linearized
/// ```
///
/// An op that never completed `ok` runs to the right edge and ends in `?`: it may
/// have taken effect at any time after it began. `mark` underlines one op.
pub fn timeline(ops: &[OpRef], mark: Option<usize>) -> String {
    if ops.is_empty() {
        return String::new();
    }
    if ops.len() > MAX_DRAWN {
        return format!("({} ops: too many to draw; see the list)\n", ops.len());
    }
    // Place events left to right in history order; an op's return sits far enough
    // from its call for the label.
    let mut events: Vec<(u64, usize, bool)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        events.push((o.span.0, i, false));
        if let Some(r) = o.span.1 {
            events.push((r, i, true));
        }
    }
    events.sort_unstable();
    let width = |o: &OpRef| o.label.chars().count() + 3;
    let mut x_call = vec![0usize; ops.len()];
    let mut x_ret = vec![None; ops.len()];
    let mut x = 0usize;
    for (n, &(_, i, is_ret)) in events.iter().enumerate() {
        if n > 0 {
            x += 2;
        }
        if is_ret {
            x = x.max(x_call[i] + width(&ops[i]));
            x_ret[i] = Some(x);
        } else {
            x_call[i] = x;
        }
    }
    let right = (0..ops.len())
        .map(|i| x_ret[i].unwrap_or(x_call[i] + width(&ops[i]) + 1))
        .max()
        .unwrap_or(0)
        .max(x + 2);
    // Rows in order of each process's first op, so the story reads downwards.
    let mut procs: Vec<i64> = Vec::new();
    for &(_, i, _) in &events {
        if !procs.contains(&ops[i].process) {
            procs.push(ops[i].process);
        }
    }
    let name_w = procs
        .iter()
        .map(|p| format!("p{p}").len())
        .max()
        .unwrap_or(2)
        + 2;
    let mut out = String::new();
    for p in procs {
        let mut row: Vec<char> = vec![' '; right + 1];
        let mut marker = None;
        for (i, o) in ops.iter().enumerate().filter(|(_, o)| o.process == p) {
            let (a, b, end) = match x_ret[i] {
                Some(b) => (x_call[i], b, '|'),
                None => (x_call[i], right, '?'),
            };
            row[a] = '|';
            for c in row.iter_mut().take(b).skip(a + 1) {
                *c = '-';
            }
            row[b] = end;
            for (k, ch) in o.label.chars().enumerate() {
                row[a + 2 + k] = ch;
            }
            if mark == Some(i) {
                marker = Some(a);
            }
        }
        let line: String = row.into_iter().collect();
        let _ = writeln!(out, "{:<name_w$}{}", format!("p{p}"), line.trim_end());
        if let Some(a) = marker {
            let _ = writeln!(out, "{:name_w$}{:a$}^ cannot be linearized", "", "");
        }
    }
    out
}

pub(crate) fn op_line(o: &OpRef) -> String {
    let lines = match o.end_line {
        Some(e) => format!("lines {}-{}", o.line, e),
        None => format!("line {}", o.line),
    };
    let outcome = match o.outcome {
        "ok" => String::new(),
        other => format!(" ({other})"),
    };
    format!("p{} {}{}  [{}]", o.process, o.label, outcome, lines)
}
