//! [`CostBasedTokenBucket`]: a token bucket whose refill slows for clients whose hits cost
//! more on average (the reference's `CostBasedTokenBucket`, with an exact, bounded state).

use serde::{Deserialize, Serialize};

use super::scale::Scale;
use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Parts per million: the refill factor's fixed-point unit, and the tokens' extra precision.
const PPM: u64 = 1_000_000;
/// Thousandths of a unit: the average cost's fixed-point unit.
const MILLI: u64 = 1_000;
/// The largest token count (in millionths of scaled units) kept exact on every backend.
pub(crate) const FINE_LIMIT: u128 = 1 << 52;

/// A token bucket of `burst` tokens (default: the rate's limit) refilled at the rate times a
/// **refill factor** that falls as the client's hits cost more on average:
/// `factor = max(min_refill, 1 / average cost)`. A client of cost-1 hits refills at the full
/// rate; one whose hits average 4 units refills at a quarter of it (never below `min_refill`,
/// default 0.5). Expensive clients recover slower than cheap ones at the same rate.
///
/// - The average is an exponential moving average of the costs of admitted hits, weighted like
///   an average over the last `cost_window` hits (default 100): each admitted hit moves it
///   `2 / (cost_window + 1)` of the way to its cost. Refused hits do not count.
/// - A bucket that refilled completely forgets the average: an idle client starts again at
///   the full rate, and a full bucket means the same as no state (the key expires then).
/// - Tokens are kept in millionths of the strategy's scaled units, so refills are exact at any
///   factor: waits are truthful and tight, and a refund right after its charge restores the
///   client exactly (the average too).
/// - A cost above `burst` can never fit ([`Outcome::ExceedsCapacity`](crate::Outcome::ExceedsCapacity)).
///
/// Differences from the reference, which keeps a list of the last `cost_window` costs (as
/// floats) in a second key: one key and constant state, an exact integer refill, and the
/// parameters checked when the throttle is built.
///
/// **Storage**: `{tokens, per_unit, updated, average, previous}`.
///
/// ```
/// use traffik_core::strategy::{CostBasedTokenBucket, Hit, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let bucket = CostBasedTokenBucket::new().cost_window(1); // the last hit's cost decides
/// let (rate, context) = (Rate::per_second(10), Context::new());
/// let mut state = None;
/// bucket.apply(&mut state, &Hit::new(0, rate, 4, &context)); // 6 left, average 4
/// // Refilling 4 tokens takes 400 ms at the full rate; at the factor max(0.5, 1/4) = 0.5,
/// // 800 ms.
/// let refused = bucket.apply(&mut state, &Hit::new(0, rate, 10, &context));
/// assert_eq!(refused.wait(), Some(std::time::Duration::from_millis(800)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostBasedTokenBucket {
    burst: Option<u64>,
    cost_window: u64,
    min_refill: f64,
}

impl Default for CostBasedTokenBucket {
    fn default() -> Self {
        CostBasedTokenBucket::new()
    }
}

impl CostBasedTokenBucket {
    /// A bucket of the rate's limit, an average over about 100 hits, refilling at least at half
    /// the rate (the reference's defaults).
    #[must_use]
    pub const fn new() -> Self {
        CostBasedTokenBucket {
            burst: None,
            cost_window: 100,
            min_refill: 0.5,
        }
    }

    /// The bucket's capacity (the largest burst, in tokens).
    #[must_use]
    pub const fn burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// How many hits the average cost spans (at least 1; at most 1,000).
    #[must_use]
    pub const fn cost_window(mut self, hits: u64) -> Self {
        self.cost_window = hits;
        self
    }

    /// The lowest refill factor, above 0 and at most 1.
    #[must_use]
    pub const fn min_refill(mut self, factor: f64) -> Self {
        self.min_refill = factor;
        self
    }

    /// The capacity for `rate`.
    #[must_use]
    pub fn capacity(&self, rate: &Rate) -> u64 {
        self.burst.unwrap_or(rate.limit())
    }

