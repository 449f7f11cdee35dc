//! Causal consistency, as causal memory (Ahamad, Neiger, Burns, Kohli and Hutto,
//! "Causal memory: definitions, implementation, and programming", 1995), for
//! registers whose written values are unique per key.
//!
//! Each process must be able to explain what it read by some order of *all*
//! writes and *its own* ops that respects the causal order and in which every
//! read returns the last value written before it. Processes may disagree on the
//! order of writes that are not causally related. The causal order is program
//! order and reads-from, closed transitively: `(po ∪ wr)+`.
//!
//! ```text
//!   p0 |--write x 1--|                          IRIW: causal, not sequential.
//!   p1 |--write y 1--|                          p2 saw x before y, p3 y before x;
//!   p2 |-read x 1-| |-read y null-|             the writes are not causally
//!   p3 |-read y 1-| |-read x null-|             related, so each may see either first
//!
//!   p0 |--write x 1--|                          not causal: p2 saw y=2, which p1
//!   p1 |-read x 1-| |--write y 2--|             wrote after seeing x=1, and then
//!   p2 |-read y 2-| |-read x null-|             read x as never written
//! ```
//!
//! With unique values, reads-from is known, and the check is polynomial: a
//! history is causal memory exactly when it has none of the bad patterns of
//! Bouajjani, Enea, Guerraoui and Hamza, "On verifying causal consistency"
//! (POPL 2017), which this module looks for in this order:
//!
//! - `ThinAirRead`: a read of a value no op wrote (a `fail`ed write did not happen);
//! - `CyclicCO`: the causal order has a cycle;
//! - `WriteCOInitRead`: a read of the initial value after, causally, a write of
//!   the key;
//! - `WriteCORead`: a read of `x=1` after, causally, a write `x=2` that itself came
//!   causally after `x=1`;
//! - `WriteHBInitRead`, `CyclicHB`: per process `p`, the order `p`'s view must
//!   respect ("happens before" for `p`: the causal order among the ops in the
//!   causal past of `p`'s last op, plus, for each read of `p` returning `x=v`,
//!   every write of `x` that comes before the read also comes before the write of
//!   `v`, closed transitively) puts a write of `x` before a read of `p` that
//!   returned the initial value, or has a cycle.
//!
//! The first four are causal consistency's; the last two make it causal memory.
//!
//! Outcomes as everywhere: `fail` ops did not happen; an indeterminate write (or
//! cas) happened if some op read its value, and otherwise is left out (a write
//! nobody read cannot be what makes a process's view impossible). A cas is a read
//! of its expected value followed by a write of its new value: causal memory has
//! no atomic read-modify-write. Values written twice to one key, or a write of the
//! initial value, make reads-from ambiguous: the check refuses such histories
//! rather than guess.

use crate::linear::Deadline;
use crate::model::{Register, RegisterOp, ValueId};
use crate::opref::{op_ref, timeline, OpRef};
use crate::prepare::{self, Partition};
use crate::CheckError;
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::History;
use std::collections::{HashMap, HashSet, VecDeque};

/// Why a history is not causal memory: one of Bouajjani et al.'s bad patterns.
#[derive(Debug, Clone, Serialize)]
pub struct CausalCounterexample {
    /// The bad pattern: `ThinAirRead`, `CyclicCO`, `WriteCOInitRead`,
    /// `WriteCORead`, `WriteHBInitRead` or `CyclicHB`.
    pub pattern: &'static str,
    /// For `WriteHBInitRead` and `CyclicHB`: the process whose view has no order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<i64>,
    /// One sentence, e.g. "p2 read x as never written after reading y=2, which p1
    /// wrote after reading x=1, which p0 wrote".
    pub summary: String,
    /// The orders that make the pattern, each with why it holds.
    pub steps: Vec<CausalStep>,
    /// The ops involved, in history order.
    pub ops: Vec<OpRef>,
    /// `ops` drawn as a timeline, the offending read marked.
    pub timeline: String,
}

