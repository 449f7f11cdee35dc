//! Cross-checks the checkers against brute-force oracles, for every model
//! (register, cas-register, mutex, set, counter, append) and every level
//! (linearizable, sequential, eventual).
//!
//! The oracles share nothing with the checker but the history type. For one key
//! the linearizability oracle takes every subset of the indeterminate ops (`info`
//! or never completed), adds the `ok` ops, and tries every total order of those
//! ops that respects real time, running the sequential model along it. The
//! history is linearizable iff some order is legal. Real time: op `a` precedes op
//! `b` when `a` completed `ok` on an earlier line than `b`'s invocation. An
//! indeterminate op has no completion that counts (it may take effect at any time
//! after its invocation), so only its invocation constrains it; a `fail` op never
//! took effect and is left out. The sequential oracle does the same with program
//! order instead of real time, all keys as one object; the eventual one compares
//! the final reads and enumerates what subsets of the ops could have left.
//!
//! ```text
//!   p0 |--write 1--|                  orders tried: [write 1, write 2, read 1] illegal
//!   p1              |--write 2--|     (write 1 < write 2 < read 1 by real time,
//!   p2                           |--read 1--|       nothing else respects it)
//! ```
//!
//! That is exponential, and fine for the 8-op histories the property tests
//! generate. Generated histories are recorded from a real sequential execution
//! with random linearization points, so they start out valid; then some ops are
//! lied about (a read's value, an `ok` that failed, ...) and sometimes only a
//! sub-history is kept, so invalid ones are common too. Reads spell equal values
//! differently (a set's members in another order or repeated, null for an empty
//! set or string) so that the checker must compare them as its model does. Each
//! history checks three things: the verdicts agree, key by key; a valid
//! history's witness is a legal, real-time-respecting order of its ops; an
//! invalid history's shrunk counterexample is itself not linearizable and holds
//! the op the checker could not linearize.
//!
//! A failing case prints the smallest sub-history that still disagrees, as JSON
//! Lines ready to save and run with `splitbrain check`. `PROPTEST_CASES=1000000`
//! hunts longer (use `--release`); `PROPTEST_RNG_SEED=<seed>` repeats a run. Bugs
//! found this way stay at the end of this file as named tests.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError};
use serde_json::{json, Value};
use splitbrain_checker::{check, Consistency, ModelKind, Options, Report, Verdict};
use splitbrain_history::{jsonl, History, Key, Op, OpType, Process};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// The oracle's own view of a history.

/// A register value: `None` is null. Histories here use a tiny domain.
type Val = Option<u8>;

/// A short string, for the append model; `Copy`, as states are.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Text {
    len: u8,
    bytes: [u8; 24],
}

impl Text {
    fn new(s: &str) -> Text {
        let mut t = Text {
            len: 0,
            bytes: [0; 24],
        };
        t.bytes[..s.len()].copy_from_slice(s.as_bytes());
        t.len = s.len() as u8;
        t
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("ASCII")
    }

    fn then(self, more: Text) -> Text {
        Text::new(&format!("{}{}", self.as_str(), more.as_str()))
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Write(Val),
    Cas(Val, Val),
    Acquire,
    Release,
    /// Set: add element n (0..8). Counter: add n.
    Add(i8),
    /// Append model: replace the string.
    Put(Text),
    /// Append model: concatenate.
    Append(Text),
}

/// How an op completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Ok,
    Fail,
    Info,
    /// No completion at all.
    Pending,
}

#[derive(Debug, Clone)]
struct HOp {
    process: i64,
    key: Option<u8>,
    call: Call,
    /// What an `ok` read returned, as the state it saw.
    read: State,
    end: End,
    /// A final read (eventual consistency): the node it read from.
    node: Option<u8>,
    /// Event positions: the invocation, and the completion (any kind) if there is one.
    invoked_at: usize,
    completed_at: Option<usize>,
    /// The store's version of what the op read or wrote; written to the history
    /// only on an `ok` completion.
    version: Option<u64>,
}

impl HOp {
    fn indeterminate(&self) -> bool {
        matches!(self.end, End::Info | End::Pending)
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Invoke(usize),
    Complete(usize),
    Nemesis(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reg(Val),
    Lock(bool),
    /// A set of elements 0..8, one bit each.
    Set(u8),
    Count(i32),
    Str(Text),
}

/// What an op that is no `ok` read carries in `HOp::read`.
const NOTHING: State = State::Reg(None);

/// A history as the oracle sees it: ops, and the events in file order.
#[derive(Debug, Clone)]
struct Hist {
    model: ModelKind,
    init: State,
    ops: Vec<HOp>,
    events: Vec<Event>,
}

/// The sequential specification, written out from the model descriptions.
fn step(state: State, op: &HOp) -> Option<State> {
    use State::*;
    match (state, op.call) {
        // A read that did not complete `ok` returned nothing we know: always legal.
        // Otherwise it saw the whole state: a register's value, a set's members
        // (in any order), a counter's total, a string.
        (Reg(_) | Set(_) | Count(_) | Str(_), Call::Read) => {
            (op.end != End::Ok || state == op.read).then_some(state)
        }
        (Reg(_), Call::Write(w)) => Some(Reg(w)),
        (Reg(v), Call::Cas(old, new)) => (v == old).then_some(Reg(new)),
        (Lock(false), Call::Acquire) => Some(Lock(true)),
        (Lock(true), Call::Release) => Some(Lock(false)),
        (Set(members), Call::Add(x)) => Some(Set(members | 1 << x)),
        (Count(n), Call::Add(x)) => Some(Count(n + i32::from(x))),
        (Str(_), Call::Put(t)) => Some(Str(t)),
        (Str(s), Call::Append(t)) => Some(Str(s.then(t))),
        _ => None,
    }
}

/// `a` must be linearized before `b`: `a` completed `ok` before `b` was invoked.
fn precedes(a: &HOp, b: &HOp) -> bool {
    a.end == End::Ok && a.completed_at.is_some_and(|c| c < b.invoked_at)
}

/// Whether `holds` is true of the `ok` ops together with some subset of the
/// indeterminate ones (which may or may not have taken effect). A `fail` op never
/// took effect and is left out.
fn some_subset(ops: &[&HOp], holds: impl Fn(&[&HOp]) -> bool) -> bool {
    let ok: Vec<&HOp> = ops.iter().copied().filter(|o| o.end == End::Ok).collect();
    let maybe: Vec<&HOp> = ops.iter().copied().filter(|o| o.indeterminate()).collect();
    assert!(maybe.len() < 16, "the oracle is for small histories");
    (0..1u32 << maybe.len()).any(|mask| {
        let mut chosen = ok.clone();
        chosen.extend(
            maybe
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, o)| *o),
        );
        holds(&chosen)
    })
}

/// Is this one key's history linearizable from `init`? Brute force: every subset of
/// the indeterminate ops, every real-time-respecting order of the chosen ones.
fn oracle(ops: &[&HOp], init: State) -> bool {
    some_subset(ops, |chosen| some_order(chosen, init, precedes))
}

/// Tries every order of `ops` in which no op comes before one that `before` says
/// must precede it, running the model along it (one state per key); a prefix the
/// model rejects rejects every order that starts with it.
fn some_order(ops: &[&HOp], init: State, before: fn(&HOp, &HOp) -> bool) -> bool {
    // Keys are None and small integers.
    fn slot(k: Option<u8>) -> usize {
        k.map_or(0, |k| usize::from(k) + 1)
    }
    fn extend(
        ops: &[&HOp],
        before: fn(&HOp, &HOp) -> bool,
        placed: &mut [bool],
        left: usize,
        states: &mut [State; 8],
    ) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let waits = (0..ops.len()).any(|j| !placed[j] && j != i && before(ops[j], ops[i]));
            if waits {
                continue;
            }
            let k = slot(ops[i].key);
            if let Some(next) = step(states[k], ops[i]) {
                let was = std::mem::replace(&mut states[k], next);
                placed[i] = true;
                if extend(ops, before, placed, left - 1, states) {
                    return true;
                }
                placed[i] = false;
                states[k] = was;
            }
        }
        false
    }
    extend(
        ops,
        before,
        &mut vec![false; ops.len()],
        ops.len(),
        &mut [init; 8],
    )
}

impl Hist {
    fn keys(&self) -> BTreeSet<Option<u8>> {
        self.ops.iter().map(|o| o.key).collect()
    }

    fn ops_of(&self, key: Option<u8>) -> Vec<&HOp> {
        self.ops.iter().filter(|o| o.key == key).collect()
    }

    /// The keys whose sub-history the oracle finds not linearizable.
    fn invalid_keys(&self) -> BTreeSet<Option<u8>> {
        self.keys()
            .into_iter()
            .filter(|&k| !oracle(&self.ops_of(k), self.init))
            .collect()
    }

    /// The sub-history of the ops `keep` selects (by index), nemesis events kept:
    /// it brings events that lay far apart next to each other.
    fn only(&self, keep: impl Fn(usize) -> bool) -> Hist {
        let mut new_index = vec![None; self.ops.len()];
        let mut sub = Hist {
            ops: Vec::new(),
            events: Vec::new(),
            ..self.clone()
        };
        for e in &self.events {
            let at = sub.events.len();
            match *e {
                Event::Nemesis(f) => sub.events.push(Event::Nemesis(f)),
                Event::Invoke(i) if keep(i) => {
                    new_index[i] = Some(sub.ops.len());
                    sub.ops.push(HOp {
                        invoked_at: at,
                        completed_at: None,
                        ..self.ops[i].clone()
                    });
                    sub.events.push(Event::Invoke(sub.ops.len() - 1));
                }
                Event::Complete(i) => {
                    if let Some(n) = new_index[i] {
                        sub.ops[n].completed_at = Some(at);
                        sub.events.push(Event::Complete(n));
                    }
                }
                Event::Invoke(_) => {}
            }
        }
        sub
    }

    /// The history as a store that reports no versions records it.
    fn without_versions(&self) -> Hist {
        let mut h = self.clone();
        for o in &mut h.ops {
            o.version = None;
        }
        h
    }

    /// The history without its nemesis events.
    fn only_clients(&self) -> Hist {
        let mut sub = self.clone();
        sub.events.retain(|e| !matches!(e, Event::Nemesis(_)));
        for (at, e) in sub.events.iter().enumerate() {
            match *e {
                Event::Invoke(i) => sub.ops[i].invoked_at = at,
                Event::Complete(i) => sub.ops[i].completed_at = Some(at),
                Event::Nemesis(_) => {}
            }
        }
        sub
    }

    /// The op invoked on 1-based `line`, as `Report`s name ops.
    fn op_at_line(&self, line: usize) -> Result<usize, String> {
        match self.events.get(line.wrapping_sub(1)) {
            Some(Event::Invoke(i)) => Ok(*i),
            other => Err(format!("line {line} is no invocation: {other:?}")),
        }
    }

    fn init_json(&self) -> Value {
        match self.init {
            // Null is what the counter starts from when no init is given.
            State::Count(0) => Value::Null,
            other => state_json(other, 1),
        }
    }

