//! Consistency checkers for splitbrain histories. Pure and synchronous: no I/O, no
//! async runtime, no command line.
//!
//! The entry point is [`check`]: give it a [`History`] and [`Options`] (which model,
//! which initial value, how long it may take) and it returns a [`Report`] whose
//! [`Verdict`] is valid, invalid or unknown. A non-linearizable history is a verdict,
//! not an error: `Err` means the history does not fit the model (an op the model
//! does not know, a malformed value), and names the file and line.
//!
//! ```text
//!   p0 |--write 1--|                          linearizable: write 1, read 1
//!   p1          |--read 1--|
//!
//!   p0 |--write 1--|                          not linearizable: the read began after
//!   p1               |--write 2--|            write 2 finished, yet saw 1
//!   p2                              |--read 1--|
//! ```
//!
//! Ops that carry a `key` are checked key by key, in parallel: linearizability is
//! compositional (Herlihy & Wing 1990), so a history is linearizable exactly when
//! each key's sub-history is. Verdicts merge as invalid > unknown > valid.
//!
//! [`Options::consistency`] picks a weaker promise instead: sequential consistency
//! (`sequential`: one order that keeps each process's own order; not compositional,
//! so all keys are one object), causal memory (`causal`: each process sees the
//! writes in an order that respects causality; registers with unique values), or
//! convergence (`eventual`: final reads agree on a value that was written), or
//! `all` of them.
//!
//! The levels form a lattice, not a line: linearizable ⇒ sequential ⇒ causal are
//! *safety* levels, about what reads may return; eventual is *convergence*, a
//! separate axis (a store can be sequentially consistent and lose an
//! acknowledged write, or converge and serve stale reads). `all` names the
//! strongest safety level that holds together with the convergence verdict.

#![forbid(unsafe_code)]

mod causal;
mod eventual;
mod explain;
mod linear;
pub mod model;
mod opref;
mod prepare;
mod sequential;
mod set_loss;
mod shrink;
mod versions;

pub use causal::{CausalCounterexample, CausalStep};
pub use eventual::{
    EventualCounterexample, EventualViolation, FinalRead, LostAdd, MAX_LOST_LISTED,
};
pub use explain::{lost_line, render_text, Counterexample};
pub use linear::Deadline;
pub use model::{Append, Counter, Model, ModelError, Mutex, Register, Set, ValueId, Values};
pub use opref::{timeline, OpRef};
pub use sequential::SequentialCounterexample;
pub use versions::{Dependency, Step as VersionStep, VersionCounterexample};

use linear::Outcome;
use prepare::Partition;
use rayon::prelude::*;
use serde::{Serialize, Serializer};
use serde_json::Value;
use splitbrain_history::{History, Key};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The models `check` knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelKind {
    /// `read` and `write`.
    Register,
    /// `read`, `write` and `cas` with value `[expected, new]`.
    CasRegister,
    /// `acquire` and `release`.
    Mutex,
    /// `add` a value, `read` the whole set.
    Set,
    /// `add` an integer, `read` the total.
    Counter,
    /// A string register: `read`, `write`, `append`.
    Append,
}

impl ModelKind {
    pub const ALL: &'static [ModelKind] = &[
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::Counter,
        ModelKind::Append,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::Counter => "counter",
            ModelKind::Append => "append",
        }
    }
}

/// A name that is none of those a list knows (a model, a consistency level).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}` (known: {})", known.join(", "))]
pub struct UnknownName {
    /// What the name was to name: `model`, `consistency`.
    pub what: &'static str,
    pub given: String,
    pub known: Vec<&'static str>,
}

/// The one of `all` whose `name` is `given`: what each enum named on the command
/// line parses with, so that all list the names they know alike.
fn by_name<T: Copy>(
    what: &'static str,
    all: &[T],
    name: fn(T) -> &'static str,
    given: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|&t| name(t) == given)
        .ok_or_else(|| UnknownName {
            what,
            given: given.to_string(),
            known: all.iter().map(|&t| name(t)).collect(),
        })
}

