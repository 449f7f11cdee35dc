//! `splitbrain check`: decide whether recorded histories are linearizable,
//! sequentially consistent or eventually consistent.

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use splitbrain_checker::{self as checker, Consistency, ModelKind, Options, Verdict};
use splitbrain_history::History;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit status for bad usage or unreadable input (Jepsen's).
pub const EXIT_BAD_INPUT: u8 = 254;

#[derive(Args, Debug)]
#[command(after_long_help = "\
Formats: a file ending in .edn is read as a Jepsen EDN history; anything else as
JSON Lines (one op per line); `-` reads JSON Lines from standard input.

Exit status: 0 every history valid, 1 any invalid, 2 any unknown (time limit) and
none invalid, 254 bad usage, unreadable input or an output file that could not
be written. A history with no client operation holds vacuously (exit 0, with a
warning). An invalid verdict wins over 254: with several files the readable ones are still checked and printed.
Valid means the level asked for with --consistency holds; for `all`, that the
history is linearizable.

Examples:
  splitbrain check --model register histories/register/stale-read.invalid.jsonl
  splitbrain check --model mutex --init '\"unlocked\"' histories/mutex/*.jsonl
  splitbrain check --format json --witness history.jsonl
  splitbrain check --model register --consistency all history.jsonl
  splitbrain check --model register --consistency causal history.jsonl
  splitbrain check --model set --consistency eventual history.jsonl
  splitbrain check --independent --time-limit 60 history.edn
  splitbrain check --model register --html report.html --junit junit.xml history.jsonl")]
pub struct CheckArgs {
    /// The sequential model every key must follow: register (read, write),
    /// cas-register (read, write, cas with value [expected, new]), mutex
    /// (acquire, release), set (add, read: the whole set as an array), counter
    /// (add n, read) or append (a string: read, write, append).
    #[arg(long, default_value = "cas-register", value_parser = parse_model)]
    pub model: ModelKind,

    /// The promise to check: linearizable (real-time order), sequential (each
    /// process's order, all keys as one object), causal (causal memory: each
    /// process sees the writes in an order that respects causality; register and
    /// cas-register with values written once per key), eventual (final reads
    /// converge on a value that was written) or all (each level's verdict, the
    /// strongest safety level that holds and convergence beside it; the exit
    /// status then says whether linearizability holds).
    #[arg(long, default_value = "linearizable", value_parser = parse_consistency)]
    pub consistency: Consistency,

    /// The value before the first op, as JSON (null means the key is absent).
    #[arg(
        long,
        value_name = "JSON",
        default_value = "null",
        value_parser = parse_json,
        allow_hyphen_values = true
    )]
    pub init: serde_json::Value,

    /// Read values as jepsen.independent [key value] tuples.
    #[arg(long)]
    pub independent: bool,

    /// Give up after this many seconds per file (all levels of --consistency all
    /// together), with verdict "unknown" (exit 2).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub time_limit: Option<Duration>,

    /// Give up with verdict "unknown" when the search's memory reaches this many GiB.
    #[arg(long, value_name = "GIB", default_value = "4", value_parser = parse_gib)]
    pub memory_limit: u64,

    /// Output format: text for people and CI logs, json for one object per file.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// For a valid history, print a linearization order.
    #[arg(long)]
    pub witness: bool,

    /// Write a self-contained HTML report (verdict, counterexample timeline,
    /// latency, throughput, faults) of the history to FILE (one history only).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Write JUnit XML to FILE: one test case per consistency level per history,
    /// failing with the counterexample.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Colour the text: auto (when stdout is a terminal and NO_COLOR is unset),
    /// always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// History files (.edn: Jepsen EDN; otherwise JSON Lines; -: standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour what goes to stdout.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// The checker's text, coloured when `color` says so.
pub fn text(report: &checker::Report, color: bool) -> String {
    let text = checker::render_text(report);
    if color {
        splitbrain_report::color::colorize(&text)
    } else {
        text
    }
}

/// Writes `contents` to `path`, naming the file when it cannot.
pub fn write_file(path: &std::path::Path, what: &str, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|e| format!("cannot write the {what} to {}: {e}", path.display()))
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse().map_err(|e: checker::UnknownName| e.to_string())
}

fn parse_consistency(s: &str) -> Result<Consistency, String> {
    s.parse().map_err(|e: checker::UnknownName| e.to_string())
}

/// The checker's error, with advice naming the flag that would fix it.
fn advice(e: &checker::CheckError) -> String {
    use checker::{CheckError, ModelError};
    match e {
        CheckError::Init { .. } => format!("{e} (set by --init)"),
        CheckError::Level { .. } => {
            format!("{e}; choose another level with --consistency")
        }
        CheckError::Op {
            problem:
                ModelError::UnknownFunction {
                    elsewhere: Some(model),
                    ..
                },
            ..
        } => format!("{e}: use --model {model}"),
        other => other.to_string(),
    }
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))
}

/// `s` as a positive number of `unit`s, for the limit `what`.
fn positive(s: &str, what: &str, unit: &str) -> Result<f64, String> {
    let x: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of {unit}"))?;
    if !(x.is_finite() && x > 0.0) {
        return Err(format!("the {what} must be a positive number of {unit}"));
    }
    Ok(x)
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs = positive(s, "time limit", "seconds")?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` seconds is too long a time limit"))
}

fn parse_gib(s: &str) -> Result<u64, String> {
    let gib = positive(s, "memory limit", "GiB")?;
    Ok((gib * (1u64 << 30) as f64) as u64)
}

/// What a path names, for telling whether two paths are one file: the canonical
/// path, or for a file not yet written its canonical directory and name.
fn identity(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(path.file_name()?))
}

/// Refuses output files that would overwrite an input history or each other,
/// before anything is read or written.
fn check_outputs(args: &CheckArgs) -> Result<(), String> {
    let outputs: Vec<(&str, &PathBuf)> = [("--html", &args.html), ("--junit", &args.junit)]
        .into_iter()
        .filter_map(|(flag, p)| Some((flag, p.as_ref()?)))
        .collect();
    for (n, (flag, out)) in outputs.iter().enumerate() {
        let Some(id) = identity(out) else { continue };
        for input in &args.files {
            if input.as_os_str() != "-" && identity(input).as_ref() == Some(&id) {
                return Err(format!(
                    "{flag} {} would overwrite the history {}: choose another file",
                    out.display(),
                    input.display()
                ));
            }
        }
        for (other_flag, other) in &outputs[n + 1..] {
            if identity(other).as_ref() == Some(&id) {
                return Err(format!(
                    "{flag} and {other_flag} name the same file {}: choose two files",
                    out.display()
                ));
            }
        }
    }
    Ok(())
}

pub fn run(args: CheckArgs) -> u8 {
    if args.html.is_some() && args.files.len() > 1 {
        eprintln!(
            "error: --html writes one report: give one history (got {})",
            args.files.len()
        );
        return EXIT_BAD_INPUT;
    }
    if let Err(e) = check_outputs(&args) {
        eprintln!("error: {e}");
        return EXIT_BAD_INPUT;
    }
    let color = args.format == Format::Text && args.color.enabled();
    let mut cases = Vec::new();
    let opts = Options {
        model: args.model,
        consistency: args.consistency,
        init: args.init.clone(),
        time_limit: args.time_limit,
        witness: args.witness,
        memory_limit: args.memory_limit,
        ..Options::default()
    };
    let mut verdict = Verdict::Valid;
    let mut bad_input = false;
    let stdout = std::io::stdout();
    for (n, path) in args.files.iter().enumerate() {
        let last = n + 1 == args.files.len();
        // A spinner on stderr for long checks; indicatif draws nothing when stderr
        // is not a terminal, so logs and pipes stay clean.
        let spinner = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(format!("reading {}", path.display()));
        spinner.enable_steady_tick(Duration::from_millis(120));
        let result = History::read_path(path)
            .and_then(|h| {
                if args.independent {
                    h.into_independent()
                } else {
                    Ok(h)
                }
            })
            .map_err(|e| e.to_string())
            .and_then(|h| {
                if h.pairs().is_empty() {
                    // Nothing can contradict a level, so every level holds, as
                    // Knossos and Porcupine judge it; but an empty file is more
                    // often a mistake than a finding, so say so.
                    spinner.suspend(|| {
                        eprintln!(
                            "warning: {}: no client operations, so every level holds vacuously",
                            h.source()
                        )
                    });
                }
                spinner.set_message(format!(
                    "checking {} ({} ops)",
                    path.display(),
                    h.pairs().len()
                ));
                checker::check(&h, &opts)
                    .map(|r| (h, r))
                    .map_err(|e| advice(&e))
            });
        spinner.finish_and_clear();
        // Written after the verdict is printed, as the JUnit XML is, so that a
        // failed write loses no verdict.
        let mut html_error = None;
        let result = result.map(|(h, report)| {
            if let Some(html) = &args.html {
                let data = splitbrain_report::ReportData::build(&h, &report, None);
                html_error =
                    write_file(html, "HTML report", &splitbrain_report::html::render(&data)).err();
            }
            if last {
                // The process is about to exit: freeing a million ops one by one
                // would take a tenth of a second for nothing.
                std::mem::forget(h);
            }
            report
        });
        let mut out = stdout.lock();
        if args.junit.is_some() {
            let name = path.display().to_string();
            match &result {
                Ok(report) => cases.extend(splitbrain_report::junit::cases(report, &name)),
                Err(e) => cases.push(splitbrain_report::junit::error_case(
                    &name,
                    args.consistency.name(),
                    e,
                )),
            }
        }
        match result {
            Ok(report) => {
                verdict = verdict.merge(report.verdict);
                match args.format {
                    Format::Text => {
                        let _ = write!(out, "{}", text(&report, color));
                    }
                    Format::Json => {
                        let _ = writeln!(
                            out,
                            "{}",
                            serde_json::to_string(&report).unwrap_or_default()
                        );
                    }
                }
            }
            Err(e) => {
                bad_input = true;
                match args.format {
                    Format::Text => eprintln!("error: {e}"),
                    Format::Json => {
                        let obj =
                            serde_json::json!({"file": path.display().to_string(), "error": e});
                        let _ = writeln!(out, "{obj}");
                        eprintln!("error: {e}");
                    }
                }
            }
        }
        if let Some(e) = html_error {
            eprintln!("error: {e}");
            bad_input = true;
        }
    }
    if let Some(junit) = &args.junit {
        let xml = splitbrain_report::junit::to_xml("splitbrain check", &cases);
        if let Err(e) = write_file(junit, "JUnit XML", &xml) {
            eprintln!("error: {e}");
            bad_input = true;
        }
    }
    // An invalid verdict is the news that matters most: it is never hidden by
    // another file's bad input.
    if bad_input && verdict != Verdict::Invalid {
        EXIT_BAD_INPUT
    } else {
        verdict.exit_code()
    }
}
