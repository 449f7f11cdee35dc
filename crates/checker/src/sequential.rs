//! Sequential consistency (Lamport 1979): some total order of the ops that keeps each
//! process's own order (its *program order*) is legal for the model. Real time does
//! not count, so a read may return a value that was overwritten long ago, as long as
//! every process sees one story.
//!
//! ```text
//!   p0 |--write 1--|                        sequential: write 1, read 0... no:
//!   p1                |--read null--|       read null, write 1 is a legal order
//!                                           (not linearizable: the read began after
//!                                           the write finished)
//!
//!   p0 |--write x 1--| |--read y null--|    store buffering: each key alone is
//!   p1 |--write y 1--| |--read x null--|    fine, the whole is not sequential
//! ```
//!
//! Unlike linearizability, sequential consistency is not compositional: the store
//! buffering history above is sequential key by key and not as a whole. So the
//! whole history is one object here, whose state is the product of every key's
//! model state.
//!
//! Jepsen's semantics carry over: `fail` ops are dropped; an indeterminate op (`info`
//! or never completed) may have taken effect anywhere after its process's earlier
//! ops, or not at all (its process never invokes again). Pruning (see `prepare`)
//! applies as for linearizability: an unobserved indeterminate write cannot matter,
//! and the only writer of an observed value took effect.
//!
//! Two stages:
//!
//! 1. **A graph that can prove a violation** (register-like models, values written
//!    once per key): nodes are ops; edges are program order, reads-from (the writer
//!    of a value before its readers) and the write orders those force. If `w'` must
//!    come before a read `r` of `w`'s value, then `w'` comes before `w`; if `w` must
//!    come before `w'`, then `r` comes before `w'`; a read of the initial value
//!    comes before every write that took effect. Derived edges feed back until
//!    nothing changes. A cycle means no legal order exists. No cycle proves nothing.
//! 2. **A memoized search** over configurations (how far each process has got, which
//!    indeterminate ops were placed, the model states): depth first, trying the
//!    enabled ops in invocation order, so a history that is close to linearizable
//!    is walked almost straight through. The `Deadline` bounds time and memory.

use crate::linear::Deadline;
use crate::model::{Model, ValueId};
use crate::opref::{timeline, OpRef};
use crate::prepare::{self, Call, Partition};
use crate::CheckError;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Serialize;
use serde_json::Value;
use splitbrain_history::{History, Key, OpType};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// One op as the sequential search sees it.
#[derive(Debug, Clone)]
pub(crate) struct SeqOp<O> {
    /// Index into `Problem::parts`.
    pub key: u32,
    /// Index into that key's pruned calls.
    pub index: u32,
    pub op: O,
    pub process: i64,
    /// Invocation position: program order within a process.
    pub call: u64,
    /// Completed `ok`: it sits in its process's program order.
    pub ok: bool,
    /// Must be placed (ok, or pruning proved it took effect).
    pub required: bool,
}

/// The whole history, compiled: per key its partition and pruned calls, and every
/// op in invocation order.
pub(crate) struct Problem<M: Model> {
    pub parts: Vec<Partition<M>>,
    pub calls: Vec<Vec<Call<M::Op>>>,
    pub ops: Vec<SeqOp<M::Op>>,
}

impl<M: Model> Problem<M> {
    pub fn new(model: &M, history: &History, init: &Value) -> Result<Problem<M>, CheckError> {
        let parts = prepare::partitions(model, history, init)?;
        let calls: Vec<Vec<Call<M::Op>>> = parts
            .iter()
            .map(|p| prepare::prune(model, &p.calls, &p.init, &p.values))
            .collect();
        let all_ops = history.ops();
        let mut ops = Vec::new();
        for (k, cs) in calls.iter().enumerate() {
            for (i, c) in cs.iter().enumerate() {
                let pair = history.pairs()[c.pair];
                let ok = pair
                    .completion
                    .is_some_and(|e| all_ops[e].kind == OpType::Ok);
                ops.push(SeqOp {
                    key: k as u32,
                    index: i as u32,
                    op: c.op.clone(),
                    process: c.process,
                    call: c.call,
                    ok,
                    required: c.required,
                });
            }
        }
        ops.sort_by_key(|o| o.call);
        Ok(Problem { parts, calls, ops })
    }

