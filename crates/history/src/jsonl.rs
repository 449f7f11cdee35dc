//! JSON Lines, splitbrain's own history format: one op per line, in real-time order.
//!
//! ```text
//! {"process": 3, "type": "invoke", "f": "cas", "value": [1, 2], "key": "k7", "time": 1234567}
//! {"process": 3, "type": "ok", "f": "cas", "value": [1, 2], "key": "k7", "time": 1299000}
//! ```
//!
//! Required: `process` (an integer or `"nemesis"`), `type` (`invoke|ok|fail|info`) and
//! `f`. Optional: `value` (null when absent), `key` (string or integer), `time` (ns),
//! `index`, `node`, `error`, `final`. Any other field is kept and written back.
//! Blank lines are skipped.

use crate::{ErrorKind, History, HistoryError, Key, Op, OpType, Process};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// Parses a whole JSON Lines text. `source` names the file in errors.
pub fn parse(source: &str, text: &str) -> Result<History, HistoryError> {
    let mut ops = Vec::with_capacity(text.len() / 80);
    let mut lines = Vec::with_capacity(text.len() / 80);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op = parse_line(line).map_err(|k| HistoryError::new(source, Some(n + 1), k))?;
        ops.push(op);
        lines.push(n + 1);
    }
    History::new(source, ops, Some(lines))
}

/// Parses one line holding one op.
pub fn parse_line(line: &str) -> Result<Op, ErrorKind> {
    serde_json::from_str::<Op>(line).map_err(|e| {
        let msg = e.to_string();
        // serde_json appends " at line 1 column N"; keep the column, drop the line,
        // since we report the file's own line number.
        let msg = match msg.rsplit_once(" at line 1 column ") {
            Some((m, col)) if e.is_data() => format!("{m} (column {col})"),
            Some((m, col)) => format!("{m} at column {col}"),
            None => msg,
        };
        if e.is_data() {
            ErrorKind::BadOp(msg)
        } else {
            ErrorKind::Json(msg)
        }
    })
}

/// Serializes one op as a single JSON line, without the newline.
pub fn to_line(op: &Op) -> String {
    serde_json::to_string(op).expect("an op always serializes")
}

