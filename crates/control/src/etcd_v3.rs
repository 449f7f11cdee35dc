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
//! Versions: a read records the `mod_revision` of the key-value it returned (an
//! absent key: none), a set read the largest `mod_revision` among its elements; a
//! put, and a txn that succeeded (cas, an increment's last step), the answer's
//! `header.revision`, the store revision that the write created. etcd's revisions
//! grow with every change to the store, so per key a larger one is later.
//!
//! A gateway error answer (`{"error": ..., "code": N}`) is a `fail` only when it
//! cannot have been applied: the request itself was rejected ([`REJECTED`]). etcd
//! answers a proposal that timed out or lost its leader with 5xx, and that proposal
//! may still commit, so a mutation's 5xx is `info`; so is any status not on the list
//! (409 Aborted, 499 Canceled, 429 ...), because unknown is the safe default.

use crate::call::{version_from_json, BoxFuture, Call, Client, Outcome};
use crate::{Endpoint, Error};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use reqwest::StatusCode;
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
    endpoint: Endpoint,
    read_mode: ReadMode,
}

impl EtcdV3 {
    /// A client whose requests give up after `timeout` (several seconds: an etcd
    /// election takes one or two).
    pub fn new(read_mode: ReadMode, timeout: Duration) -> Result<EtcdV3, Error> {
        Ok(EtcdV3 {
            endpoint: Endpoint::new(timeout)?,
            read_mode,
        })
    }

    async fn post(&self, call: &Call, path: &str, body: Value) -> Result<Value, Outcome> {
        let (status, bytes) = self
            .endpoint
            .exchange(call, reqwest::Method::POST, path, |r| r.json(&body))
            .await?;
        parse_answer(call, status, bytes.as_ref())
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
                self.post(call, "/v3/kv/txn", body)
                    .await
                    .and_then(|b| txn_done(call, &b))
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
                .and_then(|b| read_counter(call, &b)),
        };
        done(r)
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
    async fn read_set(&self, call: &Call) -> Result<Done, Outcome> {
        let prefix = format!("{}/", call.key());
        let mut body = self.range_body(&prefix);
        body["range_end"] = Value::from(B64.encode(prefix_end(prefix.as_bytes())));
        let b = self.post(call, "/v3/kv/range", body).await?;
        set_elements(call, &b)
    }

    /// An increment is a read and a compare-and-set on the key's mod revision,
    /// retried while the compare fails (a failed compare wrote nothing). Failing
    /// to read is `fail`: nothing was written yet.
    async fn increment(&self, call: &Call, delta: i64) -> Result<Done, Outcome> {
        let key = call.key();
        let as_read = Call::ReadCounter {
            key: key.to_owned(),
        };
        for _ in 0..INCREMENT_ATTEMPTS {
            let b = self
                .post(&as_read, "/v3/kv/range", self.range_body(key))
                .await?;
            let (next, revision) = counter_next(&b, delta)?;
            let compare = match revision {
                Some(rev) => json!({
                    "key": B64.encode(key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": rev.to_string(),
                }),
                None => json!({
                    "key": B64.encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0",
                }),
            };
            let body = json!({
                "compare": [compare],
                "success": [{ "request_put": {
                    "key": B64.encode(key),
                    "value": B64.encode(next.to_string()),
                } }],
            });
            let b = self.post(call, "/v3/kv/txn", body).await?;
            if txn_succeeded(call, &b)? {
                return Ok((Value::Null, header_revision(&b)));
            }
        }
        Err(Outcome::Fail(format!(
            "gave up after {INCREMENT_ATTEMPTS} lost compare-and-sets"
        )))
    }
}

/// What an `ok` found: the value (a read's; null for a mutation) and the store's
/// version of it.
type Done = (Value, Option<u64>);

fn done(r: Result<Done, Outcome>) -> Outcome {
    match r {
        Ok((value, version)) => Outcome::Ok { value, version },
        Err(o) => o,
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

/// What an answer's bytes say: the JSON body of a 2xx answer, or the outcome an
/// error answer proves. Pure, so the parsing can be tested and fuzzed without a
/// server.
#[doc(hidden)]
pub fn parse_answer(call: &Call, status: StatusCode, bytes: &[u8]) -> Result<Value, Outcome> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        Outcome::unknown(
            call,
            format!(
                "HTTP {status}, unparseable answer ({e}): {}",
                snippet(bytes)
            ),
        )
    })?;
    if status.is_success() {
        return Ok(body);
    }
    let msg = ["error", "message"]
        .iter()
        .find_map(|f| body.get(f).and_then(Value::as_str))
        .map_or_else(|| snippet(bytes), str::to_owned);
    let why = format!("HTTP {status}: {msg}");
    if REJECTED.contains(&status.as_u16()) {
        Err(Outcome::Fail(why))
    } else {
        Err(Outcome::unknown(call, why))
    }
}

