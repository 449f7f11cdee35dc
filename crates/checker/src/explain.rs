//! Explanations: data first ([`Counterexample`], serializable), text second
//! ([`render_text`]).

use crate::linear::{Deadline, Stuck};
use crate::model::Model;
use crate::opref::{op_line, op_ref, timeline, OpRef, MAX_DRAWN};
use crate::prepare::{Call, Partition};
use crate::{shrink, Explanation, Report, Verdict};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::History;
use std::fmt::Write;

/// Why a history is not linearizable.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    /// The key, when ops carry keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The op that cannot be linearized: every order of the ops before it that the
    /// model accepts leaves a state in which this op is illegal.
    pub op: OpRef,
    /// Ops whose intervals overlap it (the candidates to reorder). Indeterminate ops
    /// that cannot matter (their value was never observed) are left out.
    pub concurrent: Vec<OpRef>,
    /// The length of the longest linearizable prefix that reached `op`.
    pub prefix_len: usize,
    /// Its last ops (at most 20), in linearization order.
    pub prefix: Vec<OpRef>,
    /// The model state after each op of `prefix` (same length), replaying the whole
    /// prefix from the initial state: the partial linearization, step by step.
    pub prefix_states: Vec<Value>,
    /// Model states that prefix could end in.
    pub states: Vec<Value>,
    /// The fewest ops found that still cannot be linearized, in invocation order.
    pub shrunk: Vec<OpRef>,
    /// `shrunk` drawn as an ASCII timeline, one row per process.
    pub timeline: String,
}

const PREFIX_TAIL: usize = 20;

pub(crate) fn counterexample<M: Model>(
    model: &M,
    history: &History,
    part: &Partition<M>,
    calls: &[Call<M::Op>],
    stuck: &Stuck<M::State>,
    budget: &Deadline,
) -> Counterexample {
    let x = &calls[stuck.op];
    let x_ret = x.ret.unwrap_or(u64::MAX);
    let op = op_ref(model, history, part, x);
    // Among the ops the search considered: an indeterminate op that pruning showed
    // cannot matter is no candidate.
    let concurrent = calls
        .iter()
        .filter(|c| c.pair != x.pair && c.call < x_ret && c.ret.is_none_or(|r| r > x.call))
        .map(|c| op_ref(model, history, part, c))
        .collect();
    let tail = stuck.prefix.len().saturating_sub(PREFIX_TAIL);
    let prefix = stuck.prefix[tail..]
        .iter()
        .map(|&i| op_ref(model, history, part, &calls[i]))
        .collect();
    // The search found this prefix legal, so every step succeeds; stop at the first
    // that does not rather than trust it blindly.
    let mut prefix_states = Vec::new();
    let mut state = part.init.clone();
    for (n, &i) in stuck.prefix.iter().enumerate() {
        let Some(next) = model.step(&state, &calls[i].op) else {
            break;
        };
        state = next;
        if n >= tail {
            prefix_states.push(model.describe_state(&state, &part.values));
        }
    }
    let mut shrunk: Vec<OpRef> = shrink::shrink(model, part, x.pair, x_ret, budget)
        .into_iter()
        .map(|i| op_ref(model, history, part, &part.calls[i]))
        .collect();
    shrunk.sort_by_key(|o| o.span.0);
    let culprit = shrunk.iter().position(|o| o.line == op.line);
    Counterexample {
        key: part.key.as_ref().map(|k| k.to_json()),
        timeline: timeline(&shrunk, culprit),
        op,
        concurrent,
        prefix_len: stuck.prefix.len(),
        prefix,
        prefix_states,
        states: stuck
            .states
            .iter()
            .map(|s| model.describe_state(s, &part.values))
            .collect(),
        shrunk,
    }
}

