//! [`SlidingWindowCounter`]: the current window's count plus a weighted share of the previous.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Hit, Refund, Strategy, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Approximates a sliding window with two fixed windows: the units admitted in the sliding
/// window `(now − period, now]` are estimated as the current window's count plus the previous
/// window's units still inside it, taking the previous window's `previous` units as spread
/// evenly from its start (one every `period / previous` ms):
///
/// `carried(t) = max(0, ⌈previous × (period − t) / period⌉ − 1)` at `t` ms into the window.
///
/// That is the classic weighted estimate `previous × (period − t) / period` (Cloudflare's,
/// the reference's) without the unit its continuous model counts at the boundary: the
/// previous window's hit exactly one period ago, which a sliding window excludes. With the
/// classic estimate a client spaced exactly `period / limit` apart is refused (at `1/10s`,
/// every second hit); with this one it never is, whatever its phase.
///
/// **Guarantees**: a hit is admitted when the estimate plus its cost is at most `limit`.
/// Traffic at or under the rate, evenly spaced, is never refused. The estimate is exact for
/// evenly spaced traffic and undercounts bursts late in the previous window: in the worst case
/// (all of one window's `limit` in its last millisecond, then the next window's hits spread
/// out) up to `2 × limit` units are admitted within one period-long interval, as with the fixed
/// window and about as many as the classic estimate allows; the sliding log admits `limit`.
/// The wait of a refused hit is exact for
/// the estimate (a client that waits it is admitted, one millisecond earlier it is not). A
/// cost above `limit` is a permanent [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity).
/// Refused hits do not count.
///
/// **Storage**: `{window, current, previous}` in one key (integer arithmetic only).
///
/// ```
/// use traffik_core::strategy::{Hit, SlidingWindowCounter, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (strategy, context) = (SlidingWindowCounter::new(), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(10);
/// for _ in 0..10 { strategy.apply(&mut state, &Hit::new(500, rate, 1, &context)); }
/// // Halfway into the next window, 4 of the previous 10 (taken at 0, 100, …, 900 ms) are still
/// // inside the last second: 6 more fit.
/// assert_eq!(strategy.apply(&mut state, &Hit::new(1_500, rate, 6, &context)).remaining, 0);
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
        Some(s) if window <= s.window => *s,
        Some(s) if s.window.checked_add(1) == Some(window) => SlidingWindowCounterState {
            window,
            current: 0,
            previous: s.current,
        },
        None | Some(_) => SlidingWindowCounterState {
            window,
            current: 0,
            previous: 0,
        },
    };
    let offset = now.saturating_sub(rolled.window.saturating_mul(period));
    (rolled, offset.min(period))
}

/// The previous window's units still inside the sliding window, `offset` ms into the current
/// one: `max(0, previous − 1 − ⌊offset × previous / period⌋)`.
fn carried(previous: u64, offset: u64, period: u64) -> u64 {
    if previous == 0 {
        return 0;
    }
    let passed = u128::from(offset) * u128::from(previous) / u128::from(period);
    (previous - 1).saturating_sub(u64::try_from(passed).unwrap_or(u64::MAX))
}

/// The estimate: units counted in the sliding window now.
fn used(state: &SlidingWindowCounterState, offset: u64, period: u64) -> u128 {
    u128::from(carried(state.previous, offset, period)) + u128::from(state.current)
}

/// The first offset into a window from which `previous` units carry at most `room`:
/// `⌈(previous − 1 − room) × period / previous⌉` (0 when they already do).
fn offset_carrying_at_most(previous: u64, room: u128, period: u64) -> u128 {
    let excess = u128::from(previous.saturating_sub(1)).saturating_sub(room);
    if excess == 0 {
        return 0;
    }
    (excess * u128::from(period)).div_ceil(u128::from(previous))
}

/// Milliseconds until `cost` more fits, given the estimate (`cost ≤ limit`).
fn wait_ms(
    state: &SlidingWindowCounterState,
    offset: u64,
    period: u64,
    limit: u64,
    cost: u64,
) -> u128 {
    let (limit, cost, current) = (
        u128::from(limit),
        u128::from(cost),
        u128::from(state.current),
    );
    if current + cost <= limit {
        // This window, once enough of the previous window has left the sliding window.
        let from = offset_carrying_at_most(state.previous, limit - current - cost, period);
        return from.saturating_sub(u128::from(offset));
    }
    // Only the next window helps: there `current` becomes the previous window.
    let left_in_window = u128::from(period - offset);
    left_in_window + offset_carrying_at_most(state.current, limit - cost, period)
}

fn reset_ms(state: &SlidingWindowCounterState, offset: u64, period: u64) -> u128 {
    let left = u128::from(period - offset);
    if state.current > 0 {
        left + u128::from(period)
    } else if state.previous > 0 {
        left
    } else {
        0
    }
}

/// Units left under `limit` with `used` counted.
fn remaining(limit: u64, used: u128) -> u64 {
    u64::try_from(u128::from(limit).saturating_sub(used)).unwrap_or(u64::MAX)
}

