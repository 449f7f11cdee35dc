//! Deciding register histories from the store's own versions, without a search.
//!
//! Many stores say which version of a key a read returned and which version a write
//! created (etcd's `mod_revision`, ZooKeeper's `mzxid`). Taking the store at its word
//! about the order of its writes, a register history becomes a dependency graph in
//! the style of Adya and Elle, one node per op:
//!
//! - **ww**: each write precedes the write of the next version of its key;
//! - **wr**: the write that created a version precedes every read of it;
//! - **rw**: a read of a version precedes the write of the next version (a read of
//!   the initial value precedes the first write);
//! - **process** order, for sequential consistency (all keys in one graph: it is not
//!   compositional);
//! - **real time**, for linearizability (key by key): each op links to a chain of
//!   time points, one per invocation and completion in file order, so "completed
//!   before the other began" costs two edges per op, not one per pair.
//!
//! A cycle is a definite violation: no order respects every edge. An acyclic graph
//! is a definite pass: in any topological order every read follows the write of its
//! version and precedes the next one, so the order is a legal execution, and it is
//! the witness.
//!
//! The versions decide only when they pin every op that took effect: each `ok`
//! write and read carries a version (a read of the initial value may have none), and
//! each indeterminate write is either placed by a read that saw its version or was
//! never observed (then it did not matter, as in `prepare`). Anything else (a
//! missing version, a value two indeterminate writes could have written, one version
//! with two values) is [`Outcome::Undecided`] with the reason, and the search
//! decides instead. Versions that contradict each other are reported as findings.

use crate::model::{Model, ValueId};
use crate::opref::OpRef;
use crate::prepare::Partition;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use splitbrain_history::History;
use std::collections::{HashMap, VecDeque};

/// What the verdicts below rest on, said in the report.
pub const ASSUMPTION: &str = "write order taken from the store's versions";

/// Why one op must come before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dependency {
    /// The next version of the key.
    WriteWrite,
    /// A read of the version the write created.
    WriteRead,
    /// A write of the version after the one read.
    ReadWrite,
    /// The same process, next.
    Process,
    /// One completed before the other began.
    RealTime,
}

impl Dependency {
    /// The edge kind as Elle abbreviates it: `ww`, `wr`, `rw`, `process`, `realtime`.
    pub fn short(self) -> &'static str {
        match self {
            Dependency::WriteWrite => "ww",
            Dependency::WriteRead => "wr",
            Dependency::ReadWrite => "rw",
            Dependency::Process => "process",
            Dependency::RealTime => "realtime",
        }
    }
}

/// One edge of a cycle: from `ops[k]` to the next op (the last to the first).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub dependency: Dependency,
    /// The edge in words, e.g. "p4's read 1199 read version 812, which p6's write
    /// 1242 overwrote with version 813".
    pub why: String,
}

/// A definite violation found from the store's versions: a cycle of dependencies.
#[derive(Debug, Clone, Serialize)]
pub struct VersionCounterexample {
    /// `"write order taken from the store's versions"`.
    pub assumption: &'static str,
    /// The cycle in one sentence, e.g. "p2's read 1 (line 5) read version 10, but
    /// p1's write 2 (line 3), which created version 11, had already completed
    /// (line 4)"; for longer cycles, what the anomaly means.
    pub summary: String,
    /// The cycle named as Adya and Elle name them (see [`anomaly`]), e.g.
    /// `G-single-realtime`.
    pub anomaly: String,
    /// The key, when the history has keys and the cycle stays on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
    /// The ops of the cycle: each must come before the next, the last before the
    /// first.
    pub ops: Vec<OpRef>,
    /// `versions[k]`: the version `ops[k]` created or read (none: the initial value).
    pub versions: Vec<Option<u64>>,
    /// `steps[k]`: why `ops[k]` comes before the next.
    pub steps: Vec<Step>,
}

/// Why the versions leave the order open; the search decides instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecided {
    pub reason: String,
    /// The store's versions contradict each other (worth reporting on its own).
    pub finding: bool,
}

/// What the versions decide for one group of keys.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A legal order: (partition, call) pairs.
    Valid(Vec<(usize, usize)>),
    Invalid(VersionCounterexample),
    Undecided(Undecided),
}

/// Which level the graph decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Linearizable,
    Sequential,
}

/// The store's version on an op's completion, if it has one.
fn version_of(history: &History, pair: usize) -> Option<u64> {
    let p = history.pairs()[pair];
    history.ops()[p.completion?].version()
}

