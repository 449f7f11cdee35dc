//! The order in which a test's nemesis runs the fault kinds it was given.

use rand::seq::SliceRandom;
use rand::Rng;

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
