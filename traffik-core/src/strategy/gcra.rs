//! [`Gcra`]: the Generic Cell Rate Algorithm, one timestamp per key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scale::{EXACT_LIMIT, Scale};
use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// GCRA (virtual scheduling): each key stores its *theoretical arrival time* (TAT); a unit is
/// due every emission interval `T = period / limit`, and hits may run ahead of the schedule by
/// the burst tolerance `τ`.
///
/// **Guarantees**: a hit of cost `c` is conforming when `max(TAT, now) + c·T − now ≤ τ + T`
/// (cost-aware: it must fit the burst, not merely start on time), so at most `1 + τ / T` units
/// are admitted at once and exactly the rate after that. The default `τ = 0` spaces single hits
/// exactly `T` apart (`10/s`: 100 ms); since time is read in whole milliseconds, a rate above
/// 1000/s always admits its share of one millisecond at once (`5000/s`: 5 per ms). The wait of a refused hit is when it becomes conforming
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
    #[allow(clippy::cast_possible_truncation)] // const fn; tolerances past u64 ms (584 My) are moot
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
    ///
    /// Time is read in whole milliseconds, so hits within one millisecond share a timestamp;
    /// the tolerance is therefore never less than one millisecond's worth of cells minus one,
    /// or a rate above 1000/s could only admit one hit per millisecond.
    pub(crate) fn tau(&self, scale: &Scale) -> u64 {
        let configured = match self.tolerance {
            Tolerance::None => 0,
            Tolerance::Millis(ms) => ms.saturating_mul(scale.per_ms),
            Tolerance::Burst(cells) => cells.saturating_sub(1).saturating_mul(scale.per_unit),
        };
        configured.max(scale.per_ms.saturating_sub(scale.per_unit))
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
        // Both below 2^64: the product fits in an i128.
        (i128::from(s.remainder) * k).div_euclid(i128::from(s.per_ms))
            + i128::from((i128::from(s.remainder) * k) % i128::from(s.per_ms) != 0)
    };
    // Saturating: a TAT more than i128::MAX scaled units away means "far off" either way.
    (i128::from(s.tat) - i128::from(now))
        .saturating_mul(k)
        .saturating_add(remainder)
}

/// GCRA's quantities for one hit, in scaled units.
struct Schedule {
    scale: Scale,
    /// `τ + T`: how far ahead of `now` the TAT may run.
    ceiling: u64,
    /// `max(TAT − now, 0)`.
    base: u64,
}

impl Schedule {
    fn new(gcra: &Gcra, state: Option<&GcraState>, hit: &Hit<'_>) -> Self {
        let scale = Scale::of(&hit.rate);
        let ceiling = gcra.tau(&scale).saturating_add(scale.per_unit);
        let base = match state {
            // The common case: same rate as when written, TAT within u64 range of now.
            Some(s) if s.per_ms == scale.per_ms && s.tat >= hit.now => (s.tat - hit.now)
                .checked_mul(scale.per_ms)
                .and_then(|ms| ms.checked_add(s.remainder))
                .unwrap_or(u64::MAX),
            Some(s) if s.per_ms == scale.per_ms => 0,
            other => u64::try_from(relative_tat(other, &scale, hit.now).max(0)).unwrap_or(u64::MAX),
        };
        Schedule {
            scale,
            ceiling,
            base,
        }
    }

    /// Whole cells that still fit after the TAT reaches `at`.
    fn cells_left(&self, at: u64) -> u64 {
        divide(self.ceiling.saturating_sub(at), self.scale.per_unit)
    }

    /// Milliseconds until `scaled` units of schedule have passed (rounded up).
    fn ms(&self, scaled: u64) -> Duration {
        let per_ms = self.scale.per_ms;
        Duration::from_millis(if per_ms == 1 {
            scaled
        } else {
            scaled.div_ceil(per_ms)
        })
    }
}

/// `a / b`, skipping the division for the common `b == 1` (most rates reduce to one unit per
/// millisecond or one millisecond per unit).
#[inline]
fn divide(a: u64, b: u64) -> u64 {
    if b == 1 { a } else { a / b }
}

impl Strategy for Gcra {
    type State = GcraState;
    const NAME: &'static str = "gcra";