/// One key's ops that took effect, with their versions and the edges between them.
struct KeyFacts {
    /// Indices into the partition's calls.
    kept: Vec<usize>,
    /// The version each call is known to have created or read.
    version: Vec<Option<u64>>,
    /// (from call, to call, why), calls by index into the partition.
    edges: Vec<(usize, usize, Dependency)>,
}

fn undecided(reason: String) -> Undecided {
    Undecided {
        reason,
        finding: false,
    }
}

fn finding(reason: String) -> Undecided {
    Undecided {
        reason,
        finding: true,
    }
}

/// Reads one key's versions. `Err` when they do not pin the order.
fn key_facts<M: Model>(
    model: &M,
    history: &History,
    part: &Partition<M>,
) -> Result<KeyFacts, Undecided> {
    let calls = &part.calls;
    let n = calls.len();
    let name = |i: usize| describe(model, history, part, i);
    let init_id = part
        .values
        .lookup(&model.describe_state(&part.init, &part.values));
    let mut version: Vec<Option<u64>> = (0..n)
        .map(|i| {
            if calls[i].required {
                version_of(history, calls[i].pair)
            } else {
                None
            }
        })
        .collect();
    let mut kept = vec![false; n];
    let mut writer_of: HashMap<u64, usize> = HashMap::new();
    // Indeterminate writes, by the value they would write.
    let mut pending: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        if model.writes(&c.op).is_none() {
            continue;
        }
        if !c.required {
            if let Some(v) = model.writes(&c.op) {
                pending.entry(v).or_default().push(i);
            }
            continue;
        }
        let Some(v) = version[i] else {
            return Err(undecided(format!(
                "{} completed ok without a version",
                name(i)
            )));
        };
        if let Some(j) = writer_of.insert(v, i) {
            return Err(finding(format!(
                "two writes created version {v}: {} and {}",
                name(j),
                name(i)
            )));
        }
        kept[i] = true;
    }
    // A read of the initial value without a version is pinned only if no write
    // could have written that value again (computed once: reads are many).
    let init_rewritten = init_id.is_some()
        && calls
            .iter()
            .any(|w| model.writes(&w.op).is_some() && model.writes(&w.op) == init_id);
    // Reads: each names the write of its version, or places an indeterminate one.
    let mut initial_reads = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        if !c.required || !model.is_read(&c.op) {
            continue;
        }
        let Some(seen) = model.observes(&c.op) else {
            continue;
        };
        kept[i] = true;
        let Some(r) = version[i] else {
            if Some(seen) == init_id && !init_rewritten {
                initial_reads.push(i);
                continue;
            }
            return Err(undecided(format!(
                "{} returned a value without a version",
                name(i)
            )));
        };
        match writer_of.get(&r) {
            Some(&w) => {
                if model.writes(&calls[w].op) != Some(seen) {
                    return Err(finding(format!(
                        "version {r} holds two values: {} created it, {} read it",
                        name(w),
                        name(i)
                    )));
                }
            }
            None => {
                let candidates = pending.get(&seen).map_or(&[][..], |v| &v[..]);
                match candidates {
                    [w] if version[*w].is_none() => {
                        version[*w] = Some(r);
                        writer_of.insert(r, *w);
                        kept[*w] = true;
                    }
                    [w] => {
                        return Err(finding(format!(
                            "{} is seen at two versions, {} and {r}",
                            name(*w),
                            version[*w].unwrap_or_default()
                        )))
                    }
                    [] => {
                        return Err(undecided(format!(
                            "{} read version {r}, which no write in the history created",
                            name(i)
                        )))
                    }
                    _ => {
                        return Err(undecided(format!(
                            "{} read version {r}, which any of {} indeterminate writes could have created",
                            name(i),
                            candidates.len()
                        )))
                    }
                }
            }
        }
    }
    // The store's order of the writes that took effect.
    let mut writers: Vec<(u64, usize)> = writer_of.iter().map(|(&v, &i)| (v, i)).collect();
    writers.sort_unstable();
    // An indeterminate write left unplaced may sit in any gap between versions: if
    // one could have written what a cas expected, the versions do not decide.
    for (k, &(v, i)) in writers.iter().enumerate() {
        let Some(expected) = model.observes(&calls[i].op) else {
            continue;
        };
        let before = match k {
            0 => init_id,
            _ => model.writes(&calls[writers[k - 1].1].op),
        };
        if before == Some(expected) {
            continue;
        }
        let could = pending
            .get(&expected)
            .is_some_and(|ws| ws.iter().any(|&w| !kept[w]));
        let what = match k {
            0 => "the initial value".to_string(),
            _ => format!("version {}", writers[k - 1].0),
        };
        return Err(if could {
            undecided(format!(
                "{} (version {v}) expected a value an indeterminate write may have written after {what}",
                name(i)
            ))
        } else {
            finding(format!(
                "{} created version {v}, but {what} before it held another value",
                name(i)
            ))
        });
    }
    let mut edges = Vec::new();
    for pair in writers.windows(2) {
        edges.push((pair[0].1, pair[1].1, Dependency::WriteWrite));
    }
    let next_writer = |r: u64| {
        let k = writers.partition_point(|&(v, _)| v <= r);
        writers.get(k).map(|&(_, i)| i)
    };
    for (i, c) in calls.iter().enumerate() {
        if !kept[i] || !model.is_read(&c.op) {
            continue;
        }
        let Some(r) = version[i] else { continue };
        edges.push((writer_of[&r], i, Dependency::WriteRead));
        if let Some(w) = next_writer(r) {
            edges.push((i, w, Dependency::ReadWrite));
        }
    }
    if let Some(&(_, first)) = writers.first() {
        for &i in &initial_reads {
            edges.push((i, first, Dependency::ReadWrite));
        }
    }
    Ok(KeyFacts {
        kept: (0..n).filter(|&i| kept[i]).collect(),
        version,
        edges,
    })
}

