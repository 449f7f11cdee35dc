//! `splitbrain check` as a user runs it: the real binary, real files, exit codes
//! and output.
//!
//! - Every `cas-register` and `mutex` history of the Knossos corpus
//!   (`../shared/corpus/knossos`, beside the repository) gets its known verdict.
//! - Every golden history in `histories/` gets the verdict its name states.
//! - Malformed input exits 254 with the file and line at fault, and never panics.
//! - Exit codes merge as Jepsen's do (invalid > unknown > valid), with unreadable
//!   input (254) above them all; `-` reads stdin; `--format json` and `--witness`
//!   say what they promise.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of the binary left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `--format json` objects, one per line of stdout.
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n{self:?}"))
            })
            .collect()
    }
}

fn splitbrain(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the splitbrain binary runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        pipe.write_all(input.as_bytes()).expect("stdin written");
    }
    let out = child.wait_with_output().expect("the binary finishes");
    let run = Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "splitbrain {args:?} panicked:\n{}",
        run.stderr
    );
    run
}

/// `splitbrain check ARGS` in `dir`.
fn check(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    splitbrain(dir, &all, None)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory holding `files` (name, contents).
fn scratch(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("a scratch file");
    }
    dir
}

// ---------------------------------------------------------------------------
// The Knossos corpus.

/// The corpus sits beside the repository (CI clones it there). Without it a
/// developer's run skips loudly; under CI it must be there.
fn knossos() -> Option<PathBuf> {
    let dir = repo().join("../shared/corpus/knossos");
    if dir.join("VERDICTS.tsv").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "the Knossos corpus is missing: no {}",
        dir.join("VERDICTS.tsv").display()
    );
    splitbrain_testkit::skip(&msg);
    None
}

/// One row of VERDICTS.tsv that this test checks.
struct Row {
    file: String,
    valid: bool,
}

/// Files checked in one run of the binary, with the same model and `--init`.
struct Batch<'a> {
    model: &'a str,
    init: &'a str,
    rows: &'a [Row],
}