/// `FromStr` (through [`by_name`]) and `Display` for an enum that has `ALL` and
/// `name`: `what` is what a name of it names, for the error.
macro_rules! named {
    ($ty:ident, $what:literal) => {
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$ty, UnknownName> {
                by_name($what, $ty::ALL, $ty::name, s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named!(ModelKind, "model");
named!(Consistency, "consistency");

/// Which promise to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Consistency {
    /// Some order that respects real time is legal (Herlihy & Wing 1990).
    #[default]
    Linearizable,
    /// Some order that respects each process's own order is legal (Lamport 1979).
    Sequential,
    /// Causal memory (Ahamad et al. 1995): each process sees all writes in an
    /// order that respects causality. Registers with unique written values only.
    Causal,
    /// Final reads, taken after faults healed, agree on a value that was written.
    Eventual,
    /// Each of the three; the report names the strongest that holds.
    All,
}

impl Consistency {
    pub const ALL: &'static [Consistency] = &[
        Consistency::Linearizable,
        Consistency::Sequential,
        Consistency::Causal,
        Consistency::Eventual,
        Consistency::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Sequential => "sequential",
            Consistency::Causal => "causal",
            Consistency::Eventual => "eventual",
            Consistency::All => "all",
        }
    }
}

/// Why a history breaks the level checked, by level.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Explanation {
    Linearizable(Counterexample),
    Sequential(SequentialCounterexample),
    Eventual(EventualCounterexample),
    /// One of the bad patterns of causal memory.
    Causal(Box<CausalCounterexample>),
    /// A cycle of dependencies found from the store's versions (linearizable or
    /// sequential).
    Versions(VersionCounterexample),
}

impl Explanation {
    pub fn linearizable(&self) -> Option<&Counterexample> {
        match self {
            Explanation::Linearizable(c) => Some(c),
            _ => None,
        }
    }

    pub fn sequential(&self) -> Option<&SequentialCounterexample> {
        match self {
            Explanation::Sequential(c) => Some(c),
            _ => None,
        }
    }

    pub fn eventual(&self) -> Option<&EventualCounterexample> {
        match self {
            Explanation::Eventual(c) => Some(c),
            _ => None,
        }
    }

    pub fn causal(&self) -> Option<&CausalCounterexample> {
        match self {
            Explanation::Causal(c) => Some(c),
            _ => None,
        }
    }

    pub fn versions(&self) -> Option<&VersionCounterexample> {
        match self {
            Explanation::Versions(c) => Some(c),
            _ => None,
        }
    }
}

/// One level's verdict, as [`Consistency::All`] reports each.
#[derive(Debug, Clone, Serialize)]
pub struct LevelVerdict {
    pub consistency: &'static str,
    /// `true`, `false`, `"unknown"`, or `null` when the level was not checked
    /// (see `note`).
    #[serde(rename = "valid")]
    pub verdict: Option<Verdict>,
    /// A stronger level that holds and implies this one, which was therefore not
    /// checked again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implied_by: Option<&'static str>,
    /// Why the verdict is unknown, or why the level was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a level ruled out: why, in one line (e.g. "add 3 acknowledged at line
    /// 40, absent from every final read").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Explanation>,
}

/// A level that checking [`Consistency::All`] found broken, with why.
#[derive(Debug, Clone, Serialize)]
pub struct RuledOut {
    pub consistency: &'static str,
    pub counterexample: Option<Explanation>,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub model: ModelKind,
    /// Which promise to check; linearizability by default.
    pub consistency: Consistency,
    /// The state before the first op; null (the key is absent) by default.
    pub init: Value,
    /// Give up with [`Verdict::Unknown`] after this long. Checked inside the search.
    pub time_limit: Option<Duration>,
    /// For a valid history, report a linearization order.
    pub witness: bool,
    /// How long shrinking a counterexample may take at most (it stops early with the
    /// smallest history found so far).
    pub shrink_time: Duration,
    /// Bytes the search caches may use in all before the verdict is `Unknown`
    /// (an estimate of the dominant cost, not a hard cap on the process).
    pub memory_limit: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            model: ModelKind::CasRegister,
            consistency: Consistency::Linearizable,
            init: Value::Null,
            time_limit: None,
            witness: false,
            shrink_time: Duration::from_secs(10),
            memory_limit: 4 << 30,
        }
    }
}

