//! [`SlidingWindowCounter`]: the current window's count plus a weighted share of the previous.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Hit, Strategy, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Approximates a sliding window with two fixed windows: the estimate at offset `t` into the
/// current window is `previous × (period − t) / period + current`.
///
/// **Guarantees**: a hit is admitted when the estimate plus its cost is at most `limit`; the
/// estimate is exact when traffic was uniform over the previous window, and smooths away the
/// fixed window's 2× boundary burst. The wait of a refused hit is exact for the estimate:
/// `excess × period / previous` while the previous window's weight is still draining, or into
/// the next window once it must be. A cost above `limit` is a permanent
/// [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity). Refused hits do not count.
///
/// **Storage**: `{window, current, previous}` in one key (integer arithmetic in count × ms).
///
/// ```
/// use traffik_core::strategy::{Hit, SlidingWindowCounter, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (strategy, context) = (SlidingWindowCounter::new(), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(10);
/// for _ in 0..10 { strategy.apply(&mut state, &Hit::new(500, rate, 1, &context)); }
/// // Halfway into the next window, half of the previous 10 still weigh in: 5 more fit.
/// assert_eq!(strategy.apply(&mut state, &Hit::new(1_500, rate, 5, &context)).remaining, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingWindowCounter {
    _private: (),
}

impl SlidingWindowCounter {
    /// The sliding-window-counter strategy.
    #[must_use]
    pub const fn new() -> Self {
        SlidingWindowCounter { _private: () }
    }
}

/// The state of a [`SlidingWindowCounter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlidingWindowCounterState {
    /// The current window's index.
    pub window: u64,
    /// Cost admitted in the current window.
    pub current: u64,
    /// Cost admitted in the previous window.
    pub previous: u64,
}

/// [`SlidingWindowCounter`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlidingWindowCounterStat {
    /// The current window's index.
    pub current_window_id: u64,
    /// Cost admitted in the current window.
    pub current_count: u64,
    /// Cost admitted in the previous window.
    pub previous_count: u64,
    /// The previous window's weight now, in percent.
    pub overlap_percentage: f64,
    /// The estimate now.
    pub weighted_count: f64,
}

/// The state rolled to `now`, and the offset into the window (never negative).
fn roll(
    state: Option<&SlidingWindowCounterState>,
    now: Millis,
    period: u64,
) -> (SlidingWindowCounterState, u64) {
    let window = now / period;
    let rolled = match state {
        None => SlidingWindowCounterState {
            window,
            current: 0,
            previous: 0,
        },
        Some(s) if window <= s.window => *s,
        Some(s) if window == s.window + 1 => SlidingWindowCounterState {
            window,
            current: 0,
            previous: s.current,
        },
        Some(_) => SlidingWindowCounterState {
            window,
            current: 0,
            previous: 0,
        },
    };
    let offset = now.saturating_sub(rolled.window * period);
    (rolled, offset)
}

/// The estimate in count × ms.
fn weighted(state: &SlidingWindowCounterState, offset: u64, period: u64) -> u128 {
    u128::from(state.previous) * u128::from(period - offset.min(period))
        + u128::from(state.current) * u128::from(period)
}

/// Milliseconds until `cost` more fits, given the estimate.
fn wait_ms(
    state: &SlidingWindowCounterState,
    offset: u64,
    period: u64,
    limit: u64,
    cost: u64,
) -> u128 {
    let (w, l, c) = (u128::from(period), u128::from(limit), u128::from(cost));
    let excess = (weighted(state, offset, period) + c * w).saturating_sub(l * w);
    if excess == 0 {
        return 0;
    }
    let left_in_window = w - u128::from(offset.min(period));
    if state.previous > 0 {
        let within = excess.div_ceil(u128::from(state.previous));
        if within <= left_in_window && u128::from(state.current) + c <= l {
            return within;
        }
    }
    // Only the next window helps: there `current` becomes the draining previous.
    let current = u128::from(state.current);
    let into_next = if current + c <= l {
        0
    } else {
        ((current + c - l) * w).div_ceil(current)
    };
    left_in_window + into_next
}

fn reset_ms(state: &SlidingWindowCounterState, offset: u64, period: u64) -> u128 {
    let left = u128::from(period - offset.min(period));
    if state.current > 0 {
        left + u128::from(period)
    } else if state.previous > 0 {
        left
    } else {
        0
    }
}

