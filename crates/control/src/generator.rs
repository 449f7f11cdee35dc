//! What workers ask for: the workload's op mix over one key or many.
//!
//! `register` writes and reads; `cas-register` adds compare-and-set. A cas expects
//! the last value this run saw on that key, so that some of them succeed.
//!
//! Generation is a pure function of the seed and of what has been seen, as in
//! Jepsen: [`Generator`] is an immutable description, and each worker draws from
//! its own [`WorkerGen`], a stream derived from `(seed, worker)`. Which op, which
//! key and which written value worker `w` asks for at its step `s` depends on
//! nothing else, so `--seed N` asks the same again. The one input from the run is
//! [`Seen`], the last value seen per key, which only a cas's expected value reads.
//!
//! ```text
//!   seed ─┬─ worker 0: write k3 1, read k0, cas k3 1→21, ...
//!         ├─ worker 1: read k1, write k1 2, ...
//!         └─ ...                    (value = step × workers + worker + 1: unique)
//! ```
//!
//! Keyed (jepsen.independent): `keys` slots are live at a time, each holding one key
//! after another. A key gets `ops_per_key` ops in all, split among the workers in
//! fixed shares; a worker that has used its share of a slot's key moves that slot
//! on to the next key, so each key's history stays small enough to check.

use crate::call::Call;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::Mutex;

/// A workload's name, as `--workload` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkloadKind {
    Register,
    CasRegister,
    /// Unique adds to a set; the set is read only in the final phase, on every node
    /// (reads of a growing set during the run would make the history quadratic).
    Set,
    /// Increments and reads of a counter.
    Counter,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::CasRegister => "cas-register",
            WorkloadKind::Set => "set",
            WorkloadKind::Counter => "counter",
        }
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(WorkloadKind::Register),
            "cas-register" => Ok(WorkloadKind::CasRegister),
            "set" => Ok(WorkloadKind::Set),
            "counter" => Ok(WorkloadKind::Counter),
            _ => Err(format!(
                "unknown workload `{s}` (known: register, cas-register, set, counter)"
            )),
        }
    }
}

/// Relative weights of reads, writes and cas (cas is ignored by `register`; for
/// `counter`, writes are increments; `set` only adds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    pub read: u32,
    pub write: u32,
    pub cas: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            read: 1,
            write: 1,
            cas: 1,
        }
    }
}

/// The workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// `None`: one key, recorded without a `key` field. `Some(n)`: n live keys.
    pub keys: Option<u32>,
    /// Ops handed out per key before it retires (keyed only).
    pub ops_per_key: u64,
    pub mix: Mix,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            kind: WorkloadKind::CasRegister,
            keys: None,
            ops_per_key: 200,
            mix: Mix::default(),
        }
    }
}

/// One op to run: the call and, keyed, the history's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Next {
    pub call: Call,
    pub key: Option<u64>,
}

/// The workload, the run's key prefix and the seed: an immutable value from which
/// each worker's stream of ops is derived ([`Generator::worker`]).
#[derive(Debug, Clone)]
pub struct Generator {
    workload: Workload,
    prefix: String,
    seed: u64,
}

impl Generator {
    /// `prefix` goes before every key on the server, so runs never share keys. The
    /// seed is 0 until [`with_seed`](Generator::with_seed).
    pub fn new(workload: Workload, prefix: impl Into<String>) -> Generator {
        Generator {
            workload,
            prefix: prefix.into(),
            seed: 0,
        }
    }

