//! `splitbrain test --config FILE.toml`: the file's settings, merged with no
//! flags, defaulted and resolved exactly as the binary does (the binary's
//! `test_config.rs` is included as it is: it is pure, so it needs no binary).
//! Whatever the bytes, no panic; and settings that resolve, written back as
//! config.toml, resolve again to the same run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

#[path = "../../crates/splitbrain/src/test_config.rs"]
#[allow(dead_code)]
mod test_config;

use test_config::{Settings, TestArgs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("dir/fuzz.toml");
    let file = match test_config::from_toml(text, path) {
        Ok(f) => f,
        Err(e) => {
            let _ = format!("{e:#}");
            return;
        }
    };
    let settings = match Settings::resolve(TestArgs::default().or(file).with_defaults(), || 7) {
        Ok(s) => s,
        Err(e) => {
            let _ = format!("{e:#}");
            return;
        }
    };
    // config.toml replays the run: what resolved once resolves the same again.
    let written = toml::to_string(&settings.args).expect("resolved settings serialize");
    let again = test_config::from_toml(&written, Path::new("config.toml"))
        .expect("config.toml parses back");
    let replay = Settings::resolve(TestArgs::default().or(again).with_defaults(), || 8)
        .expect("config.toml resolves again");
    assert_eq!(replay.seed, settings.seed);
    assert_eq!(replay.workload, settings.workload);
    assert_eq!(replay.config.time_limit, settings.config.time_limit);
});