/// Writes ops as JSON Lines. Buffering and flushing are the caller's choice of `W`.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out }
    }

    pub fn write(&mut self, op: &Op) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, op)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.process {
            Process::Client(p) => m.serialize_entry("process", &p)?,
            Process::Nemesis => m.serialize_entry("process", "nemesis")?,
        }
        m.serialize_entry("type", self.kind.as_str())?;
        m.serialize_entry("f", &self.f)?;
        m.serialize_entry("value", &self.value)?;
        match &self.key {
            Some(Key::Int(k)) => m.serialize_entry("key", k)?,
            Some(Key::Str(k)) => m.serialize_entry("key", k)?,
            None => {}
        }
        if let Some(t) = self.time {
            m.serialize_entry("time", &t)?;
        }
        if let Some(i) = self.index {
            m.serialize_entry("index", &i)?;
        }
        if let Some(n) = &self.node {
            m.serialize_entry("node", n)?;
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        if self.is_final {
            m.serialize_entry("final", &true)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A string that borrows from the input when it can (serde's own `Cow<str>` always
/// copies), so field names cost no allocation.
struct Str<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn field_err<E: de::Error>(field: &str, expected: &str, found: &Value) -> E {
    let mut shown = found.to_string();
    if shown.len() > 60 {
        shown.truncate(57);
        shown.push_str("...");
    }
    E::custom(format_args!("field `{field}`: expected {expected}, found {shown}"))
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        d.deserialize_map(OpVisitor)
    }
}

struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = Op;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an op: a JSON object with process, type and f")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
        let mut process = None;
        let mut kind = None;
        let mut f = None;
        let mut op = Op::new(Process::Nemesis, OpType::Invoke, "", Value::Null);
        while let Some(Str(name)) = map.next_key::<Str>()? {
            match name.as_ref() {
                "process" => {
                    let v: Value = map.next_value()?;
                    process = Some(match &v {
                        Value::Number(n) if n.as_i64().is_some() => {
                            Process::Client(n.as_i64().unwrap_or_default())
                        }
                        Value::String(s) if s == "nemesis" => Process::Nemesis,
                        _ => {
                            return Err(field_err("process", "an integer or \"nemesis\"", &v))
                        }
                    });
                }
                "type" => {
                    let v: Value = map.next_value()?;
                    kind = Some(v.as_str().and_then(OpType::parse).ok_or_else(|| {
                        field_err("type", "one of \"invoke\", \"ok\", \"fail\", \"info\"", &v)
                    })?);
                }
                "f" => {
                    let v: Value = map.next_value()?;
                    match v {
                        Value::String(s) => f = Some(s),
                        other => return Err(field_err("f", "a string", &other)),
                    }
                }
                "value" => op.value = map.next_value()?,
                "key" => {
                    let v: Value = map.next_value()?;
                    op.key = match &v {
                        Value::Null => None,
                        _ => Some(
                            Key::from_json(&v)
                                .ok_or_else(|| field_err("key", "a string or an integer", &v))?,
                        ),
                    };
                }
                "time" => {
                    let v: Value = map.next_value()?;
                    op.time = match &v {
                        Value::Null => None,
                        _ => Some(
                            v.as_i64()
                                .ok_or_else(|| field_err("time", "an integer (ns)", &v))?,
                        ),
                    };
                }
                "index" => {
                    let v: Value = map.next_value()?;
                    op.index = match &v {
                        Value::Null => None,
                        _ => Some(
                            v.as_u64()
                                .ok_or_else(|| field_err("index", "a non-negative integer", &v))?,
                        ),
                    };
                }
                "node" => {
                    let v: Value = map.next_value()?;
                    op.node = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s),
                        other => return Err(field_err("node", "a string", &other)),
                    };
                }
                "error" => {
                    let v: Value = map.next_value()?;
                    op.error = (!v.is_null()).then_some(v);
                }
                "final" => {
                    let v: Value = map.next_value()?;
                    op.is_final = match v {
                        Value::Null => false,
                        Value::Bool(b) => b,
                        other => return Err(field_err("final", "true or false", &other)),
                    };
                }
                other => {
                    let v: Value = map.next_value()?;
                    op.extra.push((other.to_string(), v));
                }
            }
        }
        op.process = process.ok_or_else(|| de::Error::missing_field("process"))?;
        op.kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        op.f = f.ok_or_else(|| de::Error::missing_field("f"))?;
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_field() {
        let line = r#"{"process":3,"type":"ok","f":"cas","value":[1,2],"key":"k7","time":1234567,"index":12,"node":"n1","error":"timeout","final":true,"custom":{"a":1}}"#;
        let op = parse_line(line).unwrap();
        assert_eq!(op.process, Process::Client(3));
        assert_eq!(op.kind, OpType::Ok);
        assert_eq!(op.value, json!([1, 2]));
        assert_eq!(op.key, Some(Key::Str("k7".into())));
        assert_eq!(op.extra, vec![("custom".to_string(), json!({"a": 1}))]);
        assert_eq!(to_line(&op), line);
    }

    #[test]
    fn nemesis_and_integer_keys() {
        let op = parse_line(r#"{"process":"nemesis","type":"info","f":"start-partition","key":4}"#)
            .unwrap();
        assert_eq!(op.process, Process::Nemesis);
        assert_eq!(op.key, Some(Key::Int(4)));
        assert_eq!(op.value, Value::Null);
    }

    #[test]
    fn errors_say_which_field_and_line() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}\n";
        let e = parse("h.jsonl", text).unwrap_err().to_string();
        assert!(e.starts_with("h.jsonl:2: bad op: field `type`: expected one of"), "{e}");
        assert!(e.contains("found \"okay\""), "{e}");

        let e = parse("h.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.jsonl:1: invalid JSON: EOF while parsing"), "{e}");

        let e = parse("h.jsonl", "{\"process\":\"me\",\"type\":\"invoke\",\"f\":\"read\"}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `process`: expected an integer or \"nemesis\""), "{e}");

        let e = parse("h.jsonl", "\n\n{\"type\":\"invoke\",\"f\":\"read\"}").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.to_string().contains("missing field `process`"), "{e}");
    }

    #[test]
    fn blank_lines_keep_line_numbers() {
        let h = parse(
            "h",
            "\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
        )
        .unwrap();
        assert_eq!(h.line(0), 2);
        assert_eq!(h.line(1), 4);
    }

    #[test]
    fn writer_writes_lines() {
        let mut w = Writer::new(Vec::new());
        w.write(&Op::new(Process::Client(1), OpType::Invoke, "read", Value::Null))
            .unwrap();
        let out = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(
            out,
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n"
        );
    }
}