    fn to_ops(&self) -> Vec<Op> {
        self.events
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let mut op = match *e {
                    Event::Nemesis(f) => Op::new(Process::Nemesis, OpType::Info, f, Value::Null),
                    Event::Invoke(i) => {
                        let o = &self.ops[i];
                        Op::new(
                            Process::Client(o.process),
                            OpType::Invoke,
                            fname(o.call),
                            input_json(o.call),
                        )
                    }
                    Event::Complete(i) => {
                        let o = &self.ops[i];
                        let (kind, value) = match o.end {
                            End::Ok if o.call == Call::Read => {
                                (OpType::Ok, state_json(o.read, o.invoked_at))
                            }
                            End::Ok => (OpType::Ok, input_json(o.call)),
                            End::Fail => (OpType::Fail, input_json(o.call)),
                            End::Info => (OpType::Info, input_json(o.call)),
                            End::Pending => unreachable!("a pending op has no completion"),
                        };
                        let mut op =
                            Op::new(Process::Client(o.process), kind, fname(o.call), value);
                        if o.end == End::Ok {
                            op.set_version(o.version);
                        }
                        op
                    }
                };
                if let Event::Invoke(i) | Event::Complete(i) = *e {
                    op.key = self.ops[i].key.map(|k| Key::Int(i64::from(k)));
                    if let Some(node) = self.ops[i].node {
                        op.node = Some(format!("n{node}").into());
                        op.is_final = true;
                    }
                }
                op.set_time(Some(n as i64 * 1_000_000));
                op
            })
            .collect()
    }

    fn to_history(&self) -> History {
        History::new("generated", self.to_ops(), None).expect("generated histories are well-formed")
    }

    /// The history as JSON Lines, for failure messages.
    fn jsonl(&self) -> String {
        let mut s = String::new();
        for op in self.to_ops() {
            s.push_str(&jsonl::to_line(&op));
            s.push('\n');
        }
        s
    }

    /// Reads a parsed history into the oracle's form, pairing ops by process itself.
    fn from_history(h: &History, model: ModelKind, init: &Value) -> Hist {
        let mut hist = Hist {
            model,
            init: json_state(model, init),
            ops: Vec::new(),
            events: Vec::new(),
        };
        let mut open: HashMap<i64, usize> = HashMap::new();
        let mut names: HashMap<String, u8> = HashMap::new();
        for op in h.ops() {
            let Process::Client(p) = op.process else {
                hist.events.push(Event::Nemesis("nemesis"));
                continue;
            };
            let at = hist.events.len();
            let key = op.key.as_ref().map(|k| match k {
                Key::Int(k) => u8::try_from(*k).expect("small integer keys"),
                Key::Str(s) => {
                    let next = names.len() as u8;
                    *names.entry(s.to_string()).or_insert(next)
                }
            });
            if op.kind == OpType::Invoke {
                let text = || Text::new(op.value.as_str().unwrap_or_default());
                let call = match (&*op.f, model) {
                    ("read", _) => Call::Read,
                    ("write", ModelKind::Append) => Call::Put(text()),
                    ("write", _) => Call::Write(json_val(&op.value.json())),
                    ("cas", _) => {
                        Call::Cas(json_val(&op.value.json()[0]), json_val(&op.value.json()[1]))
                    }
                    ("acquire", _) => Call::Acquire,
                    ("release", _) => Call::Release,
                    ("add", _) => Call::Add(small(&op.value.json())),
                    ("append", _) => Call::Append(text()),
                    (other, _) => panic!("the oracle has no `{other}`"),
                };
                open.insert(p, hist.ops.len());
                hist.events.push(Event::Invoke(hist.ops.len()));
                hist.ops.push(HOp {
                    process: p,
                    key,
                    call,
                    read: NOTHING,
                    end: End::Pending,
                    node: op
                        .is_final
                        .then(|| op.node.as_deref()?.strip_prefix('n')?.parse().ok())
                        .flatten(),
                    invoked_at: at,
                    completed_at: None,
                    version: None,
                });
            } else {
                let i = open
                    .remove(&p)
                    .expect("a completion follows its invocation");
                let o = &mut hist.ops[i];
                o.end = match op.kind {
                    OpType::Ok => End::Ok,
                    OpType::Fail => End::Fail,
                    _ => End::Info,
                };
                if o.call == Call::Read && o.end == End::Ok {
                    o.read = json_state(model, &op.value.json());
                }
                if o.end == End::Ok {
                    o.version = op.version();
                }
                o.completed_at = Some(at);
                hist.events.push(Event::Complete(i));
            }
        }
        hist
    }
}

fn fname(c: Call) -> &'static str {
    match c {
        Call::Read => "read",
        Call::Write(_) | Call::Put(_) => "write",
        Call::Cas(..) => "cas",
        Call::Acquire => "acquire",
        Call::Release => "release",
        Call::Add(_) => "add",
        Call::Append(_) => "append",
    }
}

fn val_json(v: Val) -> Value {
    v.map_or(Value::Null, Value::from)
}

fn json_val(v: &Value) -> Val {
    match v {
        Value::Null => None,
        other => Some(
            other
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .unwrap_or_else(|| panic!("the oracle only knows small integers, not {other}")),
        ),
    }
}

fn small(v: &Value) -> i8 {
    v.as_i64()
        .and_then(|n| i8::try_from(n).ok())
        .unwrap_or_else(|| panic!("the oracle only knows small integers, not {v}"))
}

fn input_json(c: Call) -> Value {
    match c {
        Call::Write(v) => val_json(v),
        Call::Cas(a, b) => json!([val_json(a), val_json(b)]),
        Call::Add(n) => json!(n),
        Call::Put(t) => state_json(State::Str(t), 1),
        Call::Append(t) => json!(t.as_str()),
        Call::Read | Call::Acquire | Call::Release => Value::Null,
    }
}

/// A state as JSON, as a read returns it or the initial value gives it. `vary`
/// picks among equal spellings (a set's order and repeats; null for an empty set
/// or string), so that the checker must compare values as the model does.
fn state_json(s: State, vary: usize) -> Value {
    match s {
        State::Reg(v) => val_json(v),
        State::Lock(locked) => json!(if locked { "locked" } else { "unlocked" }),
        State::Set(0) | State::Str(Text { len: 0, .. }) if vary % 2 == 1 => Value::Null,
        State::Set(members) => {
            let mut xs: Vec<u8> = (0..8).filter(|x| members & 1 << x != 0).collect();
            if vary % 2 == 1 {
                xs.reverse();
            }
            if vary.is_multiple_of(3) {
                xs.extend(xs.first().copied());
            }
            json!(xs)
        }
        State::Count(n) => json!(n),
        State::Str(t) => json!(t.as_str()),
    }
}

/// A JSON value (a read's, the initial one) as the state it names.
fn json_state(model: ModelKind, v: &Value) -> State {
    match model {
        ModelKind::Mutex => State::Lock(v == "locked" || v == &json!(true)),
        ModelKind::Set => State::Set(
            v.as_array()
                .into_iter()
                .flatten()
                .fold(0, |m, x| m | 1 << small(x)),
        ),
        ModelKind::Counter => State::Count(v.as_i64().map_or(0, |n| n as i32)),
        ModelKind::Append => State::Str(Text::new(v.as_str().unwrap_or_default())),
        _ => State::Reg(json_val(v)),
    }
}

// ---------------------------------------------------------------------------
// Comparing the checker with the oracle.

fn run_checker(h: &Hist) -> Report {
    let opts = Options {
        model: h.model,
        init: h.init_json(),
        witness: true,
        ..Options::default()
    };
    check(&h.to_history(), &opts).expect("generated histories fit their model")
}

/// Everything the checker says about `h` that the oracle can confirm.
fn agree(h: &Hist) -> Result<(), String> {
    let report = run_checker(h);
    let bad = h.invalid_keys();
    let expected = if bad.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    if report.verdict != expected {
        return Err(format!(
            "checker says {:?}, oracle says {expected:?} (oracle's invalid keys: {bad:?})",
            report.verdict
        ));
    }
    let key_json = |k: Option<u8>| k.map(Value::from);
    if h.keys().iter().any(Option::is_some) {
        let reported: BTreeSet<String> =
            report.invalid_keys.iter().map(|k| k.to_string()).collect();
        let oracle: BTreeSet<String> = bad
            .iter()
            .map(|&k| key_json(k).unwrap_or_default().to_string())
            .collect();
        if reported != oracle {
            return Err(format!(
                "invalid keys: checker {reported:?}, oracle {oracle:?}"
            ));
        }
    }
    match expected {
        Verdict::Valid => {
            let witnesses = report
                .witness
                .as_ref()
                .ok_or("a valid history has no witness")?;
            let keys = h.keys();
            if witnesses.len() != keys.len() {
                return Err(format!(
                    "{} witnesses for {} keys",
                    witnesses.len(),
                    keys.len()
                ));
            }
            for w in witnesses {
                let key = keys
                    .iter()
                    .copied()
                    .find(|&k| key_json(k) == w.key)
                    .ok_or_else(|| format!("witness for unknown key {:?}", w.key))?;
                let order = w
                    .order
                    .iter()
                    .map(|o| h.op_at_line(o.line))
                    .collect::<Result<Vec<_>, _>>()?;
                witness_is_legal(h, key, &order)
                    .map_err(|e| format!("witness for key {key:?}: {e}"))?;
            }
        }
        _ => {
            let c = report
                .counterexample
                .as_ref()
                .and_then(|c| c.linearizable())
                .ok_or("an invalid history has no counterexample")?;
            let key = match &c.key {
                None => None,
                Some(k) => Some(
                    k.as_u64()
                        .and_then(|k| u8::try_from(k).ok())
                        .ok_or_else(|| format!("counterexample for unknown key {k}"))?,
                ),
            };
            if !bad.contains(&key) {
                return Err(format!(
                    "counterexample for key {key:?}, which the oracle finds valid"
                ));
            }
            let culprit = h.op_at_line(c.op.line)?;
            let shrunk = c
                .shrunk
                .iter()
                .map(|o| h.op_at_line(o.line))
                .collect::<Result<BTreeSet<_>, _>>()?;
            if !shrunk.contains(&culprit) {
                return Err(format!(
                    "shrunk counterexample (lines {:?}) lacks the culprit on line {}",
                    c.shrunk.iter().map(|o| o.line).collect::<Vec<_>>(),
                    c.op.line
                ));
            }
            if h.ops[culprit].key != key || shrunk.iter().any(|&i| h.ops[i].key != key) {
                return Err("counterexample mixes keys".into());
            }
            let sub: Vec<&HOp> = shrunk.iter().map(|&i| &h.ops[i]).collect();
            if oracle(&sub, h.init) {
                return Err(format!(
                    "shrunk counterexample (lines {:?}) is linearizable",
                    c.shrunk.iter().map(|o| o.line).collect::<Vec<_>>()
                ));
            }
        }
    }
    Ok(())
}

