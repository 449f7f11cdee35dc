//! JSON Lines, splitbrain's own history format: one op per line, in real-time order.
//!
//! ```text
//! {"process": 3, "type": "invoke", "f": "cas", "value": [1, 2], "key": "k7", "time": 1234567}
//! {"process": 3, "type": "ok", "f": "cas", "value": [1, 2], "key": "k7", "time": 1299000}
//! ```
//!
//! Required: `process` (an integer or `"nemesis"`), `type` (`invoke|ok|fail|info`) and
//! `f`. Optional: `value` (null when absent), `key` (string or integer), `time` (ns),
//! `index` (the op's position in the history), `version` (the store's version of the
//! value read or written: a non-negative integer, see [`Op::version`]), `node`,
//! `error`, `final`. Any other field is kept and written back. Blank lines are
//! skipped.

use crate::{ErrorKind, History, HistoryError, Key, Names, Op, OpType, Process};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

mod fast;

/// Parses a whole JSON Lines text. `source` names the file in errors. Large texts
/// are parsed on every core: lines are independent until pairing.
pub fn parse(source: &str, text: &str) -> Result<History, HistoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut acc = Acc::with_capacity(text.len());
    acc.block(source, text, 1)?;
    acc.finish(source)
}

/// Reads JSON Lines from `input` a block at a time, so the whole text is never held
/// at once: only the ops are. `size` (the file's length, when known) sizes the op
/// list once instead of growing it. Errors name `source`, the line and, for text
/// that is not UTF-8, the column.
pub fn read<R: io::Read>(
    source: &str,
    mut input: R,
    size: Option<u64>,
) -> Result<History, HistoryError> {
    // A small file gets a block its own size: zeroing and faulting in 8 MiB would
    // cost more than parsing it.
    let block = size.map_or(8 << 20, |s| (s as usize + 1).clamp(64 << 10, 8 << 20));
    let io_err = |e| HistoryError::new(source, None, ErrorKind::Io(e));
    let mut acc = Acc::with_capacity(size.map_or(0, |s| s as usize));
    let mut buf: Vec<u8> = Vec::with_capacity(block + (64 << 10));
    let mut first_line = 1;
    let mut first = true;
    loop {
        // Fill the block (plus what the last one left after its last newline).
        let mut eof = false;
        while buf.len() < block {
            let at = buf.len();
            buf.resize(block.max(at + (64 << 10)), 0);
            match input.read(&mut buf[at..]) {
                Ok(0) => {
                    buf.truncate(at);
                    eof = true;
                    break;
                }
                Ok(n) => buf.truncate(at + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(at),
                Err(e) => return Err(io_err(e)),
            }
        }
        // A line longer than a block: keep reading until it ends.
        let cut = if eof {
            buf.len()
        } else {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    let at = buf.len();
                    buf.resize(at * 2, 0);
                    let n = loop {
                        match input.read(&mut buf[at..]) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            r => break r.map_err(io_err)?,
                        }
                    };
                    buf.truncate(at + n);
                    if n == 0 {
                        // The file ends inside this long line: parse it as the last.
                        buf.push(b'\n');
                    }
                    continue;
                }
            }
        };
        let bytes = &buf[..cut];
        let text = std::str::from_utf8(bytes)
            .map_err(|e| crate::not_utf8(source, &bytes[..e.valid_up_to()], first_line))?;
        let text = if first {
            first = false;
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        first_line += acc.block(source, text, first_line)?;
        if eof {
            break;
        }
        buf.drain(..cut);
    }
    acc.finish(source)
}

/// The ops parsed so far, in file order, with their lines.
struct Acc {
    ops: Vec<Op>,
    lines: Vec<u32>,
    /// The lists other threads parse into, kept from block to block so that each
    /// block does not fault in fresh memory.
    spare: Vec<Chunk>,
}