    /// The lowest refill factor in parts per million (at least 1).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // also read by the Redis mapping
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // validated to (0, 1]
    pub(crate) fn min_refill_ppm(&self) -> u64 {
        ((self.min_refill.clamp(0.0, 1.0) * PPM as f64).round() as u64).max(1)
    }

    /// How many hits the average spans (at least 1).
    pub(crate) fn window(&self) -> u64 {
        self.cost_window.max(1)
    }

    /// The refill factor (ppm) at an average cost of `average` thousandths.
    fn factor(&self, average: u64) -> u64 {
        let inverse = (PPM * MILLI).checked_div(average).unwrap_or(PPM);
        inverse.clamp(self.min_refill_ppm(), PPM)
    }

    /// The average after an admitted hit of `cost`.
    fn averaged(&self, average: u64, cost: u64) -> u64 {
        let n = u128::from(self.window());
        let next =
            (u128::from(average) * (n - 1) + 2 * u128::from(cost) * u128::from(MILLI)) / (n + 1);
        u64::try_from(next).unwrap_or(u64::MAX)
    }

    /// The bucket as of `now`: refilled from `state` (full and forgetting its average when it
    /// refilled completely). Time going backwards refills nothing.
    fn level(&self, state: Option<&CostBucketState>, now: Millis, rate: &Rate) -> Level {
        let scale = Scale::of(rate);
        let cap = fine(&scale, self.capacity(rate));
        let full = Level {
            tokens: cap,
            cap,
            at: now,
            average: MILLI,
            previous: MILLI,
            scale,
        };
        let Some(s) = state else { return full };
        let at = now.max(s.updated);
        let stored = rescale(s.tokens, s.per_unit, scale.per_unit).min(cap);
        let per_ms = u128::from(scale.per_ms) * u128::from(self.factor(s.average));
        let elapsed = u128::from(at - s.updated);
        if stored + elapsed * per_ms >= cap {
            return Level { at, ..full };
        }
        Level {
            tokens: stored + elapsed * per_ms,
            cap,
            at,
            average: s.average,
            previous: s.previous,
            scale,
        }
    }

    /// Milliseconds until `level` holds `target` fine tokens (its refill factor fixed).
    fn ms_until(&self, level: &Level, target: u128) -> u128 {
        let per_ms = u128::from(level.scale.per_ms) * u128::from(self.factor(level.average));
        target.saturating_sub(level.tokens).div_ceil(per_ms.max(1))
    }
}

/// The bucket at one moment, in fine units (millionths of scaled units).
#[derive(Clone, Copy)]
struct Level {
    tokens: u128,
    cap: u128,
    at: Millis,
    average: u64,
    previous: u64,
    scale: Scale,
}

impl Level {
    fn whole_units(&self) -> u64 {
        let per_unit = u128::from(self.scale.per_unit) * u128::from(PPM);
        u64::try_from(self.tokens / per_unit).unwrap_or(u64::MAX)
    }

    fn state(&self) -> CostBucketState {
        CostBucketState {
            tokens: u64::try_from(self.tokens).unwrap_or(u64::MAX),
            per_unit: self.scale.per_unit,
            updated: self.at,
            average: self.average,
            previous: self.previous,
        }
    }
}

fn fine(scale: &Scale, units: u64) -> u128 {
    (u128::from(units) * u128::from(scale.per_unit)).saturating_mul(u128::from(PPM))
}

/// Fine tokens written at `from` scaled units per token, in `per_unit` (rounded down).
fn rescale(tokens: u64, from: u64, per_unit: u64) -> u128 {
    if from == per_unit || from == 0 {
        u128::from(tokens)
    } else {
        u128::from(tokens) * u128::from(per_unit) / u128::from(from)
    }
}

/// [`CostBasedTokenBucket`]'s stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostBucketState {
    /// Tokens, in millionths of scaled units.
    pub tokens: u64,
    /// Scaled units per token when written.
    pub per_unit: u64,
    /// When the bucket was last refilled.
    pub updated: Millis,
    /// The average cost of admitted hits, in thousandths of a unit.
    pub average: u64,
    /// The average before the last admitted hit (a refund right after it restores this).
    pub previous: u64,
}

