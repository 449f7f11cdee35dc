//! `http`: any HTTP key-value API, described by a TOML file instead of code.
//!
//! For each operation: the method, a path template and a body template (`{key}`,
//! `{value}`, `{old}`, `{new}`), where a read finds the value in the answer (a JSON
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

use crate::client::{classify_transport, BoxFuture, Call, Client, Outcome};
use crate::etcd_v3::{parse_value, snippet};
use crate::Error;
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
    pub fn from_toml(text: &str) -> Result<HttpConfig, Error> {
        toml::from_str(text).map_err(|e| Error::Config(format!("http client: {e}")))
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
    http: reqwest::Client,
    config: std::sync::Arc<HttpConfig>,
    base: Option<String>,
}

impl HttpClient {
    pub fn new(config: HttpConfig, timeout: Duration) -> Result<HttpClient, Error> {
        for (name, spec) in [
            ("read", &config.read),
            ("write", &config.write),
            ("cas", &config.cas),
        ] {
            if let Some(s) = spec {
                reqwest::Method::from_bytes(s.method.as_bytes()).map_err(|_| {
                    Error::Config(format!("http client: {name}: bad method `{}`", s.method))
                })?;
            }
        }
        Ok(HttpClient {
            http: crate::http_client(timeout)?,
            config: std::sync::Arc::new(config),
            base: None,
        })
    }

    async fn run(&self, call: &Call) -> Outcome {
        let Some(base) = &self.base else {
            return Outcome::Fail("client not opened".into());
        };
        let spec = match call {
            Call::Read { .. } | Call::ReadSet { .. } | Call::ReadCounter { .. } => {
                &self.config.read
            }
            Call::Write { .. } => &self.config.write,
            Call::Cas { .. } => &self.config.cas,
            Call::AddElement { .. } | Call::Increment { .. } => &self.config.add,
        };
        let Some(spec) = spec else {
            return Outcome::Fail(format!("the http client has no `{}` operation", call.f()));
        };
        let (path, body) = match call {
            Call::Cas { old: None, .. } => match &spec.path_if_absent {
                Some(p) => (p, spec.body_if_absent.as_ref()),
                None => {
                    return Outcome::Fail(
                        "cas from absent is not configured (path-if-absent)".into(),
                    )
                }
            },
            _ => (&spec.path, spec.body.as_ref()),
        };
        let method = reqwest::Method::from_bytes(spec.method.as_bytes()).expect("checked in new");
        let mut req = self
            .http
            .request(method, format!("{base}{}", render(path, call)));
        if let Some(b) = body {
            if let Some(ct) = &spec.content_type {
                req = req.header(reqwest::header::CONTENT_TYPE, ct);
            }
            req = req.body(render(b, call));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return classify_transport(call, &e),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return classify_transport(call, &e),
        };
        let text = String::from_utf8_lossy(&bytes);
        let why = || format!("HTTP {}: {}", status.as_u16(), snippet(&bytes));
        let rule = spec.outcome.iter().find(|r| {
            r.status
                .as_ref()
                .is_none_or(|s| s.contains(&status.as_u16()))
                && r.body_contains
                    .as_ref()
                    .is_none_or(|b| text.contains(b.as_str()))
        });
        match rule.map(|r| r.result) {
            Some(RuleResult::Ok) if call.is_read() => {
                match extract(spec, &bytes).and_then(|v| shape(call, v)) {
                    Ok(v) => Outcome::Ok(v),
                    Err(e) => Outcome::unknown(call, format!("{e}; {}", why())),
                }
            }
            Some(RuleResult::Absent) if call.is_read() => match shape(call, Value::Null) {
                Ok(v) => Outcome::Ok(v),
                Err(e) => Outcome::unknown(call, e),
            },
            Some(RuleResult::Ok) | Some(RuleResult::Absent) => Outcome::Ok(Value::Null),
            Some(RuleResult::Fail) => Outcome::Fail(why()),
            Some(RuleResult::Unknown) => Outcome::unknown(call, why()),
            None => Outcome::unknown(call, format!("no rule matches: {}", why())),
        }
    }
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

/// The value a read found: at the pointer (or the raw body), decoded, as an integer
/// when it is one.
fn extract(spec: &OpSpec, body: &[u8]) -> Result<Value, String> {
    let found = match spec.value.as_deref() {
        None | Some("raw") => Value::from(String::from_utf8_lossy(body).into_owned()),
        Some(ptr) => {
            let json: Value =
                serde_json::from_slice(body).map_err(|e| format!("unparseable answer ({e})"))?;
            json.pointer(ptr)
                .cloned()
                .ok_or_else(|| format!("no value at {ptr}"))?
        }
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
    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        Ok(Box::new(HttpClient {
            base: Some(node.trim_end_matches('/').to_owned()),
            ..self.clone()
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
        assert_eq!(render("value={new}", &cas), "value=4");
    }

    #[test]
    fn values_are_found_by_pointer_and_decoded() {
        let mut spec = HttpConfig::etcd_v2(true).read.unwrap();
        assert_eq!(
            extract(&spec, br#"{"node":{"value":"17"}}"#),
            Ok(Value::from(17))
        );
        assert!(extract(&spec, b"{}").is_err());
        spec.value = Some("/0/Value".into());
        spec.decode = Some(Decode::Base64);
        assert_eq!(
            extract(&spec, br#"[{"Value":"NDI="}]"#),
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
