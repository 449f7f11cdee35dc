//! `check` end to end on small histories: the first byte picks the format, the
//! rest is the history; every model and consistency level runs with a small time
//! limit, so nothing may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitbrain_checker::{check, Consistency, ModelKind, Options};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Some((&format, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 4096 {
        return;
    }
    let Ok(text) = splitbrain_history::utf8("fuzz", rest.to_vec()) else {
        return;
    };
    let history = if format & 1 == 0 {
        splitbrain_history::jsonl::parse("fuzz", &text)
    } else {
        splitbrain_history::edn::parse("fuzz", &text)
    };
    let Ok(history) = history else {
        return;
    };
    let inits = [serde_json::Value::Null, serde_json::json!(0), serde_json::json!("unlocked")];
    for &model in ModelKind::ALL {
        for &consistency in Consistency::ALL {
            let opts = Options {
                model,
                consistency,
                init: inits[usize::from(format >> 1) % inits.len()].clone(),
                time_limit: Some(Duration::from_millis(200)),
                shrink_time: Duration::from_millis(200),
                witness: format & 0x80 != 0,
                memory_limit: 64 << 20,
            };
            let _ = check(&history, &opts);
        }
    }
});
