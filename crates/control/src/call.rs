//! The client side of an op: what a worker asks ([`Call`]), what it learns
//! ([`Outcome`]), and the [`Client`] trait every protocol implements. Which clients
//! exist, and how one is chosen, is `client.rs`'s business.
//!
//! Outcomes follow Jepsen. The rule that matters is which errors *prove* an op was
//! not applied:
//!
//! ```text
//!   connection refused, nothing sent ........ fail   (the server never saw it)
//!   a definite error answer, a failed compare  fail   (the server said no)
//!   timeout, connection lost after sending ... info   (it may apply, now or later)
//!   garbage where an answer should be ........ info   (we cannot tell)
//! ```
//!
//! A read changes nothing, so the worker turns a read's `info` into `fail`
//! ([`Outcome::for_call`]); clients need not care.

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, so that [`Client`] stays object-safe and the binary can pick a
/// client at run time.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One operation on one key. Values are integers; `None` is an absent key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// A register's value (null: absent).
    Read {
        key: String,
    },
    Write {
        key: String,
        value: i64,
    },
    Cas {
        key: String,
        old: Option<i64>,
        new: i64,
    },
    /// Adds an element to the set stored under `key` (history: `add`).
    AddElement {
        key: String,
        value: i64,
    },
    /// Every element of the set under `key`, sorted (history: `read`).
    ReadSet {
        key: String,
    },
    /// Adds `delta` to the counter under `key` (history: `add`).
    Increment {
        key: String,
        delta: i64,
    },
    /// The counter's value, 0 when absent (history: `read`).
    ReadCounter {
        key: String,
    },
}

impl Call {
    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. } => "read",
            Call::Write { .. } => "write",
            Call::Cas { .. } => "cas",
            Call::AddElement { .. } | Call::Increment { .. } => "add",
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Call::Read { key }
            | Call::Write { key, .. }
            | Call::Cas { key, .. }
            | Call::AddElement { key, .. }
            | Call::ReadSet { key }
            | Call::Increment { key, .. }
            | Call::ReadCounter { key } => key,
        }
    }

    /// The invocation's `value`: null for a read, the value for a write, `[old, new]`
    /// for a cas.
    pub fn value(&self) -> Value {
        match self {
            Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. } => Value::Null,
            Call::Write { value, .. } | Call::AddElement { value, .. } => Value::from(*value),
            Call::Increment { delta, .. } => Value::from(*delta),
            Call::Cas { old, new, .. } => Value::from(vec![opt(*old), Value::from(*new)]),
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. }
        )
    }
}

fn opt(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Took effect. `value`: for a read, the value read (null: absent); otherwise
    /// ignored and the invocation's value is recorded. `version`: the store's own
    /// version of that value (a read's) or of what the call wrote, when the answer
    /// carried one that is a non-negative integer; recorded as the op's `version`.
    Ok { value: Value, version: Option<u64> },
    /// Definitely did not take effect; the reason.
    Fail(String),
    /// The node refused the connection: nothing was sent, so the op did not take
    /// effect (recorded as `fail`, its error beginning with [`REFUSED`]), and the node
    /// is probably down, so the worker backs off before its next op.
    Refused(String),
    /// May or may not have taken effect; the reason.
    Info(String),
}

impl Outcome {
    /// `ok` with `value` and no version.
    pub fn ok(value: Value) -> Outcome {
        Outcome::Ok {
            value,
            version: None,
        }
    }

    /// A read cannot have changed anything, so not knowing its result is a `fail`.
    pub fn for_call(self, call: &Call) -> Outcome {
        match self {
            Outcome::Info(e) if call.is_read() => Outcome::Fail(e),
            o => o,
        }
    }

    /// For a mutation whose fate is unknown: `fail` for a read, `info` otherwise.
    pub fn unknown(call: &Call, why: impl Into<String>) -> Outcome {
        Outcome::Info(why.into()).for_call(call)
    }
}

/// A protocol. Jepsen's lifecycle: [`open`](Client::open) binds a copy to one node
/// (one per worker), [`invoke`](Client::invoke) runs one call on it,
/// [`close`](Client::close) lets go of it.
///
/// `invoke` must never panic and never return before it knows the outcome or has
/// given up; the worker bounds it with the op timeout anyway and records `info` if
/// it runs out.
pub trait Client: Send + Sync {
    /// A client bound to `node` (a base URL such as `http://10.77.1.1:2379`). Opening
    /// sends nothing.
    fn open(&self, node: &str) -> Result<Box<dyn Client>, crate::Error>;

