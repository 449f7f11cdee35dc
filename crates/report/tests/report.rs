//! Reports rendered from golden histories and from a generated 100,000-op one:
//! their structure, their size bound, and JUnit that a real XML parser reads.

use serde_json::{json, Value};
use splitbrain_checker::{check, Consistency, ModelKind, Options};
use splitbrain_history::History;
use splitbrain_report::{html, junit, svg, ReportData};
use std::path::{Path, PathBuf};

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../histories")
        .join(rel)
}

fn checked(
    rel: &str,
    model: ModelKind,
    consistency: Consistency,
) -> (History, splitbrain_checker::Report) {
    let h = History::read_path(&golden(rel)).unwrap();
    let opts = Options {
        model,
        consistency,
        ..Options::default()
    };
    let r = check(&h, &opts).unwrap();
    (h, r)
}

/// The JSON the page embeds, read back out of the page.
fn embedded(page: &str) -> Value {
    let start = page
        .find("<script type=\"application/json\" id=\"data\">")
        .expect("the data element");
    let rest = &page[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</script>").unwrap();
    serde_json::from_str(&rest[open..close]).expect("the embedded data is JSON")
}

/// Self-contained: nothing is fetched, nothing links out.
fn assert_self_contained(page: &str) {
    for bad in [
        "src=",
        "<link",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
        "https://",
        "http://cdn",
    ] {
        assert!(!page.contains(bad), "the page contains {bad:?}");
    }
    // The only URL is the SVG namespace.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("http://www.w3.org/2000/svg").count()
    );
}

#[test]
fn an_invalid_history_gets_its_counterexample_drawn_with_the_states_step_by_step() {
    let (h, r) = checked(
        "register/stale-read.invalid.jsonl",
        ModelKind::Register,
        Consistency::Linearizable,
    );
    let data = ReportData::build(&h, &r, None);
    let page = html::render(&data);
    assert_self_contained(&page);
    let d = embedded(&page);
    assert_eq!(d["meta"]["verdict"], "invalid");
    assert_eq!(d["meta"]["headline"], "NOT linearizable");
    assert_eq!(
        d["meta"]["why"],
        "linearizable: cannot linearize: p2 read 1  [lines 5-6]"
    );
    assert_eq!(d["levels"][0]["status"], "ruled out");
    assert!(d["levels"][0]["text"]
        .as_str()
        .unwrap()
        .contains("^ cannot be linearized"));
    // The shrunk counterexample: three ops, the read the culprit.
    let shrunk = d["shrunk"][0]["ops"].as_array().unwrap();
    assert_eq!(shrunk.len(), 3);
    let culprits: Vec<_> = shrunk.iter().filter(|o| o["k"] == 3).collect();
    assert_eq!(culprits.len(), 1);
    assert_eq!(culprits[0]["l"], "read 1");
    // The partial linearization with the state after each op, then the culprit.
    let steps = &d["steps"];
    assert_eq!(steps["prefix_len"], 2);
    let states: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["1", "2"]);
    assert_eq!(steps["culprit"]["l"], "read 1");
    // Every op of this small history is on the timeline, nothing cut.
    assert_eq!(d["timeline"]["ops"].as_array().unwrap().len(), 3);
    assert_eq!(d["cuts"], json!([]));
}

