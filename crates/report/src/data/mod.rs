//! What a report shows, as data: built once from a history and its check, bounded in
//! size, serialized into the page and read by the SVG and JUnit writers.
//!
//! [`ReportData::build`] runs four independent phases, one module each: the
//! levels (`levels.rs`: status, text, shrunk counterexamples, steps, divergences,
//! lost adds),
//! the history's timeline around the first counterexample (`timeline.rs`), latency
//! and rate (`latency.rs`) and the faults (`faults.rs`). Each says what it cut.

mod faults;
mod latency;
mod levels;
mod timeline;

pub use faults::Fault;
pub use latency::{Latency, Rate, Series};
pub use levels::{
    headline, level_report, levels, why_line, Divergence, Level, LevelResult, LostRow, LostTable,
    Shrunk, Step, Steps,
};
pub use timeline::{Timeline, TlOp};

use serde::Serialize;
use serde_json::Value;
use splitbrain_checker::{Report, Verdict};
use splitbrain_history::{History, Op, Process};

/// The most ops the page's timeline draws (the size bound).
pub const MAX_TIMELINE_OPS: usize = 1500;
/// Around a counterexample the timeline draws this many ops of its key (plus the
/// counterexample's own): enough context to read, few enough to see each bar.
pub const CONTEXT_OPS: usize = 160;
/// Up to this many completed ops, latency is drawn point by point; above it, as
/// per-bucket quantiles.
pub const MAX_RAW_POINTS: usize = 4000;
/// Time buckets for downsampled latency and for throughput.
pub const BUCKETS: usize = 240;
/// The most of one level's checker text the page holds (model states can be long).
pub const MAX_TEXT: usize = 64 * 1024;
/// The most fault intervals drawn.
pub const MAX_FAULTS: usize = 500;
/// The most ops drawn in a shrunk counterexample's timeline.
pub const MAX_SHRUNK: usize = 200;
/// The most lost acknowledged adds the page lists (results.json lists up to
/// 1,000, and counts them all).
pub const MAX_LOST_ROWS: usize = 100;

/// What `splitbrain test` knows about a run beyond its history.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    /// The test's name in the store.
    pub test: String,
    /// The run's timestamp, e.g. `20261122T063012.123Z`.
    pub started: String,
    /// The run's counts (results.json's `run`).
    pub summary: Value,
}

#[derive(Debug, Serialize)]
pub struct Meta {
    pub file: String,
    pub model: &'static str,
    pub consistency: &'static str,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    pub headline: String,
    /// The first line of the first explanation (e.g. `cannot linearize: p2 read 1 ...`).
    pub why: Option<String>,
    pub strongest: Option<&'static str>,
    pub ops: usize,
    pub keys: usize,
    pub processes: usize,
    pub elapsed_ms: f64,
    pub invalid_keys: usize,
    /// `s` when ops carry times (the axes are seconds since the test began), `op`
    /// when they do not (the axes are op positions in the file).
    pub time_unit: &'static str,
    pub t_end: f64,
}

/// Everything the page draws.
#[derive(Debug, Serialize)]
pub struct ReportData {
    pub meta: Meta,
    pub run: Option<RunMeta>,
    pub levels: Vec<Level>,
    pub timeline: Timeline,
    pub shrunk: Vec<Shrunk>,
    pub steps: Option<Steps>,
    pub divergences: Vec<Divergence>,
    /// A set's lost acknowledged adds, the first acknowledged.
    pub lost: Option<LostTable>,
    pub latency: Option<Latency>,
    pub rate: Option<Rate>,
    pub faults: Vec<Fault>,
    /// What was left out to keep the page small, in words.
    pub cuts: Vec<String>,
}

