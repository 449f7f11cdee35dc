//! The timeline phase: how one op is drawn, and which ops of the history the
//! timeline draws (all of them up to [`MAX_TIMELINE_OPS`], else a window around the
//! counterexample on its key, with every op of the counterexample).

use super::{client, short, thousands, Axis, CONTEXT_OPS, MAX_SHRUNK, MAX_TIMELINE_OPS};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::{History, Op, OpType};
use std::collections::{HashMap, HashSet};

/// An op as drawn.
#[derive(Debug, Clone, Serialize)]
pub struct TlOp {
    pub p: i64,
    /// Start and end on the time axis; no end: it never completed `ok`/`fail`/`info`.
    pub s: f64,
    pub e: Option<f64>,
    /// `ok`, `fail`, `info` or `pending`.
    pub o: &'static str,
    pub l: String,
    /// 1: in the shrunk counterexample; 2: the op that cannot be linearized.
    pub k: u8,
    /// The details shown on hover.
    pub d: String,
}

#[derive(Debug, Serialize)]
pub struct Timeline {
    pub ops: Vec<TlOp>,
    /// Ops the timeline could have drawn (on the counterexample's key).
    pub total: usize,
    pub key: Option<Value>,
    pub note: String,
}

/// What the history's timeline centres on: the ops of the first counterexample
/// drawn (pair indices, sorted), its culprit and its key. Empty: no counterexample.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Focus {
    pub pairs: Vec<usize>,
    pub culprit: Option<usize>,
    pub key: Option<Value>,
}

/// Draws a history's ops (by pair index) on an axis.
pub(super) struct OpDrawer<'a> {
    history: &'a History,
    axis: &'a Axis,
    /// A pair's invocation line → the pair's index (the first pair on that line).
    by_line: HashMap<usize, usize>,
}

impl<'a> OpDrawer<'a> {
    pub fn new(history: &'a History, axis: &'a Axis) -> OpDrawer<'a> {
        let by_line = history
            .pairs()
            .iter()
            .enumerate()
            .rev()
            .map(|(n, p)| (history.line(p.invoke), n))
            .collect();
        OpDrawer {
            history,
            axis,
            by_line,
        }
    }

    /// The pair whose invocation is on `line` of the history's file.
    pub fn pair_at(&self, line: usize) -> Option<usize> {
        self.by_line.get(&line).copied()
    }

    /// Pair `pair` drawn with mark `k` (see [`TlOp::k`]).
    pub fn op(&self, pair: usize, k: u8) -> TlOp {
        let (history, axis) = (self.history, self.axis);
        let ops = history.ops();
        let p = history.pairs()[pair];
        let inv = &ops[p.invoke];
        let done = p.completion.map(|c| &ops[c]);
        let s = axis.t(history, p.invoke);
        let e = p.completion.map(|c| axis.t(history, c));
        let o = done.map_or("pending", |c| c.kind.as_str());
        let l = op_label(inv, done);
        let mut d = format!("p{} {} → {o}", client(inv), l);
        if inv.is_final || done.is_some_and(|c| c.is_final) {
            d += " (final read)";
        }
        if let Some(c) = done {
            if c.value != inv.value && c.kind == OpType::Ok {
                d += &format!(" (value {})", short(&c.value.json(), 60));
            }
        }
        if let Some(key) = &inv.key {
            d += &format!("\nkey {}", key.to_json());
        }
        match p.completion {
            Some(c) => d += &format!("\nlines {}-{}", history.line(p.invoke), history.line(c)),
            None => d += &format!("\nline {} (never completed)", history.line(p.invoke)),
        }
        if let (true, Some(e)) = (axis.seconds, e) {
            d += &format!("\nt {s:.3} s, latency {:.2} ms", (e - s) * 1e3);
        }
        if let Some(n) = done.and_then(|c| c.node.as_ref()).or(inv.node.as_ref()) {
            d += &format!("\nnode {n}");
        }
        if let Some(err) = done.and_then(|c| c.error.as_ref()) {
            d += &format!("\nerror {}", short(err, 120));
        }
        TlOp {
            p: client(inv),
            s,
            e,
            o,
            l,
            k,
            d,
        }
    }
}

