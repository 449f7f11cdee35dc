//! An op's value in 16 bytes: what a million-op history holds two million of.
//!
//! Almost every value in a register history is `null`, an integer, or a cas's
//! `[expected, new]` pair of small integers: those are held inline. Anything else
//! (strings, floats, objects, longer arrays, integers beyond `i64`) is kept as
//! serde_json read it, boxed, so it reads and writes back exactly as before.
//!
//! ```text
//!   null, true, -17, 1234567890123        inline
//!   [null, 210], [3, -4]                   inline (each half null or a 32-bit integer)
//!   "x", 1.5, -0, 18446744073709551615,
//!   [1, 2, 3], {"a": 1}                    boxed serde_json::Value
//! ```

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The `value` of an op: any JSON value. Inline when it is `null`, a boolean, an
/// integer that fits an `i64`, or a two-element array whose elements are `null` or
/// integers that fit an `i32`; boxed otherwise.
///
/// Each JSON value has exactly one form (the constructor picks it), so equality is
/// JSON equality, as serde_json's `Value` defines it.
#[derive(Clone, PartialEq, Default)]
pub struct OpValue(Repr);

#[derive(Clone, PartialEq, Default)]
enum Repr {
    #[default]
    Null,
    Bool(bool),
    /// A JSON integer that fits an `i64` (serde_json's `as_i64`).
    Int(i64),
    /// `[a, b]`, each an `i32` other than [`NIL`], or `NIL` for `null`.
    Pair(i32, i32),
    /// Everything else. Never one of the kinds above.
    Json(Box<Value>),
}

/// `null` inside a [`Repr::Pair`]; an element equal to it is not held inline.
const NIL: i32 = i32::MIN;

/// An element of an inline pair, or `None` when `v` cannot be one.
fn half(v: &Value) -> Option<i32> {
    match v {
        Value::Null => Some(NIL),
        Value::Number(n) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .filter(|&i| i != NIL),
        _ => None,
    }
}

fn half_json(h: i32) -> Value {
    if h == NIL {
        Value::Null
    } else {
        Value::from(h)
    }
}

impl OpValue {
    pub const NULL: OpValue = OpValue(Repr::Null);

    /// An integer, inline.
    pub fn int(i: i64) -> OpValue {
        OpValue(Repr::Int(i))
    }

    /// `[a, b]` where each of `a` and `b` is `None` (null) or an integer; inline
    /// when both fit 32 bits.
    pub fn pair(a: Option<i64>, b: Option<i64>) -> OpValue {
        let h = |x: Option<i64>| match x {
            None => Some(NIL),
            Some(i) => i32::try_from(i).ok().filter(|&i| i != NIL),
        };
        match (h(a), h(b)) {
            (Some(a), Some(b)) => OpValue(Repr::Pair(a, b)),
            _ => {
                let j = |x: Option<i64>| x.map_or(Value::Null, Value::from);
                OpValue(Repr::Json(Box::new(Value::Array(vec![j(a), j(b)]))))
            }
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.0, Repr::Null)
    }

    /// As serde_json's `Value::as_i64`: an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Int(i) => Some(*i),
            Repr::Json(v) => v.as_i64(),
            _ => None,
        }
    }

    /// As serde_json's `Value::as_u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Int(i) => u64::try_from(*i).ok(),
            Repr::Json(v) => v.as_u64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.0 {
            Repr::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Json(v) => v.as_str(),
            _ => None,
        }
    }

    /// The two elements of a two-element array (a cas's `[expected, new]`), each
    /// a value of its own.
    pub fn as_pair(&self) -> Option<(OpValue, OpValue)> {
        let half = |h: i32| {
            if h == NIL {
                OpValue::NULL
            } else {
                OpValue::int(h.into())
            }
        };
        match &self.0 {
            Repr::Pair(a, b) => Some((half(*a), half(*b))),
            Repr::Json(v) => match &**v {
                Value::Array(t) if t.len() == 2 => Some((t[0].clone().into(), t[1].clone().into())),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value as serde_json's `Value`: borrowed when it is boxed, built when
    /// it is inline (which allocates only for a pair).
    pub fn json(&self) -> Cow<'_, Value> {
        match &self.0 {
            Repr::Json(v) => Cow::Borrowed(v),
            Repr::Null => Cow::Owned(Value::Null),
            Repr::Bool(b) => Cow::Owned(Value::Bool(*b)),
            Repr::Int(i) => Cow::Owned(Value::from(*i)),
            Repr::Pair(a, b) => Cow::Owned(Value::Array(vec![half_json(*a), half_json(*b)])),
        }
    }

    /// The value as serde_json's `Value`, taking it.
    pub fn into_json(self) -> Value {
        match self.0 {
            Repr::Json(v) => *v,
            _ => self.json().into_owned(),
        }
    }
}

impl From<Value> for OpValue {
    fn from(v: Value) -> OpValue {
        OpValue(match v {
            Value::Null => Repr::Null,
            Value::Bool(b) => Repr::Bool(b),
            Value::Number(ref n) => match n.as_i64() {
                Some(i) => Repr::Int(i),
                None => Repr::Json(Box::new(v)),
            },
            Value::Array(ref a) if a.len() == 2 => match (half(&a[0]), half(&a[1])) {
                (Some(x), Some(y)) => Repr::Pair(x, y),
                _ => Repr::Json(Box::new(v)),
            },
            other => Repr::Json(Box::new(other)),
        })
    }
}

impl From<OpValue> for Value {
    fn from(v: OpValue) -> Value {
        v.into_json()
    }
}

impl From<i64> for OpValue {
    fn from(i: i64) -> OpValue {
        OpValue::int(i)
    }
}

impl PartialEq<Value> for OpValue {
    fn eq(&self, other: &Value) -> bool {
        let half_eq = |h: i32, v: &Value| half(v) == Some(h);
        match (&self.0, other) {
            (Repr::Null, Value::Null) => true,
            (Repr::Bool(a), Value::Bool(b)) => a == b,
            (Repr::Int(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (Repr::Pair(a, b), Value::Array(v)) => {
                v.len() == 2 && half_eq(*a, &v[0]) && half_eq(*b, &v[1])
            }
            (Repr::Json(v), other) => **v == *other,
            _ => false,
        }
    }
}

impl PartialEq<OpValue> for Value {
    fn eq(&self, other: &OpValue) -> bool {
        other == self
    }
}

/// Compact JSON text, as serde_json's `Value` displays it.
impl fmt::Display for OpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let half = |f: &mut fmt::Formatter<'_>, h: i32| {
            if h == NIL {
                f.write_str("null")
            } else {
                write!(f, "{h}")
            }
        };
        match &self.0 {
            Repr::Null => f.write_str("null"),
            Repr::Bool(b) => write!(f, "{b}"),
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Pair(a, b) => {
                f.write_str("[")?;
                half(f, *a)?;
                f.write_str(",")?;
                half(f, *b)?;
                f.write_str("]")
            }
            Repr::Json(v) => write!(f, "{v}"),
        }
    }
}