fn short(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn client(op: &Op) -> i64 {
    match op.process {
        Process::Client(p) => p,
        Process::Nemesis => -1,
    }
}

struct Axis {
    seconds: bool,
    /// The earliest time in the history: times are drawn from it, whatever clock
    /// stamped them (nanoseconds since the test began, or since the epoch).
    t0: i64,
}

impl Axis {
    fn of(history: &History) -> Axis {
        let seconds = history.ops().iter().all(|o| o.time().is_some());
        let t0 = history
            .ops()
            .iter()
            .filter_map(|o| o.time())
            .min()
            .unwrap_or_default();
        Axis { seconds, t0 }
    }

    fn t(&self, history: &History, i: usize) -> f64 {
        if self.seconds {
            let time = history.ops()[i].time().unwrap_or_default();
            time.saturating_sub(self.t0) as f64 / 1e9
        } else {
            i as f64
        }
    }

    /// The latest point on the axis. Not the last op's: times need not increase.
    fn end(&self, history: &History) -> f64 {
        (0..history.ops().len())
            .map(|i| self.t(history, i))
            .fold(0.0, f64::max)
    }
}

impl ReportData {
    pub fn build(history: &History, report: &Report, run: Option<&RunMeta>) -> ReportData {
        let axis = Axis::of(history);
        let t_end = axis.end(history);
        let draw = timeline::OpDrawer::new(history, &axis);
        // The phases in the order the page lists what they cut.
        let mut cuts = Vec::new();
        let views = levels::views(report, &draw, &mut cuts);
        let timeline = timeline::timeline(&draw, views.focus, &mut cuts);
        let latency = latency::latency(history, &axis, t_end, &mut cuts);
        let rate = latency::rate(history, &axis, t_end);
        let faults = faults::faults(history, &axis, t_end, &mut cuts);
        ReportData {
            meta: meta(history, report, &axis, t_end, &views.levels),
            run: run.cloned(),
            levels: views.levels,
            timeline,
            shrunk: views.shrunk,
            steps: views.steps,
            divergences: views.divergences,
            lost: views.lost,
            latency,
            rate,
            faults,
            cuts,
        }
    }
}

/// The page's header: the verdict, why (from the first level ruled out), counts.
fn meta(history: &History, report: &Report, axis: &Axis, t_end: f64, levels: &[Level]) -> Meta {
    Meta {
        file: report.file.clone(),
        model: report.model,
        consistency: report.consistency,
        verdict: match report.verdict {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        },
        headline: headline(report),
        why: levels
            .iter()
            .filter(|l| l.status == "ruled out")
            .find_map(|l| why_line(&l.text).map(|x| format!("{}: {x}", l.name))),
        strongest: report.strongest,
        ops: report.ops,
        keys: report.keys,
        processes: history.process_count(),
        elapsed_ms: report.elapsed_ms.as_secs_f64() * 1e3,
        invalid_keys: report.invalid_keys.len(),
        time_unit: if axis.seconds { "s" } else { "op" },
        t_end,
    }
}

/// `12345` as `12,345`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use splitbrain_history::History;

    /// A history from JSON Lines, for the phases' tests.
    pub(super) fn history(lines: &str) -> History {
        splitbrain_history::jsonl::parse("t.jsonl", lines).expect("a well-formed history")
    }

    #[test]
    fn the_axis_counts_seconds_from_the_earliest_time_or_op_positions_without_times() {
        let h = history(
            r#"{"process":0,"type":"invoke","f":"read","value":null,"time":2000000000}
{"process":0,"type":"ok","f":"read","value":1,"time":5000000000}
{"process":1,"type":"invoke","f":"read","value":null,"time":3000000000}
{"process":1,"type":"ok","f":"read","value":1,"time":4000000000}"#,
        );
        let axis = super::Axis::of(&h);
        assert!(axis.seconds);
        assert_eq!(axis.t(&h, 0), 0.0);
        assert_eq!(axis.t(&h, 2), 1.0);
        // The latest time, not the last op's.
        assert_eq!(axis.end(&h), 3.0);
        let h = history(
            r#"{"process":0,"type":"invoke","f":"read","value":null}
{"process":0,"type":"ok","f":"read","value":1}"#,
        );
        let axis = super::Axis::of(&h);
        assert!(!axis.seconds);
        assert_eq!(axis.t(&h, 1), 1.0);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
