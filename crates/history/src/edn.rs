//! Jepsen's EDN histories, as `history.edn` holds them: a vector or list of op maps,
//! or a bare sequence of op maps, with `;` comments.
//!
//! ```text
//! [{:process 0, :type :invoke, :f :write, :value 3}
//!  {:process 0, :type :ok,     :f :write, :value 3}
//!  {:process :nemesis, :type :info, :f :start, :value nil}]
//! ```
//!
//! Keywords become strings (`:write` is `"write"`), `nil` is null, vectors, lists and
//! sets become arrays, tagged values (`#inst "..."`, `#jepsen.history.Op{...}`) their
//! content. What Clojure prints is read: `#_` discards, `##NaN`, `##Inf` and `##-Inf`
//! (kept as those strings, JSON having no such numbers), `42N`, `1.5M`, characters.
//!
//! Fields are read as in JSON Lines. `:version` is the store's version of the value
//! ([`Op::version`](crate::Op::version)). `:index` is *not* a version: in Jepsen
//! (`jepsen.history`, whose `Op` record is `[index time type process f value]`) it
//! is the op's position in the history, 0, 1, 2, ... in file order, filled in by
//! Jepsen itself. It is kept as [`Op::index`](crate::Op::index) and never read as a
//! store version. Suites that record versions put them elsewhere: jepsen.etcd's
//! register workload writes `[version value]` pairs into `:value`, which stay
//! values here.
//!
//! The reader is our own, not a general EDN library: it reads in one pass, line by
//! line, so every error names the line of the form at fault; it nests at most
//! [`MAX_DEPTH`] levels, so hostile input cannot overflow the stack; and integers
//! beyond 64 bits are an error rather than silently rounded to floats, because a
//! checker comparing rounded values would judge writes of different values equal.

use crate::{ErrorKind, History, HistoryError, Key, Names, Op, OpType, Process};
use serde_json::{Map, Number, Value};
use std::collections::HashSet;
use std::fmt::Write as _;

/// How deep collections and tags may nest: as deep as `serde_json` lets JSON nest.
pub const MAX_DEPTH: usize = 128;

/// Parses a whole EDN history. `source` names the file in errors.
pub fn parse(source: &str, text: &str) -> Result<History, HistoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line, kind| HistoryError::new(source, Some(line), kind);
    let forms = Reader::new(text)
        .ops()
        .map_err(|(line, msg)| err(line, ErrorKind::Edn(msg)))?;
    let mut ops = Vec::with_capacity(forms.len());
    let mut lines = Vec::with_capacity(forms.len());
    let mut names = Names::default();
    for (line, form) in forms {
        ops.push(op_from_edn(&form, &mut names).map_err(|k| err(line, k))?);
        lines.push(line);
    }
    History::new(source, ops, Some(lines))
}

