//! `http`: any HTTP key-value API, described by a TOML file instead of code.
//!
//! For each operation: the method, a path template and a body template (`{key}`,
//! `{value}`, `{old}`, `{new}`, and `{key_encoded}`: the key percent-encoded, for
//! APIs that split the path at `/`, such as webdis), where a read finds the value in the answer (a JSON
//! pointer, or `raw` for the whole body, optionally base64), and rules that map an
//! answer to an outcome. The first rule that matches wins; an answer no rule
//! matches is `unknown` (info; a read: fail), the only safe default.
//!
//! ```toml
//! [read]
//! method = "GET"
//! path = "/v2/keys/{key}?quorum=true"
//! value = "/node/value"
//! outcome = [
//!   { status = [200], result = "ok" },
//!   { status = [404], body-contains = '"errorCode":100', result = "absent" },
//! ]
//! ```
//!
//! Results: `ok`, `absent` (a read that found no value: ok with null), `fail`
//! (definitely not applied: a failed compare, a rejected request) and `unknown`.
//!
//! `version` (a JSON pointer, any operation) says where an `ok` answer holds the
//! store's version of the value read or written, e.g. etcd v2's
//! `/node/modifiedIndex`; it is recorded as the op's `version`. A version must be
//! a non-negative integer (a JSON number or a string of digits); anything else,
//! or nothing at the pointer, is not trusted and the op is recorded without one.
//! An `absent` read, or a read that found null, has no version.

use crate::call::{BoxFuture, Call, Client, Outcome};
use crate::etcd_v3::{parse_value, snippet};
use crate::{Endpoint, Error};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// A whole client description: one entry per operation it supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpConfig {
    pub read: Option<OpSpec>,
    pub write: Option<OpSpec>,
    pub cas: Option<OpSpec>,
    /// `add` for the set and counter workloads (`{value}`: the element, or the
    /// increment). Their reads use `read`: for a set the value found must be a list,
    /// for a counter an absent value reads 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<OpSpec>,
}

/// How to perform one operation and read its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OpSpec {
    pub method: String,
    /// Appended to the node's base URL.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// For a cas whose expected value is absent (null): the path and body to use
    /// instead, e.g. etcd v2's `?prevExist=false`. Without them such a cas is
    /// `fail` and nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_if_absent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_if_absent: Option<String>,
    /// Reads: where the value is, a JSON pointer (`/node/value`) or `raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Reads: `base64` when the value found is base64 (Consul).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<Decode>,
    /// Where an `ok` answer holds the store's version of the value read or written,
    /// a JSON pointer (`/node/modifiedIndex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub outcome: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decode {
    Base64,
}

/// An answer that matches every condition given (status in the list, body contains
/// the text) has this result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    pub result: RuleResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleResult {
    Ok,
    Absent,
    Fail,
    Unknown,
}

impl HttpConfig {
    /// Parses and [checks](HttpConfig::check) a client description.
    pub fn from_toml(text: &str) -> Result<HttpConfig, Error> {
        let c: HttpConfig =
            toml::from_str(text).map_err(|e| Error::Config(format!("http client: {e}")))?;
        c.check()?;
        Ok(c)
    }

    /// The operations, by their table's name.
    fn ops(&self) -> [(&'static str, Option<&OpSpec>); 4] {
        [
            ("read", self.read.as_ref()),
            ("write", self.write.as_ref()),
            ("cas", self.cas.as_ref()),
            ("add", self.add.as_ref()),
        ]
    }

    /// What every request needs to be sent and its answer read: a method, paths
    /// that go after the base URL, known placeholders only, a JSON pointer, header
    /// values and statuses HTTP allows. The error names the table and the key.
    pub fn check(&self) -> Result<(), Error> {
        for (name, spec) in self.ops() {
            if let Some(s) = spec {
                s.check()
                    .map_err(|m| Error::Config(format!("http client: [{name}] {m}")))?;
            }
        }
        Ok(())
    }

    /// The operations this client can run, as the history's `f`.
    pub fn supports(&self, f: &str) -> bool {
        match f {
            "read" => self.read.is_some(),
            "write" => self.write.is_some(),
            "cas" => self.cas.is_some(),
            "add" => self.add.is_some(),
            _ => false,
        }
    }

    /// etcd's v2 keys API, written as plain `http` configuration (the same text as
    /// `workloads/clients/etcd-v2.toml`). `quorum`: linearizable reads (`?quorum=true`);
    /// otherwise the member answers from its own, possibly stale, state.
    pub fn etcd_v2(quorum: bool) -> HttpConfig {
        let mut c = HttpConfig::from_toml(ETCD_V2).expect("the built-in etcd-v2 config parses");
        if !quorum {
            if let Some(r) = &mut c.read {
                r.path = r.path.replace("?quorum=true", "");
            }
        }
        c
    }
}

/// etcd v2 in `http` terms; kept equal to `workloads/clients/etcd-v2.toml` by a test.
pub const ETCD_V2: &str = include_str!("etcd-v2.toml");

/// The generic client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    endpoint: Endpoint,
    config: std::sync::Arc<HttpConfig>,
}