    fn invoke<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Outcome>;

    /// Gets ready before the run's first call and before any fault: a client with
    /// sessions opens its session (ZooKeeper creates sessions only through the
    /// leader). A failure is no error: `invoke` tries again. Default: nothing.
    fn connect(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether it can run calls whose `f` is this (`read`, `write`, `cas`, `add`):
    /// a run refuses a workload that needs one it has not, before anything starts.
    fn supports(&self, f: &str) -> bool {
        let _ = f;
        true
    }
}

/// A version as a store's JSON answer gives it: a non-negative integer, or a
/// string of decimal digits (etcd's gateway writes int64 fields as strings).
/// Anything else (negative, fractional, `"12abc"`, beyond 64 bits, an object) is
/// not trusted: `None`, and the op is recorded without a version. A missing
/// version only costs the checker information; a wrong one would mislead it.
pub fn version_from_json(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// How a `fail` from a connection the node refused begins: nothing was sent.
pub const REFUSED: &str = "connect: ";

/// Classifies an HTTP transport error for `call`: a failed connect sent nothing
/// (`fail`); anything after that is `info` (reads: `fail`).
pub fn classify_transport(call: &Call, e: &reqwest::Error) -> Outcome {
    let why = error_chain(e);
    if e.is_connect() {
        return Outcome::Refused(why);
    }
    if e.is_builder() {
        return Outcome::Fail(format!("request not built: {why}"));
    }
    if e.is_timeout() {
        return Outcome::unknown(call, format!("timeout: {why}"));
    }
    Outcome::unknown(call, why)
}

/// `ADDR:PORT` from a member's URL for a client of a native protocol: `SCHEME://ADDR:PORT`
/// or a bare `ADDR:PORT` (a trailing `/` allowed). Another scheme, or no port, is a
/// configuration error that names the client and the form it expects.
pub fn addr_port(node: &str, scheme: &str, client: &str) -> Result<String, crate::Error> {
    let rest = match node.split_once("://") {
        Some((s, rest)) if s == scheme => rest,
        Some((other, _)) => {
            return Err(crate::Error::Config(format!(
            "the {client} client speaks to {scheme}://ADDRESS:PORT, not to a {other} URL: {node}"
        )))
        }
        None => node,
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(rest.to_owned()),
        _ => Err(crate::Error::Config(format!(
            "`{node}` is not {scheme}://ADDRESS:PORT (the {client} client's form)"
        ))),
    }
}

/// An error and its sources on one line: reqwest's top message alone is rarely enough
/// ("error sending request").
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_whose_outcome_is_unknown_failed() {
        let read = Call::Read { key: "k".into() };
        let write = Call::Write {
            key: "k".into(),
            value: 1,
        };
        assert_eq!(
            Outcome::unknown(&read, "timeout"),
            Outcome::Fail("timeout".into())
        );
        assert_eq!(
            Outcome::unknown(&write, "timeout"),
            Outcome::Info("timeout".into())
        );
    }

    #[test]
    fn only_non_negative_integers_are_versions() {
        use serde_json::json;
        assert_eq!(version_from_json(&json!(812)), Some(812));
        assert_eq!(version_from_json(&json!("812")), Some(812));
        assert_eq!(version_from_json(&json!(0)), Some(0));
        assert_eq!(
            version_from_json(&json!("18446744073709551615")),
            Some(u64::MAX)
        );
        for garbage in [
            json!(-1),
            json!("-1"),
            json!("+1"),
            json!(" 1"),
            json!(""),
            json!("12abc"),
            json!("18446744073709551616"),
            json!(1.5),
            json!(null),
            json!([1]),
            json!({"revision": 1}),
        ] {
            assert_eq!(version_from_json(&garbage), None, "{garbage}");
        }
    }

    #[test]
    fn cas_value_is_a_pair_with_null_for_absent() {
        let cas = Call::Cas {
            key: "k".into(),
            old: None,
            new: 3,
        };
        assert_eq!(cas.value(), serde_json::json!([null, 3]));
        assert_eq!(cas.f(), "cas");
    }
}
