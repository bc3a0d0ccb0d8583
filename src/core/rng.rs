//! Deterministic randomness: the only source of random numbers in kbatch.
//!
//! A stream is identified by `(seed, stream)`; batch `i` uses stream `i`, so the state after
//! batch `i` depends only on the seed and the batch number, never on what ran before in this
//! process. The generator is xoshiro256++ seeded through SplitMix64; both are fixed here so a
//! dependency upgrade can never change a stored run's results.

/// Stream id used for the item permutation of the batch plan.
pub const PLAN_STREAM: u64 = u64::MAX;

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator for `stream` under `seed`.
    pub fn for_stream(seed: u64, stream: u64) -> Rng {
        todo!()
    }

    pub fn next_u64(&mut self) -> u64 {
        todo!()
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        todo!()
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        todo!()
    }
}