/// A witness must hold every `ok` op of its key and nothing that failed, once each,
/// in an order that respects real time and that the model accepts.
fn witness_is_legal(h: &Hist, key: Option<u8>, order: &[usize]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for &i in order {
        let o = &h.ops[i];
        if !seen.insert(i) {
            return Err(format!("op on line {} twice", o.invoked_at + 1));
        }
        if o.key != key || o.end == End::Fail {
            return Err(format!(
                "op on line {} does not belong: {o:?}",
                o.invoked_at + 1
            ));
        }
    }
    if let Some(o) = h
        .ops_of(key)
        .into_iter()
        .find(|o| o.end == End::Ok && !order.iter().any(|&i| h.ops[i].invoked_at == o.invoked_at))
    {
        return Err(format!("ok op on line {} is missing", o.invoked_at + 1));
    }
    for (n, &a) in order.iter().enumerate() {
        for &b in &order[n + 1..] {
            if precedes(&h.ops[b], &h.ops[a]) {
                return Err(format!(
                    "line {} is ordered before line {}, which completed before it began",
                    h.ops[a].invoked_at + 1,
                    h.ops[b].invoked_at + 1
                ));
            }
        }
    }
    let mut state = h.init;
    for &i in order {
        state = step(state, &h.ops[i]).ok_or_else(|| {
            format!(
                "op on line {} is illegal in state {state:?}",
                h.ops[i].invoked_at + 1
            )
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generating histories. Both generators run a real sequential execution and
// record what the clients saw, so an unperturbed history is always linearizable;
// then `perturb` lies about an op or two, which often makes it invalid. They are
// driven by a tape of choices, so proptest shrinks toward short tapes and zeros:
// few ops, few processes, plain sequential behaviour.
//
// - `by_steps` interleaves worker actions one at a time (invoke, take effect,
//   complete ok/fail/info, give up): processes behave like Jepsen workers.
// - `by_intervals` fixes the linearization first (op k takes effect at time 10k)
//   and then places each invocation and completion a random distance before and
//   after that point, so intervals overlap heavily and events land right next to
//   one another, which is where off-by-one bugs in interval handling live.

struct Tape<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Tape<'_> {
    fn new(bytes: &[u8]) -> Tape<'_> {
        Tape { bytes, at: 0 }
    }

    /// The next choice in `0..n`; 0 once the tape runs out.
    fn pick(&mut self, n: usize) -> usize {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(b) % n
    }
}

const MAX_OPS: usize = 8;
const MAX_SLOTS: usize = 4;
const MAX_STEPS: usize = 48;
const VALS: [Val; 4] = [None, Some(0), Some(1), Some(2)];

fn random_init(model: ModelKind, t: &mut Tape) -> State {
    match model {
        ModelKind::Mutex => State::Lock(t.pick(4) == 3),
        ModelKind::Set => State::Set([0, 0, 0b1][t.pick(3)]),
        ModelKind::Counter => State::Count([0, 0, 2, -1][t.pick(4)]),
        ModelKind::Append => State::Str(Text::new(["", "", "x"][t.pick(3)])),
        _ => State::Reg([None, None, Some(0)][t.pick(3)]),
    }
}

/// Any state of the model, for a lying read.
fn random_state(model: ModelKind, t: &mut Tape) -> State {
    match model {
        ModelKind::Mutex => State::Lock(t.pick(2) == 1),
        ModelKind::Set => State::Set(t.pick(16) as u8),
        ModelKind::Counter => State::Count(t.pick(8) as i32 - 2),
        ModelKind::Append => State::Str(Text::new(["", "a", "ab", "ba", "x", "b"][t.pick(6)])),
        _ => State::Reg(VALS[t.pick(4)]),
    }
}

/// One of the first `n` letters.
fn letter(n: usize) -> Text {
    Text::new(&"abcd"[n..=n])
}

/// A random op, most often one that `now` (the object's state when it will likely
/// take effect) accepts, so that cas and acquire succeed as often as they fail.
/// Values written lie in `0..values`: few values make repeats common, more make
/// values unique to one writer, which the checker's pruning relies on.
fn random_call(model: ModelKind, now: State, values: usize, t: &mut Tape) -> Call {
    let val = |t: &mut Tape| Some(t.pick(values) as u8);
    let likely = t.pick(4) != 0;
    match (model, now, t.pick(3)) {
        (ModelKind::Mutex, State::Lock(locked), _) if likely => {
            if locked {
                Call::Release
            } else {
                Call::Acquire
            }
        }
        (ModelKind::Mutex, _, 0 | 1) => Call::Acquire,
        (ModelKind::Mutex, _, _) => Call::Release,
        (_, _, 0) => Call::Read,
        (ModelKind::Set, _, _) => Call::Add(t.pick(values) as i8),
        // Counter adds may be negative or zero.
        (ModelKind::Counter, _, _) => Call::Add(t.pick(values + 1) as i8 - 1),
        (ModelKind::Append, _, 1) => Call::Append(letter(t.pick(values))),
        (ModelKind::Append, _, _) => match t.pick(values + 1) {
            0 => Call::Put(Text::new("")),
            n => Call::Put(letter(n - 1)),
        },
        (ModelKind::CasRegister, State::Reg(v), 2) => {
            let old = match (likely, t.pick(values + 1)) {
                (true, _) => v,
                (false, 0) => None,
                (false, _) => val(t),
            };
            Call::Cas(old, val(t))
        }
        _ => Call::Write(val(t)),
    }
}

fn empty(model: ModelKind, init: State) -> Hist {
    Hist {
        model,
        init,
        ops: Vec::new(),
        events: Vec::new(),
    }
}

/// The real object, one per key, as a store like etcd keeps it: each write that
/// takes effect gets the next revision (one counter for all keys), and a read
/// returns the revision of the write it saw (none for the initial value).
struct Store {
    states: [State; 2],
    versions: [Option<u64>; 2],
    revision: u64,
}

impl Store {
    fn new(init: State) -> Store {
        Store {
            states: [init; 2],
            versions: [None; 2],
            revision: 0,
        }
    }
}

impl std::ops::Index<usize> for Store {
    type Output = State;
    fn index(&self, k: usize) -> &State {
        &self.states[k]
    }
}

/// Applies op `o` to the real object, recording what a read saw and the version.
/// False when the model refuses it (a cas whose expected value is not there, an
/// acquire of a held lock): then it did not take effect and must not end `ok`.
fn apply(object: &mut Store, o: &mut HOp) -> bool {
    let k = usize::from(o.key.unwrap_or(0));
    if o.call == Call::Read {
        o.read = object.states[k];
        o.version = object.versions[k];
    }
    let as_ok = HOp {
        end: End::Ok,
        ..o.clone()
    };
    match step(object.states[k], &as_ok) {
        Some(next) => {
            object.states[k] = next;
            if o.call != Call::Read {
                object.revision += 1;
                object.versions[k] = Some(object.revision);
                o.version = Some(object.revision);
            }
            true
        }
        None => false,
    }
}

/// Where an invoked op stands in the simulated execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Not linearized yet: it may still take effect.
    InFlight,
    Took,
    /// The model refused it: it fails.
    Refused,
    /// Completed `fail` before taking effect: it never will.
    Dead,
}

fn by_steps(model: ModelKind, keyed: bool, t: &mut Tape) -> Hist {
    let n_ops = 2 + t.pick(MAX_OPS - 1);
    let n_slots = 1 + t.pick(MAX_SLOTS);
    let mut h = empty(model, random_init(model, t));
    let values = 2 + t.pick(3);
    // The real object, one per key.
    let mut object = Store::new(h.init);
    let mut fate: Vec<Fate> = Vec::new();
    // The open op of each worker slot, and the process id it uses now: a process
    // whose op ended `info` or was abandoned never invokes again.
    let mut slots: Vec<Option<usize>> = vec![None; n_slots];
    let mut pids: Vec<i64> = (0..n_slots as i64).collect();
    let mut next_pid = n_slots as i64;

    let linearize = |i: usize, h: &mut Hist, fate: &mut Vec<Fate>, object: &mut Store| {
        fate[i] = if apply(object, &mut h.ops[i]) {
            Fate::Took
        } else {
            Fate::Refused
        };
    };
    let complete = |i: usize, end: End, h: &mut Hist| {
        h.ops[i].end = end;
        h.ops[i].completed_at = Some(h.events.len());
        h.events.push(Event::Complete(i));
    };
    let invoke = |s: usize, call: Call, key: Option<u8>, h: &mut Hist, pids: &[i64]| {
        let i = h.ops.len();
        h.ops.push(HOp {
            process: pids[s],
            key,
            call,
            read: NOTHING,
            node: None,
            end: End::Pending,
            invoked_at: h.events.len(),
            completed_at: None,
            version: None,
        });
        h.events.push(Event::Invoke(i));
        i
    };

    for _ in 0..MAX_STEPS {
        let open: Vec<usize> = (0..n_slots).filter(|&s| slots[s].is_some()).collect();
        let idle: Vec<usize> = (0..n_slots).filter(|&s| slots[s].is_none()).collect();
        let can_invoke = h.ops.len() < n_ops && !idle.is_empty();
        if !can_invoke && open.is_empty() {
            break;
        }
        let in_flight: Vec<usize> = (0..h.ops.len())
            .filter(|&i| fate[i] == Fate::InFlight)
            .collect();
        match t.pick(16) {
            // Invoke on an idle worker.
            1..=4 if can_invoke => {
                let s = idle[t.pick(idle.len())];
                let key = keyed.then(|| t.pick(2) as u8);
                let call = random_call(model, object[usize::from(key.unwrap_or(0))], values, t);
                slots[s] = Some(invoke(s, call, key, &mut h, &pids));
                fate.push(Fate::InFlight);
            }
            // An op in flight (open, or already returned info) takes effect.
            5..=8 if !in_flight.is_empty() => {
                let i = in_flight[t.pick(in_flight.len())];
                linearize(i, &mut h, &mut fate, &mut object);
            }
            // An open op completes.
            9..=12 if !open.is_empty() => {
                let s = open[t.pick(open.len())];
                let i = slots[s].take().unwrap_or_default();
                let end = match (fate[i], t.pick(4)) {
                    (Fate::InFlight, 0) => {
                        fate[i] = Fate::Dead;
                        End::Fail
                    }
                    (_, 1) => End::Info,
                    (Fate::InFlight, _) => {
                        linearize(i, &mut h, &mut fate, &mut object);
                        if fate[i] == Fate::Took {
                            End::Ok
                        } else {
                            End::Fail
                        }
                    }
                    (Fate::Took, _) => End::Ok,
                    _ => End::Fail,
                };
                complete(i, end, &mut h);
                if end == End::Info {
                    pids[s] = next_pid;
                    next_pid += 1;
                }
            }
            // A worker gives up on its op: it never completes.
            13 if !open.is_empty() => {
                let s = open[t.pick(open.len())];
                slots[s] = None;
                pids[s] = next_pid;
                next_pid += 1;
            }
            14 => h.events.push(Event::Nemesis(
                ["start-partition", "stop-partition"][t.pick(2)],
            )),
            // Otherwise make progress in the plainest way: finish the first open op,
            // or invoke a read (an acquire) on the first idle worker.
            _ => {
                if let Some(&s) = open.first() {
                    let i = slots[s].take().unwrap_or_default();
                    if fate[i] == Fate::InFlight {
                        linearize(i, &mut h, &mut fate, &mut object);
                    }
                    let end = if fate[i] == Fate::Took {
                        End::Ok
                    } else {
                        End::Fail
                    };
                    complete(i, end, &mut h);
                } else if can_invoke {
                    let call = match model {
                        ModelKind::Mutex => Call::Acquire,
                        _ => Call::Read,
                    };
                    let key = keyed.then_some(0);
                    slots[idle[0]] = Some(invoke(idle[0], call, key, &mut h, &pids));
                    fate.push(Fate::InFlight);
                }
            }
        }
    }
    h
}

fn by_intervals(model: ModelKind, keyed: bool, t: &mut Tape) -> Hist {
    let n_ops = 2 + t.pick(MAX_OPS - 1);
    // How far an invocation or completion may lie from the op's linearization
    // point: from one neighbour to the whole history.
    let slack = 10 * (1 + t.pick(MAX_OPS));
    let mut h = empty(model, random_init(model, t));
    let values = 2 + t.pick(3);
    let mut object = Store::new(h.init);
    // (time, op, is completion); the op's own numbering breaks ties.
    let mut times: Vec<(usize, usize, bool)> = Vec::new();
    for k in 0..n_ops {
        let at = 10 * k + slack;
        let key = keyed.then(|| t.pick(2) as u8);
        let mut o = HOp {
            process: 0,
            key,
            call: random_call(model, object[usize::from(key.unwrap_or(0))], values, t),
            read: NOTHING,
            node: None,
            end: End::Ok,
            invoked_at: 0,
            completed_at: None,
            version: None,
        };
        // Whether it takes effect at `at`, and how the client learns of it.
        let (takes_effect, end) = match t.pick(8) {
            0..=3 => (true, End::Ok),
            4 => (true, End::Info),
            5 => (true, End::Pending),
            6 => (false, End::Fail),
            _ => (false, [End::Info, End::Pending][t.pick(2)]),
        };
        o.end = end;
        if takes_effect && !apply(&mut object, &mut o) && end == End::Ok {
            o.end = End::Fail;
        }
        let invoked = at - t.pick(slack);
        times.push((invoked, k, false));
        let done = match o.end {
            End::Pending => None,
            // The client may hear of an indeterminate or failed op at any time.
            End::Info | End::Fail => Some(invoked + 1 + t.pick(2 * slack)),
            End::Ok => Some(at + t.pick(slack)),
        };
        times.extend(done.map(|d| (d, k, true)));
        h.ops.push(o);
    }
    times.sort_unstable();
    // Processes: a free one (last op ended ok or fail) or a fresh one.
    let mut free: BTreeSet<i64> = BTreeSet::new();
    let mut next_pid = 0;
    for (n, &(_, k, is_completion)) in times.iter().enumerate() {
        if n > 0 && t.pick(12) == 0 {
            h.events.push(Event::Nemesis("kill"));
        }
        let at = h.events.len();
        let o = &mut h.ops[k];
        if is_completion {
            o.completed_at = Some(at);
            h.events.push(Event::Complete(k));
            if matches!(o.end, End::Ok | End::Fail) {
                free.insert(o.process);
            }
        } else {
            o.process = free.pop_first().unwrap_or_else(|| {
                next_pid += 1;
                next_pid - 1
            });
            o.invoked_at = at;
            h.events.push(Event::Invoke(k));
        }
    }
    // Number ops in invocation order, as a history reads.
    let mut order: Vec<usize> = (0..h.ops.len()).collect();
    order.sort_by_key(|&i| h.ops[i].invoked_at);
    let mut renumber = vec![0; h.ops.len()];
    for (new, &old) in order.iter().enumerate() {
        renumber[old] = new;
    }
    h.ops = order.iter().map(|&i| h.ops[i].clone()).collect();
    for e in &mut h.events {
        if let Event::Invoke(i) | Event::Complete(i) = e {
            *i = renumber[*i];
        }
    }
    h
}

/// Lies about an op or two (or nothing): a read's value, whether an op failed,
/// what a write wrote.
fn perturb(h: &mut Hist, t: &mut Tape) {
    for _ in 0..t.pick(4) {
        if h.ops.is_empty() {
            return;
        }
        let i = t.pick(h.ops.len());
        let lie = random_state(h.model, t);
        let any_val = match lie {
            State::Reg(v) => v,
            _ => None,
        };
        let o = &mut h.ops[i];
        match (o.end, o.call, t.pick(3)) {
            (End::Ok, Call::Read, _) => o.read = lie,
            (End::Ok, _, 0) | (End::Info, _, 0) => o.end = End::Fail,
            (End::Fail | End::Info, call, _) => {
                o.end = End::Ok;
                if call == Call::Read {
                    o.read = lie;
                }
            }
            (_, Call::Write(_), _) => o.call = Call::Write(any_val.or(Some(0))),
            (_, Call::Cas(_, new), _) => o.call = Call::Cas(any_val, new),
            (_, Call::Acquire, _) => o.call = Call::Release,
            (_, Call::Release, _) => o.call = Call::Acquire,
            (_, Call::Add(n), _) => o.call = Call::Add(n + 1),
            (_, Call::Put(t), _) => o.call = Call::Append(t),
            (_, Call::Append(t), _) => o.call = Call::Put(t),
            (_, Call::Read, _) => {}
        }
    }
}

/// What a correct system would record: always linearizable. Without the store's
/// versions: the properties above are about the search.
fn generate_honest(model: ModelKind, keyed: bool, tape: &[u8]) -> Hist {
    generate_honest_versioned(model, keyed, tape).without_versions()
}

/// What a correct store would record, with its versions.
fn generate_honest_versioned(model: ModelKind, keyed: bool, tape: &[u8]) -> Hist {
    let mut t = Tape::new(tape);
    if t.pick(2) == 0 {
        by_steps(model, keyed, &mut t)
    } else {
        by_intervals(model, keyed, &mut t)
    }
}

/// An honest history from `tape`, then lies from `lies`: perturbed ops, and
/// sometimes only a sub-history.
fn generate(model: ModelKind, keyed: bool, tape: &[u8], lies: &[u8]) -> Hist {
    let mut h = generate_honest(model, keyed, tape);
    let mut t = Tape::new(lies);
    perturb(&mut h, &mut t);
    if t.pick(2) == 1 {
        // Drop some ops (never all), bringing events that lay apart together.
        let keep: Vec<bool> = (0..h.ops.len()).map(|_| t.pick(3) != 0).collect();
        h = h.only(|i| keep[i] || i == 0 && !keep.contains(&true));
    }
    h
}

fn tape() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..160)
}