/// One order in a counterexample: `before` comes before `after`.
#[derive(Debug, Clone, Serialize)]
pub struct CausalStep {
    pub before: OpRef,
    pub after: OpRef,
    /// `program order` (same process), `reads from` (`after` returned what
    /// `before` wrote), or `view order` (two writes of one key that a process
    /// must see in this order, because of `because`).
    pub why: &'static str,
    /// For `view order`: the read that forces it (it returned `after`'s value
    /// although `before` came before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<OpRef>,
}

pub(crate) enum CausalOutcome {
    Valid,
    Invalid(Box<CausalCounterexample>),
    Unknown,
}

/// A read or a write that happened. A cas is two nodes: its read, then its write.
#[derive(Debug, Clone, Copy)]
struct Node {
    part: usize,
    call: usize,
    process: i64,
    /// Invocation index in the history, then 0 (read) or 1 (write) within a cas.
    order: (usize, u8),
    write: bool,
    value: ValueId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Po,
    Wr,
    /// Derived for one process's view, because of this read node.
    View(usize),
}

struct Graph<'a> {
    model: &'a Register,
    history: &'a History,
    parts: &'a [Partition<Register>],
    nodes: Vec<Node>,
    /// Base edges: program order (to the next op of the process) and reads-from.
    succ: Vec<Vec<(usize, Edge)>>,
    pred: Vec<Vec<(usize, Edge)>>,
    /// For each read node: the write node it read from, or `None` for the initial
    /// value. Writes map to `None` too.
    source: Vec<Option<usize>>,
    /// Write nodes per key.
    writes: Vec<Vec<usize>>,
}

/// Decides causal memory for a register history with unique written values.
pub(crate) fn check(
    model: &Register,
    history: &History,
    init: &Value,
    deadline: &Deadline,
) -> Result<(CausalOutcome, usize), CheckError> {
    let parts = prepare::partitions(model, history, init)?;
    let keys = parts.len();
    let graph = build(model, history, &parts)?;
    let graph = match graph {
        Ok(g) => g,
        Err(thin_air) => return Ok((CausalOutcome::Invalid(Box::new(thin_air)), keys)),
    };
    Ok((graph.decide(deadline), keys))
}

