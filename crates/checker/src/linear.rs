//! The linearizability search for one key: Wing & Gong's backtracking over the
//! event list, with Lowe's cache of (linearized set, model state) so no configuration
//! is explored twice.
//!
//! Events (invocations and returns) sit in a doubly linked list in real-time order.
//! The search repeatedly takes the first call in the list whose op the model accepts,
//! *lifts* it (removes its call and return events), and starts again from the head.
//! Meeting a return event means that op should have been linearized by now: undo the
//! last choice and try the next candidate. The history is linearizable once no return
//! event is left (ops with no return, pending forever, need not be linearized).
//!
//! ```text
//!   list:  c0 c1 r0 c2 r1 r2        lift c1:  c0 r0 c2 r2   (c1, r1 gone)
//! ```

use crate::model::Model;
use crate::prepare::Call;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// When to give up: a wall-clock deadline, a memory budget for the search caches,
/// and a flag another thread may raise.
#[derive(Debug, Default)]
pub struct Deadline {
    pub at: Option<Instant>,
    pub cancelled: AtomicBool,
    /// Bytes the searches' caches may hold in all (an estimate; `u64::MAX`: no limit).
    pub memory: u64,
    used: AtomicU64,
    out_of_memory: AtomicBool,
}

impl Deadline {
    pub fn new(at: Option<Instant>) -> Deadline {
        Deadline::with_memory(at, u64::MAX)
    }

    pub fn with_memory(at: Option<Instant>, memory: u64) -> Deadline {
        Deadline {
            at,
            cancelled: AtomicBool::new(false),
            memory,
            used: AtomicU64::new(0),
            out_of_memory: AtomicBool::new(false),
        }
    }

