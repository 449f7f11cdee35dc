//! Models: what a single object should do, as a pure `init`/`step` pair.
//!
//! A model turns each history op (its `f`, its invocation value and, when it completed
//! `ok`, its completion value) into a compact [`Model::Op`], and says whether that op
//! may follow a state:
//!
//! ```text
//!   state null --write 1--> 1 --read 1--> 1 --cas [1,2]--> 2 --read 1--> (illegal)
//! ```
//!
//! Values are interned ([`Values`]) so states are small integers that hash quickly.
//! Models whose state is "the last value written" (registers) also say which value
//! an op writes and which it observes; the search uses that to prune indeterminate
//! ops (see `prepare`).

use rustc_hash::FxHashMap as HashMap;
use serde_json::Value;
use splitbrain_history::OpValue;
use std::fmt::Debug;
use std::hash::Hash;

/// What is wrong with an initial value or an op, in the model's terms. The caller
/// adds where it was (file and line, or which option).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The op's `f` is none of the model's functions.
    #[error(
        "the {model} model has no function `{f}` (it knows {}{})",
        known.join(", "),
        elsewhere.map_or(String::new(), |m| format!("; the {m} model knows {f}"))
    )]
    UnknownFunction {
        model: &'static str,
        f: String,
        /// The functions it does know.
        known: &'static [&'static str],
        /// Another model that knows `f`, when one does.
        elsewhere: Option<&'static str>,
    },
    /// A value of the wrong shape: `what` (`a cas value`) must be `expected`.
    #[error("{what} must be {expected}, found {found}")]
    BadValue {
        what: &'static str,
        expected: &'static str,
        found: Value,
    },
}

impl ModelError {
    pub(crate) fn unknown_function(
        model: &'static str,
        f: &str,
        known: &'static [&'static str],
    ) -> ModelError {
        ModelError::UnknownFunction {
            model,
            f: f.to_string(),
            known,
            elsewhere: None,
        }
    }

    pub(crate) fn bad_value(
        what: &'static str,
        expected: &'static str,
        found: &Value,
    ) -> ModelError {
        ModelError::BadValue {
            what,
            expected,
            found: found.clone(),
        }
    }
}

/// A cas's `[expected, new]` pair: what the register model and the eventual
/// checker both read.
pub(crate) fn cas_pair(input: &Value) -> Result<(&Value, &Value), ModelError> {
    match input {
        Value::Array(pair) if pair.len() == 2 => Ok((&pair[0], &pair[1])),
        other => Err(ModelError::bad_value(
            "a cas value",
            "[expected, new]",
            other,
        )),
    }
}

/// The id of an interned value. `NULL` is always 0.
pub type ValueId = u32;
pub const NULL: ValueId = 0;

/// Interns JSON values so models can compare them as integers.
#[derive(Debug, Default, Clone)]
pub struct Values {
    /// Integers, by far the most common values, in a map of their own: an entry
    /// is 16 bytes instead of 40, and a million-op history interns a million.
    ints: HashMap<i64, ValueId>,
    ids: HashMap<ValueKey, ValueId>,
    values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ValueKey {
    Str(String),
    /// Canonical JSON text of anything else.
    Json(String),
}

impl ValueKey {
    /// `None` for null, which is always `NULL`. Not for integers that fit an
    /// `i64`: they have a map of their own.
    fn of(v: &Value) -> Option<ValueKey> {
        Some(match v {
            Value::Null => return None,
            Value::String(s) => ValueKey::Str(s.clone()),
            other => ValueKey::Json(other.to_string()),
        })
    }
}

impl Values {
    pub fn new() -> Values {
        Values {
            ints: HashMap::default(),
            ids: HashMap::default(),
            values: vec![Value::Null],
        }
    }

    /// The id of `v`, interning it if new. Equal JSON values get equal ids.
    pub fn id(&mut self, v: &Value) -> ValueId {
        if let Some(i) = v.as_i64() {
            return self.int_id(i);
        }
        let Some(key) = ValueKey::of(v) else {
            return NULL;
        };
        let next = self.values.len() as ValueId;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            self.values.push(v.clone());
        }
        id
    }

