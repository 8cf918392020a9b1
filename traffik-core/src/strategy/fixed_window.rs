//! [`FixedWindow`]: a counter per epoch-aligned window.

use serde::{Deserialize, Serialize};

use super::{Hit, Refund, Strategy, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Counts cost per window of one period, aligned to the Unix epoch (so every instance of a
/// fleet shares the same boundaries).
///
/// **Guarantees**: at most `limit` units are admitted per window; across a boundary a client
/// can get up to `2 × limit` within one period (the classic fixed-window burst). The wait of a
/// refused hit is exactly the time to the window's end, which is also when its state expires,
/// so a client obeying `Retry-After` is admitted. Refused hits do not count.
///
/// **Storage**: `{window, count}`, one key per client; the window id lives in the state, so the
/// key never changes (no new key, and no allocation, at each boundary) and a stale window is
/// never read as the current one.
///
/// ```
/// use traffik_core::strategy::{FixedWindow, Hit, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (strategy, context) = (FixedWindow::new(), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(2);
/// assert!(strategy.apply(&mut state, &Hit::new(1_000, rate, 1, &context)).is_allowed());
/// assert!(strategy.apply(&mut state, &Hit::new(1_100, rate, 1, &context)).is_allowed());
/// let third = strategy.apply(&mut state, &Hit::new(1_200, rate, 1, &context));
/// assert_eq!(third.wait(), Some(std::time::Duration::from_millis(800)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindow {
    _private: (),
}

impl FixedWindow {
    /// The fixed-window strategy.
    #[must_use]
    pub const fn new() -> Self {
        FixedWindow { _private: () }
    }
}

/// The state of a window-counting strategy: which window, and how much it has admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    /// The window's index: `start_ms / period_ms`.
    pub window: u64,
    /// Cost admitted in the window.
    pub count: u64,
}

impl WindowState {
    /// The state as three words (for inline storage).
    pub(crate) fn pack(&self) -> [u64; 3] {
        [self.window, self.count, 0]
    }

    /// The inverse of [`pack`](Self::pack).
    pub(crate) fn unpack([window, count, _]: [u64; 3]) -> Self {
        WindowState { window, count }
    }

    /// When the window ends: from then on the state means nothing.
    pub(crate) fn ends_at(&self, rate: &Rate) -> Millis {
        self.window
            .saturating_add(1)
            .saturating_mul(rate.period_ms())
    }
}

/// [`FixedWindow`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindowStat {
    /// When the current window started.
    pub window_start_ms: Millis,
    /// When it ends.
    pub window_end_ms: Millis,
    /// Cost admitted in it.
    pub current_count: u64,
}

/// Rolls `state` forward to the window containing `now`. Time going backwards stays in the
/// stored window (never a fresh one).
pub(crate) fn current_window(
    state: &mut Option<WindowState>,
    now: Millis,
    period_ms: u64,
) -> &mut WindowState {
    // Before the stored window's end means the same window (or time went backwards): one
    // multiplication instead of a division on every hit; divide only when the window changes.
    let current =
        matches!(state, Some(s) if now < s.window.saturating_add(1).saturating_mul(period_ms));
    if !current {
        *state = Some(WindowState {
            window: now / period_ms,
            count: 0,
        });
    }
    match state {
        Some(state) => state,
        None => unreachable!("set just above"),
    }
}

/// The fixed-window transition with an explicit limit (shared by the tiered and priority
/// strategies, which derive the limit per hit).
pub(crate) fn step(
    state: &mut Option<WindowState>,
    hit: &Hit<'_>,
    limit: u64,
    capacity_limit: u64,
) -> Decision {
    let period = hit.rate.period_ms();
    let window = current_window(state, hit.now, period);
    // The last window before `u64::MAX` ms never ends (saturating), 584 million years on.
    let end = window.window.saturating_add(1).saturating_mul(period);
    let reset = millis(u128::from(end.saturating_sub(hit.now)));
    let remaining = limit.saturating_sub(window.count);
    if hit.cost > capacity_limit {
        return Decision::exceeds_capacity(limit, capacity_limit, remaining, reset);
    }
    if hit.cost <= remaining {
        window.count += hit.cost;
        Decision::allowed(limit, remaining - hit.cost, reset)
    } else {
        Decision::throttled(limit, remaining, reset, reset)
    }
}

/// Returns a charge made at `hit.now` to the window counter, while that window is still the
/// stored one (shared by the tiered and priority strategies).
pub(crate) fn refund_window(state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
    match state {
        Some(window) if window.window == hit.now / hit.rate.period_ms() => {
            window.count = window.count.saturating_sub(hit.cost);
            Refund::Returned
        }
        _ => Refund::Lapsed,
    }
}

