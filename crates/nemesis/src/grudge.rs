//! Grudges: who may not hear whom. Pure values, built by small functions, applied by
//! a network backend ([`crate::lab::LabNet`]).
//!
//! A grudge maps each node to the nodes whose packets it drops, as in Jepsen. A
//! *complete* partition into components is symmetric: nodes in different
//! components hear nothing from each other.
//!
//! ```text
//!   isolate n1 of [n1 n2 n3]     n1 ✗ n2, n1 ✗ n3        {n1: [n2, n3], n2: [n1], n3: [n1]}
//!   one-way n1 → n2              n2 drops n1's packets  {n2: [n1]}
//!   bridge of [n1 .. n5]         n1 n2 | n3 | n4 n5, n3 hears everyone
//! ```

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Node -> the nodes whose packets it drops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

impl Grudge {
    /// Nodes in different components hear nothing from each other.
    pub fn complete(components: &[Vec<String>]) -> Grudge {
        let mut g = Grudge::default();
        for (i, a) in components.iter().enumerate() {
            for (j, b) in components.iter().enumerate() {
                if i == j {
                    continue;
                }
                for x in a {
                    g.0.entry(x.clone()).or_default().extend(b.iter().cloned());
                }
            }
        }
        g
    }

    /// `victim` alone on one side, everyone else on the other.
    pub fn isolate(nodes: &[String], victim: &str) -> Grudge {
        let rest: Vec<String> = nodes.iter().filter(|n| *n != victim).cloned().collect();
        Grudge::complete(&[vec![victim.to_string()], rest])
    }

    /// A random split into two halves: a minority of ⌊n/2⌋ nodes and a majority.
    pub fn halves(nodes: &[String], rng: &mut impl Rng) -> Grudge {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let majority = shuffled.split_off(nodes.len() / 2);
        Grudge::complete(&[shuffled, majority])
    }

    /// A partition drawn as a test's nemesis draws one, with the name of its shape:
    /// a random node isolated, random halves, the `leader` isolated, and on five
    /// nodes or more a bridge or a majorities ring.
    ///
    /// It draws the same from `rng` whatever `leader` is (the shape, a victim and
    /// an order, always), so a seed gives the same shapes whether or not a leader
    /// was found; with no leader, `isolate-leader` isolates the random victim and
    /// says `isolate`.
    pub fn random(
        nodes: &[String],
        leader: Option<&str>,
        rng: &mut impl Rng,
    ) -> (&'static str, Grudge) {
        use rand::seq::IndexedRandom;
        let mut shapes = vec!["isolate", "halves", "isolate-leader"];
        if nodes.len() >= 5 {
            shapes.extend(["bridge", "majorities-ring"]);
        }
        let shape = *shapes.choose(rng).unwrap_or(&"halves");
        let victim = nodes.choose(rng).cloned().unwrap_or_default();
        let mut order = nodes.to_vec();
        order.shuffle(rng);
        match (shape, leader) {
            ("isolate-leader", Some(leader)) => (shape, Grudge::isolate(nodes, leader)),
            ("isolate" | "isolate-leader", _) => ("isolate", Grudge::isolate(nodes, &victim)),
            ("bridge", _) => (shape, Grudge::bridge(nodes)),
            ("majorities-ring", _) => (shape, Grudge::majorities_ring(nodes)),
            _ => {
                let majority = order.split_off(nodes.len() / 2);
                (shape, Grudge::complete(&[order, majority]))
            }
        }
    }

    /// Two halves joined through one node that hears both: with five nodes
    /// `n1 n2 | n3 | n4 n5`, where n3 belongs to both majorities.
    pub fn bridge(nodes: &[String]) -> Grudge {
        let mid = nodes.len() / 2;
        let (left, right) = (&nodes[..mid], &nodes[mid + 1..]);
        let mut g = Grudge::complete(&[left.to_vec(), right.to_vec()]);
        g.0.retain(|_, drops| !drops.is_empty());
        g
    }

    /// Each node hears a majority (itself and its ⌊n/2⌋ nearest neighbours on a
    /// ring), and no two nodes hear the same majority (Jepsen's majorities ring).
    pub fn majorities_ring(nodes: &[String]) -> Grudge {
        let n = nodes.len();
        let reach = n / 2;
        let mut g = Grudge::default();
        for (i, node) in nodes.iter().enumerate() {
            // Itself, then neighbours alternately right and left, up to a majority.
            let mut keep = BTreeSet::from([i]);
            let mut d = 1;
            while keep.len() < reach + 1 {
                keep.insert((i + d) % n);
                if keep.len() < reach + 1 {
                    keep.insert((i + n - d) % n);
                }
                d += 1;
            }
            let drops: BTreeSet<String> = (0..n)
                .filter(|j| !keep.contains(j))
                .map(|j| nodes[j].clone())
                .collect();
            if !drops.is_empty() {
                g.0.insert(node.clone(), drops);
            }
        }
        g
    }

    /// `to` stops hearing `from`; `from` still hears `to`.
    pub fn one_way(from: &str, to: &str) -> Grudge {
        Grudge(BTreeMap::from([(
            to.to_string(),
            BTreeSet::from([from.to_string()]),
        )]))
    }

    /// Whether `a` and `b` cannot talk: either drops the other's packets (one way
    /// is enough to break a TCP connection).
    pub fn severs(&self, a: &str, b: &str) -> bool {
        let drops = |x: &str, y: &str| self.0.get(x).is_some_and(|d| d.contains(y));
        drops(a, b) || drops(b, a)
    }

