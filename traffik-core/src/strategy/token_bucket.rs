//! [`TokenBucket`]: tokens refill at the rate; each hit spends its cost.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scale::{EXACT_LIMIT, Scale};
use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A bucket of `burst` tokens (default: the rate's limit) refilled at `limit / period`.
///
/// **Guarantees**: a full bucket admits `burst` units at once; after that, exactly the rate.
/// Over any interval `t`, at most `burst + limit × t / period` units are admitted. A hit whose
/// cost exceeds `burst` can never succeed and gets [`Outcome::ExceedsCapacity`] instead of
/// an unreachable wait. Refused hits take no tokens. Arithmetic is exact (scaled integers).
///
/// **Storage**: `{tokens, per_unit, updated}`: tokens in scaled units, the scale they were
/// written in, and the time of the last refill. A missing key is a full bucket.
///
/// [`Outcome::ExceedsCapacity`]: crate::Outcome::ExceedsCapacity
///
/// ```
/// use traffik_core::strategy::{Hit, Strategy, TokenBucket};
/// use traffik_core::{Context, Rate};
///
/// let (bucket, context) = (TokenBucket::new().burst(15), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(10);
/// assert!(bucket.apply(&mut state, &Hit::new(0, rate, 15, &context)).is_allowed());
/// let next = bucket.apply(&mut state, &Hit::new(0, rate, 1, &context));
/// assert_eq!(next.wait(), Some(std::time::Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBucket {
    burst: Option<u64>,
}

impl TokenBucket {
    /// A bucket holding as many tokens as the rate's limit.
    #[must_use]
    pub const fn new() -> Self {
        TokenBucket { burst: None }
    }

    /// Sets the bucket's capacity (the largest burst).
    #[must_use]
    pub const fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// The capacity for `rate`.
    #[must_use]
    pub fn capacity(&self, rate: &Rate) -> u64 {
        self.burst.unwrap_or(rate.limit())
    }
}

/// The state of a token bucket (with or without debt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucketState {
    /// Tokens in scaled units (negative when in debt).
    pub tokens: i64,
    /// Scaled units per token when written (see the strategy docs).
    pub per_unit: u64,
    /// When the bucket was last refilled.
    pub updated: Millis,
}

impl TokenBucketState {
    /// The state as three words (for inline storage).
    pub(crate) fn pack(&self) -> [u64; 3] {
        [self.tokens.cast_unsigned(), self.per_unit, self.updated]
    }

    /// The inverse of [`pack`](Self::pack).
    pub(crate) fn unpack([tokens, per_unit, updated]: [u64; 3]) -> Self {
        TokenBucketState {
            tokens: tokens.cast_signed(),
            per_unit,
            updated,
        }
    }
}

/// [`TokenBucket`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucketStat {
    /// Tokens available now (fractional).
    pub tokens: f64,
    /// The bucket's capacity.
    pub capacity: u64,
    /// Tokens refilled per millisecond.
    pub refill_rate_per_ms: f64,
    /// When the bucket was last refilled.
    pub last_refill_ms: Millis,
}

/// The shared token-bucket machinery: `floor_units` is the debt allowed (0 without debt).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) scale: Scale,
    pub(crate) capacity: u64,
    pub(crate) max_debt: u64,
}

/// A bucket's tokens at `now`, refilled and capped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level {
    pub(crate) tokens: i128,
    pub(crate) now: Millis,
    pub(crate) updated: Millis,
}

impl Bucket {
    pub(crate) fn new(rate: &Rate, capacity: u64, max_debt: u64) -> Self {
        Bucket {
            scale: Scale::of(rate),
            capacity,
            max_debt,
        }
    }

    fn cap(&self) -> i128 {
        self.scale.scaled(self.capacity)
    }

    fn floor(&self) -> i128 {
        -self.scale.scaled(self.max_debt)
    }

