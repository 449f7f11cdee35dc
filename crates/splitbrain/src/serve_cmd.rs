//! `splitbrain serve`: a small local web page listing the runs in a store, each
//! linking its report, like Jepsen's `lein run serve`.
//!
//! A hand-rolled HTTP/1.0-style server on std's `TcpListener`, one thread per
//! connection: it answers one person's browser, GET and HEAD only, and serves files
//! inside the store only (no `..`, and the resolved path, symlinks followed, must
//! stay under the store). It binds to 127.0.0.1 unless told otherwise.

use crate::check_cmd::EXIT_BAD_INPUT;
use clap::Args;
use splitbrain_report::index::RunEntry;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_long_help = "\
Examples:
  splitbrain serve                      # http://127.0.0.1:8080/ lists ./store
  splitbrain serve --store /tmp/runs --port 9000
  splitbrain serve --port 0             # any free port; the address is printed")]
pub struct ServeArgs {
    /// The store to list (where `splitbrain test` keeps runs).
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,

    /// The port (0: any free port).
    #[arg(long, value_name = "P", default_value_t = 8080)]
    pub port: u16,

    /// The address to bind. Loopback by default: the store holds histories and
    /// logs, so exposing it is a choice to make explicitly.
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
}

pub fn run(args: ServeArgs) -> u8 {
    let root = match args.store.canonicalize() {
        Ok(r) if r.is_dir() => r,
        Ok(r) => {
            eprintln!("error: --store {} is not a directory", r.display());
            return EXIT_BAD_INPUT;
        }
        Err(e) => {
            eprintln!("error: --store {}: {e}", args.store.display());
            return EXIT_BAD_INPUT;
        }
    };
    let listener = match TcpListener::bind((args.bind, args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.bind, args.port);
            return EXIT_BAD_INPUT;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    if !args.bind.is_loopback() {
        eprintln!(
            "warning: serving {} to the network on {addr}: anyone who can reach it can read the histories and logs",
            root.display()
        );
    }
    println!(
        "serving {} at http://{addr}/ (Ctrl-C stops)",
        root.display()
    );
    let _ = std::io::stdout().flush();
    let shown = args.store.display().to_string();
    // On loopback, only requests that name this machine: a web page elsewhere could
    // otherwise point a name of its own at 127.0.0.1 (DNS rebinding) and read the
    // store through the user's browser.
    let loopback_only = args.bind.is_loopback();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let root = root.clone();
        let shown = shown.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &root, &shown, loopback_only);
        });
    }
    0
}

fn handle(
    mut stream: TcpStream,
    root: &Path,
    shown: &str,
    loopback_only: bool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(16 * 1024));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers: only Host matters, up to the blank line.
    let mut host = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("host") {
                host = Some(value.trim().to_owned());
            }
        }
    }
    if loopback_only && !host.as_deref().is_some_and(names_this_machine) {
        return respond(
            &mut stream,
            403,
            "text/plain",
            b"this server answers only requests for 127.0.0.1, localhost or [::1]\n",
            false,
        );
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head = method == "HEAD";
    if method != "GET" && !head {
        return respond(&mut stream, 405, "text/plain", b"only GET and HEAD\n", head);
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let page = match resolve(root, path) {
        Resolved::Index => splitbrain_report::index::render(shown, &runs(root)),
        Resolved::Dir(dir, rel) => dir_page(&dir, &rel),
        Resolved::File(file) => {
            let mut f = match std::fs::File::open(&file) {
                Ok(f) => f,
                Err(_) => return respond(&mut stream, 404, "text/plain", b"not found\n", head),
            };
            let len = f.metadata()?.len();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\n{}\r\n",
                content_type(&file),
                COMMON_HEADERS
            )?;
            if !head {
                std::io::copy(&mut f, &mut stream)?;
            }
            return stream.flush();
        }
        Resolved::Forbidden => {
            return respond(&mut stream, 403, "text/plain", b"outside the store\n", head)
        }
        Resolved::NotFound => return respond(&mut stream, 404, "text/plain", b"not found\n", head),
    };
    let html = "text/html; charset=utf-8";
    respond(&mut stream, 200, html, page.as_bytes(), head)
}

const COMMON_HEADERS: &str =
    "Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";