/// Valid, invalid, or unknown (the time limit passed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

impl Verdict {
    /// Jepsen's merge: invalid beats unknown beats valid.
    pub fn merge(self, other: Verdict) -> Verdict {
        use Verdict::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// The process exit status Jepsen uses: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }
}

impl Serialize for Verdict {
    /// `true`, `false` or `"unknown"`, as Jepsen's `:valid?`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Valid => s.serialize_bool(true),
            Verdict::Invalid => s.serialize_bool(false),
            Verdict::Unknown => s.serialize_str("unknown"),
        }
    }
}

/// The result of checking one history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: String,
    /// The verdict for the level in `consistency`.
    #[serde(rename = "valid")]
    pub verdict: Verdict,
    /// The level checked: `linearizable`, `sequential`, `eventual` or `all`.
    pub consistency: &'static str,
    /// With `all`: the first of linearizable, sequential, eventual that holds
    /// (`none` when none does), as before causal and the lattice; see `safety` and
    /// `convergent` for the lattice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strongest: Option<&'static str>,
    /// With `all`: those of linearizable, sequential and eventual that do not
    /// hold, each with its counterexample (`levels` has every level).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ruled_out: Vec<RuledOut>,
    /// With `all`: those of linearizable, sequential and eventual left undecided
    /// (time or memory limit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<&'static str>,
    /// With `all`: every level's verdict, strongest first (linearizable,
    /// sequential, causal, eventual).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelVerdict>,
    /// With `all`: the strongest safety level that holds: `linearizable`,
    /// `sequential`, `causal`, or `none`; `unknown` when a level above the ones
    /// ruled out is undecided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<&'static str>,
    /// With `all`: the convergence verdict (the eventual level), absent for a
    /// model without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convergent: Option<Verdict>,
    pub model: &'static str,
    /// Client operations (invocations).
    pub ops: usize,
    /// Independent keys checked (1 when ops carry no key).
    pub keys: usize,
    #[serde(serialize_with = "millis")]
    pub elapsed_ms: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalid_keys: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<Value>,
    /// Why the verdict is unknown: `"time limit"` or `"memory limit"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<&'static str>,
    /// For an invalid history: why. Linearizability explains the first invalid key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Explanation>,
    /// What was decided from the store's own versions instead of a search, and the
    /// assumption that rests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<VersionsUsed>,
    /// Where the store's versions contradict each other (two values at one version,
    /// two writes creating one): findings about the store whatever the verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub version_findings: Vec<String>,
    /// With `Options::witness`, for a valid history: a linearization, key by key
    /// (sequential consistency: one order of all ops, whose `key` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Vec<Witness>>,
}

/// How much of a check the store's versions decided.
#[derive(Debug, Clone, Serialize)]
pub struct VersionsUsed {
    /// `"write order taken from the store's versions"`.
    pub assumption: &'static str,
    /// Keys decided from versions (sequential consistency: all or none).
    pub keys: usize,
}

/// A linearization of one key's ops.
#[derive(Debug, Clone, Serialize)]
pub struct Witness {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    pub order: Vec<OpRef>,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// The history does not fit the model or the options.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An op the model cannot take, at `file:line`.
    #[error("{file}:{line}: {problem}")]
    Op {
        file: String,
        line: usize,
        problem: ModelError,
    },
    /// The model has no meaning at that consistency level.
    #[error("the {model} model cannot be checked for {level} consistency: {reason}")]
    Level {
        model: &'static str,
        level: &'static str,
        reason: &'static str,
    },
    /// Causal consistency needs reads-from to be known: each value written at most
    /// once per key, and never the initial value.
    #[error("{file}:{line}: causal consistency is decided for histories whose written values are unique per key, but {value} is written {}{}", key.as_ref().map(|k| format!("to key {k} ")).unwrap_or_default(), match first_line { Some(l) => format!("again (first at line {l})"), None => "and is also the initial value".to_string() })]
    NotUnique {
        file: String,
        line: usize,
        key: Option<Value>,
        value: Value,
        /// The line of the first write of `value`; `None` when it is the initial
        /// value.
        first_line: Option<usize>,
    },
    /// [`Options::init`] does not fit the model.
    #[error("the initial value does not fit the {model} model: {problem}")]
    Init {
        model: &'static str,
        problem: ModelError,
    },
}

