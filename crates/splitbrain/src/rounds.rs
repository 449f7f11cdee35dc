//! The fault schedule's choices: the order in which a test's nemesis runs the
//! fault kinds it was given, and each fault's own random draws.
//!
//! ```text
//!   nemesis seed ─┬─ stream 0: kinds, every kind once per round   kill partition | partition kill ...
//!                 ├─ stream 1: fault 1's draws (targets, grudge, clock change)
//!                 └─ stream 2: fault 2's draws ...
//! ```
//!
//! A fault's draws come from a stream of its own, so what one fault finds (a
//! leader, or none) and draws never shifts the next: the kinds, their order and
//! every draw are a pure function of the seed.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use splitbrain_control::seed;

/// Every kind once per round, in a random order each round: even a short run sees
/// each kind it asked for, which drawing with replacement would not promise.
#[derive(Debug, Clone)]
pub struct Rounds<T> {
    kinds: Vec<T>,
    /// The kinds still to come in this round.
    left: Vec<T>,
}

impl<T: Clone> Rounds<T> {
    pub fn new(kinds: Vec<T>) -> Rounds<T> {
        Rounds {
            kinds,
            left: Vec::new(),
        }
    }

    /// The next kind; `None` only when there are no kinds at all.
    pub fn next(&mut self, rng: &mut impl Rng) -> Option<T> {
        if self.left.is_empty() {
            self.left = self.kinds.clone();
            self.left.shuffle(rng);
        }
        self.left.pop()
    }
}

/// The fault schedule's choices, drawn from one seed.
#[derive(Debug, Clone)]
pub struct FaultDraws<T> {
    rounds: Rounds<T>,
    kinds_rng: StdRng,
    seed: u64,
    faults: u64,
}

impl<T: Clone> FaultDraws<T> {
    pub fn new(kinds: Vec<T>, seed: u64) -> FaultDraws<T> {
        FaultDraws {
            rounds: Rounds::new(kinds),
            kinds_rng: StdRng::seed_from_u64(seed::derive(seed, 0)),
            seed,
            faults: 0,
        }
    }

    /// The next fault's kind and the stream its own choices are drawn from;
    /// `None` only when there are no kinds at all.
    pub fn next(&mut self) -> Option<(T, StdRng)> {
        let kind = self.rounds.next(&mut self.kinds_rng)?;
        self.faults += 1;
        let rng = StdRng::seed_from_u64(seed::derive(self.seed, self.faults));
        Some((kind, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_a_pure_function_of_the_seed() {
        let draw = |seed| {
            let mut d = FaultDraws::new(vec!["partition", "kill", "pause", "clock"], seed);
            (0..12)
                .map(|_| {
                    let (kind, mut rng) = d.next().unwrap();
                    (kind, rng.random::<u64>())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        // A fault that draws more leaves the next fault's draws alone.
        let mut d = FaultDraws::new(vec!["a", "b"], 5);
        let (_, mut first) = d.next().unwrap();
        for _ in 0..100 {
            first.random::<u64>();
        }
        let (_, mut second) = d.next().unwrap();
        assert_eq!(second.random::<u64>(), draw(5)[1].1);
    }

    #[test]
    fn each_round_runs_every_kind_once() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut r = Rounds::new(vec!["a", "b", "c"]);
        for _ in 0..4 {
            let mut round: Vec<_> = (0..3).map(|_| r.next(&mut rng).unwrap()).collect();
            round.sort();
            assert_eq!(round, ["a", "b", "c"]);
        }
        assert_eq!(Rounds::<u8>::new(vec![]).next(&mut rng), None);
    }
}