    /// [`Values::id`] of an integer.
    fn int_id(&mut self, i: i64) -> ValueId {
        let next = self.values.len() as ValueId;
        let id = *self.ints.entry(i).or_insert(next);
        if id == next {
            self.values.push(Value::from(i));
        }
        id
    }

    /// [`Values::id`] of an op's value: integers and null without building a
    /// `Value` to look them up.
    pub fn id_op(&mut self, v: &OpValue) -> ValueId {
        match v.as_i64() {
            Some(i) => self.int_id(i),
            None if v.is_null() => NULL,
            None => self.id(&v.json()),
        }
    }

    /// The id of `v` if it was interned, without interning it.
    pub fn lookup(&self, v: &Value) -> Option<ValueId> {
        if let Some(i) = v.as_i64() {
            return self.ints.get(&i).copied();
        }
        match ValueKey::of(v) {
            None => Some(NULL),
            Some(key) => self.ids.get(&key).copied(),
        }
    }

    /// How many distinct values (null included) were interned.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, id: ValueId) -> &Value {
        &self.values[id as usize]
    }
}

/// A sequential specification of one object.
pub trait Model: Sync + Send {
    type State: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    type Op: Clone + Debug + Send + Sync;

    /// The model's name, as [`crate::ModelKind::name`] spells it.
    fn name(&self) -> &'static str;

    /// The state before any op, from [`crate::Options::init`] (null when not given).
    fn init(&self, init: &Value, values: &mut Values) -> Result<Self::State, ModelError>;

    /// Compiles one op. `output` is the completion's value when it completed `ok`,
    /// `None` when indeterminate (`info` or never completed). `Ok(None)` means the op
    /// cannot matter whether it happened or not (an indeterminate read) and is dropped.
    /// `Err` says what is wrong with the op; the caller names its line.
    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        values: &mut Values,
    ) -> Result<Option<Self::Op>, ModelError>;

    /// [`Model::compile`] on the op's own values, as the history holds them. By
    /// default they become `Value`s first; a model whose values are mostly
    /// integers reads them as they are (a cas's pair would otherwise cost an
    /// allocation per op). Must give what `compile` gives.
    fn compile_op(
        &self,
        f: &str,
        input: &OpValue,
        output: Option<&OpValue>,
        values: &mut Values,
    ) -> Result<Option<Self::Op>, ModelError> {
        let output = output.map(OpValue::json);
        self.compile(f, &input.json(), output.as_deref(), values)
    }

    /// The state after `op`, or `None` when `op` cannot follow `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// For register-like models, whose state is the last value written: the value
    /// `op` leaves behind if it takes effect.
    fn writes(&self, _op: &Self::Op) -> Option<ValueId> {
        None
    }

    /// For register-like models: the value the state must hold for `op` to be legal
    /// (a read's result, a cas's expected value).
    fn observes(&self, _op: &Self::Op) -> Option<ValueId> {
        None
    }

    /// Whether `op` never changes any state it is legal in (a read). The sequential
    /// search places such an op as soon as it is legal, without branching.
    fn is_read(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Heap bytes `state` holds beyond its own size (a set's members, an append's
    /// text), so that the searches' memory budget counts what their caches keep:
    /// without it a set search charged ~100 bytes for states of thousands of members
    /// and grew far past its limit.
    fn state_heap_bytes(&self, _state: &Self::State) -> u64 {
        0
    }

    fn describe_state(&self, state: &Self::State, values: &Values) -> Value;

    /// A short label such as `write 3`, `read 1` or `cas 1→2`.
    fn describe_op(&self, op: &Self::Op, values: &Values) -> String;
}

/// A read/write register, optionally with compare-and-set.
#[derive(Debug, Clone, Copy)]
pub struct Register {
    pub cas: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOp {
    Read(ValueId),
    Write(ValueId),
    Cas(ValueId, ValueId),
}

impl Model for Register {
    type State = ValueId;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }

    fn init(&self, init: &Value, values: &mut Values) -> Result<ValueId, ModelError> {
        Ok(values.id(init))
    }

    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        values: &mut Values,
    ) -> Result<Option<RegisterOp>, ModelError> {
        match f {
            "read" => Ok(output.map(|v| RegisterOp::Read(values.id(v)))),
            "write" => Ok(Some(RegisterOp::Write(values.id(input)))),
            "cas" if self.cas => {
                let (old, new) = cas_pair(input)?;
                Ok(Some(RegisterOp::Cas(values.id(old), values.id(new))))
            }
            "cas" => Err(ModelError::UnknownFunction {
                model: self.name(),
                f: f.to_string(),
                known: &["read", "write"],
                elsewhere: Some("cas-register"),
            }),
            other => Err(ModelError::unknown_function(
                self.name(),
                other,
                if self.cas {
                    &["read", "write", "cas"]
                } else {
                    &["read", "write"]
                },
            )),
        }
    }

    fn compile_op(
        &self,
        f: &str,
        input: &OpValue,
        output: Option<&OpValue>,
        values: &mut Values,
    ) -> Result<Option<RegisterOp>, ModelError> {
        match f {
            "read" => Ok(output.map(|v| RegisterOp::Read(values.id_op(v)))),
            "write" => Ok(Some(RegisterOp::Write(values.id_op(input)))),
            "cas" if self.cas => match input.as_pair() {
                Some((old, new)) => Ok(Some(RegisterOp::Cas(
                    values.id_op(&old),
                    values.id_op(&new),
                ))),
                None => self.compile(f, &input.json(), None, values),
            },
            // Every error, worded once.
            _ => {
                let output = output.map(OpValue::json);
                self.compile(f, &input.json(), output.as_deref(), values)
            }
        }
    }

    fn step(&self, state: &ValueId, op: &RegisterOp) -> Option<ValueId> {
        match *op {
            RegisterOp::Read(v) => (*state == v).then_some(v),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas(old, new) => (*state == old).then_some(new),
        }
    }

    fn writes(&self, op: &RegisterOp) -> Option<ValueId> {
        match *op {
            RegisterOp::Read(_) => None,
            RegisterOp::Write(v) | RegisterOp::Cas(_, v) => Some(v),
        }
    }

    fn observes(&self, op: &RegisterOp) -> Option<ValueId> {
        match *op {
            RegisterOp::Read(v) | RegisterOp::Cas(v, _) => Some(v),
            RegisterOp::Write(_) => None,
        }
    }

    fn is_read(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_))
    }

    fn describe_state(&self, state: &ValueId, values: &Values) -> Value {
        values.get(*state).clone()
    }

    fn describe_op(&self, op: &RegisterOp, values: &Values) -> String {
        match *op {
            RegisterOp::Read(v) => format!("read {}", values.get(v)),
            RegisterOp::Write(v) => format!("write {}", values.get(v)),
            RegisterOp::Cas(a, b) => format!("cas {}→{}", values.get(a), values.get(b)),
        }
    }
}