fn lies() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

/// 5,000 cases per property; set `PROPTEST_CASES` for a longer hunt.
fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(5000),
        // Failures are kept as named tests below, not in a regressions file.
        failure_persistence: None,
        ..Config::default()
    }
}

/// The models the oracle knows, in `ModelKind::ALL`'s order.
fn model_of(n: usize) -> ModelKind {
    ModelKind::ALL[n]
}

/// Checks `h` with `agree`; on disagreement, fails with the smallest sub-history
/// that still disagrees (ops and nemesis events removed one at a time), ready to
/// save as a `.jsonl` file, and the generated one.
fn verify_with(h: &Hist, agree: fn(&Hist) -> Result<(), String>) -> Result<(), TestCaseError> {
    let Err(first) = agree(h) else {
        return Ok(());
    };
    let mut small = h.clone();
    let mut err = first.clone();
    'shrink: loop {
        let without_nemesis = small.only_clients();
        let candidates = std::iter::once(without_nemesis)
            .chain((0..small.ops.len()).map(|i| small.only(|j| j != i)))
            .filter(|c| !c.ops.is_empty() && c.events.len() < small.events.len());
        for c in candidates {
            if let Err(e) = agree(&c) {
                small = c;
                err = e;
                continue 'shrink;
            }
        }
        break;
    }
    Err(TestCaseError::fail(format!(
        "{err}\nsmallest such history ({}, init {}):\n{}\n\
         as generated ({first}):\n{}",
        small.model,
        small.init_json(),
        small.jsonl(),
        h.jsonl()
    )))
}

fn verify(h: &Hist) -> Result<(), TestCaseError> {
    verify_with(h, agree)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn register_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::Register, false, &tape, &lies))?;
    }

    #[test]
    fn cas_register_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::CasRegister, false, &tape, &lies))?;
    }

    #[test]
    fn mutex_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::Mutex, false, &tape, &lies))?;
    }

    #[test]
    fn set_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::Set, false, &tape, &lies))?;
    }

    #[test]
    fn counter_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::Counter, false, &tape, &lies))?;
    }

    #[test]
    fn append_agrees_with_oracle(tape in tape(), lies in lies()) {
        verify(&generate(ModelKind::Append, false, &tape, &lies))?;
    }

    #[test]
    fn keyed_histories_agree_with_oracle_key_by_key(
        model in 0..ModelKind::ALL.len(),
        tape in tape(),
        lies in lies(),
    ) {
        verify(&generate(model_of(model), true, &tape, &lies))?;
    }
}

// ---------------------------------------------------------------------------
// Sequential consistency, by brute force.
//
// The whole history is one object (all keys together: sequential consistency is not
// compositional). Every subset of the indeterminate ops joins the `ok` ops, and
// every order that respects program order is tried: op `a` must come before `b`
// when both belong to one process, `a` completed `ok`, and `a` was invoked first.
// An indeterminate op is bound only by the ops its process completed before it.

/// `a` must come before `b` in any sequential order.
fn program_precedes(a: &HOp, b: &HOp) -> bool {
    a.process == b.process && a.end == End::Ok && a.invoked_at < b.invoked_at
}

/// Is the whole history sequentially consistent?
fn seq_oracle(h: &Hist) -> bool {
    let ops: Vec<&HOp> = h.ops.iter().collect();
    some_subset(&ops, |chosen| some_order(chosen, h.init, program_precedes))
}

fn run_at(h: &Hist, consistency: Consistency) -> Report {
    let opts = Options {
        model: h.model,
        init: h.init_json(),
        witness: true,
        consistency,
        ..Options::default()
    };
    check(&h.to_history(), &opts).expect("generated histories fit their model")
}

