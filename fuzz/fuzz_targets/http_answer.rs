//! The generic HTTP client's reading of answers: any status and body, under
//! outcome rules and value and version pointers that are fuzzed too (or etcd
//! v2's), gives an outcome by the control crate's rules, never a panic.
#![no_main]

#[path = "../common/control.rs"]
mod common;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use splitbrain_control::http::{answer, Decode, HttpConfig, OpSpec, Rule, RuleResult};

fn pointer(u: &mut Unstructured) -> Result<Option<String>> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => None,
        1 => Some("raw".into()),
        2 => Some("/node/value".into()),
        3 => Some("/0/Value".into()),
        4 => Some(String::new()),
        _ => Some(common::text(u)?),
    })
}

fn version_pointer(u: &mut Unstructured) -> Result<Option<String>> {
    Ok(match u.int_in_range(0..=4u8)? {
        0 => None,
        1 => Some("/node/modifiedIndex".into()),
        2 => Some("/0/ModifyIndex".into()),
        3 => Some(String::new()),
        _ => Some(common::text(u)?),
    })
}

fn rule(u: &mut Unstructured) -> Result<Rule> {
    let status = match u.int_in_range(0..=2u8)? {
        0 => None,
        1 => Some(vec![u.int_in_range(100..=599)?]),
        _ => Some(u.arbitrary()?),
    };
    let body_contains = if u.arbitrary()? {
        Some(common::text(u)?)
    } else {
        None
    };
    let result = match u.int_in_range(0..=3u8)? {
        0 => RuleResult::Ok,
        1 => RuleResult::Absent,
        2 => RuleResult::Fail,
        _ => RuleResult::Unknown,
    };
    Ok(Rule {
        status,
        body_contains,
        result,
    })
}

fn spec(u: &mut Unstructured) -> Result<OpSpec> {
    if u.arbitrary()? {
        let v2 = HttpConfig::etcd_v2(true);
        let picked = match u.int_in_range(0..=2u8)? {
            0 => v2.read,
            1 => v2.write,
            _ => v2.cas,
        };
        return Ok(picked.expect("etcd v2 has read, write and cas"));
    }
    let mut outcome = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        outcome.push(rule(u)?);
    }
    Ok(OpSpec {
        method: "GET".into(),
        path: "/{key}".into(),
        body: None,
        content_type: None,
        path_if_absent: None,
        body_if_absent: None,
        value: pointer(u)?,
        version: version_pointer(u)?,
        decode: if u.arbitrary()? {
            Some(Decode::Base64)
        } else {
            None
        },
        outcome,
    })
}

fn body(u: &mut Unstructured) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => format!(
            r#"{{"action":"get","node":{{"key":"/k","value":{},"modifiedIndex":{}}}}}"#,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
        2 => format!(
            r#"[{{"Key":"k","Flags":0,"Value":{},"ModifyIndex":{}}}]"#,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
        _ => format!(
            r#"{{"errorCode":{},"message":{},"cause":"/k","index":9}}"#,
            common::text(u)?,
            common::text(u)?
        )
        .into_bytes(),
    })
}

fn one(u: &mut Unstructured) -> Result<()> {
    let spec = spec(u)?;
    let call = common::call(u)?;
    let status = if u.arbitrary()? {
        u.int_in_range(100..=599)?
    } else {
        u.arbitrary()?
    };
    let body = body(u)?;
    let o = answer(&spec, &call, status, &body);
    common::check_outcome(&call, &o, &body);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = one(&mut Unstructured::new(data));
});