/// A lock: `acquire` succeeds only when free, `release` only when held.
#[derive(Debug, Clone, Copy)]
pub struct Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutexOp {
    Acquire,
    Release,
}

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;

    fn name(&self) -> &'static str {
        "mutex"
    }

    fn init(&self, init: &Value, _values: &mut Values) -> Result<bool, ModelError> {
        match init {
            Value::Null | Value::Bool(false) => Ok(false),
            Value::Bool(true) => Ok(true),
            Value::String(s) if s == "unlocked" => Ok(false),
            Value::String(s) if s == "locked" => Ok(true),
            other => Err(ModelError::bad_value(
                "the initial state",
                "\"unlocked\" or \"locked\" (or false or true)",
                other,
            )),
        }
    }

    fn compile(
        &self,
        f: &str,
        _input: &Value,
        _output: Option<&Value>,
        _values: &mut Values,
    ) -> Result<Option<MutexOp>, ModelError> {
        match f {
            "acquire" | "lock" => Ok(Some(MutexOp::Acquire)),
            "release" | "unlock" => Ok(Some(MutexOp::Release)),
            other => Err(ModelError::unknown_function(
                self.name(),
                other,
                &["acquire", "release"],
            )),
        }
    }

    fn step(&self, locked: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!locked).then_some(true),
            MutexOp::Release => locked.then_some(false),
        }
    }

    fn describe_state(&self, locked: &bool, _values: &Values) -> Value {
        Value::from(if *locked { "locked" } else { "unlocked" })
    }

    fn describe_op(&self, op: &MutexOp, _values: &Values) -> String {
        match op {
            MutexOp::Acquire => "acquire".into(),
            MutexOp::Release => "release".into(),
        }
    }
}