/// The sequential checker against the oracle: the verdicts agree; a witness is a
/// legal order of every `ok` op that respects program order; a shrunk
/// counterexample is itself not sequentially consistent. And whatever is
/// linearizable is sequentially consistent.
fn seq_agree(h: &Hist) -> Result<(), String> {
    let report = run_at(h, Consistency::Sequential);
    let expected = if seq_oracle(h) {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    if report.verdict != expected {
        return Err(format!(
            "sequential checker says {:?}, oracle {expected:?}",
            report.verdict
        ));
    }
    if expected == Verdict::Invalid && run_checker(h).verdict == Verdict::Valid {
        return Err("linearizable, yet not sequentially consistent".into());
    }
    match &report.witness {
        Some(ws) => {
            let order = ws[0]
                .order
                .iter()
                .map(|o| h.op_at_line(o.line))
                .collect::<Result<Vec<_>, _>>()?;
            for &i in &order {
                if h.ops[i].end == End::Fail {
                    return Err(format!("failed op on line {} in the witness", i + 1));
                }
            }
            if let Some(o) = h
                .ops
                .iter()
                .enumerate()
                .find(|(i, o)| o.end == End::Ok && !order.contains(i))
            {
                return Err(format!("ok op on line {} is missing", o.1.invoked_at + 1));
            }
            let chosen: Vec<&HOp> = order.iter().map(|&i| &h.ops[i]).collect();
            for (n, a) in chosen.iter().enumerate() {
                if chosen[n + 1..].iter().any(|b| program_precedes(b, a)) {
                    return Err(format!(
                        "witness breaks program order at line {}",
                        a.invoked_at + 1
                    ));
                }
            }
            let mut states = [h.init; 4];
            for o in &chosen {
                let k = o.key.map_or(0, |k| k as usize + 1);
                states[k] = step(states[k], o)
                    .ok_or_else(|| format!("witness: line {} is illegal", o.invoked_at + 1))?;
            }
        }
        None if expected == Verdict::Valid => return Err("no witness".into()),
        None => {
            let c = report
                .counterexample
                .as_ref()
                .and_then(|c| c.sequential())
                .ok_or("an invalid history has no sequential counterexample")?;
            let lines = c
                .shrunk
                .iter()
                .map(|o| h.op_at_line(o.line))
                .collect::<Result<BTreeSet<usize>, _>>()?;
            let sub = h.only(|i| lines.contains(&i));
            if seq_oracle(&sub) {
                return Err(format!(
                    "shrunk counterexample (ops {lines:?}) is sequentially consistent"
                ));
            }
        }
    }
    Ok(())
}

/// `h` followed by final reads, each `(key, node, what it returned, how it ended)`,
/// one after another on fresh processes.
fn add_finals(h: &Hist, reads: &[(Option<u8>, u8, State, End)]) -> Hist {
    let mut h = h.clone();
    for (n, &(key, node, read, end)) in reads.iter().enumerate() {
        let i = h.ops.len();
        h.ops.push(HOp {
            process: 100 + n as i64,
            key,
            call: Call::Read,
            read,
            end,
            node: Some(node),
            invoked_at: h.events.len(),
            completed_at: None,
            version: None,
        });
        h.events.push(Event::Invoke(i));
        if end != End::Pending {
            h.ops[i].completed_at = Some(h.events.len());
            h.events.push(Event::Complete(i));
        }
    }
    h
}

/// `h` followed by a final read of every key on three nodes, returning the value
/// its linearization (the checker's witness, replayed by the oracle's model) leaves.
fn with_final_reads(h: &Hist) -> Hist {
    let report = run_checker(h);
    let mut reads = Vec::new();
    for w in report.witness.expect("honest histories are linearizable") {
        let mut state = h.init;
        for o in &w.order {
            let i = h.op_at_line(o.line).expect("witness ops are invocations");
            state = step(state, &h.ops[i]).expect("the witness is legal");
        }
        let key = w.key.as_ref().map(|k| small(k) as u8);
        reads.extend((0..3).map(|node| (key, node, state, End::Ok)));
    }
    add_finals(h, &reads)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sequential_agrees_with_oracle(
        model in 0..ModelKind::ALL.len(),
        keyed in any::<bool>(),
        tape in tape(),
        lies in lies(),
    ) {
        verify_with(&generate(model_of(model), keyed, &tape, &lies), seq_agree)?;
    }

    #[test]
    fn honest_histories_hold_at_every_level(
        model in 0..ModelKind::ALL.len(),
        keyed in any::<bool>(),
        tape in tape(),
    ) {
        let h = generate_honest(model_of(model), keyed, &tape);
        for level in [Consistency::Linearizable, Consistency::Sequential] {
            let r = run_at(&h, level);
            prop_assert_eq!(r.verdict, Verdict::Valid, "{} at {}:\n{}", h.model, level, h.jsonl());
        }
        if h.model != ModelKind::Mutex {
            // After the run, every node reads the value the execution left.
            let with_finals = with_final_reads(&h);
            let opts = Options {
                model: h.model,
                init: h.init_json(),
                consistency: Consistency::All,
                ..Options::default()
            };
            let r = check(&with_finals.to_history(), &opts).expect("fits the model");
            prop_assert_eq!(r.strongest, Some("linearizable"), "{}", with_finals.jsonl());
            prop_assert!(r.ruled_out.is_empty() && r.undecided.is_empty(), "{:?}", r.ruled_out);
        }
    }
}

// ---------------------------------------------------------------------------
// Eventual consistency, by brute force.
//
// Per key, the final reads that completed `ok` must agree (as the model compares
// values: sets as sets, an absent string as ""), and what they agree on must be
// something the clients could have caused, as the checker's documentation
// promises:
//
// - register: the initial value, or a value written by an op that did not fail;
// - set: the initial members, the `ok` adds and some subset of the indeterminate
//   adds (tried one subset at a time);
// - counter: between the least and the most that the initial count, the `ok` adds
//   and some subset of the indeterminate adds make (the bounds Jepsen's counter
//   checker uses, so not necessarily one of those sums);
// - append: anything (only agreement is promised).
//
// No `ok` final read at all: nothing to judge, the verdict is unknown.

/// The keys whose final reads break eventual consistency; `None` when no final
/// read completed `ok`.
fn ev_invalid_keys(h: &Hist) -> Option<BTreeSet<Option<u8>>> {
    let finals: Vec<&HOp> = h
        .ops
        .iter()
        .filter(|o| o.node.is_some() && o.end == End::Ok)
        .collect();
    if finals.is_empty() {
        return None;
    }
    let keys: BTreeSet<Option<u8>> = finals.iter().map(|o| o.key).collect();
    let converged = |k: Option<u8>| {
        let seen: Vec<State> = finals
            .iter()
            .filter(|o| o.key == k)
            .map(|o| o.read)
            .collect();
        let clients: Vec<&HOp> = h
            .ops_of(k)
            .into_iter()
            .filter(|o| o.node.is_none())
            .collect();
        seen.iter().all(|&s| s == seen[0]) && could_cause(h.init, &clients, seen[0])
    };
    Some(keys.into_iter().filter(|&k| !converged(k)).collect())
}

/// Whether the clients' `ops` on one key, from `init`, could leave `seen`.
fn could_cause(init: State, ops: &[&HOp], seen: State) -> bool {
    // What the adds among `chosen` make of `init`.
    let added = |chosen: &[&HOp]| {
        chosen
            .iter()
            .filter(|o| matches!(o.call, Call::Add(_)))
            .fold(init, |s, o| step(s, o).expect("adds always apply"))
    };
    let count = |s: State| match s {
        State::Count(n) => n,
        other => panic!("no count: {other:?}"),
    };
    match seen {
        State::Reg(v) => {
            seen == init
                || ops.iter().any(|o| {
                    o.end != End::Fail
                        && matches!(o.call, Call::Write(w) | Call::Cas(_, w) if w == v)
                })
        }
        State::Set(_) => some_subset(ops, |chosen| added(chosen) == seen),
        State::Count(n) => {
            some_subset(ops, |chosen| count(added(chosen)) <= n)
                && some_subset(ops, |chosen| count(added(chosen)) >= n)
        }
        State::Str(_) => true,
        State::Lock(_) => panic!("a mutex has no final reads"),
    }
}

/// The eventual checker against the oracle: the verdicts agree, so do the invalid
/// keys, and every violation the counterexample shows is on one of them.
fn ev_agree(h: &Hist) -> Result<(), String> {
    let report = run_at(h, Consistency::Eventual);
    let bad = ev_invalid_keys(h);
    let expected = match &bad {
        None => Verdict::Unknown,
        Some(b) if b.is_empty() => Verdict::Valid,
        Some(_) => Verdict::Invalid,
    };
    if report.verdict != expected {
        return Err(format!(
            "eventual checker says {:?}, oracle {expected:?} (oracle's invalid keys: {bad:?})",
            report.verdict
        ));
    }
    let Some(bad) = bad else { return Ok(()) };
    let key_text = |k: Option<u8>| k.map_or("null".to_string(), |k| k.to_string());
    let oracle: BTreeSet<String> = bad.iter().map(|&k| key_text(k)).collect();
    if bad.iter().any(Option::is_some) {
        let reported: BTreeSet<String> =
            report.invalid_keys.iter().map(|k| k.to_string()).collect();
        if reported != oracle {
            return Err(format!(
                "invalid keys: checker {reported:?}, oracle {oracle:?}"
            ));
        }
    }
    if expected == Verdict::Invalid {
        let c = report
            .counterexample
            .as_ref()
            .and_then(|c| c.eventual())
            .ok_or("an invalid history has no eventual counterexample")?;
        for v in &c.violations {
            let key = v.key.as_ref().map_or("null".to_string(), |k| k.to_string());
            if !oracle.contains(&key) {
                return Err(format!("a violation on key {key}, which converged"));
            }
        }
    }
    Ok(())
}

/// `h` with final reads: per key, three nodes read what the `ok` ops and some of
/// the indeterminate ones leave (applied in invocation order), or now and then
/// any state (all nodes, or one); some final reads fail, end `info` or never
/// return, and now and then there are none.
fn random_finals(h: &Hist, t: &mut Tape) -> Hist {
    // Zeros (a short tape) make plain, honest final reads.
    if t.pick(12) == 11 {
        return h.clone();
    }
    let mut keys = h.keys();
    keys.insert(None);
    if h.keys().iter().any(Option::is_some) {
        keys.remove(&None);
    }
    let mut reads = Vec::new();
    for k in keys {
        let mut state = h.init;
        for o in h.ops_of(k) {
            let took = o.end == End::Ok || o.indeterminate() && t.pick(2) == 0;
            if took && o.call != Call::Read {
                state = step(state, o).unwrap_or(state);
            }
        }
        // Now and then all nodes agree on any state, which may be out of thin air;
        // now and then one node alone says something else.
        if t.pick(4) == 3 {
            state = random_state(h.model, t);
        }
        for node in 0..3 {
            let read = match t.pick(6) {
                5 => random_state(h.model, t),
                _ => state,
            };
            let end = match t.pick(10) {
                7 => End::Fail,
                8 => End::Info,
                9 => End::Pending,
                _ => End::Ok,
            };
            reads.push((k, node, read, end));
        }
    }
    add_finals(h, &reads)
}

/// The models with something to converge on (a mutex has no reads).
fn readable_model(n: usize) -> ModelKind {
    [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Set,
        ModelKind::Counter,
        ModelKind::Append,
    ][n]
}

/// A history from `tape` and `lies`, then final reads from `finals`.
fn generate_with_finals(
    model: ModelKind,
    keyed: bool,
    tape: &[u8],
    lies: &[u8],
    finals: &[u8],
) -> Hist {
    random_finals(&generate(model, keyed, tape, lies), &mut Tape::new(finals))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn eventual_agrees_with_oracle(
        model in 0..5usize,
        keyed in any::<bool>(),
        tape in tape(),
        lies in lies(),
        finals in lies(),
    ) {
        let h = generate_with_finals(readable_model(model), keyed, &tape, &lies, &finals);
        verify_with(&h, ev_agree)?;
    }
}

#[test]
fn generator_makes_eventual_verdicts_of_every_kind() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for model in (0..5).map(readable_model) {
        let (mut valid, mut invalid, mut unknown) = (0, 0, 0);
        for _ in 0..300 {
            let tape = tape().new_tree(&mut runner).unwrap().current();
            let finals = lies().new_tree(&mut runner).unwrap().current();
            let lies = lies().new_tree(&mut runner).unwrap().current();
            match ev_invalid_keys(&generate_with_finals(model, true, &tape, &lies, &finals)) {
                None => unknown += 1,
                Some(bad) if bad.is_empty() => valid += 1,
                Some(_) => invalid += 1,
            }
        }
        let what = format!("{model}: {valid} valid, {invalid} invalid, {unknown} unknown");
        eprintln!("{what}");
        assert!(valid >= 100 && invalid >= 40 && unknown >= 10, "{what}");
    }
}

