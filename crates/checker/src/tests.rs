use super::*;
use serde_json::json;
use splitbrain_history::{Op, OpType, Process};

/// Builds a history from `(process, type, f, value)` rows.
pub(crate) fn h(rows: &[(i64, OpType, &str, Value)]) -> History {
    History::new(
        "test",
        rows.iter()
            .map(|(p, t, f, v)| Op::new(Process::Client(*p), *t, *f, v.clone()))
            .collect(),
        None,
    )
    .unwrap()
}

fn verdict(hist: &History, model: ModelKind) -> Verdict {
    let opts = Options {
        model,
        ..Options::default()
    };
    check(hist, &opts).unwrap().verdict
}

use OpType::{Fail, Info, Invoke, Ok as Done};

#[test]
fn concurrent_write_and_read_is_linearizable() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (1, Invoke, "read", Value::Null),
        (0, Done, "write", json!(1)),
        (1, Done, "read", json!(1)),
    ]);
    assert_eq!(verdict(&hist, ModelKind::Register), Verdict::Valid);
}

#[test]
fn stale_read_is_not_linearizable_and_shrinks_to_three_ops() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (3, Invoke, "read", Value::Null),
        (3, Done, "read", json!(1)),
        (1, Invoke, "write", json!(2)),
        (1, Done, "write", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(1)),
    ]);
    let r = check(
        &hist,
        &Options {
            model: ModelKind::Register,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = r.counterexample.unwrap().linearizable().unwrap().clone();
    assert_eq!(c.op.label, "read 1");
    assert_eq!(c.op.process, 2);
    assert_eq!(c.states, vec![json!(2)]);
    // The prefix step by step: write 1, read 1, write 2, with the state after each.
    let prefix: Vec<&str> = c.prefix.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(prefix, ["write 1", "read 1", "write 2"]);
    assert_eq!(c.prefix_states, [json!(1), json!(1), json!(2)]);
    let labels: Vec<&str> = c.shrunk.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["write 1", "write 2", "read 1"]);
    assert!(
        c.timeline.contains("^ cannot be linearized"),
        "{}",
        c.timeline
    );
}

#[test]
fn failed_ops_did_not_happen() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Fail, "write", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(1)),
    ]);
    assert_eq!(verdict(&hist, ModelKind::Register), Verdict::Invalid);
}

#[test]
fn info_ops_may_take_effect_later() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Info, "write", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", Value::Null),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(1)),
    ]);
    assert_eq!(verdict(&hist, ModelKind::Register), Verdict::Valid);
    // But not before their invocation.
    let hist = h(&[
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!(1)),
        (0, Invoke, "write", json!(1)),
        (0, Info, "write", json!(1)),
    ]);
    assert_eq!(verdict(&hist, ModelKind::Register), Verdict::Invalid);
}

#[test]
fn keys_are_checked_independently() {
    let mut ops = Vec::new();
    for (k, read) in [("a", json!(1)), ("b", json!(2))] {
        ops.push(
            Op::new(Process::Client(0), Invoke, "write", json!(1)).with_key(Key::Str(k.into())),
        );
        ops.push(Op::new(Process::Client(0), Done, "write", json!(1)).with_key(Key::Str(k.into())));
        ops.push(
            Op::new(Process::Client(1), Invoke, "read", Value::Null).with_key(Key::Str(k.into())),
        );
        ops.push(Op::new(Process::Client(1), Done, "read", read).with_key(Key::Str(k.into())));
    }
    let hist = History::new("t", ops, None).unwrap();
    let r = check(&hist, &Options::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys, 2);
    assert_eq!(r.invalid_keys, vec![json!("b")]);
}

#[test]
fn unknown_function_is_an_error_naming_the_line() {
    let hist = h(&[(0, Invoke, "frob", json!(1)), (0, Done, "frob", json!(1))]);
    let e = check(&hist, &Options::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("test:2: the cas-register model has no function `frob`"),
        "{e}"
    );
}

#[test]
fn witness_orders_every_op() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (1, Invoke, "cas", json!([1, 2])),
        (0, Done, "write", json!(1)),
        (1, Done, "cas", json!([1, 2])),
    ]);
    let r = check(
        &hist,
        &Options {
            witness: true,
            ..Options::default()
        },
    )
    .unwrap();
    let order: Vec<String> = r.witness.unwrap()[0]
        .order
        .iter()
        .map(|o| o.label.clone())
        .collect();
    assert_eq!(order, ["write 1", "cas 1→2"]);
}

