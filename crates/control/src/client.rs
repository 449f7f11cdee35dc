//! The client side of an op: what a worker asks ([`Call`]), what it learns
//! ([`Outcome`]), and the [`Client`] trait every protocol implements.
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
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

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

/// What a client is built from: the read mode chosen (one of its
/// [`ClientKind::read_modes`], the default when `None`), the op timeout, and the
/// description of a generic client (`--client-config`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    pub read_mode: Option<String>,
    pub timeout: Duration,
    pub config: Option<crate::http::HttpConfig>,
}

impl ClientOptions {
    pub fn new(timeout: Duration) -> ClientOptions {
        ClientOptions {
            read_mode: None,
            timeout,
            config: None,
        }
    }
}

/// How a [`ClientKind`] builds its client from a read mode (valid, or `""` for none).
type BuildFn = fn(&str, &ClientOptions) -> Result<Arc<dyn Client>, Error>;

/// A client as a plug-in: its name (`--client NAME`), the databases it speaks to, its
/// read modes, and how to build it. Every kind is in [`CLIENTS`].
#[derive(Debug)]
pub struct ClientKind {
    pub name: &'static str,
    /// The databases (the lab's plug-in names) it speaks to; empty: any, as its
    /// description says (a generic client).
    pub databases: &'static [&'static str],
    /// Its read modes, the default first; empty: it has none to choose.
    pub read_modes: &'static [&'static str],
    /// Whether it needs a description (`--client-config`).
    pub needs_config: bool,
    build: BuildFn,
}

/// Every client kind, the default first.
pub const CLIENTS: &[ClientKind] = &[
    ClientKind {
        name: "etcd-v3",
        databases: &["etcd"],
        read_modes: &["linearizable", "serializable"],
        needs_config: false,
        build: |mode, o| {
            let mode = match mode {
                "serializable" => crate::etcd_v3::ReadMode::Serializable,
                _ => crate::etcd_v3::ReadMode::Linearizable,
            };
            Ok(Arc::new(crate::etcd_v3::EtcdV3::new(mode, o.timeout)?))
        },
    },
    ClientKind {
        name: "etcd-v2",
        databases: &["etcd"],
        read_modes: &["quorum", "local"],
        needs_config: false,
        build: |mode, o| {
            let config = crate::http::HttpConfig::etcd_v2(mode == "quorum");
            Ok(Arc::new(crate::http::HttpClient::new(config, o.timeout)?))
        },
    },
    ClientKind {
        name: "http",
        databases: &[],
        read_modes: &[],
        needs_config: true,
        build: |_, o| {
            let config = o
                .config
                .clone()
                .ok_or(Error::ClientNeedsConfig { client: "http" })?;
            Ok(Arc::new(crate::http::HttpClient::new(config, o.timeout)?))
        },
    },
];

impl ClientKind {
    /// The kind called `name`, or an error listing the known ones.
    pub fn named(name: &str) -> Result<&'static ClientKind, Error> {
        CLIENTS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| Error::UnknownClient {
                name: name.to_owned(),
                known: CLIENTS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The read mode used when none is chosen; `None` for a client with none.
    pub fn default_read_mode(&self) -> Option<&'static str> {
        self.read_modes.first().copied()
    }

    /// Whether it speaks to database `db`.
    pub fn supports_db(&self, db: &str) -> bool {
        self.databases.is_empty() || self.databases.contains(&db)
    }

    /// The client, after checking that it speaks to `db` (`None`: the nodes' database
    /// is not known) and knows the read mode asked for.
    pub fn build(&self, db: Option<&str>, o: &ClientOptions) -> Result<Arc<dyn Client>, Error> {
        if let Some(db) = db {
            if !self.supports_db(db) {
                return Err(Error::ClientDatabase {
                    client: self.name,
                    db: db.to_owned(),
                    supported: self.databases.join(", "),
                });
            }
        }
        let mode = match (&o.read_mode, self.default_read_mode()) {
            (Some(m), _) if self.read_modes.is_empty() => {
                return Err(Error::NoReadModes {
                    client: self.name,
                    mode: m.clone(),
                })
            }
            (Some(m), _) if !self.read_modes.contains(&m.as_str()) => {
                return Err(Error::UnknownReadMode {
                    client: self.name,
                    mode: m.clone(),
                    known: self.read_modes.join(", "),
                })
            }
            (Some(m), _) => m.as_str(),
            (None, default) => default.unwrap_or(""),
        };
        (self.build)(mode, o)
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
    fn clients_say_which_databases_and_read_modes_they_support() {
        let o = |mode: Option<&str>| ClientOptions {
            read_mode: mode.map(str::to_owned),
            ..ClientOptions::new(Duration::from_secs(1))
        };
        let v3 = ClientKind::named("etcd-v3").unwrap();
        assert_eq!(v3.default_read_mode(), Some("linearizable"));
        assert!(v3.build(Some("etcd"), &o(Some("serializable"))).is_ok());
        let e = v3.build(Some("etcd"), &o(Some("quorum"))).err().unwrap();
        assert!(matches!(e, Error::UnknownReadMode { .. }), "{e}");
        assert!(e.to_string().contains("linearizable, serializable"), "{e}");
        let e = v3.build(Some("zookeeper"), &o(None)).err().unwrap();
        assert!(matches!(e, Error::ClientDatabase { .. }), "{e}");

        let v2 = ClientKind::named("etcd-v2").unwrap();
        assert_eq!(v2.default_read_mode(), Some("quorum"));
        assert!(!v2.build(None, &o(None)).unwrap().supports("add"));

        let http = ClientKind::named("http").unwrap();
        assert!(http.supports_db("anything") && http.default_read_mode().is_none());
        let e = http.build(None, &o(Some("local"))).err().unwrap();
        assert!(matches!(e, Error::NoReadModes { .. }), "{e}");
        let e = http.build(None, &o(None)).err().unwrap();
        assert!(matches!(e, Error::ClientNeedsConfig { .. }), "{e}");

        let e = ClientKind::named("nosuch").unwrap_err().to_string();
        assert!(
            e.contains("nosuch") && e.contains("etcd-v3, etcd-v2, http"),
            "{e}"
        );
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
