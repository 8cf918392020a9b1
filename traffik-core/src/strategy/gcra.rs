//! [`Gcra`]: the Generic Cell Rate Algorithm, one timestamp per key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scale::{EXACT_LIMIT, Scale};
use super::{Hit, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// GCRA (virtual scheduling): each key stores its *theoretical arrival time* (TAT); a unit is
/// due every emission interval `T = period / limit`, and hits may run ahead of the schedule by
/// the burst tolerance `τ`.
///
/// **Guarantees**: a hit of cost `c` is conforming when `max(TAT, now) + c·T − now ≤ τ + T`
/// (cost-aware: it must fit the burst, not merely start on time), so at most `1 + τ / T` units
/// are admitted at once and exactly the rate after that. The default `τ = 0` spaces single hits
/// exactly `T` apart (`10/s`: 100 ms). The wait of a refused hit is when it becomes conforming
/// (`max(TAT, now) + c·T − τ − T − now`). A cost above `1 + τ / T` is a permanent
/// [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity). Refused hits do not move the TAT.
///
/// **Storage**: `{tat, remainder, per_ms}`: the TAT in whole ms plus an exact fraction
/// `remainder / per_ms` of a millisecond, so rates like `3/s` (T = 333⅓ ms) never drift.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::strategy::{Gcra, Hit, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (gcra, context) = (Gcra::new(), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(10);
/// assert!(gcra.apply(&mut state, &Hit::new(0, rate, 1, &context)).is_allowed());
/// let second = gcra.apply(&mut state, &Hit::new(0, rate, 1, &context));
/// assert_eq!(second.wait(), Some(Duration::from_millis(100)));
///
/// // A tolerance of 4 emission intervals admits a burst of 5.
/// let bursty = Gcra::new().burst(5);
/// let mut state = None;
/// assert!(bursty.apply(&mut state, &Hit::new(0, rate, 5, &context)).is_allowed());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gcra {
    tolerance: Tolerance,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Tolerance {
    #[default]
    None,
    Millis(u64),
    Burst(u64),
}

impl Gcra {
    /// GCRA with no burst tolerance: single hits exactly one emission interval apart.
    #[must_use]
    pub const fn new() -> Self {
        Gcra {
            tolerance: Tolerance::None,
        }
    }

    /// Lets hits run ahead of the schedule by `tolerance` (whole milliseconds).
    #[must_use]
    pub const fn burst_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Tolerance::Millis(tolerance.as_millis() as u64);
        self
    }

    /// Admits bursts of `cells` units at once (tolerance `(cells − 1) · T`).
    #[must_use]
    pub const fn burst(mut self, cells: u64) -> Self {
        self.tolerance = Tolerance::Burst(cells);
        self
    }

    /// The tolerance in scaled units for `scale`.
    fn tau(&self, scale: &Scale) -> i128 {
        match self.tolerance {
            Tolerance::None => 0,
            Tolerance::Millis(ms) => scale.gained(ms),
            Tolerance::Burst(cells) => scale.scaled(cells.saturating_sub(1)),
        }
    }
}

/// The state of [`Gcra`]: the theoretical arrival time `tat + remainder / per_ms` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcraState {
    /// Whole milliseconds of the TAT.
    pub tat: Millis,
    /// The fraction of a millisecond, in `1 / per_ms` steps.
    pub remainder: u64,
    /// The denominator of the fraction (the rate's scaled units per ms when written).
    pub per_ms: u64,
}

/// [`Gcra`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcraStat {
    /// The theoretical arrival time (ms, fractional).
    pub tat_ms: f64,
    /// The emission interval `T` (ms, fractional).
    pub emission_interval_ms: f64,
    /// The burst tolerance `τ` (ms, fractional).
    pub burst_tolerance_ms: f64,
    /// Whether a hit of cost 1 would conform now.
    pub conformant: bool,
}

/// The TAT relative to `now` in scaled units (negative when in the past).
fn relative_tat(state: Option<&GcraState>, scale: &Scale, now: Millis) -> i128 {
    let Some(s) = state else { return 0 };
    let k = i128::from(scale.per_ms);
    let remainder = if s.per_ms == scale.per_ms || s.per_ms == 0 {
        i128::from(s.remainder)
    } else {
        // Re-express the fraction in the new denominator, rounding the TAT later (never earlier).
        (i128::from(s.remainder) * k).div_euclid(i128::from(s.per_ms))
            + i128::from((i128::from(s.remainder) * k) % i128::from(s.per_ms) != 0)
    };
    (i128::from(s.tat) - i128::from(now)) * k + remainder
}

impl Strategy for Gcra {
    type State = GcraState;
    const NAME: &'static str = "gcra";