    /// Refills the stored tokens up to `now` (time going backwards refills nothing).
    pub(crate) fn level(&self, state: Option<&TokenBucketState>, now: Millis) -> Level {
        match state {
            None => Level {
                tokens: self.cap(),
                now,
                updated: now,
            },
            Some(s) => {
                let now = now.max(s.updated);
                let stored = self.scale.rescale(i128::from(s.tokens), s.per_unit, false);
                let tokens = (stored + self.scale.gained(now - s.updated)).min(self.cap());
                Level {
                    tokens,
                    now,
                    updated: s.updated,
                }
            }
        }
    }

    pub(crate) fn apply(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Decision {
        let limit = hit.rate.limit();
        let level = self.level(state.as_ref(), hit.now);
        let spendable = level.tokens - self.floor();
        let remaining = self.scale.whole_units(spendable);
        let ceiling = self.capacity.saturating_add(self.max_debt);
        if hit.cost > ceiling {
            return Decision::exceeds_capacity(limit, ceiling, remaining, self.reset(level.tokens));
        }
        let need = self.scale.scaled(hit.cost);
        if need <= spendable {
            let tokens = level.tokens - need;
            *state = Some(TokenBucketState {
                tokens: clamp_i64(tokens),
                per_unit: self.scale.per_unit,
                updated: level.now,
            });
            Decision::allowed(
                limit,
                self.scale.whole_units(tokens - self.floor()),
                self.reset(tokens),
            )
        } else {
            let wait = millis(self.scale.ms_to_gain(need - spendable));
            Decision::throttled(limit, remaining, wait, self.reset(level.tokens))
        }
    }

    /// Puts the charge's tokens back (never above the capacity); nothing once the bucket was
    /// last refilled a whole refill time after the charge.
    pub(crate) fn refund(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Refund {
        if state.is_none() {
            return Refund::Lapsed;
        }
        let level = self.level(state.as_ref(), hit.now);
        // A bucket last touched a whole refill after the charge has forgotten it (the refund
        // never returns units the charge may no longer hold).
        let refill = u64::try_from(self.scale.ms_to_gain(self.cap())).unwrap_or(u64::MAX);
        if level.tokens >= self.cap() || level.updated >= hit.now.saturating_add(refill) {
            return Refund::Lapsed;
        }
        let tokens = level
            .tokens
            .saturating_add(self.scale.scaled(hit.cost))
            .min(self.cap());
        *state = (tokens < self.cap()).then(|| TokenBucketState {
            tokens: clamp_i64(tokens),
            per_unit: self.scale.per_unit,
            updated: level.now,
        });
        Refund::Returned
    }

    /// Time until the bucket is full again.
    pub(crate) fn reset(&self, tokens: i128) -> Duration {
        millis(self.scale.ms_to_gain(self.cap() - tokens))
    }

    pub(crate) fn expires_at(&self, state: &TokenBucketState) -> Millis {
        let tokens = self
            .scale
            .rescale(i128::from(state.tokens), state.per_unit, false);
        let full_in = u64::try_from(self.scale.ms_to_gain(self.cap() - tokens)).unwrap_or(u64::MAX);
        state.updated.saturating_add(full_in)
    }

    /// (whole units spendable now, wait for one unit, tokens now).
    pub(crate) fn stat(
        &self,
        state: Option<&TokenBucketState>,
        now: Millis,
    ) -> (u64, Duration, Level) {
        let level = self.level(state, now);
        let spendable = level.tokens - self.floor();
        let wait = millis(self.scale.ms_to_gain(self.scale.scaled(1) - spendable));
        (self.scale.whole_units(spendable), wait, level)
    }

    pub(crate) fn validate(&self, name: &'static str) -> Result<(), StrategyConfigError> {
        if self.capacity == 0 {
            return Err(StrategyConfigError::new(
                name,
                "burst",
                "must be at least 1",
            ));
        }
        if self
            .scale
            .scaled(self.capacity)
            .saturating_add(self.scale.scaled(self.max_debt))
            >= EXACT_LIMIT
        {
            return Err(StrategyConfigError::new(
                name,
                "burst",
                "is too large for exact arithmetic at this rate (burst × period must stay below 2^53 scaled units)",
            ));
        }
        Ok(())
    }
}

pub(crate) fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

impl Strategy for TokenBucket {
    type State = TokenBucketState;
    const NAME: &'static str = "token-bucket";

    #[inline]
    fn apply(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Decision {
        Bucket::new(&hit.rate, self.capacity(&hit.rate), 0).apply(state, hit)
    }

    fn refund(&self, state: &mut Option<TokenBucketState>, hit: &Hit<'_>) -> Refund {
        Bucket::new(&hit.rate, self.capacity(&hit.rate), 0).refund(state, hit)
    }

    fn stat(&self, state: Option<&TokenBucketState>, hit: &Hit<'_>) -> StrategyStat {
        let bucket = Bucket::new(&hit.rate, self.capacity(&hit.rate), 0);
        let (remaining, wait, level) = bucket.stat(state, hit.now);
        let metadata = StatMetadata::TokenBucket(TokenBucketStat {
            tokens: bucket.scale.units_f64(level.tokens),
            capacity: bucket.capacity,
            refill_rate_per_ms: bucket.scale.rate_per_ms(),
            last_refill_ms: level.updated,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &TokenBucketState, rate: &Rate) -> Millis {
        Bucket::new(rate, self.capacity(rate), 0).expires_at(state)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        Bucket::new(rate, self.capacity(rate), 0).validate(Self::NAME)
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
    use crate::Outcome;
    use crate::strategy::conformance::Sim;

    #[test]
    fn refills_continuously_at_the_rate() {
        let mut sim = Sim::new(TokenBucket::new(), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(10).is_allowed());
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(100)));
        sim.at(250);
        assert!(sim.hit(2).is_allowed());
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn refills_exactly_for_rates_that_do_not_divide_the_period() {
        let mut sim = Sim::new(TokenBucket::new(), Rate::per_second(3));
        sim.at(0);
        assert!(sim.hit(3).is_allowed());
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(334)));
        sim.at(333);
        assert!(sim.hit(1).is_throttled());
        sim.at(334);
        assert!(sim.hit(1).is_allowed());
        sim.at(1_000);
        assert!(
            sim.hit(2).is_allowed(),
            "the third of a token left at 334 ms is not lost"
        );
    }

    #[test]
    fn burst_sets_the_capacity_above_the_limit() {
        let mut sim = Sim::new(TokenBucket::new().burst(15), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(15).is_allowed());
        assert!(sim.hit(1).is_throttled());
    }

    #[test]
    fn a_cost_above_capacity_is_a_permanent_verdict() {
        let mut sim = Sim::new(TokenBucket::new().burst(5), Rate::per_second(10));
        sim.at(0);
        let decision = sim.hit(6);
        assert_eq!(decision.outcome, Outcome::ExceedsCapacity { capacity: 5 });
        assert_eq!(decision.wait(), None);
        assert!(sim.hit(5).is_allowed(), "the refused hit took nothing");
    }

    #[test]
    fn expires_when_full_again() {
        let mut sim = Sim::new(TokenBucket::new(), Rate::per_second(10));
        sim.at(1_000);
        sim.hit(4);
        assert_eq!(sim.expires_at(), Some(1_400));
        let stat = sim.stat();
        assert_eq!(stat.hits_remaining, 6);
        let StatMetadata::TokenBucket(meta) = stat.metadata else {
            panic!("{stat:?}")
        };
        assert_eq!(
            (meta.tokens, meta.capacity, meta.refill_rate_per_ms),
            (6.0, 10, 0.01)
        );
    }

    #[test]
    fn rejects_a_zero_burst() {
        assert!(Strategy::validate(&TokenBucket::new().burst(0), &Rate::per_second(1)).is_err());
        assert!(Strategy::validate(&TokenBucket::new(), &Rate::per_second(1)).is_ok());
        assert!(
            Strategy::validate(&TokenBucket::new().burst(u64::MAX / 2), &Rate::per_day(1)).is_err()
        );
    }
}