fn op_label(inv: &Op, done: Option<&Op>) -> String {
    let ok = done.filter(|c| c.kind == OpType::Ok);
    match (&*inv.f, ok) {
        ("read", Some(c)) => format!("read {}", short(&c.value.json(), 24)),
        ("read", None) => "read ?".into(),
        ("cas", _) => match &*inv.value.json() {
            Value::Array(a) if a.len() == 2 => {
                format!("cas {}→{}", short(&a[0], 12), short(&a[1], 12))
            }
            v => format!("cas {}", short(v, 24)),
        },
        (f, _) if inv.value.is_null() => f.to_string(),
        (f, _) => format!("{f} {}", short(&inv.value.json(), 24)),
    }
}

/// The history's timeline: every op (on the focus's key) up to a limit, else the
/// ops nearest the culprit in time plus every op of the focus. What it cuts goes to
/// `cuts`.
pub(super) fn timeline(draw: &OpDrawer<'_>, focus: Focus, cuts: &mut Vec<String>) -> Timeline {
    let (history, axis) = (draw.history, draw.axis);
    let ops = history.ops();
    let key_of = |n: usize| {
        ops[history.pairs()[n].invoke]
            .key
            .as_ref()
            .map(|k| k.to_json())
    };
    let Focus {
        pairs: focus_pairs,
        culprit: culprit_pair,
        key: focus_key,
    } = focus;
    let candidates: Vec<usize> = (0..history.pairs().len())
        .filter(|&n| focus_key.is_none() || key_of(n) == focus_key)
        .collect();
    let total = candidates.len();
    let limit = if focus_pairs.is_empty() {
        MAX_TIMELINE_OPS
    } else {
        CONTEXT_OPS
    };
    let mut chosen: Vec<usize> = if total <= limit {
        candidates.clone()
    } else {
        let center_pair = culprit_pair.or(focus_pairs.first().copied());
        let center = center_pair
            .and_then(|c| candidates.binary_search(&c).ok())
            .unwrap_or(0);
        let budget = limit.saturating_sub(focus_pairs.len().min(MAX_SHRUNK));
        // The ops nearest the culprit in time (a key's final reads, long after,
        // would otherwise squeeze the window into a sliver).
        let at = |n: usize| axis.t(history, history.pairs()[n].invoke);
        let t0 = at(candidates[center]);
        let mut near = candidates.clone();
        near.sort_by(|&a, &b| (at(a) - t0).abs().total_cmp(&(at(b) - t0).abs()));
        let mut w: Vec<usize> = near.into_iter().take(budget).collect();
        w.extend(focus_pairs.iter().take(MAX_SHRUNK));
        w.sort_unstable();
        w.dedup();
        w
    };
    chosen.sort_unstable();
    let focus_set: HashSet<usize> = focus_pairs.iter().copied().collect();
    let tl_ops: Vec<TlOp> = chosen
        .iter()
        .map(|&n| {
            let k = match (Some(n) == culprit_pair, focus_set.contains(&n)) {
                (true, _) => 3,
                (false, true) => 1,
                _ => 0,
            };
            draw.op(n, k)
        })
        .collect();
    let where_ = match &focus_key {
        Some(k) => format!(" on key {k}"),
        None => String::new(),
    };
    let note = if tl_ops.len() < total {
        let around = if focus_pairs.is_empty() {
            "the first ones"
        } else {
            "a window around the counterexample, and all of its ops"
        };
        let note = format!(
            "{} of {} ops{where_}: {around}",
            thousands(tl_ops.len()),
            thousands(total)
        );
        cuts.push(format!("the history's timeline draws {note}"));
        note
    } else {
        format!("all {} ops{where_}", thousands(total))
    };
    Timeline {
        ops: tl_ops,
        total,
        key: focus_key,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{tests::history, Axis, CONTEXT_OPS, MAX_TIMELINE_OPS};
    use super::{timeline, Focus, OpDrawer};
    use serde_json::json;

    #[test]
    fn an_op_is_drawn_with_its_outcome_label_and_details() {
        let h = history(
            r#"{"process":3,"type":"invoke","f":"cas","value":[1,2],"time":1000000000,"key":"k"}
{"process":3,"type":"fail","f":"cas","value":[1,2],"time":1250000000,"node":"n2","error":"no"}
{"process":4,"type":"invoke","f":"read","value":null,"time":2000000000}"#,
        );
        let axis = Axis::of(&h);
        let draw = OpDrawer::new(&h, &axis);
        assert_eq!(draw.pair_at(1), Some(0));
        assert_eq!(draw.pair_at(3), Some(1));
        assert_eq!(draw.pair_at(2), None);
        let cas = draw.op(0, 1);
        assert_eq!(
            (cas.p, cas.s, cas.e, cas.o, cas.l.as_str(), cas.k),
            (3, 0.0, Some(0.25), "fail", "cas 1→2", 1)
        );
        assert_eq!(
            cas.d,
            "p3 cas 1→2 → fail\nkey \"k\"\nlines 1-2\nt 0.000 s, latency 250.00 ms\nnode n2\nerror no"
        );
        let read = draw.op(1, 0);
        assert_eq!(
            (read.e, read.o, read.l.as_str()),
            (None, "pending", "read ?")
        );
        assert!(read.d.contains("line 3 (never completed)"), "{}", read.d);
    }

    /// `n` writes, one after another, on keys `a` and `b` in turn.
    fn writes(n: usize) -> String {
        (0..n)
            .flat_map(|i| {
                let key = if i % 2 == 0 { "a" } else { "b" };
                [
                    format!(
                        r#"{{"process":0,"type":"invoke","f":"write","value":{i},"key":"{key}"}}"#
                    ),
                    format!(r#"{{"process":0,"type":"ok","f":"write","value":{i},"key":"{key}"}}"#),
                ]
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn without_a_counterexample_the_first_ops_are_drawn_up_to_the_bound() {
        let h = history(&writes(10));
        let axis = Axis::of(&h);
        let mut cuts = Vec::new();
        let t = timeline(&OpDrawer::new(&h, &axis), Focus::default(), &mut cuts);
        assert_eq!(
            (t.ops.len(), t.total, t.note.as_str()),
            (10, 10, "all 10 ops")
        );
        assert!(cuts.is_empty());

        let h = history(&writes(MAX_TIMELINE_OPS + 5));
        let axis = Axis::of(&h);
        let t = timeline(&OpDrawer::new(&h, &axis), Focus::default(), &mut cuts);
        assert_eq!(t.ops.len(), MAX_TIMELINE_OPS);
        assert_eq!(t.ops[0].l, "write 0");
        assert_eq!(t.note, "1,500 of 1,505 ops: the first ones");
        assert_eq!(
            cuts,
            ["the history's timeline draws 1,500 of 1,505 ops: the first ones"]
        );
    }

    #[test]
    fn a_counterexample_gets_a_window_on_its_key_with_all_of_its_ops() {
        let h = history(&writes(1000));
        let axis = Axis::of(&h);
        // Ops 0 and 500 on key a (pairs 0 and 500), the culprit 500.
        let focus = Focus {
            pairs: vec![0, 500],
            culprit: Some(500),
            key: Some(json!("a")),
        };
        let mut cuts = Vec::new();
        let t = timeline(&OpDrawer::new(&h, &axis), focus, &mut cuts);
        assert_eq!(t.total, 500);
        assert_eq!(t.key, Some(json!("a")));
        assert!(t.ops.len() <= CONTEXT_OPS + 2, "{}", t.ops.len());
        assert!(t.ops.iter().all(|o| o.d.contains("key \"a\"")));
        let marks: Vec<(&str, u8)> = t
            .ops
            .iter()
            .filter(|o| o.k > 0)
            .map(|o| (o.l.as_str(), o.k))
            .collect();
        assert_eq!(marks, [("write 0", 1), ("write 500", 3)]);
        assert!(
            t.note.ends_with(
                "ops on key \"a\": a window around the counterexample, and all of its ops"
            ),
            "{}",
            t.note
        );
        assert_eq!(cuts.len(), 1);
    }
}