#[test]
fn verdicts_merge_like_jepsen() {
    use Verdict::*;
    assert_eq!(Valid.merge(Unknown), Unknown);
    assert_eq!(Unknown.merge(Invalid), Invalid);
    assert_eq!(Valid.merge(Valid), Valid);
    assert_eq!(serde_json::to_value(Unknown).unwrap(), json!("unknown"));
}

#[test]
fn set_add_lost_before_a_later_read_is_not_linearizable() {
    let hist = h(&[
        (0, Invoke, "add", json!(1)),
        (0, Done, "add", json!(1)),
        (1, Invoke, "add", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!([2, 1])),
        (1, Info, "add", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!([2])),
    ]);
    assert_eq!(verdict(&hist, ModelKind::Set), Verdict::Invalid);
    let concurrent = h(&[
        (0, Invoke, "add", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!([])),
        (0, Done, "add", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", json!([1])),
    ]);
    assert_eq!(verdict(&concurrent, ModelKind::Set), Verdict::Valid);
}

#[test]
fn counter_reads_must_match_some_order_of_adds() {
    let mut hist = vec![
        (0, Invoke, "add", json!(1)),
        (1, Invoke, "add", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(2)),
        (0, Done, "add", json!(1)),
        (1, Done, "add", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(3)),
    ];
    assert_eq!(verdict(&h(&hist), ModelKind::Counter), Verdict::Valid);
    hist[7].3 = json!(2);
    assert_eq!(verdict(&h(&hist), ModelKind::Counter), Verdict::Invalid);
}

#[test]
fn append_concatenates_in_linearization_order() {
    let mut hist = vec![
        (0, Invoke, "append", json!("x")),
        (1, Invoke, "append", json!("y")),
        (0, Done, "append", json!("x")),
        (1, Done, "append", json!("y")),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!("yx")),
    ];
    assert_eq!(verdict(&h(&hist), ModelKind::Append), Verdict::Valid);
    hist[5].3 = json!("y");
    assert_eq!(verdict(&h(&hist), ModelKind::Append), Verdict::Invalid);
}

fn check_at(hist: &History, model: ModelKind, consistency: Consistency) -> Report {
    let opts = Options {
        model,
        consistency,
        witness: true,
        ..Options::default()
    };
    check(hist, &opts).unwrap()
}

fn keyed(rows: &[(i64, OpType, &str, &str, Value)]) -> History {
    History::new(
        "test",
        rows.iter()
            .map(|(p, t, f, k, v)| {
                Op::new(Process::Client(*p), *t, *f, v.clone()).with_key(Key::Str((*k).into()))
            })
            .collect(),
        None,
    )
    .unwrap()
}

#[test]
fn stale_read_after_a_finished_write_is_sequential_but_not_linearizable() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", Value::Null),
    ]);
    let lin = check_at(&hist, ModelKind::Register, Consistency::Linearizable);
    assert_eq!(lin.verdict, Verdict::Invalid);
    let seq = check_at(&hist, ModelKind::Register, Consistency::Sequential);
    assert_eq!(seq.verdict, Verdict::Valid);
    let order: Vec<String> = seq.witness.unwrap()[0]
        .order
        .iter()
        .map(|o| o.label.clone())
        .collect();
    assert_eq!(order, ["read null", "write 1"]);
}

#[test]
fn readers_seeing_writes_in_opposite_orders_are_not_sequential() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "write", json!(2)),
        (1, Done, "write", json!(2)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(1)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(2)),
        (3, Invoke, "read", Value::Null),
        (3, Done, "read", json!(2)),
        (3, Invoke, "read", Value::Null),
        (3, Done, "read", json!(1)),
    ]);
    let r = check_at(&hist, ModelKind::Register, Consistency::Sequential);
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = r.counterexample.unwrap().sequential().unwrap().clone();
    assert_eq!(c.found_by, "cycle");
    // Every op is needed to show it.
    assert_eq!(c.shrunk.len(), 6, "{}", c.timeline);
}

