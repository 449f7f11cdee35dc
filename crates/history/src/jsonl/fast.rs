//! The common line, read without serde: an object of the known fields whose
//! values are integers, short strings without escapes, `null`, booleans and
//! arrays of those, as splitbrain's recorder writes them:
//!
//! ```text
//! {"process":3,"type":"ok","f":"cas","value":[1,2],"key":7,"time":1299000}
//! ```
//!
//! Anything else (an escape, a float, an object, a field of the user's own, an
//! integer of 19 digits or more, a line that is not valid JSON at all) gives
//! `None`, and the line is read again by the serde visitor, which also writes
//! every error message. So this path only has to agree with that one on the
//! lines it accepts: the unit tests and the `jsonl` fuzz target compare the two
//! on every line this path reads.

use crate::{Key, Names, Op, OpType, OpValue, Process};
use serde_json::Value;

/// Arrays nested deeper than this go the slow way.
const MAX_DEPTH: usize = 4;

/// The op on `line`, or `None` when the line is not of the common shape.
pub(crate) fn parse(line: &str, names: &mut Names) -> Option<Op> {
    let mut r = Reader {
        s: line,
        b: line.as_bytes(),
        i: 0,
    };
    r.ws();
    r.eat(b'{')?;
    let (mut process, mut kind, mut f) = (None, None, None);
    let mut value = OpValue::NULL;
    let (mut key, mut time, mut index, mut version) = (None, None, None, None);
    let (mut node, mut error, mut is_final) = (None, None, false);
    r.ws();
    if r.peek()? != b'}' {
        loop {
            r.ws();
            let name = r.string()?;
            r.ws();
            r.eat(b':')?;
            r.ws();
            match name {
                "process" => {
                    process = Some(match r.peek()? {
                        b'"' => match r.string()? {
                            "nemesis" => Process::Nemesis,
                            _ => return None,
                        },
                        _ => Process::Client(r.int()?),
                    })
                }
                "type" => kind = Some(OpType::parse(r.string()?)?),
                "f" => f = Some(r.string()?),
                "value" => value = r.op_value()?,
                "key" => {
                    key = match r.peek()? {
                        b'"' => Some(names.key(r.string()?)),
                        b'n' => r.null()?,
                        _ => Some(Key::Int(r.int()?)),
                    }
                }
                "time" => time = r.opt(Reader::int)?,
                "index" => index = r.opt(Reader::uint)?,
                "version" => version = r.opt(Reader::uint)?,
                "node" => node = r.opt(|r| r.string().map(|n| names.get(n)))?,
                "error" => error = r.opt(|r| r.string().map(|s| Box::new(Value::from(s))))?,
                "final" => is_final = r.opt(Reader::bool)?.unwrap_or(false),
                _ => return None,
            }
            r.ws();
            match r.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    } else {
        r.i += 1;
    }
    r.ws();
    if r.i != r.b.len() {
        return None;
    }
    let mut op = Op::new(process?, kind?, names.get(f?), value);
    op.key = key;
    op.node = node;
    op.error = error;
    op.is_final = is_final;
    op.set_time(time);
    op.set_index(index);
    op.set_version(version);
    Some(op)
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        let end = self.i + w.len();
        (self.b.get(self.i..end)? == w).then(|| self.i = end)
    }

    fn null<T>(&mut self) -> Option<Option<T>> {
        self.word(b"null").map(|()| None)
    }

    /// `null`, or what `read` reads.
    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.peek()? {
            b'n' => self.null(),
            _ => read(self).map(Some),
        }
    }

    fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.word(b"true").map(|()| true),
            _ => self.word(b"false").map(|()| false),
        }
    }

    /// A string without escapes or control characters (JSON forbids raw ones).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => {}
            }
        }
        // The line is a `str` and the quotes are ASCII, so this is whole characters.
        self.s.get(start..self.i - 1)
    }

    /// The digits of a non-negative integer in canonical form (no leading zero,
    /// no fraction or exponent), at most 18 of them, so that it fits in 63 bits.
    fn digits(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            // Wraps past 19 digits; such a number is refused below.
            n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        let len = self.i - start;
        let canonical = len == 1 || (len > 1 && self.b[start] != b'0');
        let ends = !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        (canonical && len <= 18 && ends).then_some(n)
    }

    fn uint(&mut self) -> Option<u64> {
        self.digits()
    }

    fn int(&mut self) -> Option<i64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        // 18 digits fit, so the cast cannot wrap; `-0` goes the slow way.
        let n = self.digits()? as i64;
        match (negative, n) {
            (false, n) => Some(n),
            (true, 0) => None,
            (true, n) => Some(-n),
        }
    }

    /// An op's value: the common kinds straight into their inline form, the
    /// rest through a `Value`.
    fn op_value(&mut self) -> Option<OpValue> {
        match self.peek()? {
            b'n' => self.word(b"null").map(|()| OpValue::NULL),
            b'-' | b'0'..=b'9' => self.int().map(OpValue::int),
            b'[' => {
                let at = self.i;
                match self.pair() {
                    Some(p) => Some(p),
                    None => {
                        self.i = at;
                        self.value(0).map(OpValue::from)
                    }
                }
            }
            _ => self.value(0).map(OpValue::from),
        }
    }

    /// `[a, b]`, each null or an integer: a cas's `[expected, new]`.
    fn pair(&mut self) -> Option<OpValue> {
        self.eat(b'[')?;
        self.ws();
        let a = self.opt(Reader::int)?;
        self.ws();
        self.eat(b',')?;
        self.ws();
        let b = self.opt(Reader::int)?;
        self.ws();
        self.eat(b']')?;
        Some(OpValue::pair(a, b))
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.peek()? {
            b'n' => self.word(b"null").map(|()| Value::Null)?,
            b't' | b'f' => Value::Bool(self.bool()?),
            b'"' => Value::from(self.string()?),
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                // Most arrays are a cas's `[expected, new]`.
                let mut items = Vec::with_capacity(2);
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.next()? {
                            b',' => continue,
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                items.shrink_to_fit();
                Value::Array(items)
            }
            b'-' | b'0'..=b'9' => Value::from(self.int()?),
            _ => return None,
        })
    }
}