impl Strategy for SlidingWindowCounter {
    type State = SlidingWindowCounterState;
    const NAME: &'static str = "sliding-window-counter";

    fn apply(&self, state: &mut Option<SlidingWindowCounterState>, hit: &Hit<'_>) -> Decision {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let (mut rolled, offset) = roll(state.as_ref(), hit.now, period);
        let estimate = weighted(&rolled, offset, period);
        let budget = u128::from(limit) * u128::from(period);
        let remaining =
            u64::try_from(budget.saturating_sub(estimate) / u128::from(period)).unwrap_or(u64::MAX);
        if hit.cost > limit {
            return Decision::exceeds_capacity(
                limit,
                limit,
                remaining,
                millis(reset_ms(&rolled, offset, period)),
            );
        }
        let wait = wait_ms(&rolled, offset, period, limit, hit.cost);
        if wait == 0 {
            rolled.current += hit.cost;
            *state = Some(rolled);
            let after = weighted(&rolled, offset, period);
            let remaining = u64::try_from(budget.saturating_sub(after) / u128::from(period))
                .unwrap_or(u64::MAX);
            Decision::allowed(limit, remaining, millis(reset_ms(&rolled, offset, period)))
        } else {
            Decision::throttled(
                limit,
                remaining,
                millis(wait),
                millis(reset_ms(&rolled, offset, period)),
            )
        }
    }

    fn stat(&self, state: Option<&SlidingWindowCounterState>, hit: &Hit<'_>) -> StrategyStat {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let (rolled, offset) = roll(state, hit.now, period);
        let estimate = weighted(&rolled, offset, period);
        let remaining = u64::try_from(
            (u128::from(limit) * u128::from(period)).saturating_sub(estimate) / u128::from(period),
        )
        .unwrap_or(u64::MAX);
        let wait = if limit == 0 {
            Duration::ZERO
        } else {
            millis(wait_ms(&rolled, offset, period, limit, 1))
        };
        let metadata = StatMetadata::SlidingWindowCounter(SlidingWindowCounterStat {
            current_window_id: rolled.window,
            current_count: rolled.current,
            previous_count: rolled.previous,
            overlap_percentage: (period - offset.min(period)) as f64 * 100.0 / period as f64,
            weighted_count: estimate as f64 / period as f64,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &SlidingWindowCounterState, rate: &Rate) -> Millis {
        let windows = if state.current > 0 { 2 } else { 1 };
        (state.window + windows).saturating_mul(rate.period_ms())
    }

    fn pack(state: &SlidingWindowCounterState) -> Option<[u64; 3]> {
        Some([state.window, state.current, state.previous])
    }

    fn unpack([window, current, previous]: [u64; 3]) -> Option<SlidingWindowCounterState> {
        Some(SlidingWindowCounterState {
            window,
            current,
            previous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;

    #[test]
    fn weighs_the_previous_window_by_its_overlap() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(900);
        assert!(sim.hit(10).is_allowed());
        sim.at(1_250); // previous weighs 75%: 7.5 used
        assert!(sim.hit(2).is_allowed());
        assert!(sim.hit(1).is_throttled());
        let StatMetadata::SlidingWindowCounter(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(
            (meta.previous_count, meta.current_count, meta.weighted_count),
            (10, 2, 9.5)
        );
    }

    #[test]
    fn the_wait_is_excess_times_period_over_previous() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(500);
        assert!(sim.hit(10).is_allowed());
        sim.at(1_000); // estimate 10 + 0; one more needs 1 × 1000 / 10 = 100 ms
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(100)));
        sim.at(1_099);
        assert!(sim.hit(1).is_throttled());
        sim.at(1_100);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn waits_into_the_next_window_when_the_current_one_is_full() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(100);
        assert!(sim.hit(10).is_allowed());
        // Next window: current 10 becomes previous; 1 fits when 10 × (1 − t) + 1 ≤ 10: t = 100 ms.
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(900 + 100)));
        sim.at(1_100);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn state_expires_after_two_windows() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(1_500);
        sim.hit(1);
        assert_eq!(sim.expires_at(), Some(3_000));
    }
}