    /// Counts `bytes` more against the memory budget; false (and cancelled) when over.
    pub(crate) fn charge(&self, bytes: u64) -> bool {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > self.memory {
            self.out_of_memory.store(true, Ordering::Relaxed);
            self.cancelled.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether a search gave up for lack of memory rather than time.
    pub fn out_of_memory(&self) -> bool {
        self.out_of_memory.load(Ordering::Relaxed)
    }

    pub fn expired(&self) -> bool {
        if self.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        if self.at.is_some_and(|at| Instant::now() >= at) {
            self.cancelled.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Where a failed search got furthest.
#[derive(Debug, Clone)]
pub(crate) struct Stuck<S> {
    /// The call whose return could not be passed.
    pub op: usize,
    /// The longest linearizable prefix that reached it, in linearization order.
    pub prefix: Vec<usize>,
    /// Model states the prefixes that reached it could end in (a few).
    pub states: Vec<S>,
}

#[derive(Debug)]
pub(crate) enum Outcome<S> {
    /// A linearization: indices into the calls, in order.
    Linearizable(Vec<usize>),
    NotLinearizable(Stuck<S>),
    /// The deadline passed first.
    Unknown,
}

const NIL: u32 = u32::MAX;
const MAX_STATES: usize = 8;

/// Decides whether `calls` (sorted by invocation) are linearizable from `init`.
pub(crate) fn search<M: Model>(
    model: &M,
    calls: &[Call<M::Op>],
    init: &M::State,
    deadline: &Deadline,
) -> Outcome<M::State> {
    // The event list: call and return events sorted by position. Virtual returns may
    // share a position; order them by call so the list is deterministic.
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(calls.len() * 2);
    for (i, c) in calls.iter().enumerate() {
        events.push((c.call, i as u32, false));
        if let Some(r) = c.ret {
            events.push((r, i as u32, true));
        }
    }
    events.sort_unstable_by_key(|&(p, i, _)| (p, i));
    let m = events.len();
    let head = m;
    let mut next = vec![NIL; m + 1];
    let mut prev = vec![NIL; m + 1];
    let mut call_ev = vec![NIL; calls.len()];
    let mut ret_ev = vec![NIL; calls.len()];
    let mut last = head as u32;
    for (e, &(_, i, is_ret)) in events.iter().enumerate() {
        next[last as usize] = e as u32;
        prev[e] = last;
        last = e as u32;
        if is_ret {
            ret_ev[i as usize] = e as u32;
        } else {
            call_ev[i as usize] = e as u32;
        }
    }
    let unlink = |next: &mut [u32], prev: &mut [u32], e: u32| {
        let (p, n) = (prev[e as usize], next[e as usize]);
        next[p as usize] = n;
        if n != NIL {
            prev[n as usize] = p;
        }
    };
    let relink = |next: &mut [u32], prev: &mut [u32], e: u32| {
        let (p, n) = (prev[e as usize], next[e as usize]);
        next[p as usize] = e;
        if n != NIL {
            prev[n as usize] = e;
        }
    };

    let mut returns_left = calls.iter().filter(|c| c.ret.is_some()).count();
    let mut lin = LinSet::new(calls.len());
    let mut cache: HashSet<CacheKey<M::State>, BuildHasherDefault<PassThrough>> =
        HashSet::default();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = init.clone();
    let mut stuck: Option<(u64, Stuck<M::State>)> = None;
    let mut e = next[head];
    let mut steps: u32 = 0;
    // Cache bytes not yet charged to the shared budget (charged in batches).
    let mut uncharged: u64 = 0;
    // An entry, the table's spare capacity (it doubles as it grows) and the boxed
    // tail's allocation: about 128 bytes measured on a register search.
    let entry_bytes = 2 * std::mem::size_of::<CacheKey<M::State>>() as u64 + 32;
    let outcome = loop {
        if returns_left == 0 {
            break Outcome::Linearizable(stack.iter().map(|(i, _)| *i).collect());
        }
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(1024) {
            let within_memory = deadline.charge(std::mem::take(&mut uncharged));
            if !within_memory || deadline.expired() {
                break Outcome::Unknown;
            }
        }
        let at_return = e == NIL || events[e as usize].2;
        if at_return {
            if e != NIL {
                let (p, i, _) = events[e as usize];
                note_stuck(&mut stuck, p, i as usize, &stack, &state);
            }
            let Some((i, before)) = stack.pop() else {
                let (_, s) = stuck.expect("a failed search met a return event");
                break Outcome::NotLinearizable(s);
            };
            state = before;
            lin.clear(i);
            if ret_ev[i] != NIL {
                relink(&mut next, &mut prev, ret_ev[i]);
                returns_left += 1;
            }
            relink(&mut next, &mut prev, call_ev[i]);
            e = next[call_ev[i] as usize];
            continue;
        }
        let i = events[e as usize].1 as usize;
        if let Some(after) = model.step(&state, &calls[i].op) {
            lin.set(i);
            let key = lin.key(after.clone());
            let bytes = entry_bytes + 8 * key.tail.len() as u64 + model.state_heap_bytes(&after);
            if cache.insert(key) {
                uncharged += bytes;
                stack.push((i, std::mem::replace(&mut state, after)));
                unlink(&mut next, &mut prev, call_ev[i]);
                if ret_ev[i] != NIL {
                    unlink(&mut next, &mut prev, ret_ev[i]);
                    returns_left -= 1;
                }
                e = next[head];
                continue;
            }
            lin.clear(i);
        }
        e = next[e as usize];
    };
    // A big cache takes a while to free (half a second for a few million entries);
    // when giving up, free it on another thread so the time limit holds.
    if matches!(outcome, Outcome::Unknown) && cache.len() > 100_000 {
        std::thread::spawn(move || drop(cache));
    }
    outcome
}

fn note_stuck<S: Clone + Eq>(
    stuck: &mut Option<(u64, Stuck<S>)>,
    pos: u64,
    op: usize,
    stack: &[(usize, S)],
    state: &S,
) {
    match stuck {
        Some((p, s)) if *p == pos => {
            if s.states.len() < MAX_STATES && !s.states.contains(state) {
                s.states.push(state.clone());
            }
        }
        Some((p, _)) if *p > pos => {}
        _ => {
            *stuck = Some((
                pos,
                Stuck {
                    op,
                    prefix: stack.iter().map(|(i, _)| *i).collect(),
                    states: vec![state.clone()],
                },
            ))
        }
    }
}

/// The set of linearized calls. Calls are numbered in invocation order, so the set
/// is nearly always "everything up to some point, plus a few": the cache key stores
/// the count of leading full words and the rest, trimmed.
struct LinSet {
    words: Vec<u64>,
    /// Words before `lead` are all ones.
    lead: usize,
    /// Zobrist hash of the set: the xor of a fixed random number per member.
    hash: u64,
}

impl LinSet {
    fn new(n: usize) -> LinSet {
        LinSet {
            words: vec![0; n.div_ceil(64) + 1],
            lead: 0,
            hash: 0,
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.hash ^= mix(i as u64);
        while self.words[self.lead] == u64::MAX {
            self.lead += 1;
        }
    }

    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
        self.hash ^= mix(i as u64);
        self.lead = self.lead.min(i / 64);
    }

    fn key<S: Hash>(&self, state: S) -> CacheKey<S> {
        let mut end = self.words.len();
        while end > self.lead && self.words[end - 1] == 0 {
            end -= 1;
        }
        let mut h = rustc_hash::FxHasher::default();
        state.hash(&mut h);
        CacheKey {
            hash: self.hash ^ h.finish().rotate_left(17),
            lead: self.lead as u32,
            tail: self.words[self.lead..end].into(),
            state,
        }
    }
}

/// SplitMix64's finalizer: a fixed pseudo-random number per call index.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct CacheKey<S> {
    hash: u64,
    lead: u32,
    tail: Box<[u64]>,
    state: S,
}

impl<S: Eq> PartialEq for CacheKey<S> {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash && self.lead == o.lead && self.tail == o.tail && self.state == o.state
    }
}

impl<S: Eq> Eq for CacheKey<S> {}

impl<S> Hash for CacheKey<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// The cache key carries its own hash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
