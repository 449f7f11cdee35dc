//! The page `splitbrain serve` shows: past runs in a store, newest first, each
//! linking its report.

use crate::html::{escape, url_path};
use serde::Serialize;

/// One run, as its `results.json` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    pub test: String,
    /// The run's directory name, a UTC timestamp.
    pub started: String,
    /// `valid`, `invalid`, `unknown`, or `not checked` (no results.json yet).
    pub verdict: String,
    /// The strongest level that holds, with `--consistency all`.
    pub strongest: Option<String>,
    pub ops: Option<u64>,
    pub faults: Option<u64>,
    /// Paths relative to the store, for links.
    pub dir: String,
    pub has_report: bool,
}

/// The listing page.
pub fn render(store: &str, runs: &[RunEntry]) -> String {
    let mut rows = String::new();
    for r in runs {
        let class = match r.verdict.as_str() {
            "valid" => "valid",
            "invalid" => "invalid",
            "unknown" => "unknown",
            _ => "none",
        };
        let link = if r.has_report {
            format!(
                "<a href=\"/{0}/report.html\">report</a>",
                escape(&url_path(&r.dir))
            )
        } else {
            "no report".into()
        };
        let num = |n: Option<u64>| n.map_or("–".into(), |n| n.to_string());
        rows += &format!(
            "<tr class=\"run\" data-run=\"{dir}\"><td>{test}</td><td class=\"mono\">{started}</td><td><span class=\"v {class}\">{verdict}</span>{strongest}</td><td class=\"n\">{ops}</td><td class=\"n\">{faults}</td><td>{link} · <a href=\"/{href}/\">files</a></td></tr>\n",
            dir = escape(&r.dir),
            href = escape(&url_path(&r.dir)),
            test = escape(&r.test),
            started = escape(&r.started),
            verdict = escape(&r.verdict),
            strongest = r
                .strongest
                .as_ref()
                .map(|s| format!(" <small>strongest: {}</small>", escape(s)))
                .unwrap_or_default(),
            ops = num(r.ops),
            faults = num(r.faults),
        );
    }
    if runs.is_empty() {
        rows = "<tr><td colspan=\"6\">No runs yet: <code>splitbrain test</code> puts them here.</td></tr>".into();
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>splitbrain runs</title><style>\n\
body{{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}}main{{max-width:1100px;margin:0 auto;padding:20px}}\n\
table{{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e3e6ea}}td,th{{padding:7px 12px;border-bottom:1px solid #e3e6ea;text-align:left}}\n\
th{{color:#6b7480}}.n{{text-align:right}}.mono{{font-family:ui-monospace,Menlo,monospace}}a{{color:#1f6feb}}\n\
.v{{font-weight:700;padding:2px 8px;border-radius:10px}}.valid{{color:#2f9e5b;background:#eaf6ef}}.invalid{{color:#d93025;background:#fdecea}}.unknown{{color:#a0650b;background:#fdf3e3}}.none{{color:#6b7480}}\n\
</style></head><body><main><h1>splitbrain runs</h1><p>Store <code>{store}</code>: {n} runs, newest first.</p>\n\
<table><tr><th>test</th><th>started (UTC)</th><th>verdict</th><th class=\"n\">ops</th><th class=\"n\">faults</th><th></th></tr>\n{rows}</table></main></body></html>\n",
        store = escape(store),
        n = runs.len(),
    )
}