/// One EDN value as read, before it becomes an op.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    /// Integers from `i64::MIN` to `u64::MAX`; others are rejected when read.
    Int(i128),
    Float(f64),
    /// `1.5M`, kept as written (without the `M`) so that nothing is rounded.
    BigDec(String),
    Str(String),
    Char(char),
    /// Without the colon: `:jepsen/write` is `jepsen/write`.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value without its tags: `#jepsen.history.Op{...}` is the map.
    fn untagged(&self) -> &Edn {
        let mut v = self;
        while let Edn::Tagged(_, inner) = v {
            v = inner;
        }
        v
    }

    /// The value as EDN text, for messages.
    pub fn emit(&self) -> String {
        let mut s = String::new();
        self.emit_to(&mut s);
        s
    }

    fn emit_to(&self, s: &mut String) {
        let seq = |s: &mut String, open: &str, close: char, xs: &[Edn]| {
            s.push_str(open);
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                x.emit_to(s);
            }
            s.push(close);
        };
        match self {
            Edn::Nil => s.push_str("nil"),
            Edn::Bool(b) => {
                let _ = write!(s, "{b}");
            }
            Edn::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Edn::Float(f) => s.push_str(&float_text(*f)),
            Edn::BigDec(d) => {
                let _ = write!(s, "{d}M");
            }
            Edn::Str(t) => {
                let _ = write!(s, "{t:?}");
            }
            Edn::Char(c) => {
                let _ = write!(s, "\\{c}");
            }
            Edn::Keyword(k) => {
                let _ = write!(s, ":{k}");
            }
            Edn::Symbol(t) => s.push_str(t),
            Edn::List(xs) => seq(s, "(", ')', xs),
            Edn::Vector(xs) => seq(s, "[", ']', xs),
            Edn::Set(xs) => seq(s, "#{", '}', xs),
            Edn::Map(kvs) => {
                s.push('{');
                for (i, (k, v)) in kvs.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    k.emit_to(s);
                    s.push(' ');
                    v.emit_to(s);
                }
                s.push('}');
            }
            Edn::Tagged(tag, v) => {
                let _ = write!(s, "#{tag} ");
                v.emit_to(s);
            }
        }
    }

    /// The value as JSON: keywords and symbols become their names, sets and lists
    /// arrays, map keys strings, tagged values their content.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => i64::try_from(*i)
                .map(Value::from)
                .or_else(|_| u64::try_from(*i).map(Value::from))
                .unwrap_or_else(|_| Value::String(i.to_string())),
            Edn::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(float_text(*f))),
            Edn::BigDec(d) => Value::String(d.clone()),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::List(xs) | Edn::Vector(xs) | Edn::Set(xs) => {
                Value::Array(xs.iter().map(Edn::to_json).collect())
            }
            Edn::Map(kvs) => {
                let mut out = Map::new();
                for (k, v) in kvs {
                    let key = match k.to_json() {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.insert(key, v.to_json());
                }
                Value::Object(out)
            }
            Edn::Tagged(_, v) => v.to_json(),
        }
    }
}

/// A float as Clojure prints it: `##NaN`, `##Inf`, `##-Inf`, or the number.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "##NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "##Inf" } else { "##-Inf" }.into()
    } else {
        format!("{f:?}")
    }
}

/// The value as EDN text for a message, cut short when long.
fn shown(v: &Edn) -> String {
    let mut s = v.emit();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn op_from_edn(v: &Edn, names: &mut Names) -> Result<Op, ErrorKind> {
    let Edn::Map(m) = v.untagged() else {
        return Err(ErrorKind::Edn(format!(
            "expected an op map {{...}}, found {}",
            shown(v)
        )));
    };
    let bad = |field: &'static str, expected: &str, found: &Edn| ErrorKind::Field {
        field,
        message: format!("expected {expected}, found {}", shown(found)),
    };
    let mut op = Op::new(Process::Nemesis, OpType::Invoke, "", Value::Null);
    let (mut process, mut kind, mut f) = (None, None, None);
    for (k, val) in m {
        let name = match k.untagged() {
            Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k) => k.clone(),
            other => other.emit(),
        };
        let val = val.untagged();
        match name.as_str() {
            "process" => {
                process = Some(match val {
                    Edn::Int(p) => Process::Client(
                        i64::try_from(*p).map_err(|_| bad("process", "a 64-bit integer", val))?,
                    ),
                    Edn::Keyword(k) | Edn::Str(k) if k == "nemesis" => Process::Nemesis,
                    other => return Err(bad("process", "an integer or :nemesis", other)),
                })
            }
            "type" => {
                let t = match val {
                    Edn::Keyword(k) | Edn::Str(k) => OpType::parse(k),
                    _ => None,
                };
                kind =
                    Some(t.ok_or_else(|| bad("type", "one of :invoke, :ok, :fail, :info", val))?);
            }
            "f" => {
                f = Some(match val {
                    Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k) => k.clone(),
                    other => return Err(bad("f", "a keyword", other)),
                })
            }
            "value" => op.value = val.to_json().into(),
            "key" => {
                op.key = match val {
                    Edn::Nil => None,
                    other => match Key::from_json(&other.to_json()) {
                        Some(k) => Some(names.share(k)),
                        None => return Err(bad("key", "a string or a 64-bit integer", other)),
                    },
                }
            }
            "time" => match val {
                Edn::Int(t) => op.set_time(Some(
                    i64::try_from(*t).map_err(|_| bad("time", "a 64-bit integer", val))?,
                )),
                Edn::Nil => {}
                other => return Err(bad("time", "an integer", other)),
            },
            "index" => match val {
                Edn::Int(i) => op.set_index(Some(
                    u64::try_from(*i).map_err(|_| bad("index", "a non-negative integer", val))?,
                )),
                Edn::Nil => {}
                other => return Err(bad("index", "a non-negative integer", other)),
            },
            "version" => match val {
                Edn::Int(v) => op.set_version(Some(
                    u64::try_from(*v).map_err(|_| bad("version", "a non-negative integer", val))?,
                )),
                Edn::Nil => {}
                other => return Err(bad("version", "a non-negative integer", other)),
            },
            "node" => match val.to_json() {
                Value::Null => {}
                Value::String(s) => op.node = Some(names.get(&s)),
                _ => return Err(bad("node", "a string", val)),
            },
            "error" => op.error = Some(val.to_json()).filter(|e| !e.is_null()).map(Box::new),
            "final" => op.is_final = matches!(val, Edn::Bool(true)),
            _ => op.push_extra(name, val.to_json()),
        }
    }
    op.process = process.ok_or(ErrorKind::MissingField("process"))?;
    op.kind = kind.ok_or(ErrorKind::MissingField("type"))?;
    op.f = names.get(&f.ok_or(ErrorKind::MissingField("f"))?);
    Ok(op)
}

