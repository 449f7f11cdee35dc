//! `report.html`: one file, no network. The data is embedded as JSON in a
//! `<script type="application/json">` element and drawn by a small inline script
//! into SVG; every drawn op carries `data-op` (the counterexample) or `data-tl` (the
//! history's timeline), which the browser tests count.

use crate::data::ReportData;

const TEMPLATE: &str = include_str!("report.html");

/// JSON that is safe inside a `<script>` element: `<`, `>` and `&` only occur in
/// JSON strings, where their `\u` escapes mean the same.
pub fn script_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
/// `path` percent-encoded for an href: every byte but unreserved characters and
/// `/` (so a run named `\evil.com` or `a#b` links to itself, not elsewhere).
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(data: &ReportData) -> String {
    let title = format!("{} ({})", data.meta.headline, data.meta.file);
    fill(TEMPLATE, &escape(&title), &script_json(data))
}

/// The template with its two placeholders filled in one pass, so that a title
/// (a file name) holding `/*DATA*/` cannot take the data's place.
fn fill(template: &str, title: &str, data: &str) -> String {
    let (head, rest) = template
        .split_once("/*TITLE*/")
        .expect("the template has a title placeholder");
    let (middle, tail) = rest
        .split_once("/*DATA*/")
        .expect("the template has a data placeholder after the title");
    [head, title, middle, data, tail].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_holding_the_data_placeholder_stays_a_title() {
        let page = fill("<t>/*TITLE*/</t><s>/*DATA*/</s>", "x /*DATA*/ y", "{}");
        assert_eq!(page, "<t>x /*DATA*/ y</t><s>{}</s>");
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let s = script_json(&serde_json::json!({"x": "</script><b>&"}));
        assert!(!s.contains("</"));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["x"], "</script><b>&");
    }
}