#[test]
fn generator_makes_sequential_verdicts_of_every_kind() {
    // Both verdicts must be common for the sequential property to prove much, and
    // some histories must separate the levels (sequential yet not linearizable).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut valid, mut invalid, mut only_seq) = (0, 0, 0);
    for _ in 0..2000 {
        let tape = tape().new_tree(&mut runner).unwrap().current();
        let lies = lies().new_tree(&mut runner).unwrap().current();
        let h = generate(ModelKind::Register, false, &tape, &lies);
        let seq = seq_oracle(&h);
        if seq {
            valid += 1;
            if !h.invalid_keys().is_empty() {
                only_seq += 1;
            }
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid > 200 && invalid > 200,
        "valid {valid}, invalid {invalid}"
    );
    assert!(
        only_seq > 20,
        "only {only_seq} sequential but not linearizable"
    );
}

// ---------------------------------------------------------------------------
// The generator must produce both verdicts often, or the properties prove little.

#[test]
fn generator_makes_both_verdicts_often() {
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    for model in ModelKind::ALL.iter().copied() {
        for keyed in [false, true] {
            let (mut valid, mut invalid, mut indeterminate, mut ops) = (0, 0, 0, 0);
            for _ in 0..300 {
                let tape = tape().new_tree(&mut rng).expect("a tape").current();
                // What a correct system recorded is linearizable, by construction.
                let honest = generate_honest(model, keyed, &tape);
                assert!(
                    honest.invalid_keys().is_empty(),
                    "the generator or the oracle is wrong: this history was \
                     recorded from a sequential execution:\n{}",
                    honest.jsonl()
                );
                let lies = lies().new_tree(&mut rng).expect("lies").current();
                let h = generate(model, keyed, &tape, &lies);
                ops += h.ops.len();
                indeterminate += h.ops.iter().filter(|o| o.indeterminate()).count();
                if h.invalid_keys().is_empty() {
                    valid += 1;
                } else {
                    invalid += 1;
                }
            }
            let what = format!(
                "{model} keyed={keyed}: {valid} valid, {invalid} invalid, {ops} ops, \
                 {indeterminate} indeterminate"
            );
            eprintln!("{what}");
            assert!(valid >= 100 && invalid >= 60, "{what}");
            assert!(ops >= 300 * 3 && indeterminate >= 200, "{what}");
        }
    }
}

// ---------------------------------------------------------------------------
// The oracle itself, on histories whose verdicts are known by hand.

fn parse(model: ModelKind, init: Value, text: &str) -> Hist {
    let h = jsonl::parse("t.jsonl", text).expect("test histories parse");
    Hist::from_history(&h, model, &init)
}

fn oracle_says(h: &Hist) -> bool {
    h.invalid_keys().is_empty()
}

#[test]
fn oracle_knows_the_textbook_cases() {
    use ModelKind::*;
    let stale_read = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"invoke","f":"write","value":2}
{"process":1,"type":"ok","f":"write","value":2}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":2,"type":"ok","f":"read","value":1}"#;
    assert!(!oracle_says(&parse(Register, Value::Null, stale_read)));

    let concurrent_read = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}
{"process":0,"type":"ok","f":"write","value":1}"#;
    assert!(oracle_says(&parse(Register, Value::Null, concurrent_read)));

    // An info write may take effect after its info completion.
    let info_later = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"info","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":null}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}"#;
    assert!(oracle_says(&parse(Register, Value::Null, info_later)));

    // ... but not before its invocation.
    let info_early = r#"
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}
{"process":0,"type":"invoke","f":"write","value":1}"#;
    assert!(!oracle_says(&parse(Register, Value::Null, info_early)));

    let failed_write_read = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"fail","f":"write","value":1}
{"process":1,"type":"invoke","f":"read","value":null}
{"process":1,"type":"ok","f":"read","value":1}"#;
    assert!(!oracle_says(&parse(
        Register,
        Value::Null,
        failed_write_read
    )));
    assert!(oracle_says(&parse(Register, json!(1), failed_write_read)));

    let lost_update = r#"
{"process":0,"type":"invoke","f":"cas","value":[0,1]}
{"process":1,"type":"invoke","f":"cas","value":[0,2]}
{"process":0,"type":"ok","f":"cas","value":[0,1]}
{"process":1,"type":"ok","f":"cas","value":[0,2]}"#;
    assert!(!oracle_says(&parse(CasRegister, json!(0), lost_update)));

    let double_grant = r#"
{"process":0,"type":"invoke","f":"acquire","value":null}
{"process":1,"type":"invoke","f":"acquire","value":null}
{"process":0,"type":"ok","f":"acquire","value":null}
{"process":1,"type":"ok","f":"acquire","value":null}"#;
    assert!(!oracle_says(&parse(Mutex, json!("unlocked"), double_grant)));

    // A release that never returned may have happened, letting the second acquire in.
    let handoff = r#"
{"process":0,"type":"invoke","f":"acquire","value":null}
{"process":0,"type":"ok","f":"acquire","value":null}
{"process":0,"type":"invoke","f":"release","value":null}
{"process":1,"type":"invoke","f":"acquire","value":null}
{"process":1,"type":"ok","f":"acquire","value":null}"#;
    assert!(oracle_says(&parse(Mutex, json!("unlocked"), handoff)));
}

#[test]
fn oracle_checks_keys_separately() {
    let text = r#"
{"process":0,"type":"invoke","f":"write","value":1,"key":1}
{"process":0,"type":"ok","f":"write","value":1,"key":1}
{"process":1,"type":"invoke","f":"read","value":null,"key":2}
{"process":1,"type":"ok","f":"read","value":1,"key":2}
{"process":1,"type":"invoke","f":"read","value":null,"key":1}
{"process":1,"type":"ok","f":"read","value":1,"key":1}"#;
    let h = parse(ModelKind::Register, Value::Null, text);
    assert_eq!(h.invalid_keys(), BTreeSet::from([Some(2)]));
}

/// The entries of `dir`, sorted.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    paths.sort();
    paths
}

/// The golden histories in `histories/<under>`, one folder per model (but those
/// in `skip`), in order: the model, the file, its name and its text.
fn golden(under: &str, skip: &[&str]) -> Vec<(ModelKind, PathBuf, String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../histories")
        .join(under);
    let mut found = Vec::new();
    for dir in sorted_entries(&root) {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !dir.is_dir() || skip.contains(&name) {
            continue;
        }
        let model: ModelKind = name.parse().unwrap_or_else(|e| panic!("{e}"));
        for file in sorted_entries(&dir) {
            let fname = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&file).expect("readable golden history");
            found.push((model, file, fname, text));
        }
    }
    found
}

/// The golden histories say their verdict in their name; the oracle must agree, so
/// that the CLI tests that rely on those names rest on more than one opinion.
#[test]
fn golden_histories_have_the_verdict_in_their_name() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    // histories/consistency/ holds verdicts at every level, histories/versions/
    // verdicts that rest on the store's versions: their own tests below.
    for (model, file, fname, text) in golden("", &["consistency", "versions", "causal"]) {
        let valid = if fname.ends_with(".valid.jsonl") {
            true
        } else if fname.ends_with(".invalid.jsonl") {
            false
        } else {
            panic!(
                "{}: name must end .valid.jsonl or .invalid.jsonl",
                file.display()
            );
        };
        let init = match model {
            ModelKind::Mutex => json!("unlocked"),
            _ => Value::Null,
        };
        let h = Hist::from_history(
            &jsonl::parse(&fname, &text).expect("golden histories parse"),
            model,
            &init,
        );
        if oracle_says(&h) != valid {
            wrong.push(file.display().to_string());
        }
        // And the checker, with its witness and counterexample.
        if let Err(e) = agree(&h) {
            wrong.push(format!("{}: {e}", file.display()));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "wrong verdicts: {wrong:#?}");
    assert!(checked >= 12, "only {checked} golden histories");
}

/// histories/consistency/<model>/<what>.lin-<yes|no>.seq-<yes|no>.ev-<yes|no>.jsonl:
/// the verdict at each level is in the name, and `all` names the strongest.
#[test]
fn consistency_golden_histories_hold_at_the_levels_in_their_names() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (model, _, fname, text) in golden("consistency", &[]) {
        let name = model.name();
        let parts: Vec<&str> = fname.trim_end_matches(".jsonl").split('.').collect();
        let [_, lin, seq, ev] = parts[..] else {
            panic!("{fname}: name must be <what>.lin-X.seq-X.ev-X.jsonl");
        };
        let h = jsonl::parse(&fname, &text).expect("golden histories parse");
        let mut holds = Vec::new();
        for (level, tag, want) in [
            (Consistency::Linearizable, "lin", lin),
            (Consistency::Sequential, "seq", seq),
            (Consistency::Eventual, "ev", ev),
        ] {
            let want = match want.strip_prefix(tag).and_then(|w| w.strip_prefix('-')) {
                Some("yes") => Verdict::Valid,
                Some("no") => Verdict::Invalid,
                _ => panic!("{fname}: `{want}` is not {tag}-yes or {tag}-no"),
            };
            let opts = Options {
                model,
                consistency: level,
                ..Options::default()
            };
            let r = check(&h, &opts).expect("golden histories fit their model");
            if r.verdict != want {
                wrong.push(format!("{name}/{fname}: {level} gave {:?}", r.verdict));
            }
            if want == Verdict::Valid {
                holds.push(level.to_string());
            }
            if want == Verdict::Invalid && r.counterexample.is_none() {
                wrong.push(format!("{name}/{fname}: {level} has no counterexample"));
            }
        }
        let all = check(
            &h,
            &Options {
                model,
                consistency: Consistency::All,
                ..Options::default()
            },
        )
        .expect("golden histories fit their model");
        let strongest = holds.first().map_or("none", String::as_str);
        if all.strongest != Some(strongest) {
            wrong.push(format!(
                "{name}/{fname}: all says strongest {:?}, expected {strongest}",
                all.strongest
            ));
        }
        if all.ruled_out.len() != 3 - holds.len() {
            wrong.push(format!("{name}/{fname}: all rules out {:?}", all.ruled_out));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "wrong verdicts: {wrong:#?}");
    assert!(checked >= 10, "only {checked} consistency golden histories");
}

// ---------------------------------------------------------------------------
// The store's versions.
//
// With versions, the checker first tries to decide from them alone
// (`versions.rs`): the store's write order, reads-from by version, and real time
// (or each process's order) form a graph; a cycle is a violation, an acyclic graph
// a witness. That takes the store at its word: the write order *is* the version
// order, and a read of version r saw exactly the state the write of version r
// left. So its verdict is not the search's verdict on the values alone:
//
// - Versions only add constraints. Whatever order respects them also respects the
//   values, so *valid by versions ⇒ valid by values*, and *invalid by values ⇒
//   invalid (or undecided) by versions*.
// - *Invalid by versions does not imply invalid by values*: the versions may
//   contradict the only order that makes the values legal (two writes of one
//   value read back in the wrong version order; a write order against real time
//   with no read to notice).
// - Where the versions decide, their verdict equals that of a brute-force oracle
//   that takes the versions as constraints ([`by_versions`]): exactly.
// - Where they do not (a missing version, an ambiguous indeterminate write,
//   versions that contradict each other), the checker's verdict is the search's,
//   so it equals the value-only oracle, and so does the verdict on the same
//   history with its versions removed.
// - A history a correct store recorded is never invalid by versions and has no
//   version findings.
//
// Histories come from the same simulated executions as above, with a store that
// gives each write that takes effect the next revision (one counter for all
// keys, as etcd) and each read the revision of the write it saw; then lies: the
// value lies above, and lies about versions (a stale read that reports the old
// value and its version, two revisions swapped throughout, a version dropped or
// made up, an `ok` op that crashed to `info`).

