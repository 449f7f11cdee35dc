//! `etcd-v3`: etcd's v3 JSON gateway (etcd 3.4: `/v3/kv/...`, POST, keys and values
//! base64).
//!
//! ```text
//!   read   POST /v3/kv/range {"key": k}                  no "kvs": absent
//!   write  POST /v3/kv/put   {"key": k, "value": v}
//!   cas    POST /v3/kv/txn   compare VALUE == old         no "succeeded": fail
//!                            (old absent: CREATE revision == 0), success: put new
//! ```
//!
//! A gateway error answer (`{"error": ..., "code": N}`) is a `fail` only when it
//! cannot have been applied: the request itself was rejected ([`REJECTED`]). etcd
//! answers a proposal that timed out or lost its leader with 5xx, and that proposal
//! may still commit, so a mutation's 5xx is `info`; so is any status not on the list
//! (409 Aborted, 499 Canceled, 429 ...), because unknown is the safe default.

use crate::client::{classify_transport, BoxFuture, Call, Client, Outcome};
use crate::Error;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Duration;

/// HTTP statuses the gateway gives a request it refused before proposing it:
/// gRPC InvalidArgument, FailedPrecondition, OutOfRange (400), Unauthenticated (401),
/// PermissionDenied (403), NotFound (404), and a wrong method (405).
pub const REJECTED: [u16; 5] = [400, 401, 403, 404, 405];

/// `--read-mode` for etcd-v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Through the leader's read index: linearizable.
    #[default]
    Linearizable,
    /// The member's local state: may be stale.
    Serializable,
}

/// The etcd v3 JSON gateway client. Cheap to clone: the HTTP connection pool is
/// shared by every worker.
#[derive(Debug, Clone)]
pub struct EtcdV3 {
    http: reqwest::Client,
    base: Option<String>,
    read_mode: ReadMode,
}

impl EtcdV3 {
    /// A client whose requests give up after `timeout` (several seconds: an etcd
    /// election takes one or two).
    pub fn new(read_mode: ReadMode, timeout: Duration) -> Result<EtcdV3, Error> {
        Ok(EtcdV3 {
            http: crate::http_client(timeout)?,
            base: None,
            read_mode,
        })
    }