/// [`CostBasedTokenBucket`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostBasedTokenBucketStat {
    /// Tokens available now (fractional).
    pub tokens: f64,
    /// The bucket's capacity.
    pub capacity: u64,
    /// The average cost of admitted hits.
    pub average_cost: f64,
    /// The refill factor in force (1 at the full rate).
    pub refill_factor: f64,
}

impl Strategy for CostBasedTokenBucket {
    type State = CostBucketState;
    const NAME: &'static str = "cost-bucket";

    fn apply(&self, state: &mut Option<CostBucketState>, hit: &Hit<'_>) -> Decision {
        let limit = hit.rate.limit();
        let capacity = self.capacity(&hit.rate);
        let mut level = self.level(state.as_ref(), hit.now, &hit.rate);
        let remaining = level.whole_units();
        let reset = |level: &Level| millis(self.ms_until(level, level.cap));
        if hit.cost > capacity {
            return Decision::exceeds_capacity(limit, capacity, remaining, reset(&level));
        }
        let need = fine(&level.scale, hit.cost);
        if need > level.tokens {
            let wait = millis(self.ms_until(&level, need));
            return Decision::throttled(limit, remaining, wait, reset(&level));
        }
        level.tokens -= need;
        level.previous = level.average;
        level.average = self.averaged(level.average, hit.cost);
        *state = Some(level.state());
        Decision::allowed(limit, level.whole_units(), reset(&level))
    }

    fn refund(&self, state: &mut Option<CostBucketState>, hit: &Hit<'_>) -> Refund {
        if state.is_none() {
            return Refund::Lapsed;
        }
        let updated = state.as_ref().map_or(0, |s| s.updated);
        let mut level = self.level(state.as_ref(), hit.now, &hit.rate);
        // A bucket last refilled a whole refill time after the charge has forgotten it (the
        // refund never returns units the charge may no longer hold).
        let empty = Level { tokens: 0, ..level };
        let refill = u64::try_from(self.ms_until(&empty, level.cap)).unwrap_or(u64::MAX);
        if level.tokens >= level.cap || updated >= hit.now.saturating_add(refill) {
            return Refund::Lapsed;
        }
        level.tokens = (level.tokens + fine(&level.scale, hit.cost)).min(level.cap);
        if level.average == self.averaged(level.previous, hit.cost) {
            level.average = level.previous;
        }
        *state = (level.tokens < level.cap).then(|| level.state());
        Refund::Returned
    }

    #[allow(clippy::cast_precision_loss)] // reporting only
    fn stat(&self, state: Option<&CostBucketState>, hit: &Hit<'_>) -> StrategyStat {
        let level = self.level(state, hit.now, &hit.rate);
        let one = fine(&level.scale, 1);
        let wait = millis(self.ms_until(&level, one));
        let per_unit = (u128::from(level.scale.per_unit) * u128::from(PPM)) as f64;
        let metadata = StatMetadata::CostBasedTokenBucket(CostBasedTokenBucketStat {
            tokens: level.tokens as f64 / per_unit,
            capacity: self.capacity(&hit.rate),
            average_cost: level.average as f64 / MILLI as f64,
            refill_factor: self.factor(level.average) as f64 / PPM as f64,
        });
        StrategyStat::new(hit.rate, level.whole_units(), wait, metadata)
    }

