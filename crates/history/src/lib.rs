//! The history every splitbrain crate shares.
//!
//! A history is what a test observed, in real-time order: each client call appears
//! twice, once when a process *invokes* it and once when it *completes* (`ok`, `fail`
//! or `info`). The semantics are Jepsen's:
//!
//! ```text
//!   p0  |--write 1--| ok          the write took effect
//!   p1      |--cas [1,2]--| fail  the cas did not take effect
//!   p2        |--write 3-- ? info  may or may not have taken effect, at any
//!                                  time after its invocation; p2 never invokes again
//! ```
//!
//! File order is authoritative: an op that completes on an earlier line than another
//! op's invocation happened before it. `time` is kept for display only.
//!
//! Two formats are read: JSON Lines ([`jsonl`], our own, one op per line) and Jepsen's
//! EDN ([`edn`]). Both produce a [`History`], whose constructor pairs every
//! invocation with its completion and rejects malformed histories with the file and
//! line at fault.

#![forbid(unsafe_code)]

pub mod edn;
pub mod jsonl;
mod value;

pub use value::OpValue;

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Who performed an op: a client process (an integer, as in Jepsen) or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(i64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The `type` of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    Invoke,
    /// Completed and took effect.
    Ok,
    /// Completed and definitely did not take effect.
    Fail,
    /// Indeterminate: may or may not have taken effect.
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key an op acts on, when a history covers many independent keys. A string
/// key is a [`Name`]: the readers give every op on the same key one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Str(Name),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(k) => write!(f, "{k}"),
            Key::Str(k) => f.write_str(k),
        }
    }
}

impl Key {
    /// The key as JSON, as it is written in a history.
    pub fn to_json(&self) -> Value {
        match self {
            Key::Int(k) => Value::from(*k),
            Key::Str(k) => Value::from(k.as_str()),
        }
    }

    /// Reads a key from JSON: a string or an integer.
    pub fn from_json(v: &Value) -> Option<Key> {
        match v {
            Value::String(s) => Some(Key::Str(s.as_str().into())),
            Value::Number(n) => n.as_i64().map(Key::Int),
            _ => None,
        }
    }
}

/// One event of a history: an invocation or a completion.
///
/// An op's size is what a million-op history costs (two million ops): the
/// optional integers (`time`, `index`, `version`) are packed behind accessors, and
/// what is rarely there (`error`, other fields) is boxed.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub process: Process,
    /// For a read's invocation, null; for its `ok`, the value read; for `cas`,
    /// `[expected, new]`. Any JSON, held in 16 bytes when it is null, an integer
    /// or a pair of small ones (see [`OpValue`]).
    pub value: OpValue,
    /// The function: `read`, `write`, `cas`, `add`, `acquire`, ... Shared: a
    /// history has a handful of distinct names, and the readers give every op with
    /// the same name the same allocation.
    pub f: Name,
    pub key: Option<Key>,
    /// The node the op was sent to. Shared like `f`.
    pub node: Option<Name>,
    /// Why an op failed or is indeterminate. Boxed: most ops have none.
    pub error: Option<Box<Value>>,
    /// Any other fields, kept in order so that a history round-trips. A box
    /// around the list on purpose: 8 bytes on every op instead of 24.
    #[allow(clippy::box_collection)]
    extra: Option<Box<Vec<(String, Value)>>>,
    /// See [`Op::time`], [`Op::index`], [`Op::version`]; each is 0 when absent, so
    /// that equal ops compare equal.
    time: i64,
    index: u64,
    version: u64,
    /// Which of `time`, `index`, `version` are present.
    has: u8,
    /// Written as `type`.
    pub kind: OpType,
    /// A final read, taken after faults healed (`"final": true`).
    pub is_final: bool,
}

const HAS_TIME: u8 = 1;
const HAS_INDEX: u8 = 2;
const HAS_VERSION: u8 = 4;

impl Op {
    /// A bare op, for building histories in code and tests.
    pub fn new(
        process: Process,
        kind: OpType,
        f: impl Into<Name>,
        value: impl Into<OpValue>,
    ) -> Op {
        Op {
            process,
            value: value.into(),
            f: f.into(),
            key: None,
            node: None,
            error: None,
            extra: None,
            time: 0,
            index: 0,
            version: 0,
            has: 0,
            kind,
            is_final: false,
        }
    }

    pub fn with_key(mut self, key: Key) -> Op {
        self.key = Some(key);
        self
    }