/// Checks `history` against the model and the consistency level in `opts`.
pub fn check(history: &History, opts: &Options) -> Result<Report, CheckError> {
    match opts.consistency {
        Consistency::Linearizable | Consistency::Sequential => {}
        Consistency::Eventual => return check_eventual(history, opts),
        Consistency::Causal => return check_causal(history, opts),
        Consistency::All => return check_all(history, opts),
    }
    match opts.model {
        ModelKind::Register => check_level(&Register { cas: false }, history, opts),
        ModelKind::CasRegister => check_level(&Register { cas: true }, history, opts),
        ModelKind::Mutex => check_level(&Mutex, history, opts),
        ModelKind::Set => check_level(&Set, history, opts),
        ModelKind::Counter => check_level(&Counter, history, opts),
        ModelKind::Append => check_level(&Append, history, opts),
    }
}

fn check_level<M: Model>(
    model: &M,
    history: &History,
    opts: &Options,
) -> Result<Report, CheckError> {
    match opts.consistency {
        Consistency::Sequential => check_sequential(model, history, opts),
        _ => check_model(model, history, opts),
    }
}

fn empty_report(history: &History, consistency: Consistency, model: &'static str) -> Report {
    Report {
        file: history.source().to_string(),
        verdict: Verdict::Valid,
        consistency: consistency.name(),
        strongest: None,
        ruled_out: Vec::new(),
        undecided: Vec::new(),
        levels: Vec::new(),
        safety: None,
        convergent: None,
        model,
        ops: history.pairs().len(),
        keys: 1,
        elapsed_ms: Duration::ZERO,
        invalid_keys: Vec::new(),
        unknown_keys: Vec::new(),
        unknown_reason: None,
        counterexample: None,
        versions: None,
        version_findings: Vec::new(),
        witness: None,
    }
}

/// Whether `init` fits the model: what checking each level asks first.
fn init_fits(kind: ModelKind, init: &Value) -> Result<(), CheckError> {
    let values = &mut model::Values::new();
    let fits = match kind {
        ModelKind::Register | ModelKind::CasRegister => Ok(()),
        ModelKind::Mutex => Mutex.init(init, values).map(drop),
        ModelKind::Set => Set.init(init, values).map(drop),
        ModelKind::Counter => Counter.init(init, values).map(drop),
        ModelKind::Append => Append.init(init, values).map(drop),
    };
    fits.map_err(|problem| CheckError::Init {
        model: kind.name(),
        problem,
    })
}

/// Checks that the final reads converge (see the `eventual` module). Linear time.
pub fn check_eventual(history: &History, opts: &Options) -> Result<Report, CheckError> {
    let start = Instant::now();
    let (outcome, keys) = eventual::check(opts.model, history, &opts.init)?;
    let mut report = empty_report(history, Consistency::Eventual, opts.model.name());
    report.keys = keys;
    match outcome {
        eventual::EventualOutcome::Valid => {}
        eventual::EventualOutcome::NoFinalReads => {
            report.verdict = Verdict::Unknown;
            report.unknown_reason = Some("no final reads");
        }
        eventual::EventualOutcome::Invalid(c, bad_keys) => {
            report.verdict = Verdict::Invalid;
            report.invalid_keys = bad_keys;
            report.counterexample = Some(Explanation::Eventual(c));
        }
    }
    report.elapsed_ms = start.elapsed();
    Ok(report)
}

