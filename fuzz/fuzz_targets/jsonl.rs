//! The JSON Lines reader: any bytes give a history or an error, never a panic;
//! and the quick path for the common line agrees with serde on every line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splitbrain_history::jsonl;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = splitbrain_history::utf8("fuzz.jsonl", data.to_vec()) {
        if let Err(e) = jsonl::parse("fuzz.jsonl", &text) {
            // Errors name the file.
            assert!(e.to_string().starts_with("fuzz.jsonl"));
        }
        for line in text.lines() {
            let (quick, slow) = (jsonl::parse_line(line), jsonl::parse_line_slow(line));
            assert_eq!(format!("{quick:?}"), format!("{slow:?}"), "{line}");
        }
    }
});