impl OpSpec {
    fn check(&self) -> Result<(), String> {
        reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("`method`: `{}` is not an HTTP method", self.method))?;
        for (key, template, is_path) in [
            ("path", Some(&self.path), true),
            ("path-if-absent", self.path_if_absent.as_ref(), true),
            ("body", self.body.as_ref(), false),
            ("body-if-absent", self.body_if_absent.as_ref(), false),
        ] {
            let Some(t) = template else { continue };
            if is_path && !t.starts_with('/') {
                return Err(format!(
                    "`{key}`: `{t}` does not start with `/` (it goes after the node's URL)"
                ));
            }
            check_template(t).map_err(|m| format!("`{key}`: {m}"))?;
        }
        if let Some(ct) = &self.content_type {
            reqwest::header::HeaderValue::from_str(ct)
                .map_err(|_| format!("`content-type`: `{ct}` is not a valid header value"))?;
        }
        if let Some(ptr) = &self.value {
            if ptr != "raw" && !ptr.is_empty() && !ptr.starts_with('/') {
                return Err(format!(
                    "`value`: `{ptr}` is neither `raw` nor a JSON pointer (`/node/value`)"
                ));
            }
        }
        if let Some(ptr) = &self.version {
            if !ptr.is_empty() && !ptr.starts_with('/') {
                return Err(format!(
                    "`version`: `{ptr}` is not a JSON pointer (`/node/modifiedIndex`)"
                ));
            }
        }
        for (i, rule) in self.outcome.iter().enumerate() {
            for status in rule.status.iter().flatten() {
                if !(100..=599).contains(status) {
                    return Err(format!(
                        "`outcome` rule {}: {status} is not an HTTP status (100 to 599)",
                        i + 1
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 5] = ["{key}", "{key_encoded}", "{value}", "{old}", "{new}"];

/// Refuses a `{word}` that looks like a placeholder but is none of ours (`{val}`,
/// which would be sent as is); JSON bodies' own braces hold quotes and pass.
fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('{') {
        rest = &rest[start + 1..];
        let Some(len) = rest.find('}') else { break };
        let inner = &rest[..len];
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !PLACEHOLDERS.contains(&format!("{{{inner}}}").as_str())
        {
            return Err(format!(
                "unknown placeholder {{{inner}}} in `{t}` (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
    }
    Ok(())
}

/// One request, ready to send: the method, what goes after the base URL, the body.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Option<String>,
    pub content_type: Option<String>,
}

/// The operation's description and the request for `call`, or the `fail` that
/// says why nothing can be sent.
#[doc(hidden)]
pub fn request<'a>(config: &'a HttpConfig, call: &Call) -> Result<(&'a OpSpec, Request), Outcome> {
    let spec = match call {
        Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. } => &config.read,
        Call::Write { .. } => &config.write,
        Call::Cas { .. } => &config.cas,
        Call::AddElement { .. } | Call::Increment { .. } => &config.add,
    };
    let Some(spec) = spec else {
        return Err(Outcome::Fail(format!(
            "the http client has no `{}` operation",
            call.f()
        )));
    };
    let (path, body) = match call {
        Call::Cas { old: None, .. } => match &spec.path_if_absent {
            Some(p) => (p, spec.body_if_absent.as_ref()),
            None => {
                return Err(Outcome::Fail(
                    "cas from absent is not configured (path-if-absent)".into(),
                ))
            }
        },
        _ => (&spec.path, spec.body.as_ref()),
    };
    let method = reqwest::Method::from_bytes(spec.method.as_bytes())
        .map_err(|_| Outcome::Fail(format!("`{}` is not an HTTP method", spec.method)))?;
    Ok((
        spec,
        Request {
            method,
            path: render(path, call),
            body: body.map(|b| render(b, call)),
            content_type: body.and(spec.content_type.clone()),
        },
    ))
}

/// What an answer means for `call` under `spec`'s rules: the first rule that
/// matches decides; a read's `ok` takes its value from the body, any `ok` its
/// version. Pure, so it can be tested and fuzzed without a server.
#[doc(hidden)]
pub fn answer(spec: &OpSpec, call: &Call, status: u16, bytes: &[u8]) -> Outcome {
    let body = Body::new(bytes);
    let text = String::from_utf8_lossy(bytes);
    let why = || format!("HTTP {status}: {}", snippet(bytes));
    let rule = spec.outcome.iter().find(|r| {
        r.status.as_ref().is_none_or(|s| s.contains(&status))
            && r.body_contains
                .as_ref()
                .is_none_or(|b| text.contains(b.as_str()))
    });
    match rule.map(|r| r.result) {
        Some(RuleResult::Ok) if call.is_read() => {
            let found = extract(spec, &body);
            // Nothing read, no version of it.
            let version = match &found {
                Ok(Value::Null) | Err(_) => None,
                Ok(_) => version(spec, &body),
            };
            match found.and_then(|v| shape(call, v)) {
                Ok(value) => Outcome::Ok { value, version },
                Err(e) => Outcome::unknown(call, format!("{e}; {}", why())),
            }
        }
        Some(RuleResult::Absent) if call.is_read() => match shape(call, Value::Null) {
            Ok(v) => Outcome::ok(v),
            Err(e) => Outcome::unknown(call, e),
        },
        Some(RuleResult::Ok) => Outcome::Ok {
            value: Value::Null,
            version: version(spec, &body),
        },
        Some(RuleResult::Absent) => Outcome::ok(Value::Null),
        Some(RuleResult::Fail) => Outcome::Fail(why()),
        Some(RuleResult::Unknown) => Outcome::unknown(call, why()),
        None => Outcome::unknown(call, format!("no rule matches: {}", why())),
    }
}

impl HttpClient {
    pub fn new(config: HttpConfig, timeout: Duration) -> Result<HttpClient, Error> {
        config.check()?;
        Ok(HttpClient {
            endpoint: Endpoint::new(timeout)?,
            config: std::sync::Arc::new(config),
        })
    }

    async fn run(&self, call: &Call) -> Outcome {
        let (spec, r) = match request(&self.config, call) {
            Ok(r) => r,
            Err(o) => return o,
        };
        let Request {
            method,
            path,
            body,
            content_type,
        } = r;
        let sent = self.endpoint.exchange(call, method, &path, move |mut req| {
            if let Some(b) = body {
                if let Some(ct) = content_type {
                    req = req.header(reqwest::header::CONTENT_TYPE, ct);
                }
                req = req.body(b);
            }
            req
        });
        match sent.await {
            Ok((status, bytes)) => answer(spec, call, status.as_u16(), bytes.as_ref()),
            Err(o) => o,
        }
    }
}

/// Every byte but RFC 3986's unreserved ones as `%XX`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn render(template: &str, call: &Call) -> String {
    let opt = |v: &Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let (value, old, new) = match call {
        Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. } => {
            (String::new(), String::new(), String::new())
        }
        Call::Write { value, .. } => (value.to_string(), String::new(), String::new()),
        Call::Cas { old, new, .. } => (new.to_string(), opt(old), new.to_string()),
        other => (other.value().to_string(), String::new(), String::new()),
    };
    template
        .replace("{key_encoded}", &percent_encode(call.key()))
        .replace("{key}", call.key())
        .replace("{value}", &value)
        .replace("{old}", &old)
        .replace("{new}", &new)
}

/// What a read of this kind of object must look like: a register's value as found;
/// a set's elements sorted (absent: empty); a counter's integer (absent: 0).
fn shape(call: &Call, v: Value) -> Result<Value, String> {
    match (call, v) {
        (Call::ReadSet { .. }, Value::Null) => Ok(Value::Array(Vec::new())),
        (Call::ReadSet { .. }, Value::Array(items)) => {
            let mut items: Vec<Value> = items
                .into_iter()
                .map(|i| match i {
                    Value::String(s) => parse_value(s.as_bytes()),
                    other => other,
                })
                .collect();
            items.sort_by_key(|i| i.as_i64());
            Ok(Value::Array(items))
        }
        (Call::ReadSet { .. }, other) => Err(format!("a set read found {other}, not a list")),
        (Call::ReadCounter { .. }, Value::Null) => Ok(Value::from(0)),
        (Call::ReadCounter { .. }, v) if v.is_i64() => Ok(v),
        (Call::ReadCounter { .. }, other) => {
            Err(format!("a counter read found {other}, not an integer"))
        }
        (_, v) => Ok(v),
    }
}

/// An answer's body, parsed as JSON at most once (the value and the version may
/// both need it).
struct Body<'a> {
    bytes: &'a [u8],
    json: std::cell::OnceCell<Result<Value, String>>,
}

impl<'a> Body<'a> {
    fn new(bytes: &'a [u8]) -> Body<'a> {
        Body {
            bytes,
            json: std::cell::OnceCell::new(),
        }
    }

    fn json(&self) -> Result<&Value, &str> {
        self.json
            .get_or_init(|| {
                serde_json::from_slice(self.bytes).map_err(|e| format!("unparseable answer ({e})"))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// The version at the spec's pointer, when it is one (see the module's docs).
fn version(spec: &OpSpec, body: &Body) -> Option<u64> {
    let ptr = spec.version.as_deref()?;
    crate::call::version_from_json(body.json().ok()?.pointer(ptr)?)
}

/// The value a read found: at the pointer (or the raw body), decoded, as an integer
/// when it is one.
fn extract(spec: &OpSpec, body: &Body) -> Result<Value, String> {
    let found = match spec.value.as_deref() {
        None | Some("raw") => Value::from(String::from_utf8_lossy(body.bytes).into_owned()),
        Some(ptr) => body
            .json()?
            .pointer(ptr)
            .cloned()
            .ok_or_else(|| format!("no value at {ptr}"))?,
    };
    match (found, spec.decode) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::String(s), Some(Decode::Base64)) => B64
            .decode(s.trim())
            .map(|b| parse_value(&b))
            .map_err(|e| format!("value is not base64: {e}")),
        (Value::String(s), None) => Ok(parse_value(s.as_bytes())),
        (v, _) => Ok(v),
    }
}

impl Client for HttpClient {
    fn supports(&self, f: &str) -> bool {
        self.config.supports(f)
    }

    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        Ok(Box::new(HttpClient {
            endpoint: self.endpoint.bound(node),
            config: self.config.clone(),
        }))
    }

    fn invoke<'a>(&'a self, call: &'a Call) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_key_and_values() {
        let cas = Call::Cas {
            key: "a/b".into(),
            old: Some(3),
            new: 4,
        };
        assert_eq!(render("/k/{key}?prev={old}", &cas), "/k/a/b?prev=3");
        assert_eq!(render("/GET/{key_encoded}", &cas), "/GET/a%2Fb");
        assert_eq!(render("value={new}", &cas), "value=4");
    }

    #[test]
    fn values_are_found_by_pointer_and_decoded() {
        let mut spec = HttpConfig::etcd_v2(true).read.unwrap();
        let body = |b: &'static [u8]| Body::new(b);
        assert_eq!(
            extract(&spec, &body(br#"{"node":{"value":"17"}}"#)),
            Ok(Value::from(17))
        );
        assert!(extract(&spec, &body(b"{}")).is_err());
        spec.value = Some("/0/Value".into());
        spec.decode = Some(Decode::Base64);
        assert_eq!(
            extract(&spec, &body(br#"[{"Value":"NDI="}]"#)),
            Ok(Value::from(42))
        );
    }

    #[test]
    fn set_and_counter_reads_have_their_shape() {
        let set = Call::ReadSet { key: "s".into() };
        let counter = Call::ReadCounter { key: "c".into() };
        assert_eq!(
            shape(&set, serde_json::json!(["3", 1, "2"])),
            Ok(serde_json::json!([1, 2, 3]))
        );
        assert_eq!(shape(&set, Value::Null), Ok(serde_json::json!([])));
        assert!(shape(&set, Value::from(3)).is_err());
        assert_eq!(shape(&counter, Value::Null), Ok(Value::from(0)));
        assert!(shape(&counter, Value::from("x")).is_err());
    }

    fn config_error(text: &str) -> String {
        HttpConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn a_config_is_checked_where_it_is_read() {
        for (toml, want) in [
            // `add`'s method went unchecked and a bad one panicked at the first add.
            (
                "[add]\nmethod = \"GE T\"\npath = \"/{key}\"\n",
                "[add] `method`: `GE T` is not an HTTP method",
            ),
            (
                "[read]\nmethod = \"GET\"\npath = \"v2/{key}\"\n",
                "[read] `path`: `v2/{key}` does not start with `/`",
            ),
            (
                "[write]\nmethod = \"PUT\"\npath = \"/{key}\"\nbody = \"v={val}\"\n",
                "[write] `body`: unknown placeholder {val}",
            ),
            (
                "[read]\nmethod = \"GET\"\npath = \"/{key}\"\nvalue = \"node/value\"\n",
                "[read] `value`: `node/value` is neither",
            ),
            (
                "[write]\nmethod = \"PUT\"\npath = \"/\"\nversion = \"node/modifiedIndex\"\n",
                "[write] `version`: `node/modifiedIndex` is not a JSON pointer",
            ),
            (
                "[read]\nmethod = \"GET\"\npath = \"/\"\nversion = \"raw\"\n",
                "[read] `version`: `raw` is not a JSON pointer",
            ),
            (
                "[read]\nmethod = \"GET\"\npath = \"/\"\nversion = 3\n",
                // toml shows the line: `version = 3`, "expected a string".
                "expected a string",
            ),
            (
                "[read]\nmethod = \"GET\"\npath = \"/\"\noutcome = [{ status = [20], result = \"ok\" }]\n",
                "`outcome` rule 1: 20 is not an HTTP status",
            ),
            (
                "[write]\nmethod = \"PUT\"\npath = \"/\"\ncontent-type = \"a\\nb\"\n",
                "[write] `content-type`",
            ),
        ] {
            let e = config_error(toml);
            assert!(e.contains(want), "{toml}: {e}");
        }
        // JSON bodies keep their braces.
        HttpConfig::from_toml(
            "[write]\nmethod = \"PUT\"\npath = \"/\"\nbody = '{\"k\":\"{key}\",\"v\":{value}}'\n",
        )
        .unwrap();
    }

    #[test]
    fn a_request_is_built_or_fails_without_a_panic() {
        let mut config = HttpConfig::etcd_v2(true);
        let cas = Call::Cas {
            key: "k".into(),
            old: None,
            new: 4,
        };
        let (_, r) = request(&config, &cas).unwrap();
        assert_eq!(r.path, "/v2/keys/k?prevExist=false");
        assert_eq!(r.body.as_deref(), Some("value=4"));
        // A config built in code, unchecked: a bad method is a fail, not a panic.
        config.cas.as_mut().unwrap().method = "GE T".into();
        assert!(matches!(request(&config, &cas), Err(Outcome::Fail(_))));
        let add = Call::AddElement {
            key: "k".into(),
            value: 1,
        };
        assert!(matches!(request(&config, &add), Err(Outcome::Fail(e)) if e.contains("no `add`")));
    }

    #[test]
    fn answers_follow_the_first_matching_rule() {
        let v2 = HttpConfig::etcd_v2(true);
        let read = Call::Read { key: "k".into() };
        let spec = v2.read.as_ref().unwrap();
        assert_eq!(
            answer(spec, &read, 200, br#"{"node":{"value":"5"}}"#),
            Outcome::ok(Value::from(5))
        );
        assert_eq!(
            answer(spec, &read, 404, br#"{"errorCode":100}"#),
            Outcome::ok(Value::Null)
        );
        let o = answer(spec, &read, 200, b"<html>");
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("unparseable") && e.contains("HTTP 200")),
            "{o:?}"
        );
        let write = Call::Write {
            key: "k".into(),
            value: 1,
        };
        let o = answer(v2.write.as_ref().unwrap(), &write, 502, b"bad gateway");
        assert!(
            matches!(o, Outcome::Info(ref e) if e.starts_with("no rule matches: HTTP 502: bad gateway")),
            "{o:?}"
        );
    }

    fn version_of(o: &Outcome) -> Option<u64> {
        match o {
            Outcome::Ok { version, .. } => *version,
            other => panic!("not ok: {other:?}"),
        }
    }

    #[test]
    fn an_ok_answer_carries_the_version_at_its_pointer() {
        let v2 = HttpConfig::etcd_v2(true);
        let read = Call::Read { key: "k".into() };
        let write = Call::Write {
            key: "k".into(),
            value: 5,
        };
        let cas = Call::Cas {
            key: "k".into(),
            old: Some(5),
            new: 6,
        };
        // etcd 3.4's v2 answers, as the lab gives them.
        let got = br#"{"action":"get","node":{"key":"/k","value":"5","modifiedIndex":31,"createdIndex":30}}"#;
        assert_eq!(
            answer(v2.read.as_ref().unwrap(), &read, 200, got),
            Outcome::Ok {
                value: Value::from(5),
                version: Some(31)
            }
        );
        let set = br#"{"action":"set","node":{"key":"/k","value":"5","modifiedIndex":32,"createdIndex":32},"prevNode":{"key":"/k","value":"4","modifiedIndex":31,"createdIndex":30}}"#;
        assert_eq!(
            answer(v2.write.as_ref().unwrap(), &write, 200, set),
            Outcome::Ok {
                value: Value::Null,
                version: Some(32)
            },
            "the index the write created, not its predecessor's"
        );
        let swapped = br#"{"action":"compareAndSwap","node":{"key":"/k","value":"6","modifiedIndex":33,"createdIndex":30},"prevNode":{"key":"/k","value":"5","modifiedIndex":32,"createdIndex":30}}"#;
        assert_eq!(
            version_of(&answer(v2.cas.as_ref().unwrap(), &cas, 200, swapped)),
            Some(33)
        );
        // Absent: no version, though the error answer has an index.
        let missing = br#"{"errorCode":100,"message":"Key not found","cause":"/k","index":33}"#;
        assert_eq!(
            answer(v2.read.as_ref().unwrap(), &read, 404, missing),
            Outcome::ok(Value::Null)
        );
        // A config without `version` records none.
        let mut plain = v2.write.clone().unwrap();
        plain.version = None;
        assert_eq!(version_of(&answer(&plain, &write, 200, set)), None);
    }

    #[test]
    fn a_version_that_is_not_an_integer_is_not_trusted() {
        let v2 = HttpConfig::etcd_v2(true);
        let read = Call::Read { key: "k".into() };
        let write = Call::Write {
            key: "k".into(),
            value: 5,
        };
        // The outcome stands; the version is left out.
        for garbage in [r#""31x""#, "-31", "3.1", "null", "[31]", r#""""#, "1e3"] {
            let got = format!(r#"{{"node":{{"value":"5","modifiedIndex":{garbage}}}}}"#);
            assert_eq!(
                answer(v2.read.as_ref().unwrap(), &read, 200, got.as_bytes()),
                Outcome::ok(Value::from(5)),
                "{garbage}"
            );
            assert_eq!(
                answer(v2.write.as_ref().unwrap(), &write, 201, got.as_bytes()),
                Outcome::ok(Value::Null),
                "{garbage}"
            );
        }
        // Decimal strings are versions; a body that is not JSON has none.
        let got = br#"{"node":{"value":"5","modifiedIndex":"31"}}"#;
        assert_eq!(
            version_of(&answer(v2.read.as_ref().unwrap(), &read, 200, got)),
            Some(31)
        );
        assert_eq!(
            answer(v2.write.as_ref().unwrap(), &write, 200, b"<html>ok</html>"),
            Outcome::ok(Value::Null)
        );
        // A read that found null read nothing, so nothing has a version.
        let null = br#"{"node":{"value":null,"modifiedIndex":31}}"#;
        assert_eq!(
            answer(v2.read.as_ref().unwrap(), &read, 200, null),
            Outcome::ok(Value::Null)
        );
    }

    #[test]
    fn etcd_v2_local_reads_drop_quorum() {
        assert!(HttpConfig::etcd_v2(true)
            .read
            .unwrap()
            .path
            .contains("quorum=true"));
        assert!(!HttpConfig::etcd_v2(false)
            .read
            .unwrap()
            .path
            .contains("quorum"));
    }
}
