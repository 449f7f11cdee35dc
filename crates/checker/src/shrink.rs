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
    let s = Shrinker::new(model, part, culprit, budget);
    let raw = &part.calls;
    let mut cur: Vec<usize> = (0..raw.len()).filter(|&i| raw[i].call < before).collect();
    if !s.fails(&cur) {
        cur = (0..raw.len()).collect();
    }
    // Each strategy stops early (false) when the budget runs out.
    let _ = s.shortest_tail(&mut cur) && s.drop_processes(&mut cur) && s.drop_runs(&mut cur);
    cur
}

/// What the three strategies share: the history, the culprit and the two guards.
/// A candidate is a sorted list of indices into `part.calls`.
pub(crate) struct Shrinker<'a, M: Model> {
    model: &'a M,
    part: &'a Partition<M>,
    culprit: usize,
    budget: &'a Deadline,
    init_id: Option<u32>,
}

impl<'a, M: Model> Shrinker<'a, M> {
    pub(crate) fn new(
        model: &'a M,
        part: &'a Partition<M>,
        culprit: usize,
        budget: &'a Deadline,
    ) -> Self {
        let init_id = part
            .values
            .lookup(&model.describe_state(&part.init, &part.values));
        Shrinker {
            model,
            part,
            culprit,
            budget,
            init_id,
        }
    }