/// Checks `history` for causal memory (see the `causal` module): registers with
/// unique written values only. Polynomial: it looks for Bouajjani et al.'s bad
/// patterns instead of searching.
pub fn check_causal(history: &History, opts: &Options) -> Result<Report, CheckError> {
    let start = Instant::now();
    init_fits(opts.model, &opts.init)?;
    let cas = match opts.model {
        ModelKind::Register => false,
        ModelKind::CasRegister => true,
        other => {
            return Err(CheckError::Level {
                model: other.name(),
                level: Consistency::Causal.name(),
                reason: CAUSAL_MODELS,
            })
        }
    };
    let deadline = Deadline::with_memory(
        opts.time_limit.and_then(|t| start.checked_add(t)),
        opts.memory_limit,
    );
    let (outcome, keys) = causal::check(&Register { cas }, history, &opts.init, &deadline)?;
    let mut report = empty_report(history, Consistency::Causal, opts.model.name());
    report.keys = keys;
    match outcome {
        causal::CausalOutcome::Valid => {}
        causal::CausalOutcome::Invalid(c) => {
            report.verdict = Verdict::Invalid;
            report.counterexample = Some(Explanation::Causal(c));
        }
        causal::CausalOutcome::Unknown => {
            report.verdict = Verdict::Unknown;
            report.unknown_reason = Some(unknown_reason(&deadline));
        }
    }
    report.elapsed_ms = start.elapsed();
    Ok(report)
}

const CAUSAL_MODELS: &str =
    "it is decided for read/write registers only (the register and cas-register models)";