/// The outcome of one request's answer, as the client reads it: `parse_answer`,
/// then what the answer means for `call`. An increment's answer is read as its
/// final compare-and-set (a lost compare: `fail`; the client retries those).
#[doc(hidden)]
pub fn answer(call: &Call, status: StatusCode, bytes: &[u8]) -> Outcome {
    done(parse_answer(call, status, bytes).and_then(|b| match call {
        Call::Read { .. } => read_value(call, &b),
        Call::ReadCounter { .. } => read_counter(call, &b),
        Call::ReadSet { .. } => set_elements(call, &b),
        Call::Write { .. } | Call::AddElement { .. } => put_done(call, &b),
        // An increment's last step is a txn like a cas's.
        Call::Cas { .. } | Call::Increment { .. } => txn_done(call, &b),
    }))
}

/// Whether the body carries etcd's response header (an object): a 200 with some
/// other body (a proxy, a different service) proves nothing.
fn has_header(body: &Value) -> bool {
    body.get("header").is_some_and(Value::is_object)
}

/// An answer that is not etcd's: what was wrong, and the start of the body.
fn foreign(call: &Call, what: &str, body: &Value) -> Outcome {
    Outcome::unknown(
        call,
        format!("{what}: {}", snippet(body.to_string().as_bytes())),
    )
}

/// The store revision an answer was given at: after a put or a txn that
/// succeeded, the revision the write created.
fn header_revision(body: &Value) -> Option<u64> {
    version_from_json(body.get("header")?.get("revision")?)
}

/// A key-value's `mod_revision`: the revision of the put that wrote its value.
fn mod_revision(kv: &Value) -> Option<u64> {
    version_from_json(kv.get("mod_revision")?)
}

/// A put is `ok` only on an answer that looks like etcd's (it has a header).
#[doc(hidden)]
pub fn put_done(call: &Call, body: &Value) -> Result<Done, Outcome> {
    if has_header(body) {
        Ok((Value::Null, header_revision(body)))
    } else {
        Err(foreign(call, "put answer without header", body))
    }
}

/// Whether a txn's compare held. The gateway omits false fields: a txn answer with
/// a header and without `succeeded` compared false.
fn txn_succeeded(call: &Call, body: &Value) -> Result<bool, Outcome> {
    if !has_header(body) {
        return Err(foreign(call, "txn answer without header", body));
    }
    match body.get("succeeded") {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(_) => Err(foreign(
            call,
            "txn answer whose `succeeded` is not a boolean",
            body,
        )),
    }
}

/// A cas is one txn: `ok` when its compare held, `fail` when it did not.
#[doc(hidden)]
pub fn txn_done(call: &Call, body: &Value) -> Result<Done, Outcome> {
    match txn_succeeded(call, body)? {
        true => Ok((Value::Null, header_revision(body))),
        false => Err(Outcome::Fail("compare failed".into())),
    }
}

/// A range answer's key-values: no `kvs` (the gateway omits empty fields) is none.
fn range_kvs<'a>(call: &Call, body: &'a Value) -> Result<&'a [Value], Outcome> {
    if !has_header(body) {
        return Err(foreign(call, "range answer without header", body));
    }
    match body.get("kvs") {
        None => Ok(&[]),
        Some(Value::Array(kvs)) => Ok(kvs),
        Some(_) => Err(foreign(
            call,
            "range answer whose `kvs` is not a list",
            body,
        )),
    }
}

/// One key-value's value, decoded from base64 (a missing `value` is the empty one,
/// which the gateway omits).
fn kv_value(call: &Call, kv: &Value) -> Result<Vec<u8>, Outcome> {
    let what = match kv.get("value") {
        _ if !kv.is_object() => "range answer whose key-value is not an object",
        None => return Ok(Vec::new()),
        Some(Value::String(raw)) => {
            return B64
                .decode(raw)
                .map_err(|e| Outcome::unknown(call, format!("value is not base64: {e}")))
        }
        Some(_) => "range answer whose `value` is not a string",
    };
    Err(foreign(call, what, kv))
}