    fn expires_at(&self, state: &CostBucketState, rate: &Rate) -> Millis {
        let level = self.level(Some(state), state.updated, rate);
        let full_in = u64::try_from(self.ms_until(&level, level.cap)).unwrap_or(u64::MAX);
        state.updated.saturating_add(full_in)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let error = |parameter, reason: String| {
            Err(StrategyConfigError::new(Self::NAME, parameter, reason))
        };
        if !(self.min_refill > 0.0 && self.min_refill <= 1.0) {
            return error(
                "min_refill",
                format!("{} must be above 0 and at most 1", self.min_refill),
            );
        }
        if !(1..=1_000).contains(&self.cost_window) {
            return error(
                "cost_window",
                format!("{} must be from 1 to 1,000 hits", self.cost_window),
            );
        }
        let capacity = self.capacity(rate);
        if capacity == 0 {
            return error("burst", "must be at least 1".to_owned());
        }
        if !rate.is_unlimited() && fine(&Scale::of(rate), capacity) >= FINE_LIMIT {
            return error(
                "burst",
                "is too large for exact arithmetic at this rate (burst × period × 10^6 must stay below 2^52)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Context;

    fn hit(
        bucket: &CostBasedTokenBucket,
        state: &mut Option<CostBucketState>,
        now: Millis,
        cost: u64,
    ) -> Decision {
        bucket.apply(
            state,
            &Hit::new(now, Rate::per_second(10), cost, &Context::new()),
        )
    }

    #[test]
    fn cheap_hits_refill_at_the_rate_and_expensive_ones_slower_down_to_the_floor() {
        let bucket = CostBasedTokenBucket::new().cost_window(1).min_refill(0.25);
        // Cost-1 hits: 100 ms per token, as a plain token bucket.
        let mut cheap = None;
        assert!(hit(&bucket, &mut cheap, 0, 10).is_allowed());
        let mut cheap = None;
        for _ in 0..10 {
            hit(&bucket, &mut cheap, 0, 1);
        }
        assert_eq!(
            hit(&bucket, &mut cheap, 0, 1).wait(),
            Some(Duration::from_millis(100))
        );
        // Average 2: half the rate, 200 ms per token.
        let mut two = None;
        for _ in 0..5 {
            hit(&bucket, &mut two, 0, 2);
        }
        assert_eq!(
            hit(&bucket, &mut two, 0, 1).wait(),
            Some(Duration::from_millis(200))
        );
        // Average 10: the floor, a quarter of the rate.
        let mut ten = None;
        hit(&bucket, &mut ten, 0, 10);
        assert_eq!(
            hit(&bucket, &mut ten, 0, 1).wait(),
            Some(Duration::from_millis(400))
        );
    }

    #[test]
    fn the_average_moves_two_over_window_plus_one_of_the_way_and_a_full_bucket_forgets_it() {
        let bucket = CostBasedTokenBucket::new().cost_window(3).min_refill(0.1);
        let mut state = None;
        hit(&bucket, &mut state, 0, 5);
        // 1000 + (5000 - 1000) × 2 / 4 = 3000 thousandths.
        assert_eq!(state.map(|s| s.average), Some(3_000));
        // At factor 333,333 ppm, 5 tokens take 1,500.0015 ms: full at 1,501 ms, and the
        // average is forgotten.
        let stat = bucket.stat(
            state.as_ref(),
            &Hit::new(1_499, Rate::per_second(10), 1, &Context::new()),
        );
        assert_eq!(stat.hits_remaining, 9);
        assert_eq!(
            bucket.expires_at(&state.unwrap(), &Rate::per_second(10)),
            1_501
        );
        hit(&bucket, &mut state, 1_501, 1);
        assert_eq!(
            state.map(|s| s.average),
            Some(1_000),
            "(1000 × 2 + 2000) / 4"
        );
    }

    #[test]
    fn bad_parameters_are_reported_when_the_throttle_is_built() {
        let rate = Rate::per_second(10);
        for (bucket, parameter) in [
            (CostBasedTokenBucket::new().min_refill(0.0), "min_refill"),
            (CostBasedTokenBucket::new().min_refill(1.5), "min_refill"),
            (
                CostBasedTokenBucket::new().min_refill(f64::NAN),
                "min_refill",
            ),
            (CostBasedTokenBucket::new().cost_window(0), "cost_window"),
            (
                CostBasedTokenBucket::new().cost_window(1_001),
                "cost_window",
            ),
            (CostBasedTokenBucket::new().burst(0), "burst"),
            (CostBasedTokenBucket::new().burst(1 << 40), "burst"),
        ] {
            assert_eq!(bucket.validate(&rate).unwrap_err().parameter, parameter);
        }
        assert!(CostBasedTokenBucket::new().validate(&rate).is_ok());
    }
}