/// A grow-only set: `add` a value, `read` returns the whole set as a JSON array
/// (in any order; duplicates are ignored). Not register-like: no pruning.
#[derive(Debug, Clone, Copy)]
pub struct Set;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    Add(ValueId),
    /// The members read, sorted and deduplicated.
    Read(Vec<ValueId>),
}

/// Interns the elements of a set given as a JSON array (null is the empty set);
/// `what` names the value for an error.
fn set_of(v: &Value, what: &'static str, values: &mut Values) -> Result<Vec<ValueId>, ModelError> {
    let mut ids = match v {
        Value::Null => Vec::new(),
        Value::Array(xs) => xs.iter().map(|x| values.id(x)).collect(),
        other => return Err(ModelError::bad_value(what, "a JSON array (a set)", other)),
    };
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

impl Model for Set {
    /// The members, sorted.
    type State = Vec<ValueId>;
    type Op = SetOp;

    fn name(&self) -> &'static str {
        "set"
    }

    fn state_heap_bytes(&self, state: &Vec<ValueId>) -> u64 {
        (state.capacity() * std::mem::size_of::<ValueId>()) as u64
    }

    fn init(&self, init: &Value, values: &mut Values) -> Result<Vec<ValueId>, ModelError> {
        set_of(init, "the initial set", values)
    }

    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        values: &mut Values,
    ) -> Result<Option<SetOp>, ModelError> {
        match f {
            "add" => Ok(Some(SetOp::Add(values.id(input)))),
            "read" => output
                .map(|v| Ok(SetOp::Read(set_of(v, "a read's value", values)?)))
                .transpose(),
            other => Err(ModelError::unknown_function(
                self.name(),
                other,
                &["add", "read"],
            )),
        }
    }

    fn step(&self, state: &Vec<ValueId>, op: &SetOp) -> Option<Vec<ValueId>> {
        match op {
            SetOp::Add(v) => match state.binary_search(v) {
                Ok(_) => Some(state.clone()),
                Err(at) => {
                    let mut next = state.clone();
                    next.insert(at, *v);
                    Some(next)
                }
            },
            SetOp::Read(seen) => (seen == state).then(|| state.clone()),
        }
    }

    fn is_read(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }

    fn describe_state(&self, state: &Vec<ValueId>, values: &Values) -> Value {
        Value::Array(state.iter().map(|&v| values.get(v).clone()).collect())
    }

    fn describe_op(&self, op: &SetOp, values: &Values) -> String {
        match op {
            SetOp::Add(v) => format!("add {}", values.get(*v)),
            SetOp::Read(seen) => format!("read {}", self.describe_state(seen, values)),
        }
    }
}

/// A counter: `add n` (n may be negative), `read` returns the total. Starts at 0
/// (or the initial value). Not register-like: no pruning.
#[derive(Debug, Clone, Copy)]
pub struct Counter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    Read(i64),
}

/// `v` as a 64-bit integer; `what` names it for an error.
pub(crate) fn integer(v: &Value, what: &'static str) -> Result<i64, ModelError> {
    v.as_i64()
        .ok_or_else(|| ModelError::bad_value(what, "an integer", v))
}

impl Model for Counter {
    type State = i128;
    type Op = CounterOp;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn init(&self, init: &Value, _values: &mut Values) -> Result<i128, ModelError> {
        match init {
            Value::Null => Ok(0),
            other => integer(other, "the initial count").map(i128::from),
        }
    }

    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        _values: &mut Values,
    ) -> Result<Option<CounterOp>, ModelError> {
        match f {
            "add" | "incr" => Ok(Some(CounterOp::Add(integer(input, "an add's value")?))),
            "read" => output
                .map(|v| Ok(CounterOp::Read(integer(v, "a read's value")?)))
                .transpose(),
            other => Err(ModelError::unknown_function(
                self.name(),
                other,
                &["add", "read"],
            )),
        }
    }

    /// The count is 128 bits wide, so that adds of 64-bit integers cannot
    /// overflow it (2^64 ops would be needed) and a sum beyond 64 bits is simply
    /// a count no read can match, not an illegal step.
    fn step(&self, state: &i128, op: &CounterOp) -> Option<i128> {
        match *op {
            CounterOp::Add(n) => state.checked_add(i128::from(n)),
            CounterOp::Read(n) => (*state == i128::from(n)).then_some(*state),
        }
    }

    fn is_read(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }

    fn describe_state(&self, state: &i128, _values: &Values) -> Value {
        i64::try_from(*state).map_or_else(|_| Value::String(state.to_string()), Value::from)
    }

    fn describe_op(&self, op: &CounterOp, _values: &Values) -> String {
        match op {
            CounterOp::Add(n) => format!("add {n}"),
            CounterOp::Read(n) => format!("read {n}"),
        }
    }
}