    async fn post(&self, call: &Call, path: &str, body: Value) -> Result<Value, Outcome> {
        let Some(base) = &self.base else {
            return Err(Outcome::Fail("client not opened".into()));
        };
        let url = format!("{base}{path}");
        let resp = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| classify_transport(call, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| classify_transport(call, &e))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Outcome::unknown(
                call,
                format!(
                    "HTTP {status}, unparseable answer ({e}): {}",
                    snippet(&bytes)
                ),
            )
        })?;
        if status.is_success() {
            return Ok(body);
        }
        let msg = body
            .get("error")
            .or_else(|| body.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let why = format!("HTTP {status}: {msg}");
        if REJECTED.contains(&status.as_u16()) {
            Err(Outcome::Fail(why))
        } else {
            Err(Outcome::unknown(call, why))
        }
    }

    async fn run(&self, call: &Call) -> Outcome {
        let key = B64.encode(call.key());
        let r = match call {
            Call::Read { .. } => self
                .post(call, "/v3/kv/range", self.range_body(call.key()))
                .await
                .and_then(|b| read_value(call, &b)),
            Call::Write { value, .. } => self
                .post(
                    call,
                    "/v3/kv/put",
                    json!({ "key": key, "value": B64.encode(value.to_string()) }),
                )
                .await
                .and_then(|b| put_done(call, &b)),
            Call::Cas { old, new, .. } => {
                let compare = match old {
                    Some(old) => json!({
                        "key": key, "target": "VALUE", "result": "EQUAL",
                        "value": B64.encode(old.to_string()),
                    }),
                    None => json!({
                        "key": key, "target": "CREATE", "result": "EQUAL",
                        "create_revision": "0",
                    }),
                };
                let body = json!({
                    "compare": [compare],
                    "success": [{ "request_put": { "key": key, "value": B64.encode(new.to_string()) } }],
                });
                match self.post(call, "/v3/kv/txn", body).await {
                    Ok(b) if b.get("succeeded") == Some(&Value::Bool(true)) => Ok(Value::Null),
                    // The gateway omits false fields: a txn without "succeeded" compared false.
                    Ok(b) if b.get("header").is_some() => {
                        Err(Outcome::Fail("compare failed".into()))
                    }
                    Ok(b) => Err(Outcome::unknown(
                        call,
                        format!(
                            "txn answer without header: {}",
                            snippet(b.to_string().as_bytes())
                        ),
                    )),
                    Err(o) => Err(o),
                }
            }
            Call::AddElement { value, .. } => {
                let element = B64.encode(format!("{}/{value}", call.key()));
                self.post(
                    call,
                    "/v3/kv/put",
                    json!({ "key": element, "value": B64.encode(value.to_string()) }),
                )
                .await
                .and_then(|b| put_done(call, &b))
            }
            Call::ReadSet { .. } => self.read_set(call).await,
            Call::Increment { delta, .. } => self.increment(call, *delta).await,
            Call::ReadCounter { .. } => self
                .post(call, "/v3/kv/range", self.range_body(call.key()))
                .await
                .and_then(|b| read_value(call, &b))
                .map(|v| if v.is_null() { Value::from(0) } else { v }),
        };
        match r {
            Ok(v) => Outcome::Ok(v),
            Err(o) => o,
        }
    }

    fn range_body(&self, key: &str) -> Value {
        let mut body = json!({ "key": B64.encode(key) });
        if self.read_mode == ReadMode::Serializable {
            body["serializable"] = Value::Bool(true);
        }
        body
    }

    /// A set is one key per element under `KEY/`; reading it is one range over that
    /// prefix, a consistent snapshot.
    async fn read_set(&self, call: &Call) -> Result<Value, Outcome> {
        let prefix = format!("{}/", call.key());
        let mut body = self.range_body(&prefix);
        body["range_end"] = Value::from(B64.encode(prefix_end(prefix.as_bytes())));
        let b = self.post(call, "/v3/kv/range", body).await?;
        if b.get("header").is_none() {
            return Err(Outcome::unknown(call, "range answer without header"));
        }
        let mut elements = Vec::new();
        for kv in b.get("kvs").and_then(Value::as_array).into_iter().flatten() {
            let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
            let bytes = B64
                .decode(raw)
                .map_err(|e| Outcome::unknown(call, format!("value is not base64: {e}")))?;
            elements.push(parse_value(&bytes));
        }
        elements.sort_by_key(|v| v.as_i64());
        Ok(Value::from(elements))
    }

    /// An increment is a read and a compare-and-set on the key's mod revision,
    /// retried while the compare fails (a failed compare wrote nothing). Failing
    /// to read is `fail`: nothing was written yet.
    async fn increment(&self, call: &Call, delta: i64) -> Result<Value, Outcome> {
        let key = call.key();
        let as_read = Call::ReadCounter {
            key: key.to_owned(),
        };
        for _ in 0..INCREMENT_ATTEMPTS {
            let b = self
                .post(&as_read, "/v3/kv/range", self.range_body(key))
                .await?;
            let kv = b.get("kvs").and_then(|k| k.get(0));
            let current = match kv {
                Some(kv) => {
                    let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
                    let bytes = B64.decode(raw).unwrap_or_default();
                    match parse_value(&bytes).as_i64() {
                        Some(n) => n,
                        None => {
                            return Err(Outcome::Fail(format!(
                                "the counter holds a non-integer: {}",
                                snippet(&bytes)
                            )))
                        }
                    }
                }
                None => 0,
            };
            let compare = match kv.and_then(|kv| kv.get("mod_revision")) {
                Some(rev) => json!({
                    "key": B64.encode(key), "target": "MOD", "result": "EQUAL", "mod_revision": rev,
                }),
                None => json!({
                    "key": B64.encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0",
                }),
            };
            let body = json!({
                "compare": [compare],
                "success": [{ "request_put": {
                    "key": B64.encode(key),
                    "value": B64.encode((current + delta).to_string()),
                } }],
            });
            let b = self.post(call, "/v3/kv/txn", body).await?;
            if b.get("succeeded") == Some(&Value::Bool(true)) {
                return Ok(Value::Null);
            }
            if b.get("header").is_none() {
                return Err(Outcome::unknown(call, "txn answer without header"));
            }
        }
        Err(Outcome::Fail(format!(
            "gave up after {INCREMENT_ATTEMPTS} lost compare-and-sets"
        )))
    }
}

