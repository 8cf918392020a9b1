//! [`LeakyBucket`]: a meter that fills with each hit's cost and drains at the rate.

use serde::{Deserialize, Serialize};

use super::scale::{EXACT_LIMIT, Scale};
use super::token_bucket::clamp_i64;
use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// The leaky bucket as a meter: each admitted hit pours its cost in, the bucket drains
/// continuously at `limit / period`, and a hit that would overflow `capacity` is refused.
///
/// **Guarantees**: the output is smooth at the rate: once the bucket is full, hits are admitted
/// exactly as fast as it drains. It admits an instant burst of `capacity` units (default: the
/// rate's limit) into an empty bucket; set [`capacity`](Self::capacity) to 1 for perfectly
/// spaced single hits. Over any interval `t`, at most `capacity + limit × t / period` units.
/// A cost above `capacity` is a permanent [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity).
/// Refused hits pour nothing. (As a meter it admits exactly what a token bucket of the same
/// capacity admits; it reports level instead of tokens.)
///
/// **Storage**: `{level, per_unit, updated}` in exact scaled units.
///
/// ```
/// use traffik_core::strategy::{Hit, LeakyBucket, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (bucket, context) = (LeakyBucket::new().capacity(1), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(4); // one hit every 250 ms, no burst
/// assert!(bucket.apply(&mut state, &Hit::new(0, rate, 1, &context)).is_allowed());
/// let next = bucket.apply(&mut state, &Hit::new(100, rate, 1, &context));
/// assert_eq!(next.wait(), Some(std::time::Duration::from_millis(150)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeakyBucket {
    capacity: Option<u64>,
}

impl LeakyBucket {
    /// A bucket as large as the rate's limit.
    #[must_use]
    pub const fn new() -> Self {
        LeakyBucket { capacity: None }
    }

    /// Sets the bucket's size: the largest instant burst.
    #[must_use]
    pub const fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    pub(crate) fn size(&self, rate: &Rate) -> u64 {
        self.capacity.unwrap_or(rate.limit())
    }
}

/// The state of a [`LeakyBucket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakyBucketState {
    /// The level in scaled units.
    pub level: i64,
    /// Scaled units per whole unit when written.
    pub per_unit: u64,
    /// When the bucket last leaked.
    pub updated: Millis,
}

/// [`LeakyBucket`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyBucketStat {
    /// The level now (fractional units).
    pub bucket_level: f64,
    /// The bucket's size.
    pub bucket_capacity: u64,
    /// Units drained per millisecond.
    pub leak_rate_per_ms: f64,
    /// When the bucket last leaked.
    pub last_leak_ms: Millis,
}

struct Meter {
    scale: Scale,
    capacity: u64,
}

impl Meter {
    fn new(strategy: &LeakyBucket, rate: &Rate) -> Self {
        Meter {
            scale: Scale::of(rate),
            capacity: strategy.size(rate),
        }
    }

    /// The level at `now` (time going backwards drains nothing) and the effective `now`.
    fn level(&self, state: Option<&LeakyBucketState>, now: Millis) -> (i128, Millis) {
        match state {
            None => (0, now),
            Some(s) => {
                let now = now.max(s.updated);
                let stored = self.scale.rescale(i128::from(s.level), s.per_unit, true);
                ((stored - self.scale.gained(now - s.updated)).max(0), now)
            }
        }
    }

    fn drain_ms(&self, level: i128) -> u128 {
        self.scale.ms_to_gain(level)
    }
}

impl Strategy for LeakyBucket {
    type State = LeakyBucketState;
    const NAME: &'static str = "leaky-bucket";

    fn apply(&self, state: &mut Option<LeakyBucketState>, hit: &Hit<'_>) -> Decision {
        let meter = Meter::new(self, &hit.rate);
        let limit = hit.rate.limit();
        let (level, now) = meter.level(state.as_ref(), hit.now);
        let room = meter.scale.scaled(meter.capacity) - level;
        let remaining = meter.scale.whole_units(room);
        if hit.cost > meter.capacity {
            return Decision::exceeds_capacity(
                limit,
                meter.capacity,
                remaining,
                millis(meter.drain_ms(level)),
            );
        }
        let pour = meter.scale.scaled(hit.cost);
        if pour <= room {
            let level = level + pour;
            *state = Some(LeakyBucketState {
                level: clamp_i64(level),
                per_unit: meter.scale.per_unit,
                updated: now,
            });
            Decision::allowed(
                limit,
                meter.scale.whole_units(room - pour),
                millis(meter.drain_ms(level)),
            )
        } else {
            let wait = millis(meter.scale.ms_to_gain(pour - room));
            Decision::throttled(limit, remaining, wait, millis(meter.drain_ms(level)))
        }
    }