/// A syntax error: the line, and what is wrong in the user's words.
type ReadError = (usize, String);

/// A one-pass EDN reader over the whole text, counting lines as it goes.
struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    line: usize,
}

fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0c
            | b','
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'"'
            | b';'
    )
}

fn closer(open: u8) -> u8 {
    match open {
        b'[' => b']',
        b'(' => b')',
        _ => b'}',
    }
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            b: text.as_bytes(),
            i: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// The op forms, each with the line it starts on: the elements of the outer
    /// vector or list, or the top-level forms when there is none.
    fn ops(mut self) -> Result<Vec<(usize, Edn)>, ReadError> {
        self.skip(0)?;
        let mut ops = Vec::new();
        match self.peek() {
            Some(open @ (b'[' | b'(')) => {
                let open_line = self.line;
                self.i += 1;
                loop {
                    self.skip(1)?;
                    match self.peek() {
                        None => return Err(never_closed(open, open_line)),
                        Some(c) if c == closer(open) => {
                            self.i += 1;
                            break;
                        }
                        Some(c @ (b')' | b']' | b'}')) => {
                            return Err(self.mismatch(c, open, open_line))
                        }
                        Some(_) => {
                            let line = self.line;
                            ops.push((line, self.form(1)?));
                        }
                    }
                }
                self.skip(0)?;
                if self.peek().is_some() {
                    return Err((
                        self.line,
                        "unexpected data after the end of the history".into(),
                    ));
                }
            }
            _ => {
                while self.peek().is_some() {
                    let line = self.line;
                    ops.push((line, self.form(0)?));
                    self.skip(0)?;
                }
            }
        }
        Ok(ops)
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip(&mut self, depth: usize) -> Result<(), ReadError> {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' | 0x0c | b',' => self.i += 1,
                b';' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                b'#' if self.b.get(self.i + 1) == Some(&b'_') => {
                    let line = self.line;
                    if depth + 1 >= MAX_DEPTH {
                        return Err((line, format!("nested deeper than {MAX_DEPTH} levels")));
                    }
                    self.i += 2;
                    self.skip(depth + 1)?;
                    if self.peek().is_none() {
                        return Err((line, "`#_` discards nothing: the file ends".into()));
                    }
                    self.form(depth + 1)?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn mismatch(&self, c: u8, open: u8, open_line: usize) -> ReadError {
        (
            self.line,
            format!(
                "`{}` does not close `{}` opened on line {open_line}",
                c as char, open as char
            ),
        )
    }

    /// One form; the caller has skipped whitespace and checked there is one.
    fn form(&mut self, depth: usize) -> Result<Edn, ReadError> {
        if depth >= MAX_DEPTH {
            return Err((self.line, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let line = self.line;
        let Some(c) = self.peek() else {
            return Err((line, "the file ends where a value should be".into()));
        };
        match c {
            b'[' => {
                self.i += 1;
                Ok(Edn::Vector(self.seq(b'[', line, depth, None)?))
            }
            b'(' => {
                self.i += 1;
                Ok(Edn::List(self.seq(b'(', line, depth, None)?))
            }
            b'{' => {
                self.i += 1;
                self.map(line, depth)
            }
            b'"' => self.string(),
            b'\\' => self.character(),
            b'#' => self.dispatch(depth),
            b')' | b']' | b'}' => Err((line, format!("unmatched `{}`", c as char))),
            _ => {
                let token = self.token();
                atom(token).map_err(|m| (line, m))
            }
        }
    }

    /// The forms up to the bracket that closes `open`, which the caller consumed.
    fn seq(
        &mut self,
        open: u8,
        open_line: usize,
        depth: usize,
        mut lines: Option<&mut Vec<usize>>,
    ) -> Result<Vec<Edn>, ReadError> {
        let mut items = Vec::new();
        loop {
            self.skip(depth + 1)?;
            match self.peek() {
                None => return Err(never_closed(open, open_line)),
                Some(c) if c == closer(open) => {
                    self.i += 1;
                    return Ok(items);
                }
                Some(c @ (b')' | b']' | b'}')) => return Err(self.mismatch(c, open, open_line)),
                Some(_) => {
                    if let Some(l) = lines.as_deref_mut() {
                        l.push(self.line);
                    }
                    items.push(self.form(depth + 1)?);
                }
            }
        }
    }

    fn map(&mut self, open_line: usize, depth: usize) -> Result<Edn, ReadError> {
        let mut lines = Vec::new();
        let items = self.seq(b'{', open_line, depth, Some(&mut lines))?;
        if items.len() % 2 == 1 {
            let key = &items[items.len() - 1];
            return Err((
                lines[items.len() - 1],
                format!(
                    "the map opened on line {open_line} has a key without a value: {}",
                    shown(key)
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut kvs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter().enumerate();
        while let (Some((n, k)), Some((_, v))) = (items.next(), items.next()) {
            if !seen.insert(k.emit()) {
                return Err((
                    lines[n],
                    format!(
                        "the map opened on line {open_line} has the key {} twice",
                        shown(&k)
                    ),
                ));
            }
            kvs.push((k, v));
        }
        Ok(Edn::Map(kvs))
    }

    /// `#{...}`, `##NaN`, or a tag such as `#inst` or `#jepsen.history.Op`.
    fn dispatch(&mut self, depth: usize) -> Result<Edn, ReadError> {
        let line = self.line;
        self.i += 1;
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                Ok(Edn::Set(self.seq(b'{', line, depth, None)?))
            }
            Some(b'#') => {
                self.i += 1;
                match self.token() {
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    other => Err((
                        line,
                        format!("unknown symbolic value `##{other}` (known: ##NaN, ##Inf, ##-Inf)"),
                    )),
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let tag = self.token().to_string();
                if atom(&tag).is_err() {
                    return Err((line, format!("invalid tag `#{tag}`")));
                }
                self.skip(depth + 1)?;
                if self.peek().is_none() {
                    return Err((
                        line,
                        format!("the tag `#{tag}` has no value: the file ends"),
                    ));
                }
                let inner = self.form(depth + 1)?;
                Ok(Edn::Tagged(tag, Box::new(inner)))
            }
            _ => {
                let rest = self.token();
                Err((line, format!("unexpected `#{rest}`")))
            }
        }
    }

    /// The text up to the next delimiter (at least one character unless at one).
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            self.i += 1;
        }
        // Delimiters are ASCII, so `i` is a character boundary.
        &self.text[start..self.i]
    }

    fn string(&mut self) -> Result<Edn, ReadError> {
        let start_line = self.line;
        self.i += 1;
        let mut out = String::new();
        let mut run = self.i;
        loop {
            let Some(c) = self.peek() else {
                return Err((start_line, "unterminated string".into()));
            };
            match c {
                b'"' => {
                    out.push_str(&self.text[run..self.i]);
                    self.i += 1;
                    return Ok(Edn::Str(out));
                }
                b'\\' => {
                    out.push_str(&self.text[run..self.i]);
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err((start_line, "unterminated string".into()));
                    };
                    self.i += 1;
                    out.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'u' => {
                            let hex = self.text.get(self.i..self.i + 4).unwrap_or("");
                            let c = u32::from_str_radix(hex, 16)
                                .ok()
                                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    (self.line, "invalid `\\u` escape in a string".to_string())
                                })?;
                            self.i += 4;
                            c
                        }
                        _ => {
                            let shown = self.text[self.i - 1..].chars().next().unwrap_or('?');
                            return Err((
                                self.line,
                                format!("unknown escape `\\{shown}` in a string"),
                            ));
                        }
                    });
                    run = self.i;
                }
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
    }

    /// A character literal: `\a`, `\]`, `\newline`, `\u00e9`.
    fn character(&mut self) -> Result<Edn, ReadError> {
        let line = self.line;
        self.i += 1;
        let start = self.i;
        let Some(first) = self.text[start..].chars().next() else {
            return Err((line, "a `\\` ends the file: expected a character".into()));
        };
        self.i += first.len_utf8();
        if first.is_ascii_alphanumeric() {
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                self.i += 1;
            }
        }
        let name = &self.text[start..self.i];
        let c = match name {
            _ if name.len() == first.len_utf8() => Some(first),
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "formfeed" => Some('\u{c}'),
            "backspace" => Some('\u{8}'),
            _ if name.len() == 5 && name.starts_with('u') => u32::from_str_radix(&name[1..], 16)
                .ok()
                .and_then(char::from_u32),
            _ => None,
        };
        c.map(Edn::Char)
            .ok_or_else(|| (line, format!("unknown character `\\{name}`")))
    }
}

fn never_closed(open: u8, line: usize) -> ReadError {
    let open = if open == b'{' {
        "{"
    } else if open == b'[' {
        "["
    } else {
        "("
    };
    (line, format!("`{open}` opened here is never closed"))
}

/// A token that is not a collection, string or character: nil, a boolean, a
/// number, a keyword or a symbol.
fn atom(t: &str) -> Result<Edn, String> {
    match t {
        "nil" => return Ok(Edn::Nil),
        "true" => return Ok(Edn::Bool(true)),
        "false" => return Ok(Edn::Bool(false)),
        _ => {}
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return number(t);
    }
    let symbol_char = |c: char| c.is_alphanumeric() || ".*+!-_?$%&=<>/'#:".contains(c);
    if let Some(name) = t.strip_prefix(':') {
        if name.is_empty() || name.starts_with(':') || !name.chars().all(symbol_char) {
            return Err(format!("invalid keyword `{t}`"));
        }
        return Ok(Edn::Keyword(name.to_string()));
    }
    if t.is_empty() || !t.chars().all(symbol_char) {
        return Err(format!("invalid symbol `{t}`"));
    }
    Ok(Edn::Symbol(t.to_string()))
}

fn number(t: &str) -> Result<Edn, String> {
    let invalid = || format!("invalid number `{t}`");
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if let Some(digits) = t.strip_suffix('M') {
        let ok = digits.parse::<f64>().is_ok()
            && unsigned
                .trim_end_matches('M')
                .bytes()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
        return if ok {
            Ok(Edn::BigDec(digits.to_string()))
        } else {
            Err(invalid())
        };
    }
    if unsigned.contains(['.', 'e', 'E']) {
        let ok = unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b));
        return match t.parse::<f64>() {
            Ok(f) if ok => Ok(Edn::Float(f)),
            _ => Err(invalid()),
        };
    }
    if unsigned.contains('/') {
        return Err(format!("ratios such as `{t}` are not supported"));
    }
    let int = t.strip_suffix('N').unwrap_or(t);
    let digits = int.strip_prefix(['+', '-']).unwrap_or(int);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!(
            "invalid number `{t}`: a leading zero (Clojure would read it as octal)"
        ));
    }
    let fits = int
        .parse::<i128>()
        .ok()
        .filter(|&i| i >= i128::from(i64::MIN) && i <= i128::from(u64::MAX));
    fits.map(Edn::Int)
        .ok_or_else(|| format!("integer {t} does not fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_vector_of_ops_with_comments_and_nemesis() {
        let text = "; a comment [ with a bracket\n[{:process 0, :type :invoke, :f :write, :value 3}\n {:process 0, :type :ok, :f :write, :value 3, :note \"]\"}\n {:process :nemesis, :type :info, :f :start, :value nil}]\n";
        let h = parse("h.edn", text).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.line(1), 3);
        assert_eq!(&*h.ops()[0].f, "write");
        assert_eq!(h.ops()[1].extra(), [("note".to_string(), json!("]"))]);
        assert!(h.ops()[2].is_nemesis());
    }

    #[test]
    fn reads_a_list_and_a_bare_sequence() {
        let list = "({:process 0, :type :invoke, :f :cas, :value [1 2]}\n{:process 0, :type :fail, :f :cas, :value [1 2]})";
        let h = parse("l.edn", list).unwrap();
        assert_eq!(h.ops()[1].value, json!([1, 2]));
        let bare = "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value #{1 2}}\n";
        let h = parse("b.edn", bare).unwrap();
        assert_eq!(h.ops()[1].value, json!([1, 2]));
        assert_eq!(h.line(1), 2);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse(
            "x.edn",
            "[{:process 0, :type :invoke, :f :read}\n {:process 0 :type :ok, :f :read]",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = parse("x.edn", "[{:process 0, :type :invoke, :f :read}\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.to_string().contains("never closed"), "{e}");
        let e = parse("x.edn", "[{:process 0, :type :invoke, :f :read}\n 42]").unwrap_err();
        assert!(
            e.to_string()
                .contains("x.edn:2: EDN syntax error: expected an op map"),
            "{e}"
        );
    }

    #[test]
    fn field_errors_name_the_line() {
        let e = parse(
            "x.edn",
            "[{:process 0, :type :invoke, :f :read}\n{:process 0, :type :done, :f :read}]",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.edn:2: field `type`: expected one of :invoke, :ok, :fail, :info, found :done"
        );
        let e = parse("x.edn", "[{:process \"a\", :type :invoke, :f :read}]").unwrap_err();
        assert!(e.to_string().contains("field `process`"), "{e}");
    }

    #[test]
    fn jepsen_independent_tuples_become_keys() {
        let text = "[{:process 0, :type :invoke, :f :write, :value [7 3]}\n\
                    {:process 0, :type :ok, :f :write, :value [7 3]}\n\
                    {:process 1, :type :invoke, :f :read, :value [:k2 nil]}\n\
                    {:process 1, :type :ok, :f :read, :value [:k2 4]}\n\
                    {:process :nemesis, :type :info, :f :start, :value nil}]";
        let h = parse("i.edn", text).unwrap().into_independent().unwrap();
        assert_eq!(h.ops()[1].key, Some(Key::Int(7)));
        assert_eq!(h.ops()[1].value, json!(3));
        assert_eq!(h.ops()[3].key, Some(Key::Str("k2".into())));
        assert_eq!(h.ops()[3].value, json!(4));
        assert_eq!(h.ops()[4].key, None, "nemesis ops keep their value");
    }

    #[test]
    fn versions_are_read_and_checked() {
        let text = "[{:process 0, :type :invoke, :f :write, :value 3, :index 0}\n\
                    {:process 0, :type :ok, :f :write, :value 3, :index 1, :version 812}\n\
                    {:process 0, :type :invoke, :f :read, :value nil, :version nil}]";
        let h = parse("v.edn", text).unwrap();
        assert_eq!(h.ops()[1].version(), Some(812));
        assert_eq!(h.ops()[1].index(), Some(1));
        assert_eq!(h.ops()[2].version(), None);
        for (bad, found) in [("-1", "-1"), ("\"812\"", "\"812\""), ("1.5", "1.5")] {
            let text = format!("[{{:process 0, :type :invoke, :f :read}}\n{{:process 0, :type :ok, :f :read, :version {bad}}}]");
            let e = parse("v.edn", &text).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("v.edn:2: field `version`: expected a non-negative integer, found {found}")
            );
        }
    }

    #[test]
    fn empty_file_is_an_empty_history() {
        assert!(parse("x.edn", "; nothing\n").unwrap().ops().is_empty());
        assert!(parse("x.edn", "[]").unwrap().ops().is_empty());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for (open, close) in [
            ("[", "]"),
            ("(", ")"),
            ("{:a ", "}"),
            ("#{", "}"),
            ("#t ", ""),
        ] {
            let text = format!(
                "[{{:process 0, :type :invoke, :f :write,\n :value {}1{}}}]",
                open.repeat(10_000),
                close.repeat(10_000)
            );
            let e = parse("deep.edn", &text).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("deep.edn:2: EDN syntax error: nested deeper than {MAX_DEPTH} levels"),
                "{open}"
            );
        }
        let text = format!("{}[]", "#_ ".repeat(10_000));
        assert!(parse("d.edn", &text).is_err());
        // Nesting within the limit reads.
        let ok = format!(
            "[{{:process 0, :type :invoke, :f :write, :value {}1{}}}]",
            "[".repeat(100),
            "]".repeat(100)
        );
        parse("ok.edn", &ok).unwrap();
    }

    #[test]
    fn malformed_maps_are_explained_in_words() {
        let e = parse("m.edn", "[{:process 0, :type :invoke,\n :f}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.edn:2: EDN syntax error: the map opened on line 1 has a key without a value: :f"
        );
        let e = parse(
            "m.edn",
            "[{:process 0, :type :invoke, :f :read,\n :f :write}]",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.edn:2: EDN syntax error: the map opened on line 1 has the key :f twice"
        );
        let e = parse("m.edn", "[{:process 0, :type :invoke, :f a@b}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.edn:1: EDN syntax error: invalid symbol `a@b`"
        );
        let e = parse(
            "m.edn",
            "[{:process 0, :type :invoke, :f :read, :value 0x1F}]",
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid number `0x1F`"), "{e}");
    }

    #[test]
    fn integers_beyond_64_bits_are_rejected_not_rounded() {
        let e = parse(
            "big.edn",
            "[{:process 0, :type :invoke, :f :write,\n :value 100000000000000000000001}]",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "big.edn:2: EDN syntax error: integer 100000000000000000000001 does not fit in 64 bits"
        );
        let e = parse(
            "big.edn",
            "[{:process 0, :type :invoke, :f :write, :value -9223372036854775809N}]",
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not fit in 64 bits"), "{e}");
        let h = parse(
            "big.edn",
            "[{:process 0, :type :invoke, :f :write, :value 18446744073709551615N}]",
        )
        .unwrap();
        assert_eq!(h.ops()[0].value, json!(18446744073709551615u64));
        let e = parse(
            "big.edn",
            "[{:process 9223372036854775808, :type :invoke, :f :read}]",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("field `process`: expected a 64-bit integer"),
            "{e}"
        );
    }

    #[test]
    fn reads_what_clojure_prints() {
        let text = "\u{feff}[#jepsen.history.Op{:index 0, :time 1, :type :invoke, :process 0, :f :write, :value ##NaN}\r\n\
                    #_{:process 9, :type :ok, :f :write}\r\n\
                    {:process 0, :type :ok, :f :write, :value [##Inf ##-Inf 1.5M 2N \\a \\newline #inst \"2020-01-01\"], #_#_ :x 1}]";
        let h = parse("c.edn", text).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.line(1), 3);
        assert_eq!(h.ops()[0].value, json!("##NaN"));
        assert_eq!(h.ops()[0].index(), Some(0));
        assert_eq!(
            h.ops()[0].version(),
            None,
            "`:index` is a position, not a version"
        );
        assert_eq!(
            h.ops()[1].value,
            json!(["##Inf", "##-Inf", "1.5", 2, "a", "\n", "2020-01-01"])
        );
        let e = parse(
            "c.edn",
            "[{:process 0, :type :invoke, :f :read, :value ##Foo}]",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown symbolic value `##Foo`"),
            "{e}"
        );
    }
}