    fn apply(&self, state: &mut Option<GcraState>, hit: &Hit<'_>) -> Decision {
        let scale = Scale::of(&hit.rate);
        let (limit, interval) = (hit.rate.limit(), i128::from(scale.per_unit));
        let ceiling = self.tau(&scale) + interval;
        let base = relative_tat(state.as_ref(), &scale, hit.now).max(0);
        let remaining = u64::try_from((ceiling - base).max(0) / interval).unwrap_or(u64::MAX);
        let capacity = u64::try_from(ceiling / interval).unwrap_or(u64::MAX);
        if hit.cost > capacity {
            return Decision::exceeds_capacity(
                limit,
                capacity,
                remaining,
                millis(scale.ms_to_gain(base)),
            );
        }
        let next = base + scale.scaled(hit.cost);
        if next <= ceiling {
            let k = i128::from(scale.per_ms);
            *state = Some(GcraState {
                tat: hit
                    .now
                    .saturating_add(u64::try_from(next / k).unwrap_or(u64::MAX)),
                remainder: (next % k) as u64,
                per_ms: scale.per_ms,
            });
            let remaining = u64::try_from((ceiling - next) / interval).unwrap_or(u64::MAX);
            Decision::allowed(limit, remaining, millis(scale.ms_to_gain(next)))
        } else {
            let wait = millis(scale.ms_to_gain(next - ceiling));
            Decision::throttled(limit, remaining, wait, millis(scale.ms_to_gain(base)))
        }
    }

    fn stat(&self, state: Option<&GcraState>, hit: &Hit<'_>) -> StrategyStat {
        let scale = Scale::of(&hit.rate);
        let interval = i128::from(scale.per_unit);
        let tau = self.tau(&scale);
        let ceiling = tau + interval;
        let base = relative_tat(state, &scale, hit.now).max(0);
        let remaining = u64::try_from((ceiling - base).max(0) / interval).unwrap_or(u64::MAX);
        let wait = millis(scale.ms_to_gain(base + interval - ceiling));
        let k = scale.per_ms as f64;
        let metadata = StatMetadata::Gcra(GcraStat {
            tat_ms: hit.now as f64 + base as f64 / k,
            emission_interval_ms: interval as f64 / k,
            burst_tolerance_ms: tau as f64 / k,
            conformant: base + interval <= ceiling,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &GcraState, _rate: &Rate) -> Millis {
        state.tat.saturating_add(u64::from(state.remainder > 0))
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let scale = Scale::of(rate);
        if matches!(self.tolerance, Tolerance::Burst(0)) {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "burst",
                "must be at least 1",
            ));
        }
        if self.tau(&scale) + i128::from(scale.per_unit) >= EXACT_LIMIT {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "burst_tolerance",
                "is too large for exact arithmetic at this rate",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use crate::strategy::conformance::Sim;

    #[test]
    fn back_to_back_hits_wait_one_emission_interval() {
        let mut sim = Sim::new(Gcra::new(), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(1).is_allowed());
        let wait = sim.hit(1).wait().unwrap().as_millis();
        assert!((90..=110).contains(&wait), "second wait {wait} ms");
        sim.at(100);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn cost_must_fit_the_burst_not_just_start_on_time() {
        let mut sim = Sim::new(Gcra::new().burst(5), Rate::per_second(100));
        sim.at(0);
        assert!(sim.hit(5).is_allowed());
        let refused = sim.hit(1);
        assert_eq!(refused.wait(), Some(Duration::from_millis(10)));
        assert_eq!(sim.hit(6).outcome, Outcome::ExceedsCapacity { capacity: 5 });
        sim.at(40);
        assert!(sim.hit(4).is_allowed());
        assert!(sim.hit(1).is_throttled());
    }

    #[test]
    fn the_wait_accounts_for_the_tolerance() {
        let mut sim = Sim::new(
            Gcra::new().burst_tolerance(Duration::from_millis(500)),
            Rate::per_second(10),
        );
        sim.at(0);
        for _ in 0..6 {
            assert!(sim.hit(1).is_allowed());
        }
        // TAT is 600 ms; conforming again once TAT + T − τ − T ≤ now, i.e. at 100 ms.
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn fractional_intervals_do_not_drift() {
        // T = 333⅓ ms: three cells must end exactly at 1000 ms, not 999 (rounded down) or 1002.
        let mut sim = Sim::new(Gcra::new().burst(3), Rate::per_second(3));
        sim.at(0);
        for _ in 0..3 {
            assert!(sim.hit(1).is_allowed());
        }
        assert_eq!(sim.expires_at(), Some(1_000));
        let StatMetadata::Gcra(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(meta.tat_ms, 1_000.0);
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(334)));
        sim.at(334);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn stat_reports_the_schedule() {
        let mut sim = Sim::new(Gcra::new(), Rate::per_second(10));
        sim.at(1_000);
        sim.hit(1);
        let stat = sim.stat();
        let StatMetadata::Gcra(meta) = stat.metadata else {
            panic!()
        };
        assert_eq!(
            (meta.tat_ms, meta.emission_interval_ms, meta.conformant),
            (1_100.0, 100.0, false)
        );
        assert_eq!(stat.wait, Duration::from_millis(100));
        assert_eq!(sim.expires_at(), Some(1_100));
    }
}