    #[inline]
    fn apply(&self, state: &mut Option<GcraState>, hit: &Hit<'_>) -> Decision {
        let limit = hit.rate.limit();
        let schedule = Schedule::new(self, state.as_ref(), hit);
        let (per_unit, per_ms) = (schedule.scale.per_unit, schedule.scale.per_ms);
        let Some(next) = hit
            .cost
            .checked_mul(per_unit)
            .filter(|need| *need <= schedule.ceiling)
            .map(|need| schedule.base.saturating_add(need))
        else {
            let capacity = schedule.ceiling / per_unit;
            return Decision::exceeds_capacity(
                limit,
                capacity,
                schedule.cells_left(schedule.base),
                schedule.ms(schedule.base),
            );
        };
        if next <= schedule.ceiling {
            let (whole_ms, remainder) = if per_ms == 1 {
                (next, 0)
            } else {
                (next / per_ms, next % per_ms)
            };
            *state = Some(GcraState {
                tat: hit.now.saturating_add(whole_ms),
                remainder,
                per_ms,
            });
            Decision::allowed(limit, schedule.cells_left(next), schedule.ms(next))
        } else {
            let wait = schedule.ms(next - schedule.ceiling);
            Decision::throttled(
                limit,
                schedule.cells_left(schedule.base),
                wait,
                schedule.ms(schedule.base),
            )
        }
    }

    /// Moves the theoretical arrival time back by the charge (`cost × T`); a TAT that falls to
    /// the charge's time or before means an idle schedule. Nothing once a later hit may have
    /// found the schedule idle.
    fn refund(&self, state: &mut Option<GcraState>, hit: &Hit<'_>) -> Refund {
        let scale = Scale::of(&hit.rate);
        let Some(stored) = state.as_ref() else {
            return Refund::Lapsed;
        };
        let ahead = relative_tat(Some(stored), &scale, hit.now);
        // The TAT is at most `τ + T` ahead of the last admitted hit: a TAT more than twice that
        // ahead of the charge means a hit a whole `τ + T` after it, which may have found the
        // schedule idle (the charge forgotten). Such a refund returns nothing.
        let ceiling = i128::from(self.tau(&scale)) + i128::from(scale.per_unit);
        if ahead <= 0 || ahead >= ceiling.saturating_mul(2) {
            return Refund::Lapsed;
        }
        let left = ahead.saturating_sub(scale.scaled(hit.cost));
        *state = if left <= 0 {
            None
        } else {
            let per_ms = i128::from(scale.per_ms);
            Some(GcraState {
                tat: hit
                    .now
                    .saturating_add(u64::try_from(left / per_ms).unwrap_or(u64::MAX)),
                remainder: u64::try_from(left % per_ms).unwrap_or(0),
                per_ms: scale.per_ms,
            })
        };
        Refund::Returned
    }

    #[allow(clippy::cast_precision_loss)] // reporting only: approximate above 2^53 is fine
    fn stat(&self, state: Option<&GcraState>, hit: &Hit<'_>) -> StrategyStat {
        let scale = Scale::of(&hit.rate);
        let interval = i128::from(scale.per_unit);
        let tau = i128::from(self.tau(&scale));
        let ceiling = tau + interval;
        let base = relative_tat(state, &scale, hit.now).max(0);
        let remaining = u64::try_from((ceiling - base).max(0) / interval).unwrap_or(u64::MAX);
        let wait = millis(scale.ms_to_gain(base.saturating_add(interval) - ceiling));
        let k = scale.per_ms as f64;
        let metadata = StatMetadata::Gcra(GcraStat {
            tat_ms: hit.now as f64 + base as f64 / k,
            emission_interval_ms: interval as f64 / k,
            burst_tolerance_ms: tau as f64 / k,
            conformant: base.saturating_add(interval) <= ceiling,
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
        if i128::from(self.tau(&scale)) + i128::from(scale.per_unit) >= EXACT_LIMIT {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "burst_tolerance",
                "is too large for exact arithmetic at this rate",
            ));
        }
        Ok(())
    }

    fn pack(state: &GcraState) -> Option<[u64; 3]> {
        Some([state.tat, state.remainder, state.per_ms])
    }

    fn unpack([tat, remainder, per_ms]: [u64; 3]) -> Option<GcraState> {
        Some(GcraState {
            tat,
            remainder,
            per_ms,
        })
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
    #[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
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
    fn rates_above_one_per_millisecond_admit_their_share_of_each_millisecond() {
        let mut sim = Sim::new(Gcra::new(), Rate::per_second(5_000));
        for now in [0, 1, 2] {
            sim.at(now);
            for _ in 0..5 {
                assert!(sim.hit(1).is_allowed(), "at {now} ms");
            }
            assert!(
                sim.hit(1).is_throttled(),
                "the sixth in one millisecond at {now} ms"
            );
        }
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
