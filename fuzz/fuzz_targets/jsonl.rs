//! The JSON Lines reader: any bytes give a history or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = splitbrain_history::utf8("fuzz.jsonl", data.to_vec()) {
        if let Err(e) = splitbrain_history::jsonl::parse("fuzz.jsonl", &text) {
            // Errors name the file.
            assert!(e.to_string().starts_with("fuzz.jsonl"));
        }
    }
});
