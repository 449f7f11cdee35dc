//! Reports as a user and a CI job meet them: `check --html`, `--junit`, `--color`,
//! `splitbrain serve`, and the pages opened in headless Chromium.
//!
//! The browser tests need Debian's `chromium` (scripts/setup installs it): on a
//! developer machine without it they skip with a loud line, under `CI=true` they
//! fail. Screenshots land in the target directory (`CARGO_TARGET_TMPDIR`).

mod common;
use common::{closed_port, Ran};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn golden(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../histories")
        .join(rel)
        .display()
        .to_string()
}

/// `splitbrain ARGS` (colour is up to the flags).
fn splitbrain(args: &[&str]) -> Ran {
    Ran::of(common::splitbrain().args(args).env_remove("NO_COLOR"))
}

/// `splitbrain check --model register ARGS` (the histories in histories/register),
/// which must exit `code`: 0 valid, 1 invalid.
fn check_register(args: &[&str], code: i32) -> Ran {
    splitbrain(&[&["check", "--model", "register"], args].concat()).exits(code)
}

/// The testcases of a JUnit file: (classname, name, failed).
fn junit_cases(path: &Path) -> Vec<(String, String, bool)> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}\n{text}", path.display()));
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("classname").unwrap_or_default().to_string(),
                n.attribute("name").unwrap_or_default().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
            )
        })
        .collect()
}

#[test]
fn check_writes_a_report_and_junit_with_one_failure_per_invalid_level() {
    let tmp = tempfile::tempdir().unwrap();
    let html = tmp.path().join("r.html");
    let junit = tmp.path().join("j.xml");
    let invalid = golden("register/stale-read.invalid.jsonl");
    let valid = golden("register/info-write-seen-later.valid.jsonl");
    check_register(
        &[
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            &invalid,
        ],
        1,
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"data\"") && page.contains("NOT linearizable"));
    assert_eq!(
        junit_cases(&junit),
        [(invalid.clone(), "linearizable".into(), true)]
    );

    // Several histories, all levels: a case per level per history, a failure per
    // level that does not hold.
    let store_buffering = golden("consistency/register/store-buffering.lin-no.seq-no.ev-yes.jsonl");
    check_register(
        &[
            "--consistency",
            "all",
            "--junit",
            junit.to_str().unwrap(),
            &store_buffering,
            &valid,
        ],
        1,
    );
    let cases = junit_cases(&junit);
    let failed: Vec<(&str, &str)> = cases
        .iter()
        .filter(|c| c.2)
        .map(|c| (c.0.as_str(), c.1.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (store_buffering.as_str(), "linearizable"),
            (store_buffering.as_str(), "sequential")
        ]
    );
    // linearizable, sequential, causal and eventual for each.
    assert_eq!(cases.len(), 8, "{cases:?}");

    // A valid history: a report, and a passing case.
    check_register(
        &[
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            &valid,
        ],
        0,
    );
    assert_eq!(
        junit_cases(&junit),
        [(valid.clone(), "linearizable".into(), false)]
    );
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("\"verdict\":\"valid\""));
}

#[test]
fn html_takes_one_history_and_unwritable_files_are_named() {
    let a = golden("register/stale-read.invalid.jsonl");
    let err = splitbrain(&["check", "--html", "/tmp/x.html", &a, &a])
        .exits(254)
        .stderr;
    assert!(err.contains("--html writes one report"), "{err}");
    // A JUnit file that cannot be written is named, and is bad input (254) unless
    // a history is invalid: an invalid verdict (1) is never hidden.
    let valid = golden("register/info-write-seen-later.valid.jsonl");
    for (history, code) in [(&valid, 254), (&a, 1)] {
        let err = check_register(&["--junit", "/nonexistent-dir/j.xml", history], code).stderr;
        assert!(err.contains("/nonexistent-dir/j.xml"), "{err}");
    }
}

