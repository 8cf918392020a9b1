//! A small deterministic generator of (time step, cost) sequences for differential tests.

/// xorshift64*: deterministic, seedable, good enough to vary test inputs.
#[derive(Debug, Clone)]
pub struct Sequence(u64);

impl Sequence {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Sequence(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1)
    }

    /// `count` steps of (milliseconds to advance, cost).
    pub fn steps(&mut self, count: usize, max_gap_ms: u64, max_cost: u64) -> Vec<(u64, u64)> {
        (0..count)
            .map(|_| (self.below(max_gap_ms + 1), 1 + self.below(max_cost)))
            .collect()
    }
}