#[test]
fn a_cycle_from_the_store_s_versions_is_drawn_edge_by_edge() {
    let (h, r) = checked(
        "versions/register/stale-read.lin-no.seq-yes.jsonl",
        ModelKind::Register,
        Consistency::Linearizable,
    );
    let page = html::render(&ReportData::build(&h, &r, None));
    assert_self_contained(&page);
    assert!(page.contains("function drawCycle("));
    let d = embedded(&page);
    assert_eq!(d["meta"]["verdict"], "invalid");
    let why = d["meta"]["why"].as_str().unwrap();
    assert!(
        why.starts_with(
            "linearizable: G-single-realtime: p2's read 1 (line 5) read version 10, but p1's write 2 (line 3)"
        ),
        "{why}"
    );
    // The cycle's two ops, each with its version, and an arrow each way.
    let v = &d["shrunk"][0];
    let labels: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["l"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["write 2 · v11", "read 1 · v10"]);
    let c = &v["cycle"];
    assert_eq!(c["anomaly"], "G-single-realtime");
    assert_eq!(
        c["assumption"],
        "write order taken from the store's versions"
    );
    let edges: Vec<(u64, u64, &str)> = c["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_u64().unwrap(),
                e["to"].as_u64().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(edges, [(1, 0, "rw"), (0, 1, "realtime")]);
    assert_eq!(
        c["edges"][0]["why"],
        "p2's read 1 (line 5) read version 10, which p1's write 2 (line 3) overwrote with version 11"
    );
    // The history's timeline centres on the cycle.
    let outlined = d["timeline"]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["k"] == 1)
        .count();
    assert_eq!(outlined, 2);
}

#[test]
fn each_level_a_versions_cycle_rules_out_gets_its_own_drawing() {
    let (h, r) = checked(
        "versions/register/version-goes-back-in-one-process.lin-no.seq-no.jsonl",
        ModelKind::Register,
        Consistency::All,
    );
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    let drawn: Vec<(&str, &str)> = d["shrunk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["level"].as_str().unwrap(),
                v["cycle"]["anomaly"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        drawn,
        [
            ("linearizable", "G-single-realtime"),
            ("sequential", "G-single-process")
        ]
    );
    let kinds: Vec<&str> = d["shrunk"][1]["cycle"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rw", "wr", "process"]);
}

#[test]
fn a_valid_history_gets_a_green_report_without_a_counterexample() {
    let (h, r) = checked(
        "register/info-write-seen-later.valid.jsonl",
        ModelKind::Register,
        Consistency::Linearizable,
    );
    let page = html::render(&ReportData::build(&h, &r, None));
    assert_self_contained(&page);
    let d = embedded(&page);
    assert_eq!(d["meta"]["verdict"], "valid");
    assert_eq!(d["meta"]["headline"], "linearizable");
    assert_eq!(d["levels"][0]["status"], "holds");
    assert_eq!(d["shrunk"], json!([]));
    assert_eq!(d["steps"], Value::Null);
    assert_eq!(
        d["timeline"]["ops"].as_array().unwrap().len(),
        h.pairs().len()
    );
    // The info write is drawn as info.
    assert!(d["timeline"]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["o"] == "info"));
}

#[test]
fn all_levels_name_what_was_ruled_out_and_junit_fails_once_per_invalid_level() {
    let (h, r) = checked(
        "consistency/register/store-buffering.lin-no.seq-no.ev-yes.jsonl",
        ModelKind::Register,
        Consistency::All,
    );
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    let statuses: Vec<(&str, &str)> = d["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("linearizable", "ruled out"),
            ("sequential", "ruled out"),
            ("causal", "holds"),
            ("eventual", "holds")
        ]
    );
    let xml = junit::to_xml("splitbrain check", &junit::cases(&r, "store-buffering"));
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["linearizable", "sequential"]);
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("2"));
    assert_eq!(suite.attribute("tests"), Some("4"));
    // The failure carries the counterexample's text, timeline included.
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .attribute("message")
        .unwrap()
        .starts_with("NOT linearizable"));
    assert!(failure.text().unwrap().contains("smallest sub-history"));
}

#[test]
fn junit_escapes_what_xml_cannot_hold() {
    let case = junit::error_case("a<b>&\"c'\u{1}", "linearizable", "bad & <worse>\nline 2");
    let xml = junit::to_xml("s", &[case]);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let tc = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(tc.attribute("classname"), Some("a<b>&\"c'"));
    let err = tc.children().find(|n| n.has_tag_name("error")).unwrap();
    assert_eq!(err.attribute("message"), Some("bad & <worse>\nline 2"));
    assert_eq!(err.text(), Some("bad & <worse>\nline 2"));
}

