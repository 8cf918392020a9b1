//! [`TokenBucketWithDebt`]: a token bucket that may be overdrawn up to `max_debt`.

use std::time::Duration;

use super::token_bucket::{Bucket, TokenBucketState};
use super::{Hit, Refund, Strategy, StrategyConfigError};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A [`TokenBucket`](super::TokenBucket) whose tokens may go down to `-max_debt`; the debt is
/// repaid by the refill before the bucket admits again.
///
/// **Guarantees**: a full bucket admits `burst + max_debt` units at once; a hit is admitted
/// while `tokens − cost ≥ −max_debt`; over any interval `t`, at most
/// `burst + max_debt + limit × t / period` units. A cost above `burst + max_debt` is a
/// permanent [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity). Refused hits take nothing.
///
/// **Storage**: the token bucket's `{tokens, per_unit, updated}`, with negative tokens.
///
/// ```
/// use traffik_core::strategy::{Hit, Strategy, TokenBucketWithDebt};
/// use traffik_core::{Context, Rate};
///
/// let (bucket, context) = (TokenBucketWithDebt::new(15), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(10);
/// let outcomes: Vec<bool> = [10, 5, 8, 3, 2]
///     .into_iter()
///     .map(|cost| bucket.apply(&mut state, &Hit::new(0, rate, cost, &context)).is_allowed())
///     .collect();
/// assert_eq!(outcomes, [true, true, true, false, true]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucketWithDebt {
    burst: Option<u64>,
    max_debt: u64,
}

impl TokenBucketWithDebt {
    /// A bucket of `limit` tokens that may be overdrawn by `max_debt`.
    #[must_use]
    pub const fn new(max_debt: u64) -> Self {
        TokenBucketWithDebt {
            burst: None,
            max_debt,
        }
    }

    /// Sets the bucket's capacity (default: the rate's limit).
    #[must_use]
    pub const fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The most the bucket may be overdrawn.
    #[must_use]
    pub const fn max_debt(&self) -> u64 {
        self.max_debt
    }

    pub(crate) fn bucket(&self, rate: &Rate) -> Bucket {
        Bucket::new(rate, self.burst.unwrap_or(rate.limit()), self.max_debt)
    }
}

/// [`TokenBucketWithDebt`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucketWithDebtStat {
    /// Tokens now (negative while in debt).
    pub tokens: f64,
    /// The bucket's capacity.
    pub capacity: u64,
    /// The debt now (0 when tokens are positive).
    pub current_debt: f64,
    /// The most the bucket may be overdrawn.
    pub max_debt: u64,
    /// Tokens refilled per millisecond.
    pub refill_rate_per_ms: f64,
    /// When the bucket was last refilled.
    pub last_refill_ms: Millis,
}

impl Strategy for TokenBucketWithDebt {
    type State = TokenBucketState;
    const NAME: &'static str = "token-bucket-debt";

    fn apply(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Decision {
        self.bucket(&hit.rate).apply(state, hit)
    }

    fn refund(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Refund {
        self.bucket(&hit.rate).refund(state, hit)
    }

    fn stat(&self, state: Option<&TokenBucketState>, hit: &Hit<'_>) -> StrategyStat {
        let bucket = self.bucket(&hit.rate);
        let (remaining, wait, level) = bucket.stat(state, hit.now);
        let tokens = bucket.scale.units_f64(level.tokens);
        let metadata = StatMetadata::TokenBucketWithDebt(TokenBucketWithDebtStat {
            tokens,
            capacity: bucket.capacity,
            current_debt: (-tokens).max(0.0),
            max_debt: self.max_debt,
            refill_rate_per_ms: bucket.scale.rate_per_ms(),
            last_refill_ms: level.updated,
        });
        StrategyStat::new(
            hit.rate,
            remaining,
            if remaining > 0 { Duration::ZERO } else { wait },
            metadata,
        )
    }

    fn expires_at(&self, state: &TokenBucketState, rate: &Rate) -> Millis {
        self.bucket(rate).expires_at(state)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        self.bucket(rate).validate(Self::NAME)
    }

    fn pack(state: &TokenBucketState) -> Option<[u64; 3]> {
        Some(state.pack())
    }

    fn unpack(words: [u64; 3]) -> Option<TokenBucketState> {
        Some(TokenBucketState::unpack(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;

    #[test]
    fn reference_debt_sequence() {
        let mut sim = Sim::new(TokenBucketWithDebt::new(15), Rate::per_second(10));
        sim.at(0);
        let allowed: Vec<bool> = [10, 5, 8, 3, 2]
            .into_iter()
            .map(|c| sim.hit(c).is_allowed())
            .collect();
        assert_eq!(allowed, [true, true, true, false, true]);
    }

    #[test]
    fn debt_is_repaid_before_admitting_again() {
        let mut sim = Sim::new(TokenBucketWithDebt::new(5), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(15).is_allowed()); // tokens -5
        let refused = sim.hit(1);
        assert_eq!(refused.wait(), Some(Duration::from_millis(100)));
        let stat = sim.stat();
        let StatMetadata::TokenBucketWithDebt(meta) = stat.metadata else {
            panic!()
        };
        assert_eq!(
            (meta.tokens, meta.current_debt, meta.max_debt),
            (-5.0, 5.0, 5)
        );
        sim.at(600); // +6 tokens: 1
        assert!(sim.hit(6).is_allowed());
    }

    #[test]
    fn capacity_includes_the_debt() {
        let mut sim = Sim::new(TokenBucketWithDebt::new(5), Rate::per_second(10));
        sim.at(0);
        assert_eq!(sim.hit(16).wait(), None);
        assert!(sim.hit(15).is_allowed());
    }
}
