//! The etcd v3 client's reading of server answers: any status and body (often a
//! gateway-shaped JSON with fuzzed fields) gives an outcome by the control crate's
//! rules, never a panic.
#![no_main]

#[path = "../common/control.rs"]
mod common;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use reqwest::StatusCode;
use splitbrain_control::etcd_v3::{answer, counter_next, parse_answer};
use splitbrain_control::Outcome;

fn body(u: &mut Unstructured) -> Result<Vec<u8>> {
    // Raw bytes reach the JSON parser; the shapes reach what follows it.
    Ok(match u.int_in_range(0..=4u8)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => format!(
            r#"{{"header":{{"revision":"{}"}},"kvs":[{{"key":"aw==","create_revision":"2","mod_revision":{},"version":"1","value":{}}}],"count":"1"}}"#,
            common::text(u)?,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
        2 => format!(
            r#"{{"header":{{"revision":"3"}},"kvs":{},"count":{}}}"#,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
        3 => format!(
            r#"{{"header":{{"revision":"4"}},"succeeded":{}}}"#,
            common::text(u)?
        )
        .into_bytes(),
        _ => format!(
            r#"{{"error":{},"code":{},"message":{}}}"#,
            common::text(u)?,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
    })
}

fn one(u: &mut Unstructured) -> Result<()> {
    let call = common::call(u)?;
    let status = if u.arbitrary()? {
        StatusCode::OK
    } else {
        let Ok(s) = StatusCode::from_u16(u.arbitrary()?) else {
            return Ok(());
        };
        s
    };
    let delta: i64 = u.arbitrary()?;
    let body = body(u)?;
    let o = answer(&call, status, &body);
    common::check_outcome(&call, &o, &body);
    // An increment's first step: a range answer it can use, or a `fail`.
    if let Ok(v) = parse_answer(&call, status, &body) {
        if let Err(o) = counter_next(&v, delta) {
            assert!(matches!(o, Outcome::Fail(ref e) if !e.is_empty()), "{o:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = one(&mut Unstructured::new(data));
});