    pub fn inits(&self) -> Vec<M::State> {
        self.parts.iter().map(|p| p.init.clone()).collect()
    }

    pub fn op_ref(&self, model: &M, history: &History, o: &SeqOp<M::Op>) -> OpRef {
        let k = o.key as usize;
        crate::opref::op_ref(
            model,
            history,
            &self.parts[k],
            &self.calls[k][o.index as usize],
        )
    }

    /// The states of every key, as JSON: the bare state for an unkeyed history,
    /// `{key: state}` otherwise.
    pub fn describe_states(&self, model: &M, states: &[M::State]) -> Value {
        match (self.parts.len(), self.parts.first()) {
            (1, Some(p)) if p.key.is_none() => model.describe_state(&states[0], &p.values),
            _ => Value::Object(
                self.parts
                    .iter()
                    .zip(states)
                    .map(|(p, s)| {
                        (
                            p.key.as_ref().map_or("null".into(), Key::to_string),
                            model.describe_state(s, &p.values),
                        )
                    })
                    .collect(),
            ),
        }
    }
}

/// Where a failed search got furthest.
#[derive(Debug, Clone)]
pub(crate) struct Blocked<S> {
    /// The longest legal prefix that respects program order (indices into the ops).
    pub prefix: Vec<usize>,
    /// The ops that could have come next, none of them legal there.
    pub next: Vec<usize>,
    pub states: Vec<S>,
}

#[derive(Debug)]
pub(crate) enum SeqOutcome<S> {
    /// A legal order: indices into the ops.
    Valid(Vec<usize>),
    /// The graph has a cycle through these ops.
    Cycle(Vec<usize>),
    Invalid(Blocked<S>),
    Unknown,
}

/// Decides whether `ops` (sorted by invocation) are sequentially consistent.
pub(crate) fn decide<M: Model>(
    model: &M,
    ops: &[SeqOp<M::Op>],
    inits: &[M::State],
    values_init: &[Option<ValueId>],
    deadline: &Deadline,
) -> SeqOutcome<M::State> {
    match forced_orders(model, ops, values_init) {
        Err(cycle) => SeqOutcome::Cycle(cycle),
        Ok(edges) => search(model, ops, inits, &edges, deadline),
    }
}

// ---------------------------------------------------------------------------
// Linearizable, hence sequential.

/// A sequential order of all ops from per-key linearizations (indices into
/// `problem.calls[k]`), or `None` if they cannot be merged. Linearizability is
/// compositional, so they can: order every op after its key's previous op and
/// after every op that returned before it was invoked, and sort topologically. Real
/// time enters through a chain of event nodes, so the graph stays linear in size.
pub(crate) fn merge_linearizations<M: Model>(
    problem: &Problem<M>,
    orders: &[Vec<usize>],
) -> Option<Vec<usize>> {
    let mut index: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    for (i, o) in problem.ops.iter().enumerate() {
        index.insert((o.key, o.index), i);
    }
    let mut g: DiGraph<Option<usize>, ()> = DiGraph::new();
    let mut node: FxHashMap<usize, NodeIndex> = FxHashMap::default();
    // Events of the placed ops: (position, is return, op).
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (k, order) in orders.iter().enumerate() {
        let mut prev: Option<NodeIndex> = None;
        for &ci in order {
            let i = *index.get(&(k as u32, ci as u32))?;
            let n = g.add_node(Some(i));
            node.insert(i, n);
            if let Some(p) = prev {
                g.add_edge(p, n, ());
            }
            prev = Some(n);
            let c = &problem.calls[k][ci];
            events.push((c.call, false, i));
            if let Some(r) = c.ret {
                events.push((r, true, i));
            }
        }
    }
    events.sort_unstable();
    let mut last_time: Option<NodeIndex> = None;
    for &(_, is_ret, i) in &events {
        let t = g.add_node(None);
        if let Some(l) = last_time {
            g.add_edge(l, t, ());
        }
        last_time = Some(t);
        if is_ret {
            g.add_edge(node[&i], t, ());
        } else {
            g.add_edge(t, node[&i], ());
        }
    }
    let sorted = petgraph::algo::toposort(&g, None).ok()?;
    Some(sorted.into_iter().filter_map(|n| g[n]).collect())
}

// ---------------------------------------------------------------------------
// The graph.