/// How often an increment retries a compare-and-set that lost a race.
const INCREMENT_ATTEMPTS: usize = 50;

/// The end of a prefix range: the prefix with its last byte incremented.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// A put is `ok` only on an answer that looks like etcd's (it has a header): a 200
/// with some other body (a proxy, a different service) proves nothing.
fn put_done(call: &Call, body: &Value) -> Result<Value, Outcome> {
    if body.get("header").is_some() {
        Ok(Value::Null)
    } else {
        Err(Outcome::unknown(
            call,
            format!(
                "put answer without header: {}",
                snippet(body.to_string().as_bytes())
            ),
        ))
    }
}

/// The value of a range answer: no `kvs` means absent.
fn read_value(call: &Call, body: &Value) -> Result<Value, Outcome> {
    if body.get("header").is_none() {
        return Err(Outcome::unknown(call, "range answer without header"));
    }
    let Some(kv) = body.get("kvs").and_then(|k| k.get(0)) else {
        return Ok(Value::Null);
    };
    let raw = kv.get("value").and_then(Value::as_str).unwrap_or("");
    let bytes = B64
        .decode(raw)
        .map_err(|e| Outcome::unknown(call, format!("value is not base64: {e}")))?;
    Ok(parse_value(&bytes))
}

/// Values are written as decimal integers; anything else is kept as a string so a
/// foreign value shows up in the history (and fails the check) instead of vanishing.
pub(crate) fn parse_value(bytes: &[u8]) -> Value {
    let s = String::from_utf8_lossy(bytes);
    s.trim()
        .parse::<i64>()
        .map_or_else(|_| Value::from(s.into_owned()), Value::from)
}

pub(crate) fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
    if bytes.len() > 120 {
        format!("{s}...")
    } else {
        s
    }
}

impl Client for EtcdV3 {
    fn open(&self, node: &str) -> Result<Box<dyn Client>, Error> {
        Ok(Box::new(EtcdV3 {
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
    fn a_range_without_kvs_reads_absent() {
        let call = Call::Read { key: "k".into() };
        let body = json!({"header": {"revision": "3"}});
        assert_eq!(read_value(&call, &body), Ok(Value::Null));
        let body = json!({"header": {}, "kvs": [{"key": "aw==", "value": B64.encode("42")}]});
        assert_eq!(read_value(&call, &body), Ok(Value::from(42)));
    }

    #[test]
    fn a_put_is_ok_only_with_etcds_header() {
        let call = Call::Write {
            key: "k".into(),
            value: 1,
        };
        assert_eq!(put_done(&call, &json!({"header": {}})), Ok(Value::Null));
        assert!(matches!(put_done(&call, &json!({})), Err(Outcome::Info(_))));
    }

    #[test]
    fn a_prefix_range_ends_after_the_prefix() {
        assert_eq!(prefix_end(b"k/"), b"k0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    }

    #[test]
    fn a_foreign_value_is_kept_as_a_string() {
        assert_eq!(parse_value(b"hello"), Value::from("hello"));
        assert_eq!(parse_value(b"-7"), Value::from(-7));
    }
}