    /// Takes the charge back out of the bucket (never below empty); nothing once the bucket was
    /// last poured into a whole drain time after the charge.
    fn refund(&self, state: &mut Option<LeakyBucketState>, hit: &Hit<'_>) -> Refund {
        if state.is_none() {
            return Refund::Lapsed;
        }
        let meter = Meter::new(self, &hit.rate);
        let (level, now) = meter.level(state.as_ref(), hit.now);
        // A bucket last poured into a whole drain time after the charge has forgotten it.
        let drain = meter.drain_ms(meter.scale.scaled(meter.capacity));
        if level == 0 || u128::from(now) >= u128::from(hit.now) + drain {
            return Refund::Lapsed;
        }
        let level = (level - meter.scale.scaled(hit.cost)).max(0);
        *state = (level > 0).then(|| LeakyBucketState {
            level: clamp_i64(level),
            per_unit: meter.scale.per_unit,
            updated: now,
        });
        Refund::Returned
    }

    fn stat(&self, state: Option<&LeakyBucketState>, hit: &Hit<'_>) -> StrategyStat {
        let meter = Meter::new(self, &hit.rate);
        let (level, _) = meter.level(state, hit.now);
        let room = meter.scale.scaled(meter.capacity) - level;
        let wait = millis(meter.scale.ms_to_gain(meter.scale.scaled(1) - room));
        let metadata = StatMetadata::LeakyBucket(LeakyBucketStat {
            bucket_level: meter.scale.units_f64(level),
            bucket_capacity: meter.capacity,
            leak_rate_per_ms: meter.scale.rate_per_ms(),
            last_leak_ms: state.map_or(hit.now, |s| s.updated),
        });
        StrategyStat::new(hit.rate, meter.scale.whole_units(room), wait, metadata)
    }

    fn expires_at(&self, state: &LeakyBucketState, rate: &Rate) -> Millis {
        let meter = Meter::new(self, rate);
        let level = meter
            .scale
            .rescale(i128::from(state.level), state.per_unit, true);
        state
            .updated
            .saturating_add(u64::try_from(meter.drain_ms(level)).unwrap_or(u64::MAX))
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let meter = Meter::new(self, rate);
        if meter.capacity == 0 {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "capacity",
                "must be at least 1",
            ));
        }
        if meter.scale.scaled(meter.capacity) >= EXACT_LIMIT {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "capacity",
                "is too large for exact arithmetic at this rate",
            ));
        }
        Ok(())
    }

    fn pack(state: &LeakyBucketState) -> Option<[u64; 3]> {
        Some([state.level.cast_unsigned(), state.per_unit, state.updated])
    }

    fn unpack([level, per_unit, updated]: [u64; 3]) -> Option<LeakyBucketState> {
        Some(LeakyBucketState {
            level: level.cast_signed(),
            per_unit,
            updated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;
    use std::time::Duration;

    #[test]
    fn admits_a_burst_of_capacity_then_drains_smoothly() {
        let mut sim = Sim::new(LeakyBucket::new(), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(10).is_allowed());
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(100)));
        for step in 1..=5 {
            sim.at(step * 100);
            assert!(sim.hit(1).is_allowed(), "one hit per 100 ms at step {step}");
            assert!(sim.hit(1).is_throttled());
        }
    }

    #[test]
    fn capacity_one_is_perfectly_smooth() {
        let mut sim = Sim::new(LeakyBucket::new().capacity(1), Rate::per_second(4));
        sim.at(0);
        assert!(sim.hit(1).is_allowed());
        assert!(sim.hit(1).is_throttled());
        sim.at(250);
        assert!(sim.hit(1).is_allowed());
        assert_eq!(sim.hit(2).wait(), None, "cost 2 never fits a bucket of 1");
    }

    #[test]
    fn reports_its_level() {
        let mut sim = Sim::new(LeakyBucket::new(), Rate::per_second(10));
        sim.at(0);
        sim.hit(4);
        sim.at(100);
        let stat = sim.stat();
        assert_eq!(stat.hits_remaining, 7);
        let StatMetadata::LeakyBucket(meta) = stat.metadata else {
            panic!()
        };
        assert_eq!((meta.bucket_level, meta.bucket_capacity), (3.0, 10));
        assert_eq!(sim.expires_at(), Some(400));
    }
}