impl Acc {
    /// Room for the ops of `bytes` of text. Generous: room never written to costs
    /// no memory, and growing would copy every op.
    fn with_capacity(bytes: usize) -> Acc {
        let n = bytes / 32 + 1;
        Acc {
            ops: Vec::with_capacity(n),
            lines: Vec::with_capacity(n),
            spare: Vec::new(),
        }
    }

    /// Parses a piece of text that starts at a line start, on every core when it
    /// is large. Returns the number of lines it holds (its newlines, when it ends
    /// with one), so that the caller need not count them again.
    fn block(&mut self, source: &str, text: &str, first: usize) -> Result<usize, HistoryError> {
        const PARALLEL_ABOVE: usize = 1 << 20;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if text.len() <= PARALLEL_ABOVE || threads == 1 {
            return parse_chunk(source, text, first, &mut self.ops, &mut self.lines);
        }
        let pieces = split_lines(text, threads);
        let mut spare = std::mem::take(&mut self.spare);
        spare.resize_with(pieces.len() - 1, Chunk::default);
        let parsed: Vec<Result<(usize, Chunk), HistoryError>> = std::thread::scope(|s| {
            // Every other piece is numbered from line 1 and moved into place below:
            // where it starts is only known once the pieces before it are read.
            let handles: Vec<_> = pieces[1..]
                .iter()
                .zip(spare)
                .map(|(&piece, mut c)| {
                    s.spawn(move || {
                        parse_chunk(source, piece, 1, &mut c.ops, &mut c.lines).map(|n| (n, c))
                    })
                })
                .collect();
            // This thread takes the first piece, straight into the list.
            let mine = parse_chunk(source, pieces[0], first, &mut self.ops, &mut self.lines);
            std::iter::once(mine.map(|n| (n, Chunk::default())))
                .chain(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                )
                .collect()
        });
        let mut lines = 0;
        for (i, piece) in parsed.into_iter().enumerate() {
            // Lines before this piece: its own numbers start after them.
            let before = if i == 0 { 0 } else { first - 1 + lines };
            let (n, mut c) = piece.map_err(|mut e| {
                e.line = e.line.map(|l| l + before);
                e
            })?;
            lines += n;
            if i > 0 {
                let shift = u32::try_from(before).unwrap_or(u32::MAX);
                self.ops.append(&mut c.ops);
                self.lines
                    .extend(c.lines.drain(..).map(|l| l.saturating_add(shift)));
                self.spare.push(c);
            }
        }
        Ok(lines)
    }

    fn finish(mut self, source: &str) -> Result<History, HistoryError> {
        self.ops.shrink_to_fit();
        // Most files have no blank lines: then op i is on line i + 1 and the
        // numbers need not be kept.
        let consecutive = self
            .lines
            .iter()
            .enumerate()
            .all(|(i, &l)| l as usize == i + 1);
        let lines = (!consecutive).then(|| {
            self.lines.shrink_to_fit();
            self.lines
        });
        History::with_lines(source.to_string(), self.ops, lines)
    }
}

/// The ops of a piece of text, with their line numbers.
#[derive(Default)]
struct Chunk {
    ops: Vec<Op>,
    lines: Vec<u32>,
}

/// Cuts `text` into about `n` pieces at line ends.
fn split_lines(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(n);
    let mut rest = text;
    let target = text.len().div_ceil(n);
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            rest[target - 1..]
                .find('\n')
                .map_or(rest.len(), |i| target + i)
        };
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    out
}

/// Parses `text`, whose first line is `first_line` of the file, onto `ops` and
/// `lines`. Returns how many lines it held.
fn parse_chunk(
    source: &str,
    text: &str,
    first_line: usize,
    ops: &mut Vec<Op>,
    lines: &mut Vec<u32>,
) -> Result<usize, HistoryError> {
    ops.reserve(text.len() / 80);
    lines.reserve(text.len() / 80);
    let mut names = Names::default();
    let mut n = 0;
    for line in text.lines() {
        let at = first_line + n;
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let op = parse_line_with(line, &mut names)
            .map_err(|k| HistoryError::new(source, Some(at), k))?;
        ops.push(op);
        // Beyond four billion lines (which no memory could hold as ops), the
        // largest number stands for the rest.
        lines.push(u32::try_from(at).unwrap_or(u32::MAX));
    }
    Ok(n)
}

