//! Cross-checks the linearizability checker against a brute-force oracle.
//!
//! The oracle shares nothing with the checker but the history type. For one key it
//! takes every subset of the indeterminate ops (`info` or never completed), adds the
//! `ok` ops, and tries every total order of those ops that respects real time,
//! running the sequential model along it. The history is linearizable iff some
//! order is legal. Real time: op `a` precedes op `b` when `a` completed `ok` on an
//! earlier line than `b`'s invocation. An indeterminate op has no completion that
//! counts (it may take effect at any time after its invocation), so only its
//! invocation constrains it; a `fail` op never took effect and is left out.
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
//! sub-history is kept, so invalid ones are common too. Each history checks three
//! things: the verdicts agree, key by key; a valid history's witness is a legal,
//! real-time-respecting order of its ops; an invalid history's shrunk
//! counterexample is itself not linearizable and holds the op the checker could
//! not linearize.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Write(Val),
    Cas(Val, Val),
    Acquire,
    Release,
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
    /// What an `ok` read returned.
    read: Val,
    end: End,
    /// Event positions: the invocation, and the completion (any kind) if there is one.
    invoked_at: usize,
    completed_at: Option<usize>,
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
}

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
    match (state, op.call) {
        // A read that did not complete `ok` returned nothing we know: always legal.
        (State::Reg(v), Call::Read) => (op.end != End::Ok || v == op.read).then_some(state),
        (State::Reg(_), Call::Write(w)) => Some(State::Reg(w)),
        (State::Reg(v), Call::Cas(old, new)) => (v == old).then_some(State::Reg(new)),
        (State::Lock(false), Call::Acquire) => Some(State::Lock(true)),
        (State::Lock(true), Call::Release) => Some(State::Lock(false)),
        _ => None,
    }
}

/// `a` must be linearized before `b`: `a` completed `ok` before `b` was invoked.
fn precedes(a: &HOp, b: &HOp) -> bool {
    a.end == End::Ok && a.completed_at.is_some_and(|c| c < b.invoked_at)
}

/// Is this one key's history linearizable from `init`? Brute force: every subset of
/// the indeterminate ops, every real-time-respecting order of the chosen ones.
fn oracle(ops: &[&HOp], init: State) -> bool {
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
        some_legal_order(&chosen, init)
    })
}