    /// The same generator drawing from `seed`.
    pub fn with_seed(mut self, seed: u64) -> Generator {
        self.seed = seed;
        self
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Worker `worker`'s stream (of `workers` in all): a pure function of the seed
    /// and the worker, whatever the other workers do and however fast.
    pub fn worker(&self, worker: usize, workers: usize) -> WorkerGen {
        let workers = workers.max(1) as u64;
        let slots = self.workload.keys.unwrap_or(1).max(1) as usize;
        WorkerGen {
            workload: self.workload.clone(),
            prefix: self.prefix.clone(),
            rng: SmallRng::seed_from_u64(crate::seed::derive(self.seed, worker as u64)),
            worker: worker as u64 % workers,
            workers,
            step: 0,
            slots: vec![(0, 0); slots],
            used: Vec::new(),
        }
    }

    /// A final read of each key in `used` (the keys the workers handed out; see
    /// [`WorkerGen::used`]), or of the one key when there are none.
    pub fn final_reads(&self, used: impl IntoIterator<Item = u64>) -> Vec<Next> {
        let mut used: Vec<u64> = used.into_iter().collect();
        used.sort_unstable();
        used.dedup();
        if used.is_empty() {
            used.push(0);
        }
        used.iter()
            .map(|&k| {
                let key = server_key(&self.prefix, k);
                let call = match self.workload.kind {
                    WorkloadKind::Set => Call::ReadSet { key },
                    WorkloadKind::Counter => Call::ReadCounter { key },
                    _ => Call::Read { key },
                };
                Next {
                    call,
                    key: self.workload.keys.map(|_| k),
                }
            })
            .collect()
    }
}

fn server_key(prefix: &str, k: u64) -> String {
    format!("{prefix}{k}")
}

/// One worker's ops, step by step. Owned by that worker alone.
#[derive(Debug, Clone)]
pub struct WorkerGen {
    workload: Workload,
    prefix: String,
    rng: SmallRng,
    worker: u64,
    workers: u64,
    /// Ops this worker has been handed.
    step: u64,
    /// Per live slot: which key it holds (its generation) and this worker's ops on it.
    slots: Vec<(u64, u64)>,
    /// Keys this worker has handed out, in order.
    used: Vec<u64>,
}

impl WorkerGen {
    /// The next op. Only a cas's expected value comes from `seen`; everything else
    /// is fixed by the seed, the worker and the step.
    pub fn next(&mut self, seen: &Seen) -> Next {
        let m = self.workload.mix;
        let cas = if self.workload.kind == WorkloadKind::CasRegister {
            m.cas
        } else {
            0
        };
        // In u64: weights near u32::MAX must not overflow.
        let (read, write) = (u64::from(m.read), u64::from(m.write));
        let total = (read + write + u64::from(cas)).max(1);
        let pick = self.rng.random_range(0..total);
        let slot = self.rng.random_range(0..self.slots.len());
        let k = self.key_in(slot);
        // Unique over every worker and step.
        let value = (self.step * self.workers + self.worker + 1) as i64;
        self.step += 1;
        let key = server_key(&self.prefix, k);
        let call = match self.workload.kind {
            WorkloadKind::Set => Call::AddElement { key, value },
            WorkloadKind::Counter if pick < read => Call::ReadCounter { key },
            WorkloadKind::Counter => Call::Increment {
                key,
                delta: self.rng.random_range(1..=5),
            },
            _ if pick < read => Call::Read { key },
            _ if pick < read + write => Call::Write { key, value },
            _ => Call::Cas {
                key,
                old: seen.last(k),
                new: value,
            },
        };
        Next {
            call,
            key: self.workload.keys.map(|_| k),
        }
    }

    /// The keys this worker has handed out so far (for the final reads).
    pub fn used(&self) -> &[u64] {
        &self.used
    }

    /// The key slot `slot` holds for this worker, moving the slot on to its next
    /// key once this worker has had its share of the current one.
    fn key_in(&mut self, slot: usize) -> u64 {
        let Some(keys) = self.workload.keys else {
            if self.used.is_empty() {
                self.used.push(0);
            }
            return 0;
        };
        let keys = u64::from(keys.max(1));
        loop {
            let (generation, done) = self.slots[slot];
            let share = self.share(generation + slot as u64);
            if done < share {
                let k = generation * keys + slot as u64;
                if done == 0 {
                    self.used.push(k);
                }
                self.slots[slot].1 += 1;
                return k;
            }
            // Ends within `workers` generations: the extra ops rotate over workers.
            self.slots[slot] = (generation + 1, 0);
        }
    }

