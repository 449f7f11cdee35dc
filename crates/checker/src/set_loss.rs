//! Jepsen's set checker, as a shortcut past the search: an acknowledged add missing
//! from a later read refutes linearizability (and, with one more condition,
//! sequential consistency) directly, without a search (each read against its key's adds). The search would reach the same
//! verdict only after trying every order of the adds around that read: on a
//! primary-backup store that lost thousands of acknowledged adds to a failover, it
//! does not finish.
//!
//! ```text
//!   p0 |--add 7--|                          7 was acknowledged before the read began:
//!   p9                 |--read [1 2 3]--|   linearizable would have it in the read
//!
//!   p0 |--add 7--| |--add 8--|              p0 added 7, then 8; a read that saw 8
//!   p9                 |--read [8]--|       comes after add 8, so after add 7, in
//!                                           any order that keeps p0's: not sequential
//! ```
//!
//! Both conditions are necessary for their level, never sufficient: when neither
//! holds, the caller searches as usual.

use serde_json::Value;
use splitbrain_history::{History, Key, OpType, Process};
use std::collections::{HashMap, HashSet};

/// Which levels the lost adds of a set history refute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Refutation {
    /// Some read misses an add that was acknowledged before the read began.
    pub linearizable: bool,
    /// Some read misses an add of a process whose later add it contains.
    pub sequential: bool,
}

/// An acknowledged add: its process, where it began and ended (op indices), and the
/// element as text.
struct Add {
    process: i64,
    invoke: usize,
    completion: usize,
    element: String,
}

/// A read that completed `ok`: where it began, and the elements it saw.
struct Read {
    invoke: usize,
    elements: HashSet<String>,
}

/// Looks for the two patterns above, key by key (a set per key).
pub(crate) fn refute(history: &History) -> Refutation {
    let ops = history.ops();
    let mut adds: HashMap<Option<Key>, Vec<Add>> = HashMap::new();
    let mut reads: HashMap<Option<Key>, Vec<Read>> = HashMap::new();
    for pair in history.pairs() {
        let inv = &ops[pair.invoke];
        let Some(done) = pair.completion.map(|c| (c, &ops[c])) else {
            continue;
        };
        if done.1.kind != OpType::Ok {
            continue;
        }
        let Process::Client(process) = inv.process else {
            continue;
        };
        let key = inv.key.clone().or_else(|| done.1.key.clone());
        match &*inv.f {
            "add" => adds.entry(key).or_default().push(Add {
                process,
                invoke: pair.invoke,
                completion: done.0,
                element: inv.value.to_string(),
            }),
            "read" => {
                let elements = match &*done.1.value.json() {
                    Value::Array(xs) => xs.iter().map(Value::to_string).collect(),
                    Value::Null => HashSet::new(),
                    // Not a set: the model will say so when it compiles the op.
                    _ => continue,
                };
                reads.entry(key).or_default().push(Read {
                    invoke: pair.invoke,
                    elements,
                });
            }
            _ => {}
        }
    }
    let mut found = Refutation::default();
    for (key, reads) in &reads {
        let Some(adds) = adds.get(key) else { continue };
        // Each process's adds in its own order, once per key (not once per read).
        let mut by_process: HashMap<i64, Vec<&Add>> = HashMap::new();
        for a in adds {
            by_process.entry(a.process).or_default().push(a);
        }
        let by_process: Vec<Vec<&Add>> = by_process
            .into_values()
            .map(|mut own| {
                own.sort_unstable_by_key(|a| a.invoke);
                own
            })
            .collect();
        for read in reads {
            found.linearizable = found.linearizable
                || adds
                    .iter()
                    .any(|a| a.completion < read.invoke && !read.elements.contains(&a.element));
            found.sequential = found.sequential || misses_an_earlier_add(&by_process, read);
            if found.linearizable && found.sequential {
                return found;
            }
        }
    }
    found
}

/// Whether `read` contains an add of some process but misses an earlier add of the
/// same process (earlier in the process's own order, which is invocation order).
/// `by_process`: each process's adds, sorted by invocation.
fn misses_an_earlier_add(by_process: &[Vec<&Add>], read: &Read) -> bool {
    by_process.iter().any(|own| {
        let last_seen = own.iter().rposition(|a| read.elements.contains(&a.element));
        last_seen.is_some_and(|j| own[..j].iter().any(|a| !read.elements.contains(&a.element)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(lines: &[&str]) -> History {
        splitbrain_history::jsonl::parse("t.jsonl", &lines.join("\n")).unwrap()
    }

    #[test]
    fn a_lost_acknowledged_add_refutes_linearizability_and_program_order_sequential() {
        let h = history(&[
            r#"{"process":0,"type":"invoke","f":"add","value":7}"#,
            r#"{"process":0,"type":"ok","f":"add","value":7}"#,
            r#"{"process":0,"type":"invoke","f":"add","value":8}"#,
            r#"{"process":0,"type":"ok","f":"add","value":8}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":9,"type":"ok","f":"read","value":[8]}"#,
        ]);
        assert_eq!(
            refute(&h),
            Refutation {
                linearizable: true,
                sequential: true
            }
        );
    }

    #[test]
    fn a_read_concurrent_with_the_add_or_missing_only_the_last_add_refutes_less() {
        // The add of 7 was still open when the read began: it may come after it.
        let h = history(&[
            r#"{"process":0,"type":"invoke","f":"add","value":7}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":0,"type":"ok","f":"add","value":7}"#,
            r#"{"process":9,"type":"ok","f":"read","value":[]}"#,
        ]);
        assert_eq!(refute(&h), Refutation::default());
        // 7 lost, but nothing later of p0 was seen: a sequential order may put the
        // read before p0's add.
        let h = history(&[
            r#"{"process":0,"type":"invoke","f":"add","value":7}"#,
            r#"{"process":0,"type":"ok","f":"add","value":7}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":9,"type":"ok","f":"read","value":[]}"#,
        ]);
        assert_eq!(
            refute(&h),
            Refutation {
                linearizable: true,
                sequential: false
            }
        );
        // Everything there: nothing refuted.
        let h = history(&[
            r#"{"process":0,"type":"invoke","f":"add","value":7}"#,
            r#"{"process":0,"type":"ok","f":"add","value":7}"#,
            r#"{"process":9,"type":"invoke","f":"read","value":null}"#,
            r#"{"process":9,"type":"ok","f":"read","value":[7]}"#,
        ]);
        assert_eq!(refute(&h), Refutation::default());
    }
}
