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
use std::fmt::Debug;
use std::hash::Hash;

/// The id of an interned value. `NULL` is always 0.
pub type ValueId = u32;
pub const NULL: ValueId = 0;

/// Interns JSON values so models can compare them as integers.
#[derive(Debug, Default, Clone)]
pub struct Values {
    ids: HashMap<ValueKey, ValueId>,
    values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ValueKey {
    Int(i64),
    Str(String),
    /// Canonical JSON text of anything else.
    Json(String),
}

impl ValueKey {
    /// `None` for null, which is always `NULL`.
    fn of(v: &Value) -> Option<ValueKey> {
        Some(match v {
            Value::Null => return None,
            Value::Number(n) if n.is_i64() => ValueKey::Int(n.as_i64().unwrap_or_default()),
            Value::String(s) => ValueKey::Str(s.clone()),
            other => ValueKey::Json(other.to_string()),
        })
    }
}

impl Values {
    pub fn new() -> Values {
        Values {
            ids: HashMap::default(),
            values: vec![Value::Null],
        }
    }

    /// The id of `v`, interning it if new. Equal JSON values get equal ids.
    pub fn id(&mut self, v: &Value) -> ValueId {
        let Some(key) = ValueKey::of(v) else {
            return NULL;
        };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.values.len() as ValueId;
        self.values.push(v.clone());
        self.ids.insert(key, id);
        id
    }

    /// The id of `v` if it was interned, without interning it.
    pub fn lookup(&self, v: &Value) -> Option<ValueId> {
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

    /// The name users type (`--model NAME`).
    fn name(&self) -> &'static str;

    /// The state before any op, from `--init` (null when not given).
    fn init(&self, init: &Value, values: &mut Values) -> Result<Self::State, String>;

    /// Compiles one op. `output` is the completion's value when it completed `ok`,
    /// `None` when indeterminate (`info` or never completed). `Ok(None)` means the op
    /// cannot matter whether it happened or not (an indeterminate read) and is dropped.
    /// `Err` explains what is wrong with the op, for a message naming its line.
    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        values: &mut Values,
    ) -> Result<Option<Self::Op>, String>;

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

    fn init(&self, init: &Value, values: &mut Values) -> Result<ValueId, String> {
        Ok(values.id(init))
    }

    fn compile(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
        values: &mut Values,
    ) -> Result<Option<RegisterOp>, String> {
        match f {
            "read" => Ok(output.map(|v| RegisterOp::Read(values.id(v)))),
            "write" => Ok(Some(RegisterOp::Write(values.id(input)))),
            "cas" if self.cas => match input {
                Value::Array(pair) if pair.len() == 2 => Ok(Some(RegisterOp::Cas(
                    values.id(&pair[0]),
                    values.id(&pair[1]),
                ))),
                other => Err(format!(
                    "a cas value must be [expected, new], found {other}"
                )),
            },
            other => Err(format!(
                "the {} model has no function `{other}` (it knows {})",
                self.name(),
                if self.cas {
                    "read, write, cas"
                } else {
                    "read, write; use --model cas-register for cas"
                }
            )),
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

    fn init(&self, init: &Value, _values: &mut Values) -> Result<bool, String> {
        match init {
            Value::Null | Value::Bool(false) => Ok(false),
            Value::Bool(true) => Ok(true),
            Value::String(s) if s == "unlocked" => Ok(false),
            Value::String(s) if s == "locked" => Ok(true),
            other => Err(format!(
                "the mutex model starts \"unlocked\" or \"locked\" (or false/true), not {other}"
            )),
        }
    }

    fn compile(
        &self,
        f: &str,
        _input: &Value,
        _output: Option<&Value>,
        _values: &mut Values,
    ) -> Result<Option<MutexOp>, String> {
        match f {
            "acquire" | "lock" => Ok(Some(MutexOp::Acquire)),
            "release" | "unlock" => Ok(Some(MutexOp::Release)),
            other => Err(format!(
                "the mutex model has no function `{other}` (it knows acquire, release)"
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert!(m.compile("cas", &json!(1), None, &mut vals).is_err());
        assert!(Register { cas: false }
            .compile("cas", &json!([1, 2]), None, &mut vals)
            .is_err());
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
}