/// Tries every order of `ops` that respects real time; a prefix the model rejects
/// rejects every order that starts with it.
fn some_legal_order(ops: &[&HOp], init: State) -> bool {
    fn extend(ops: &[&HOp], placed: &mut [bool], left: usize, state: State) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let waits = (0..ops.len()).any(|j| !placed[j] && j != i && precedes(ops[j], ops[i]));
            if waits {
                continue;
            }
            if let Some(next) = step(state, ops[i]) {
                placed[i] = true;
                if extend(ops, placed, left - 1, next) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    extend(ops, &mut vec![false; ops.len()], ops.len(), init)
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
            State::Reg(v) => val_json(v),
            State::Lock(false) => json!("unlocked"),
            State::Lock(true) => json!("locked"),
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
                            End::Ok if o.call == Call::Read => (OpType::Ok, val_json(o.read)),
                            End::Ok => (OpType::Ok, input_json(o.call)),
                            End::Fail => (OpType::Fail, input_json(o.call)),
                            End::Info => (OpType::Info, input_json(o.call)),
                            End::Pending => unreachable!("a pending op has no completion"),
                        };
                        Op::new(Process::Client(o.process), kind, fname(o.call), value)
                    }
                };
                if let Event::Invoke(i) | Event::Complete(i) = *e {
                    op.key = self.ops[i].key.map(|k| Key::Int(i64::from(k)));
                }
                op.time = Some(n as i64 * 1_000_000);
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
        let init = match model {
            ModelKind::Mutex => State::Lock(matches!(init.as_str(), Some("locked"))),
            _ => State::Reg(json_val(init)),
        };
        let mut hist = Hist {
            model,
            init,
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
                    *names.entry(s.clone()).or_insert(next)
                }
            });
            if op.kind == OpType::Invoke {
                let call = match op.f.as_str() {
                    "read" => Call::Read,
                    "write" => Call::Write(json_val(&op.value)),
                    "cas" => Call::Cas(json_val(&op.value[0]), json_val(&op.value[1])),
                    "acquire" => Call::Acquire,
                    "release" => Call::Release,
                    other => panic!("the oracle has no `{other}`"),
                };
                open.insert(p, hist.ops.len());
                hist.events.push(Event::Invoke(hist.ops.len()));
                hist.ops.push(HOp {
                    process: p,
                    key,
                    call,
                    read: None,
                    end: End::Pending,
                    invoked_at: at,
                    completed_at: None,
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
                    o.read = json_val(&op.value);
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
        Call::Write(_) => "write",
        Call::Cas(..) => "cas",
        Call::Acquire => "acquire",
        Call::Release => "release",
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

fn input_json(c: Call) -> Value {
    match c {
        Call::Write(v) => val_json(v),
        Call::Cas(a, b) => json!([val_json(a), val_json(b)]),
        Call::Read | Call::Acquire | Call::Release => Value::Null,
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
        _ => State::Reg([None, None, Some(0)][t.pick(3)]),
    }
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

/// Applies op `o` to the real object, recording what a read saw. False when the
/// model refuses it (a cas whose expected value is not there, an acquire of a held
/// lock): then it did not take effect and must not end `ok`.
fn apply(object: &mut [State; 2], o: &mut HOp) -> bool {
    let k = usize::from(o.key.unwrap_or(0));
    if let (Call::Read, State::Reg(v)) = (o.call, object[k]) {
        o.read = v;
    }
    let as_ok = HOp {
        end: End::Ok,
        ..o.clone()
    };
    match step(object[k], &as_ok) {
        Some(next) => {
            object[k] = next;
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
    let mut object = [h.init; 2];
    let mut fate: Vec<Fate> = Vec::new();
    // The open op of each worker slot, and the process id it uses now: a process
    // whose op ended `info` or was abandoned never invokes again.
    let mut slots: Vec<Option<usize>> = vec![None; n_slots];
    let mut pids: Vec<i64> = (0..n_slots as i64).collect();
    let mut next_pid = n_slots as i64;

    let linearize = |i: usize, h: &mut Hist, fate: &mut Vec<Fate>, object: &mut [State; 2]| {
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
            read: None,
            end: End::Pending,
            invoked_at: h.events.len(),
            completed_at: None,
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
    let mut object = [h.init; 2];
    // (time, op, is completion); the op's own numbering breaks ties.
    let mut times: Vec<(usize, usize, bool)> = Vec::new();
    for k in 0..n_ops {
        let at = 10 * k + slack;
        let key = keyed.then(|| t.pick(2) as u8);
        let mut o = HOp {
            process: 0,
            key,
            call: random_call(model, object[usize::from(key.unwrap_or(0))], values, t),
            read: None,
            end: End::Ok,
            invoked_at: 0,
            completed_at: None,
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
        let any_val = VALS[t.pick(4)];
        let o = &mut h.ops[i];
        match (o.end, o.call, t.pick(3)) {
            (End::Ok, Call::Read, _) => o.read = any_val,
            (End::Ok, _, 0) | (End::Info, _, 0) => o.end = End::Fail,
            (End::Fail | End::Info, call, _) => {
                o.end = End::Ok;
                if call == Call::Read {
                    o.read = any_val;
                }
            }
            (_, Call::Write(_), _) => o.call = Call::Write(any_val.or(Some(0))),
            (_, Call::Cas(_, new), _) => o.call = Call::Cas(any_val, new),
            (_, Call::Acquire, _) => o.call = Call::Release,
            (_, Call::Release, _) => o.call = Call::Acquire,
            (_, Call::Read, _) => {}
        }
    }
}

/// What a correct system would record: always linearizable.
fn generate_honest(model: ModelKind, keyed: bool, tape: &[u8]) -> Hist {
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

fn model_of(n: usize) -> ModelKind {
    [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Mutex,
    ][n]
}

/// Checks `h`; on disagreement, fails with the smallest sub-history that still
/// disagrees (ops and nemesis events removed one at a time), ready to save as a
/// `.jsonl` file, and the generated one.
fn verify(h: &Hist) -> Result<(), TestCaseError> {
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
    fn keyed_histories_agree_with_oracle_key_by_key(
        model in 0..3usize,
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
    let ok: Vec<&HOp> = h.ops.iter().filter(|o| o.end == End::Ok).collect();
    let maybe: Vec<&HOp> = h.ops.iter().filter(|o| o.indeterminate()).collect();
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
        some_program_order(&chosen, h.init)
    })
}

fn some_program_order(ops: &[&HOp], init: State) -> bool {
    // Per key state: keys are 0..=2 (None and two keys), indexed by `slot`.
    fn slot(k: Option<u8>) -> usize {
        k.map_or(0, |k| k as usize + 1)
    }
    fn extend(ops: &[&HOp], placed: &mut [bool], left: usize, states: &mut [State; 4]) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let waits =
                (0..ops.len()).any(|j| !placed[j] && j != i && program_precedes(ops[j], ops[i]));
            if waits {
                continue;
            }
            let k = slot(ops[i].key);
            if let Some(next) = step(states[k], ops[i]) {
                let before = std::mem::replace(&mut states[k], next);
                placed[i] = true;
                if extend(ops, placed, left - 1, states) {
                    return true;
                }
                placed[i] = false;
                states[k] = before;
            }
        }
        false
    }
    extend(ops, &mut vec![false; ops.len()], ops.len(), &mut [init; 4])
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

/// `h` followed by a final read of every key on three nodes, returning the value
/// its linearization (the checker's witness, replayed by the oracle's model) leaves.
fn with_final_reads(h: &Hist) -> History {
    let report = run_checker(h);
    let mut ops = h.to_ops();
    let mut next_process = 100;
    for w in report.witness.expect("honest histories are linearizable") {
        let mut state = h.init;
        for o in &w.order {
            let i = h.op_at_line(o.line).expect("witness ops are invocations");
            state = step(state, &h.ops[i]).expect("the witness is legal");
        }
        let State::Reg(v) = state else { continue };
        let key = w.key.as_ref().and_then(Key::from_json);
        for node in ["n1", "n2", "n3"] {
            for (kind, value) in [(OpType::Invoke, Value::Null), (OpType::Ok, val_json(v))] {
                let mut op = Op::new(Process::Client(next_process), kind, "read", value);
                op.key = key.clone();
                op.node = Some(node.into());
                op.is_final = true;
                ops.push(op);
            }
            next_process += 1;
        }
    }
    History::new("with-finals", ops, None).expect("well-formed")
}

fn seq_verify(h: &Hist) -> Result<(), TestCaseError> {
    let Err(first) = seq_agree(h) else {
        return Ok(());
    };
    let mut small = h.clone();
    let mut err = first.clone();
    'shrink: loop {
        let candidates = (0..small.ops.len())
            .map(|i| small.only(|j| j != i))
            .filter(|c| !c.ops.is_empty());
        for c in candidates {
            if let Err(e) = seq_agree(&c) {
                small = c;
                err = e;
                continue 'shrink;
            }
        }
        break;
    }
    Err(TestCaseError::fail(format!(
        "{err}\nsmallest such history ({}, init {}):\n{}\nas generated ({first}):\n{}",
        small.model,
        small.init_json(),
        small.jsonl(),
        h.jsonl()
    )))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sequential_agrees_with_oracle(
        model in 0..3usize,
        keyed in any::<bool>(),
        tape in tape(),
        lies in lies(),
    ) {
        seq_verify(&generate(model_of(model), keyed, &tape, &lies))?;
    }

    #[test]
    fn honest_histories_hold_at_every_level(
        model in 0..3usize,
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
            let r = check(&with_finals, &opts).expect("fits the model");
            prop_assert_eq!(r.strongest, Some("linearizable"), "{}", h.jsonl());
            prop_assert!(r.ruled_out.is_empty() && r.undecided.is_empty(), "{:?}", r.ruled_out);
        }
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
    for model in (0..3).map(model_of) {
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

/// The golden histories say their verdict in their name; the oracle must agree, so
/// that the CLI tests that rely on those names rest on more than one opinion.
#[test]
fn golden_histories_have_the_verdict_in_their_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../histories");
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("a directory entry").path())
        // histories/consistency/ holds verdicts at every level: its own test below.
        .filter(|p| p.is_dir() && !p.ends_with("consistency"))
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let model: ModelKind = name.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("a model folder")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        for file in files {
            let fname = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
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
            let text = std::fs::read_to_string(&file).expect("readable golden history");
            let h = Hist::from_history(
                &jsonl::parse(fname, &text).expect("golden histories parse"),
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
    }
    assert!(wrong.is_empty(), "wrong verdicts: {wrong:#?}");
    assert!(checked >= 12, "only {checked} golden histories");
}

/// histories/consistency/<model>/<what>.lin-<yes|no>.seq-<yes|no>.ev-<yes|no>.jsonl:
/// the verdict at each level is in the name, and `all` names the strongest.
#[test]
fn consistency_golden_histories_hold_at_the_levels_in_their_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../histories/consistency");
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let model: ModelKind = name.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("a model folder")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        for file in files {
            let fname = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let parts: Vec<&str> = fname.trim_end_matches(".jsonl").split('.').collect();
            let [_, lin, seq, ev] = parts[..] else {
                panic!("{fname}: name must be <what>.lin-X.seq-X.ev-X.jsonl");
            };
            let text = std::fs::read_to_string(&file).expect("readable golden history");
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
    }
    assert!(wrong.is_empty(), "wrong verdicts: {wrong:#?}");
    assert!(checked >= 10, "only {checked} consistency golden histories");
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