/// Where the oracle's store stands: the register's value, the highest version
/// placed so far, and which version the current value carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    /// No write yet: the initial value, which a read reports without a version.
    Init,
    Version(u64),
    /// A write whose version the history does not show: some version above the
    /// last one placed, which no read in the history reports.
    Fresh,
}

#[derive(Debug, Clone, Copy)]
struct VState {
    value: State,
    floor: Option<u64>,
    cur: Cur,
}

/// Op `o` in the versioned model; a write or cas takes `label` as its version
/// (`None`: a fresh one). Versions must rise along the order, and a read with a
/// version must see the state that version's write left.
fn v_step(s: VState, o: &HOp, label: Option<u64>) -> Option<VState> {
    let value = step(s.value, o)?;
    if o.call == Call::Read {
        if o.end != End::Ok {
            return Some(s);
        }
        let seen = o.version.map_or(Cur::Init, Cur::Version);
        return (s.cur == seen).then_some(s);
    }
    match label {
        Some(v) if s.floor.is_some_and(|f| v <= f) => None,
        Some(v) => Some(VState {
            value,
            floor: Some(v),
            cur: Cur::Version(v),
        }),
        None => Some(VState {
            value,
            cur: Cur::Fresh,
            ..s
        }),
    }
}

/// The versions an indeterminate write on `o`'s key may have created: fresh, or
/// one that an `ok` read reports and no `ok` write claims.
fn labels_for(ops: &[&HOp], o: &HOp) -> Vec<Option<u64>> {
    let mut out = vec![None];
    if o.end == End::Ok {
        return vec![o.version];
    }
    let claimed: BTreeSet<u64> = ops
        .iter()
        .filter(|w| w.key == o.key && w.end == End::Ok && w.call != Call::Read)
        .filter_map(|w| w.version)
        .collect();
    let read: BTreeSet<u64> = ops
        .iter()
        .filter(|r| r.key == o.key && r.end == End::Ok && r.call == Call::Read)
        .filter_map(|r| r.version)
        .collect();
    out.extend(read.difference(&claimed).map(|&v| Some(v)));
    out
}

/// Is there an order of the `ok` ops and some indeterminate ones, each write with
/// a version, that `before` allows and the versioned model accepts? Indeterminate
/// ops may be left out; indeterminate reads always are (they constrain nothing).
fn by_versions(ops: &[&HOp], init: State, before: fn(&HOp, &HOp) -> bool) -> bool {
    let ops: Vec<&HOp> = ops
        .iter()
        .copied()
        .filter(|o| o.end == End::Ok || o.indeterminate() && o.call != Call::Read)
        .collect();
    assert!(ops.len() <= 10, "the oracle is for small histories");
    let labels: Vec<Vec<Option<u64>>> = ops.iter().map(|o| labels_for(&ops, o)).collect();
    let required = ops.iter().filter(|o| o.end == End::Ok).count();
    fn slot(k: Option<u8>) -> usize {
        k.map_or(0, |k| usize::from(k) + 1)
    }
    #[allow(clippy::too_many_arguments)]
    fn extend(
        ops: &[&HOp],
        labels: &[Vec<Option<u64>>],
        before: fn(&HOp, &HOp) -> bool,
        placed: &mut [bool],
        left: usize,
        states: &mut [VState; 8],
    ) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] || (0..ops.len()).any(|j| !placed[j] && j != i && before(ops[j], ops[i])) {
                continue;
            }
            let k = slot(ops[i].key);
            for &label in &labels[i] {
                let Some(next) = v_step(states[k], ops[i], label) else {
                    continue;
                };
                let was = std::mem::replace(&mut states[k], next);
                placed[i] = true;
                let left = left - usize::from(ops[i].end == End::Ok);
                if extend(ops, labels, before, placed, left, states) {
                    return true;
                }
                placed[i] = false;
                states[k] = was;
            }
        }
        false
    }
    let start = VState {
        value: init,
        floor: None,
        cur: Cur::Init,
    };
    extend(
        &ops,
        &labels,
        before,
        &mut vec![false; ops.len()],
        required,
        &mut [start; 8],
    )
}

/// Whether `order` (op indices) is one the versioned model accepts: every `ok`
/// op of `scope` once, nothing that failed, `before` respected, and some version
/// for each indeterminate write in it.
fn versioned_order_is_legal(
    h: &Hist,
    scope: &[usize],
    order: &[usize],
    before: fn(&HOp, &HOp) -> bool,
) -> Result<(), String> {
    let line = |i: usize| h.ops[i].invoked_at + 1;
    let set: BTreeSet<usize> = order.iter().copied().collect();
    if set.len() != order.len() {
        return Err("an op twice in the witness".into());
    }
    if let Some(&i) = order
        .iter()
        .find(|&&i| !scope.contains(&i) || h.ops[i].end == End::Fail)
    {
        return Err(format!("line {} does not belong in the witness", line(i)));
    }
    if let Some(&i) = scope
        .iter()
        .find(|&&i| h.ops[i].end == End::Ok && !set.contains(&i))
    {
        return Err(format!("ok op on line {} is missing", line(i)));
    }
    for (n, &a) in order.iter().enumerate() {
        if let Some(&b) = order[n + 1..]
            .iter()
            .find(|&&b| before(&h.ops[b], &h.ops[a]))
        {
            return Err(format!(
                "line {} must come before line {}",
                line(b),
                line(a)
            ));
        }
    }
    let ops: Vec<&HOp> = scope.iter().map(|&i| &h.ops[i]).collect();
    // Along the fixed order, only the versions of indeterminate writes branch.
    fn go(h: &Hist, ops: &[&HOp], order: &[usize], states: [VState; 8]) -> bool {
        let Some((&i, rest)) = order.split_first() else {
            return true;
        };
        let o = &h.ops[i];
        let k = o.key.map_or(0, |k| usize::from(k) + 1);
        labels_for(ops, o).into_iter().any(|label| {
            v_step(states[k], o, label).is_some_and(|next| {
                let mut states = states;
                states[k] = next;
                go(h, ops, rest, states)
            })
        })
    }
    let start = VState {
        value: h.init,
        floor: None,
        cur: Cur::Init,
    };
    if go(h, &ops, order, [start; 8]) {
        Ok(())
    } else {
        Err("the witness breaks the versions".into())
    }
}

/// The version an op created or read, as far as the history shows: its own for
/// an `ok` op; for an indeterminate write, the version of a read of its value
/// that no `ok` write claims (how the checker places it).
fn shown_version(h: &Hist, scope: &[usize], i: usize) -> Option<u64> {
    let o = &h.ops[i];
    if o.end == End::Ok {
        return o.version;
    }
    let written = match o.call {
        Call::Write(v) | Call::Cas(_, v) => State::Reg(v),
        _ => return None,
    };
    let ops: Vec<&HOp> = scope.iter().map(|&j| &h.ops[j]).collect();
    let free = labels_for(&ops, o);
    ops.iter()
        .filter(|r| r.call == Call::Read && r.end == End::Ok && r.key == o.key && r.read == written)
        .filter_map(|r| r.version)
        .find(|v| free.contains(&Some(*v)))
}

/// Each edge of a versions counterexample holds in the history: a cycle of true
/// dependencies is a proof.
fn cycle_holds(
    h: &Hist,
    scope: &[usize],
    c: &splitbrain_checker::VersionCounterexample,
    order: fn(&HOp, &HOp) -> bool,
) -> Result<(), String> {
    let ops = c
        .ops
        .iter()
        .map(|o| h.op_at_line(o.line))
        .collect::<Result<Vec<_>, _>>()?;
    if ops.len() < 2 || ops.len() != c.steps.len() || ops.len() != c.versions.len() {
        return Err(format!("a malformed cycle: {c:?}"));
    }
    if !c.anomaly.starts_with('G') {
        return Err(format!("anomaly {}", c.anomaly));
    }
    let is_write = |i: usize| h.ops[i].call != Call::Read;
    for (k, s) in c.steps.iter().enumerate() {
        let (a, b) = (ops[k], ops[(k + 1) % ops.len()]);
        let (va, vb) = (shown_version(h, scope, a), shown_version(h, scope, b));
        if c.versions[k] != va {
            return Err(format!(
                "line {}: version {:?}, but the history shows {va:?}",
                h.ops[a].invoked_at + 1,
                c.versions[k]
            ));
        }
        use splitbrain_checker::Dependency as D;
        let holds = match s.dependency {
            D::WriteWrite => is_write(a) && is_write(b) && va.is_some() && va < vb,
            D::WriteRead => is_write(a) && !is_write(b) && va.is_some() && va == vb,
            D::ReadWrite => !is_write(a) && is_write(b) && vb.is_some() && va < vb,
            D::Process | D::RealTime => order(&h.ops[a], &h.ops[b]),
        };
        if !holds {
            return Err(format!(
                "step {}: {:?} from line {} to line {} does not hold ({})",
                k + 1,
                s.dependency,
                h.ops[a].invoked_at + 1,
                h.ops[b].invoked_at + 1,
                s.why
            ));
        }
        if !s.why.contains("line") {
            return Err(format!("step {} names no line: {}", k + 1, s.why));
        }
    }
    Ok(())
}

