//! The checker's text with ANSI colours, for a terminal: the verdict green, red or
//! amber, the op that cannot be placed and its marker red, `info` ops amber.
//! Colours are for people: the words stay exactly as they are without them.

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[1;32m";
const AMBER: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Colours `text` as [`splitbrain_checker::render_text`] writes it.
pub fn colorize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let colored = if !line.starts_with(' ') {
            // The verdict line: `FILE: VERDICT (model, N ops, T ms)`.
            let color = if line.contains(": NOT ") {
                RED
            } else if line.contains(": UNKNOWN") {
                AMBER
            } else {
                GREEN
            };
            match line.find(": ") {
                Some(i) => format!("{}: {color}{}{RESET}", &line[..i], &line[i + 2..]),
                None => line.to_string(),
            }
        } else if trimmed.starts_with("^ ")
            || trimmed.starts_with("cannot linearize:")
            || trimmed.starts_with("ruled out:")
        {
            format!("{RED}{line}{RESET}")
        } else if trimmed.starts_with("smallest sub-history") {
            format!("{BOLD}{line}{RESET}")
        } else if trimmed.contains(" (info)") || trimmed.ends_with('?') {
            format!("{AMBER}{line}{RESET}")
        } else {
            line.to_string()
        };
        out.push_str(&colored);
        out.push('\n');
    }
    out
}

/// Removes ANSI escapes (for tests, and for anyone piping coloured output).
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_change_nothing_but_colour() {
        let text = "h.jsonl: NOT linearizable (register, 3 ops, 0.2 ms)\n  cannot linearize: p2 read 1  [lines 5-6]\n    p0  |-write 1-|\n                ^ cannot be linearized\n";
        let c = colorize(text);
        assert!(c.contains(RED));
        assert_eq!(strip(&c), text);
    }
}