fn describe<M: Model>(model: &M, history: &History, part: &Partition<M>, i: usize) -> String {
    let c = &part.calls[i];
    let line = history.line(history.pairs()[c.pair].invoke);
    format!(
        "p{}'s {} (line {line})",
        c.process,
        model.describe_op(&c.op, &part.values)
    )
}

/// A node of the graph: an op, or a point in time.
#[derive(Debug, Clone, Copy)]
enum Node {
    Op { part: usize, call: usize },
    Time,
}

/// Decides `parts` (one key for linearizability; every key for sequential
/// consistency) from the store's versions.
pub(crate) fn decide<M: Model>(
    model: &M,
    history: &History,
    parts: &[&Partition<M>],
    level: Level,
) -> Outcome {
    let calls = || parts.iter().flat_map(|p| p.calls.iter());
    if calls().any(|c| model.writes(&c.op).is_none() && model.observes(&c.op).is_none()) {
        return Outcome::Undecided(undecided(format!(
            "the {} model is not a register",
            model.name()
        )));
    }
    if !parts.iter().any(|p| p.versioned)
        || !calls().any(|c| c.required && version_of(history, c.pair).is_some())
    {
        return Outcome::Undecided(undecided("no op carries a version".into()));
    }
    let mut facts = Vec::with_capacity(parts.len());
    for part in parts {
        match key_facts(model, history, part) {
            Ok(f) => facts.push(f),
            Err(u) => return Outcome::Undecided(u),
        }
    }
    let mut g: DiGraph<Node, Option<Dependency>> = DiGraph::new();
    let mut node: Vec<HashMap<usize, NodeIndex>> = Vec::with_capacity(parts.len());
    for (p, f) in facts.iter().enumerate() {
        let mut m = HashMap::with_capacity(f.kept.len());
        for &i in &f.kept {
            m.insert(i, g.add_node(Node::Op { part: p, call: i }));
        }
        node.push(m);
    }
    for (p, f) in facts.iter().enumerate() {
        for &(a, b, d) in &f.edges {
            g.add_edge(node[p][&a], node[p][&b], Some(d));
        }
    }
    match level {
        Level::Sequential => {
            // (invocation, completed ok, node) per process. An indeterminate op
            // follows the ops its process completed before it, but need not
            // precede the ones after it: it may take effect at any later time,
            // as the search and the oracles have it.
            let mut by_process: HashMap<i64, Vec<(u64, bool, NodeIndex)>> = HashMap::new();
            for (p, f) in facts.iter().enumerate() {
                for &i in &f.kept {
                    let c = &parts[p].calls[i];
                    by_process.entry(c.process).or_default().push((
                        c.call,
                        c.ret.is_some(),
                        node[p][&i],
                    ));
                }
            }
            for ops in by_process.values_mut() {
                ops.sort_unstable_by_key(|&(call, _, _)| call);
                let mut last_ok = None;
                for &(_, ok, n) in ops.iter() {
                    if let Some(l) = last_ok {
                        g.add_edge(l, n, Some(Dependency::Process));
                    }
                    if ok {
                        last_ok = Some(n);
                    }
                }
            }
        }
        Level::Linearizable => {
            // (position, is a completion, op node): a chain of time points in file
            // order, entered by each completion and left to each invocation.
            let mut events: Vec<(u64, bool, NodeIndex)> = Vec::new();
            for (p, f) in facts.iter().enumerate() {
                for &i in &f.kept {
                    let c = &parts[p].calls[i];
                    events.push((c.call, false, node[p][&i]));
                    if let Some(ret) = c.ret {
                        events.push((ret, true, node[p][&i]));
                    }
                }
            }
            events.sort_unstable_by_key(|&(at, _, _)| at);
            let mut last: Option<NodeIndex> = None;
            for (_, completion, op) in events {
                let t = g.add_node(Node::Time);
                if let Some(l) = last {
                    g.add_edge(l, t, None);
                }
                if completion {
                    g.add_edge(op, t, None);
                } else {
                    g.add_edge(t, op, None);
                }
                last = Some(t);
            }
        }
    }
    match petgraph::algo::toposort(&g, None) {
        Ok(order) => Outcome::Valid(
            order
                .into_iter()
                .filter_map(|n| match g[n] {
                    Node::Op { part, call } => Some((part, call)),
                    Node::Time => None,
                })
                .collect(),
        ),
        Err(cycle) => {
            let path = shortest_cycle(&g, cycle.node_id());
            Outcome::Invalid(explain(model, history, parts, &facts, &g, &node, &path))
        }
    }
}