/// The report as text for a terminal or a CI log.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let (yes, no) = match r.consistency {
        "sequential" => ("sequentially consistent", "NOT sequentially consistent"),
        "causal" => ("causally consistent", "NOT causally consistent"),
        "eventual" => ("eventually consistent", "NOT eventually consistent"),
        _ => ("linearizable", "NOT linearizable"),
    };
    let strongest;
    let verdict = match (r.strongest, r.verdict) {
        (Some(_), _) if r.consistency == "all" && r.safety.is_some() => {
            strongest = lattice(r);
            strongest.as_str()
        }
        (Some(level), _) => {
            strongest = format!("strongest level that holds: {level}");
            strongest.as_str()
        }
        (None, Verdict::Valid) => yes,
        (None, Verdict::Invalid) => no,
        (None, Verdict::Unknown) => match r.unknown_reason {
            Some("memory limit") => "UNKNOWN (the search reached its memory limit)",
            Some("no final reads") => "UNKNOWN (no final reads to compare)",
            _ => "UNKNOWN (the time limit passed before the search finished)",
        },
    };
    let keys = if r.keys > 1 {
        format!(", {} keys", r.keys)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{}: {} ({}, {} ops{}, {:.1} ms)",
        r.file,
        verdict,
        r.model,
        r.ops,
        keys,
        r.elapsed_ms.as_secs_f64() * 1e3
    );
    if !r.unknown_keys.is_empty() {
        let _ = writeln!(out, "  undecided keys: {}", list_values(&r.unknown_keys));
    }
    if !r.invalid_keys.is_empty() {
        let _ = writeln!(
            out,
            "  invalid keys: {} ({} of {})",
            list_values(&r.invalid_keys),
            r.invalid_keys.len(),
            r.keys
        );
    }
    let all_levels = r.consistency == "all" && !r.levels.is_empty();
    if all_levels {
        let levels: Vec<String> = r
            .levels
            .iter()
            .map(|l| {
                let v = match (l.verdict, l.implied_by) {
                    (Some(Verdict::Valid), Some(by)) => format!("holds (implied by {by})"),
                    (Some(Verdict::Valid), None) => "holds".to_string(),
                    (Some(Verdict::Invalid), _) => "ruled out".to_string(),
                    (Some(Verdict::Unknown), _) => {
                        format!("undecided ({})", l.note.as_deref().unwrap_or("time limit"))
                    }
                    (None, _) => "not checked".to_string(),
                };
                format!("{} {v}", l.consistency)
            })
            .collect();
        let _ = writeln!(out, "  levels: {}", levels.join("; "));
        for l in r.levels.iter().filter(|l| l.verdict.is_none()) {
            if let Some(n) = &l.note {
                let _ = writeln!(out, "  {}: {n}", l.consistency);
            }
        }
    } else if !r.undecided.is_empty() {
        let _ = writeln!(out, "  undecided: {}", r.undecided.join(", "));
    }
    if let Some(v) = &r.versions {
        let what = match (r.consistency, r.keys) {
            ("sequential", _) | (_, 1) => String::new(),
            (_, n) => format!(": {} of {n} keys", v.keys),
        };
        let _ = writeln!(
            out,
            "  decided from the store's versions ({}){what}",
            v.assumption
        );
    }
    for f in &r.version_findings {
        let _ = writeln!(out, "  the store's versions contradict each other: {f}");
    }
    if all_levels {
        // A set's lost adds rule out linearizable and sequential with the eventual
        // explanation (`set_loss`): list them once, not once per level.
        let mut told: Option<(&str, &crate::EventualCounterexample)> = None;
        for l in r
            .levels
            .iter()
            .filter(|l| l.verdict == Some(Verdict::Invalid))
        {
            let _ = writeln!(out, "  ruled out: {}", l.consistency);
            if let Some(e) = &l.counterexample {
                match (told, e.eventual()) {
                    (Some((level, before)), Some(now)) if before == now => {
                        let _ =
                            writeln!(out, "  the same lost adds and final reads as {level} above");
                    }
                    (_, now) => {
                        render_explanation(&mut out, e);
                        if let Some(now) = now {
                            told.get_or_insert((l.consistency, now));
                        }
                    }
                }
            }
        }
    } else {
        for ruled in &r.ruled_out {
            let _ = writeln!(out, "  ruled out: {}", ruled.consistency);
            if let Some(e) = &ruled.counterexample {
                render_explanation(&mut out, e);
            }
        }
    }
    if let Some(e) = &r.counterexample {
        render_explanation(&mut out, e);
    }
    if let Some(ws) = &r.witness {
        for w in ws {
            match (&w.key, r.consistency) {
                (Some(k), _) => {
                    let _ = writeln!(out, "  linearization of key {k}:");
                }
                (None, "sequential") => {
                    let _ = writeln!(out, "  sequential order (all keys):");
                }
                (None, _) => {
                    let _ = writeln!(out, "  linearization:");
                }
            }
            for (n, o) in w.order.iter().enumerate() {
                let _ = writeln!(out, "    {:>4}. {}", n + 1, op_line(o));
            }
        }
    }
    out
}

