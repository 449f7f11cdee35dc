//! Checks one JSON Lines file at one consistency level and prints the verdict, the
//! time the check took (parsing excluded) and the strongest level for `all`. What
//! `scripts/bench-consistency` runs, so that the figures measure the checker alone.
//!
//! ```text
//! cargo run --release -p splitbrain-checker --example consistency -- \
//!     --model register --consistency sequential [--time-limit SECS] FILE
//! ```

use splitbrain_checker::{check, render_text, Options};
use std::time::{Duration, Instant};

fn main() {
    let mut opts = Options::default();
    let mut file = None;
    let mut text = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--model" => opts.model = val().parse().unwrap_or_else(|e| usage(&format!("{e}"))),
            "--consistency" => {
                opts.consistency = val().parse().unwrap_or_else(|e| usage(&format!("{e}")))
            }
            "--init" => {
                opts.init = serde_json::from_str(&val()).unwrap_or_else(|e| usage(&e.to_string()))
            }
            "--time-limit" => {
                let secs: f64 = val().parse().unwrap_or_else(|_| usage("seconds"));
                opts.time_limit = Some(Duration::from_secs_f64(secs));
            }
            "--text" => text = true,
            _ => file = Some(a),
        }
    }
    let file = file.unwrap_or_else(|| usage("no FILE"));
    let body = std::fs::read_to_string(&file).expect("readable file");
    let h = splitbrain_history::jsonl::parse(&file, &body).expect("valid history");
    let t = Instant::now();
    let r = check(&h, &opts).expect("fits the model");
    let took = t.elapsed();
    if text {
        print!("{}", render_text(&r));
    }
    println!(
        "{} {} {} ops: valid={} strongest={} in {:.3} s",
        file,
        r.consistency,
        r.ops,
        serde_json::to_string(&r.verdict).unwrap_or_default(),
        r.strongest.unwrap_or("-"),
        took.as_secs_f64()
    );
    std::process::exit(i32::from(r.verdict.exit_code()));
}

fn usage(why: &str) -> ! {
    eprintln!("{why}\nusage: consistency [--model M] [--consistency L] [--init JSON] [--time-limit SECS] [--text] FILE");
    std::process::exit(254)
}
