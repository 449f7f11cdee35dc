//! Re-renders a run's report.html, latency.svg and rate.svg in place (after a change
//! to the report, say), re-checking its history with the model and level that
//! results.json names.
//!
//! ```text
//! cargo run --release -p splitbrain-report --example rerender -- store/latest
//! ```

use splitbrain_checker::{check, Options};
use splitbrain_history::History;
use splitbrain_report::{write_run_files, RunMeta};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: rerender RUN_DIR")?);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json"))?)?;
    let history = History::read_path(&dir.join("history.jsonl"))?;
    let opts = Options {
        model: results["report"]["model"]
            .as_str()
            .unwrap_or("cas-register")
            .parse()?,
        consistency: results["report"]["consistency"]
            .as_str()
            .unwrap_or("linearizable")
            .parse()?,
        ..Options::default()
    };
    let report = check(&history, &opts)?;
    let meta = RunMeta {
        test: results["test"].as_str().unwrap_or_default().to_string(),
        started: results["started"].as_str().unwrap_or_default().to_string(),
        summary: results["run"].clone(),
    };
    write_run_files(&dir, &history, &report, Some(&meta))?;
    println!("{}", dir.join("report.html").display());
    Ok(())
}