/// One level's verdicts, with and without versions, against both oracles (see
/// the section's comment). `scope`: the ops the level looks at.
fn ver_level_agree(
    h: &Hist,
    scope: &[usize],
    consistency: Consistency,
    order: fn(&HOp, &HOp) -> bool,
) -> Result<(), String> {
    let ops: Vec<&HOp> = scope.iter().map(|&i| &h.ops[i]).collect();
    let by_values = some_subset(&ops, |chosen| some_order(chosen, h.init, order));
    let by_vers = by_versions(&ops, h.init, order);
    if by_vers && !by_values {
        return Err("the oracles: valid by versions, yet not by values".into());
    }
    let verdict = |valid: bool| {
        if valid {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    };
    let report = run_at(h, consistency);
    let decided = report.versions.is_some();
    let want = verdict(if decided { by_vers } else { by_values });
    if report.verdict != want {
        return Err(format!(
            "{consistency}: checker says {:?} {}, the {} oracle {want:?} (by values: {by_values}, by versions: {by_vers})",
            report.verdict,
            if decided { "from the versions" } else { "by search" },
            if decided { "versions" } else { "values" },
        ));
    }
    let plain = run_at(&h.without_versions(), consistency);
    if plain.verdict != verdict(by_values) || plain.versions.is_some() {
        return Err(format!(
            "{consistency} without versions: checker says {:?}, the values oracle {by_values}",
            plain.verdict
        ));
    }
    if !decided {
        return Ok(());
    }
    match (&report.witness, &report.counterexample) {
        (Some(ws), _) if want == Verdict::Valid => {
            for w in ws {
                let order_ = w
                    .order
                    .iter()
                    .map(|o| h.op_at_line(o.line))
                    .collect::<Result<Vec<_>, _>>()?;
                versioned_order_is_legal(h, scope, &order_, order)
                    .map_err(|e| format!("{consistency} witness: {e}"))?;
            }
            Ok(())
        }
        (_, Some(c)) if want == Verdict::Invalid => {
            let c = c
                .versions()
                .ok_or("decided invalid from versions without a versions cycle")?;
            cycle_holds(h, scope, c, order).map_err(|e| format!("{consistency} cycle: {e}"))
        }
        _ => Err(format!("{consistency}: no witness or counterexample")),
    }
}

/// Linearizability key by key (each key's own sub-history, so that the report
/// says whether the versions decided that key), then sequential consistency.
fn ver_agree(h: &Hist) -> Result<(), String> {
    for k in h.keys() {
        let sub = h.only(|i| h.ops[i].key == k);
        let scope: Vec<usize> = (0..sub.ops.len()).collect();
        ver_level_agree(&sub, &scope, Consistency::Linearizable, precedes)?;
    }
    let scope: Vec<usize> = (0..h.ops.len()).collect();
    ver_level_agree(h, &scope, Consistency::Sequential, program_precedes)
}

/// Lies about versions: a stale read that reports an older write's value and
/// version, two versions swapped throughout the history, a version dropped or
/// made up, an `ok` op crashed to `info`.
fn perturb_versions(h: &mut Hist, t: &mut Tape) {
    for _ in 0..t.pick(4) {
        let reads: Vec<usize> = (0..h.ops.len())
            .filter(|&i| h.ops[i].call == Call::Read && h.ops[i].end == End::Ok)
            .collect();
        let versions: Vec<u64> = h.ops.iter().filter_map(|o| o.version).collect();
        match t.pick(8) {
            0..=3 if !reads.is_empty() => {
                let i = reads[t.pick(reads.len())];
                let key = h.ops[i].key;
                let mut older = vec![(h.init, None)];
                for w in h.ops.iter().filter(|w| w.key == key) {
                    if let (Call::Write(v) | Call::Cas(_, v), Some(wv)) = (w.call, w.version) {
                        if h.ops[i].version.is_none_or(|r| wv < r) {
                            older.push((State::Reg(v), Some(wv)));
                        }
                    }
                }
                let (read, version) = older[t.pick(older.len())];
                h.ops[i].read = read;
                h.ops[i].version = version;
            }
            4 if !versions.is_empty() => {
                let (a, b) = (
                    versions[t.pick(versions.len())],
                    versions[t.pick(versions.len())],
                );
                for o in &mut h.ops {
                    o.version = o.version.map(|v| match v {
                        v if v == a => b,
                        v if v == b => a,
                        v => v,
                    });
                }
            }
            5 if !h.ops.is_empty() => {
                let i = t.pick(h.ops.len());
                h.ops[i].version = None;
            }
            6 if !h.ops.is_empty() => {
                let i = t.pick(h.ops.len());
                h.ops[i].version = Some(1 + t.pick(versions.len() + 2) as u64);
            }
            7 if !h.ops.is_empty() => {
                let i = t.pick(h.ops.len());
                if h.ops[i].end == End::Ok {
                    h.ops[i].end = End::Info;
                }
            }
            _ => {}
        }
    }
}

/// A register or cas-register history from a simulated store with versions, then
/// lies about values (`lies`) and versions (`vlies`), sometimes only a
/// sub-history.
fn generate_versioned(
    model: ModelKind,
    keyed: bool,
    tape: &[u8],
    lies: &[u8],
    vlies: &[u8],
) -> Hist {
    let mut h = generate_honest_versioned(model, keyed, tape);
    let mut t = Tape::new(lies);
    if t.pick(4) == 1 {
        perturb(&mut h, &mut t);
    }
    let mut v = Tape::new(vlies);
    perturb_versions(&mut h, &mut v);
    if v.pick(4) == 1 {
        let keep: Vec<bool> = (0..h.ops.len()).map(|_| v.pick(4) != 0).collect();
        h = h.only(|i| keep[i] || i == 0 && !keep.contains(&true));
    }
    h
}

fn register_model(cas: bool) -> ModelKind {
    if cas {
        ModelKind::CasRegister
    } else {
        ModelKind::Register
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn versions_agree_with_both_oracles(
        cas in any::<bool>(),
        keyed in any::<bool>(),
        tape in tape(),
        lies in lies(),
        vlies in lies(),
    ) {
        verify_with(&generate_versioned(register_model(cas), keyed, &tape, &lies, &vlies), ver_agree)?;
    }

    #[test]
    fn a_correct_store_is_never_invalid_by_its_versions(
        cas in any::<bool>(),
        keyed in any::<bool>(),
        tape in tape(),
    ) {
        let h = generate_honest_versioned(register_model(cas), keyed, &tape);
        for level in [Consistency::Linearizable, Consistency::Sequential] {
            let r = run_at(&h, level);
            prop_assert!(
                r.verdict == Verdict::Valid && r.version_findings.is_empty(),
                "{level}: {:?}, findings {:?}\n{}", r.verdict, r.version_findings, h.jsonl()
            );
        }
    }
}

/// The versioned generator must reach every outcome often, or the property above
/// proves little: decided valid, decided invalid, decided invalid where the
/// values alone are valid (the versions added information), left to the search,
/// and findings.
#[test]
fn versioned_generator_reaches_every_outcome() {
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    let (mut valid, mut invalid, mut added, mut undecided, mut findings) = (0, 0, 0, 0, 0);
    for n in 0..600 {
        let tape = tape().new_tree(&mut rng).expect("a tape").current();
        let value_lies = lies().new_tree(&mut rng).expect("lies").current();
        let vlies = lies().new_tree(&mut rng).expect("lies").current();
        let h = generate_versioned(
            register_model(n % 2 == 0),
            n % 3 == 0,
            &tape,
            &value_lies,
            &vlies,
        );
        // Key by key for linearizability, so that "decided" means that key.
        let mut levels: Vec<(Hist, Consistency)> = h
            .keys()
            .into_iter()
            .map(|k| (h.only(|i| h.ops[i].key == k), Consistency::Linearizable))
            .collect();
        levels.push((h.clone(), Consistency::Sequential));
        for (sub, level) in levels {
            let r = run_at(&sub, level);
            findings += usize::from(!r.version_findings.is_empty());
            match (r.versions.is_some(), r.verdict) {
                (false, _) => undecided += 1,
                (true, Verdict::Valid) => valid += 1,
                (true, _) => {
                    invalid += 1;
                    added += usize::from(match level {
                        Consistency::Sequential => seq_oracle(&sub),
                        _ => sub.invalid_keys().is_empty(),
                    });
                }
            }
        }
    }
    let what = format!(
        "{valid} valid and {invalid} invalid from versions ({added} of them valid by values), \
         {undecided} left to the search, {findings} with findings (keys and levels)"
    );
    eprintln!("{what}");
    assert!(
        valid >= 300 && invalid >= 40 && added >= 8 && undecided >= 300 && findings >= 12,
        "{what}"
    );
}

/// histories/versions/<model>/<what>.lin-X.seq-X[.finding].jsonl: the oracle that
/// takes the versions as constraints gives the verdicts in the name (the values
/// oracle, where the versions contradict each other), and the checker agrees with
/// both oracles as above.
#[test]
fn versions_golden_histories_hold_the_oracles_to_their_names() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (model, _, fname, text) in golden("versions", &[]) {
        let tags: Vec<&str> = fname
            .trim_end_matches(".jsonl")
            .split('.')
            .skip(1)
            .collect();
        let (lin, seq, finding) = match tags[..] {
            [lin, seq] => (lin, seq, false),
            [lin, seq, "finding"] => (lin, seq, true),
            _ => panic!("{fname}: name must be <what>.lin-X.seq-X[.finding].jsonl"),
        };
        let h = Hist::from_history(
            &jsonl::parse(&fname, &text).expect("golden histories parse"),
            model,
            &Value::Null,
        );
        let all: Vec<&HOp> = h.ops.iter().collect();
        let (lin_says, seq_says) = if finding {
            (oracle(&all, h.init), seq_oracle(&h))
        } else {
            (
                by_versions(&all, h.init, precedes),
                by_versions(&all, h.init, program_precedes),
            )
        };
        let said = [
            format!("lin-{}", if lin_says { "yes" } else { "no" }),
            format!("seq-{}", if seq_says { "yes" } else { "no" }),
        ];
        if [lin, seq] != [said[0].as_str(), said[1].as_str()] {
            wrong.push(format!("{model}/{fname}: the oracle says {said:?}"));
        }
        if let Err(e) = ver_agree(&h) {
            wrong.push(format!("{model}/{fname}: {e}"));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(checked >= 10, "only {checked} versions golden histories");
}

// ---------------------------------------------------------------------------
// Checker bugs the properties found, kept as the smallest histories that show them.

/// Found by `cas_register_agrees_with_oracle`. `read 2` (lines 3-5) proves that
/// `cas 1→2` took effect before line 5, and `cas 1→2` proves that `write 1` took
/// effect before the cas. The checker turns the second inference into "write 1
/// returned by line 4" rather than "just before line 5", so the read invoked on
/// line 4 can no longer precede write 1 and the history looks invalid. It is
/// linearizable: read null, write 1, cas 1→2, read 2, all between lines 4 and 5.
#[test]
fn read_invoked_just_before_a_chained_observation_may_precede_the_chain() {
    let pending = r#"
{"process":0,"type":"invoke","f":"write","value":1}
{"process":1,"type":"invoke","f":"cas","value":[1,2]}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":3,"type":"invoke","f":"read","value":null}
{"process":2,"type":"ok","f":"read","value":2}
{"process":3,"type":"ok","f":"read","value":null}"#;
    // The same with the write and the cas completing `ok`, late.
    let late_ok = format!(
        "{pending}{}",
        r#"
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"ok","f":"cas","value":[1,2]}"#
    );
    for text in [pending, &late_ok] {
        let h = parse(ModelKind::CasRegister, Value::Null, text);
        assert!(oracle_says(&h), "the oracle finds it linearizable");
        if let Err(e) = agree(&h) {
            panic!("{e}\n{}", h.jsonl());
        }
    }
}

/// Found by `cas_register_agrees_with_oracle`; the same mistake one link further.
/// `read 1` needs `cas 2→1` before line 5, which needs `cas 3→2` before it, which
/// needs `write 3`. The deadline given to `cas 3→2` lands on line 4, the invocation
/// of `write 3`, so the cas must take effect before the write it depends on even
/// begins. Linearizable: write 3, cas 3→2, cas 2→1, read 1, between lines 4 and 5.
#[test]
fn write_invoked_just_before_a_chained_observation_may_start_the_chain() {
    let text = r#"
{"process":1,"type":"invoke","f":"cas","value":[2,1]}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":3,"type":"invoke","f":"cas","value":[3,2]}
{"process":4,"type":"invoke","f":"write","value":3}
{"process":2,"type":"ok","f":"read","value":1}
{"process":4,"type":"ok","f":"write","value":3}
{"process":3,"type":"ok","f":"cas","value":[3,2]}"#;
    let h = parse(ModelKind::CasRegister, Value::Null, text);
    assert!(oracle_says(&h), "the oracle finds it linearizable");
    if let Err(e) = agree(&h) {
        panic!("{e}\n{}", h.jsonl());
    }
}

/// Found by `eventual_agrees_with_oracle`. A set that starts with 0 and whose
/// final read lacks it has lost 0; the checker counted only acknowledged adds as
/// lost, so it called this history eventually consistent.
#[test]
fn a_sets_initial_members_must_survive_to_the_final_reads() {
    let text = r#"
{"process":100,"type":"invoke","f":"read","value":null,"node":"n0","final":true}
{"process":100,"type":"ok","f":"read","value":[],"node":"n0","final":true}"#;
    let h = parse(ModelKind::Set, json!([0]), text);
    assert_eq!(ev_invalid_keys(&h), Some(BTreeSet::from([None])));
    if let Err(e) = ev_agree(&h) {
        panic!("{e}\n{}", h.jsonl());
    }
}
