//! The generic HTTP client's TOML description: any text is a checked config or an
//! error; a checked config builds a request for every call it supports (a known
//! method, a path after the base URL, placeholders filled), never a panic.
#![no_main]

#[path = "../common/control.rs"]
mod common;

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use splitbrain_control::http::{request, HttpConfig};
use splitbrain_control::Outcome;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match HttpConfig::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().contains("http client"), "{e}");
            return;
        }
    };
    // The calls come from the text's own bytes, so the values vary too.
    let mut u = Unstructured::new(data);
    for _ in 0..7 {
        let Ok(call) = common::call(&mut u) else {
            break;
        };
        match request(&config, &call) {
            Ok((_, r)) => {
                assert!(config.supports(call.f()));
                assert!(r.path.starts_with('/'), "{}", r.path);
                let _ = reqwest::Url::parse(&format!("http://127.0.0.1:2379{}", r.path));
            }
            Err(Outcome::Fail(e)) => {
                assert!(!e.contains("not an HTTP method"), "{e}");
            }
            Err(o) => panic!("a request that cannot be built is a fail, not {o:?}"),
        }
    }
});