/// A shortest cycle through `start`, counting only op nodes (time points are
/// free), as the list of nodes from `start` back to just before `start`.
fn shortest_cycle(g: &DiGraph<Node, Option<Dependency>>, start: NodeIndex) -> Vec<NodeIndex> {
    // The node toposort names is on a cycle, but the shortest one may run through
    // another op of its strongly connected component: search from each of a few.
    let scc = petgraph::algo::kosaraju_scc(g)
        .into_iter()
        .find(|c| c.contains(&start))
        .unwrap_or_else(|| vec![start]);
    let in_scc: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
    let mut best: Option<Vec<NodeIndex>> = None;
    let starts = scc
        .iter()
        .copied()
        .filter(|&n| matches!(g[n], Node::Op { .. }))
        .take(32);
    for s in starts {
        // 0-1 breadth-first search: entering an op costs 1, a time point 0.
        let mut dist: HashMap<NodeIndex, usize> = HashMap::new();
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::new();
        dist.insert(s, 0);
        queue.push_back(s);
        let mut closing: Option<(NodeIndex, usize)> = None;
        while let Some(u) = queue.pop_front() {
            let du = dist[&u];
            for v in g.neighbors(u) {
                if !in_scc.contains(&v) {
                    continue;
                }
                let w = usize::from(matches!(g[v], Node::Op { .. }));
                if v == s {
                    if closing.is_none_or(|(_, d)| du + w < d) {
                        closing = Some((u, du + w));
                    }
                    continue;
                }
                if dist.get(&v).is_none_or(|&d| du + w < d) {
                    dist.insert(v, du + w);
                    prev.insert(v, u);
                    if w == 0 {
                        queue.push_front(v);
                    } else {
                        queue.push_back(v);
                    }
                }
            }
        }
        let Some((mut u, len)) = closing else {
            continue;
        };
        if best.as_ref().is_some_and(|b| ops_in(g, b) <= len) {
            continue;
        }
        let mut path = vec![u];
        while u != s {
            u = prev[&u];
            path.push(u);
        }
        path.reverse();
        best = Some(path);
    }
    best.unwrap_or_else(|| vec![start])
}

fn ops_in(g: &DiGraph<Node, Option<Dependency>>, path: &[NodeIndex]) -> usize {
    path.iter()
        .filter(|&&n| matches!(g[n], Node::Op { .. }))
        .count()
}