    pub fn is_nemesis(&self) -> bool {
        self.process == Process::Nemesis
    }

    fn get<T: Copy>(&self, bit: u8, v: T) -> Option<T> {
        (self.has & bit != 0).then_some(v)
    }

    fn mark(&mut self, bit: u8, present: bool) {
        if present {
            self.has |= bit;
        } else {
            self.has &= !bit;
        }
    }

    /// Nanoseconds since the test began. Informative only: file order decides.
    pub fn time(&self) -> Option<i64> {
        self.get(HAS_TIME, self.time)
    }

    pub fn set_time(&mut self, time: Option<i64>) {
        self.mark(HAS_TIME, time.is_some());
        self.time = time.unwrap_or(0);
    }

    /// The op's position in the history (0, 1, 2, ...), as Jepsen's `:index`: the
    /// recorder's numbering, not anything the store said.
    pub fn index(&self) -> Option<u64> {
        self.get(HAS_INDEX, self.index)
    }

    pub fn set_index(&mut self, index: Option<u64>) {
        self.mark(HAS_INDEX, index.is_some());
        self.index = index.unwrap_or(0);
    }

    /// The store's own version of the value: for an `ok` read, the version of the
    /// value it returned; for an `ok` write, cas or add, the version it created
    /// (etcd v3: `mod_revision` of a read, `header.revision` of a put or of a txn
    /// that succeeded; etcd v2: `modifiedIndex`). Per key, a larger version is later
    /// in the store's own order. `None`: the client did not learn one, or the
    /// history does not say (invocations, `fail`, `info`, foreign histories).
    pub fn version(&self) -> Option<u64> {
        self.get(HAS_VERSION, self.version)
    }

    pub fn set_version(&mut self, version: Option<u64>) {
        self.mark(HAS_VERSION, version.is_some());
        self.version = version.unwrap_or(0);
    }

    /// Fields no reader knows, in the order they came, so that a history
    /// round-trips.
    pub fn extra(&self) -> &[(String, Value)] {
        self.extra.as_deref().map_or(&[], Vec::as_slice)
    }

    pub fn push_extra(&mut self, name: String, value: Value) {
        self.extra.get_or_insert_default().push((name, value));
    }
}

impl fmt::Display for Op {
    /// A compact one-line form, e.g. `p3 ok cas [1,2] key=k7 version=812`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.process {
            Process::Client(p) => write!(f, "p{p}")?,
            Process::Nemesis => f.write_str("nemesis")?,
        }
        write!(f, " {} {} {}", self.kind, self.f, self.value)?;
        if let Some(k) = &self.key {
            write!(f, " key={k}")?;
        }
        if let Some(v) = self.version() {
            write!(f, " version={v}")?;
        }
        Ok(())
    }
}

/// A name many ops share (`f`, `node`): a history has a handful of distinct ones
/// and millions of ops, so each op holds a thin pointer (8 bytes; an `Arc<str>`
/// is 16) to one shared allocation. Reads as a `&str`.
#[derive(Clone)]
pub struct Name(Arc<Box<str>>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        **self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        **self.0 == **other
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::new(s.into()))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::new(s.into_boxed_str()))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::from(s.as_str())
    }
}

impl From<Arc<str>> for Name {
    fn from(s: Arc<str>) -> Name {
        Name::from(&*s)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// Gives equal names (`f`, `node`) and equal string keys one shared allocation:
/// a history has a handful of distinct names, up to thousands of keys, and
/// millions of ops.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<Name>,
    keys: HashSet<Name>,
}

impl Names {
    pub(crate) fn get(&mut self, name: &str) -> Name {
        if let Some(n) = self.names.iter().find(|n| ***n == *name) {
            return n.clone();
        }
        let n = Name::from(name);
        // A history that makes up a name per op is not worth a linear search.
        if self.names.len() < 64 {
            self.names.push(n.clone());
        }
        n
    }

    /// A string key, shared with every other op on it.
    pub(crate) fn key(&mut self, key: &str) -> Key {
        if let Some(k) = self.keys.get(key) {
            return Key::Str(k.clone());
        }
        let k = Name::from(key);
        // Nor is one that makes up a key per op worth a set that only grows.
        if self.keys.len() < 1 << 16 {
            self.keys.insert(k.clone());
        }
        Key::Str(k)
    }

