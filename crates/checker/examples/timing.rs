//! Times the phases of `check` on one JSON Lines file: read, parse and pair, check
//! (with and without shrinking). `cargo run --release --example timing -- FILE`
use splitbrain_checker::{check, Options};
use std::time::{Duration, Instant};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: timing FILE.jsonl");
        std::process::exit(2);
    };
    let t = Instant::now();
    let text = std::fs::read_to_string(&path).expect("readable file");
    eprintln!("read        {:?} {}", t.elapsed(), hwm());
    let t = Instant::now();
    let h = splitbrain_history::jsonl::parse(&path, &text).expect("valid history");
    eprintln!("parse+pair  {:?} {}", t.elapsed(), hwm());
    let t = Instant::now();
    let quick = Options {
        shrink_time: Duration::ZERO,
        ..Options::default()
    };
    let r = check(&h, &quick).expect("fits the model");
    eprintln!(
        "check       {:?} ({:?}, no shrinking)",
        t.elapsed(),
        r.verdict
    );
    eprintln!("            {}", hwm());
    let t = Instant::now();
    let r = check(&h, &Options::default()).expect("fits the model");
    let shrunk = r
        .counterexample
        .as_ref()
        .and_then(|c| c.linearizable())
        .map_or(0, |c| c.shrunk.len());
    eprintln!(
        "check       {:?} ({:?}, shrunk to {shrunk} ops)",
        t.elapsed(),
        r.verdict
    );
}

/// Peak and current resident memory so far (Linux), for seeing which phase grows it.
fn hwm() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}
