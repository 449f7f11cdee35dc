//! Reports people look at, and files CI understands.
//!
//! - [`html`]: `report.html`, one self-contained page (no network: the data is
//!   embedded as JSON, the drawing is a small inline script) with the verdict, the
//!   levels ruled out, the counterexample as a timeline (a cycle found from the
//!   store's versions with its dependencies as arrows), a set's lost acknowledged
//!   adds as a table, latency and throughput
//!   over time with the faults shaded, and the nemesis timeline.
//! - [`svg`]: `latency.svg` and `rate.svg`, drawn with plotters.
//! - [`junit`]: JUnit XML, one test case per consistency level per history.
//! - [`color`]: the checker's text with ANSI colours, for a terminal.
//! - [`index`]: the page `splitbrain serve` lists past runs on.
//!
//! Everything here is a pure function of a [`History`](splitbrain_history::History)
//! and a [`Report`](splitbrain_checker::Report) (and, for a run, its summary);
//! writing files is [`write_run_files`]'s job alone.
//!
//! Size is bounded whatever the history's size: the timeline draws at most
//! [`data::MAX_TIMELINE_OPS`] ops (a window around the counterexample, plus every op
//! of the shrunk counterexample), latency is downsampled to per-bucket quantiles
//! above [`data::MAX_RAW_POINTS`] ops, long lists in explanations are capped, and
//! the page says what was cut.

#![forbid(unsafe_code)]

pub mod color;
pub mod data;
pub mod html;
pub mod index;
pub mod junit;
pub mod sample;
pub mod svg;

use splitbrain_checker::Report;
use splitbrain_history::History;
use std::path::Path;

pub use data::{ReportData, RunMeta};

/// Writes `report.html`, `latency.svg` and `rate.svg` into `dir`.
pub fn write_run_files(
    dir: &Path,
    history: &History,
    report: &Report,
    run: Option<&RunMeta>,
) -> std::io::Result<()> {
    let data = ReportData::build(history, report, run);
    std::fs::write(dir.join("report.html"), html::render(&data))?;
    std::fs::write(dir.join("latency.svg"), svg::latency(&data))?;
    std::fs::write(dir.join("rate.svg"), svg::rate(&data))?;
    Ok(())
}