    /// `key`, a string key shared with every other op on it.
    pub(crate) fn share(&mut self, key: Key) -> Key {
        match key {
            Key::Str(s) => self.key(&s),
            k => k,
        }
    }
}

/// The open invocation of each process: (op index, position in the pairs). Process
/// ids are small integers in every history we know, so they index a list; any
/// other id (negative, or in the millions) goes to a map.
#[derive(Default)]
struct Open {
    small: Vec<Option<(usize, usize)>>,
    other: HashMap<i64, (usize, usize)>,
}

impl Open {
    const SMALL: i64 = 1 << 16;

    fn slot(&mut self, p: i64) -> Option<&mut Option<(usize, usize)>> {
        let i = usize::try_from(p).ok().filter(|_| p < Open::SMALL)?;
        if i >= self.small.len() {
            self.small.resize(i + 1, None);
        }
        Some(&mut self.small[i])
    }

    fn get(&mut self, p: i64) -> Option<(usize, usize)> {
        match self.slot(p) {
            Some(s) => *s,
            None => self.other.get(&p).copied(),
        }
    }

    fn insert(&mut self, p: i64, open: (usize, usize)) {
        match self.slot(p) {
            Some(s) => *s = Some(open),
            None => {
                self.other.insert(p, open);
            }
        }
    }

    fn remove(&mut self, p: i64) -> Option<(usize, usize)> {
        match self.slot(p) {
            Some(s) => s.take(),
            None => self.other.remove(&p),
        }
    }
}

/// An invocation and its completion (`None`: the history ended before it completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub invoke: usize,
    pub completion: Option<usize>,
}

/// A parsed, validated history: ops in file order, the line each came from, and
/// each client invocation paired with its completion.
#[derive(Debug, Clone)]
pub struct History {
    source: String,
    ops: Vec<Op>,
    /// `None` when op `i` is on line `i + 1`, as in a JSON Lines file without
    /// blank lines: then the numbers cost nothing.
    lines: Option<Vec<u32>>,
    pairs: Vec<Pair>,
}

/// Line numbers as stored: a file of more than four billion lines cannot be held
/// in memory as ops anyway, so a larger number is shown as the largest `u32`
/// rather than failing.
fn compact_lines(lines: Vec<usize>) -> Option<Vec<u32>> {
    if lines.iter().enumerate().all(|(i, &l)| l == i + 1) {
        return None;
    }
    Some(
        lines
            .into_iter()
            .map(|l| u32::try_from(l).unwrap_or(u32::MAX))
            .collect(),
    )
}

impl History {
    /// Builds a history from ops in real-time order. `lines[i]` is the 1-based source
    /// line of `ops[i]` (used in error messages; pass `None` to number ops from 1).
    ///
    /// Fails on a completion without an invocation, a second invocation while one is
    /// open, or a completion whose `f` differs from its invocation's. A history with
    /// no ops, or none from a client, is a history: it has no pairs and every level
    /// holds for it vacuously, as Knossos and Porcupine judge it.
    pub fn new(
        source: impl Into<String>,
        ops: Vec<Op>,
        lines: Option<Vec<usize>>,
    ) -> Result<History, HistoryError> {
        let lines = lines.and_then(|l| {
            assert_eq!(l.len(), ops.len(), "one line number per op");
            compact_lines(l)
        });
        History::with_lines(source.into(), ops, lines)
    }

    /// [`History::new`] with lines as stored.
    pub(crate) fn with_lines(
        source: String,
        ops: Vec<Op>,
        lines: Option<Vec<u32>>,
    ) -> Result<History, HistoryError> {
        let line = |i: usize| lines.as_ref().map_or(i + 1, |l| l[i] as usize);
        // Open invocations: process -> (op index, position in `pairs`).
        let mut open = Open::default();
        let mut pairs = Vec::with_capacity(ops.len() / 2 + 1);
        for (i, op) in ops.iter().enumerate() {
            let Process::Client(p) = op.process else {
                continue;
            };
            let err = |kind| HistoryError::new(&source, Some(line(i)), kind);
            match op.kind {
                OpType::Invoke => {
                    if let Some((prev, _)) = open.get(p) {
                        return Err(err(ErrorKind::DoubleInvoke {
                            process: p,
                            open_line: line(prev),
                        }));
                    }
                    open.insert(p, (i, pairs.len()));
                    pairs.push(Pair {
                        invoke: i,
                        completion: None,
                    });
                }
                _ => {
                    let Some((inv, pair)) = open.remove(p) else {
                        return Err(err(ErrorKind::CompletionWithoutInvocation { process: p }));
                    };
                    if ops[inv].f != op.f {
                        return Err(err(ErrorKind::MismatchedCompletion {
                            process: p,
                            invoked: ops[inv].f.to_string(),
                            completed: op.f.to_string(),
                            invoke_line: line(inv),
                        }));
                    }
                    pairs[pair].completion = Some(i);
                }
            }
        }
        Ok(History {
            source,
            ops,
            lines,
            pairs,
        })
    }