fn explain<M: Model>(
    model: &M,
    history: &History,
    parts: &[&Partition<M>],
    facts: &[KeyFacts],
    g: &DiGraph<Node, Option<Dependency>>,
    node: &[HashMap<usize, NodeIndex>],
    path: &[NodeIndex],
) -> VersionCounterexample {
    // The op nodes in cycle order; between two, either a direct edge or time points.
    let ops: Vec<(usize, usize, bool)> = {
        let mut out = Vec::new();
        let mut through_time = false;
        // The path starts at an op node (every search starts at one) and closes
        // back on it.
        for &n in path.iter().chain(path.first()) {
            match g[n] {
                Node::Op { part, call } => {
                    out.push((part, call, through_time));
                    through_time = false;
                }
                Node::Time => through_time = true,
            }
        }
        out
    };
    let mut cycle: Vec<((OpRef, Option<u64>), Step)> = Vec::new();
    for w in ops.windows(2) {
        let (pa, a, _) = w[0];
        let (pb, b, via_time) = w[1];
        let dependency = if via_time {
            Dependency::RealTime
        } else {
            g.edges_connecting(node[pa][&a], node[pb][&b])
                .find_map(|e| *e.weight())
                .unwrap_or(Dependency::RealTime)
        };
        let why = reason(model, history, parts, facts, (pa, a), (pb, b), dependency);
        cycle.push((
            (op_ref(model, history, parts[pa], a), facts[pa].version[a]),
            Step { dependency, why },
        ));
    }
    // Start where the story starts: at a read that was overwritten, else at the
    // earliest op.
    let first = cycle
        .iter()
        .position(|(_, s)| s.dependency == Dependency::ReadWrite)
        .or_else(|| (0..cycle.len()).min_by_key(|&k| cycle[k].0 .0.line))
        .unwrap_or(0);
    cycle.rotate_left(first);
    let keys: Vec<usize> = ops.iter().map(|&(p, _, _)| p).collect();
    let key = match keys.first() {
        Some(&p) if keys.iter().all(|&q| q == p) => parts[p].key.as_ref().map(|k| k.to_json()),
        _ => None,
    };
    let (ops, steps): (Vec<(OpRef, Option<u64>)>, Vec<Step>) = cycle.into_iter().unzip();
    let (ops, versions): (Vec<OpRef>, Vec<Option<u64>>) = ops.into_iter().unzip();
    let kinds: Vec<Dependency> = steps.iter().map(|s| s.dependency).collect();
    let anomaly = anomaly(&kinds);
    VersionCounterexample {
        assumption: ASSUMPTION,
        summary: summary(&ops, &versions, &kinds).unwrap_or_else(|| gloss(&anomaly).to_string()),
        anomaly,
        key,
        ops,
        versions,
        steps,
    }
}