    /// This worker's share of a key's `ops_per_key`: an even split, and the rest
    /// one op each to workers chosen by `rotation`, so all shares add up to
    /// `ops_per_key` and every worker gets ops on some key.
    fn share(&self, rotation: u64) -> u64 {
        let n = self.workload.ops_per_key.max(1);
        let c = self.workers;
        let extra = (self.worker + c - rotation % c) % c < n % c;
        n / c + u64::from(extra)
    }
}

/// What the run has seen: the last value written or read ok, per key. The only
/// state the workers share; a cas expects the value found here.
#[derive(Debug, Default)]
pub struct Seen {
    last: Mutex<HashMap<u64, Option<i64>>>,
}

impl Seen {
    /// The last value seen on `key` (`None`: absent, or nothing seen).
    pub fn last(&self, key: u64) -> Option<i64> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&key).copied().flatten()
    }

    /// A value was seen on `next`'s key (an ok read, write or cas), so later cas
    /// ops expect it.
    pub fn saw(&self, next: &Next, value: &serde_json::Value) {
        let v = match (&next.call, value) {
            (Call::Read { .. }, v) => v.as_i64(),
            (Call::Write { value, .. }, _) => Some(*value),
            (Call::Cas { new, .. }, _) => Some(*new),
            _ => return,
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(next.key.unwrap_or(0), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    /// `steps` rounds of every worker taking one op, with nothing seen.
    fn ops(g: &Generator, workers: usize, steps: usize) -> Vec<Vec<Next>> {
        let seen = Seen::default();
        let mut ws: Vec<WorkerGen> = (0..workers).map(|w| g.worker(w, workers)).collect();
        ws.iter_mut()
            .map(|w| (0..steps).map(|_| w.next(&seen)).collect())
            .collect()
    }

    #[test]
    fn written_values_are_unique() {
        let g = Generator::new(Workload::default(), "t/");
        let mut seen = HashSet::new();
        for stream in ops(&g, 7, 300) {
            for next in stream {
                match next.call {
                    Call::Write { value, .. } | Call::Cas { new: value, .. } => {
                        assert!(seen.insert(value), "value {value} written twice")
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn keyed_keys_retire_after_their_ops() {
        let w = Workload {
            keys: Some(2),
            ops_per_key: 5,
            ..Workload::default()
        };
        let g = Generator::new(w, "t/");
        let seen = Seen::default();
        let mut per_key: HashMap<u64, u64> = HashMap::new();
        let mut used = Vec::new();
        for workers in [1, 3, 10] {
            per_key.clear();
            used.clear();
            for w in 0..workers {
                let mut gen = g.worker(w, workers);
                for _ in 0..100 {
                    *per_key.entry(gen.next(&seen).key.unwrap()).or_default() += 1;
                }
                used.extend_from_slice(gen.used());
            }
            assert!(per_key.values().all(|&n| n <= 5), "{workers}: {per_key:?}");
            assert!(per_key.len() >= 20 * workers / 2, "{workers}");
            assert_eq!(g.final_reads(used.iter().copied()).len(), per_key.len());
        }
    }

    #[test]
    fn set_only_adds_and_reads_the_whole_set_at_the_end() {
        let w = Workload {
            kind: WorkloadKind::Set,
            ..Workload::default()
        };
        let g = Generator::new(w, "t/");
        let seen = Seen::default();
        let mut gen = g.worker(0, 1);
        assert!((0..200).all(|_| matches!(gen.next(&seen).call, Call::AddElement { .. })));
        assert!(matches!(g.final_reads([])[0].call, Call::ReadSet { .. }));
        let c = Generator::new(
            Workload {
                kind: WorkloadKind::Counter,
                ..Workload::default()
            },
            "t/",
        );
        let mut gen = c.worker(0, 1);
        assert!((0..200).all(|_| matches!(
            gen.next(&seen).call,
            Call::Increment { delta: 1..=5, .. } | Call::ReadCounter { .. }
        )));
    }

    #[test]
    fn register_never_asks_for_cas() {
        let w = Workload {
            kind: WorkloadKind::Register,
            ..Workload::default()
        };
        let g = Generator::new(w, "t/");
        assert!(ops(&g, 3, 200)
            .iter()
            .flatten()
            .all(|n| !matches!(n.call, Call::Cas { .. })));
    }

    #[test]
    fn cas_expects_the_last_value_seen() {
        let w = Workload {
            mix: Mix {
                read: 0,
                write: 0,
                cas: 1,
            },
            ..Workload::default()
        };
        let g = Generator::new(w, "t/");
        let seen = Seen::default();
        let mut gen = g.worker(0, 2);
        let first = gen.next(&seen);
        assert!(matches!(first.call, Call::Cas { old: None, .. }));
        seen.saw(&first, &serde_json::Value::Null);
        let Call::Cas { new, .. } = first.call else {
            unreachable!()
        };
        // Another worker's cas expects it too: what is seen is shared.
        let mut other = g.worker(1, 2);
        assert!(matches!(other.next(&seen).call, Call::Cas { old: Some(o), .. } if o == new));
    }

    fn workloads() -> Vec<Workload> {
        let mut all = Vec::new();
        for kind in [
            WorkloadKind::Register,
            WorkloadKind::CasRegister,
            WorkloadKind::Set,
            WorkloadKind::Counter,
        ] {
            for keys in [None, Some(1), Some(3), Some(50)] {
                for ops_per_key in [1, 7, 200] {
                    all.push(Workload {
                        kind,
                        keys,
                        ops_per_key,
                        mix: Mix {
                            read: 2,
                            write: 1,
                            cas: 3,
                        },
                    });
                }
            }
        }
        all
    }

    /// The property replay rests on: a worker's ops are a function of (seed,
    /// worker, step) alone: the same whatever the other workers did, in what order
    /// the workers were asked, and whatever was seen (except a cas's `old`).
    #[test]
    fn each_workers_ops_are_a_pure_function_of_the_seed() {
        let strip = |n: Next| match n.call {
            Call::Cas { key, new, .. } => (key, new, n.key, "cas"),
            Call::Write { key, value } => (key, value, n.key, "write"),
            Call::Read { key } => (key, 0, n.key, "read"),
            Call::AddElement { key, value } => (key, value, n.key, "add"),
            Call::Increment { key, delta } => (key, delta, n.key, "increment"),
            Call::ReadCounter { key } => (key, 0, n.key, "read-counter"),
            other => panic!("not generated: {other:?}"),
        };
        for workload in workloads() {
            for seed in [0, 1, 42, u64::MAX] {
                let g = Generator::new(workload.clone(), "p/").with_seed(seed);
                let workers = 4;
                // Round-robin, nothing seen.
                let a = ops(&g, workers, 120);
                // Workers one after another in reverse, with everything seen.
                let seen = Seen::default();
                for w in (0..workers).rev() {
                    let mut gen = g.worker(w, workers);
                    let b: Vec<Next> = (0..120)
                        .map(|_| {
                            let n = gen.next(&seen);
                            seen.saw(&n, &serde_json::json!(5));
                            n
                        })
                        .collect();
                    let a: Vec<_> = a[w].iter().cloned().map(strip).collect();
                    let b: Vec<_> = b.into_iter().map(strip).collect();
                    assert_eq!(a, b, "{workload:?} seed {seed} worker {w}");
                }
            }
        }
        // And another seed asks for something else.
        let g = Generator::new(Workload::default(), "p/");
        assert_ne!(
            ops(&g.clone().with_seed(1), 2, 50),
            ops(&g.with_seed(2), 2, 50)
        );
    }

    #[test]
    fn every_key_gets_exactly_its_ops_when_all_workers_finish_their_shares() {
        for (workers, keys, per_key) in [(1, 1, 1), (10, 2, 5), (4, 3, 10), (8, 10, 100)] {
            let w = Workload {
                keys: Some(keys),
                ops_per_key: per_key,
                ..Workload::default()
            };
            let g = Generator::new(w, "t/").with_seed(9);
            let seen = Seen::default();
            let mut per_key_count: HashMap<u64, u64> = HashMap::new();
            let mut used = BTreeSet::new();
            for w in 0..workers {
                let mut gen = g.worker(w, workers);
                for _ in 0..2_000 {
                    *per_key_count
                        .entry(gen.next(&seen).key.unwrap())
                        .or_default() += 1;
                }
                used.extend(gen.used().iter().copied());
            }
            assert_eq!(used.len(), per_key_count.len());
            assert!(per_key_count.values().all(|&n| n <= per_key));
            // Early keys (long done by every worker) got all their ops.
            assert_eq!(
                per_key_count.get(&0),
                Some(&per_key),
                "{workers} {keys} {per_key}"
            );
        }
    }
}