    /// Reads a file: `.edn` as Jepsen EDN, anything else as JSON Lines, `-` as JSON
    /// Lines from standard input.
    pub fn read_path(path: &Path) -> Result<History, HistoryError> {
        let name = path.display().to_string();
        let io = |e| HistoryError::new(&name, None, ErrorKind::Io(e));
        if name == "-" {
            return jsonl::read(&name, std::io::stdin().lock(), None);
        }
        if path.extension().is_some_and(|e| e == "edn") {
            let bytes = std::fs::read(path).map_err(io)?;
            let text = utf8(&name, bytes)?;
            return edn::parse(&name, &text);
        }
        // JSON Lines are read a block at a time: the text is never held whole.
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().ok().map(|m| m.len());
        jsonl::read(&name, file, size)
    }

    /// The file (or `-`) this history came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The 1-based source line of op `i`.
    pub fn line(&self, i: usize) -> usize {
        match &self.lines {
            None => i + 1,
            Some(l) => l[i] as usize,
        }
    }

    /// Client invocations with their completions, in invocation order. Nemesis ops
    /// are not paired.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// The number of distinct client processes.
    pub fn process_count(&self) -> usize {
        let mut ps: Vec<i64> = self
            .pairs
            .iter()
            .filter_map(|p| match self.ops[p.invoke].process {
                Process::Client(c) => Some(c),
                Process::Nemesis => None,
            })
            .collect();
        ps.sort_unstable();
        ps.dedup();
        ps.len()
    }

    /// Reinterprets values as jepsen.independent `[key value]` tuples: every client op
    /// whose value is a two-element array gets that key and that value. A client op
    /// with any other value is an error naming its line.
    pub fn into_independent(mut self) -> Result<History, HistoryError> {
        let lines = &self.lines;
        let line = |i: usize| lines.as_ref().map_or(i + 1, |l| l[i] as usize);
        let mut names = Names::default();
        for (i, op) in self.ops.iter_mut().enumerate() {
            if op.is_nemesis() {
                continue;
            }
            let bad = |found: &Value| {
                HistoryError::new(
                    &self.source,
                    Some(line(i)),
                    ErrorKind::Field {
                        field: "value",
                        message: format!(
                            "--independent expects a [key value] tuple, found {found}"
                        ),
                    },
                )
            };
            let (key, value) = match std::mem::take(&mut op.value).into_json() {
                Value::Array(mut t) if t.len() == 2 => match Key::from_json(&t[0]) {
                    Some(k) => (names.share(k), t.pop().unwrap_or(Value::Null)),
                    None => return Err(bad(&Value::Array(t))),
                },
                other => return Err(bad(&other)),
            };
            op.key = Some(key);
            op.value = OpValue::from(value);
        }
        Ok(self)
    }
}

/// The bytes as text, or an error naming the line and column of the first byte
/// that is not UTF-8.
pub fn utf8(source: &str, bytes: Vec<u8>) -> Result<String, HistoryError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        not_utf8(source, &e.as_bytes()[..at], 1)
    })
}

/// The error for a byte that is not UTF-8 right after `before`, whose first line is
/// `first_line` of the file.
pub(crate) fn not_utf8(source: &str, before: &[u8], first_line: usize) -> HistoryError {
    let line = first_line + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    HistoryError::new(
        source,
        Some(line),
        ErrorKind::Utf8 {
            column: before.len() - line_start + 1,
        },
    )
}

/// A history that could not be read, with the file and line at fault.
#[derive(Debug, thiserror::Error)]
pub struct HistoryError {
    pub file: String,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub kind: ErrorKind,
}

impl HistoryError {
    pub fn new(file: &str, line: Option<usize>, kind: ErrorKind) -> HistoryError {
        HistoryError {
            file: file.to_string(),
            line,
            kind,
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.kind),
            None => write!(f, "{}: {}", self.file, self.kind),
        }
    }
}