/// The JSON text: a value reads the same whichever form holds it.
impl fmt::Debug for OpValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Serialize for OpValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Null => s.serialize_unit(),
            Repr::Bool(b) => s.serialize_bool(*b),
            Repr::Int(i) => s.serialize_i64(*i),
            Repr::Pair(a, b) => {
                let mut seq = s.serialize_seq(Some(2))?;
                for h in [*a, *b] {
                    if h == NIL {
                        seq.serialize_element(&())?;
                    } else {
                        seq.serialize_element(&h)?;
                    }
                }
                seq.end()
            }
            Repr::Json(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OpValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OpValue, D::Error> {
        Value::deserialize(d).map(OpValue::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<OpValue>(), 16);
    }

    #[test]
    fn every_value_round_trips_and_compares_as_json() {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-17),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.5),
            json!(-0.0),
            json!(1.0),
            json!("x"),
            json!([]),
            json!([1]),
            json!([null, 210]),
            json!([3, -4]),
            json!([null, null]),
            json!([i32::MAX, i32::MIN + 1]),
            json!([i32::MIN, 1]),
            json!([1, 4_294_967_296i64]),
            json!([1, "a"]),
            json!([1.0, 2]),
            json!([1, 2, 3]),
            json!([[1, 2], [3, 4]]),
            json!({"a": 1}),
        ];
        let compact: Vec<OpValue> = values.iter().cloned().map(OpValue::from).collect();
        for (i, (v, o)) in values.iter().zip(&compact).enumerate() {
            assert_eq!(*o.json(), *v, "{v}");
            assert_eq!(*o, *v, "{v}");
            assert_eq!(o.to_string(), v.to_string(), "{v}");
            assert_eq!(serde_json::to_string(&o).unwrap(), v.to_string(), "{v}");
            let back: OpValue = serde_json::from_str(&v.to_string()).unwrap();
            assert_eq!(back, *o, "{v}");
            assert_eq!(o.as_i64(), v.as_i64(), "{v}");
            assert_eq!(o.as_u64(), v.as_u64(), "{v}");
            assert_eq!(o.as_str(), v.as_str(), "{v}");
            assert_eq!(o.as_bool(), v.as_bool(), "{v}");
            assert_eq!(o.is_null(), v.is_null(), "{v}");
            assert_eq!(o.clone().into_json(), *v, "{v}");
            let pair = v.as_array().filter(|a| a.len() == 2);
            let halves = pair.map(|a| (OpValue::from(a[0].clone()), OpValue::from(a[1].clone())));
            assert_eq!(o.as_pair(), halves, "{v}");
            for (j, (w, p)) in values.iter().zip(&compact).enumerate() {
                assert_eq!(o == p, i == j, "{v} vs {w}");
                assert_eq!(*o == *w, v == w, "{v} vs {w}");
            }
        }
    }

    #[test]
    fn common_values_are_inline() {
        for v in [json!(null), json!(7), json!([null, 210]), json!([-3, 4])] {
            assert!(!matches!(OpValue::from(v.clone()).0, Repr::Json(_)), "{v}");
        }
        assert_eq!(OpValue::pair(None, Some(210)), json!([null, 210]));
        assert_eq!(
            OpValue::pair(Some(1 << 40), None),
            OpValue::from(json!([1u64 << 40, null]))
        );
        assert_eq!(
            OpValue::pair(Some(i64::from(NIL)), Some(1)),
            json!([NIL, 1])
        );
    }
}