/// The value of a range answer and its `mod_revision`: no `kvs` means absent,
/// which has no version.
#[doc(hidden)]
pub fn read_value(call: &Call, body: &Value) -> Result<Done, Outcome> {
    match range_kvs(call, body)?.first() {
        None => Ok((Value::Null, None)),
        Some(kv) => Ok((parse_value(&kv_value(call, kv)?), mod_revision(kv))),
    }
}

/// A counter's value: a register read, absent reading 0.
fn read_counter(call: &Call, body: &Value) -> Result<Done, Outcome> {
    let (v, version) = read_value(call, body)?;
    Ok((if v.is_null() { Value::from(0) } else { v }, version))
}

/// The elements of a set: the values of a range over its prefix, sorted. Its
/// version is the newest element's `mod_revision` (the range is one snapshot, so
/// the set read is the state that revision created); none when the set is empty
/// or any element lacks a usable one (the newest might be that one).
#[doc(hidden)]
pub fn set_elements(call: &Call, body: &Value) -> Result<Done, Outcome> {
    let kvs = range_kvs(call, body)?;
    let mut elements = Vec::with_capacity(kvs.len());
    for kv in kvs {
        elements.push(parse_value(&kv_value(call, kv)?));
    }
    elements.sort_by_key(|v| v.as_i64());
    let newest = kvs
        .iter()
        .map(mod_revision)
        .collect::<Option<Vec<u64>>>()
        .and_then(|revisions| revisions.into_iter().max());
    Ok((Value::from(elements), newest))
}