/// Stat for window-counting strategies with an explicit limit.
pub(crate) fn window_stat(
    state: Option<&WindowState>,
    now: Millis,
    period: u64,
    limit: u64,
) -> (u64, std::time::Duration, FixedWindowStat) {
    let current = now / period;
    let (window, count) = match state {
        Some(s) if s.window >= current => (s.window, s.count),
        _ => (current, 0),
    };
    let (start, end) = (
        window.saturating_mul(period),
        window.saturating_add(1).saturating_mul(period),
    );
    let remaining = limit.saturating_sub(count);
    let wait = if remaining == 0 {
        millis(u128::from(end.saturating_sub(now)))
    } else {
        std::time::Duration::ZERO
    };
    (
        remaining,
        wait,
        FixedWindowStat {
            window_start_ms: start,
            window_end_ms: end,
            current_count: count,
        },
    )
}

impl Strategy for FixedWindow {
    type State = WindowState;
    const NAME: &'static str = "fixed-window";

    #[inline]
    fn apply(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Decision {
        let limit = hit.rate.limit();
        step(state, hit, limit, limit)
    }

    fn refund(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
        refund_window(state, hit)
    }

    fn stat(&self, state: Option<&WindowState>, hit: &Hit<'_>) -> StrategyStat {
        let (remaining, wait, meta) =
            window_stat(state, hit.now, hit.rate.period_ms(), hit.rate.limit());
        StrategyStat::new(hit.rate, remaining, wait, StatMetadata::FixedWindow(meta))
    }

    #[inline]
    fn expires_at(&self, state: &WindowState, rate: &Rate) -> Millis {
        state.ends_at(rate)
    }

    fn pack(state: &WindowState) -> Option<[u64; 3]> {
        Some(state.pack())
    }

    fn unpack(words: [u64; 3]) -> Option<WindowState> {
        Some(WindowState::unpack(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;
    use std::time::Duration;

    #[test]
    fn rejects_third_request_within_window_and_admits_at_the_boundary() {
        let mut sim = Sim::new(FixedWindow::new(), Rate::per_second(2));
        sim.at(5_000);
        assert!(sim.hit(1).is_allowed());
        assert!(sim.hit(1).is_allowed());
        let third = sim.hit(1);
        assert_eq!(third.wait(), Some(Duration::from_secs(1)));
        sim.at(5_999);
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(1)));
        sim.at(6_000);
        assert!(sim.hit(1).is_allowed());
    }

    #[test]
    fn windows_are_epoch_aligned_and_retry_after_matches_the_real_reset() {
        let mut sim = Sim::new(FixedWindow::new(), Rate::per_millis(3, 3_500));
        sim.at(7_000 + 100); // window [7000, 10500)
        for _ in 0..3 {
            assert!(sim.hit(1).is_allowed());
        }
        let refused = sim.hit(1);
        assert_eq!(refused.wait(), Some(Duration::from_millis(3_400)));
        sim.at(7_100 + 3_400);
        assert!(
            sim.hit(1).is_allowed(),
            "admitted exactly when Retry-After said"
        );
    }

    #[test]
    fn subsecond_windows_work() {
        let mut sim = Sim::new(FixedWindow::new(), Rate::per_millis(10, 100));
        sim.at(1_000);
        assert!(sim.hit(10).is_allowed());
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(100)));
        sim.at(1_100);
        assert!(sim.hit(10).is_allowed());
    }

    #[test]
    fn refused_hits_do_not_count() {
        let mut sim = Sim::new(FixedWindow::new(), Rate::per_second(3));
        sim.at(0);
        assert!(sim.hit(2).is_allowed());
        assert!(sim.hit(2).is_throttled());
        assert!(sim.hit(2).is_throttled());
        assert!(sim.hit(1).is_allowed(), "the refused 2s consumed nothing");
    }

    #[test]
    fn state_expires_at_the_window_end() {
        let mut sim = Sim::new(FixedWindow::new(), Rate::per_second(3));
        sim.at(1_250);
        sim.hit(1);
        assert_eq!(sim.expires_at(), Some(2_000));
        let stat = sim.stat();
        assert_eq!(stat.hits_remaining, 2);
        assert_eq!(
            stat.metadata,
            StatMetadata::FixedWindow(FixedWindowStat {
                window_start_ms: 1_000,
                window_end_ms: 2_000,
                current_count: 1
            })
        );
    }
}