fn render_explanation(out: &mut String, e: &Explanation) {
    match e {
        Explanation::Linearizable(c) => render_linear(out, c),
        Explanation::Sequential(c) => render_sequential(out, c),
        Explanation::Eventual(c) => render_eventual(out, c),
        Explanation::Versions(c) => crate::versions::render(out, c),
        Explanation::Causal(c) => render_causal(out, c),
    }
}

fn render_causal(out: &mut String, c: &crate::CausalCounterexample) {
    let _ = writeln!(
        out,
        "  causal memory's bad pattern {} (Bouajjani et al. 2017){}:",
        c.pattern,
        c.process
            .map(|p| format!(", in p{p}'s view"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "    {}", c.summary);
    if !c.steps.is_empty() {
        let _ = writeln!(out, "  each before the next:");
        for step in &c.steps {
            let why = match &step.because {
                Some(r) => format!("{}, because of {}", step.why, op_line(r)),
                None => step.why.to_string(),
            };
            let _ = writeln!(
                out,
                "    {}  <  {}  ({why})",
                op_line(&step.before),
                op_line(&step.after)
            );
        }
    }
    let _ = writeln!(out, "  the ops involved ({}):", c.ops.len());
    for l in c.timeline.lines() {
        let _ = writeln!(out, "    {l}");
    }
    for o in c.ops.iter().take(MAX_DRAWN) {
        let _ = writeln!(out, "    {}", op_line(o));
    }
}

/// Why a level fails, in one line, for the verdict of `all`: "add 3 acknowledged
/// at line 40, absent from every final read", or a causal pattern's sentence.
pub(crate) fn summary(e: &Explanation) -> Option<String> {
    match e {
        Explanation::Causal(c) => Some(format!("{}: {}", c.pattern, c.summary)),
        Explanation::Eventual(c) => {
            // The earliest lost add over every key (every lost add has a record,
            // sorted by the line of its acknowledgement), else the first key's
            // problem.
            if let Some(lost) = c.lost.first() {
                return Some(lost_summary(c, lost));
            }
            let v = c.violations.first()?;
            let key = v
                .key
                .as_ref()
                .map(|k| format!("key {k}: "))
                .unwrap_or_default();
            let what = if !v.disagree.is_empty() {
                let reads: Vec<String> = v
                    .disagree
                    .iter()
                    .take(4)
                    .map(|r| format!("{} read {}", r.node, r.value))
                    .collect();
                format!("final reads disagree: {}", reads.join(", "))
            } else if let Some(u) = &v.unwritten {
                format!("final value {u} was never written by an op that did not fail")
            } else if !v.unexpected.is_empty() {
                format!(
                    "{} present, never added by an op that did not fail",
                    list_values(&v.unexpected)
                )
            } else {
                return None;
            };
            Some(format!("{key}{what}"))
        }
        _ => None,
    }
}

/// "key 5: add 3 acknowledged at line 40, absent from every final read (2 more
/// lost)" for the earliest lost add. "Every" only where the key's final reads are
/// known to agree (its violation is listed without a disagreement).
fn lost_summary(c: &crate::EventualCounterexample, lost: &crate::LostAdd) -> String {
    let key = lost
        .key
        .as_ref()
        .map(|k| format!("key {k}: "))
        .unwrap_or_default();
    let agree = c
        .violations
        .iter()
        .find(|v| v.key == lost.key)
        .is_some_and(|v| v.disagree.is_empty());
    let absent = if agree {
        "absent from every final read"
    } else {
        "absent from a final read"
    };
    // Only an initial member has no line: no add put it there.
    let what = match lost.line {
        Some(line) => format!("add {} acknowledged at line {line}", lost.element),
        None => format!("initial member {}", lost.element),
    };
    let more = match c.lost_count {
        0 | 1 => String::new(),
        n => format!(" ({} more lost)", n - 1),
    };
    format!("{key}{what}, {absent}{more}")
}

/// The verdict of `all`: the strongest safety level and convergence beside it,
/// e.g. "sequential; not convergent: add 3 acknowledged at line 40, absent from
/// every final read".
fn lattice(r: &Report) -> String {
    let safety = match r.safety {
        Some("none") => "no safety level holds".to_string(),
        Some("unknown") => {
            // The first safety level neither held nor ruled out, and the one above.
            let safety = ["linearizable", "sequential", "causal"];
            let of = |name: &str| r.levels.iter().find(|l| l.consistency == name);
            let open = safety
                .iter()
                .position(|&n| of(n).is_some_and(|l| l.verdict != Some(Verdict::Invalid)));
            match open.and_then(|i| Some((i, of(safety[i])?))) {
                Some((i, l)) => {
                    let how = match l.verdict {
                        None => "not checked",
                        _ => "undecided",
                    };
                    match i {
                        0 => format!("{} {how}", l.consistency),
                        _ => format!("not {}; {} {how}", safety[i - 1], l.consistency),
                    }
                }
                None => "safety undecided".to_string(),
            }
        }
        Some(level) => level.to_string(),
        None => String::new(),
    };
    let eventual = r.levels.iter().find(|l| l.consistency == "eventual");
    let convergence = match eventual.and_then(|l| l.verdict) {
        None => return safety,
        Some(Verdict::Valid) => "convergent".to_string(),
        Some(Verdict::Invalid) => match eventual.and_then(|l| l.summary.as_deref()) {
            Some(why) => format!("not convergent: {why}"),
            None => "not convergent".to_string(),
        },
        Some(Verdict::Unknown) => match eventual.and_then(|l| l.note.as_deref()) {
            Some(why) => format!("convergence unknown ({why})"),
            None => "convergence unknown".to_string(),
        },
    };
    format!("{safety}; {convergence}")
}

/// The first ten values, then how many more: `1, 2, 3 and 8 more`.
fn list_values(vs: &[Value]) -> String {
    let shown: Vec<String> = vs.iter().take(10).map(Value::to_string).collect();
    let more = if vs.len() > 10 {
        format!(" and {} more", vs.len() - 10)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// How many lost elements the text lists; the JSON lists up to
/// [`crate::MAX_LOST_LISTED`].
const LOST_SHOWN: usize = 10;

/// One lost element: "add 7 to key 3 acknowledged at 12.345 s by p3 via n1,
/// line 4021; missing on n2, n3".
pub fn lost_line(l: &crate::LostAdd) -> String {
    let key = l
        .key
        .as_ref()
        .map(|k| format!(" to key {k}"))
        .unwrap_or_default();
    let what = if l.initial {
        format!("initial member {}{key} (never added)", l.element)
    } else {
        let mut s = format!("add {}{key} acknowledged", l.element);
        if let Some(t) = l.time {
            let _ = write!(s, " at {:.3} s", t as f64 / 1e9);
        }
        if let Some(p) = l.process {
            let _ = write!(s, " by p{p}");
        }
        if let Some(n) = &l.node {
            let _ = write!(s, " via {n}");
        }
        if let Some(line) = l.line {
            let _ = write!(s, ", line {line}");
        }
        s
    };
    format!("{what}; missing on {}", l.missing_from.join(", "))
}

fn render_lost(out: &mut String, c: &crate::EventualCounterexample) {
    if c.lost_count == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "  lost acknowledged adds ({} in all, earliest acknowledged first):",
        c.lost_count
    );
    for l in c.lost.iter().take(LOST_SHOWN) {
        let _ = writeln!(out, "    {}", lost_line(l));
    }
    let shown = c.lost.len().min(LOST_SHOWN);
    if c.lost_count > shown {
        let json = if c.lost.len() < c.lost_count {
            format!("the first {}", c.lost.len())
        } else {
            "them all".to_string()
        };
        let _ = writeln!(
            out,
            "    ... and {} more (results.json and --format json list {json})",
            c.lost_count - shown
        );
    }
}

fn render_eventual(out: &mut String, c: &crate::EventualCounterexample) {
    for v in &c.violations {
        if let Some(k) = &v.key {
            let _ = writeln!(out, "  key {k}:");
        }
        if !v.disagree.is_empty() {
            let _ = writeln!(out, "  final reads disagree:");
            for r in &v.disagree {
                let _ = writeln!(out, "    {} read {}  [line {}]", r.node, r.value, r.line);
            }
        }
        if let Some(u) = &v.unwritten {
            let _ = writeln!(
                out,
                "  final value {u} was never written by an op that did not fail"
            );
        }
        if !v.lost.is_empty() {
            let _ = writeln!(
                out,
                "  lost (acknowledged, missing from a final read): {}",
                list_values(&v.lost)
            );
        }
        if !v.unexpected.is_empty() {
            let _ = writeln!(
                out,
                "  unexpected (present, never added by an op that did not fail): {}",
                list_values(&v.unexpected)
            );
        }
        if !v.recovered.is_empty() {
            let _ = writeln!(
                out,
                "  recovered (indeterminate adds that made it): {}",
                list_values(&v.recovered)
            );
        }
    }
    render_lost(out, c);
}

fn render_sequential(out: &mut String, c: &crate::SequentialCounterexample) {
    if let [o] = &c.cycle[..] {
        let _ = writeln!(
            out,
            "  it observes a value that no op wrote: {}",
            op_line(o)
        );
    } else if !c.cycle.is_empty() {
        let _ = writeln!(
            out,
            "  no order of all ops respects every process: these must each come before the next, in a cycle:"
        );
        for o in &c.cycle {
            let _ = writeln!(out, "    {}", op_line(o));
        }
    }
    if let Some(n) = c.prefix_len {
        let _ = writeln!(
            out,
            "  longest legal order respecting every process: {n} ops{}",
            if n > 5 { ", ending" } else { "" }
        );
        for o in c.prefix.iter().skip(c.prefix.len().saturating_sub(5)) {
            let _ = writeln!(out, "    {}", op_line(o));
        }
        if let Some(s) = &c.state {
            let _ = writeln!(
                out,
                "    leaving state {s}; none of the next ops is legal then:"
            );
        }
        for o in &c.blocked {
            let _ = writeln!(out, "    {}", op_line(o));
        }
    }
    write_shrunk(out, "sequentially consistent", &c.shrunk, &c.timeline);
}

/// The shrunk sub-history: its timeline, then its ops with their lines (capped).
fn write_shrunk(out: &mut String, level: &str, shrunk: &[OpRef], timeline: &str) {
    let _ = writeln!(
        out,
        "  smallest sub-history that is still not {level} ({} ops):",
        shrunk.len()
    );
    for l in timeline.lines() {
        let _ = writeln!(out, "    {l}");
    }
    for o in shrunk.iter().take(MAX_DRAWN) {
        let _ = writeln!(out, "    {}", op_line(o));
    }
    if shrunk.len() > MAX_DRAWN {
        let _ = writeln!(out, "    ... and {} more", shrunk.len() - MAX_DRAWN);
    }
}

fn render_linear(out: &mut String, c: &Counterexample) {
    {
        if let Some(k) = &c.key {
            let _ = writeln!(out, "  key {k}:");
        }
        let _ = writeln!(out, "  cannot linearize: {}", op_line(&c.op));
        let states: Vec<String> = c.states.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(
            out,
            "    it is illegal in every state the ops before it can leave: {}",
            states.join(", ")
        );
        if c.concurrent.is_empty() {
            let _ = writeln!(out, "  concurrent with it: nothing");
        } else {
            let _ = writeln!(out, "  concurrent with it:");
            for o in c.concurrent.iter().take(8) {
                let _ = writeln!(out, "    {}", op_line(o));
            }
            if c.concurrent.len() > 8 {
                let _ = writeln!(out, "    ... and {} more", c.concurrent.len() - 8);
            }
        }
        let _ = writeln!(
            out,
            "  longest linearizable prefix: {} ops{}",
            c.prefix_len,
            if c.prefix_len > 5 { ", ending" } else { "" }
        );
        for o in c.prefix.iter().skip(c.prefix.len().saturating_sub(5)) {
            let _ = writeln!(out, "    {}", op_line(o));
        }
        write_shrunk(out, "linearizable", &c.shrunk, &c.timeline);
    }
}
