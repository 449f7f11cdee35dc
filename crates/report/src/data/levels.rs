//! The levels phase: per consistency level, its status and the checker's text;
//! the shrunk counterexamples drawn as timelines; the longest linearizable prefix
//! step by step; the final reads that did not converge. It also picks the ops the
//! history's timeline is centred on (the first counterexample drawn).

use super::timeline::{Focus, OpDrawer, TlOp};
use super::{short, thousands, MAX_LOST_ROWS, MAX_SHRUNK, MAX_TEXT};
use serde::Serialize;
use serde_json::Value;
use splitbrain_checker::{
    render_text, Counterexample, EventualCounterexample, Explanation, OpRef, Report, Verdict,
    VersionCounterexample,
};

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

/// The levels a report decided, strongest first: one for a single level, each level
/// the checker decided for `all` (linearizable, sequential, causal where the history
/// allows it, eventual where the model has it).
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
    // The checker's own list for `all` (check_all always fills it): every level of
    // the lattice it decided, causal included. A level it did not check (causal
    // with values written twice) has no verdict and no row; the text says why.
    report
        .levels
        .iter()
        .filter_map(|l| {
            Some(LevelResult {
                name: l.consistency,
                verdict: l.verdict?,
                implied: l.implied_by.is_some(),
                explanation: l.counterexample.as_ref(),
                unknown_reason: None,
            })
        })
        .collect()
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

/// The line of a level's checker text that says why it failed: the first one after
/// the verdict that is not a list of keys, nor what the store's versions decided
/// or contradicted.
pub fn why_line(text: &str) -> Option<&str> {
    text.lines().skip(1).map(str::trim).find(|l| {
        !l.is_empty()
            && !l.starts_with("key ")
            && !l.starts_with("invalid keys")
            && !l.starts_with("undecided keys")
            && !l.starts_with("decided from the store's versions")
            && !l.starts_with("the store's versions contradict")
    })
}