/// Parses one line holding one op.
pub fn parse_line(line: &str) -> Result<Op, ErrorKind> {
    parse_line_with(line, &mut Names::default())
}

fn parse_line_with(line: &str, names: &mut Names) -> Result<Op, ErrorKind> {
    if let Some(op) = fast::parse(line, names) {
        return Ok(op);
    }
    slow_line(line, names)
}

/// Parses one line the general way, with serde, as lines of an uncommon shape are.
/// [`parse_line`] must give the same op or the same error for every line: this is
/// for tests (and the fuzz target) that compare the two.
#[doc(hidden)]
pub fn parse_line_slow(line: &str) -> Result<Op, ErrorKind> {
    slow_line(line, &mut Names::default())
}

/// Parses one line with serde: any line, and every error message.
fn slow_line(line: &str, names: &mut Names) -> Result<Op, ErrorKind> {
    let mut de = serde_json::Deserializer::from_str(line);
    let op = OpVisitor { names }
        .deserialize(&mut de)
        .and_then(|op| de.end().map(|()| op));
    let op = op.map_err(|e| {
        // A field's own message ("expected a string") can hide a line that is not
        // JSON at all, such as one cut off inside a string: say that instead.
        let e = match serde_json::from_str::<serde::de::IgnoredAny>(line) {
            Err(syntax) if e.is_data() => syntax,
            _ => e,
        };
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
        } else if msg.starts_with("recursion limit exceeded") {
            ErrorKind::Json(
                msg.replace("recursion limit exceeded", "nested deeper than 128 levels"),
            )
        } else {
            ErrorKind::Json(msg)
        }
    })?;
    match wide_integer(line) {
        None => Ok(op),
        Some((field, number, column)) => Err(ErrorKind::WideInteger {
            field: field.to_string(),
            number: number.to_string(),
            column,
        }),
    }
}