impl Strategy for SlidingWindowCounter {
    type State = SlidingWindowCounterState;
    const NAME: &'static str = "sliding-window-counter";

    fn apply(&self, state: &mut Option<SlidingWindowCounterState>, hit: &Hit<'_>) -> Decision {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let (mut rolled, offset) = roll(state.as_ref(), hit.now, period);
        let before = used(&rolled, offset, period);
        let reset = |rolled: &SlidingWindowCounterState| millis(reset_ms(rolled, offset, period));
        if hit.cost > limit {
            return Decision::exceeds_capacity(
                limit,
                limit,
                remaining(limit, before),
                reset(&rolled),
            );
        }
        if before + u128::from(hit.cost) <= u128::from(limit) {
            // `current + cost ≤ used + cost ≤ limit`: no overflow.
            rolled.current += hit.cost;
            *state = Some(rolled);
            let after = before + u128::from(hit.cost);
            Decision::allowed(limit, remaining(limit, after), reset(&rolled))
        } else {
            let wait = wait_ms(&rolled, offset, period, limit, hit.cost);
            Decision::throttled(
                limit,
                remaining(limit, before),
                millis(wait),
                reset(&rolled),
            )
        }
    }

    /// Returns the charge to its window's counter: the current one, or the previous one once
    /// the next window has begun; nothing after that.
    fn refund(&self, state: &mut Option<SlidingWindowCounterState>, hit: &Hit<'_>) -> Refund {
        let charged = hit.now / hit.rate.period_ms();
        match state {
            Some(s) if s.window == charged => {
                s.current = s.current.saturating_sub(hit.cost);
                Refund::Returned
            }
            Some(s) if charged.checked_add(1) == Some(s.window) => {
                s.previous = s.previous.saturating_sub(hit.cost);
                Refund::Returned
            }
            _ => Refund::Lapsed,
        }
    }

    #[allow(clippy::cast_precision_loss)] // reporting only: approximate above 2^53 is fine
    fn stat(&self, state: Option<&SlidingWindowCounterState>, hit: &Hit<'_>) -> StrategyStat {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let (rolled, offset) = roll(state, hit.now, period);
        let estimate = used(&rolled, offset, period);
        let remaining = remaining(limit, estimate);
        let wait = if remaining > 0 {
            Duration::ZERO
        } else {
            millis(wait_ms(&rolled, offset, period, limit, 1))
        };
        let metadata = StatMetadata::SlidingWindowCounter(SlidingWindowCounterStat {
            current_window_id: rolled.window,
            current_count: rolled.current,
            previous_count: rolled.previous,
            overlap_percentage: (period - offset) as f64 * 100.0 / period as f64,
            weighted_count: estimate as f64,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &SlidingWindowCounterState, rate: &Rate) -> Millis {
        let windows = if state.current > 0 { 2 } else { 1 };
        state
            .window
            .saturating_add(windows)
            .saturating_mul(rate.period_ms())
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
    fn carries_the_previous_window_spread_from_its_start() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(900);
        assert!(sim.hit(10).is_allowed());
        // 250 ms in: of the previous 10 (taken at 0, 100, …, 900), those after 250 carry: 7.
        sim.at(1_250);
        assert!(sim.hit(3).is_allowed());
        assert!(sim.hit(1).is_throttled());
        let StatMetadata::SlidingWindowCounter(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(
            (meta.previous_count, meta.current_count, meta.weighted_count),
            (10, 3, 10.0)
        );
    }

    #[test]
    fn the_wait_is_until_enough_of_the_previous_window_has_left() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(500);
        assert!(sim.hit(10).is_allowed());
        // At 1000, 9 carry; one more fits at once.
        sim.at(1_000);
        assert!(sim.hit(1).is_allowed());
        // Now 9 + 1: the next fits when 8 carry, at 1100.
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
        // Next window: the 10 carry 9 at its start, so 1 fits at once: a wait of 900 ms.
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(900)));
        // 10 at once need the 10 gone: 900 + 1000 − 100 (the last carried unit leaves at 900).
        assert_eq!(sim.hit(10).wait(), Some(Duration::from_millis(900 + 900)));
        sim.at(1_000);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn a_client_spaced_exactly_period_over_limit_is_never_refused() {
        for (limit, period) in [(1, 10_000), (10, 10_000), (3, 60_000), (100, 1_000)] {
            for phase in [0, 1, period / limit / 2, period / limit - 1] {
                let mut sim =
                    Sim::new(SlidingWindowCounter::new(), Rate::per_millis(limit, period));
                for n in 0..5 * limit {
                    sim.at(1_000_000 * period + phase + n * (period / limit));
                    assert!(
                        sim.hit(1).is_allowed(),
                        "{limit}/{period}ms, phase {phase}: hit {n} refused"
                    );
                }
            }
        }
    }

    #[test]
    fn state_expires_after_two_windows() {
        let mut sim = Sim::new(SlidingWindowCounter::new(), Rate::per_second(10));
        sim.at(1_500);
        sim.hit(1);
        assert_eq!(sim.expires_at(), Some(3_000));
    }
}