#[test]
fn knossos_corpus_verdicts() {
    let Some(dir) = knossos() else {
        return;
    };
    let tsv = std::fs::read_to_string(dir.join("VERDICTS.tsv")).expect("VERDICTS.tsv");
    // (model, --init) -> rows
    let mut groups: BTreeMap<(&str, &str), Vec<Row>> = BTreeMap::new();
    for (n, line) in tsv.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, expected, model, init] = cols[..] else {
            panic!("VERDICTS.tsv:{}: expected 4 columns: {line}", n + 1);
        };
        let init = match (model, init) {
            ("cas-register", "null") => "null",
            ("mutex", "unlocked") => "\"unlocked\"",
            ("cas-register" | "mutex", other) => {
                panic!("VERDICTS.tsv:{}: unexpected init {other}", n + 1)
            }
            _ => continue,
        };
        let valid = match expected {
            "linearizable" => true,
            "not_linearizable" => false,
            other => panic!("VERDICTS.tsv:{}: unexpected verdict {other}", n + 1),
        };
        groups.entry((model, init)).or_default().push(Row {
            file: file.to_string(),
            valid,
        });
    }
    let total: usize = groups.values().map(Vec::len).sum();
    assert_eq!(total, 121, "cas-register and mutex rows in VERDICTS.tsv");

    // Many files per run, two runs at a time.
    let batches: Vec<Batch> = groups
        .iter()
        .flat_map(|(&(model, init), rows)| {
            rows.chunks(16).map(move |rows| Batch { model, init, rows })
        })
        .collect();
    let mut mismatches: Vec<String> = Vec::new();
    let mut checked = 0;
    for pair in batches.chunks(2) {
        let runs: Vec<Run> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|b| {
                    let dir = &dir;
                    s.spawn(move || {
                        let mut args = vec!["--model", b.model, "--init", b.init];
                        args.extend(["--format", "json"]);
                        args.extend(b.rows.iter().map(|r| r.file.as_str()));
                        check(dir, &args)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a batch thread"))
                .collect()
        });
        for (run, batch) in runs.iter().zip(pair) {
            let verdicts: BTreeMap<String, Value> = run
                .json()
                .into_iter()
                .map(|o| (o["file"].as_str().unwrap_or_default().to_string(), o))
                .collect();
            for Row { file, valid } in batch.rows {
                match verdicts.get(file) {
                    Some(o) if o["valid"] == Value::Bool(*valid) => checked += 1,
                    Some(o) => mismatches.push(format!(
                        "{file}: expected valid={valid}, got {}",
                        o.get("valid").or(o.get("error")).unwrap_or(&Value::Null)
                    )),
                    None => mismatches.push(format!("{file}: no result\n{}", run.stderr)),
                }
            }
            // mongodb-v0-ack-rollback-.edn has only nemesis ops: Knossos and
            // `check` both call it linearizable, vacuously.
            let want = if batch.rows.iter().all(|r| r.valid) {
                0
            } else {
                1
            };
            if run.code != want {
                mismatches.push(format!("a batch exited {}, not {want}", run.code));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {total} Knossos verdicts wrong:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(checked, 121);
}

// ---------------------------------------------------------------------------
// Our golden histories: histories/<model>/<what>.<valid|invalid>.jsonl

#[test]
fn golden_histories_get_the_verdict_in_their_name() {
    let root = repo().join("histories");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for model in ["register", "cas-register", "mutex"] {
        let mut files: Vec<String> = std::fs::read_dir(root.join(model))
            .unwrap_or_else(|e| panic!("histories/{model}: {e}"))
            .map(|e| {
                format!(
                    "{model}/{}",
                    e.expect("an entry").file_name().to_string_lossy()
                )
            })
            .collect();
        files.sort();
        let mut args = vec!["--model", model, "--format", "json"];
        args.extend(files.iter().map(String::as_str));
        let run = check(&root, &args);
        let results = run.json();
        assert_eq!(results.len(), files.len(), "{run:?}");
        for (file, o) in files.iter().zip(&results) {
            assert_eq!(o["file"], *file);
            let want = if file.ends_with(".valid.jsonl") {
                true
            } else if file.ends_with(".invalid.jsonl") {
                false
            } else {
                panic!("histories/{file}: the name must end .valid.jsonl or .invalid.jsonl");
            };
            if o["valid"] != Value::Bool(want) {
                wrong.push(format!("histories/{file}: got valid={}", o["valid"]));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert!(checked >= 12, "only {checked} golden histories");
}

#[test]
fn keyed_golden_history_names_the_bad_key() {
    let run = check(
        &repo().join("histories"),
        &[
            "--format",
            "json",
            "cas-register/keyed-one-bad-key.invalid.jsonl",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let o = &run.json()[0];
    assert_eq!(o["keys"], 2);
    assert_eq!(o["invalid_keys"], serde_json::json!(["k2"]));
    assert_eq!(o["counterexample"]["key"], "k2");
}

// ---------------------------------------------------------------------------
// Malformed input: exit 254, the file and line in the message, no panic.

const W1: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}"#;
const W1_OK: &str = r#"{"process":0,"type":"ok","f":"write","value":1}"#;
const R: &str = r#"{"process":1,"type":"invoke","f":"read","value":null}"#;

/// Checks `text` saved as `name` and expects exit 254 with `expected` (which
/// names the file and line) in the error.
fn rejects(name: &str, text: &str, extra: &[&str], expected: &str) {
    let dir = scratch(&[(name, text)]);
    let mut args = extra.to_vec();
    args.push(name);
    let run = check(dir.path(), &args);
    assert_eq!(run.code, 254, "{name}: {run:?}");
    assert!(
        run.stderr.contains(expected),
        "{name}: stderr should contain {expected:?}:\n{}",
        run.stderr
    );
}

#[test]
fn truncated_json_line_names_its_line() {
    let text = format!("{W1}\n{W1_OK}\n{{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"\n");
    rejects("t.jsonl", &text, &[], "t.jsonl:3: invalid JSON");
}

#[test]
fn line_cut_inside_a_string_is_invalid_json_not_a_wrong_type() {
    // Cut off in the middle of `"read"`: the JSON is broken, `f` is not a number.
    let text = format!("{W1}\n{W1_OK}\n{{\"process\":1,\"type\":\"invoke\",\"f\":\"re\n");
    rejects("t.jsonl", &text, &[], "t.jsonl:3: invalid JSON");
}

#[test]
fn fields_of_the_wrong_type_name_the_field_and_line() {
    for (field, line, want) in [
        (
            r#"{"process":"x","type":"ok","f":"write","value":1}"#,
            2,
            "field `process`",
        ),
        (
            r#"{"process":0,"type":"okay","f":"write","value":1}"#,
            2,
            "field `type`",
        ),
        (
            r#"{"process":0,"type":"ok","f":3,"value":1}"#,
            2,
            "field `f`",
        ),
    ] {
        // A blank line first: line numbers count it.
        let text = format!("{W1}\n{field}\n");
        rejects(
            "t.jsonl",
            &text,
            &[],
            &format!("t.jsonl:{line}: bad op: {want}"),
        );
        let text = format!("\n{W1}\n{field}\n");
        rejects(
            "t.jsonl",
            &text,
            &[],
            &format!("t.jsonl:{}: bad op: {want}", line + 1),
        );
    }
}

#[test]
fn completion_without_invocation_names_its_line() {
    let text = format!(
        "{W1}\n{W1_OK}\n{}\n",
        r#"{"process":5,"type":"ok","f":"read","value":1}"#
    );
    rejects(
        "t.jsonl",
        &text,
        &[],
        "t.jsonl:3: process 5 completes an op it never invoked",
    );
}

#[test]
fn double_invocation_names_both_lines() {
    let text = format!("{W1}\n{R}\n{W1}\n");
    rejects(
        "t.jsonl",
        &text,
        &[],
        "t.jsonl:3: process 0 invokes again while its invocation on line 1 is still open",
    );
}

#[test]
fn edn_unclosed_bracket_names_where_it_opened() {
    let text = "; a history\n[{:process 0, :type :invoke, :f :read, :value nil}\n \
                {:process 0, :type :ok, :f :read, :value nil}\n";
    rejects(
        "h.edn",
        text,
        &[],
        "h.edn:2: EDN syntax error: `[` opened here is never closed",
    );
}

#[test]
fn edn_non_op_names_its_line() {
    let text = "[{:process 0, :type :invoke, :f :read, :value nil}\n \
                {:process 0, :type :ok, :f :read, :value nil}\n 42]\n";
    rejects(
        "h.edn",
        text,
        &[],
        "h.edn:3: EDN syntax error: expected an op map",
    );
}

#[test]
fn edn_bad_token_names_its_line() {
    // The `@` sits on line 2 of a two-line file.
    let text = "[{:process 0, :type :invoke, :f :read, :value nil}\n \
                {:process 0, :type :ok, :f :read, :value @@}]\n";
    rejects("h.edn", text, &[], "h.edn:2: EDN syntax error");
    // And on line 3 of an op that spans lines 2-3.
    let text = "[{:process 0, :type :invoke, :f :read, :value nil}\n \
                {:process 0, :type :ok,\n  :f :read, :value 1.2.3}]\n";
    rejects("h.edn", text, &[], "h.edn:3: EDN syntax error");
}

#[test]
fn empty_and_nemesis_only_histories_hold_vacuously_with_a_warning() {
    let nemesis = "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\"}\n";
    for (name, text) in [
        ("e.jsonl", ""),
        ("b.jsonl", "\n\n"),
        ("e.edn", "; nothing here\n"),
        ("n.jsonl", nemesis),
    ] {
        let dir = scratch(&[(name, text)]);
        for level in ["linearizable", "all"] {
            let run = check(dir.path(), &["--consistency", level, name]);
            assert_eq!(run.code, 0, "{name} {level}: {run:?}");
            assert!(
                // `all` adds convergence: "linearizable; convergent (".
                (run.stdout.contains(": linearizable (")
                    || run.stdout.contains(": linearizable; convergent ("))
                    && !run.stdout.contains("undecided"),
                "{name}: {run:?}"
            );
            assert!(
                run.stderr
                    .contains(&format!("warning: {name}: no client operations")),
                "{name}: {run:?}"
            );
        }
    }
}

#[test]
fn missing_file_is_named() {
    let dir = scratch(&[]);
    let run = check(dir.path(), &["no-such-history.jsonl"]);
    assert_eq!(run.code, 254, "{run:?}");
    assert!(
        run.stderr.contains("no-such-history.jsonl: cannot read"),
        "{}",
        run.stderr
    );
}

#[test]
fn independent_needs_tuples_and_names_the_line() {
    let text = format!(
        "{}\n{}\n{}\n",
        r#"{"process":0,"type":"invoke","f":"write","value":[7,1]}"#,
        r#"{"process":0,"type":"ok","f":"write","value":[7,1]}"#,
        r#"{"process":1,"type":"invoke","f":"read","value":3}"#,
    );
    rejects(
        "t.jsonl",
        &text,
        &["--independent"],
        "t.jsonl:3: field `value`: --independent expects a [key value] tuple, found 3",
    );
}

/// Ops the model cannot take: the error names the line (the completion's when the
/// op completed `ok`, as the checker looked at its value) and, where a flag would
/// fix it, the flag.
#[test]
fn ops_the_model_cannot_take_name_their_line() {
    let cas = |v: &str| format!(r#"{{"process":2,"type":"invoke","f":"cas","value":{v}}}"#);
    let cas_ok = r#"{"process":2,"type":"ok","f":"cas","value":5}"#;
    for (ops, model, want) in [
        // Never completed: the invocation's line.
        (
            vec![cas("[1,2,3]")],
            "cas-register",
            "t.jsonl:3: a cas value must be [expected, new], found [1,2,3]",
        ),
        // Completed ok: the completion's line.
        (
            vec![cas("5"), cas_ok.to_string()],
            "cas-register",
            "t.jsonl:4: a cas value must be [expected, new], found 5",
        ),
        (
            vec![cas("[1,2]")],
            "register",
            "t.jsonl:3: the register model has no function `cas` (it knows read, write; \
             the cas-register model knows cas): use --model cas-register",
        ),
        (
            vec![],
            "mutex",
            "t.jsonl:2: the mutex model has no function `write` (it knows acquire, release)",
        ),
    ] {
        let text = format!("{W1}\n{W1_OK}\n{}", ops.join("\n") + "\n");
        rejects("t.jsonl", &text, &["--model", model], want);
    }
}

#[test]
fn bad_options_are_usage_errors() {
    let dir = scratch(&[("t.jsonl", &format!("{W1}\n{W1_OK}\n"))]);
    for (args, want) in [
        (&["--init", "{", "t.jsonl"][..], "not JSON"),
        (
            &["--init", "5", "--model", "mutex", "t.jsonl"][..],
            "the initial value does not fit the mutex model: the initial state must be \
             \"unlocked\" or \"locked\" (or false or true), found 5 (set by --init)",
        ),
        (
            &["--model", "mutex", "--consistency", "eventual", "t.jsonl"][..],
            "the mutex model cannot be checked for eventual consistency: a mutex has no \
             reads to converge; choose another level with --consistency",
        ),
        (
            &["--model", "queue", "t.jsonl"][..],
            "unknown model `queue`",
        ),
        (&["--time-limit", "0", "t.jsonl"][..], "time limit"),
        (&["--format", "yaml", "t.jsonl"][..], "yaml"),
        (&[][..], "FILE"),
    ] {
        let run = check(dir.path(), args);
        assert_eq!(run.code, 254, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(want),
            "{args:?}: stderr should contain {want:?}:\n{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
}

// ---------------------------------------------------------------------------
// Exit codes and output.

const VALID: &str = "register/concurrent-read-sees-new-value.valid.jsonl";
const INVALID: &str = "register/stale-read.invalid.jsonl";

/// A mutex history no search finishes: 30 concurrent pending acquires and
/// releases, any subset of which may have happened, then 18 sequential acquires
/// that need more releases than there are. Every subset must be tried.
fn hard_history() -> String {
    let mut s = String::new();
    for p in 0..30 {
        let f = if p % 2 == 0 { "acquire" } else { "release" };
        s.push_str(&format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\",\"value\":null}}\n"
        ));
    }
    for _ in 0..18 {
        for kind in ["invoke", "ok"] {
            s.push_str(&format!(
                "{{\"process\":100,\"type\":\"{kind}\",\"f\":\"acquire\",\"value\":null}}\n"
            ));
        }
    }
    s
}

#[test]
fn exit_codes_merge_invalid_over_bad_input_over_unknown_over_valid() {
    let mutex = repo().join("histories/mutex");
    let read = |f: &str| std::fs::read_to_string(mutex.join(f)).expect("a golden history");
    let dir = scratch(&[
        ("ok.jsonl", &read("lock-handoff.valid.jsonl")),
        ("bad.jsonl", &read("double-grant.invalid.jsonl")),
        ("hard.jsonl", &hard_history()),
        ("broken.jsonl", "{\"process\":0,\n"),
    ]);
    let run = |files: &[&str]| {
        let mut args = vec!["--model", "mutex", "--time-limit", "0.2"];
        args.extend_from_slice(files);
        check(dir.path(), &args)
    };
    for (files, code) in [
        (&["ok.jsonl"][..], 0),
        (&["ok.jsonl", "ok.jsonl"][..], 0),
        (&["bad.jsonl"][..], 1),
        (&["ok.jsonl", "bad.jsonl"][..], 1),
        (&["bad.jsonl", "ok.jsonl"][..], 1),
        (&["hard.jsonl"][..], 2),
        (&["ok.jsonl", "hard.jsonl"][..], 2),
        (&["hard.jsonl", "ok.jsonl"][..], 2),
        (&["hard.jsonl", "bad.jsonl"][..], 1),
        (&["bad.jsonl", "hard.jsonl", "ok.jsonl"][..], 1),
    ] {
        let r = run(files);
        assert_eq!(r.code, code, "{files:?}: {r:?}");
        // Every file gets its line of verdict.
        for f in files {
            assert!(r.stdout.contains(&format!("{f}: ")), "{files:?}: {r:?}");
        }
    }
    assert!(run(&["hard.jsonl"]).stdout.contains("UNKNOWN"));

    // Unreadable input beats valid and unknown, wherever it comes in the list,
    // but never hides an invalid verdict; the other files are still checked.
    for (files, code) in [
        (&["broken.jsonl", "ok.jsonl"][..], 254),
        (&["hard.jsonl", "broken.jsonl"][..], 254),
        (&["ok.jsonl", "bad.jsonl", "broken.jsonl"][..], 1),
        (&["hard.jsonl", "missing.jsonl", "bad.jsonl"][..], 1),
    ] {
        let r = run(files);
        assert_eq!(r.code, code, "{files:?}: {r:?}");
        let checked = files
            .iter()
            .filter(|f| r.stdout.contains(&format!("{f}: ")))
            .count();
        assert_eq!(checked, files.len() - 1, "{files:?}: {r:?}");
    }
}

#[test]
fn dash_reads_standard_input() {
    let golden = repo().join("histories");
    for (file, code) in [(VALID, 0), (INVALID, 1)] {
        let text = std::fs::read_to_string(golden.join(file)).expect("a golden history");
        let run = splitbrain(
            &golden,
            &["check", "--model", "register", "--format", "json", "-"],
            Some(&text),
        );
        assert_eq!(run.code, code, "{file}: {run:?}");
        assert_eq!(run.json()[0]["file"], "-");
    }
    // Malformed stdin names `-` and the line.
    let run = splitbrain(
        &golden,
        &["check", "-"],
        Some(&format!("{W1}\n{W1_OK}\n{W1_OK}\n")),
    );
    assert_eq!(run.code, 254, "{run:?}");
    assert!(
        run.stderr
            .contains("-:3: process 0 completes an op it never invoked"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_output_has_the_documented_fields() {
    let golden = repo().join("histories");
    let run = check(
        &golden,
        &["--model", "register", "--format", "json", VALID, INVALID],
    );
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.json();
    assert_eq!(out.len(), 2, "{run:?}");
    for o in &out {
        for field in ["file", "valid", "model", "ops", "elapsed_ms"] {
            assert!(o.get(field).is_some(), "no `{field}` in {o}");
        }
        assert_eq!(o["model"], "register");
        assert!(o["elapsed_ms"].is_number(), "{o}");
    }
    let (valid, invalid) = (&out[0], &out[1]);
    assert_eq!(valid["file"], VALID);
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["ops"], 4);
    assert!(valid.get("counterexample").is_none(), "{valid}");

    assert_eq!(invalid["file"], INVALID);
    assert_eq!(invalid["valid"], false);
    assert_eq!(invalid["ops"], 3);
    let c = &invalid["counterexample"];
    for field in ["op", "concurrent", "prefix", "states", "shrunk", "timeline"] {
        assert!(c.get(field).is_some(), "no counterexample `{field}` in {c}");
    }
    // The stale read: line 5's read of 1, after write 2 completed, in state 2.
    assert_eq!(c["op"]["line"], 5);
    assert_eq!(c["op"]["f"], "read");
    assert_eq!(c["states"], serde_json::json!([2]));
    let shrunk: Vec<u64> = c["shrunk"]
        .as_array()
        .expect("shrunk is a list")
        .iter()
        .map(|o| o["line"].as_u64().expect("a line"))
        .collect();
    assert_eq!(shrunk, [1, 3, 5]);
    assert!(
        c["timeline"]
            .as_str()
            .is_some_and(|t| t.contains("cannot be linearized")),
        "{c}"
    );
    assert!(c["concurrent"].is_array() && c["prefix"].is_array(), "{c}");
}

#[test]
fn witness_prints_a_linearization() {
    let golden = repo().join("histories");
    let file = "cas-register/cas-chain.valid.jsonl";
    let run = check(&golden, &["--witness", file]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("linearization:"), "{}", run.stdout);
    // The ops in the only order that works, by the lines they start on.
    let order: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.contains("linearization:"))
        .skip(1)
        .filter_map(|l| l.split("[lines ").nth(1).or(l.split("[line ").nth(1)))
        .map(|l| l.split(['-', ']']).next().unwrap_or_default())
        .collect();
    assert_eq!(order, ["1", "3", "6", "5", "11", "13"], "{}", run.stdout);

    let run = check(&golden, &["--witness", "--format", "json", file]);
    let o = &run.json()[0];
    let lines: Vec<u64> = o["witness"][0]["order"]
        .as_array()
        .expect("a witness order")
        .iter()
        .map(|op| op["line"].as_u64().expect("a line"))
        .collect();
    assert_eq!(lines, [1, 3, 6, 5, 11, 13]);
    // Without --witness, no witness.
    let run = check(&golden, &["--format", "json", file]);
    assert!(run.json()[0].get("witness").is_none(), "{run:?}");
}

// ---------------------------------------------------------------------------
// Consistency levels: histories/consistency/<model>/<what>.lin-X.seq-X.ev-X.jsonl

/// Every file under histories/consistency/, with its model and the verdict its
/// name gives at each level (linearizable, sequential, eventual).
fn consistency_goldens() -> Vec<(String, String, [bool; 3])> {
    let root = repo().join("histories/consistency");
    let mut out = Vec::new();
    for model in ["register", "set", "counter", "append"] {
        let mut files: Vec<String> = std::fs::read_dir(root.join(model))
            .unwrap_or_else(|e| panic!("histories/consistency/{model}: {e}"))
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        for f in files {
            let levels: Vec<bool> = f
                .trim_end_matches(".jsonl")
                .split('.')
                .skip(1)
                .map(|tag| tag.ends_with("-yes"))
                .collect();
            let levels: [bool; 3] = levels
                .try_into()
                .unwrap_or_else(|_| panic!("{f}: name must be <what>.lin-X.seq-X.ev-X.jsonl"));
            out.push((model.to_string(), format!("{model}/{f}"), levels));
        }
    }
    assert!(out.len() >= 10, "only {} consistency goldens", out.len());
    out
}

#[test]
fn consistency_golden_histories_get_the_verdicts_in_their_names() {
    let root = repo().join("histories/consistency");
    let mut wrong = Vec::new();
    for (model, file, levels) in consistency_goldens() {
        for (level, want) in ["linearizable", "sequential", "eventual"]
            .iter()
            .zip(levels)
        {
            let run = check(
                &root,
                &[
                    "--model",
                    &model,
                    "--consistency",
                    level,
                    "--format",
                    "json",
                    &file,
                ],
            );
            let o = &run.json()[0];
            if o["valid"] != Value::Bool(want) || run.code != i32::from(!want) {
                wrong.push(format!(
                    "{file} at {level}: exit {}, valid={}",
                    run.code, o["valid"]
                ));
            }
            assert_eq!(o["consistency"], *level, "{o}");
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn consistency_all_names_the_strongest_level_and_exits_by_linearizability() {
    let root = repo().join("histories/consistency");
    for (model, file, levels) in consistency_goldens() {
        let run = check(
            &root,
            &[
                "--model",
                &model,
                "--consistency",
                "all",
                "--format",
                "json",
                &file,
            ],
        );
        let o = &run.json()[0];
        let strongest = ["linearizable", "sequential", "eventual"]
            .iter()
            .zip(levels)
            .find(|(_, holds)| *holds)
            .map_or("none", |(l, _)| l);
        assert_eq!(o["consistency"], "all", "{o}");
        assert_eq!(o["strongest"], strongest, "{file}: {o}");
        assert_eq!(run.code, i32::from(!levels[0]), "{file}: {run:?}");
        let ruled_out: Vec<&str> = o
            .get("ruled_out")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|x| x["consistency"].as_str()).collect())
            .unwrap_or_default();
        let expected: Vec<&str> = ["linearizable", "sequential", "eventual"]
            .iter()
            .zip(levels)
            .filter(|(_, holds)| !holds)
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(ruled_out, expected, "{file}: {o}");
        for r in o
            .get("ruled_out")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(r["counterexample"].is_object(), "{file}: {r}");
        }
    }
}

#[test]
fn consistency_text_output_explains_each_level() {
    let root = repo().join("histories/consistency");
    let run = check(
        &root,
        &[
            "--model",
            "register",
            "--consistency",
            "all",
            "register/final-reads-disagree.lin-no.seq-yes.ev-no.jsonl",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    for needle in [
        "sequential; not convergent: final reads disagree: n1 read 1",
        "levels: linearizable ruled out; sequential holds; causal holds (implied by sequential); eventual ruled out",
        "ruled out: linearizable",
        "ruled out: eventual",
        "final reads disagree:",
        "n1 read 1",
    ] {
        assert!(
            run.stdout.contains(needle),
            "no `{needle}` in:\n{}",
            run.stdout
        );
    }
    let run = check(
        &root,
        &[
            "--model",
            "register",
            "--consistency",
            "sequential",
            "--witness",
            "register/stale-read-after-write.lin-no.seq-yes.ev-yes.jsonl",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("sequentially consistent"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("sequential order (all keys):"),
        "{}",
        run.stdout
    );
    let run = check(
        &root,
        &[
            "--consistency",
            "strict",
            "register/store-buffering.lin-no.seq-no.ev-yes.jsonl",
        ],
    );
    assert_eq!(run.code, 254, "{run:?}");
    assert!(
        run.stderr.contains("unknown consistency `strict`"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// Causal consistency: histories/causal/<model>/<what>.lin-X.seq-X.causal-X.jsonl

/// Every file under histories/causal/, with its model and the verdict its name
/// gives at linearizable, sequential and causal.
fn causal_goldens() -> Vec<(String, String, [bool; 3])> {
    let root = repo().join("histories/causal");
    let mut out = Vec::new();
    for model in ["register", "cas-register"] {
        let Ok(dir) = std::fs::read_dir(root.join(model)) else {
            continue;
        };
        let mut files: Vec<String> = dir
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        files.sort();
        for f in files {
            let tags: Vec<&str> = f.trim_end_matches(".jsonl").split('.').skip(1).collect();
            let levels: [bool; 3] = match tags[..] {
                [lin, seq, causal]
                    if lin.starts_with("lin-")
                        && seq.starts_with("seq-")
                        && causal.starts_with("causal-") =>
                {
                    [lin, seq, causal].map(|t| t.ends_with("-yes"))
                }
                _ => panic!("{f}: name must be <what>.lin-X.seq-X.causal-X.jsonl"),
            };
            out.push((model.to_string(), format!("{model}/{f}"), levels));
        }
    }
    out
}

#[test]
fn causal_golden_histories_get_the_verdicts_in_their_names() {
    let root = repo().join("histories/causal");
    let goldens = causal_goldens();
    let mut wrong = Vec::new();
    // Each bad pattern has a golden history that the checker names.
    let mut patterns = std::collections::BTreeSet::new();
    for (model, file, levels) in &goldens {
        for (level, want) in ["linearizable", "sequential", "causal"].iter().zip(levels) {
            let run = check(
                &root,
                &[
                    "--model",
                    model,
                    "--consistency",
                    level,
                    "--format",
                    "json",
                    file,
                ],
            );
            let o = &run.json()[0];
            if o["valid"] != Value::Bool(*want) || run.code != i32::from(!want) {
                wrong.push(format!(
                    "{file} at {level}: exit {}, valid={}",
                    run.code, o["valid"]
                ));
            }
            if *level == "causal" && !want {
                let pattern = o["counterexample"]["pattern"].as_str().unwrap_or_default();
                if !file.contains(&pattern_file_name(pattern)) {
                    wrong.push(format!("{file}: named pattern {pattern}"));
                }
                patterns.insert(pattern.to_string());
            }
        }
        // `all`: every level, the strongest safety level, exit by linearizability.
        let run = check(
            &root,
            &[
                "--model",
                model,
                "--consistency",
                "all",
                "--format",
                "json",
                file,
            ],
        );
        let o = &run.json()[0];
        let safety = ["linearizable", "sequential", "causal"]
            .iter()
            .zip(levels)
            .find(|(_, holds)| **holds)
            .map_or("none", |(l, _)| l);
        if o["safety"] != safety || run.code != i32::from(!levels[0]) {
            wrong.push(format!(
                "{file} at all: exit {}, safety={}",
                run.code, o["safety"]
            ));
        }
        let causal = o["levels"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["consistency"] == "causal"))
            .cloned()
            .unwrap_or_default();
        if causal["valid"] != Value::Bool(levels[2]) {
            wrong.push(format!("{file} at all: causal level {causal}"));
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(
        patterns.into_iter().collect::<Vec<_>>(),
        [
            "CyclicCO",
            "CyclicHB",
            "ThinAirRead",
            "WriteCOInitRead",
            "WriteCORead",
            "WriteHBInitRead"
        ],
        "a golden history per bad pattern"
    );
    assert!(goldens
        .iter()
        .any(|(_, f, l)| f.contains("iriw") && *l == [false, false, true]));
}

/// `WriteCOInitRead` is in a file named `write-co-init-read`.
fn pattern_file_name(pattern: &str) -> String {
    match pattern {
        "ThinAirRead" => "thin-air-read",
        "CyclicCO" => "cyclic-co",
        "WriteCOInitRead" => "write-co-init-read",
        "WriteCORead" => "write-co-read",
        "WriteHBInitRead" => "write-hb-init-read",
        "CyclicHB" => "cyclic-hb",
        other => other,
    }
    .to_string()
}

#[test]
fn causal_text_names_the_pattern_and_the_lines() {
    let run = check(
        &repo().join("histories/causal"),
        &[
            "--model",
            "register",
            "--consistency",
            "causal",
            "register/write-co-init-read.lin-no.seq-no.causal-no.jsonl",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    for needle in [
        "NOT causally consistent",
        "bad pattern WriteCOInitRead",
        "p2 read x as never written after reading y=2, which p1 wrote after reading x=1, which p0 wrote",
        "p2 read x null  [lines 9-10]",
    ] {
        assert!(run.stdout.contains(needle), "no `{needle}` in:\n{}", run.stdout);
    }
    // A model causal memory is not decided for: refused, not judged.
    let run = check(
        &repo().join("histories/consistency"),
        &[
            "--model",
            "set",
            "--consistency",
            "causal",
            "set/acknowledged-add-lost.lin-no.seq-yes.ev-no.jsonl",
        ],
    );
    assert_eq!(run.code, 254, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot be checked for causal consistency"),
        "{}",
        run.stderr
    );
    // Values written twice: causal is refused at its own level, and `all` says
    // it was not checked rather than judge it.
    let dup = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
               {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
               {\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
               {\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
               {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
               {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n\
               {\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
               {\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n";
    let dir = scratch(&[("dup.jsonl", dup)]);
    let run = check(
        dir.path(),
        &[
            "--model",
            "register",
            "--consistency",
            "causal",
            "dup.jsonl",
        ],
    );
    assert_eq!(run.code, 254, "{run:?}");
    assert!(
        run.stderr.contains("dup.jsonl:3: causal consistency is decided for histories whose written values are unique per key, but 1 is written again (first at line 1)"),
        "{}",
        run.stderr
    );
    let run = check(
        dir.path(),
        &["--model", "register", "--consistency", "all", "dup.jsonl"],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("not sequential; causal not checked;")
            && run.stdout.contains("causal: not checked: dup.jsonl:3:"),
        "{}",
        run.stdout
    );
    // `all` on a set: the lattice's verdict in one line.
    let run = check(
        &repo().join("histories/consistency"),
        &[
            "--model",
            "set",
            "--consistency",
            "all",
            "set/acknowledged-add-lost.lin-no.seq-yes.ev-no.jsonl",
        ],
    );
    assert!(
        run.stdout.contains(
            "sequential; not convergent: add 2 acknowledged at line 4, absent from every final read"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn lost_adds_are_named_with_when_and_where_they_were_acknowledged() {
    let root = repo().join("histories/consistency");
    let file = "set/isolated-primary-loses-acknowledged-adds.lin-no.seq-no.ev-no.jsonl";
    let run = check(&root, &["--model", "set", "--consistency", "all", file]);
    assert_eq!(run.code, 1, "{run:?}");
    for needle in [
        "no safety level holds; not convergent: add 3 acknowledged at line 7, absent from every final read (1 more lost)",
        "  lost acknowledged adds (2 in all, earliest acknowledged first):\n    add 3 acknowledged at 2.504 s by p0 via n1, line 7; missing on n1, n2, n3\n    add 5 acknowledged at 3.512 s by p0 via n1, line 11; missing on n1, n2, n3\n",
        // Listed once, not once per level it rules out.
        "  ruled out: eventual\n  the same lost adds and final reads as linearizable above\n",
    ] {
        assert!(run.stdout.contains(needle), "no `{needle}` in:\n{}", run.stdout);
    }
    assert_eq!(
        run.stdout.matches("add 5 acknowledged").count(),
        1,
        "{}",
        run.stdout
    );
    // The JSON: the count and each lost add's record.
    let run = check(
        &root,
        &[
            "--model",
            "set",
            "--consistency",
            "eventual",
            "--format",
            "json",
            file,
        ],
    );
    let c = &run.json()[0]["counterexample"];
    assert_eq!(c["lost_count"], 2, "{c}");
    assert_eq!(
        c["lost"][1],
        serde_json::json!({"element": 5, "process": 0, "time": 3512000000_i64, "line": 11,
                           "node": "n1", "missing_from": ["n1", "n2", "n3"]})
    );
}

#[test]
fn eventual_without_final_reads_is_unknown() {
    let run = check(
        &repo().join("histories"),
        &[
            "--model",
            "register",
            "--consistency",
            "eventual",
            "register/stale-read.invalid.jsonl",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.contains("no final reads"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------
// Hostile input (issue 12): no panic, no misleading verdict, words not debug output.

const W: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}
{"process":0,"type":"ok","f":"write","value":1}
"#;

#[test]
fn huge_time_limits_are_accepted_or_refused_without_a_panic() {
    let dir = scratch(&[("w.jsonl", W)]);
    for limit in ["1e19", "1e9"] {
        let r = check(
            dir.path(),
            &["--model", "register", "--time-limit", limit, "w.jsonl"],
        );
        assert_eq!(r.code, 0, "{limit}: {r:?}");
    }
    let r = check(
        dir.path(),
        &["--model", "register", "--time-limit", "1e20", "w.jsonl"],
    );
    assert_eq!(r.code, 254, "a usage error: {r:?}");
    assert!(r.stderr.contains("too long a time limit"), "{r:?}");
}

#[test]
fn deep_edn_nesting_is_refused_with_its_line() {
    for (open, close) in [("[", "]"), ("{:a ", "}"), ("#{", "}"), ("#tag ", "")] {
        let text = format!(
            "[{{:process 0, :type :invoke, :f :write,\n :value {}1{}}}]",
            open.repeat(10_000),
            close.repeat(10_000)
        );
        rejects(
            "deep.edn",
            &text,
            &[],
            "deep.edn:2: EDN syntax error: nested deeper than 128 levels",
        );
    }
}

#[test]
fn integers_beyond_64_bits_are_refused_not_rounded() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":100000000000000000000001}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":100000000000000000000001}\n\
                {\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":100000000000000000000002}\n";
    rejects(
        "big.jsonl",
        text,
        &["--model", "register"],
        "big.jsonl:1: field `value`: integer 100000000000000000000001 does not fit in 64 bits",
    );
    let text = "[{:process 0, :type :invoke, :f :write, :value 100000000000000000000001}]";
    rejects(
        "big.edn",
        text,
        &["--model", "register"],
        "big.edn:1: EDN syntax error: integer 100000000000000000000001 does not fit in 64 bits",
    );
}

#[test]
fn edn_errors_are_words_and_clojure_output_reads() {
    for (text, expected) in [
        (
            "[{:process 0, :type :invoke, :f}]",
            "the map opened on line 1 has a key without a value",
        ),
        (
            "[{:process 0, :type :invoke, :f :read, :f :read}]",
            "has the key :f twice",
        ),
        (
            "[{:process 0, :type :invoke, :f :read, :value 12abc}]",
            "invalid number `12abc`",
        ),
        (
            "[{:process 0, :type :invoke, :f a@b}]",
            "invalid symbol `a@b`",
        ),
    ] {
        rejects("m.edn", text, &[], expected);
        let dir = scratch(&[("m.edn", text)]);
        let r = check(dir.path(), &["m.edn"]);
        for debug in [
            "OddNumber",
            "DuplicateKey",
            "BadInt",
            "InvalidSymbol",
            "Keyword(",
        ] {
            assert!(!r.stderr.contains(debug), "{r:?}");
        }
    }
    let text = "[#_{:process 5} {:process 0, :type :invoke, :f :write, :value ##NaN}\n\
                {:process 0, :type :ok, :f :write, :value ##NaN}\n\
                {:process 1, :type :invoke, :f :read, :value nil}\n\
                {:process 1, :type :ok, :f :read, :value ##Inf}]";
    let dir = scratch(&[("c.edn", text)]);
    let r = check(dir.path(), &["--model", "register", "c.edn"]);
    assert_eq!(r.code, 1, "read ##Inf though ##NaN was written: {r:?}");
}

#[test]
fn invalid_utf8_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = W.as_bytes().to_vec();
    bytes.extend_from_slice(b"{\"process\":1,\"type\":\"invoke\",\"f\":\"\xff\"}\n");
    std::fs::write(dir.path().join("u.jsonl"), bytes).unwrap();
    let r = check(dir.path(), &["u.jsonl"]);
    assert_eq!(r.code, 254, "{r:?}");
    assert!(
        r.stderr
            .contains("u.jsonl:3: not UTF-8 text: invalid byte at column 35"),
        "{r:?}"
    );
}

#[test]
fn init_takes_negative_numbers() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":-1}\n";
    let dir = scratch(&[("c.jsonl", text)]);
    let r = check(
        dir.path(),
        &["--model", "counter", "--init", "-1", "c.jsonl"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = check(
        dir.path(),
        &["--model", "counter", "--init", "\"x\"", "c.jsonl"],
    );
    assert_eq!(r.code, 254, "{r:?}");
    assert!(
        r.stderr
            .contains("initial value does not fit the counter model"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("--init"),
        "the binary names its flag: {r:?}"
    );
}

#[test]
fn outputs_never_overwrite_a_history_or_each_other() {
    let dir = scratch(&[("w.jsonl", W)]);
    for args in [
        &["--html", "w.jsonl", "w.jsonl"][..],
        &["--junit", "./w.jsonl", "w.jsonl"][..],
        &["--html", "x.out", "--junit", "./x.out", "w.jsonl"][..],
    ] {
        let mut all = vec!["--model", "register"];
        all.extend_from_slice(args);
        let r = check(dir.path(), &all);
        assert_eq!(r.code, 254, "{args:?}: {r:?}");
        assert!(r.stderr.contains("choose"), "{args:?}: {r:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("w.jsonl")).unwrap(),
            W
        );
        assert!(!dir.path().join("x.out").exists());
    }
}

#[test]
fn failed_output_writes_print_the_verdict_then_exit_254() {
    let dir = scratch(&[("w.jsonl", W)]);
    for flag in ["--html", "--junit"] {
        let r = check(
            dir.path(),
            &["--model", "register", flag, "no/such/dir/out", "w.jsonl"],
        );
        assert_eq!(r.code, 254, "{flag}: {r:?}");
        assert!(
            r.stdout.contains("w.jsonl: "),
            "the verdict is printed: {flag}: {r:?}"
        );
        assert!(r.stderr.contains("cannot write"), "{flag}: {r:?}");
    }
}

// ---------------------------------------------------------------------------
// The store's versions: histories/versions/<model>/<what>.lin-X.seq-X[.finding].jsonl

/// Every file under histories/versions/, with its model, its path there, the
/// verdicts its name gives (linearizable, sequential) and whether the store's
/// versions in it contradict each other (`.finding`).
fn versions_goldens() -> Vec<(String, String, [bool; 2], bool)> {
    let root = repo().join("histories/versions");
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    let mut out = Vec::new();
    for model in names(&root) {
        if !root.join(&model).is_dir() {
            continue;
        }
        for f in names(&root.join(&model)) {
            let tags: Vec<&str> = f.trim_end_matches(".jsonl").split('.').skip(1).collect();
            let yes = |tag: &str, level: &str| match tag.strip_prefix(level) {
                Some("-yes") => true,
                Some("-no") => false,
                _ => panic!("{model}/{f}: `{tag}` is not {level}-yes or {level}-no"),
            };
            let (levels, finding) = match tags[..] {
                [lin, seq] => ([yes(lin, "lin"), yes(seq, "seq")], false),
                [lin, seq, "finding"] => ([yes(lin, "lin"), yes(seq, "seq")], true),
                _ => panic!("{model}/{f}: name must be <what>.lin-X.seq-X[.finding].jsonl"),
            };
            out.push((model.clone(), format!("{model}/{f}"), levels, finding));
        }
    }
    assert!(out.len() >= 10, "only {} versions goldens", out.len());
    out
}

/// What `--format json` says about a history the store's versions decide: the
/// assumption, and for a violation the cycle edge by edge. Returns the cycle's
/// dependency kinds.
fn decided_by_versions(file: &str, o: &Value) -> Vec<String> {
    assert_eq!(
        o["versions"]["assumption"], "write order taken from the store's versions",
        "{file}: {o}"
    );
    if o["valid"] == Value::Bool(true) {
        return Vec::new();
    }
    let c = &o["counterexample"];
    let ops = c["ops"].as_array().unwrap_or_else(|| panic!("{file}: {c}"));
    let steps = c["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{file}: {c}"));
    assert!(ops.len() >= 2 && ops.len() == steps.len(), "{file}: {c}");
    assert!(ops.iter().all(|op| op["line"].is_u64()), "{file}: {c}");
    assert_eq!(
        c["versions"].as_array().map(Vec::len),
        Some(ops.len()),
        "{file}: {c}"
    );
    assert!(
        c["anomaly"].as_str().is_some_and(|a| a.starts_with('G')),
        "{file}: {c}"
    );
    assert!(c["summary"].is_string(), "{file}: {c}");
    steps
        .iter()
        .map(|s| {
            assert!(
                s["why"].as_str().is_some_and(|w| w.contains("line")),
                "{file}: {s}"
            );
            s["dependency"].as_str().expect("a dependency").to_string()
        })
        .collect()
}

#[test]
fn versions_golden_histories_are_decided_as_their_names_say() {
    let root = repo().join("histories/versions");
    let mut wrong = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (model, file, levels, finding) in versions_goldens() {
        for (level, want) in ["linearizable", "sequential"].iter().zip(levels) {
            let run = check(
                &root,
                &[
                    "--model",
                    &model,
                    "--consistency",
                    level,
                    "--format",
                    "json",
                    &file,
                ],
            );
            let o = &run.json()[0];
            if o["valid"] != Value::Bool(want) || run.code != i32::from(!want) {
                wrong.push(format!(
                    "{file} at {level}: exit {}, valid={}",
                    run.code, o["valid"]
                ));
            }
            if finding {
                // The versions contradict each other: a finding, and the search
                // decides instead.
                let findings = o["version_findings"].as_array();
                assert!(findings.is_some_and(|f| !f.is_empty()), "{file}: {o}");
                assert!(o.get("versions").is_none(), "{file}: {o}");
            } else {
                kinds.extend(decided_by_versions(&file, o));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    // A cycle through each kind of edge.
    let all = [
        "process",
        "read-write",
        "real-time",
        "write-read",
        "write-write",
    ];
    assert_eq!(kinds.iter().map(String::as_str).collect::<Vec<_>>(), all);
}

#[test]
fn a_versions_cycle_is_explained_edge_by_edge_in_text() {
    let root = repo().join("histories/versions");
    let run = check(
        &root,
        &[
            "--model",
            "register",
            "register/stale-read.lin-no.seq-yes.jsonl",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    for needle in [
        "write order taken from the store's versions",
        "G-single-realtime: p2's read 1 (line 5) read version 10, but p1's write 2 (line 3), which created version 11, had already completed (line 4)",
        "p2's read 1 (line 5) read version 10, which p1's write 2 (line 3) overwrote with version 11",
        "p1's write 2 (line 3) had completed (line 4) before p2's read 1 (line 5) began",
    ] {
        assert!(
            run.stdout.contains(needle),
            "no `{needle}` in:\n{}",
            run.stdout
        );
    }
}

/// `n` writes of unique values that never complete, then one reader that sees
/// each in turn at the version the store gave it: the history that defeats a
/// search (the issue's exponential cliff), and that the versions decide at once.
/// With `stale_read`, another process then reads the first value again.
fn pending_writes(n: usize, stale_read: bool) -> String {
    let mut out = String::new();
    for i in 1..=n {
        out += &format!("{{\"process\":{i},\"type\":\"invoke\",\"f\":\"write\",\"value\":{i}}}\n");
    }
    for i in 1..=n {
        out += "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n";
        out += &format!(
            "{{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":{i},\"version\":{}}}\n",
            1000 + i
        );
    }
    if stale_read {
        let p = n + 1;
        out += &format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n");
        out += &format!(
            "{{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":1,\"version\":1001}}\n"
        );
    }
    out
}

#[test]
fn two_thousand_pending_writes_are_decided_from_the_versions() {
    let dir = scratch(&[
        ("pending.jsonl", &pending_writes(2000, false)),
        ("stale.jsonl", &pending_writes(2000, true)),
    ]);
    for (file, level, want) in [
        ("pending.jsonl", "linearizable", true),
        ("pending.jsonl", "sequential", true),
        ("stale.jsonl", "linearizable", false),
        // Another process may lag behind.
        ("stale.jsonl", "sequential", true),
    ] {
        let run = check(
            dir.path(),
            &[
                "--model",
                "register",
                "--consistency",
                level,
                "--format",
                "json",
                file,
            ],
        );
        let o = &run.json()[0];
        assert_eq!(o["valid"], Value::Bool(want), "{file} at {level}: {o}");
        assert_eq!(run.code, i32::from(!want), "{file} at {level}");
        let kinds = decided_by_versions(file, o);
        if !want {
            // The stale read, the write after the version it read, and the read
            // of that write's version, which completed before it began.
            assert_eq!(o["counterexample"]["ops"].as_array().map(Vec::len), Some(3));
            assert!(kinds.contains(&"read-write".to_string()), "{o}");
        }
    }
}