/// The name of a cycle with these edges, in order, as Elle names them for a
/// single-object history (after Adya 1999):
///
/// - `G0`: write–write edges only (writes out of the store's version order);
/// - `G1c`: write–write and write–read edges, at least one of them a read
///   (circular information flow: a read saw a write that came after it);
/// - `G-single`: exactly one read–write (anti-dependency) edge: a read of a
///   version that was already overwritten, the stale read;
/// - `G-nonadjacent`: several read–write edges, no two in a row;
/// - `G2-item`: several read–write edges, two of them in a row;
///
/// then `-realtime` when the cycle needs real-time order (linearizability) and
/// `-process` when it needs a process's own order (sequential consistency).
pub(crate) fn anomaly(kinds: &[Dependency]) -> String {
    let rw: Vec<usize> = (0..kinds.len())
        .filter(|&k| kinds[k] == Dependency::ReadWrite)
        .collect();
    let adjacent = (0..kinds.len()).any(|k| {
        kinds[k] == Dependency::ReadWrite && kinds[(k + 1) % kinds.len()] == Dependency::ReadWrite
    });
    let base = match rw.len() {
        0 if kinds.contains(&Dependency::WriteRead) => "G1c",
        0 if kinds.contains(&Dependency::WriteWrite) => "G0",
        // Only real-time or process edges cannot make a cycle; name it anyway.
        0 => "G1c",
        1 => "G-single",
        _ if adjacent => "G2-item",
        _ => "G-nonadjacent",
    };
    let suffix = if kinds.contains(&Dependency::RealTime) {
        "-realtime"
    } else if kinds.contains(&Dependency::Process) {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// The two-op cycles that real time closes, in one sentence each: a stale read
/// (rw), a write order against real time (ww), a read of a write that had not
/// begun (wr).
fn summary(ops: &[OpRef], versions: &[Option<u64>], kinds: &[Dependency]) -> Option<String> {
    let [a, b] = ops else { return None };
    // x completed before y began; the data edge runs from y to x.
    let (x, y, vx, vy, data) = match kinds {
        [Dependency::RealTime, d] => (a, b, versions[0], versions[1], *d),
        [d, Dependency::RealTime] => (b, a, versions[1], versions[0], *d),
        _ => return None,
    };
    let who = |o: &OpRef| format!("p{}'s {} (line {})", o.process, o.label, o.line);
    let ver =
        |v: Option<u64>| v.map_or("the initial value".to_string(), |v| format!("version {v}"));
    let done = x.end_line?;
    Some(match data {
        Dependency::ReadWrite => format!(
            "{} read {}, but {}, which created {}, had already completed (line {done})",
            who(y),
            ver(vy),
            who(x),
            ver(vx)
        ),
        Dependency::WriteWrite => format!(
            "{} created {}, yet {} had completed (line {done}) before it began and created the later {}",
            who(y),
            ver(vy),
            who(x),
            ver(vx)
        ),
        Dependency::WriteRead => format!(
            "{} read {}, which {} created, but that write began only after the read had completed (line {done})",
            who(x),
            ver(vx),
            who(y)
        ),
        _ => return None,
    })
}

/// What an anomaly means for a register, in a few words.
fn gloss(anomaly: &str) -> &'static str {
    match anomaly
        .split("-realtime")
        .next()
        .and_then(|a| a.split("-process").next())
    {
        Some("G0") => "writes took effect against the store's version order",
        Some("G1c") => "a read saw a write that cannot have happened yet",
        Some("G-single") => "a read saw a version that had already been overwritten",
        _ => "reads saw versions that had already been overwritten",
    }
}

fn op_ref<M: Model>(model: &M, history: &History, part: &Partition<M>, call: usize) -> OpRef {
    crate::opref::op_ref(model, history, part, &part.calls[call])
}

fn reason<M: Model>(
    model: &M,
    history: &History,
    parts: &[&Partition<M>],
    facts: &[KeyFacts],
    (pa, a): (usize, usize),
    (pb, b): (usize, usize),
    dependency: Dependency,
) -> String {
    let (ca, cb) = (&parts[pa].calls[a], &parts[pb].calls[b]);
    let who = |p: usize, i: usize| describe(model, history, parts[p], i);
    let ver = |p: usize, i: usize| match facts[p].version[i] {
        Some(v) => format!("version {v}"),
        None => "the initial value".to_string(),
    };
    let line = |c: &crate::prepare::Call<M::Op>| history.line(history.pairs()[c.pair].invoke);
    match dependency {
        Dependency::WriteWrite => format!(
            "{} created {}, then {} created the next, {}",
            who(pa, a),
            ver(pa, a),
            who(pb, b),
            ver(pb, b)
        ),
        Dependency::WriteRead => format!(
            "{} read {}, which {} created",
            who(pb, b),
            ver(pb, b),
            who(pa, a)
        ),
        Dependency::ReadWrite => format!(
            "{} read {}, which {} overwrote with {}",
            who(pa, a),
            ver(pa, a),
            who(pb, b),
            ver(pb, b)
        ),
        Dependency::Process => format!(
            "p{} ran {} (line {}) before {} (line {})",
            ca.process,
            model.describe_op(&ca.op, &parts[pa].values),
            line(ca),
            model.describe_op(&cb.op, &parts[pb].values),
            line(cb)
        ),
        Dependency::RealTime => {
            let done = history.pairs()[ca.pair]
                .completion
                .map_or(0, |i| history.line(i));
            format!(
                "{} had completed (line {done}) before {} began",
                who(pa, a),
                who(pb, b)
            )
        }
    }
}

/// The counterexample as text: the anomaly and what the verdict rests on, then
/// one edge a line, each with its kind and its reason.
pub(crate) fn render(out: &mut String, c: &VersionCounterexample) {
    use std::fmt::Write as _;
    let key = match &c.key {
        Some(k) => format!(" on key {k}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  {}{key}: {} (a cycle of {} ops; {})",
        c.anomaly,
        c.summary,
        c.ops.len(),
        c.assumption
    );
    let _ = writeln!(out, "  each op must come before the next:");
    for (k, s) in c.steps.iter().enumerate() {
        let _ = writeln!(out, "    {}. [{}] {}", k + 1, s.dependency.short(), s.why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Register;
    use crate::prepare::partitions;
    use serde_json::{json, Value};
    use splitbrain_history::{Op, OpType, Process};
    use OpType::{Info, Invoke, Ok as Done};

    /// `(process, type, f, value, version)`; the version goes on completions.
    type Row = (i64, OpType, &'static str, Value, Option<u64>);

    fn h(rows: &[Row]) -> History {
        History::new(
            "t.jsonl",
            rows.iter()
                .map(|(p, t, f, v, ver)| {
                    let mut op = Op::new(Process::Client(*p), *t, *f, v.clone());
                    op.set_version(*ver);
                    op
                })
                .collect(),
            None,
        )
        .unwrap()
    }

    fn run(hist: &History, level: Level) -> Outcome {
        let model = Register { cas: true };
        let parts = partitions(&model, hist, &Value::Null).unwrap();
        let refs: Vec<&Partition<Register>> = parts.iter().collect();
        decide(&model, hist, &refs, level)
    }

    fn w(p: i64, v: i64, ver: u64) -> [Row; 2] {
        [
            (p, Invoke, "write", json!(v), None),
            (p, Done, "write", json!(v), Some(ver)),
        ]
    }

    fn r(p: i64, v: Value, ver: Option<u64>) -> [Row; 2] {
        [
            (p, Invoke, "read", Value::Null, None),
            (p, Done, "read", v, ver),
        ]
    }

    fn rows(parts: &[[Row; 2]]) -> Vec<Row> {
        parts.iter().flat_map(|p| p.iter().cloned()).collect()
    }

    #[test]
    fn versions_in_order_are_a_witness() {
        let hist = h(&rows(&[
            r(1, Value::Null, None),
            w(0, 1, 10),
            r(1, json!(1), Some(10)),
            w(0, 2, 11),
            r(1, json!(2), Some(11)),
        ]));
        for level in [Level::Linearizable, Level::Sequential] {
            match run(&hist, level) {
                Outcome::Valid(order) => {
                    let calls: Vec<usize> = order.iter().map(|&(_, c)| c).collect();
                    assert_eq!(calls, [0, 1, 2, 3, 4], "{level:?}");
                }
                other => panic!("{level:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_stale_read_is_a_cycle_of_overwrite_and_real_time() {
        let hist = h(&rows(&[w(0, 1, 10), w(0, 2, 11), r(1, json!(1), Some(10))]));
        let Outcome::Invalid(c) = run(&hist, Level::Linearizable) else {
            panic!("not invalid");
        };
        let deps: Vec<Dependency> = c.steps.iter().map(|s| s.dependency).collect();
        assert_eq!(
            deps,
            [Dependency::ReadWrite, Dependency::RealTime],
            "{c:#?}"
        );
        assert_eq!(
            c.steps[0].why,
            "p1's read 1 (line 5) read version 10, which p0's write 2 (line 3) overwrote with version 11"
        );
        assert_eq!(
            c.steps[1].why,
            "p0's write 2 (line 3) had completed (line 4) before p1's read 1 (line 5) began"
        );
        assert_eq!(c.anomaly, "G-single-realtime");
        assert_eq!(
            c.summary,
            "p1's read 1 (line 5) read version 10, but p0's write 2 (line 3), which created version 11, had already completed (line 4)"
        );
        assert_eq!(c.versions, [Some(10), Some(11)]);
        // Another process may lag behind: sequentially consistent.
        assert!(matches!(run(&hist, Level::Sequential), Outcome::Valid(_)));
    }

    /// Found by the oracle's property test: an indeterminate write may take
    /// effect after its process's later ops, so program order does not place it
    /// before them.
    #[test]
    fn an_indeterminate_op_need_not_precede_its_process_s_later_ops() {
        let hist = h(&[
            (0, Invoke, "write", json!(0), None),
            (0, Info, "write", json!(0), None),
            (0, Invoke, "read", Value::Null, None),
            (0, Done, "read", Value::Null, None),
            (0, Invoke, "read", Value::Null, None),
            (0, Done, "read", json!(0), Some(1)),
        ]);
        assert!(matches!(run(&hist, Level::Sequential), Outcome::Valid(_)));
    }

    #[test]
    fn a_process_whose_reads_go_back_in_versions_is_not_sequential() {
        let hist = h(&rows(&[
            w(0, 1, 10),
            w(0, 2, 11),
            r(1, json!(2), Some(11)),
            r(1, json!(1), Some(10)),
        ]));
        let Outcome::Invalid(c) = run(&hist, Level::Sequential) else {
            panic!("not invalid");
        };
        let deps: Vec<Dependency> = c.steps.iter().map(|s| s.dependency).collect();
        assert_eq!(deps.len(), 3, "{c:#?}");
        assert!(deps.contains(&Dependency::Process), "{c:#?}");
        assert_eq!(c.anomaly, "G-single-process");
        let mut text = String::new();
        render(&mut text, &c);
        assert!(text.contains(ASSUMPTION), "{text}");
        assert!(
            text.contains("G-single-process: a read saw a version"),
            "{text}"
        );
        assert!(
            text.contains("[process] p1 ran read 2 (line 5) before read 1 (line 7)"),
            "{text}"
        );
    }

    #[test]
    fn cycles_are_named_by_their_edges() {
        use Dependency::*;
        for (kinds, name) in [
            (&[WriteWrite, RealTime][..], "G0-realtime"),
            (&[WriteWrite, Process], "G0-process"),
            (&[WriteRead, RealTime], "G1c-realtime"),
            (&[WriteWrite, WriteRead, Process], "G1c-process"),
            (&[ReadWrite, WriteRead, Process], "G-single-process"),
            (
                &[ReadWrite, WriteRead, ReadWrite, WriteRead],
                "G-nonadjacent",
            ),
            (&[ReadWrite, ReadWrite, WriteWrite], "G2-item"),
            // Adjacent around the end of the cycle too.
            (
                &[ReadWrite, WriteRead, RealTime, ReadWrite],
                "G2-item-realtime",
            ),
        ] {
            assert_eq!(anomaly(kinds), name, "{kinds:?}");
        }
    }

    #[test]
    fn indeterminate_writes_are_placed_by_the_version_read() {
        // The pending-writes case that defeats a search: N writes that never
        // complete, one reader that sees each in turn.
        let n = 2000;
        let mut rows = Vec::new();
        for i in 0..n {
            rows.push((i + 10, Invoke, "write", json!(i), None));
        }
        for i in 0..n {
            rows.push((0, Invoke, "read", Value::Null, None));
            rows.push((0, Done, "read", json!(i), Some(100 + i as u64)));
        }
        for i in 0..n {
            rows.push((i + 10, Info, "write", json!(i), None));
        }
        let hist = h(&rows);
        for level in [Level::Linearizable, Level::Sequential] {
            match run(&hist, level) {
                Outcome::Valid(order) => assert_eq!(order.len(), 2 * n as usize),
                other => panic!("{level:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_unobserved_indeterminate_write_is_left_out() {
        let mut rows = rows(&[w(0, 1, 10)]);
        rows.push((2, Invoke, "write", json!(9), None));
        rows.extend(r(1, json!(1), Some(10)));
        rows.push((2, Info, "write", json!(9), None));
        assert!(matches!(
            run(&h(&rows), Level::Linearizable),
            Outcome::Valid(o) if o.len() == 2
        ));
    }

    #[test]
    fn what_the_versions_do_not_pin_is_left_to_the_search() {
        let missing = h(&rows(&[w(0, 1, 10), r(1, json!(1), None)]));
        let Outcome::Undecided(u) = run(&missing, Level::Linearizable) else {
            panic!("decided");
        };
        assert!(!u.finding);
        assert_eq!(
            u.reason,
            "p1's read 1 (line 3) returned a value without a version"
        );
        let two_values = h(&rows(&[w(0, 1, 10), r(1, json!(2), Some(10))]));
        let Outcome::Undecided(u) = run(&two_values, Level::Linearizable) else {
            panic!("decided");
        };
        assert!(u.finding, "{u:?}");
        assert_eq!(
            u.reason,
            "version 10 holds two values: p0's write 1 (line 1) created it, p1's read 2 (line 3) read it"
        );
        let same_version = h(&rows(&[w(0, 1, 10), w(1, 2, 10)]));
        let Outcome::Undecided(u) = run(&same_version, Level::Linearizable) else {
            panic!("decided");
        };
        assert!(
            u.finding && u.reason.starts_with("two writes created version 10"),
            "{u:?}"
        );
        // Two indeterminate writes of the value read: either may have created it.
        let mut rows = vec![
            (0, Invoke, "write", json!(1), None),
            (1, Invoke, "write", json!(1), None),
        ];
        rows.extend(r(2, json!(1), Some(5)));
        let Outcome::Undecided(u) = run(&h(&rows), Level::Linearizable) else {
            panic!("decided");
        };
        assert!(!u.finding && u.reason.contains("any of 2"), "{u:?}");
    }

    #[test]
    fn a_cas_must_expect_what_the_version_before_it_held() {
        let ok = h(&[
            (0, Invoke, "write", json!(1), None),
            (0, Done, "write", json!(1), Some(10)),
            (1, Invoke, "cas", json!([1, 2]), None),
            (1, Done, "cas", json!([1, 2]), Some(12)),
        ]);
        assert!(matches!(run(&ok, Level::Linearizable), Outcome::Valid(_)));
        let bad = h(&[
            (0, Invoke, "write", json!(1), None),
            (0, Done, "write", json!(1), Some(10)),
            (1, Invoke, "cas", json!([3, 2]), None),
            (1, Done, "cas", json!([3, 2]), Some(12)),
        ]);
        let Outcome::Undecided(u) = run(&bad, Level::Linearizable) else {
            panic!("decided");
        };
        assert!(u.finding, "{u:?}");
    }
}
