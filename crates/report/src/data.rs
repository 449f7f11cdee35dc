//! What a report shows, as data: built once from a history and its check, bounded in
//! size, serialized into the page and read by the SVG and JUnit writers.

use serde::Serialize;
use serde_json::Value;
use splitbrain_checker::{render_text, Explanation, OpRef, Report, Verdict};
use splitbrain_history::{History, Op, OpType, Process};
use std::collections::HashMap;

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

/// One consistency level's outcome.
#[derive(Debug, Clone)]
pub struct LevelResult<'a> {
    pub name: &'static str,
    pub verdict: Verdict,
    /// Set when the level holds only because a stronger one does.
    pub implied: bool,
    pub explanation: Option<&'a Explanation>,
    pub unknown_reason: Option<&'static str>,
}

/// The levels a report decided, strongest first: one for a single level, each of
/// linearizable, sequential and eventual for `all` (eventual only where the model has
/// it).
pub fn levels(report: &Report) -> Vec<LevelResult<'_>> {
    if report.consistency != "all" {
        return vec![LevelResult {
            name: report.consistency,
            verdict: report.verdict,
            implied: false,
            explanation: report.counterexample.as_ref(),
            unknown_reason: report.unknown_reason,
        }];
    }
    let mut out = Vec::new();
    for name in ["linearizable", "sequential", "eventual"] {
        if name == "eventual" && report.model == "mutex" {
            continue;
        }
        let ruled = report.ruled_out.iter().find(|r| r.consistency == name);
        let (verdict, explanation) = match ruled {
            Some(r) => (Verdict::Invalid, r.counterexample.as_ref()),
            None if report.undecided.contains(&name) => (Verdict::Unknown, None),
            None => (Verdict::Valid, None),
        };
        out.push(LevelResult {
            name,
            verdict,
            implied: name == "sequential"
                && verdict == Verdict::Valid
                && report.verdict == Verdict::Valid,
            explanation,
            unknown_reason: None,
        });
    }
    out
}

/// The report of one level alone, for text that says only what that level found.
pub fn level_report(report: &Report, level: &LevelResult<'_>) -> Report {
    let mut r = report.clone();
    r.consistency = level.name;
    r.verdict = level.verdict;
    r.strongest = None;
    r.ruled_out = Vec::new();
    r.undecided = Vec::new();
    r.counterexample = level.explanation.cloned();
    r.unknown_reason = level.unknown_reason.or(r.unknown_reason);
    r.witness = None;
    if report.consistency == "all" && level.name != "linearizable" {
        r.invalid_keys = Vec::new();
        r.unknown_keys = Vec::new();
    }
    r
}