/// A string register with append, as in the MIT 6.824 key/value service: `read`
/// returns the string, `write` (`put`) replaces it, `append` concatenates. An
/// absent key reads as `""`, so null and `""` are the same value here. Not
/// register-like (an append's result depends on the state): no pruning.
#[derive(Debug, Clone, Copy)]
pub struct Append;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOp {
    Read(String),
    Write(String),
    Append(String),
}

fn string(v: &Value, what: &'static str) -> Result<String, ModelError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(ModelError::bad_value(what, "a string", other)),
    }
}

impl Model for Append {
    type State = String;
    type Op = AppendOp;

    fn name(&self) -> &'static str {
        "append"
    }

    fn state_heap_bytes(&self, state: &String) -> u64 {
        state.capacity() as u64
    }

    fn init(&self, init: &Value, _values: &mut Values) -> Result<String, ModelError> {
        string(init, "the initial value")
    }

    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        _values: &mut Values,
    ) -> Result<Option<AppendOp>, ModelError> {
        match f {
            "read" | "get" => output
                .map(|v| Ok(AppendOp::Read(string(v, "a read's value")?)))
                .transpose(),
            "write" | "put" => Ok(Some(AppendOp::Write(string(input, "a write's value")?))),
            "append" => Ok(Some(AppendOp::Append(string(input, "an append's value")?))),
            other => Err(ModelError::unknown_function(
                self.name(),
                other,
                &["read", "write", "append"],
            )),
        }
    }

    fn step(&self, state: &String, op: &AppendOp) -> Option<String> {
        match op {
            AppendOp::Read(s) => (s == state).then(|| state.clone()),
            AppendOp::Write(s) => Some(s.clone()),
            AppendOp::Append(s) => Some(format!("{state}{s}")),
        }
    }

    fn is_read(&self, op: &AppendOp) -> bool {
        matches!(op, AppendOp::Read(_))
    }

    fn describe_state(&self, state: &String, _values: &Values) -> Value {
        Value::from(state.as_str())
    }

    fn describe_op(&self, op: &AppendOp, _values: &Values) -> String {
        let (f, s) = match op {
            AppendOp::Read(s) => ("read", s),
            AppendOp::Write(s) => ("write", s),
            AppendOp::Append(s) => ("append", s),
        };
        format!("{f} {}", Value::from(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registers_compile_an_ops_own_values_as_their_json() {
        let values = [
            json!(null),
            json!(3),
            json!(-4),
            json!(u64::MAX),
            json!(1.5),
            json!("x"),
            json!([null, 2]),
            json!([1, 2]),
            json!([1u64 << 40, "y"]),
            json!([1, 2, 3]),
            json!({"a": 1}),
        ];
        for m in [Register { cas: false }, Register { cas: true }] {
            for f in ["read", "write", "cas", "add"] {
                for input in &values {
                    for output in values.iter().map(Some).chain([None]) {
                        let (mut a, mut b) = (Values::new(), Values::new());
                        let by_json = m.compile(f, input, output, &mut a);
                        let own = OpValue::from(input.clone());
                        let out = output.cloned().map(OpValue::from);
                        let by_op = m.compile_op(f, &own, out.as_ref(), &mut b);
                        let what = format!("{f} {input} {output:?} cas={}", m.cas);
                        assert_eq!(format!("{by_json:?}"), format!("{by_op:?}"), "{what}");
                        assert_eq!(a.values, b.values, "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn equal_json_values_intern_equal() {
        let mut v = Values::new();
        assert_eq!(v.id(&Value::Null), NULL);
        let a = v.id(&json!(3));
        assert_eq!(v.id(&json!(3)), a);
        assert_ne!(v.id(&json!("3")), a);
        assert_eq!(v.id(&json!([1, 2])), v.id(&json!([1, 2])));
        assert_eq!(v.get(a), &json!(3));
    }

    #[test]
    fn the_memory_budget_counts_what_a_state_holds() {
        // A set of 1,000 members and a 1,000-byte append hold their members on the
        // heap; a register's state holds nothing there.
        let mut vals = Values::new();
        let members: Vec<ValueId> = (0..1000).map(|i| vals.id(&json!(i))).collect();
        assert!(Set.state_heap_bytes(&members) >= 1000 * std::mem::size_of::<ValueId>() as u64);
        assert!(Append.state_heap_bytes(&"x".repeat(1000)) >= 1000);
        assert_eq!(Register { cas: true }.state_heap_bytes(&NULL), 0);
    }

    #[test]
    fn cas_register_steps() {
        let m = Register { cas: true };
        let mut vals = Values::new();
        let cas = m
            .compile("cas", &json!([1, 2]), Some(&json!([1, 2])), &mut vals)
            .unwrap()
            .unwrap();
        let one = vals.id(&json!(1));
        assert_eq!(m.step(&one, &cas), Some(vals.id(&json!(2))));
        assert_eq!(m.step(&NULL, &cas), None);
        assert_eq!(
            m.compile("cas", &json!(1), None, &mut vals),
            Err(ModelError::BadValue {
                what: "a cas value",
                expected: "[expected, new]",
                found: json!(1)
            })
        );
        // The plain register points at the model that knows cas.
        let e = Register { cas: false }
            .compile("cas", &json!([1, 2]), None, &mut vals)
            .unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::UnknownFunction {
                    elsewhere: Some("cas-register"),
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the register model has no function `cas` (it knows read, write; \
             the cas-register model knows cas)"
        );
        // An indeterminate read cannot matter.
        assert_eq!(m.compile("read", &Value::Null, None, &mut vals), Ok(None));
    }

    #[test]
    fn mutex_steps() {
        let m = Mutex;
        assert_eq!(m.step(&false, &MutexOp::Acquire), Some(true));
        assert_eq!(m.step(&true, &MutexOp::Acquire), None);
        assert_eq!(m.step(&false, &MutexOp::Release), None);
    }

    #[test]
    fn set_reads_compare_as_sets() {
        let mut vals = Values::new();
        let add = |v, vals: &mut Values| Set.compile("add", &v, Some(&v), vals).unwrap().unwrap();
        let read = |v, vals: &mut Values| {
            Set.compile("read", &Value::Null, Some(&v), vals)
                .unwrap()
                .unwrap()
        };
        let s0 = Set.init(&Value::Null, &mut vals).unwrap();
        let s1 = Set.step(&s0, &add(json!(2), &mut vals)).unwrap();
        let s2 = Set.step(&s1, &add(json!(1), &mut vals)).unwrap();
        assert!(Set.step(&s2, &read(json!([1, 2]), &mut vals)).is_some());
        assert!(Set.step(&s2, &read(json!([2, 1, 2]), &mut vals)).is_some());
        assert!(Set.step(&s2, &read(json!([2]), &mut vals)).is_none());
        assert!(Set
            .compile("read", &Value::Null, Some(&json!(3)), &mut vals)
            .is_err());
        assert_eq!(Set.describe_state(&s2, &vals), json!([2, 1]));
    }

    #[test]
    fn counter_and_append_step() {
        let mut vals = Values::new();
        assert_eq!(Counter.init(&Value::Null, &mut vals), Ok(0));
        assert_eq!(Counter.step(&2, &CounterOp::Add(-3)), Some(-1));
        assert_eq!(Counter.step(&2, &CounterOp::Read(3)), None);
        assert!(Counter
            .compile("add", &json!("x"), None, &mut vals)
            .is_err());
        let a = Append.init(&json!(""), &mut vals).unwrap();
        let a = Append.step(&a, &AppendOp::Append("x".into())).unwrap();
        let a = Append.step(&a, &AppendOp::Append("y".into())).unwrap();
        assert_eq!(a, "xy");
        assert!(Append.step(&a, &AppendOp::Read("yx".into())).is_none());
        assert_eq!(
            Append.step(&a, &AppendOp::Write("z".into())).as_deref(),
            Some("z")
        );
    }
}