/// Largest history the graph stage handles: it keeps a reachability bitset per op.
const GRAPH_MAX: usize = 8192;

/// Ops on a cycle of forced orders, or `None` when the graph finds none (or does
/// not apply: a model that is not register-like, or too many ops).
/// `init_ids[k]`: the interned initial value of key `k`.
pub(crate) fn cycle<M: Model>(
    model: &M,
    ops: &[SeqOp<M::Op>],
    init_ids: &[Option<ValueId>],
) -> Option<Vec<usize>> {
    forced_orders(model, ops, init_ids).err()
}

/// The orders every legal sequential order must respect (edges `a` before `b`),
/// or `Err` with ops on a cycle of them. Empty when the graph does not apply.
pub(crate) fn forced_orders<M: Model>(
    model: &M,
    ops: &[SeqOp<M::Op>],
    init_ids: &[Option<ValueId>],
) -> Result<Vec<(usize, usize)>, Vec<usize>> {
    let n = ops.len();
    let register_like = ops
        .iter()
        .any(|o| model.writes(&o.op).is_some() || model.observes(&o.op).is_some());
    if n == 0 || n > GRAPH_MAX || !register_like {
        return Ok(Vec::new());
    }
    // Writers of each (key, value).
    let mut writers: FxHashMap<(u32, ValueId), Vec<usize>> = FxHashMap::default();
    for (i, o) in ops.iter().enumerate() {
        if let Some(v) = model.writes(&o.op) {
            writers.entry((o.key, v)).or_default().push(i);
        }
    }
    let mut by_key: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for (i, o) in ops.iter().enumerate() {
        by_key.entry(o.key).or_default().push(i);
    }
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(n, 2 * n);
    for _ in 0..n {
        g.add_node(());
    }
    let mut edges: FxHashSet<(usize, usize)> = FxHashSet::default();
    let mut add = |g: &mut DiGraph<(), ()>, a: usize, b: usize| -> bool {
        if a != b && edges.insert((a, b)) {
            g.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            true
        } else {
            false
        }
    };
    // Program order: each op after its process's previous `ok` op.
    let mut last: FxHashMap<i64, usize> = FxHashMap::default();
    for (i, o) in ops.iter().enumerate() {
        if let Some(&p) = last.get(&o.process) {
            add(&mut g, p, i);
        }
        if o.ok {
            last.insert(o.process, i);
        }
    }
    // Reads: (reader, its unique writer or None for the initial value).
    let mut reads: Vec<(usize, Option<usize>)> = Vec::new();
    for (r, o) in ops.iter().enumerate() {
        if !o.required {
            continue;
        }
        let Some(v) = model.observes(&o.op) else {
            continue;
        };
        let ws = writers.get(&(o.key, v)).map_or(&[][..], Vec::as_slice);
        let is_init = init_ids[o.key as usize] == Some(v);
        match (ws, is_init) {
            ([], true) => reads.push((r, None)),
            // A value nobody wrote: no order can explain it.
            ([], false) => return Err(vec![r]),
            ([w], false) if *w == r => return Err(vec![r]),
            ([w], false) => {
                add(&mut g, *w, r);
                reads.push((r, Some(*w)));
            }
            _ => {}
        }
    }
    let words = n.div_ceil(64);
    for _round in 0..n {
        let order = match petgraph::algo::toposort(&g, None) {
            Ok(order) => order,
            Err(c) => return Err(cycle_through(&g, c.node_id().index())),
        };
        // reach[a] holds every b with a path a → b.
        let mut reach = vec![0u64; n * words];
        for &v in order.iter().rev() {
            let a = v.index();
            for s in g.neighbors(v) {
                let b = s.index();
                reach[a * words + b / 64] |= 1 << (b % 64);
                for w in 0..words {
                    let x = reach[b * words + w];
                    reach[a * words + w] |= x;
                }
            }
        }
        let before = |a: usize, b: usize| reach[a * words + b / 64] & (1 << (b % 64)) != 0;
        let mut changed = false;
        for &(r, w) in &reads {
            let key = ops[r].key;
            for &w2 in &by_key[&key] {
                if w2 == r || Some(w2) == w || model.writes(&ops[w2].op).is_none() {
                    continue;
                }
                match w {
                    Some(w) => {
                        // w2 before the read: it was overwritten by w.
                        if before(w2, r) {
                            changed |= add(&mut g, w2, w);
                        }
                        // w2 after w (and took effect): the read came before it.
                        if ops[w2].required && before(w, w2) {
                            changed |= add(&mut g, r, w2);
                        }
                    }
                    None => {
                        if ops[w2].required {
                            changed |= add(&mut g, r, w2);
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    use petgraph::visit::EdgeRef;
    Ok(g.edge_references()
        .map(|e| (e.source().index(), e.target().index()))
        .collect())
}

/// Some cycle through `start` (which toposort found on one).
fn cycle_through(g: &DiGraph<(), ()>, start: usize) -> Vec<usize> {
    // Breadth-first from start's successors back to start, keeping parents.
    let mut parent: FxHashMap<usize, usize> = FxHashMap::default();
    let mut queue = std::collections::VecDeque::new();
    for s in g.neighbors(NodeIndex::new(start)) {
        if parent.insert(s.index(), start).is_none() {
            queue.push_back(s.index());
        }
    }
    while let Some(a) = queue.pop_front() {
        if a == start {
            let mut path = vec![start];
            let mut at = parent[&start];
            while at != start {
                path.push(at);
                at = parent[&at];
            }
            path.reverse();
            return path;
        }
        for s in g.neighbors(NodeIndex::new(a)) {
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(s.index()) {
                e.insert(a);
                queue.push_back(s.index());
            }
        }
    }
    vec![start]
}

// ---------------------------------------------------------------------------
// The search.

struct MemoKey<S> {
    hash: u64,
    pos: Box<[u32]>,
    placed: Box<[u64]>,
    states: Box<[S]>,
}

impl<S: Eq> PartialEq for MemoKey<S> {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash
            && self.pos == o.pos
            && self.placed == o.placed
            && self.states == o.states
    }
}
impl<S: Eq> Eq for MemoKey<S> {}
impl<S> Hash for MemoKey<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// Where the search stands, besides the states: what placing an op changes and
/// taking it back undoes.
struct Cursor {
    /// Per process slot, how many of its `ok` ops are placed.
    pos: Vec<u32>,
    /// The floating (indeterminate) ops placed, one bit each.
    placed: Vec<u64>,
    /// Per op, how many of its forced predecessors are not placed yet.
    preds_left: Vec<u32>,
    /// `ok` ops not placed yet.
    det_left: usize,
    /// Required floating ops not placed yet.
    req_left: usize,
}

struct Frame {
    /// Enabled ops at this configuration, in invocation order.
    cands: Vec<usize>,
    next: usize,
    /// The op whose placement led here (none at the root).
    placed: Option<usize>,
}

pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[SeqOp<M::Op>],
    inits: &[M::State],
    forced: &[(usize, usize)],
    deadline: &Deadline,
) -> SeqOutcome<M::State> {
    // Forced orders (from the graph): an op waits until its predecessors are
    // placed. An op with a successor must take effect in every legal order (only
    // ops proven to have happened get outgoing edges), so it is required.
    let mut preds_left = vec![0u32; ops.len()];
    let mut succs: Vec<Vec<u32>> = vec![Vec::new(); ops.len()];
    let mut must = vec![false; ops.len()];
    for &(a, b) in forced {
        preds_left[b] += 1;
        succs[a].push(b as u32);
        must[a] = true;
    }
    let required = |i: usize| ops[i].required || must[i];
    // Program order: per process, its `ok` ops; indeterminate ops float.
    let mut slot_of_process: BTreeMap<i64, usize> = BTreeMap::new();
    let mut procs: Vec<Vec<usize>> = Vec::new();
    // For each op: its process slot, and (floating ops) its bit and how many of its
    // process's ops must come first.
    let mut slot = vec![0usize; ops.len()];
    let mut bit = vec![usize::MAX; ops.len()];
    let mut after = vec![0u32; ops.len()];
    let mut floating = 0usize;
    let mut required_floating = 0usize;
    for (i, o) in ops.iter().enumerate() {
        let s = *slot_of_process.entry(o.process).or_insert_with(|| {
            procs.push(Vec::new());
            procs.len() - 1
        });
        slot[i] = s;
        if o.ok {
            procs[s].push(i);
        } else {
            bit[i] = floating;
            after[i] = procs[s].len() as u32;
            floating += 1;
            required_floating += usize::from(required(i));
        }
    }
    let floaters: Vec<usize> = (0..ops.len()).filter(|&i| !ops[i].ok).collect();
    let mut cur = Cursor {
        pos: vec![0u32; procs.len()],
        placed: vec![0u64; floating.div_ceil(64)],
        preds_left,
        det_left: procs.iter().map(Vec::len).sum(),
        req_left: required_floating,
    };
    let mut states: Vec<M::State> = inits.to_vec();

    // The ops that may come next. A read that is legal now is the only choice
    // offered: placing it now loses nothing, since any order that places it later
    // still works with it moved here (a read changes no state, wherever it goes),
    // and it enables its process's next op sooner. So reads never branch. (A write
    // of the current value is no read: later it would change the state.)
    let enabled = |cur: &Cursor, states: &[M::State]| {
        let mut c: Vec<usize> = procs
            .iter()
            .zip(&cur.pos)
            .filter_map(|(p, &at)| p.get(at as usize).copied())
            .collect();
        for &f in &floaters {
            let b = bit[f];
            if cur.placed[b / 64] & (1 << (b % 64)) == 0 && cur.pos[slot[f]] >= after[f] {
                c.push(f);
            }
        }
        c.retain(|&i| cur.preds_left[i] == 0);
        c.sort_unstable_by_key(|&i| ops[i].call);
        // Writes of a value some waiting op observes go first: the goal-directed
        // choice that a history close to linearizable nearly always wants.
        let wanted: Vec<(u32, ValueId)> = c
            .iter()
            .filter_map(|&i| model.observes(&ops[i].op).map(|v| (ops[i].key, v)))
            .collect();
        if !wanted.is_empty() {
            c.sort_by_key(|&i| {
                let w = model.writes(&ops[i].op).map(|v| (ops[i].key, v));
                !w.is_some_and(|w| wanted.contains(&w))
            });
        }
        let free = c.iter().copied().find(|&i| {
            let k = ops[i].key as usize;
            model.is_read(&ops[i].op)
                && model
                    .step(&states[k], &ops[i].op)
                    .is_some_and(|s| s == states[k])
        });
        match free {
            Some(i) => vec![i],
            None => c,
        }
    };
    // Places op `i` (or takes it back): positions, floating bits, forced orders.
    let shift = |cur: &mut Cursor, i: usize, on: bool| {
        if ops[i].ok {
            if on {
                cur.pos[slot[i]] += 1;
                cur.det_left -= 1;
            } else {
                cur.pos[slot[i]] -= 1;
                cur.det_left += 1;
            }
        } else {
            let b = bit[i];
            cur.placed[b / 64] ^= 1 << (b % 64);
            if required(i) {
                if on {
                    cur.req_left -= 1;
                } else {
                    cur.req_left += 1;
                }
            }
        }
        for &s in &succs[i] {
            if on {
                cur.preds_left[s as usize] -= 1;
            } else {
                cur.preds_left[s as usize] += 1;
            }
        }
    };
    let memo_key = |cur: &Cursor, states: &[M::State]| {
        let mut h = FxHasher::default();
        cur.pos.hash(&mut h);
        cur.placed.hash(&mut h);
        states.hash(&mut h);
        MemoKey {
            hash: h.finish(),
            pos: cur.pos.as_slice().into(),
            placed: cur.placed.as_slice().into(),
            states: states.into(),
        }
    };
    let entry_bytes = (4 * cur.pos.len() + 8 * cur.placed.len() + 64) as u64
        + (std::mem::size_of::<M::State>() * states.len()) as u64;

    // The heap the current states hold (a set's members), kept as they change.
    let mut heap: u64 = states.iter().map(|s| model.state_heap_bytes(s)).sum();
    let mut memo: FxHashSet<MemoKey<M::State>> = FxHashSet::default();
    memo.insert(memo_key(&cur, &states));
    let mut stack: Vec<Frame> = vec![Frame {
        cands: enabled(&cur, &states),
        next: 0,
        placed: None,
    }];
    let mut undo: Vec<M::State> = Vec::new();
    let mut best: Option<Blocked<M::State>> = None;
    let mut steps: u32 = 0;
    let mut uncharged: u64 = 0;
    let outcome = loop {
        if cur.det_left == 0 && cur.req_left == 0 {
            break SeqOutcome::Valid(stack.iter().filter_map(|f| f.placed).collect());
        }
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(1024) {
            let ok = deadline.charge(std::mem::take(&mut uncharged));
            if !ok || deadline.expired() {
                break SeqOutcome::Unknown;
            }
        }
        let depth = stack.len() - 1;
        let top = stack.last().expect("the root frame stays");
        if top.next == top.cands.len() {
            if best.as_ref().is_none_or(|b| b.prefix.len() < depth) {
                best = Some(Blocked {
                    next: top.cands.clone(),
                    prefix: stack.iter().filter_map(|f| f.placed).collect(),
                    states: states.clone(),
                });
            }
            let frame = stack.pop().expect("checked above");
            let Some(i) = frame.placed else {
                break SeqOutcome::Invalid(best.take().expect("recorded at the root"));
            };
            // Undo placing i.
            let k = ops[i].key as usize;
            let back = undo.pop().expect("one undo per placed op");
            heap = heap + model.state_heap_bytes(&back) - model.state_heap_bytes(&states[k]);
            states[k] = back;
            shift(&mut cur, i, false);
            continue;
        }
        let top = stack.last_mut().expect("the root frame stays");
        let i = top.cands[top.next];
        top.next += 1;
        let k = ops[i].key as usize;
        let Some(after_state) = model.step(&states[k], &ops[i].op) else {
            continue;
        };
        heap = heap + model.state_heap_bytes(&after_state) - model.state_heap_bytes(&states[k]);
        let before = std::mem::replace(&mut states[k], after_state);
        shift(&mut cur, i, true);
        if memo.insert(memo_key(&cur, &states)) {
            // The memo keeps a copy of every key's state: their heap too.
            uncharged += entry_bytes + heap;
            undo.push(before);
            stack.push(Frame {
                cands: enabled(&cur, &states),
                next: 0,
                placed: Some(i),
            });
        } else {
            heap = heap + model.state_heap_bytes(&before) - model.state_heap_bytes(&states[k]);
            states[k] = before;
            shift(&mut cur, i, false);
        }
    };
    if matches!(outcome, SeqOutcome::Unknown) && memo.len() > 100_000 {
        std::thread::spawn(move || drop(memo));
    }
    outcome
}

// ---------------------------------------------------------------------------
// Explanations.

/// Why a history is not sequentially consistent.
#[derive(Debug, Clone, Serialize)]
pub struct SequentialCounterexample {
    /// How the violation was found: `"cycle"` (forced orders contradict each other)
    /// or `"search"` (every order was tried).
    pub found_by: &'static str,
    /// For `cycle`: ops on a cycle of forced orders, each of which must come before
    /// the next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<OpRef>,
    /// For `search`: the length of the longest legal order that respects every
    /// process's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<usize>,
    /// Its last ops (at most 20).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<OpRef>,
    /// The ops that could have come next, none legal after that prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<OpRef>,
    /// The model state (per key, for keyed histories) that prefix left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The fewest ops found that still are not sequentially consistent, in
    /// invocation order.
    pub shrunk: Vec<OpRef>,
    /// `shrunk` drawn as an ASCII timeline, one row per process.
    pub timeline: String,
}

pub(crate) fn init_ids<M: Model>(model: &M, problem: &Problem<M>) -> Vec<Option<ValueId>> {
    problem
        .parts
        .iter()
        .map(|p| p.values.lookup(&model.describe_state(&p.init, &p.values)))
        .collect()
}

pub(crate) fn counterexample<M: Model>(
    model: &M,
    history: &History,
    problem: &Problem<M>,
    outcome: &SeqOutcome<M::State>,
    budget: &Deadline,
) -> SequentialCounterexample {
    let ops = &problem.ops;
    let refs = |is: &[usize]| -> Vec<OpRef> {
        is.iter()
            .map(|&i| problem.op_ref(model, history, &ops[i]))
            .collect()
    };
    let shrunk_ix = shrink(
        model,
        problem,
        matches!(outcome, SeqOutcome::Cycle(_)),
        budget,
    );
    let mut shrunk = refs(&shrunk_ix);
    shrunk.sort_by_key(|o| o.line);
    let mut c = SequentialCounterexample {
        found_by: "search",
        cycle: Vec::new(),
        prefix_len: None,
        prefix: Vec::new(),
        blocked: Vec::new(),
        state: None,
        timeline: timeline(&shrunk, None),
        shrunk,
    };
    match outcome {
        SeqOutcome::Cycle(cyc) => {
            c.found_by = "cycle";
            c.cycle = refs(cyc);
        }
        SeqOutcome::Invalid(b) => {
            c.prefix_len = Some(b.prefix.len());
            c.prefix = refs(&b.prefix[b.prefix.len().saturating_sub(20)..]);
            c.blocked = refs(&b.next);
            c.state = Some(problem.describe_states(model, &b.states));
        }
        _ => {}
    }
    c
}

/// A small sub-history that is still not sequentially consistent: whole processes
/// first, then runs of ops, halving down to single ops (delta debugging, greedy).
/// An `ok` op that observes a value keeps some op that writes it, so the result
/// does not degenerate into "a value nobody wrote".
///
/// A violation the graph found shrinks with the graph alone (fast, and what it
/// proves holds for the part too); one the search found tries each candidate with
/// a short time limit, counting a candidate it cannot decide as not failing.
fn shrink<M: Model>(
    model: &M,
    problem: &Problem<M>,
    by_graph: bool,
    budget: &Deadline,
) -> Vec<usize> {
    let ops = &problem.ops;
    let inits = problem.inits();
    let init_ids = init_ids(model, problem);
    let fails = |set: &[usize]| -> bool {
        // What pruning proved holds for the whole history, not for a part: an
        // indeterminate op observed by a removed read need not have happened.
        let sub: Vec<SeqOp<M::Op>> = set
            .iter()
            .map(|&i| SeqOp {
                required: ops[i].ok,
                ..ops[i].clone()
            })
            .collect();
        if by_graph {
            return cycle(model, &sub, &init_ids).is_some();
        }
        let slice = Instant::now() + Duration::from_millis(200);
        let attempt = Deadline::new(Some(budget.at.map_or(slice, |at| at.min(slice))));
        matches!(
            decide(model, &sub, &inits, &init_ids, &attempt),
            SeqOutcome::Cycle(_) | SeqOutcome::Invalid(_)
        )
    };
    let written_in = |set: &mut dyn Iterator<Item = usize>| -> FxHashSet<(u32, ValueId)> {
        set.filter_map(|i| model.writes(&ops[i].op).map(|v| (ops[i].key, v)))
            .collect()
    };
    // A value nobody in the whole history wrote needs no writer in the part.
    let ever_written = written_in(&mut (0..ops.len()));
    let well_formed = |set: &[usize]| -> bool {
        let written = written_in(&mut set.iter().copied());
        set.iter().all(|&i| {
            !ops[i].ok
                || match model.observes(&ops[i].op) {
                    Some(v) => {
                        let kv = (ops[i].key, v);
                        init_ids[ops[i].key as usize] == Some(v)
                            || written.contains(&kv)
                            || !ever_written.contains(&kv)
                    }
                    None => true,
                }
        })
    };
    let mut cur: Vec<usize> = (0..ops.len()).collect();
    let try_keep = |cur: &mut Vec<usize>, candidate: Vec<usize>| -> bool {
        if !candidate.is_empty() && well_formed(&candidate) && fails(&candidate) {
            *cur = candidate;
            true
        } else {
            false
        }
    };
    // Whole processes.
    let mut processes: Vec<i64> = ops.iter().map(|o| o.process).collect();
    processes.sort_unstable();
    processes.dedup();
    for p in processes {
        if budget.expired() {
            return cur;
        }
        let candidate = cur
            .iter()
            .copied()
            .filter(|&i| ops[i].process != p)
            .collect();
        try_keep(&mut cur, candidate);
    }
    // Until nothing more goes: a removal late in a pass can make an earlier op
    // removable.
    loop {
        let before = cur.len();
        let finished = crate::shrink::drop_halving_runs(&mut cur, budget, |cur, gone| {
            // `gone` is one run of positions.
            let (from, to) = (gone[0], gone[gone.len() - 1] + 1);
            let candidate = cur[..from].iter().chain(&cur[to..]).copied().collect();
            try_keep(cur, candidate)
        });
        if !finished || cur.len() == before {
            return cur;
        }
    }
}