/// Checks every level: each level's verdict, the strongest safety level that holds
/// (linearizable ⇒ sequential ⇒ causal), and convergence (eventual) beside it. The
/// verdict is linearizability's (the strongest level asked about).
pub fn check_all(history: &History, opts: &Options) -> Result<Report, CheckError> {
    let start = Instant::now();
    // One time limit for all levels: each gets what the ones before left.
    let at = |c: Consistency| {
        check(
            history,
            &Options {
                consistency: c,
                time_limit: opts.time_limit.map(|t| t.saturating_sub(start.elapsed())),
                ..opts.clone()
            },
        )
    };
    // A set that lost acknowledged adds is refuted in linear time (Jepsen's set
    // checker, `set_loss`); the search would try every order of the adds first.
    let lost = match opts.model {
        ModelKind::Set => set_loss::refute(history),
        _ => set_loss::Refutation::default(),
    };
    let ev_first = match lost {
        set_loss::Refutation {
            linearizable: false,
            sequential: false,
        } => None,
        _ => Some(at(Consistency::Eventual)?),
    };
    let refuted = |c: Consistency| {
        let mut r = empty_report(history, c, opts.model.name());
        r.verdict = Verdict::Invalid;
        r.counterexample = ev_first.as_ref().and_then(|e| e.counterexample.clone());
        r.keys = ev_first.as_ref().map_or(1, |e| e.keys);
        r.invalid_keys = ev_first
            .as_ref()
            .map(|e| e.invalid_keys.clone())
            .unwrap_or_default();
        r
    };
    let lin = match lost.linearizable {
        true => refuted(Consistency::Linearizable),
        false => at(Consistency::Linearizable)?,
    };
    // Linearizable implies sequential implies causal: no need to check again.
    let seq = match (lin.verdict, lost.sequential) {
        (Verdict::Valid, _) => None,
        (_, true) => Some(refuted(Consistency::Sequential)),
        _ => Some(at(Consistency::Sequential)?),
    };
    let seq_verdict = seq.as_ref().map_or(Verdict::Valid, |r| r.verdict);
    let implied = |v: Verdict| (v == Verdict::Valid).then_some(());
    let causal: Result<Option<Report>, String> = match opts.model {
        _ if seq_verdict == Verdict::Valid => Ok(None),
        ModelKind::Register | ModelKind::CasRegister => match at(Consistency::Causal) {
            Ok(r) => Ok(Some(r)),
            Err(e @ CheckError::NotUnique { .. }) => Err(format!("not checked: {e}")),
            Err(e) => return Err(e),
        },
        _ => Err(format!("not checked: {CAUSAL_MODELS}")),
    };
    let ev = match opts.model {
        ModelKind::Mutex => None,
        _ if ev_first.is_some() => ev_first,
        _ => Some(at(Consistency::Eventual)?),
    };
    let ev_verdict = ev.as_ref().map(|r| r.verdict);
    let causal_verdict = match &causal {
        Ok(None) => Some(Verdict::Valid),
        Ok(Some(r)) => Some(r.verdict),
        Err(_) => None,
    };

    let level_of = |r: &Report| LevelVerdict {
        consistency: r.consistency,
        verdict: Some(r.verdict),
        implied_by: None,
        note: r.unknown_reason.map(str::to_string),
        summary: r.counterexample.as_ref().and_then(explain::summary),
        counterexample: r.counterexample.clone(),
    };
    let mut levels = vec![level_of(&lin)];
    let stronger = if lin.verdict == Verdict::Valid {
        "linearizable"
    } else {
        "sequential"
    };
    levels.push(match &seq {
        Some(r) => level_of(r),
        None => LevelVerdict {
            consistency: Consistency::Sequential.name(),
            verdict: Some(Verdict::Valid),
            implied_by: Some("linearizable"),
            note: None,
            summary: None,
            counterexample: None,
        },
    });
    let registers = matches!(opts.model, ModelKind::Register | ModelKind::CasRegister);
    levels.extend(registers.then(|| match &causal {
        Ok(Some(r)) => level_of(r),
        Ok(None) => LevelVerdict {
            consistency: Consistency::Causal.name(),
            verdict: Some(Verdict::Valid),
            implied_by: implied(seq_verdict).map(|()| stronger),
            note: None,
            summary: None,
            counterexample: None,
        },
        Err(why) => LevelVerdict {
            consistency: Consistency::Causal.name(),
            verdict: None,
            implied_by: None,
            note: Some(why.clone()),
            summary: None,
            counterexample: None,
        },
    }));
    levels.extend(ev.as_ref().map(level_of));

    let safety = [
        ("linearizable", Some(lin.verdict)),
        ("sequential", Some(seq_verdict)),
        ("causal", causal_verdict),
    ];
    // Causal memory is defined here for registers only: elsewhere the safety
    // levels end at sequential.
    let safety = &safety[..if registers { 3 } else { 2 }];
    let safety = match safety.iter().find(|(_, v)| *v != Some(Verdict::Invalid)) {
        None => "none",
        Some((level, Some(Verdict::Valid))) => level,
        Some(_) => "unknown",
    };
    let mut report = Report {
        consistency: Consistency::All.name(),
        strongest: Some(if lin.verdict == Verdict::Valid {
            "linearizable"
        } else if seq_verdict == Verdict::Valid {
            "sequential"
        } else if ev_verdict == Some(Verdict::Valid) {
            "eventual"
        } else {
            "none"
        }),
        safety: Some(safety),
        convergent: ev_verdict,
        counterexample: None,
        ..lin.clone()
    };
    for r in [Some(lin), seq, ev].into_iter().flatten() {
        match r.verdict {
            Verdict::Valid => {}
            Verdict::Invalid => report.ruled_out.push(RuledOut {
                consistency: r.consistency,
                counterexample: r.counterexample,
            }),
            Verdict::Unknown => report.undecided.push(r.consistency),
        }
    }
    report.levels = levels;
    report.elapsed_ms = start.elapsed();
    Ok(report)
}