fn respond(
    stream: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{COMMON_HEADERS}\r\n",
        body.len()
    )?;
    if !head {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[derive(Debug, PartialEq)]
enum Resolved {
    Index,
    Dir(PathBuf, String),
    File(PathBuf),
    Forbidden,
    NotFound,
}

/// Whether a Host header names this machine by loopback: `127.0.0.1`,
/// `localhost` or `[::1]`, with or without a port.
fn names_this_machine(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Maps a request path to a file or directory inside `root` (already canonical).
fn resolve(root: &Path, path: &str) -> Resolved {
    let Some(decoded) = percent_decode(path) else {
        return Resolved::NotFound;
    };
    let rel = decoded.trim_start_matches('/');
    if rel.is_empty() {
        return Resolved::Index;
    }
    if rel.contains('\0') || rel.contains('\\') {
        return Resolved::Forbidden;
    }
    let rel_path = Path::new(rel);
    if rel_path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Resolved::Forbidden;
    }
    let Ok(real) = root.join(rel_path).canonicalize() else {
        return Resolved::NotFound;
    };
    // Symlinks are followed (store/latest), but never out of the store.
    if !real.starts_with(root) {
        return Resolved::Forbidden;
    }
    if real.is_dir() {
        Resolved::Dir(real, rel.trim_end_matches('/').to_string())
    } else {
        Resolved::File(real)
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        _ => "text/plain; charset=utf-8",
    }
}

fn dir_page(dir: &Path, rel: &str) -> String {
    use splitbrain_report::html::escape;
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let is_dir = e.path().is_dir();
                    (e.file_name().to_string_lossy().into_owned(), is_dir)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut items = String::new();
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        items += &format!(
            "<li><a href=\"/{}/{}{slash}\">{}{slash}</a></li>\n",
            escape(&splitbrain_report::html::url_path(rel)),
            escape(&splitbrain_report::html::url_path(&name)),
            escape(&name)
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title></head><body style=\"font:14px system-ui,sans-serif;margin:20px\"><p><a href=\"/\">all runs</a></p><h1>{0}</h1><ul>\n{items}</ul></body></html>\n",
        escape(rel)
    )
}

/// Every run in the store (`TEST/STAMP/`), newest first.
fn runs(root: &Path) -> Vec<RunEntry> {
    let mut out = Vec::new();
    let Ok(tests) = std::fs::read_dir(root) else {
        return out;
    };
    for test in tests.flatten() {
        let name = test.file_name().to_string_lossy().into_owned();
        // `latest` is a link to a run listed anyway.
        let is_link = test.file_type().is_ok_and(|t| t.is_symlink());
        if name.starts_with('.') || is_link || !test.path().is_dir() {
            continue;
        }
        let Ok(stamps) = std::fs::read_dir(test.path()) else {
            continue;
        };
        for run in stamps.flatten() {
            let stamp = run.file_name().to_string_lossy().into_owned();
            let dir = run.path();
            if stamp.starts_with('.') || !dir.is_dir() {
                continue;
            }
            let results: Option<serde_json::Value> =
                std::fs::read_to_string(dir.join("results.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok());
            let verdict = match results.as_ref().map(|r| &r["valid"]) {
                Some(serde_json::Value::Bool(true)) => "valid",
                Some(serde_json::Value::Bool(false)) => "invalid",
                Some(serde_json::Value::String(s)) if s == "unknown" => "unknown",
                _ => "not checked",
            };
            let r = results.as_ref();
            out.push(RunEntry {
                test: r
                    .and_then(|r| r["test"].as_str())
                    .unwrap_or(&name)
                    .to_string(),
                started: r
                    .and_then(|r| r["started"].as_str())
                    .unwrap_or(&stamp)
                    .to_string(),
                verdict: verdict.to_string(),
                strongest: r.and_then(|r| r["report"]["strongest"].as_str().map(str::to_owned)),
                ops: r.and_then(|r| r["run"]["ops"].as_u64()),
                faults: r.and_then(|r| r["run"]["faults"].as_u64()),
                dir: format!("{name}/{stamp}"),
                has_report: dir.join("report.html").is_file(),
            });
        }
    }
    out.sort_by(|a, b| b.started.cmp(&a.started).then(a.test.cmp(&b.test)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_are_answered_on_loopback() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.0.0.1",
        ] {
            assert!(names_this_machine(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "10.0.0.1:8080",
            "",
            "[::2]:80",
        ] {
            assert!(!names_this_machine(bad), "{bad}");
        }
    }

    #[test]
    fn escapes_need_two_hex_digits() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%4"), None);
    }

    #[test]
    fn links_are_percent_encoded() {
        use splitbrain_report::html::url_path;
        assert_eq!(url_path("\\evil.com/x"), "%5Cevil.com/x");
        assert_eq!(url_path("a#b?c%d"), "a%23b%3Fc%25d");
        assert_eq!(
            url_path("cas-register-etcd-v3/2026T1.2Z"),
            "cas-register-etcd-v3/2026T1.2Z"
        );
    }

    #[test]
    fn paths_outside_the_store_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        std::fs::create_dir_all(store.join("t/1")).unwrap();
        std::fs::write(store.join("t/1/report.html"), "x").unwrap();
        std::fs::write(tmp.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), store.join("t/1/escape")).unwrap();
        let root = store.canonicalize().unwrap();
        assert_eq!(resolve(&root, "/"), Resolved::Index);
        assert!(matches!(
            resolve(&root, "/t/1/report.html"),
            Resolved::File(_)
        ));
        assert!(matches!(resolve(&root, "/t/1/"), Resolved::Dir(..)));
        for bad in [
            "/../secret",
            "/t/../../secret",
            "/%2e%2e/secret",
            "/t/%2E%2E/%2e%2e/secret",
            "/t/1/escape",
            "//etc/passwd",
            "/t/1/..%2f..%2f..%2fsecret",
            "/t\\..\\..\\secret",
        ] {
            assert!(
                matches!(
                    resolve(&root, bad),
                    Resolved::Forbidden | Resolved::NotFound
                ),
                "{bad} resolved to {:?}",
                resolve(&root, bad)
            );
        }
        assert_eq!(resolve(&root, "/t/nothing"), Resolved::NotFound);
    }
}