/// An increment's next value (the counter's plus `delta`) and the mod revision to
/// compare, from a range answer (absent: 0, no revision). Nothing has been written
/// yet, so an answer that cannot be used is `fail`.
#[doc(hidden)]
pub fn counter_next(body: &Value, delta: i64) -> Result<(i64, Option<u64>), Outcome> {
    // A read's unknown outcome is `fail`.
    let read = Call::ReadCounter { key: String::new() };
    let Some(kv) = range_kvs(&read, body)?.first() else {
        return Ok((delta, None));
    };
    let bytes = kv_value(&read, kv)?;
    let Some(n) = parse_value(&bytes).as_i64() else {
        return Err(Outcome::Fail(format!(
            "the counter holds a non-integer: {}",
            snippet(&bytes)
        )));
    };
    let revision = mod_revision(kv);
    let Some(next) = n.checked_add(delta) else {
        return Err(Outcome::Fail(format!(
            "the counter holds {n}: adding {delta} overflows a 64-bit integer"
        )));
    };
    match revision {
        Some(r) => Ok((next, Some(r))),
        None => Err(Outcome::Fail(format!(
            "range answer without an integer `mod_revision`: {}",
            snippet(kv.to_string().as_bytes())
        ))),
    }
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
            endpoint: self.endpoint.bound(node),
            read_mode: self.read_mode,
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
        assert_eq!(read_value(&call, &body), Ok((Value::Null, None)));
        let body = json!({"header": {}, "kvs": [{"key": "aw==", "value": B64.encode("42")}]});
        assert_eq!(read_value(&call, &body), Ok((Value::from(42), None)));
    }

    #[test]
    fn a_put_is_ok_only_with_etcds_header() {
        let call = Call::Write {
            key: "k".into(),
            value: 1,
        };
        assert_eq!(
            put_done(&call, &json!({"header": {}})),
            Ok((Value::Null, None))
        );
        assert!(matches!(put_done(&call, &json!({})), Err(Outcome::Info(_))));
    }

    fn version_of(o: &Outcome) -> Option<u64> {
        match o {
            Outcome::Ok { version, .. } => *version,
            other => panic!("not ok: {other:?}"),
        }
    }

    #[test]
    fn reads_record_the_mod_revision_and_writes_the_header_revision() {
        let read = Call::Read { key: "k".into() };
        let write = Call::Write {
            key: "k".into(),
            value: 7,
        };
        let cas = Call::Cas {
            key: "k".into(),
            old: Some(7),
            new: 8,
        };
        let counter = Call::ReadCounter { key: "c".into() };
        let set = Call::ReadSet { key: "s".into() };
        let add = Call::Increment {
            key: "c".into(),
            delta: 1,
        };
        // What etcd 3.4's gateway answers: int64 fields as strings.
        let range = br#"{"header":{"cluster_id":"1","member_id":"2","revision":"815","raft_term":"3"},"kvs":[{"key":"aw==","create_revision":"800","mod_revision":"812","version":"4","value":"Nw=="}],"count":"1"}"#;
        let o = answer(&read, ok(200), range);
        assert_eq!(
            o,
            Outcome::Ok {
                value: Value::from(7),
                version: Some(812)
            },
            "the mod revision of the value read, not the store's current revision"
        );
        assert_eq!(version_of(&answer(&counter, ok(200), range)), Some(812));
        // An absent key has no version, though the answer has a revision.
        let absent = br#"{"header":{"revision":"815"},"count":"0"}"#;
        assert_eq!(version_of(&answer(&read, ok(200), absent)), None);
        assert_eq!(
            answer(&counter, ok(200), absent),
            Outcome::ok(Value::from(0))
        );
        let put =
            br#"{"header":{"cluster_id":"1","member_id":"2","revision":"816","raft_term":"3"}}"#;
        assert_eq!(version_of(&answer(&write, ok(200), put)), Some(816));
        let txn = br#"{"header":{"revision":"817"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"817"}}}]}"#;
        assert_eq!(version_of(&answer(&cas, ok(200), txn)), Some(817));
        assert_eq!(version_of(&answer(&add, ok(200), txn)), Some(817));
        // A failed compare wrote nothing: no ok, no version.
        let lost = br#"{"header":{"revision":"817"}}"#;
        assert_eq!(
            answer(&cas, ok(200), lost),
            Outcome::Fail("compare failed".into())
        );
        // A set's version is its newest element's.
        let elements = br#"{"header":{"revision":"20"},"kvs":[{"value":"MQ==","mod_revision":"12"},{"value":"Mg==","mod_revision":"19"},{"value":"Mw==","mod_revision":"5"}]}"#;
        assert_eq!(
            answer(&set, ok(200), elements),
            Outcome::Ok {
                value: json!([1, 2, 3]),
                version: Some(19)
            }
        );
    }

    #[test]
    fn a_version_that_is_not_an_integer_is_not_trusted() {
        let read = Call::Read { key: "k".into() };
        let write = Call::Write {
            key: "k".into(),
            value: 7,
        };
        let set = Call::ReadSet { key: "s".into() };
        // The op keeps its outcome; only the version is left out.
        for garbage in [
            r#""x812""#,
            r#""-3""#,
            "-3",
            "1.5",
            "null",
            r#"{"r":1}"#,
            r#""99999999999999999999""#,
        ] {
            let range = format!(
                r#"{{"header":{{"revision":"9"}},"kvs":[{{"value":"Nw==","mod_revision":{garbage}}}]}}"#
            );
            assert_eq!(
                answer(&read, ok(200), range.as_bytes()),
                Outcome::ok(Value::from(7)),
                "{garbage}"
            );
            let put = format!(r#"{{"header":{{"revision":{garbage}}}}}"#);
            assert_eq!(
                answer(&write, ok(200), put.as_bytes()),
                Outcome::ok(Value::Null),
                "{garbage}"
            );
            // One element without a usable revision: the newest is unknown.
            let elements = format!(
                r#"{{"header":{{}},"kvs":[{{"value":"MQ==","mod_revision":"12"}},{{"value":"Mg==","mod_revision":{garbage}}}]}}"#
            );
            assert_eq!(
                answer(&set, ok(200), elements.as_bytes()),
                Outcome::ok(json!([1, 2])),
                "{garbage}"
            );
        }
        // Numbers are taken as well as strings.
        let put = br#"{"header":{"revision":816}}"#;
        assert_eq!(version_of(&answer(&write, ok(200), put)), Some(816));
    }

    #[test]
    fn a_prefix_range_ends_after_the_prefix() {
        assert_eq!(prefix_end(b"k/"), b"k0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
    }

    fn ok(status: u16) -> StatusCode {
        StatusCode::from_u16(status).unwrap()
    }

    fn info_or_fail(o: &Outcome) -> &str {
        match o {
            Outcome::Info(e) | Outcome::Fail(e) | Outcome::Refused(e) => e,
            Outcome::Ok { value, .. } => panic!("ok with {value}"),
        }
    }

    #[test]
    fn answers_that_are_not_etcds_are_unknown_with_what_was_wrong() {
        let write = Call::Write {
            key: "k".into(),
            value: 1,
        };
        let read = Call::Read { key: "k".into() };
        let cas = Call::Cas {
            key: "k".into(),
            old: Some(1),
            new: 2,
        };
        let set = Call::ReadSet { key: "s".into() };
        // `kvs` that is not a list used to read as absent.
        let o = answer(&read, ok(200), br#"{"header":{},"kvs":"x"}"#);
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("`kvs` is not a list")),
            "{o:?}"
        );
        let o = answer(&set, ok(200), br#"{"header":{},"kvs":{"0":1}}"#);
        assert!(info_or_fail(&o).contains("`kvs` is not a list"), "{o:?}");
        // A value that is not a string used to read as the empty string.
        let o = answer(&read, ok(200), br#"{"header":{},"kvs":[{"value":7}]}"#);
        assert!(
            info_or_fail(&o).contains("`value` is not a string"),
            "{o:?}"
        );
        let o = answer(&set, ok(200), br#"{"header":{},"kvs":[3]}"#);
        assert!(info_or_fail(&o).contains("not an object"), "{o:?}");
        // A `succeeded` that is not a boolean used to be a failed compare: a `fail`
        // claims the cas was not applied, which nobody knows.
        let o = answer(&cas, ok(200), br#"{"header":{},"succeeded":"true"}"#);
        assert!(
            matches!(o, Outcome::Info(ref e) if e.contains("`succeeded`")),
            "{o:?}"
        );
        assert_eq!(
            answer(&cas, ok(200), br#"{"header":{},"succeeded":false}"#),
            Outcome::Fail("compare failed".into())
        );
        // A header that is not an object is no header.
        let o = answer(&write, ok(200), br#"{"header":null}"#);
        assert!(
            matches!(o, Outcome::Info(ref e) if e.contains("without header")),
            "{o:?}"
        );
        // An error answer without a message shows its body.
        let o = answer(&write, ok(503), br#"{"code":14}"#);
        assert!(
            matches!(o, Outcome::Info(ref e) if e.contains("\"code\":14")),
            "{o:?}"
        );
        let o = answer(&write, ok(400), b"");
        assert!(
            matches!(o, Outcome::Info(ref e) if e.contains("unparseable")),
            "{o:?}"
        );
    }

    #[test]
    fn a_counter_read_keeps_a_foreign_value_for_the_checker() {
        // Found by the etcd_v3_answer fuzz target: a counter holding a value that
        // is no integer (here empty) reads as that string, which the counter
        // checker rejects, as a register read keeps one; absent reads 0.
        let read = Call::ReadCounter { key: "c".into() };
        let with = |v: &str| {
            format!(
                r#"{{"header":{{}},"kvs":[{{"key":"Yw==","value":"{}"}}]}}"#,
                B64.encode(v)
            )
        };
        assert_eq!(
            answer(&read, ok(200), with("").as_bytes()),
            Outcome::ok(Value::from(""))
        );
        assert_eq!(
            answer(&read, ok(200), with("x1").as_bytes()),
            Outcome::ok(Value::from("x1"))
        );
        assert_eq!(
            answer(&read, ok(200), with(" 12 ").as_bytes()),
            Outcome::ok(Value::from(12))
        );
        assert_eq!(
            answer(&read, ok(200), br#"{"header":{}}"#),
            Outcome::ok(Value::from(0))
        );
    }

    #[test]
    fn an_increment_fails_on_a_counter_it_cannot_add_to() {
        let kv = |value: &str, rev: Value| json!({"header": {}, "kvs": [{"key": "aw==", "value": B64.encode(value), "mod_revision": rev}]});
        assert_eq!(counter_next(&json!({"header": {}}), 5), Ok((5, None)));
        assert_eq!(counter_next(&kv("40", json!("9")), 2), Ok((42, Some(9))));
        assert_eq!(counter_next(&kv("40", json!(9)), -2), Ok((38, Some(9))));
        // Adding past i64::MAX used to overflow (a panic in debug builds).
        let o = counter_next(&kv(&i64::MAX.to_string(), json!("9")), 1).unwrap_err();
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("overflows")),
            "{o:?}"
        );
        // A value that is not base64 used to count as 0.
        let bad = json!({"header": {}, "kvs": [{"value": "!!", "mod_revision": "9"}]});
        let o = counter_next(&bad, 1).unwrap_err();
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("not base64")),
            "{o:?}"
        );
        // Without a revision the compare could never hold.
        let o = counter_next(&kv("1", json!({"x": 1})), 1).unwrap_err();
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("mod_revision")),
            "{o:?}"
        );
        let o = counter_next(&kv("x", json!("9")), 1).unwrap_err();
        assert!(
            matches!(o, Outcome::Fail(ref e) if e.contains("non-integer")),
            "{o:?}"
        );
    }

    #[test]
    fn a_foreign_value_is_kept_as_a_string() {
        assert_eq!(parse_value(b"hello"), Value::from("hello"));
        assert_eq!(parse_value(b"-7"), Value::from(-7));
    }
}
