//! JUnit XML, which every CI system shows: one `<testcase>` per consistency level
//! per history (or run), a `<failure>` with the counterexample's text when the level
//! does not hold (for a set that lost acknowledged adds, its message counts them and
//! names the first), an `<error>` when it is undecided.
//!
//! ```xml
//! <testsuites tests="1" failures="1" errors="0">
//!   <testsuite name="splitbrain check" tests="1" failures="1" errors="0" skipped="0">
//!     <testcase classname="histories/register/stale-read.invalid.jsonl" name="linearizable" time="0.000">
//!       <failure message="NOT linearizable: cannot linearize: p2 read 1  [lines 5-6]" type="invalid">...</failure>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```

use crate::data::{level_report, levels, why_line};
use splitbrain_checker::{lost_line, render_text, Explanation, Report, Verdict};
use std::fmt::Write;

/// One test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The history file, or `test/run` for `splitbrain test`.
    pub classname: String,
    /// The consistency level.
    pub name: String,
    pub time_s: f64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Passed,
    /// The level does not hold: a short message and the full explanation.
    Failed {
        message: String,
        text: String,
    },
    /// Undecided (time or memory limit), or the history could not be read.
    Error {
        message: String,
        text: String,
    },
}

/// The cases for one checked history: one per level the report decided.
pub fn cases(report: &Report, classname: &str) -> Vec<Case> {
    let results = levels(report);
    let n = results.len().max(1) as f64;
    results
        .iter()
        .map(|lr| {
            let text = render_text(&level_report(report, lr));
            let first = text.lines().next().unwrap_or_default();
            let verdict = first
                .strip_prefix(report.file.as_str())
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(first);
            let why = match lr.explanation.and_then(Explanation::eventual) {
                // A set that lost acknowledged adds: how many, over every key,
                // and the first acknowledged.
                Some(c) if c.lost_count > 0 => {
                    let s = if c.lost_count == 1 { "" } else { "s" };
                    let first = c
                        .lost
                        .first()
                        .map(|l| format!(", the first: {}", lost_line(l)))
                        .unwrap_or_default();
                    format!("{} acknowledged add{s} lost{first}", c.lost_count)
                }
                _ => why_line(&text).unwrap_or_default().to_string(),
            };
            let message = if why.is_empty() {
                verdict.to_string()
            } else {
                format!("{verdict}: {why}")
            };
            let outcome = match lr.verdict {
                Verdict::Valid => Outcome::Passed,
                Verdict::Invalid => Outcome::Failed { message, text },
                Verdict::Unknown => Outcome::Error { message, text },
            };
            Case {
                classname: classname.to_string(),
                name: lr.name.to_string(),
                time_s: report.elapsed_ms.as_secs_f64() / n,
                outcome,
            }
        })
        .collect()
}

/// A case for a history that could not be checked at all (unreadable, does not fit
/// the model).
pub fn error_case(classname: &str, level: &str, message: &str) -> Case {
    Case {
        classname: classname.to_string(),
        name: level.to_string(),
        time_s: 0.0,
        outcome: Outcome::Error {
            message: message.to_string(),
            text: message.to_string(),
        },
    }
}

/// The XML document: one suite named `suite` holding `cases`.
pub fn to_xml(suite: &str, cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Error { .. }))
        .count();
    let time: f64 = cases.iter().map(|c| c.time_s).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"splitbrain\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\">",
        escape(suite),
        cases.len()
    );
    for c in cases {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&c.classname),
            escape(&c.name),
            c.time_s
        );
        match &c.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Failed { message, text } | Outcome::Error { message, text } => {
                let (tag, kind) = match c.outcome {
                    Outcome::Failed { .. } => ("failure", "invalid"),
                    _ => ("error", "unknown"),
                };
                let _ = write!(
                    out,
                    ">\n      <{tag} message=\"{}\" type=\"{kind}\">{}</{tag}>\n    </testcase>\n",
                    escape(message),
                    escape_xml(text, false)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes for XML attributes (newlines kept as character references), and drops
/// the characters XML 1.0 cannot hold at all (control characters other than tab and
/// newlines).
pub fn escape(s: &str) -> String {
    escape_xml(s, true)
}

fn escape_xml(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' if !attr => out.push('\n'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