#[test]
fn store_buffering_is_sequential_key_by_key_but_not_as_a_whole() {
    let rows = [
        (0, Invoke, "write", "x", json!(1)),
        (1, Invoke, "write", "y", json!(1)),
        (0, Done, "write", "x", json!(1)),
        (1, Done, "write", "y", json!(1)),
        (0, Invoke, "read", "y", Value::Null),
        (1, Invoke, "read", "x", Value::Null),
        (0, Done, "read", "y", Value::Null),
        (1, Done, "read", "x", Value::Null),
    ];
    let r = check_at(&keyed(&rows), ModelKind::Register, Consistency::Sequential);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys, 2);
    for k in ["x", "y"] {
        let one: Vec<_> = rows.iter().filter(|r| r.3 == k).cloned().collect();
        let r = check_at(&keyed(&one), ModelKind::Register, Consistency::Sequential);
        assert_eq!(r.verdict, Verdict::Valid, "key {k} alone");
    }
}

#[test]
fn sequential_search_without_the_graph_finds_violations_too() {
    // A counter has no reads-from graph: the search alone must refute it.
    let hist = h(&[
        (0, Invoke, "add", json!(1)),
        (0, Done, "add", json!(1)),
        (0, Invoke, "read", Value::Null),
        (0, Done, "read", json!(0)),
    ]);
    let r = check_at(&hist, ModelKind::Counter, Consistency::Sequential);
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = r.counterexample.unwrap().sequential().unwrap().clone();
    assert_eq!(c.found_by, "search");
    assert_eq!(c.prefix_len, Some(1));
    // Info ops may be dropped or placed late; a failed one never happened.
    let hist = h(&[
        (0, Invoke, "add", json!(5)),
        (0, Info, "add", json!(5)),
        (1, Invoke, "add", json!(1)),
        (1, Fail, "add", json!(1)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(0)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(5)),
    ]);
    let r = check_at(&hist, ModelKind::Counter, Consistency::Sequential);
    assert_eq!(r.verdict, Verdict::Valid);
}

#[test]
fn sequential_counterexample_shrinks_away_unrelated_writes() {
    let mut rows = vec![
        (1, Invoke, "write", json!(24)),
        (1, Done, "write", json!(24)),
        (9, Invoke, "write", json!(39)),
        (9, Done, "write", json!(39)),
        (0, Invoke, "write", json!(2)),
        (0, Done, "write", json!(2)),
        (3, Invoke, "write", json!(78)),
        (3, Done, "write", json!(78)),
        (0, Invoke, "read", Value::Null),
        (0, Done, "read", json!(39)),
        (0, Invoke, "read", Value::Null),
        (0, Done, "read", json!(78)),
        (3, Invoke, "read", Value::Null),
        (3, Done, "read", json!(39)),
    ];
    rows.push((4, Invoke, "write", json!(85)));
    rows.push((4, Done, "write", json!(85)));
    let r = check_at(&h(&rows), ModelKind::Register, Consistency::Sequential);
    let c = r.counterexample.unwrap().sequential().unwrap().clone();
    let labels: Vec<&str> = c.shrunk.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(
        labels,
        ["write 39", "write 78", "read 39", "read 78", "read 39"],
        "{}",
        c.timeline
    );
}

#[test]
fn eventual_reports_lost_unexpected_and_recovered_elements() {
    let mut ops = vec![
        Op::new(Process::Client(0), Invoke, "add", json!(1)),
        Op::new(Process::Client(0), Done, "add", json!(1)),
        Op::new(Process::Client(1), Invoke, "add", json!(2)),
        Op::new(Process::Client(1), Info, "add", json!(2)),
        Op::new(Process::Client(2), Invoke, "add", json!(3)),
        Op::new(Process::Client(2), Fail, "add", json!(3)),
    ];
    for (p, node) in [(10, "n1"), (11, "n2")] {
        for (t, v) in [(Invoke, Value::Null), (Done, json!([2, 3]))] {
            let mut op = Op::new(Process::Client(p), t, "read", v);
            op.node = Some(node.into());
            op.is_final = true;
            ops.push(op);
        }
    }
    let hist = History::new("t", ops, None).unwrap();
    let r = check_at(&hist, ModelKind::Set, Consistency::Eventual);
    assert_eq!(r.verdict, Verdict::Invalid);
    let c = r.counterexample.unwrap().eventual().unwrap().clone();
    assert_eq!(c.final_reads, 2);
    let v = &c.violations[0];
    assert!(v.disagree.is_empty());
    assert_eq!(v.lost, vec![json!(1)]);
    assert_eq!(v.unexpected, vec![json!(3)]);
    assert_eq!(v.recovered, vec![json!(2)]);
}