/// What is wrong with a history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("bad op: {0}")]
    BadOp(String),
    #[error("EDN syntax error: {0}")]
    Edn(String),
    #[error("field `{field}`: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("field `{field}`: integer {number} does not fit in 64 bits (column {column})")]
    WideInteger {
        field: String,
        number: String,
        column: usize,
    },
    #[error("not UTF-8 text: invalid byte at column {column}")]
    Utf8 { column: usize },
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("process {process} completes an op it never invoked")]
    CompletionWithoutInvocation { process: i64 },
    #[error(
        "process {process} invokes again while its invocation on line {open_line} is still open"
    )]
    DoubleInvoke { process: i64, open_line: usize },
    #[error(
        "process {process} completes `{completed}` but invoked `{invoked}` on line {invoke_line}"
    )]
    MismatchedCompletion {
        process: i64,
        invoked: String,
        completed: String,
        invoke_line: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(p: i64, t: OpType, f: &str, v: Value) -> Op {
        Op::new(Process::Client(p), t, f, v)
    }

    #[test]
    fn pairs_invocations_with_completions_per_process() {
        let h = History::new(
            "t",
            vec![
                op(0, OpType::Invoke, "write", json!(1)),
                op(1, OpType::Invoke, "read", Value::Null),
                op(0, OpType::Ok, "write", json!(1)),
                Op::new(Process::Nemesis, OpType::Info, "start", Value::Null),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            h.pairs(),
            &[
                Pair {
                    invoke: 0,
                    completion: Some(2)
                },
                Pair {
                    invoke: 1,
                    completion: None
                }
            ]
        );
        assert_eq!(h.process_count(), 2);
    }

    #[test]
    fn any_process_id_pairs_small_or_not() {
        let ids = [3, -5, 70_000, i64::MAX, 0];
        let mut ops: Vec<Op> = ids
            .iter()
            .map(|&p| op(p, OpType::Invoke, "read", Value::Null))
            .collect();
        ops.extend(
            ids.iter()
                .rev()
                .map(|&p| op(p, OpType::Ok, "read", json!(1))),
        );
        let h = History::new("t", ops, None).unwrap();
        for (i, pair) in h.pairs().iter().enumerate() {
            assert_eq!(pair.completion, Some(9 - i), "{pair:?}");
        }
        let e = History::new(
            "t",
            vec![
                op(-5, OpType::Invoke, "read", Value::Null),
                op(-5, OpType::Invoke, "read", Value::Null),
            ],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 1 is still open"), "{e}");
    }

    #[test]
    fn completion_without_invocation_names_the_line() {
        let e =
            History::new("h.jsonl", vec![op(3, OpType::Ok, "read", json!(1))], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "h.jsonl:1: process 3 completes an op it never invoked"
        );
    }

    #[test]
    fn double_invocation_names_both_lines() {
        let e = History::new(
            "h",
            vec![
                op(3, OpType::Invoke, "read", Value::Null),
                op(3, OpType::Invoke, "read", Value::Null),
            ],
            Some(vec![4, 9]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "h:9: process 3 invokes again while its invocation on line 4 is still open"
        );
    }

    #[test]
    fn independent_tuples_become_keys() {
        let h = History::new(
            "h",
            vec![
                op(0, OpType::Invoke, "read", json!([7, null])),
                op(0, OpType::Ok, "read", json!([7, 3])),
            ],
            None,
        )
        .unwrap()
        .into_independent()
        .unwrap();
        assert_eq!(h.ops()[1].key, Some(Key::Int(7)));
        assert_eq!(h.ops()[1].value, json!(3));
        let e = History::new("h", vec![op(0, OpType::Invoke, "read", json!(5))], None)
            .unwrap()
            .into_independent()
            .unwrap_err();
        assert!(e.to_string().contains("h:1: field `value`"), "{e}");
    }

    #[test]
    fn names_are_thin_and_read_as_text() {
        assert_eq!(std::mem::size_of::<Option<Name>>(), 8);
        let (a, b) = (Name::from("read"), Name::from(String::from("read")));
        assert_eq!(a, b);
        assert_eq!(a, "read");
        assert_ne!(a, Name::from("write"));
        assert_eq!(format!("{a:?} {a}"), "\"read\" read");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"read\"");
    }

    #[test]
    fn empty_history_has_no_pairs() {
        let h = History::new("e.jsonl", vec![], None).unwrap();
        assert!(h.ops().is_empty() && h.pairs().is_empty());
    }
}