    /// Whether `node` can talk to none of the other `nodes` (and there is another).
    pub fn isolates(&self, node: &str, nodes: &[String]) -> bool {
        let mut others = nodes.iter().filter(|n| *n != node).peekable();
        others.peek().is_some() && others.all(|n| self.severs(node, n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|d| d.is_empty())
    }

    /// Every node the grudge names.
    pub fn nodes(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(v.iter().map(|s| s.as_str())))
            .collect()
    }

    /// As JSON, for a nemesis op's value: `{"n1": ["n2", "n3"], ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Grudge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(n, d)| {
                let d: Vec<&str> = d.iter().map(|s| s.as_str()).collect();
                format!("{n} drops {}", d.join(","))
            })
            .collect();
        if parts.is_empty() {
            f.write_str("no grudge")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn a_node_is_isolated_when_it_can_talk_to_no_other_in_either_direction() {
        let five = nodes(5);
        assert!(Grudge::isolate(&five, "n2").isolates("n2", &five));
        assert!(!Grudge::isolate(&five, "n2").isolates("n1", &five));
        // Halves: the minority's nodes still talk to each other.
        let halves = Grudge::complete(&[nodes(2), five[2..].to_vec()]);
        assert!(!halves.isolates("n1", &five));
        let three = nodes(3);
        let halves = Grudge::complete(&[vec!["n1".into()], three[1..].to_vec()]);
        assert!(halves.isolates("n1", &three));
        // One way is enough to sever a connection.
        let mut g = Grudge::one_way("n1", "n2");
        g.0.extend(Grudge::one_way("n3", "n1").0);
        assert!(g.severs("n2", "n1") && g.severs("n1", "n2"));
        assert!(g.isolates("n1", &three));
        assert!(!Grudge::one_way("n1", "n2").isolates("n1", &three));
        assert!(!Grudge::isolate(&three, "n1").isolates("n1", &three[..1]));
    }

    #[test]
    fn random_shapes_fit_the_cluster_and_isolate_the_leader_it_is_given() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let (shape, g) = Grudge::random(&nodes(3), Some("n2"), &mut rng);
            seen.insert(shape);
            assert!(!g.is_empty(), "{shape}");
            if shape == "isolate-leader" {
                assert_eq!(g, Grudge::isolate(&nodes(3), "n2"));
            }
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["halves", "isolate", "isolate-leader"],
            "no bridge or ring on three nodes"
        );
        for _ in 0..200 {
            let (shape, _) = Grudge::random(&nodes(5), None, &mut rng);
            assert_ne!(shape, "isolate-leader", "no leader, no leader shape");
        }
    }

    /// A seed draws the same shapes with or without a leader: what the nemesis
    /// finds in the cluster never shifts what it draws next.
    #[test]
    fn random_draws_the_same_whether_or_not_there_is_a_leader() {
        for n in [3, 5] {
            let mut with = rand::rngs::StdRng::seed_from_u64(11);
            let mut without = rand::rngs::StdRng::seed_from_u64(11);
            for _ in 0..100 {
                let (a, ga) = Grudge::random(&nodes(n), Some("n1"), &mut with);
                let (b, gb) = Grudge::random(&nodes(n), None, &mut without);
                if a == "isolate-leader" {
                    assert_eq!(b, "isolate");
                } else {
                    assert_eq!((a, &ga), (b, &gb));
                }
            }
        }
    }

    fn drops(g: &Grudge, n: &str) -> Vec<String> {
        g.0.get(n)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn isolate_is_symmetric() {
        let g = Grudge::isolate(&nodes(3), "n1");
        assert_eq!(drops(&g, "n1"), ["n2", "n3"]);
        assert_eq!(drops(&g, "n2"), ["n1"]);
        assert_eq!(drops(&g, "n3"), ["n1"]);
    }

    #[test]
    fn halves_split_into_a_minority_and_the_rest() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 2..8 {
            let all = nodes(n);
            let g = Grudge::halves(&all, &mut rng);
            // Each node's side: the nodes it still hears, itself included.
            let sides: BTreeSet<BTreeSet<String>> = all
                .iter()
                .map(|x| {
                    all.iter()
                        .filter(|y| !drops(&g, x).contains(y))
                        .cloned()
                        .collect()
                })
                .collect();
            let sizes: Vec<usize> = sides.iter().map(|s| s.len()).collect();
            assert_eq!(sides.len(), 2, "{g}");
            assert_eq!(sizes.iter().sum::<usize>(), n, "{g}");
            assert!(sizes.contains(&(n / 2)), "{g}");
        }
    }

    #[test]
    fn bridge_node_hears_everyone() {
        let g = Grudge::bridge(&nodes(5));
        assert!(drops(&g, "n3").is_empty());
        assert_eq!(drops(&g, "n1"), ["n4", "n5"]);
        assert_eq!(drops(&g, "n5"), ["n1", "n2"]);
    }

    #[test]
    fn majorities_ring_gives_everyone_a_distinct_majority() {
        for n in [3, 5, 7] {
            let all = nodes(n);
            let g = Grudge::majorities_ring(&all);
            let mut seen = BTreeSet::new();
            for x in &all {
                let hears: BTreeSet<String> = all
                    .iter()
                    .filter(|y| !drops(&g, x).contains(y))
                    .cloned()
                    .collect();
                assert_eq!(hears.len(), n / 2 + 1, "{x} in {g}");
                assert!(seen.insert(hears), "two nodes hear the same majority: {g}");
            }
        }
    }

    #[test]
    fn one_way_drops_one_direction() {
        let g = Grudge::one_way("n1", "n2");
        assert_eq!(drops(&g, "n2"), ["n1"]);
        assert!(drops(&g, "n1").is_empty());
        assert_eq!(g.to_json(), serde_json::json!({"n2": ["n1"]}));
    }
}
