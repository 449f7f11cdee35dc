//! What workers ask for: the workload's op mix over one key or many.
//!
//! `register` writes and reads; `cas-register` adds compare-and-set. Written values
//! come from one counter, so every value is unique (per key and overall), which is
//! what lets the checker tell writes apart. A cas expects the last value this run
//! saw on that key, so that some of them succeed.
//!
//! Keyed (jepsen.independent): `keys` keys are live at a time; a key that has been
//! handed out `ops_per_key` times retires and a fresh one takes its place, so each
//! key's history stays small enough to check.

use crate::client::Call;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
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
#[derive(Debug, Clone)]
pub struct Next {
    pub call: Call,
    pub key: Option<u64>,
}

/// Hands out ops to every worker. Shared; each call takes one short lock.
#[derive(Debug)]
pub struct Generator {
    workload: Workload,
    prefix: String,
    next_value: AtomicI64,
    state: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    /// Live keys and how many ops each has been handed.
    live: Vec<(u64, u64)>,
    next_key: u64,
    /// Last value seen (written or read ok) per key, for cas.
    last: HashMap<u64, Option<i64>>,
    /// Every key ever handed out, for final reads.
    used: Vec<u64>,
}

impl Generator {
    /// `prefix` goes before every key on the server, so runs never share keys.
    pub fn new(workload: Workload, prefix: impl Into<String>) -> Generator {
        let live = workload.keys.unwrap_or(1).max(1) as u64;
        Generator {
            workload,
            prefix: prefix.into(),
            next_value: AtomicI64::new(1),
            state: Mutex::new(Keys {
                live: (0..live).map(|k| (k, 0)).collect(),
                next_key: live,
                ..Keys::default()
            }),
        }
    }

    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    fn server_key(&self, k: u64) -> String {
        format!("{}{k}", self.prefix)
    }

    fn history_key(&self, k: u64) -> Option<u64> {
        self.workload.keys.map(|_| k)
    }

    /// The next op for a worker.
    pub fn next(&self, rng: &mut impl Rng) -> Next {
        let m = self.workload.mix;
        let cas = if self.workload.kind == WorkloadKind::CasRegister {
            m.cas
        } else {
            0
        };
        let total = (m.read + m.write + cas).max(1);
        let pick = rng.random_range(0..total);
        let (k, last) = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let i = rng.random_range(0..st.live.len());
            let (k, count) = st.live[i];
            if count == 0 {
                st.used.push(k);
            }
            if self.workload.keys.is_some() && count + 1 >= self.workload.ops_per_key {
                let fresh = st.next_key;
                st.next_key += 1;
                st.live[i] = (fresh, 0);
            } else {
                st.live[i].1 = count + 1;
            }
            (k, st.last.get(&k).copied().flatten())
        };
        let key = self.server_key(k);
        let fresh = || self.next_value.fetch_add(1, Ordering::Relaxed);
        let call = match self.workload.kind {
            WorkloadKind::Set => Call::AddElement {
                key,
                value: fresh(),
            },
            WorkloadKind::Counter if pick < m.read => Call::ReadCounter { key },
            WorkloadKind::Counter => Call::Increment {
                key,
                delta: rng.random_range(1..=5),
            },
            _ if pick < m.read => Call::Read { key },
            _ if pick < m.read + m.write => Call::Write {
                key,
                value: fresh(),
            },
            _ => Call::Cas {
                key,
                old: last,
                new: fresh(),
            },
        };
        Next {
            call,
            key: self.history_key(k),
        }
    }

    /// Tells the generator a value was seen on `key` (an ok read, write or cas), so
    /// later cas ops expect it.
    pub fn saw(&self, next: &Next, value: &serde_json::Value) {
        let k = self.key_index(next);
        let v = match (&next.call, value) {
            (Call::Read { .. }, v) => v.as_i64(),
            (Call::Write { value, .. }, _) => Some(*value),
            (Call::Cas { new, .. }, _) => Some(*new),
            _ => return,
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.last.insert(k, v);
    }

    fn key_index(&self, next: &Next) -> u64 {
        next.key.unwrap_or(0)
    }

    /// A final read of every key used so far.
    pub fn final_reads(&self) -> Vec<Next> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut used = st.used.clone();
        if used.is_empty() {
            used.push(0);
        }
        used.iter()
            .map(|&k| {
                let key = self.server_key(k);
                let call = match self.workload.kind {
                    WorkloadKind::Set => Call::ReadSet { key },
                    WorkloadKind::Counter => Call::ReadCounter { key },
                    _ => Call::Read { key },
                };
                Next {
                    call,
                    key: self.history_key(k),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_are_unique() {
        let g = Generator::new(Workload::default(), "t/");
        let mut rng = rand::rng();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            match g.next(&mut rng).call {
                Call::Write { value, .. } | Call::Cas { new: value, .. } => {
                    assert!(seen.insert(value), "value {value} written twice")
                }
                _ => {}
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
        let mut rng = rand::rng();
        let mut per_key: HashMap<u64, u64> = HashMap::new();
        for _ in 0..100 {
            *per_key.entry(g.next(&mut rng).key.unwrap()).or_default() += 1;
        }
        assert!(per_key.values().all(|&n| n <= 5));
        assert!(per_key.len() >= 20);
        assert_eq!(g.final_reads().len(), per_key.len());
    }

    #[test]
    fn set_only_adds_and_reads_the_whole_set_at_the_end() {
        let w = Workload {
            kind: WorkloadKind::Set,
            ..Workload::default()
        };
        let g = Generator::new(w, "t/");
        let mut rng = rand::rng();
        assert!((0..200).all(|_| matches!(g.next(&mut rng).call, Call::AddElement { .. })));
        assert!(matches!(g.final_reads()[0].call, Call::ReadSet { .. }));
        let c = Generator::new(
            Workload {
                kind: WorkloadKind::Counter,
                ..Workload::default()
            },
            "t/",
        );
        assert!((0..200).all(|_| matches!(
            c.next(&mut rng).call,
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
        let mut rng = rand::rng();
        assert!((0..500).all(|_| !matches!(g.next(&mut rng).call, Call::Cas { .. })));
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
        let mut rng = rand::rng();
        let first = g.next(&mut rng);
        assert!(matches!(first.call, Call::Cas { old: None, .. }));
        g.saw(&first, &serde_json::Value::Null);
        let Call::Cas { new, .. } = first.call else {
            unreachable!()
        };
        assert!(matches!(g.next(&mut rng).call, Call::Cas { old: Some(o), .. } if o == new));
    }
}