/// The first integer of a valid JSON line that does not fit in 64 bits, with the
/// op field it lies in and its column. `serde_json` rounds such integers to
/// floats, and a checker comparing rounded values would judge different writes
/// equal: they are rejected instead.
fn wide_integer(line: &str) -> Option<(&str, &str, usize)> {
    let b = line.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    let mut last_string = (0, 0);
    let mut field = "value";
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                last_string = (start, i.min(b.len()));
            }
            b':' if depth == 1 => {
                field = &line[last_string.0..last_string.1];
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b".eE+-".contains(&b[i])) {
                    i += 1;
                }
                let number = &line[start..i];
                let is_int = !number.contains(['.', 'e', 'E']);
                // 19 digits always fit; only longer ones need a look.
                if is_int
                    && number.len() > 19
                    && number.parse::<i64>().is_err()
                    && number.parse::<u64>().is_err()
                {
                    return Some((field, number, start + 1));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
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
        m.serialize_entry("f", &*self.f)?;
        m.serialize_entry("value", &self.value)?;
        match &self.key {
            Some(Key::Int(k)) => m.serialize_entry("key", k)?,
            Some(Key::Str(k)) => m.serialize_entry("key", &**k)?,
            None => {}
        }
        if let Some(t) = self.time() {
            m.serialize_entry("time", &t)?;
        }
        if let Some(i) = self.index() {
            m.serialize_entry("index", &i)?;
        }
        if let Some(v) = self.version() {
            m.serialize_entry("version", &v)?;
        }
        if let Some(n) = &self.node {
            m.serialize_entry("node", &**n)?;
        }
        if let Some(e) = &self.error {
            m.serialize_entry("error", e)?;
        }
        if self.is_final {
            m.serialize_entry("final", &true)?;
        }
        for (k, v) in self.extra() {
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
    E::custom(format_args!(
        "field `{field}`: expected {expected}, found {shown}"
    ))
}

/// `process`: an integer or "nemesis", read without building a `Value`.
struct PField(Process);

impl<'de> Deserialize<'de> for PField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or \"nemesis\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PField, E> {
                Ok(PField(Process::Client(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PField, E> {
                i64::try_from(v)
                    .map(|v| PField(Process::Client(v)))
                    .map_err(|_| E::custom("process id too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PField, E> {
                match v {
                    "nemesis" => Ok(PField(Process::Nemesis)),
                    _ => Err(E::custom("not nemesis")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `key`: a string, an integer, or null, read without building a `Value`.
struct KField(Option<Key>);

impl<'de> Deserialize<'de> for KField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KField, E> {
                Ok(KField(Some(Key::Int(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KField, E> {
                i64::try_from(v)
                    .map(|v| KField(Some(Key::Int(v))))
                    .map_err(|_| E::custom("key too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KField, E> {
                Ok(KField(Some(Key::Str(v.into()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KField, E> {
                Ok(KField(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        OpVisitor {
            names: &mut Names::default(),
        }
        .deserialize(d)
    }
}

/// Reads one op; `names` shares the allocation of `f` between ops.
struct OpVisitor<'n> {
    names: &'n mut Names,
}

impl<'de> DeserializeSeed<'de> for OpVisitor<'_> {
    type Value = Op;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Op, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OpVisitor<'_> {
    type Value = Op;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an op: a JSON object with process, type and f")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
        let mut process = None;
        let mut kind = None;
        let mut f = None;
        let mut op = Op::new(
            Process::Nemesis,
            OpType::Invoke,
            self.names.get(""),
            Value::Null,
        );
        while let Some(Str(name)) = map.next_key::<Str>()? {
            match name.as_ref() {
                "process" => {
                    let PField(p) = map.next_value().map_err(|_| {
                        de::Error::custom("field `process`: expected an integer or \"nemesis\"")
                    })?;
                    process = Some(p);
                }
                "type" => {
                    let Str(t) = map.next_value::<Str>().map_err(|_| {
                        de::Error::custom(
                            "field `type`: expected one of \"invoke\", \"ok\", \"fail\", \"info\"",
                        )
                    })?;
                    kind = Some(OpType::parse(&t).ok_or_else(|| {
                        field_err::<A::Error>(
                            "type",
                            "one of \"invoke\", \"ok\", \"fail\", \"info\"",
                            &Value::String(t.into_owned()),
                        )
                    })?);
                }
                "f" => {
                    let Str(name) = map
                        .next_value()
                        .map_err(|_| de::Error::custom("field `f`: expected a string"))?;
                    f = Some(name);
                }
                "value" => op.value = map.next_value()?,
                "key" => {
                    let KField(k) = map.next_value().map_err(|_| {
                        de::Error::custom("field `key`: expected a string or an integer")
                    })?;
                    op.key = k.map(|k| self.names.share(k));
                }
                "time" => {
                    op.set_time(map.next_value().map_err(|_| {
                        de::Error::custom("field `time`: expected an integer (ns)")
                    })?);
                }
                "index" => {
                    op.set_index(map.next_value().map_err(|_| {
                        de::Error::custom("field `index`: expected a non-negative integer")
                    })?);
                }
                "version" => {
                    op.set_version(map.next_value().map_err(|_| {
                        de::Error::custom(
                            "field `version`: expected a non-negative integer (the store's version)",
                        )
                    })?);
                }
                "node" => {
                    let v: Value = map.next_value()?;
                    op.node = match v {
                        Value::Null => None,
                        Value::String(s) => Some(self.names.get(&s)),
                        other => return Err(field_err("node", "a string", &other)),
                    };
                }
                "error" => {
                    let v: Value = map.next_value()?;
                    op.error = (!v.is_null()).then(|| Box::new(v));
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
                    op.push_extra(other.to_string(), v);
                }
            }
        }
        op.process = process.ok_or_else(|| de::Error::missing_field("process"))?;
        op.kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        op.f = self
            .names
            .get(&f.ok_or_else(|| de::Error::missing_field("f"))?);
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_field() {
        let line = r#"{"process":3,"type":"ok","f":"cas","value":[1,2],"key":"k7","time":1234567,"index":12,"version":812,"node":"n1","error":"timeout","final":true,"custom":{"a":1}}"#;
        let op = parse_line(line).unwrap();
        assert_eq!(op.process, Process::Client(3));
        assert_eq!(op.kind, OpType::Ok);
        assert_eq!(op.value, json!([1, 2]));
        assert_eq!(op.key, Some(Key::Str("k7".into())));
        assert_eq!(op.extra(), [("custom".to_string(), json!({"a": 1}))]);
        assert_eq!(op.index(), Some(12));
        assert_eq!(op.version(), Some(812));
        assert_eq!(to_line(&op), line);
    }

    #[test]
    fn the_quick_path_reads_the_common_shape_as_serde_does() {
        let common = [
            r#"{"process":3,"type":"ok","f":"cas","value":[1,2],"key":7,"time":1299000}"#,
            r#"{"process":0,"type":"invoke","f":"read","value":null,"key":"k7","time":-5}"#,
            r#" { "process" : "nemesis" , "type":"info", "f":"start", "value":["n1","n2"] } "#,
            r#"{"process":1,"type":"ok","f":"write","value":-17,"index":0,"version":812,"node":"n2"}"#,
            r#"{"process":1,"type":"info","f":"write","value":[[1,[2,[]]],true,false,"é"],"error":"timeout","final":true}"#,
            r#"{"type":"ok","f":"read","process":2,"value":1,"key":null,"time":null,"node":null,"error":null,"final":null,"version":null,"index":null}"#,
            r#"{"process":2,"process":3,"type":"ok","f":"read","value":1,"value":2,"final":false}"#,
            r#"{"process":999999999999999999,"type":"ok","f":"read","value":999999999999999999}"#,
            r#"{"process":0,"type":"ok","f":"read","value":0,"key":-1}"#,
            r#"{"process":3,"type":"invoke","f":"cas","value":[null,210],"key":7}"#,
            r#"{"process":3,"type":"invoke","f":"cas","value":[ -2147483648 , 4294967296 ]}"#,
            r#"{"process":3,"type":"invoke","f":"cas","value":[2147483647,null]}"#,
            r#"{"process":3,"type":"invoke","f":"cas","value":[1,true]}"#,
            r#"{"process":3,"type":"invoke","f":"cas","value":[1,2,3]}"#,
        ];
        for line in common {
            let quick = fast::parse(line, &mut Names::default());
            assert!(quick.is_some(), "not read quickly: {line}");
            assert_eq!(quick.unwrap(), parse_line_slow(line).unwrap(), "{line}");
        }
        // Everything else is serde's, errors included.
        let uncommon = [
            r#"{"process":0,"type":"ok","f":"re\u0061d","value":1}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1.5}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1e3}"#,
            r#"{"process":0,"type":"ok","f":"read","value":-0}"#,
            r#"{"process":0,"type":"ok","f":"read","value":01}"#,
            r#"{"process":0,"type":"ok","f":"read","value":{"a":1}}"#,
            r#"{"process":0,"type":"ok","f":"read","value":[[[[[1]]]]]}"#,
            r#"{"process":0,"type":"ok","f":"read","value":1234567890123456789}"#,
            r#"{"process":0,"type":"ok","f":"read","value":100000000000000000000001}"#,
            r#"{"process":0,"type":"ok","f":"read","mine":1}"#,
            r#"{"process":0,"type":"ok","f":"read","error":{"code":2}}"#,
            r#"{"process":-1,"type":"okay","f":"read"}"#,
            r#"{"process":"me","type":"ok","f":"read"}"#,
            r#"{"process":0,"type":"ok","f":"read","version":-1}"#,
            r#"{"process":0,"type":"ok","f":"read","final":1}"#,
            r#"{"process":0,"type":"ok","f":"read","node":7}"#,
            r#"{"process":0,"type":"ok","f":"read"} x"#,
            r#"{"process":0,"type":"ok","f":"read",}"#,
            r#"{"process":0,"type":"ok","f":"read""#,
            r#"{"process":0,"type":"ok","f":"read","value":[1,]}"#,
            "{\"process\":0,\"type\":\"ok\",\"f\":\"a\tb\"}",
            r#"{"type":"ok","f":"read"}"#,
            r#"{}"#,
            r#"[]"#,
        ];
        for line in uncommon {
            assert!(fast::parse(line, &mut Names::default()).is_none(), "{line}");
            let (a, b) = (parse_line(line), parse_line_slow(line));
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{line}");
        }
    }

    #[test]
    fn a_version_is_a_non_negative_integer_or_absent() {
        let with = |v: &str| {
            format!("{{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1,\"version\":{v}}}")
        };
        assert_eq!(parse_line(&with("0")).unwrap().version(), Some(0));
        assert_eq!(
            parse_line(&with("18446744073709551615")).unwrap().version(),
            Some(u64::MAX)
        );
        // Null is no version, and no version is written back as no field.
        let op = parse_line(&with("null")).unwrap();
        assert_eq!(op.version(), None);
        assert!(!to_line(&op).contains("version"), "{}", to_line(&op));
        for bad in ["-1", "1.5", "\"812\"", "[812]", "true", "1e3"] {
            let e = parse("v.jsonl", &format!("\n{}\n", with(bad))).unwrap_err();
            assert!(
                e.to_string().starts_with(
                    "v.jsonl:2: bad op: field `version`: expected a non-negative integer"
                ),
                "{bad}: {e}"
            );
        }
        // Beyond 64 bits: refused too, not rounded.
        let e = parse_line(&with("100000000000000000000")).unwrap_err();
        assert!(e.to_string().contains("field `version`"), "{e}");
    }

    #[test]
    fn ops_on_one_key_share_its_name_quick_or_not() {
        let h = parse(
            "k",
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k7\"}\n\
             {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":\"k7\",\"mine\":1}\n",
        )
        .unwrap();
        let (Some(Key::Str(a)), Some(Key::Str(b))) = (&h.ops()[0].key, &h.ops()[1].key) else {
            panic!("string keys: {:?}", h.ops());
        };
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "k7");
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
        assert!(
            e.starts_with("h.jsonl:2: bad op: field `type`: expected one of"),
            "{e}"
        );
        assert!(e.contains("found \"okay\""), "{e}");

        let e = parse(
            "h.jsonl",
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("h.jsonl:1: invalid JSON: EOF while parsing"),
            "{e}"
        );

        let e = parse(
            "h.jsonl",
            "{\"process\":\"me\",\"type\":\"invoke\",\"f\":\"read\"}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field `process`: expected an integer or \"nemesis\""),
            "{e}"
        );

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
    fn big_texts_parse_in_pieces_with_the_right_line_numbers() {
        let mut text = String::new();
        for p in 0..40_000 {
            text.push_str(&format!(
                "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}\n"
            ));
        }
        text.push_str("{\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n");
        assert!(text.len() > 4 << 20 || split_lines(&text, 4).len() == 4);
        let h = parse("big", &text).unwrap();
        assert_eq!(h.len(), 40_001);
        assert_eq!(h.line(40_000), 40_001);
        text.push_str("{\"process\":2,\"type\":\"bogus\",\"f\":\"write\"}\n");
        let e = parse("big", &text).unwrap_err();
        assert_eq!(e.line, Some(40_002));
        let pieces = split_lines("a\nb\nc\nd\n", 2);
        assert_eq!(pieces, vec!["a\nb\n", "c\nd\n"]);
    }

    #[test]
    fn streamed_blocks_read_in_pieces_number_lines_as_one_text() {
        // Blocks of 1.5 MB (the size hint is smaller than the text), each cut into
        // pieces on every core, with blank lines shifting the numbers.
        let mut text = String::new();
        for p in 0..100_000 {
            text.push_str(&format!(
                "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}\n"
            ));
            if p % 7_919 == 0 {
                text.push('\n');
            }
        }
        let hint = Some(1_500_000);
        let whole = parse("s", &text).unwrap();
        let streamed = read("s", text.as_bytes(), hint).unwrap();
        assert_eq!(streamed.len(), 100_000);
        assert!((0..whole.len()).all(|i| whole.line(i) == streamed.line(i)));
        assert_eq!(streamed.ops(), whole.ops());
        text.push_str("{\"process\":2,\"type\":\"bogus\",\"f\":\"write\"}\n");
        let e = read("s", text.as_bytes(), hint).unwrap_err();
        assert_eq!(e.line, parse("s", &text).unwrap_err().line);
        assert_eq!(e.line, Some(100_000 + 13 + 1));
    }

    #[test]
    fn a_later_block_parsed_in_pieces_keeps_the_file_s_line_numbers() {
        // What `read` does with a file bigger than its block: the second block,
        // here from line 1001, is big enough to be parsed in pieces. Its lines
        // used to restart at 1 (a lost add on line 143,814 was named on line 5).
        let text: String = (0..20_000)
            .map(|p| {
                format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{p}}}\n")
            })
            .collect();
        assert!(text.len() > 1 << 20, "big enough to be cut in pieces");
        let mut acc = Acc::with_capacity(0);
        acc.block("big", &text, 1001).unwrap();
        assert_eq!(acc.lines.len(), 20_000);
        assert_eq!(acc.lines.first(), Some(&1001));
        assert!(acc.lines.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn writer_writes_lines() {
        let mut w = Writer::new(Vec::new());
        w.write(&Op::new(
            Process::Client(1),
            OpType::Invoke,
            "read",
            Value::Null,
        ))
        .unwrap();
        let out = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(
            out,
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n"
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_rejected_not_rounded() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":100000000000000000000001}\n";
        let e = parse("big.jsonl", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "big.jsonl:1: field `value`: integer 100000000000000000000001 does not fit in 64 bits (column 50)"
        );
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[1,{\"a\":-100000000000000000000001}],\"mine\":2}";
        let e = parse_line(text).unwrap_err();
        assert!(
            e.to_string().starts_with("field `value`: integer -1000"),
            "{e}"
        );
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"mine\":123456789012345678901234,\"value\":\"123456789012345678901234\"}";
        let e = parse_line(text).unwrap_err();
        assert!(
            e.to_string().starts_with("field `mine`: integer 1234"),
            "{e}"
        );
        // 64 bits, signed or not, and long floats are fine.
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":[18446744073709551615,-9223372036854775808,1.00000000000000000000001e30]}";
        let op = parse_line(text).unwrap();
        assert_eq!(op.value.json()[0], json!(18446744073709551615u64));
        let e = parse_line(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"time\":100000000000000000000}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("field `time`"), "{e}");
    }

    #[test]
    fn byte_order_mark_crlf_and_deep_nesting() {
        let text = "\u{feff}{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\r\n\r\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\r\n";
        let h = parse("bom.jsonl", text).unwrap();
        assert_eq!(h.line(1), 3);
        let deep = format!(
            "{{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":{}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = parse("deep.jsonl", &deep).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("deep.jsonl:1: invalid JSON: nested deeper than 128 levels"),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let bytes = b"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"\xff\"}\n".to_vec();
        let e = crate::utf8("u.jsonl", bytes).unwrap_err();
        assert_eq!(
            e.to_string(),
            "u.jsonl:2: not UTF-8 text: invalid byte at column 31"
        );
    }
}
