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
//! sets become arrays. The parsing itself is `edn-format`'s; this module only finds
//! where each op starts, so that errors name the line.

use crate::{ErrorKind, History, HistoryError, Key, Op, OpType, Process};
use edn_format::Value as Edn;
use serde_json::{Map, Number, Value};

/// Parses a whole EDN history. `source` names the file in errors.
pub fn parse(source: &str, text: &str) -> Result<History, HistoryError> {
    let spans = op_spans(text)
        .map_err(|(line, msg)| HistoryError::new(source, Some(line), ErrorKind::Edn(msg)))?;
    let mut ops = Vec::with_capacity(spans.len());
    let mut lines = Vec::with_capacity(spans.len());
    for span in spans {
        let slice = &text[span.start..span.end];
        let edn = edn_format::parse_str(slice).map_err(|e| {
            // edn-format reports the line in `col` and the column in `row`.
            let line = span.line + e.col.saturating_sub(1);
            HistoryError::new(source, Some(line), ErrorKind::Edn(format!("{:?}", e.error)))
        })?;
        let op = op_from_edn(&edn).map_err(|k| HistoryError::new(source, Some(span.line), k))?;
        ops.push(op);
        lines.push(span.line);
    }
    History::new(source, ops, Some(lines))
}

/// Converts an EDN value to JSON: keywords and symbols to their names, sets and lists
/// to arrays, map keys to strings.
pub fn to_json(v: &Edn) -> Value {
    match v {
        Edn::Nil => Value::Null,
        Edn::Boolean(b) => Value::Bool(*b),
        Edn::Character(c) => Value::String(c.to_string()),
        Edn::String(s) => Value::String(s.clone()),
        Edn::Symbol(s) => Value::String(s.to_string()),
        Edn::Keyword(k) => Value::String(keyword_name(k)),
        Edn::Integer(i) => Value::from(*i),
        Edn::Float(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Edn::BigInt(b) => Value::String(b.to_string()),
        Edn::BigDec(b) => Value::String(b.to_string()),
        Edn::List(xs) | Edn::Vector(xs) => Value::Array(xs.iter().map(to_json).collect()),
        Edn::Set(xs) => Value::Array(xs.iter().map(to_json).collect()),
        Edn::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Edn::Inst(t) => Value::String(t.to_rfc3339()),
        Edn::Uuid(u) => Value::String(u.to_string()),
        Edn::TaggedElement(_, inner) => to_json(inner),
    }
}

fn keyword_name(k: &edn_format::Keyword) -> String {
    match k.namespace() {
        Some(ns) => format!("{ns}/{}", k.name()),
        None => k.name().to_string(),
    }
}

fn op_from_edn(v: &Edn) -> Result<Op, ErrorKind> {
    let Edn::Map(m) = v else {
        return Err(ErrorKind::Edn(format!(
            "expected an op map {{...}}, found {}",
            edn_format::emit_str(v)
        )));
    };
    let bad = |field: &'static str, expected: &str, found: &Edn| ErrorKind::Field {
        field,
        message: format!("expected {expected}, found {}", edn_format::emit_str(found)),
    };
    let mut op = Op::new(Process::Nemesis, OpType::Invoke, "", Value::Null);
    let (mut process, mut kind, mut f) = (None, None, None);
    for (k, val) in m {
        let name = match k {
            Edn::Keyword(k) => keyword_name(k),
            Edn::String(s) => s.clone(),
            other => edn_format::emit_str(other),
        };
        match name.as_str() {
            "process" => {
                process = Some(match val {
                    Edn::Integer(p) => Process::Client(*p),
                    Edn::Keyword(k) if k.name() == "nemesis" => Process::Nemesis,
                    Edn::String(s) if s == "nemesis" => Process::Nemesis,
                    other => return Err(bad("process", "an integer or :nemesis", other)),
                })
            }
            "type" => {
                let t = match val {
                    Edn::Keyword(k) => OpType::parse(k.name()),
                    Edn::String(s) => OpType::parse(s),
                    _ => None,
                };
                kind =
                    Some(t.ok_or_else(|| bad("type", "one of :invoke, :ok, :fail, :info", val))?);
            }
            "f" => {
                f = Some(match val {
                    Edn::Keyword(k) => keyword_name(k),
                    Edn::String(s) => s.clone(),
                    Edn::Symbol(s) => s.to_string(),
                    other => return Err(bad("f", "a keyword", other)),
                })
            }
            "value" => op.value = to_json(val),
            "key" => {
                op.key = match val {
                    Edn::Nil => None,
                    other => Some(
                        Key::from_json(&to_json(other))
                            .ok_or_else(|| bad("key", "a string or an integer", other))?,
                    ),
                }
            }
            "time" => match val {
                Edn::Integer(t) => op.time = Some(*t),
                Edn::Nil => {}
                other => return Err(bad("time", "an integer", other)),
            },
            "index" => match val {
                Edn::Integer(i) if *i >= 0 => op.index = Some(*i as u64),
                Edn::Nil => {}
                other => return Err(bad("index", "a non-negative integer", other)),
            },
            "node" => match to_json(val) {
                Value::Null => {}
                Value::String(s) => op.node = Some(s),
                _ => return Err(bad("node", "a string", val)),
            },
            "error" => op.error = Some(to_json(val)).filter(|e| !e.is_null()),
            "final" => op.is_final = matches!(val, Edn::Boolean(true)),
            _ => op.extra.push((name, to_json(val))),
        }
    }
    op.process = process.ok_or(ErrorKind::MissingField("process"))?;
    op.kind = kind.ok_or(ErrorKind::MissingField("type"))?;
    op.f = f.ok_or(ErrorKind::MissingField("f"))?;
    Ok(op)
}