/// The first line of the text verdict, without the file name.
pub fn headline(report: &Report) -> String {
    let text = render_text(&Report {
        ruled_out: Vec::new(),
        counterexample: None,
        witness: None,
        invalid_keys: Vec::new(),
        unknown_keys: Vec::new(),
        undecided: Vec::new(),
        ..report.clone()
    });
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix(report.file.as_str())
        .and_then(|r| r.strip_prefix(": "))
        .unwrap_or(first);
    // Drop the trailing "(model, N ops, T ms)".
    match rest.rfind(" (") {
        Some(i) if rest.ends_with(')') && rest[i..].contains(" ops") => rest[..i].to_string(),
        _ => rest.to_string(),
    }
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

#[derive(Debug, Serialize)]
pub struct Level {
    pub name: &'static str,
    /// `holds`, `implied`, `ruled out` or `undecided`.
    pub status: &'static str,
    /// The checker's text for this level: the explanation and the ASCII timeline.
    pub text: String,
}

/// An op as drawn.
#[derive(Debug, Clone, Serialize)]
pub struct TlOp {
    pub p: i64,
    /// Start and end on the time axis; no end: it never completed `ok`/`fail`/`info`.
    pub s: f64,
    pub e: Option<f64>,
    /// `ok`, `fail`, `info` or `pending`.
    pub o: &'static str,
    pub l: String,
    /// 1: in the shrunk counterexample; 2: the op that cannot be linearized.
    pub k: u8,
    /// The details shown on hover.
    pub d: String,
}

#[derive(Debug, Serialize)]
pub struct Timeline {
    pub ops: Vec<TlOp>,
    /// Ops the timeline could have drawn (on the counterexample's key).
    pub total: usize,
    pub key: Option<Value>,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct Shrunk {
    pub level: &'static str,
    pub ops: Vec<TlOp>,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub p: i64,
    pub l: String,
    pub o: &'static str,
    pub lines: String,
    /// The model state after this op.
    pub state: String,
}

/// Why final reads did not converge, for one key.
#[derive(Debug, Serialize)]
pub struct Divergence {
    pub level: &'static str,
    pub key: Option<String>,
    /// The final reads when they disagree: node, value, line.
    pub reads: Vec<(String, String, usize)>,
    /// Unwritten values, lost / unexpected / recovered elements, in words.
    pub notes: Vec<String>,
}

/// The most final reads, keys and elements listed per eventual violation.
const MAX_LISTED: usize = 20;

fn divergences(
    level: &'static str,
    c: &splitbrain_checker::EventualCounterexample,
) -> Vec<Divergence> {
    let list = |what: &str, vs: &[Value]| {
        let shown: Vec<String> = vs.iter().take(MAX_LISTED).map(|v| short(v, 40)).collect();
        let more = if vs.len() > MAX_LISTED {
            format!(" and {} more", vs.len() - MAX_LISTED)
        } else {
            String::new()
        };
        format!("{what}: {}{more}", shown.join(", "))
    };
    c.violations
        .iter()
        .take(MAX_LISTED)
        .map(|v| {
            let mut notes = Vec::new();
            if let Some(u) = &v.unwritten {
                notes.push(format!(
                    "final value {} was never written by an op that did not fail",
                    short(u, 60)
                ));
            }
            if !v.lost.is_empty() {
                notes.push(list(
                    "lost (acknowledged, missing from a final read)",
                    &v.lost,
                ));
            }
            if !v.unexpected.is_empty() {
                notes.push(list(
                    "unexpected (present, never added by an op that did not fail)",
                    &v.unexpected,
                ));
            }
            if !v.recovered.is_empty() {
                notes.push(list(
                    "recovered (indeterminate adds that made it)",
                    &v.recovered,
                ));
            }
            Divergence {
                level,
                key: v.key.as_ref().map(|k| short(k, 40)),
                reads: v
                    .disagree
                    .iter()
                    .take(MAX_LISTED * 5)
                    .map(|r| (r.node.clone(), short(&r.value, 80), r.line))
                    .collect(),
                notes,
            }
        })
        .collect()
}

/// The longest linearizable prefix, step by step, then the op that cannot follow.
#[derive(Debug, Serialize)]
pub struct Steps {
    pub prefix_len: usize,
    pub steps: Vec<Step>,
    pub culprit: Step,
    /// States the prefix could end in; the culprit is illegal in each.
    pub states: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub f: String,
    pub o: &'static str,
    /// Raw: `[t, ms]`; bucketed: `[t, p50, p95, max, count]`.
    pub points: Vec<Vec<f64>>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub raw: bool,
    /// The bucket width when not raw, in seconds.
    pub bucket_s: f64,
    pub series: Vec<Series>,
    pub points: usize,
}

#[derive(Debug, Serialize)]
pub struct Rate {
    pub bucket_s: f64,
    /// Per outcome: `[t, ops per second]`.
    pub series: Vec<(&'static str, Vec<[f64; 2]>)>,
}

#[derive(Debug, Serialize)]
pub struct Fault {
    pub f: String,
    pub s: f64,
    pub e: f64,
    pub v: String,
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
        let seconds = history.ops().iter().all(|o| o.time.is_some());
        let t0 = history
            .ops()
            .iter()
            .filter_map(|o| o.time)
            .min()
            .unwrap_or_default();
        Axis { seconds, t0 }
    }

    fn t(&self, history: &History, i: usize) -> f64 {
        if self.seconds {
            let time = history.ops()[i].time.unwrap_or_default();
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

fn op_label(inv: &Op, done: Option<&Op>) -> String {
    let ok = done.filter(|c| c.kind == OpType::Ok);
    match (inv.f.as_str(), ok) {
        ("read", Some(c)) => format!("read {}", short(&c.value, 24)),
        ("read", None) => "read ?".into(),
        ("cas", _) => match &inv.value {
            Value::Array(a) if a.len() == 2 => {
                format!("cas {}→{}", short(&a[0], 12), short(&a[1], 12))
            }
            v => format!("cas {}", short(v, 24)),
        },
        (f, _) if inv.value.is_null() => f.to_string(),
        (f, _) => format!("{f} {}", short(&inv.value, 24)),
    }
}

impl ReportData {
    pub fn build(history: &History, report: &Report, run: Option<&RunMeta>) -> ReportData {
        let axis = Axis::of(history);
        let ops = history.ops();
        let t_end = axis.end(history);
        let mut cuts = Vec::new();
        let by_line: HashMap<usize, usize> = history
            .pairs()
            .iter()
            .enumerate()
            .rev()
            .map(|(n, p)| (history.line(p.invoke), n))
            .collect();
        let tl_op = |pair: usize, k: u8| -> TlOp {
            let p = history.pairs()[pair];
            let inv = &ops[p.invoke];
            let done = p.completion.map(|c| &ops[c]);
            let s = axis.t(history, p.invoke);
            let e = p.completion.map(|c| axis.t(history, c));
            let o = done.map_or("pending", |c| c.kind.as_str());
            let l = op_label(inv, done);
            let mut d = format!("p{} {} → {o}", client(inv), l);
            if inv.is_final || done.is_some_and(|c| c.is_final) {
                d += " (final read)";
            }
            if let Some(c) = done {
                if c.value != inv.value && c.kind == OpType::Ok {
                    d += &format!(" (value {})", short(&c.value, 60));
                }
            }
            if let Some(key) = &inv.key {
                d += &format!("\nkey {}", key.to_json());
            }
            match p.completion {
                Some(c) => d += &format!("\nlines {}-{}", history.line(p.invoke), history.line(c)),
                None => d += &format!("\nline {} (never completed)", history.line(p.invoke)),
            }
            if let (true, Some(e)) = (axis.seconds, e) {
                d += &format!("\nt {s:.3} s, latency {:.2} ms", (e - s) * 1e3);
            }
            if let Some(n) = done.and_then(|c| c.node.as_ref()).or(inv.node.as_ref()) {
                d += &format!("\nnode {n}");
            }
            if let Some(err) = done.and_then(|c| c.error.as_ref()) {
                d += &format!("\nerror {}", short(err, 120));
            }
            TlOp {
                p: client(inv),
                s,
                e,
                o,
                l,
                k,
                d,
            }
        };

        // Levels, their text, their shrunk sub-histories.
        let results = levels(report);
        let mut level_views = Vec::new();
        let mut shrunk_views = Vec::new();
        let mut focus: Option<(Vec<usize>, Option<usize>, Option<Value>)> = None;
        let mut steps = None;
        let mut divergence_views = Vec::new();
        for lr in &results {
            let status = match (lr.verdict, lr.implied) {
                (Verdict::Valid, true) => "implied",
                (Verdict::Valid, false) => "holds",
                (Verdict::Invalid, _) => "ruled out",
                (Verdict::Unknown, _) => "undecided",
            };
            let mut text = render_text(&level_report(report, lr));
            if text.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                cuts.push(format!(
                    "{}: the checker's text, first {} kB of {} kB (`splitbrain check` prints it whole)",
                    lr.name,
                    MAX_TEXT / 1024,
                    text.len() / 1024
                ));
                text.truncate(end);
                text.push_str("\n…");
            }
            level_views.push(Level {
                name: lr.name,
                status,
                text,
            });
            let (shrunk, culprit, key): (&[OpRef], Option<&OpRef>, Option<Value>) =
                match lr.explanation {
                    Some(Explanation::Linearizable(c)) => (&c.shrunk, Some(&c.op), c.key.clone()),
                    Some(Explanation::Sequential(c)) => (&c.shrunk, None, None),
                    _ => (&[], None, None),
                };
            if let Some(Explanation::Eventual(c)) = lr.explanation {
                divergence_views.extend(divergences(lr.name, c));
            }
            if let Some(Explanation::Linearizable(c)) = lr.explanation {
                if steps.is_none() {
                    let step = |o: &OpRef, state: String| Step {
                        p: o.process,
                        l: o.label.clone(),
                        o: o.outcome,
                        lines: match o.end_line {
                            Some(e) => format!("{}-{}", o.line, e),
                            None => o.line.to_string(),
                        },
                        state,
                    };
                    steps = Some(Steps {
                        prefix_len: c.prefix_len,
                        steps: c
                            .prefix
                            .iter()
                            .zip(
                                c.prefix_states
                                    .iter()
                                    .map(|s| short(s, 80))
                                    .chain(std::iter::repeat_with(|| "?".to_string())),
                            )
                            .map(|(o, s)| step(o, s))
                            .collect(),
                        culprit: step(&c.op, "illegal".into()),
                        states: c.states.iter().map(|s| short(s, 80)).collect(),
                    });
                }
            }
            if shrunk.is_empty() {
                continue;
            }
            let culprit_pair = culprit.and_then(|c| by_line.get(&c.line).copied());
            let pairs: Vec<usize> = shrunk
                .iter()
                .filter_map(|o| by_line.get(&o.line).copied())
                .collect();
            // A counterexample too big to draw (shrinking ran out of time): draw the
            // ops nearest the culprit, the culprit always among them.
            let mut pairs = pairs;
            pairs.sort_unstable();
            pairs.dedup();
            let total_shrunk = pairs.len();
            if pairs.len() > MAX_SHRUNK {
                let at = culprit_pair
                    .and_then(|c| pairs.binary_search(&c).ok())
                    .unwrap_or(0);
                let lo = at
                    .saturating_sub(MAX_SHRUNK * 3 / 4)
                    .min(pairs.len() - MAX_SHRUNK);
                pairs = pairs[lo..lo + MAX_SHRUNK].to_vec();
            }
            let drawn: Vec<TlOp> = pairs
                .iter()
                .map(|&n| tl_op(n, if Some(n) == culprit_pair { 3 } else { 1 }))
                .collect();
            if total_shrunk > MAX_SHRUNK {
                cuts.push(format!(
                    "the {} counterexample's timeline draws the {MAX_SHRUNK} of its {} ops nearest the op that cannot be placed",
                    lr.name,
                    thousands(total_shrunk),
                ));
            }
            shrunk_views.push(Shrunk {
                level: lr.name,
                ops: drawn,
                total: total_shrunk,
            });
            if focus.is_none() {
                focus = Some((pairs, culprit_pair, key));
            }
        }

        // The history's timeline: a window around the counterexample.
        let key_of = |n: usize| {
            ops[history.pairs()[n].invoke]
                .key
                .as_ref()
                .map(|k| k.to_json())
        };
        let (focus_pairs, culprit_pair, focus_key) = focus.unwrap_or_default();
        let candidates: Vec<usize> = (0..history.pairs().len())
            .filter(|&n| focus_key.is_none() || key_of(n) == focus_key)
            .collect();
        let total = candidates.len();
        let limit = if focus_pairs.is_empty() {
            MAX_TIMELINE_OPS
        } else {
            CONTEXT_OPS
        };
        let mut chosen: Vec<usize> = if total <= limit {
            candidates.clone()
        } else {
            let center_pair = culprit_pair.or(focus_pairs.first().copied());
            let center = center_pair
                .and_then(|c| candidates.binary_search(&c).ok())
                .unwrap_or(0);
            let budget = limit.saturating_sub(focus_pairs.len().min(MAX_SHRUNK));
            // The ops nearest the culprit in time (a key's final reads, long after,
            // would otherwise squeeze the window into a sliver).
            let at = |n: usize| axis.t(history, history.pairs()[n].invoke);
            let t0 = at(candidates[center]);
            let mut near = candidates.clone();
            near.sort_by(|&a, &b| (at(a) - t0).abs().total_cmp(&(at(b) - t0).abs()));
            let mut w: Vec<usize> = near.into_iter().take(budget).collect();
            w.extend(focus_pairs.iter().take(MAX_SHRUNK));
            w.sort_unstable();
            w.dedup();
            w
        };
        chosen.sort_unstable();
        let focus_set: std::collections::HashSet<usize> = focus_pairs.iter().copied().collect();
        let tl_ops: Vec<TlOp> = chosen
            .iter()
            .map(|&n| {
                let k = match (Some(n) == culprit_pair, focus_set.contains(&n)) {
                    (true, _) => 3,
                    (false, true) => 1,
                    _ => 0,
                };
                tl_op(n, k)
            })
            .collect();
        let where_ = match (
            &focus_key,
            culprit_pair.is_some() || !focus_pairs.is_empty(),
        ) {
            (Some(k), _) => format!(" on key {k}"),
            _ => String::new(),
        };
        let note = if tl_ops.len() < total {
            let around = if focus_pairs.is_empty() {
                "the first ones"
            } else {
                "a window around the counterexample, and all of its ops"
            };
            let note = format!(
                "{} of {} ops{where_}: {around}",
                thousands(tl_ops.len()),
                thousands(total)
            );
            cuts.push(format!("the history's timeline draws {note}"));
            note
        } else {
            format!("all {} ops{where_}", thousands(total))
        };

        // Latency and throughput, with faults.
        let mut latency = None;
        let mut rate = None;
        if axis.seconds {
            let mut by_series: Vec<(SeriesKey, Vec<[f64; 2]>)> = Vec::new();
            let mut index: HashMap<SeriesKey, usize> = HashMap::new();
            let mut points = 0;
            for p in history.pairs() {
                let Some(c) = p.completion else { continue };
                let inv = &ops[p.invoke];
                let s = axis.t(history, p.invoke);
                let ms = (axis.t(history, c) - s) * 1e3;
                let key = (inv.f.clone(), ops[c].kind.as_str());
                let at = *index.entry(key.clone()).or_insert_with(|| {
                    by_series.push((key, Vec::new()));
                    by_series.len() - 1
                });
                by_series[at].1.push([s, ms]);
                points += 1;
            }
            by_series.sort_by(|a, b| a.0.cmp(&b.0));
            let raw = points <= MAX_RAW_POINTS;
            let width = (t_end / BUCKETS as f64).max(1e-3);
            let series = by_series
                .into_iter()
                .map(|((f, o), pts)| Series {
                    f,
                    o,
                    points: if raw {
                        pts.iter().map(|p| p.to_vec()).collect()
                    } else {
                        quantiles(&pts, width)
                    },
                })
                .collect();
            if !raw {
                cuts.push(format!(
                    "latency: {} ops drawn as median, 95th percentile and maximum per {:.2} s bucket",
                    thousands(points),
                    width
                ));
            }
            latency = Some(Latency {
                raw,
                bucket_s: width,
                series,
                points,
            });
            let mut counts: Vec<(&'static str, Vec<f64>)> = ["ok", "fail", "info"]
                .into_iter()
                .map(|o| (o, vec![0.0; BUCKETS + 1]))
                .collect();
            for p in history.pairs() {
                let Some(c) = p.completion else { continue };
                let b = ((axis.t(history, c) / width) as usize).min(BUCKETS);
                if let Some(row) = counts.iter_mut().find(|(o, _)| *o == ops[c].kind.as_str()) {
                    row.1[b] += 1.0;
                }
            }
            rate = Some(Rate {
                bucket_s: width,
                series: counts
                    .into_iter()
                    .filter(|(_, c)| c.iter().any(|&n| n > 0.0))
                    .map(|(o, c)| {
                        let pts = c
                            .iter()
                            .enumerate()
                            .map(|(b, n)| [((b as f64 + 0.5) * width).min(t_end), n / width])
                            .collect();
                        (o, pts)
                    })
                    .collect(),
            });
        }
        let faults = faults(history, &axis, t_end, &mut cuts);

        ReportData {
            meta: Meta {
                file: report.file.clone(),
                model: report.model,
                consistency: report.consistency,
                verdict: match report.verdict {
                    Verdict::Valid => "valid",
                    Verdict::Invalid => "invalid",
                    Verdict::Unknown => "unknown",
                },
                headline: headline(report),
                why: level_views
                    .iter()
                    .filter(|l| l.status == "ruled out")
                    .find_map(|l| {
                        l.text
                            .lines()
                            .skip(1)
                            .map(str::trim)
                            .find(|x| {
                                !x.is_empty()
                                    && !x.starts_with("key ")
                                    && !x.starts_with("invalid keys")
                                    && !x.starts_with("undecided keys")
                            })
                            .map(|x| format!("{}: {x}", l.name))
                    }),
                strongest: report.strongest,
                ops: report.ops,
                keys: report.keys,
                processes: history.process_count(),
                elapsed_ms: report.elapsed_ms.as_secs_f64() * 1e3,
                invalid_keys: report.invalid_keys.len(),
                time_unit: if axis.seconds { "s" } else { "op" },
                t_end,
            },
            run: run.cloned(),
            levels: level_views,
            timeline: Timeline {
                ops: tl_ops,
                total,
                key: focus_key,
                note,
            },
            shrunk: shrunk_views,
            steps,
            divergences: divergence_views,
            latency,
            rate,
            faults,
            cuts,
        }
    }
}

/// A latency series: the op's `f` and its outcome.
type SeriesKey = (String, &'static str);

/// `12345` as `12,345`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Per bucket of `width` seconds: `[t, p50, p95, max, count]`. At most
/// `BUCKETS + 1` points, whatever the times.
fn quantiles(pts: &[[f64; 2]], width: f64) -> Vec<Vec<f64>> {
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS + 1];
    for p in pts {
        buckets[((p[0] / width) as usize).min(BUCKETS)].push(p[1]);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(b, mut v)| {
            v.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
            vec![
                (b as f64 + 0.5) * width,
                q(0.5),
                q(0.95),
                v[v.len() - 1],
                v.len() as f64,
            ]
        })
        .collect()
}

/// Fault intervals from the nemesis ops: `start-X` to the next `stop-X`; a fault
/// never stopped lasts to the end; other nemesis ops are instants.
fn faults(history: &History, axis: &Axis, t_end: f64, cuts: &mut Vec<String>) -> Vec<Fault> {
    let mut out: Vec<Fault> = Vec::new();
    // Several starts of one kind before its stops: each stop ends the oldest.
    let mut open: HashMap<String, std::collections::VecDeque<usize>> = HashMap::new();
    let mut count = 0;
    for (i, op) in history.ops().iter().enumerate() {
        // Jepsen's nemesis records an invoke and then an info; the info is when the
        // fault took effect.
        if !op.is_nemesis() || op.kind == OpType::Invoke {
            continue;
        }
        let t = axis.t(history, i);
        let f = match op.f.as_str() {
            "start" => "start-fault",
            "stop" => "stop-fault",
            f => f,
        };
        if let Some(name) = f.strip_prefix("start-") {
            count += 1;
            if out.len() < MAX_FAULTS {
                open.entry(name.to_string())
                    .or_default()
                    .push_back(out.len());
                out.push(Fault {
                    f: name.to_string(),
                    s: t,
                    e: t_end,
                    v: short(&op.value, 200),
                });
            }
        } else if let Some(name) = f.strip_prefix("stop-") {
            if let Some(at) = open.get_mut(name).and_then(|q| q.pop_front()) {
                out[at].e = t;
            }
        } else {
            count += 1;
            if out.len() < MAX_FAULTS {
                out.push(Fault {
                    f: op.f.clone(),
                    s: t,
                    e: t,
                    v: short(&op.value, 200),
                });
            }
        }
    }
    if count > out.len() {
        cuts.push(format!(
            "the nemesis timeline draws {} of {count} faults",
            out.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