#[test]
fn a_100k_op_report_stays_under_5_mb_and_says_what_it_cut() {
    let h = splitbrain_report::sample::register_history(100_000);
    let opts = Options {
        model: ModelKind::Register,
        init: json!(0),
        shrink_time: std::time::Duration::from_secs(3),
        ..Options::default()
    };
    let r = check(&h, &opts).unwrap();
    assert_eq!(r.verdict, splitbrain_checker::Verdict::Invalid);
    let data = ReportData::build(&h, &r, None);
    let page = html::render(&data);
    assert!(
        page.len() < 5 << 20,
        "report.html is {} bytes for 100,000 ops",
        page.len()
    );
    let d = embedded(&page);
    let drawn = d["timeline"]["ops"].as_array().unwrap().len();
    assert!(drawn <= splitbrain_report::data::MAX_TIMELINE_OPS);
    assert!(
        d["timeline"]["ops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["k"] == 3),
        "{}\n{}",
        splitbrain_checker::render_text(&r),
        d["shrunk"]
    );
    let cuts = d["cuts"].as_array().unwrap();
    assert!(cuts
        .iter()
        .any(|c| c.as_str().unwrap().contains("timeline draws")));
    assert!(cuts
        .iter()
        .any(|c| c.as_str().unwrap().starts_with("latency:")));
    assert!(!d["faults"].as_array().unwrap().is_empty());
    assert!(!d["latency"]["raw"].as_bool().unwrap());
    // The plotters SVGs are bounded too, and are XML.
    for (name, s) in [("latency", svg::latency(&data)), ("rate", svg::rate(&data))] {
        assert!(s.len() < 1 << 20, "{name}.svg is {} bytes", s.len());
        let doc = roxmltree::Document::parse(&s).unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }
    // For the bench script and the browser test.
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-100k.html");
    std::fs::write(&out, &page).unwrap();
    eprintln!(
        "report for 100,000 ops: {} bytes, {}",
        page.len(),
        out.display()
    );
}

#[test]
fn run_files_are_written_beside_the_history() {
    let (h, r) = checked(
        "register/stale-read-during-partition.invalid.jsonl",
        ModelKind::Register,
        Consistency::Linearizable,
    );
    let dir = tempfile::tempdir().unwrap();
    let meta = splitbrain_report::RunMeta {
        test: "t".into(),
        started: "20261122T000000.000Z".into(),
        summary: json!({"invoked": 4, "ok": 4, "fail": 0, "info": 0, "faults": 1, "elapsed_s": 1.0}),
    };
    splitbrain_report::write_run_files(dir.path(), &h, &r, Some(&meta)).unwrap();
    for f in ["report.html", "latency.svg", "rate.svg"] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let d = embedded(&std::fs::read_to_string(dir.path().join("report.html")).unwrap());
    assert_eq!(d["run"]["test"], "t");
}

#[test]
fn final_reads_that_do_not_converge_are_listed() {
    let (h, r) = checked(
        "consistency/register/final-reads-disagree.lin-no.seq-yes.ev-no.jsonl",
        ModelKind::Register,
        Consistency::Eventual,
    );
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    assert_eq!(d["meta"]["verdict"], "invalid");
    let reads: Vec<(String, String)> = d["divergences"][0]["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        reads,
        [
            ("n1".into(), "1".into()),
            ("n2".into(), "2".into()),
            ("n3".into(), "2".into())
        ]
    );
    let (h, r) = checked(
        "consistency/set/acknowledged-add-lost.lin-no.seq-yes.ev-no.jsonl",
        ModelKind::Set,
        Consistency::Eventual,
    );
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    let notes = d["divergences"][0]["notes"].to_string();
    assert!(
        notes.contains("lost (acknowledged, missing from a final read): 2"),
        "{notes}"
    );
}

#[test]
fn lost_adds_are_a_table_with_when_and_where_and_junit_counts_them() {
    let (h, r) = checked(
        "consistency/set/isolated-primary-loses-acknowledged-adds.lin-no.seq-no.ev-no.jsonl",
        ModelKind::Set,
        Consistency::All,
    );
    let page = html::render(&ReportData::build(&h, &r, None));
    assert_self_contained(&page);
    let d = embedded(&page);
    // The first level the lost adds rule out, with every lost add in order.
    assert_eq!(d["lost"]["level"], "linearizable");
    assert_eq!(d["lost"]["total"], 2);
    assert_eq!(
        d["lost"]["rows"],
        json!([
            {"element": "3", "key": null, "process": "p0", "time_s": 2.504, "line": 7,
             "node": "n1", "missing_from": "n1, n2, n3"},
            {"element": "5", "key": null, "process": "p0", "time_s": 3.512, "line": 11,
             "node": "n1", "missing_from": "n1, n2, n3"},
        ])
    );
    assert_eq!(d["cuts"], json!([]));
    // The script draws the table from that data: its columns and a row each.
    for needle in [
        r#"["element", "key", "process", "acknowledged at", "line", "node", "missing on"]"#,
        r#"h("tr", { "data-lost": i }, ltb)"#,
    ] {
        assert!(page.contains(needle), "the page draws no {needle}");
    }
    // JUnit: each level the lost adds rule out counts them in its message.
    let xml = junit::to_xml("splitbrain check", &junit::cases(&r, "lost"));
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let messages: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .map(|f| {
            (
                f.parent().unwrap().attribute("name").unwrap(),
                f.attribute("message").unwrap(),
            )
        })
        .collect();
    let first = "2 acknowledged adds lost, the first: add 3 acknowledged at 2.504 s by p0 via n1, line 7; missing on n1, n2, n3";
    let levels: Vec<&str> = messages.iter().map(|(level, _)| *level).collect();
    assert_eq!(levels, ["linearizable", "sequential", "eventual"]);
    for ((_, message), verdict) in messages.iter().zip([
        "NOT linearizable",
        "NOT sequentially consistent",
        "NOT eventually consistent",
    ]) {
        // The verdict (with the model, ops and time), then the lost adds.
        assert!(
            message.starts_with(verdict) && message.ends_with(&format!("): {first}")),
            "{message}"
        );
    }
}

#[test]
fn a_set_that_lost_many_adds_lists_the_first_and_counts_them_all() {
    // 150 acknowledged adds over 15 keys, none in the final reads.
    let mut lines = Vec::new();
    for i in 0..150 {
        let add = format!(
            r#""f":"add","value":{i},"key":{},"time":{}"#,
            i % 15,
            i * 1_000_000
        );
        lines.push(format!(r#"{{"process":0,"type":"invoke",{add}}}"#));
        lines.push(format!(r#"{{"process":0,"type":"ok",{add}}}"#));
    }
    for k in 0..15 {
        let read = format!(r#""f":"read","key":{k},"node":"n1","final":true"#);
        lines.push(format!(
            r#"{{"process":9,"type":"invoke","value":null,{read}}}"#
        ));
        lines.push(format!(r#"{{"process":9,"type":"ok","value":[],{read}}}"#));
    }
    let h = splitbrain_history::jsonl::parse("many.jsonl", &lines.join("\n")).unwrap();
    let opts = Options {
        model: ModelKind::Set,
        consistency: Consistency::Eventual,
        ..Options::default()
    };
    let r = check(&h, &opts).unwrap();
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    assert_eq!(d["lost"]["total"], 150);
    let rows = d["lost"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), splitbrain_report::data::MAX_LOST_ROWS);
    assert_eq!(rows[99]["element"], "99");
    assert_eq!(rows[99]["key"], "9");
    assert_eq!(rows[99]["line"], 200);
    let cuts = d["cuts"].to_string();
    assert!(
        cuts.contains("lost acknowledged adds: the first 100 of 150 by acknowledgement (results.json lists the first 150)"),
        "{cuts}"
    );
    let xml = junit::to_xml("s", &junit::cases(&r, "many"));
    assert!(
        xml.contains("ms): 150 acknowledged adds lost, the first: add 0 to key 0 acknowledged at 0.000 s by p0, line 2; missing on n1\""),
        "{xml}"
    );
}

/// Times are the user's: they may start at the epoch, run backwards, or end with a
/// 0. The page's charts stay bounded and start at the earliest time anyway.
#[test]
fn odd_times_keep_the_charts_bounded() {
    use splitbrain_history::{Op, OpType, Process};
    let epoch_ns: i64 = 1_790_000_000_000_000_000;
    let n = 60_000;
    let mut ops = Vec::with_capacity(2 * n);
    for i in 0..n {
        let p = Process::Client(0);
        // Backwards, from the epoch, and the very last completion at time 0.
        let t = epoch_ns - (i as i64) * 1_000_000;
        let mut inv = Op::new(p, OpType::Invoke, "write", json!(i));
        inv.set_time(Some(t));
        let mut ok = Op::new(p, OpType::Ok, "write", json!(i));
        ok.set_time(Some(if i == n - 1 { 0 } else { t + 500_000 }));
        ops.push(inv);
        ops.push(ok);
    }
    let h = History::new("odd-times", ops, None).unwrap();
    let r = check(
        &h,
        &Options {
            model: ModelKind::Register,
            consistency: Consistency::Eventual,
            ..Options::default()
        },
    )
    .unwrap();
    let data = ReportData::build(&h, &r, None);
    // The earliest time is 0: the axis runs from there to the epoch's worth of
    // seconds, and nothing is drawn before 0.
    assert!(data.meta.t_end > 1.7e9, "{}", data.meta.t_end);
    let latency = data.latency.expect("latency is drawn");
    assert!(!latency.raw);
    for s in &latency.series {
        assert!(
            s.points.len() <= splitbrain_report::data::BUCKETS + 1,
            "{} points",
            s.points.len()
        );
        assert!(s.points.iter().all(|p| p[0] >= 0.0));
    }
}

/// A set's state is every element: a counterexample on a big set has a long text,
/// which the page keeps to its first 64 kB and says so.
#[test]
fn a_huge_model_state_is_cut_in_the_page() {
    use splitbrain_history::{Op, OpType, Process};
    let n = 15_000;
    let mut ops = Vec::with_capacity(2 * n + 2);
    for i in 0..n {
        ops.push(Op::new(Process::Client(0), OpType::Invoke, "add", json!(i)));
        ops.push(Op::new(Process::Client(0), OpType::Ok, "add", json!(i)));
    }
    ops.push(Op::new(
        Process::Client(1),
        OpType::Invoke,
        "read",
        Value::Null,
    ));
    ops.push(Op::new(Process::Client(1), OpType::Ok, "read", json!([0])));
    let h = History::new("big-set", ops, None).unwrap();
    let r = check(
        &h,
        &Options {
            model: ModelKind::Set,
            ..Options::default()
        },
    )
    .unwrap();
    let data = ReportData::build(&h, &r, None);
    let text = &data.levels[0].text;
    assert!(
        text.len() <= splitbrain_report::data::MAX_TEXT + 8,
        "{}",
        text.len()
    );
    assert!(
        data.cuts.iter().any(|c| c.contains("the checker's text")),
        "{:?}",
        data.cuts
    );
}

#[test]
fn a_causal_violation_is_a_level_of_the_page_and_a_failing_junit_case() {
    let (h, r) = checked(
        "causal/register/cyclic-co.lin-no.seq-no.causal-no.jsonl",
        ModelKind::Register,
        Consistency::All,
    );
    let d = embedded(&html::render(&ReportData::build(&h, &r, None)));
    let causal = d["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "causal")
        .expect("causal is among the levels");
    assert_eq!(causal["status"], "ruled out");
    let xml = junit::to_xml("splitbrain check", &junit::cases(&r, "cyclic-co"));
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("causal"))
        .expect("a causal test case");
    let failure = case
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("the causal case fails");
    assert!(
        failure.text().unwrap_or_default().contains("CyclicCO"),
        "{xml}"
    );
}