#[test]
fn eventual_without_final_reads_is_unknown_and_a_mutex_cannot_converge() {
    let hist = h(&[(0, Invoke, "write", json!(1)), (0, Done, "write", json!(1))]);
    let r = check_at(&hist, ModelKind::Register, Consistency::Eventual);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert_eq!(r.unknown_reason, Some("no final reads"));
    let lock = h(&[
        (0, Invoke, "acquire", Value::Null),
        (0, Done, "acquire", Value::Null),
    ]);
    let opts = Options {
        model: ModelKind::Mutex,
        consistency: Consistency::Eventual,
        ..Options::default()
    };
    assert!(check(&lock, &opts).is_err());
    // `all` leaves eventual out for a mutex.
    let r = check_at(&lock, ModelKind::Mutex, Consistency::All);
    assert_eq!(r.strongest, Some("linearizable"));
}

#[test]
fn counter_adds_beyond_64_bits_are_not_a_violation() {
    // i64::MAX + 1 - 1 is a legal count to read, though the middle sum overflows i64.
    let hist = h(&[
        (0, Invoke, "add", json!(i64::MAX)),
        (0, Done, "add", json!(i64::MAX)),
        (0, Invoke, "add", json!(1)),
        (0, Done, "add", json!(1)),
        (0, Invoke, "add", json!(-1)),
        (0, Done, "add", json!(-1)),
        (0, Invoke, "read", Value::Null),
        (0, Done, "read", json!(i64::MAX)),
    ]);
    // (Eventual consistency needs final reads: not this test's subject.)
    for &c in [
        Consistency::Linearizable,
        Consistency::Sequential,
        Consistency::All,
    ]
    .iter()
    {
        let r = check_at(&hist, ModelKind::Counter, c);
        assert_eq!(r.verdict, Verdict::Valid, "{c}");
    }
}

#[test]
fn huge_time_limits_do_not_overflow() {
    let hist = h(&[(0, Invoke, "write", json!(1)), (0, Done, "write", json!(1))]);
    for &c in [
        Consistency::Linearizable,
        Consistency::Sequential,
        Consistency::All,
    ]
    .iter()
    {
        let opts = Options {
            model: ModelKind::Register,
            consistency: c,
            time_limit: Some(Duration::MAX),
            ..Options::default()
        };
        assert_eq!(check(&hist, &opts).unwrap().verdict, Verdict::Valid, "{c}");
    }
}

#[test]
fn names_parse_and_an_unknown_one_lists_the_known() {
    for &m in ModelKind::ALL {
        assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
    }
    for &c in Consistency::ALL {
        assert_eq!(c.to_string().parse::<Consistency>(), Ok(c));
    }
    let e = "queue".parse::<ModelKind>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown model `queue` (known: register, cas-register, mutex, set, counter, append)"
    );
    let e = "strict".parse::<Consistency>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown consistency `strict` (known: linearizable, sequential, causal, eventual, all)"
    );
}

#[test]
fn every_level_refuses_an_initial_value_the_model_cannot_take() {
    let hist = h(&[(0, Invoke, "add", json!(1)), (0, Done, "add", json!(1))]);
    for consistency in Consistency::ALL.iter().copied() {
        let opts = Options {
            model: ModelKind::Counter,
            consistency,
            init: json!("x"),
            ..Options::default()
        };
        let e = check(&hist, &opts).unwrap_err();
        assert_eq!(
            e,
            CheckError::Init {
                model: "counter",
                problem: ModelError::BadValue {
                    what: "the initial count",
                    expected: "an integer",
                    found: json!("x"),
                },
            },
            "{consistency}"
        );
        assert_eq!(
            e.to_string(),
            "the initial value does not fit the counter model: \
             the initial count must be an integer, found \"x\""
        );
    }
}

#[test]
fn an_op_the_model_cannot_take_names_its_line() {
    let hist = h(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!(3)),
    ]);
    for consistency in [Consistency::Linearizable, Consistency::Eventual] {
        let opts = Options {
            model: ModelKind::CasRegister,
            consistency,
            ..Options::default()
        };
        let e = check(&hist, &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "test:3: a cas value must be [expected, new], found 3",
            "{consistency}"
        );
    }
}