/// The nodes and base edges, or a thin-air read.
fn build<'a>(
    model: &'a Register,
    history: &'a History,
    parts: &'a [Partition<Register>],
) -> Result<Result<Graph<'a>, CausalCounterexample>, CheckError> {
    let line = |pair: usize| history.line(history.pairs()[pair].invoke);
    let mut nodes = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        // Unique values: who writes what.
        let mut writer: HashMap<ValueId, usize> = HashMap::new();
        for (c, call) in part.calls.iter().enumerate() {
            let v = match call.op {
                RegisterOp::Write(v) | RegisterOp::Cas(_, v) => v,
                RegisterOp::Read(_) => continue,
            };
            let key = part.key.as_ref().map(|k| k.to_json());
            if v == part.init {
                return Err(CheckError::NotUnique {
                    file: history.source().to_string(),
                    line: line(call.pair),
                    key,
                    value: part.values.get(v).clone(),
                    first_line: None,
                });
            }
            if let Some(&first) = writer.get(&v) {
                return Err(CheckError::NotUnique {
                    file: history.source().to_string(),
                    line: line(call.pair),
                    key,
                    value: part.values.get(v).clone(),
                    first_line: Some(line(part.calls[first].pair)),
                });
            }
            writer.insert(v, c);
        }
        // Which ops happened: `ok` ones, and indeterminate writes whose value an op
        // that happened read (a cas that happened read its expected value in turn).
        let mut happened: Vec<bool> = part.calls.iter().map(|c| c.required).collect();
        let mut todo: Vec<ValueId> = part
            .calls
            .iter()
            .filter(|c| c.required)
            .filter_map(|c| match c.op {
                RegisterOp::Read(v) | RegisterOp::Cas(v, _) => Some(v),
                RegisterOp::Write(_) => None,
            })
            .collect();
        while let Some(v) = todo.pop() {
            if let Some(&c) = writer.get(&v) {
                if !happened[c] {
                    happened[c] = true;
                    if let RegisterOp::Cas(old, _) = part.calls[c].op {
                        todo.push(old);
                    }
                }
            }
        }
        for (c, call) in part.calls.iter().enumerate() {
            if !happened[c] || call.process < 0 {
                continue;
            }
            let invoke = history.pairs()[call.pair].invoke;
            let node = |sub: u8, write: bool, value: ValueId| Node {
                part: k,
                call: c,
                process: call.process,
                order: (invoke, sub),
                write,
                value,
            };
            match call.op {
                RegisterOp::Read(v) => nodes.push(node(0, false, v)),
                RegisterOp::Write(v) => nodes.push(node(1, true, v)),
                RegisterOp::Cas(old, new) => {
                    nodes.push(node(0, false, old));
                    nodes.push(node(1, true, new));
                }
            }
        }
    }
    nodes.sort_by_key(|n| (n.process, n.order));
    let n = nodes.len();
    let mut g = Graph {
        model,
        history,
        parts,
        succ: vec![Vec::new(); n],
        pred: vec![Vec::new(); n],
        source: vec![None; n],
        writes: vec![Vec::new(); parts.len()],
        nodes,
    };
    let mut writer: HashMap<(usize, ValueId), usize> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if node.write {
            writer.insert((node.part, node.value), i);
            g.writes[node.part].push(i);
        }
    }
    for i in 0..n {
        if i + 1 < n && g.nodes[i + 1].process == g.nodes[i].process {
            g.succ[i].push((i + 1, Edge::Po));
            g.pred[i + 1].push((i, Edge::Po));
        }
    }
    // Thin-air reads first, in history order.
    let mut thin_air = None;
    for i in 0..n {
        let node = g.nodes[i];
        if node.write || node.value == parts[node.part].init {
            continue;
        }
        match writer.get(&(node.part, node.value)) {
            Some(&w) => {
                g.source[i] = Some(w);
                g.succ[w].push((i, Edge::Wr));
                g.pred[i].push((w, Edge::Wr));
            }
            None => {
                if thin_air.is_none_or(|t: usize| g.nodes[t].order.0 > node.order.0) {
                    thin_air = Some(i);
                }
            }
        }
    }
    if let Some(r) = thin_air {
        let summary = format!(
            "{} {}, which no op that did not fail wrote",
            g.who(r),
            g.verb(r, false)
        );
        return Ok(Err(g.counterexample("ThinAirRead", None, summary, &[], r)));
    }
    Ok(Ok(g))
}