/// Checks `history` for sequential consistency, all keys as one object.
pub fn check_sequential<M: Model>(
    model: &M,
    history: &History,
    opts: &Options,
) -> Result<Report, CheckError> {
    let start = Instant::now();
    let problem = sequential::Problem::new(model, history, &opts.init)?;
    let deadline = Deadline::with_memory(
        opts.time_limit.and_then(|t| start.checked_add(t)),
        opts.memory_limit,
    );
    // The store's versions, when they pin every op, decide without a search.
    let parts: Vec<&Partition<M>> = problem.parts.iter().collect();
    let by_versions = versions::decide(model, history, &parts, versions::Level::Sequential);
    let version_finding = match &by_versions {
        versions::Outcome::Undecided(u) if u.finding => Some(u.reason.clone()),
        _ => None,
    };
    if !matches!(by_versions, versions::Outcome::Undecided(_)) {
        let mut report = empty_report(history, Consistency::Sequential, model.name());
        report.keys = problem.parts.len();
        report.versions = Some(VersionsUsed {
            assumption: versions::ASSUMPTION,
            keys: problem.parts.len(),
        });
        match by_versions {
            versions::Outcome::Valid(order) => {
                if opts.witness {
                    report.witness = Some(vec![Witness {
                        key: None,
                        order: order
                            .iter()
                            .map(|&(p, c)| {
                                let part = &problem.parts[p];
                                opref::op_ref(model, history, part, &part.calls[c])
                            })
                            .collect(),
                    }]);
                }
            }
            versions::Outcome::Invalid(c) => {
                report.verdict = Verdict::Invalid;
                report.counterexample = Some(Explanation::Versions(c));
            }
            versions::Outcome::Undecided(_) => {}
        }
        report.elapsed_ms = start.elapsed();
        return Ok(report);
    }
    let init_ids = sequential::init_ids(model, &problem);
    // Linearizable implies sequential, and the linearizability search is fast on
    // the histories most stores produce: try it first, key by key.
    let linear: Vec<_> = problem
        .parts
        .par_iter()
        .zip(&problem.calls)
        .map(|(p, calls)| linear::search(model, calls, &p.init, &deadline))
        .collect();
    let orders: Option<Vec<Vec<usize>>> = linear
        .into_iter()
        .map(|o| match o {
            Outcome::Linearizable(order) => Some(order),
            _ => None,
        })
        .collect();
    let merged = orders.and_then(|o| sequential::merge_linearizations(&problem, &o));
    let outcome = match merged {
        Some(order) => sequential::SeqOutcome::Valid(order),
        None => sequential::decide(model, &problem.ops, &problem.inits(), &init_ids, &deadline),
    };
    let mut report = Report {
        keys: problem.parts.len(),
        ..empty_report(history, Consistency::Sequential, model.name())
    };
    report.version_findings.extend(version_finding);
    match &outcome {
        sequential::SeqOutcome::Valid(order) => {
            if opts.witness {
                report.witness = Some(vec![Witness {
                    key: None,
                    order: order
                        .iter()
                        .map(|&i| problem.op_ref(model, history, &problem.ops[i]))
                        .collect(),
                }]);
            }
        }
        sequential::SeqOutcome::Unknown => {
            report.verdict = Verdict::Unknown;
            report.unknown_reason = Some(unknown_reason(&deadline));
        }
        sequential::SeqOutcome::Cycle(_) | sequential::SeqOutcome::Invalid(_) => {
            report.verdict = Verdict::Invalid;
            report.counterexample = Some(Explanation::Sequential(sequential::counterexample(
                model,
                history,
                &problem,
                &outcome,
                &shrink_budget(opts, &deadline),
            )));
        }
    }
    report.elapsed_ms = start.elapsed();
    Ok(report)
}

