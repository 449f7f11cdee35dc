//! Seeds: one number a run is replayed from, and the independent streams drawn
//! from it.
//!
//! ```text
//!   --seed N ─┬─ derive(N, WORKLOAD) ─┬─ derive(_, 0): worker 0's ops
//!             │                       └─ derive(_, 1): worker 1's ops ...
//!             └─ derive(N, NEMESIS) ── the fault schedule (kinds, targets, grudges)
//! ```
//!
//! Streams are derived, not shared, so that what one stream draws (a worker that
//! ran more ops, a fault that asked for the leader) never shifts another.

/// The stream of the workload's generator.
pub const WORKLOAD: u64 = 1;
/// The stream of the fault schedule.
pub const NEMESIS: u64 = 2;

/// The largest seed a run records: TOML's integers are signed 64-bit.
pub const MAX: u64 = i64::MAX as u64;

/// The seed of stream `stream` of `seed`: SplitMix64 of both, so that nearby seeds
/// and nearby streams give unrelated numbers. The result fits [`MAX`].
pub fn derive(seed: u64, stream: u64) -> u64 {
    splitmix64(seed ^ splitmix64(stream.wrapping_add(0x5eed))) & MAX
}

/// A fresh seed for a run that was given none: random, and below 2^53 so that
/// JSON tools that read numbers as doubles keep it exact.
pub fn fresh() -> u64 {
    rand::random::<u64>() >> 11
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_are_stable() {
        assert_eq!(derive(7, WORKLOAD), derive(7, WORKLOAD));
        assert_ne!(derive(7, WORKLOAD), derive(7, NEMESIS));
        assert_ne!(derive(7, WORKLOAD), derive(8, WORKLOAD));
        assert!(derive(u64::MAX, 3) <= MAX);
        assert!((0..1000).all(|_| fresh() < 1 << 53));
    }
}