#[derive(Debug, Serialize)]
pub struct Level {
    pub name: &'static str,
    /// `holds`, `implied`, `ruled out` or `undecided`.
    pub status: &'static str,
    /// The checker's text for this level: the explanation and the ASCII timeline.
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Shrunk {
    pub level: &'static str,
    pub ops: Vec<TlOp>,
    pub total: usize,
    /// For a cycle found from the store's versions: its edges between the ops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Cycle>,
}

/// A cycle of dependencies from the store's versions, drawn as arrows between the
/// ops of a [`Shrunk`] timeline.
#[derive(Debug, Serialize)]
pub struct Cycle {
    /// Elle's name for it, e.g. `G-single-realtime`.
    pub anomaly: String,
    /// What the verdict rests on: `write order taken from the store's versions`.
    pub assumption: &'static str,
    /// In cycle order; each edge's `to` is the next edge's `from`.
    pub edges: Vec<CycleEdge>,
}

#[derive(Debug, Serialize)]
pub struct CycleEdge {
    /// Indices into the timeline's `ops`.
    pub from: usize,
    pub to: usize,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub kind: &'static str,
    /// The checker's reason, with file lines.
    pub why: String,
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

/// The longest linearizable prefix, step by step, then the op that cannot follow.
#[derive(Debug, Serialize)]
pub struct Steps {
    pub prefix_len: usize,
    pub steps: Vec<Step>,
    pub culprit: Step,
    /// States the prefix could end in; the culprit is illegal in each.
    pub states: Vec<String>,
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

/// The acknowledged adds a set lost, as a table: the first level ruled out that
/// lists them (with `all`, every level ruled out by them lists the same).
#[derive(Debug, Serialize)]
pub struct LostTable {
    pub level: &'static str,
    /// Every lost element, over all keys.
    pub total: usize,
    /// The first acknowledged (at most [`MAX_LOST_ROWS`]).
    pub rows: Vec<LostRow>,
}

/// One lost element: what the checker's `LostAdd` says, as the page shows it.
#[derive(Debug, Serialize)]
pub struct LostRow {
    pub element: String,
    pub key: Option<String>,
    /// `p3`, or `initial` for an initial member.
    pub process: String,
    /// The acknowledgement's time in seconds, as the history records it.
    pub time_s: Option<f64>,
    pub line: Option<usize>,
    pub node: Option<String>,
    /// The nodes whose final reads miss it.
    pub missing_from: String,
}

/// What the levels phase gives the page.
#[derive(Debug, Default)]
pub(super) struct LevelViews {
    pub levels: Vec<Level>,
    pub shrunk: Vec<Shrunk>,
    pub steps: Option<Steps>,
    pub divergences: Vec<Divergence>,
    pub lost: Option<LostTable>,
    /// The first counterexample drawn, which the history's timeline centres on.
    pub focus: Focus,
}

/// Each level's view, in the order of [`levels`]. What it cuts goes to `cuts`.
pub(super) fn views(report: &Report, draw: &OpDrawer<'_>, cuts: &mut Vec<String>) -> LevelViews {
    let mut out = LevelViews::default();
    let mut focus = None;
    for lr in &levels(report) {
        out.levels.push(level(report, lr, cuts));
        if let Some(Explanation::Eventual(c)) = lr.explanation {
            out.divergences.extend(divergences(lr.name, c));
            if out.lost.is_none() && c.lost_count > 0 {
                out.lost = Some(lost_table(lr.name, c, cuts));
            }
        }
        if let Some(Explanation::Linearizable(c)) = lr.explanation {
            if out.steps.is_none() {
                out.steps = Some(steps(c));
            }
        }
        if let Some((view, f)) = shrunk(lr, draw, cuts) {
            out.shrunk.push(view);
            focus.get_or_insert(f);
        }
    }
    out.focus = focus.unwrap_or_default();
    out
}

/// A level's status and its checker text, cut at [`MAX_TEXT`].
fn level(report: &Report, lr: &LevelResult<'_>, cuts: &mut Vec<String>) -> Level {
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
    Level {
        name: lr.name,
        status,
        text,
    }
}

/// The longest linearizable prefix with the model state after each op.
fn steps(c: &Counterexample) -> Steps {
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
    Steps {
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
    }
}

/// A level's shrunk counterexample as a timeline (at most [`MAX_SHRUNK`] ops, the
/// culprit always among them), and what the history's timeline should centre on.
/// `None` when the level has no counterexample with ops.
fn shrunk(
    lr: &LevelResult<'_>,
    draw: &OpDrawer<'_>,
    cuts: &mut Vec<String>,
) -> Option<(Shrunk, Focus)> {
    let (shrunk, culprit, key): (&[OpRef], Option<&OpRef>, Option<Value>) = match lr.explanation {
        Some(Explanation::Linearizable(c)) => (&c.shrunk, Some(&c.op), c.key.clone()),
        Some(Explanation::Sequential(c)) => (&c.shrunk, None, None),
        Some(Explanation::Versions(c)) => (&c.ops, None, c.key.clone()),
        _ => (&[], None, None),
    };
    if shrunk.is_empty() {
        return None;
    }
    let culprit_pair = culprit.and_then(|c| draw.pair_at(c.line));
    let mut pairs: Vec<usize> = shrunk.iter().filter_map(|o| draw.pair_at(o.line)).collect();
    // A counterexample too big to draw (shrinking ran out of time): draw the
    // ops nearest the culprit, the culprit always among them.
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
    let mut drawn: Vec<TlOp> = pairs
        .iter()
        .map(|&n| draw.op(n, if Some(n) == culprit_pair { 3 } else { 1 }))
        .collect();
    let cycle = match lr.explanation {
        Some(Explanation::Versions(c)) => Some(cycle(c, draw, &pairs, &mut drawn)),
        _ => None,
    };
    if total_shrunk > MAX_SHRUNK {
        cuts.push(format!(
            "the {} counterexample's timeline draws the {MAX_SHRUNK} of its {} ops nearest the op that cannot be placed",
            lr.name,
            thousands(total_shrunk),
        ));
    }
    let view = Shrunk {
        level: lr.name,
        ops: drawn,
        total: total_shrunk,
        cycle,
    };
    let focus = Focus {
        pairs,
        culprit: culprit_pair,
        key,
    };
    Some((view, focus))
}

/// A versions cycle's edges between the drawn ops (`pairs[k]` is `drawn[k]`), and
/// each op's version on its label and in its details.
fn cycle(
    c: &VersionCounterexample,
    draw: &OpDrawer<'_>,
    pairs: &[usize],
    drawn: &mut [TlOp],
) -> Cycle {
    let at = |o: &OpRef| {
        draw.pair_at(o.line)
            .and_then(|p| pairs.binary_search(&p).ok())
    };
    for (o, v) in c.ops.iter().zip(&c.versions) {
        if let Some(k) = at(o) {
            if let Some(v) = v {
                drawn[k].l.push_str(&format!(" · v{v}"));
            }
            let v = v.map_or("the initial value".to_string(), |v| format!("version {v}"));
            drawn[k].d.push_str(&format!("\n{v}"));
        }
    }
    let edges = c
        .steps
        .iter()
        .enumerate()
        .filter_map(|(k, s)| {
            let to = &c.ops[(k + 1) % c.ops.len()];
            Some(CycleEdge {
                from: at(&c.ops[k])?,
                to: at(to)?,
                kind: s.dependency.short(),
                why: s.why.clone(),
            })
        })
        .collect();
    Cycle {
        anomaly: c.anomaly.clone(),
        assumption: c.assumption,
        edges,
    }
}

/// The first lost elements, by acknowledgement, as rows; what was left out goes
/// to `cuts`.
fn lost_table(
    level: &'static str,
    c: &EventualCounterexample,
    cuts: &mut Vec<String>,
) -> LostTable {
    let rows: Vec<LostRow> = c
        .lost
        .iter()
        .take(MAX_LOST_ROWS)
        .map(|l| LostRow {
            element: short(&l.element, 40),
            key: l.key.as_ref().map(|k| short(k, 40)),
            process: match (l.initial, l.process) {
                (true, _) => "initial".to_string(),
                (false, Some(p)) => format!("p{p}"),
                (false, None) => "?".to_string(),
            },
            time_s: l.time.map(|t| t as f64 / 1e9),
            line: l.line,
            node: l.node.clone(),
            missing_from: l.missing_from.join(", "),
        })
        .collect();
    if c.lost_count > rows.len() {
        cuts.push(format!(
            "lost acknowledged adds: the first {} of {} by acknowledgement (results.json lists the first {})",
            thousands(rows.len()),
            thousands(c.lost_count),
            thousands(c.lost.len()),
        ));
    }
    LostTable {
        level,
        total: c.lost_count,
        rows,
    }
}

/// The most final reads, keys and elements listed per eventual violation.
const MAX_LISTED: usize = 20;

fn divergences(level: &'static str, c: &EventualCounterexample) -> Vec<Divergence> {
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

#[cfg(test)]
mod tests {
    use super::super::{tests::history, timeline::OpDrawer, Axis};
    use super::{views, why_line};
    use splitbrain_checker::{check, Consistency, ModelKind, Options};

    const STALE_READ: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
{"process":1,"type":"invoke","f":"write","value":2}
{"process":1,"type":"ok","f":"write","value":2}
{"process":2,"type":"invoke","f":"read","value":null}
{"process":2,"type":"ok","f":"read","value":1}"#;

    fn report(
        consistency: Consistency,
    ) -> (splitbrain_history::History, splitbrain_checker::Report) {
        let h = history(STALE_READ);
        let opts = Options {
            model: ModelKind::Register,
            consistency,
            ..Options::default()
        };
        let r = check(&h, &opts).expect("a register history");
        (h, r)
    }

    #[test]
    fn a_linearizability_violation_gets_its_steps_its_shrunk_timeline_and_the_focus() {
        let (h, r) = report(Consistency::Linearizable);
        let axis = Axis::of(&h);
        let mut cuts = Vec::new();
        let v = views(&r, &OpDrawer::new(&h, &axis), &mut cuts);
        let levels: Vec<(&str, &str)> = v.levels.iter().map(|l| (l.name, l.status)).collect();
        assert_eq!(levels, [("linearizable", "ruled out")]);
        let steps = v.steps.expect("the prefix step by step");
        assert_eq!(steps.culprit.l, "read 1");
        assert_eq!(steps.culprit.lines, "5-6");
        assert_eq!(steps.culprit.state, "illegal");
        assert_eq!(v.shrunk.len(), 1);
        let culprit: Vec<&str> = v.shrunk[0]
            .ops
            .iter()
            .filter(|o| o.k == 3)
            .map(|o| o.l.as_str())
            .collect();
        assert_eq!(culprit, ["read 1"]);
        assert_eq!(v.focus.culprit, Some(2));
        assert!(v.focus.pairs.contains(&2));
        assert!(v.divergences.is_empty());
        assert!(cuts.is_empty());
    }

    #[test]
    fn all_levels_are_listed_strongest_first() {
        let (h, r) = report(Consistency::All);
        let axis = Axis::of(&h);
        let v = views(&r, &OpDrawer::new(&h, &axis), &mut Vec::new());
        let names: Vec<&str> = v.levels.iter().map(|l| l.name).collect();
        assert_eq!(names, ["linearizable", "sequential", "causal", "eventual"]);
        assert_eq!(v.levels[0].status, "ruled out");
    }

    #[test]
    fn the_why_line_skips_lists_of_keys() {
        let text =
            "f: NOT linearizable\n  invalid keys: a\n\n  key a\n  cannot linearize: p2 read 1\n";
        assert_eq!(why_line(text), Some("cannot linearize: p2 read 1"));
        assert_eq!(why_line("f: linearizable\n"), None);
        let text =
            "f: NOT linearizable\n  decided from the store's versions (x)\n  G0-realtime: writes\n";
        assert_eq!(why_line(text), Some("G0-realtime: writes"));
    }
}