#[test]
fn colours_only_when_asked_or_on_a_terminal() {
    let a = golden("register/stale-read.invalid.jsonl");
    let plain = splitbrain(&["check", "--model", "register", &a]);
    assert!(!plain.stdout.contains('\x1b'), "a pipe gets no colour");
    let coloured = splitbrain(&["check", "--model", "register", "--color", "always", &a]);
    assert!(coloured.stdout.contains("\x1b[1;31mNOT linearizable"));
    // The text is the same but for colour (and the elapsed time).
    let norm = |s: &str| {
        splitbrain_report::color::strip(s)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(norm(&coloured.stdout), norm(&plain.stdout));
}

/// `splitbrain serve` on a port of its own, stopped (by its pid, as our child) on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(store: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
            .args(["serve", "--store", store.to_str().unwrap(), "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start splitbrain serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "binds to loopback: {addr}");
        Server { child, addr }
    }

    /// A raw request, so that `..` reaches the server as sent.
    fn get(&self, method: &str, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp.split_once("\r\n\r\n").map(|b| b.1).unwrap_or_default();
        (status, body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store with two runs: one invalid with a report, one valid without.
fn store_with_runs(root: &Path) -> PathBuf {
    let store = root.join("store");
    let bad = store.join("register-etcd-v3/20261122T080000.000Z");
    let good = store.join("cas-register-etcd-v3/20261122T090000.000Z");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::create_dir_all(&good).unwrap();
    check_register(
        &[
            "--html",
            bad.join("report.html").to_str().unwrap(),
            &golden("register/stale-read-during-partition.invalid.jsonl"),
        ],
        1,
    );
    let results = |test: &str, started: &str, valid: bool, faults: u64| {
        serde_json::json!({"schema_version": 1, "test": test, "started": started,
            "valid": valid, "report": {"valid": valid},
            "run": {"ops": 1234, "faults": faults}})
        .to_string()
    };
    std::fs::write(
        bad.join("results.json"),
        results("register-etcd-v3", "20261122T080000.000Z", false, 2),
    )
    .unwrap();
    std::fs::write(
        good.join("results.json"),
        results("cas-register-etcd-v3", "20261122T090000.000Z", true, 0),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "cas-register-etcd-v3/20261122T090000.000Z",
        store.join("latest"),
    )
    .unwrap();
    std::fs::write(root.join("secret.txt"), "not for the web").unwrap();
    store
}

#[test]
fn serve_lists_runs_and_serves_files_inside_the_store_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_with_runs(tmp.path());
    let server = Server::start(&store);
    let (status, index) = server.get("GET", "/");
    assert_eq!(status, 200);
    assert_eq!(index.matches("class=\"run\"").count(), 2, "{index}");
    // Newest first, with verdicts and links to reports.
    let (good, bad) = (
        index.find("cas-register-etcd-v3").unwrap(),
        index.find(">register-etcd-v3").unwrap(),
    );
    assert!(good < bad);
    assert!(index.contains("href=\"/register-etcd-v3/20261122T080000.000Z/report.html\""));
    assert!(index.contains(">invalid<") && index.contains(">valid<"));
    let (status, page) = server.get("GET", "/register-etcd-v3/20261122T080000.000Z/report.html");
    assert_eq!(status, 200);
    assert!(page.contains("NOT linearizable"));
    assert_eq!(server.get("GET", "/latest/results.json").0, 200);
    assert_eq!(server.get("HEAD", "/").0, 200);
    for bad in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/register-etcd-v3/../../secret.txt",
        "/register-etcd-v3/%2E%2E/%2E%2E/secret.txt",
    ] {
        let (status, body) = server.get("GET", bad);
        assert_eq!(status, 403, "{bad}: {body}");
        assert!(!body.contains("not for the web"));
    }
    assert_eq!(server.get("GET", "/nothing/here").0, 404);
    assert_eq!(server.get("POST", "/").0, 405);
}

/// Debian's chromium, or a loud skip (a failure under CI=true).
fn chromium_for_tests() -> Option<PathBuf> {
    if let Some(p) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
    {
        return Some(p);
    }
    splitbrain_testkit::skip(
        "needs chromium for the browser test (`sudo scripts/setup` installs it)",
    );
    None
}

/// Runs headless Chromium with a fresh profile and no background networking (this
/// machine's closed network refuses it), giving up after 120 s.
fn chromium(bin: &Path, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(bin: &Path, url: &str, name: &str, height: u32) -> PathBuf {
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&png);
    chromium(
        bin,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1400,{height}"),
        ],
        url,
    );
    let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(len > 10_000, "{} is {len} bytes", png.display());
    eprintln!("screenshot: {}", png.display());
    png
}

/// The DOM after the page's script ran, and a check that it ran to the end.
fn dom(bin: &Path, url: &str) -> String {
    let dom = chromium(bin, &["--dump-dom"], url);
    assert!(
        dom.contains("data-rendered=\"1\""),
        "the page's script did not finish: {url}"
    );
    dom
}

/// Elements of the counterexample's timeline (`data-op`) and of the history's
/// (`data-tl`).
fn count(dom: &str, attr: &str) -> usize {
    dom.matches(&format!(" {attr}=\"")).count()
}

#[test]
fn headless_chromium_draws_the_counterexample_and_the_runs() {
    let Some(bin) = chromium_for_tests() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();

    // An invalid history: its three-op counterexample, the read in red.
    let html = tmp.path().join("invalid.html");
    check_register(
        &[
            "--html",
            html.to_str().unwrap(),
            &golden("register/stale-read-during-partition.invalid.jsonl"),
        ],
        1,
    );
    let url = format!("file://{}", html.display());
    let d = dom(&bin, &url);
    assert_eq!(count(&d, "data-op"), 3, "the shrunk counterexample's ops");
    assert_eq!(d.matches("data-culprit=\"1\"").count(), 1);
    assert_eq!(count(&d, "data-tl"), 4, "every op of the history");
    assert_eq!(count(&d, "data-fault"), 2, "two partitions");
    assert!(d.contains("data-status=\"ruled out\""));
    screenshot(&bin, &url, "report-invalid.png", 1600);

    // A valid one: no counterexample, every op drawn.
    check_register(
        &[
            "--html",
            html.to_str().unwrap(),
            &golden("register/info-write-seen-later.valid.jsonl"),
        ],
        0,
    );
    let d = dom(&bin, &url);
    assert_eq!(count(&d, "data-op"), 0);
    assert_eq!(count(&d, "data-tl"), 5);
    assert!(d.contains("data-status=\"holds\""));
    screenshot(&bin, &url, "report-valid.png", 1000);

    // A set that lost acknowledged adds: a row each, with when and where.
    splitbrain(&[
        "check",
        "--model",
        "set",
        "--consistency",
        "all",
        "--html",
        html.to_str().unwrap(),
        &golden(
            "consistency/set/isolated-primary-loses-acknowledged-adds.lin-no.seq-no.ev-no.jsonl",
        ),
    ])
    .exits(1);
    let d = dom(&bin, &url);
    assert_eq!(count(&d, "data-lost"), 2, "a row per lost add");
    for cell in [
        "2 acknowledged adds lost",
        "acknowledged at",
        "<td>2.504 s</td>",
        "<td>7</td>",
        "<td>n1, n2, n3</td>",
    ] {
        assert!(d.contains(cell), "no {cell} in the lost adds' table");
    }
    screenshot(&bin, &url, "report-lost.png", 1400);

    // 100,000 ops: the page opens, and draws a bounded window.
    let big = tmp.path().join("big.jsonl");
    {
        let h = splitbrain_report::sample::register_history(100_000);
        let mut w = splitbrain_history::jsonl::Writer::new(std::io::BufWriter::new(
            std::fs::File::create(&big).unwrap(),
        ));
        for op in h.ops() {
            w.write(op).unwrap();
        }
        w.flush().unwrap();
    }
    check_register(
        &[
            "--init",
            "0",
            "--html",
            html.to_str().unwrap(),
            big.to_str().unwrap(),
        ],
        1,
    );
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 5 << 20, "the 100,000-op report is {size} bytes");
    let d = dom(&bin, &url);
    assert!(count(&d, "data-op") >= 2);
    assert_eq!(d.matches("data-culprit=\"1\"").count(), 1);
    let drawn = count(&d, "data-tl");
    assert!((2..=1500).contains(&drawn), "{drawn} ops drawn");
    let ms = d
        .split("id=\"render-ms\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or("?");
    eprintln!("100,000-op report: {size} bytes, drawn in {ms} ms (chromium's own measure)");
    screenshot(&bin, &url, "report-100k.png", 2400);

    // The serve page lists the runs and links their reports.
    let store = store_with_runs(tmp.path());
    let server = Server::start(&store);
    let index = format!("http://{}/", server.addr);
    let d = chromium(&bin, &["--dump-dom"], &index);
    assert_eq!(d.matches("class=\"run\"").count(), 2, "{d}");
    screenshot(&bin, &index, "serve.png", 600);
    let d = dom(
        &bin,
        &format!("{index}register-etcd-v3/20261122T080000.000Z/report.html"),
    );
    assert_eq!(count(&d, "data-op"), 3);
}

#[test]
fn a_test_run_leaves_its_report_charts_results_and_junit() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let junit = tmp.path().join("junit.xml");
    let args = format!(
        "--nodes {} --workload register --ops 20 --name down",
        closed_port()
    );
    let stdout = Ran::of(common::test_cmd(&args, &store).arg("--junit").arg(&junit))
        .exits(0)
        .stdout;
    let run = std::fs::canonicalize(store.join("latest")).unwrap();
    assert!(stdout.contains("report: "), "{stdout}");
    for f in ["report.html", "latency.svg", "rate.svg"] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["schema_version"], 1);
    assert_eq!(results["test"], "down");
    assert_eq!(
        results["started"].as_str(),
        run.file_name().and_then(|n| n.to_str())
    );
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].1, "linearizable");
    assert!(!cases[0].2, "a valid run passes");
    assert!(cases[0].0.starts_with("down/"));
}