/// Where one op's text lies, and the line it starts on.
#[derive(Debug, PartialEq)]
struct Span {
    start: usize,
    end: usize,
    line: usize,
}

/// Finds the op maps of a history: the elements of the outer vector or list, or the
/// top-level forms when there is none. Strings, character literals and comments are
/// skipped so brackets inside them do not count. Only positions are found here; the
/// content is parsed by `edn-format`.
fn op_spans(text: &str) -> Result<Vec<Span>, (usize, String)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Open brackets: (byte, line).
    let mut stack: Vec<(u8, usize)> = Vec::new();
    // The depth at which ops sit: 1 inside an outer vector or list, 0 without one.
    let mut op_depth: Option<usize> = None;
    let mut outer_closed = false;
    let mut current: Option<(usize, usize)> = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => line += 1,
            b' ' | b'\t' | b'\r' | b',' => {}
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                let start_line = line;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err((start_line, "unterminated string".into()));
                }
            }
            b'\\' => {
                // A character literal such as \a, \] or \newline.
                i += 2;
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                continue;
            }
            b'[' | b'(' | b'{' => {
                if outer_closed {
                    return Err((line, "unexpected data after the end of the history".into()));
                }
                if op_depth.is_none() {
                    op_depth = Some(if c == b'{' { 0 } else { 1 });
                }
                if Some(stack.len()) == op_depth {
                    if c != b'{' {
                        return Err((line, "expected an op map {...}".into()));
                    }
                    current = Some((i, line));
                }
                stack.push((c, line));
            }
            b']' | b')' | b'}' => {
                let want = match c {
                    b']' => b'[',
                    b')' => b'(',
                    _ => b'{',
                };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, open_line)) => {
                        return Err((
                            line,
                            format!(
                                "`{}` does not close `{}` opened on line {open_line}",
                                c as char, open as char
                            ),
                        ))
                    }
                    None => return Err((line, format!("unmatched `{}`", c as char))),
                }
                if Some(stack.len()) == op_depth {
                    if let Some((start, l)) = current.take() {
                        spans.push(Span {
                            start,
                            end: i + 1,
                            line: l,
                        });
                    }
                }
                if op_depth == Some(1) && stack.is_empty() {
                    outer_closed = true;
                }
            }
            b'#' if b.get(i + 1) == Some(&b'{') => {
                // A set: one bracket for our purposes.
                i += 1;
                continue;
            }
            _ => {
                if op_depth.is_some() && Some(stack.len()) == op_depth || op_depth.is_none() {
                    // An atom where an op should be.
                    let end = (i..b.len())
                        .find(|&j| b" \t\r\n,[](){}".contains(&b[j]))
                        .unwrap_or(b.len());
                    return Err((
                        line,
                        format!("expected an op map {{...}}, found `{}`", &text[i..end]),
                    ));
                }
            }
        }
        i += 1;
    }
    if let Some((open, l)) = stack.pop() {
        return Err((l, format!("`{}` opened here is never closed", open as char)));
    }
    Ok(spans)
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
        assert_eq!(h.ops()[0].f, "write");
        assert_eq!(h.ops()[1].extra, vec![("note".to_string(), json!("]"))]);
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
    fn empty_file_is_an_error() {
        let e = parse("x.edn", "; nothing\n").unwrap_err();
        assert!(e.to_string().contains("empty history"), "{e}");
        let e = parse("x.edn", "[]").unwrap_err();
        assert!(e.to_string().contains("empty history"), "{e}");
    }
}
