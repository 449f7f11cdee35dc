//! Shrinking a non-linearizable history to a few ops a person can read.
//!
//! Start from the ops invoked before the return the search could not pass (nothing
//! invoked later can help or hurt). Violations are local, so first find the shortest
//! tail of that prefix which still fails (binary search: a handful of searches
//! instead of thousands on the long prefix). Then remove whole processes, then runs
//! of ops, first in large chunks and then one at a time, keeping each removal after
//! which the rest still fails: delta debugging (Zeller & Hildebrandt 2002), greedy.
//!
//! Two guards keep the result honest. The op the search could not linearize (the
//! culprit) stays, and the search on the smaller history must still get stuck on it:
//! otherwise a mutex history shrinks to a lone `release`, illegal for a duller reason
//! than the double grant that was found. And for register-like models an `ok` op
//! that observes a value keeps at least one op that writes it: otherwise "write 1;
//! write 2; read 1" shrinks to "read 1", a value nobody wrote, instead of the stale
//! read.

use crate::linear::{search, Deadline, Outcome};
use crate::model::Model;
use crate::prepare::{prune, Call, Partition};
use std::collections::{BTreeMap, HashSet};

/// Indices into `part.calls` of a small sub-history that is still not linearizable.
/// `culprit`: the history pair of the op whose return the search could not pass, at
/// position `before`.
pub(crate) fn shrink<M: Model>(
    model: &M,
    part: &Partition<M>,
    culprit: usize,
    before: u64,
    budget: &Deadline,
) -> Vec<usize> {
    let raw = &part.calls;
    let init_id = part
        .values
        .lookup(&model.describe_state(&part.init, &part.values));
    let fails = |set: &[usize]| -> bool {
        let calls: Vec<Call<M::Op>> = set.iter().map(|&i| raw[i].clone()).collect();
        let pruned = prune(model, &calls, &part.init, &part.values);
        match search(model, &pruned, &part.init, budget) {
            Outcome::NotLinearizable(stuck) => pruned[stuck.op].pair == culprit,
            _ => false,
        }
    };
    let well_formed = |set: &[usize]| -> bool {
        let written: HashSet<u32> = set
            .iter()
            .filter_map(|&i| model.writes(&raw[i].op))
            .collect();
        set.iter().all(|&i| {
            !raw[i].required
                || match model.observes(&raw[i].op) {
                    Some(v) => Some(v) == init_id || written.contains(&v),
                    None => true,
                }
        })
    };

    let mut cur: Vec<usize> = (0..raw.len()).filter(|&i| raw[i].call < before).collect();
    if !fails(&cur) {
        cur = (0..raw.len()).collect();
    }
    // Tries to remove `gone` (positions in `cur`); keeps the removal if the rest
    // still fails on the culprit.
    let try_remove = |cur: &mut Vec<usize>, gone: &[usize]| -> bool {
        if gone.iter().any(|&g| raw[cur[g]].pair == culprit) {
            return false;
        }
        let candidate: Vec<usize> = cur
            .iter()
            .enumerate()
            .filter(|(n, _)| gone.binary_search(n).is_err())
            .map(|(_, &i)| i)
            .collect();
        if well_formed(&candidate) && fails(&candidate) {
            *cur = candidate;
            true
        } else {
            false
        }
    };
    // Positions in `cur` grouped by process, each group in invocation order.
    let by_process = |cur: &[usize]| -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (n, &i) in cur.iter().enumerate() {
            groups.entry(raw[i].process).or_default().push(n);
        }
        groups.into_values().collect()
    };

    // The shortest tail that still fails. A tail cut off from the writes its reads
    // observed gets those writes back (the latest writer of each value).
    let with_writers = |set: Vec<usize>| -> Vec<usize> {
        let mut set = set;
        let written: HashSet<u32> = set
            .iter()
            .filter_map(|&i| model.writes(&raw[i].op))
            .collect();
        let mut missing: HashSet<u32> = set
            .iter()
            .filter(|&&i| raw[i].required)
            .filter_map(|&i| model.observes(&raw[i].op))
            .filter(|v| Some(*v) != init_id && !written.contains(v))
            .collect();
        for i in (0..raw.len()).rev() {
            if missing.is_empty() {
                break;
            }
            if let Some(v) = model.writes(&raw[i].op) {
                if missing.remove(&v) {
                    set.push(i);
                }
            }
        }
        set.sort_unstable();
        set
    };
    let tail = |cur: &[usize], k: usize| -> Vec<usize> {
        let from = cur.len() - k;
        let mut set: Vec<usize> = cur[from..].to_vec();
        if let Some(&c) = cur[..from].iter().find(|&&i| raw[i].pair == culprit) {
            set.push(c);
        }
        with_writers(set)
    };
    let (mut lo, mut hi) = (1, cur.len());
    while lo < hi {
        if budget.expired() {
            return cur;
        }
        let mid = (lo + hi) / 2;
        let candidate = tail(&cur, mid);
        if well_formed(&candidate) && fails(&candidate) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if hi < cur.len() {
        cur = tail(&cur, hi);
    }

    // Whole processes first: fewer processes read more easily.
    let mut g = 0;
    while g < by_process(&cur).len() {
        if budget.expired() {
            return cur;
        }
        let groups = by_process(&cur);
        if !try_remove(&mut cur, &groups[g]) {
            g += 1;
        }
    }
    loop {
        let before_len = cur.len();
        // Runs of ops in real-time order, halving the run length down to one op.
        let mut chunk = (cur.len() / 2).max(1);
        loop {
            let mut i = 0;
            while i < cur.len() {
                if budget.expired() {
                    return cur;
                }
                let gone: Vec<usize> = (i..(i + chunk).min(cur.len())).collect();
                if !try_remove(&mut cur, &gone) {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        // Runs of one process's consecutive ops (an acquire with its release).
        for run in [2, 1] {
            let mut g = 0;
            while g < by_process(&cur).len() {
                let groups = by_process(&cur);
                let mut removed = false;
                for w in groups[g].windows(run) {
                    if budget.expired() {
                        return cur;
                    }
                    if try_remove(&mut cur, w) {
                        removed = true;
                        break;
                    }
                }
                if !removed {
                    g += 1;
                }
            }
        }
        if cur.len() == before_len {
            return cur;
        }
    }
}