    fn raw(&self) -> &'a [Call<M::Op>] {
        &self.part.calls
    }

    /// The search still gets stuck on the culprit.
    pub(crate) fn fails(&self, set: &[usize]) -> bool {
        let raw = self.raw();
        let calls: Vec<Call<M::Op>> = set.iter().map(|&i| raw[i].clone()).collect();
        let pruned = prune(self.model, &calls, &self.part.init, &self.part.values);
        match search(self.model, &pruned, &self.part.init, self.budget) {
            Outcome::NotLinearizable(stuck) => pruned[stuck.op].pair == self.culprit,
            _ => false,
        }
    }

    /// Every required op that observes a value keeps a writer of it.
    pub(crate) fn well_formed(&self, set: &[usize]) -> bool {
        let raw = self.raw();
        let written: HashSet<u32> = set
            .iter()
            .filter_map(|&i| self.model.writes(&raw[i].op))
            .collect();
        set.iter().all(|&i| {
            !raw[i].required
                || match self.model.observes(&raw[i].op) {
                    Some(v) => Some(v) == self.init_id || written.contains(&v),
                    None => true,
                }
        })
    }

    /// Tries to remove `gone` (positions in `cur`); keeps the removal if the rest
    /// still fails on the culprit.
    fn try_remove(&self, cur: &mut Vec<usize>, gone: &[usize]) -> bool {
        let raw = self.raw();
        if gone.iter().any(|&g| raw[cur[g]].pair == self.culprit) {
            return false;
        }
        let candidate: Vec<usize> = cur
            .iter()
            .enumerate()
            .filter(|(n, _)| gone.binary_search(n).is_err())
            .map(|(_, &i)| i)
            .collect();
        if self.well_formed(&candidate) && self.fails(&candidate) {
            *cur = candidate;
            true
        } else {
            false
        }
    }

    /// Positions in `cur` grouped by process, each group in invocation order.
    fn by_process(&self, cur: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (n, &i) in cur.iter().enumerate() {
            groups.entry(self.raw()[i].process).or_default().push(n);
        }
        groups.into_values().collect()
    }

    /// `set` plus, for each value its reads observe that nothing in it writes,
    /// the latest writer of that value.
    fn with_writers(&self, mut set: Vec<usize>) -> Vec<usize> {
        let raw = self.raw();
        let written: HashSet<u32> = set
            .iter()
            .filter_map(|&i| self.model.writes(&raw[i].op))
            .collect();
        let mut missing: HashSet<u32> = set
            .iter()
            .filter(|&&i| raw[i].required)
            .filter_map(|&i| self.model.observes(&raw[i].op))
            .filter(|v| Some(*v) != self.init_id && !written.contains(v))
            .collect();
        for i in (0..raw.len()).rev() {
            if missing.is_empty() {
                break;
            }
            if let Some(v) = self.model.writes(&raw[i].op) {
                if missing.remove(&v) {
                    set.push(i);
                }
            }
        }
        set.sort_unstable();
        set
    }

    /// The last `k` ops of `cur`, with the culprit and the writers they need.
    fn tail(&self, cur: &[usize], k: usize) -> Vec<usize> {
        let from = cur.len() - k;
        let mut set: Vec<usize> = cur[from..].to_vec();
        if let Some(&c) = cur[..from]
            .iter()
            .find(|&&i| self.raw()[i].pair == self.culprit)
        {
            set.push(c);
        }
        self.with_writers(set)
    }

    /// Strategy 1: the shortest tail that still fails, by binary search.
    pub(crate) fn shortest_tail(&self, cur: &mut Vec<usize>) -> bool {
        let (mut lo, mut hi) = (1, cur.len());
        while lo < hi {
            if self.budget.expired() {
                return false;
            }
            let mid = (lo + hi) / 2;
            let candidate = self.tail(cur, mid);
            if self.well_formed(&candidate) && self.fails(&candidate) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if hi < cur.len() {
            *cur = self.tail(cur, hi);
        }
        true
    }

    /// Strategy 2: whole processes, since fewer processes read more easily.
    pub(crate) fn drop_processes(&self, cur: &mut Vec<usize>) -> bool {
        let mut g = 0;
        while g < self.by_process(cur).len() {
            if self.budget.expired() {
                return false;
            }
            let groups = self.by_process(cur);
            if !self.try_remove(cur, &groups[g]) {
                g += 1;
            }
        }
        true
    }

    /// Strategy 3, until nothing more goes: runs of ops in real-time order,
    /// halving the run length down to one op, then runs of one process's
    /// consecutive ops (an acquire with its release).
    pub(crate) fn drop_runs(&self, cur: &mut Vec<usize>) -> bool {
        loop {
            let before_len = cur.len();
            if !drop_halving_runs(cur, self.budget, |cur, gone| self.try_remove(cur, gone)) {
                return false;
            }
            for run in [2, 1] {
                let mut g = 0;
                while g < self.by_process(cur).len() {
                    let groups = self.by_process(cur);
                    let mut removed = false;
                    for w in groups[g].windows(run) {
                        if self.budget.expired() {
                            return false;
                        }
                        if self.try_remove(cur, w) {
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
                return true;
            }
        }
    }
}

/// Delta debugging's core, for any shrinker: tries removing each run of `chunk`
/// consecutive positions of `cur`, halving `chunk` from half of `cur` down to one.
/// `try_remove(cur, positions)` removes them, and says so, when what is left
/// still fails. False when the budget ran out first.
pub(crate) fn drop_halving_runs(
    cur: &mut Vec<usize>,
    budget: &Deadline,
    mut try_remove: impl FnMut(&mut Vec<usize>, &[usize]) -> bool,
) -> bool {
    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let mut at = 0;
        while at < cur.len() {
            if budget.expired() {
                return false;
            }
            let gone: Vec<usize> = (at..(at + chunk).min(cur.len())).collect();
            if !try_remove(cur, &gone) {
                at += chunk;
            }
        }
        if chunk == 1 {
            return true;
        }
        chunk /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Register;
    use crate::prepare::partitions;
    use crate::tests::h;
    use serde_json::{json, Value};
    use splitbrain_history::OpType::{Invoke, Ok as Done};

    /// A stale read (write 1; write 2; read 1) among noise: process 3's writes
    /// of 9, before and after.
    fn stale_read_with_noise() -> (Register, Partition<Register>) {
        let model = Register { cas: false };
        let hist = h(&[
            (3, Invoke, "write", json!(9)),
            (3, Done, "write", json!(9)),
            (0, Invoke, "write", json!(1)),
            (0, Done, "write", json!(1)),
            (1, Invoke, "write", json!(2)),
            (1, Done, "write", json!(2)),
            (2, Invoke, "read", Value::Null),
            (2, Done, "read", json!(1)),
            (3, Invoke, "write", json!(9)),
            (3, Done, "write", json!(9)),
        ]);
        let mut parts = partitions(&model, &hist, &Value::Null).unwrap();
        (model, parts.remove(0))
    }

    fn culprit(model: &Register, part: &Partition<Register>) -> usize {
        match search(model, &part.calls, &part.init, &Deadline::new(None)) {
            Outcome::NotLinearizable(stuck) => part.calls[stuck.op].pair,
            _ => panic!("the history is not linearizable"),
        }
    }

    #[test]
    fn each_strategy_alone_keeps_a_failing_history_and_shrinks_it() {
        let (model, part) = stale_read_with_noise();
        let budget = Deadline::new(None);
        let s = Shrinker::new(&model, &part, culprit(&model, &part), &budget);
        let all: Vec<usize> = (0..part.calls.len()).collect();
        assert!(s.fails(&all));
        type Strategy<'a> = fn(&Shrinker<'a, Register>, &mut Vec<usize>) -> bool;
        let strategies: [(&str, Strategy); 3] = [
            ("shortest_tail", Shrinker::shortest_tail),
            ("drop_processes", Shrinker::drop_processes),
            ("drop_runs", Shrinker::drop_runs),
        ];
        for (name, strategy) in strategies {
            let mut cur = all.clone();
            assert!(strategy(&s, &mut cur), "{name}: no budget to run out");
            assert!(cur.len() < all.len(), "{name}: {cur:?}");
            assert!(s.fails(&cur) && s.well_formed(&cur), "{name}: {cur:?}");
        }
        // Dropping processes removes the noise writer whole.
        let mut cur = all.clone();
        s.drop_processes(&mut cur);
        assert!(cur.iter().all(|&i| part.calls[i].process != 3), "{cur:?}");
        // Dropping runs reaches the three ops of the stale read.
        let mut cur = all;
        s.drop_runs(&mut cur);
        assert_eq!(cur.len(), 3, "{cur:?}");
    }
}
