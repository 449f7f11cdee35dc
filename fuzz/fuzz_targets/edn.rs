//! The EDN reader: any bytes give a history or an error, never a panic or a
//! stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = splitbrain_history::utf8("fuzz.edn", data.to_vec()) {
        if let Err(e) = splitbrain_history::edn::parse("fuzz.edn", &text) {
            assert!(e.to_string().starts_with("fuzz.edn"));
        }
    }
});