/// Checks `history` against any model for linearizability, key by key.
pub fn check_model<M: Model>(
    model: &M,
    history: &History,
    opts: &Options,
) -> Result<Report, CheckError> {
    let start = Instant::now();
    let parts = prepare::partitions(model, history, &opts.init)?;
    let deadline = Deadline::with_memory(
        opts.time_limit.and_then(|t| start.checked_add(t)),
        opts.memory_limit,
    );
    // Per key: the outcome, the calls it refers to, and what the store's versions
    // said. Where they decide, no search runs.
    let results: Vec<_> = parts
        .par_iter()
        .map(|p| {
            let finding =
                match versions::decide(model, history, &[p], versions::Level::Linearizable) {
                    versions::Outcome::Valid(order) => {
                        let order = order.into_iter().map(|(_, c)| c).collect();
                        // The calls are kept only for a witness.
                        let calls = if opts.witness {
                            p.calls.clone()
                        } else {
                            Vec::new()
                        };
                        return (
                            KeyOutcome::Versions(Outcome::Linearizable(order)),
                            calls,
                            None,
                        );
                    }
                    versions::Outcome::Invalid(c) => {
                        return (KeyOutcome::Cycle(c), Vec::new(), None);
                    }
                    versions::Outcome::Undecided(u) => u.finding.then_some(u.reason),
                };
            let mut calls = prepare::prune(model, &p.calls, &p.init, &p.values);
            let outcome = linear::search(model, &calls, &p.init, &deadline);
            // A valid key's calls are needed only for a witness, an unknown key's
            // never: on a million ops, keeping them all would be most of the memory.
            let keep = match &outcome {
                Outcome::Linearizable(_) => opts.witness,
                Outcome::Unknown => false,
                Outcome::NotLinearizable(_) => true,
            };
            if !keep {
                calls = Vec::new();
            }
            (KeyOutcome::Search(outcome), calls, finding)
        })
        .collect();

    let mut report = Report {
        keys: parts.len(),
        witness: opts.witness.then(Vec::new),
        ..empty_report(history, Consistency::Linearizable, model.name())
    };
    let key_json = |p: &Partition<M>| p.key.as_ref().map(Key::to_json);
    for (part, (outcome, calls, finding)) in parts.iter().zip(results) {
        report
            .version_findings
            .extend(finding.map(|f| match key_json(part) {
                Some(k) => format!("key {k}: {f}"),
                None => f,
            }));
        if matches!(outcome, KeyOutcome::Versions(_) | KeyOutcome::Cycle(_)) {
            report
                .versions
                .get_or_insert(VersionsUsed {
                    assumption: versions::ASSUMPTION,
                    keys: 0,
                })
                .keys += 1;
        }
        let outcome = match outcome {
            KeyOutcome::Search(o) | KeyOutcome::Versions(o) => o,
            KeyOutcome::Cycle(c) => {
                report.verdict = Verdict::Invalid;
                report.invalid_keys.extend(key_json(part));
                if report.counterexample.is_none() {
                    report.counterexample = Some(Explanation::Versions(c));
                }
                continue;
            }
        };
        match outcome {
            Outcome::Linearizable(order) => {
                if let Some(w) = report.witness.as_mut() {
                    w.push(Witness {
                        key: key_json(part),
                        order: order
                            .iter()
                            .map(|&i| opref::op_ref(model, history, part, &calls[i]))
                            .collect(),
                    });
                }
            }
            Outcome::Unknown => {
                report.verdict = report.verdict.merge(Verdict::Unknown);
                report.unknown_reason = Some(unknown_reason(&deadline));
                report.unknown_keys.extend(key_json(part));
            }
            Outcome::NotLinearizable(stuck) => {
                report.verdict = Verdict::Invalid;
                report.invalid_keys.extend(key_json(part));
                if report.counterexample.is_none() {
                    report.counterexample =
                        Some(Explanation::Linearizable(explain::counterexample(
                            model,
                            history,
                            part,
                            &calls,
                            &stuck,
                            &shrink_budget(opts, &deadline),
                        )));
                }
            }
        }
    }
    if report.verdict != Verdict::Valid {
        report.witness = None;
    }
    report.elapsed_ms = start.elapsed();
    Ok(report)
}

/// One key's result for linearizability.
enum KeyOutcome<S> {
    /// The search decided (the versions did not).
    Search(Outcome<S>),
    /// The store's versions decided it valid, in this order.
    Versions(Outcome<S>),
    /// The store's versions form a cycle.
    Cycle(VersionCounterexample),
}

/// Why a search gave up.
fn unknown_reason(d: &Deadline) -> &'static str {
    if d.out_of_memory() {
        "memory limit"
    } else {
        "time limit"
    }
}

/// How long shrinking a counterexample may take: the shrink time, but no longer
/// than what the check's own deadline leaves.
fn shrink_budget(opts: &Options, d: &Deadline) -> Deadline {
    let remaining = match d.at {
        Some(at) => at.saturating_duration_since(Instant::now()),
        None => Duration::MAX,
    };
    Deadline::new(Some(Instant::now() + opts.shrink_time.min(remaining)))
}

#[cfg(test)]
mod tests;
