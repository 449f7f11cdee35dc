//! Shared by the control crate's targets: a call of every kind, picked by a byte.
#![allow(dead_code)] // each target uses its part

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use serde_json::Value;
use splitbrain_control::client::version_from_json;
use splitbrain_control::{Call, Outcome};

/// Any call the workers make, with fuzzed values.
pub fn call(u: &mut Unstructured) -> Result<Call> {
    let key = "splitbrain/run/k1".to_string();
    Ok(match u.int_in_range(0..=6u8)? {
        0 => Call::Read { key },
        1 => Call::Write {
            key,
            value: u.arbitrary()?,
        },
        2 => Call::Cas {
            key,
            old: u.arbitrary()?,
            new: u.arbitrary()?,
        },
        3 => Call::AddElement {
            key,
            value: u.arbitrary()?,
        },
        4 => Call::ReadSet { key },
        5 => Call::Increment {
            key,
            delta: u.arbitrary()?,
        },
        _ => Call::ReadCounter { key },
    })
}

/// The control crate's rules for any answer: a read is never `info`; an error
/// says what was wrong; a mutation's `ok` carries nothing; a set read is a list and
/// a counter read an integer (or a foreign value, kept as a string); a register
/// read that found nothing has no version, and a version is one the JSON answer
/// `body` holds, never made up.
pub fn check_outcome(call: &Call, o: &Outcome, body: &[u8]) {
    match o {
        Outcome::Info(e) => {
            assert!(!call.is_read(), "a read ended info: {e}");
            assert!(!e.trim().is_empty(), "info without a reason");
        }
        Outcome::Fail(e) => assert!(!e.trim().is_empty(), "fail without a reason"),
        Outcome::Refused(e) => assert!(!e.trim().is_empty(), "refused without a reason"),
        Outcome::Ok {
            value: v,
            version,
        } => {
            if let Some(version) = version {
                let json: Value = serde_json::from_slice(body)
                    .unwrap_or_else(|e| panic!("version {version} from an answer that is not JSON: {e}"));
                assert!(holds(&json, *version), "version {version} is not in the answer");
                if matches!(call, Call::Read { .. }) {
                    assert!(!v.is_null(), "an absent read has version {version}");
                }
            }
            check_ok_value(call, v)
        }
    }
}

fn check_ok_value(call: &Call, v: &Value) {
    match call {
        Call::ReadSet { .. } => assert!(v.is_array(), "a set read found {v}"),
        // A foreign value is kept as a string, to fail the check visibly.
        Call::ReadCounter { .. } => {
            assert!(v.is_i64() || v.is_string(), "a counter read found {v}")
        }
        Call::Read { .. } => {}
        _ => assert_eq!(v, &Value::Null, "a mutation's ok carries {v}"),
    }
}

/// Whether the JSON answer holds `version` somewhere, as a number or a string.
fn holds(body: &Value, version: u64) -> bool {
    match body {
        Value::Array(items) => items.iter().any(|i| holds(i, version)),
        Value::Object(m) => m.values().any(|i| holds(i, version)),
        v => version_from_json(v) == Some(version),
    }
}

/// A fuzzed piece of text: valid UTF-8, possibly empty.
pub fn text(u: &mut Unstructured) -> Result<String> {
    u.arbitrary()
}