impl Graph<'_> {
    fn decide(&self, deadline: &Deadline) -> CausalOutcome {
        if let Some(cycle) = self.cycle(None, &HashMap::new()) {
            let summary = format!("a cycle of causality: {}", self.tell(&cycle));
            return self.invalid("CyclicCO", None, summary, &cycle, cycle[0].0);
        }
        let clocks = self.clocks();
        if let Some(c) = self.write_co_reads(&clocks, deadline) {
            return c;
        }
        let mut processes: Vec<i64> = self.nodes.iter().map(|n| n.process).collect();
        processes.dedup();
        for p in processes {
            if deadline.expired() {
                return CausalOutcome::Unknown;
            }
            if let Some(c) = self.view_of(p, deadline) {
                return c;
            }
        }
        CausalOutcome::Valid
    }

    /// `WriteCOInitRead` and `WriteCORead`, from the causal order alone.
    fn write_co_reads(&self, clocks: &Clocks, deadline: &Deadline) -> Option<CausalOutcome> {
        let none = HashMap::new();
        let mut reads: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].write)
            .collect();
        reads.sort_by_key(|&i| self.nodes[i].order);
        for r in reads {
            if deadline.expired() {
                return Some(CausalOutcome::Unknown);
            }
            let part = self.nodes[r].part;
            let past = |w: usize| clocks.before(w, r);
            match self.source[r] {
                None => {
                    let Some(w) = self.writes[part].iter().copied().find(|&w| past(w)) else {
                        continue;
                    };
                    let path = self.path(w, r, None, &none);
                    let summary = self.tell(&path);
                    return Some(self.invalid("WriteCOInitRead", None, summary, &path, r));
                }
                Some(s) => {
                    let Some(w) = self.writes[part]
                        .iter()
                        .copied()
                        .find(|&w| w != s && past(w) && clocks.before(s, w))
                    else {
                        continue;
                    };
                    let to_read = self.path(w, r, None, &none);
                    let overwrite = self.path(s, w, None, &none);
                    let summary = format!(
                        "{}; and {}, so {} had been overwritten",
                        self.tell(&to_read),
                        self.tell(&overwrite),
                        self.value(s)
                    );
                    let mut steps = overwrite;
                    steps.extend(to_read.into_iter().skip(1));
                    return Some(self.invalid("WriteCORead", None, summary, &steps, r));
                }
            }
        }
        None
    }

    /// Vector clocks of the causal order (acyclic by now): for each node and each
    /// process, how many of that process's ops are in the node's causal past,
    /// itself included. `a <co b` is then one comparison.
    fn clocks(&self) -> Clocks {
        let n = self.nodes.len();
        let mut proc_of = vec![0usize; n];
        let mut pos = vec![0u32; n];
        let mut procs = 0;
        for i in 0..n {
            if i > 0 && self.nodes[i].process == self.nodes[i - 1].process {
                proc_of[i] = proc_of[i - 1];
                pos[i] = pos[i - 1] + 1;
            } else if i > 0 {
                proc_of[i] = proc_of[i - 1] + 1;
            }
            procs = proc_of[i] + 1;
        }
        // Kahn's order over program order and reads-from.
        let mut indegree: Vec<usize> = self.pred.iter().map(Vec::len).collect();
        let mut todo: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut vc = vec![0u32; n * procs];
        while let Some(i) = todo.pop() {
            for &(j, _) in &self.pred[i] {
                for q in 0..procs {
                    let v = vc[j * procs + q];
                    if v > vc[i * procs + q] {
                        vc[i * procs + q] = v;
                    }
                }
            }
            vc[i * procs + proc_of[i]] = pos[i] + 1;
            for &(j, _) in &self.succ[i] {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    todo.push(j);
                }
            }
        }
        Clocks {
            procs,
            proc_of,
            pos,
            vc,
        }
    }

    /// `WriteHBInitRead` and `CyclicHB` for process `p`: saturate the order its
    /// view must respect, then look for a cycle.
    fn view_of(&self, p: i64, deadline: &Deadline) -> Option<CausalOutcome> {
        let none = HashMap::new();
        let own: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process == p)
            .collect();
        let last = *own.last()?;
        let mut past = self.reach(last, false, None, &none);
        past[last] = true;
        let reads: Vec<usize> = own
            .iter()
            .copied()
            .filter(|&i| !self.nodes[i].write)
            .collect();
        // Derived edges: write -> write, with the read that forces each.
        let mut view: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
        let mut view_pred: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
        let mut known: HashSet<(usize, usize)> = HashSet::new();
        // Each round walks p's reads in program order, growing one set: the causal
        // past of a read includes the previous read's. Per key, it orders before
        // the source of a read only the writes found since the key's previous
        // read, and that read's source: the earlier writes already come before
        // that source, so the order follows transitively.
        let keys = self.writes.len();
        loop {
            let mut changed = false;
            let mut seen = vec![false; self.nodes.len()];
            let mut found: Vec<Vec<usize>> = vec![Vec::new(); keys];
            let mut handled = vec![0usize; keys];
            let mut last_source: Vec<Option<usize>> = vec![None; keys];
            let mut stack = Vec::new();
            for &r in &reads {
                if deadline.expired() {
                    return Some(CausalOutcome::Unknown);
                }
                stack.push(r);
                while let Some(i) = stack.pop() {
                    for (j, _) in self.edges(i, false, &view_pred) {
                        if past[j] && !seen[j] {
                            seen[j] = true;
                            if self.nodes[j].write {
                                found[self.nodes[j].part].push(j);
                            }
                            stack.push(j);
                        }
                    }
                }
                let x = self.nodes[r].part;
                let Some(s) = self.source[r] else {
                    let Some(&w) = found[x].first() else {
                        continue;
                    };
                    let path = self.path(w, r, Some(&past), &view);
                    let summary = format!(
                        "in p{p}'s view {} comes before its read of {}: {}",
                        self.value(w),
                        self.key_name(r),
                        self.tell(&path)
                    );
                    return Some(self.invalid("WriteHBInitRead", Some(p), summary, &path, r));
                };
                let fresh = found[x][handled[x]..].iter().copied();
                for w in fresh.chain(last_source[x]) {
                    if w != s && known.insert((w, s)) {
                        view.entry(w).or_default().push((s, Edge::View(r)));
                        view_pred.entry(s).or_default().push((w, Edge::View(r)));
                        changed = true;
                    }
                }
                handled[x] = found[x].len();
                last_source[x] = Some(s);
            }
            if !changed {
                break;
            }
        }
        let cycle = self.cycle(Some(&past), &view)?;
        let summary = format!(
            "p{p} can order the writes it saw in no way: {}",
            self.tell(&cycle)
        );
        let mark = cycle
            .iter()
            .find_map(|&(_, e)| match e {
                Edge::View(r) => Some(r),
                _ => None,
            })
            .unwrap_or(cycle[0].0);
        Some(self.invalid("CyclicHB", Some(p), summary, &cycle, mark))
    }

    fn edges<'e>(
        &'e self,
        i: usize,
        forward: bool,
        extra: &'e HashMap<usize, Vec<(usize, Edge)>>,
    ) -> impl Iterator<Item = (usize, Edge)> + 'e {
        let base = if forward {
            &self.succ[i]
        } else {
            &self.pred[i]
        };
        base.iter()
            .chain(extra.get(&i).into_iter().flatten())
            .copied()
    }

    /// The nodes that reach `from` (or that it reaches, `forward`), itself
    /// excluded unless on a cycle; within `within` when given.
    fn reach(
        &self,
        from: usize,
        forward: bool,
        within: Option<&[bool]>,
        extra: &HashMap<usize, Vec<(usize, Edge)>>,
    ) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut todo = vec![from];
        while let Some(i) = todo.pop() {
            for (j, _) in self.edges(i, forward, extra) {
                if !seen[j] && within.is_none_or(|w| w[j]) {
                    seen[j] = true;
                    todo.push(j);
                }
            }
        }
        seen
    }

    /// A shortest path `from` → `to`: each node with the edge that enters it (the
    /// first node's edge is meaningless, `Po`).
    fn path(
        &self,
        from: usize,
        to: usize,
        within: Option<&[bool]>,
        extra: &HashMap<usize, Vec<(usize, Edge)>>,
    ) -> Vec<(usize, Edge)> {
        let mut parent: HashMap<usize, (usize, Edge)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(i) = queue.pop_front() {
            if i == to && !parent.is_empty() {
                break;
            }
            for (j, e) in self.edges(i, true, extra) {
                if j != from && !parent.contains_key(&j) && within.is_none_or(|w| w[j]) {
                    parent.insert(j, (i, e));
                    queue.push_back(j);
                }
            }
        }
        let mut path = vec![];
        let mut at = to;
        while at != from {
            let Some(&(prev, e)) = parent.get(&at) else {
                break;
            };
            path.push((at, e));
            at = prev;
        }
        path.push((from, Edge::Po));
        path.reverse();
        path
    }

    /// A cycle of base edges plus `extra`, among the nodes `within`: the nodes
    /// from its first, each with the edge entering it, the first repeated last.
    fn cycle(
        &self,
        within: Option<&[bool]>,
        extra: &HashMap<usize, Vec<(usize, Edge)>>,
    ) -> Option<Vec<(usize, Edge)>> {
        let n = self.nodes.len();
        let inside = |i: usize| within.is_none_or(|w| w[i]);
        let mut indegree = vec![0usize; n];
        for i in (0..n).filter(|&i| inside(i)) {
            for (j, _) in self.edges(i, true, extra) {
                if inside(j) {
                    indegree[j] += 1;
                }
            }
        }
        let mut todo: Vec<usize> = (0..n).filter(|&i| inside(i) && indegree[i] == 0).collect();
        let mut done = vec![false; n];
        while let Some(i) = todo.pop() {
            done[i] = true;
            for (j, _) in self.edges(i, true, extra) {
                if inside(j) {
                    indegree[j] -= 1;
                    if indegree[j] == 0 {
                        todo.push(j);
                    }
                }
            }
        }
        // Every node left has a predecessor left: walk back until one repeats.
        let start = (0..n).find(|&i| inside(i) && !done[i])?;
        let back_extra = reverse(extra);
        let mut visited: HashMap<usize, usize> = HashMap::new();
        let mut walk = vec![start];
        let mut at = start;
        loop {
            visited.insert(at, walk.len() - 1);
            let prev = self
                .edges(at, false, &back_extra)
                .map(|(j, _)| j)
                .find(|&j| inside(j) && !done[j])?;
            if let Some(&k) = visited.get(&prev) {
                // walk[k..] then prev: a cycle, backwards.
                let mut back: Vec<usize> = walk[k..].to_vec();
                back.push(prev);
                back.reverse();
                let mut cycle = vec![(back[0], Edge::Po)];
                for w in back.windows(2) {
                    let e = self
                        .edges(w[0], true, extra)
                        .find(|&(j, _)| j == w[1])
                        .map_or(Edge::Po, |(_, e)| e);
                    cycle.push((w[1], e));
                }
                return Some(cycle);
            }
            walk.push(prev);
            at = prev;
        }
    }

    fn invalid(
        &self,
        pattern: &'static str,
        process: Option<i64>,
        summary: String,
        path: &[(usize, Edge)],
        mark: usize,
    ) -> CausalOutcome {
        CausalOutcome::Invalid(Box::new(
            self.counterexample(pattern, process, summary, path, mark),
        ))
    }

    fn counterexample(
        &self,
        pattern: &'static str,
        process: Option<i64>,
        summary: String,
        path: &[(usize, Edge)],
        mark: usize,
    ) -> CausalCounterexample {
        let steps = path
            .windows(2)
            .map(|w| CausalStep {
                before: self.op(w[0].0),
                after: self.op(w[1].0),
                why: match w[1].1 {
                    Edge::Po => "program order",
                    Edge::Wr => "reads from",
                    Edge::View(_) => "view order",
                },
                because: match w[1].1 {
                    Edge::View(r) => Some(self.op(r)),
                    _ => None,
                },
            })
            .collect();
        // The ops involved, each once (a cas's read and write are one op).
        let mut involved: Vec<usize> = path.iter().map(|&(i, _)| i).collect();
        involved.extend(path.iter().filter_map(|&(_, e)| match e {
            Edge::View(r) => Some(r),
            _ => None,
        }));
        involved.push(mark);
        let mut seen = HashSet::new();
        let mut ops: Vec<(usize, OpRef)> = involved
            .into_iter()
            .filter(|&i| seen.insert((self.nodes[i].part, self.nodes[i].call)))
            .map(|i| (i, self.op(i)))
            .collect();
        ops.sort_by_key(|(_, o)| o.span.0);
        let marked = ops.iter().position(|&(i, _)| {
            self.nodes[i].call == self.nodes[mark].call
                && self.nodes[i].part == self.nodes[mark].part
        });
        let ops: Vec<OpRef> = ops.into_iter().map(|(_, o)| o).collect();
        CausalCounterexample {
            pattern,
            process,
            summary,
            steps,
            timeline: timeline(&ops, marked).replace("cannot be linearized", "this read"),
            ops,
        }
    }

    fn op(&self, i: usize) -> OpRef {
        let node = self.nodes[i];
        let part = &self.parts[node.part];
        let mut op = op_ref(self.model, self.history, part, &part.calls[node.call]);
        // Causality crosses keys: say which key each op is on (`read x 1`).
        if part.key.is_some() {
            op.label = op
                .label
                .replacen(' ', &format!(" {} ", self.key_name(i)), 1);
        }
        op
    }

    /// `x` for a keyed history, `the register` otherwise.
    fn key_name(&self, i: usize) -> String {
        match &self.parts[self.nodes[i].part].key {
            Some(k) => match k.to_json() {
                Value::String(s) => s,
                other => other.to_string(),
            },
            None => "the register".to_string(),
        }
    }

    /// `x=1`, or `1` without keys.
    fn value(&self, i: usize) -> String {
        let node = self.nodes[i];
        let part = &self.parts[node.part];
        let v = part.values.get(node.value);
        match &part.key {
            Some(_) => format!("{}={v}", self.key_name(i)),
            None => v.to_string(),
        }
    }

    fn who(&self, i: usize) -> String {
        format!("p{}", self.nodes[i].process)
    }

    /// `read x=1`, `read x as never written`, `wrote x=1`; `-ing` forms with
    /// `gerund`.
    fn verb(&self, i: usize, gerund: bool) -> String {
        let node = self.nodes[i];
        let (read, write) = if gerund {
            ("reading", "writing")
        } else {
            ("read", "wrote")
        };
        if node.write {
            format!("{write} {}", self.value(i))
        } else if node.value == self.parts[node.part].init && self.source[i].is_none() {
            match &self.parts[node.part].key {
                Some(_) => format!("{read} {} as never written", self.key_name(i)),
                None => format!("{read} the initial value"),
            }
        } else {
            format!("{read} {}", self.value(i))
        }
    }

    /// A path told backwards from its last op: "p2 read x as never written after
    /// reading y=2, which p1 wrote after reading x=1, which p0 wrote".
    fn tell(&self, path: &[(usize, Edge)]) -> String {
        let Some(&(last, _)) = path.last() else {
            return String::new();
        };
        let mut out = format!("{} {}", self.who(last), self.verb(last, false));
        let mut i = path.len() - 1;
        while i > 0 {
            match path[i].1 {
                Edge::Wr => {
                    out.push_str(&format!(", which {} wrote", self.who(path[i - 1].0)));
                    i -= 1;
                }
                Edge::Po => {
                    // Skip to the start of this run of program order.
                    let mut j = i - 1;
                    while j > 0 && path[j].1 == Edge::Po {
                        j -= 1;
                    }
                    out.push_str(&format!(" after {}", self.verb(path[j].0, true)));
                    i = j;
                }
                Edge::View(r) => {
                    let q = self.nodes[r].process;
                    let a = self.value(path[i - 1].0);
                    out.push_str(&format!(
                        ", which p{q} must see after {a} (it read {} after {a} was written)",
                        self.value(path[i].0),
                    ));
                    i -= 1;
                    if i > 0 {
                        out.push_str(&format!("; {} wrote {a}", self.who(path[i].0)));
                    }
                }
            }
        }
        out
    }
}

/// The causal order as vector clocks (see [`Graph::clocks`]).
struct Clocks {
    procs: usize,
    proc_of: Vec<usize>,
    pos: Vec<u32>,
    vc: Vec<u32>,
}

impl Clocks {
    /// `a <co b`: `a` is in `b`'s causal past, and is not `b`.
    fn before(&self, a: usize, b: usize) -> bool {
        a != b && self.vc[b * self.procs + self.proc_of[a]] > self.pos[a]
    }
}

fn reverse(extra: &HashMap<usize, Vec<(usize, Edge)>>) -> HashMap<usize, Vec<(usize, Edge)>> {
    let mut out: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
    for (&from, tos) in extra {
        for &(to, e) in tos {
            out.entry(to).or_default().push((from, e));
        }
    }
    out
}
