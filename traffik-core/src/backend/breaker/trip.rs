//! [`Trip`]: when a closed circuit breaker opens, and the sliding window that counts calls for
//! the failure ratio.

use std::time::Duration;

use tokio::time::Instant;

/// When a closed [circuit breaker](super::CircuitBreaker) opens.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Trip {
    /// After this many failures in a row (a success resets the count). The reference's
    /// `failure_threshold`; default 5.
    ConsecutiveFailures(u32),
    /// When, over the last `window`, at least `min_calls` calls were made and the share of them
    /// that failed reached `ratio` (0 < ratio ≤ 1). The window slides: the previous window's
    /// counts are weighted by how much of it still overlaps (the sliding window counter).
    FailureRatio {
        /// The share of failed calls that opens the breaker, in (0, 1].
        ratio: f64,
        /// The span the ratio is measured over.
        window: Duration,
        /// The fewest calls in the window for the ratio to count (so two failures out of two
        /// calls at night do not open it).
        min_calls: u32,
    },
}

impl Trip {
    /// Why these settings cannot work, if they cannot.
    pub(super) fn problem(&self) -> Option<&'static str> {
        match *self {
            Trip::ConsecutiveFailures(0) => Some("the failure threshold must be at least 1"),
            Trip::ConsecutiveFailures(_) => None,
            Trip::FailureRatio {
                ratio,
                window,
                min_calls,
            } => {
                if !(ratio > 0.0 && ratio <= 1.0) {
                    Some("the failure ratio must be above 0 and at most 1")
                } else if window.is_zero() {
                    Some("the failure-ratio window must be above zero")
                } else if min_calls == 0 {
                    Some("the failure-ratio minimum number of calls must be at least 1")
                } else {
                    None
                }
            }
        }
    }
}

/// Calls and failures over a sliding window: the current fixed window's counts, plus the
/// previous window's weighted by how much of it the sliding window still covers.
#[derive(Debug, Default)]
pub(super) struct FailureWindow {
    started: Option<Instant>,
    calls: u64,
    failures: u64,
    previous_calls: u64,
    previous_failures: u64,
}

impl FailureWindow {
    /// Counts a call at `now`; returns the estimated calls and failure ratio over the window.
    pub(super) fn record(&mut self, now: Instant, window: Duration, failed: bool) -> (f64, f64) {
        // A zero window (a breaker used without `build`) counts as the shortest one.
        let window = window.max(Duration::from_nanos(1));
        let started = *self.started.get_or_insert(now);
        let elapsed = now.saturating_duration_since(started);
        if elapsed >= window {
            let windows = elapsed.as_nanos() / window.as_nanos();
            if windows == 1 {
                self.previous_calls = self.calls;
                self.previous_failures = self.failures;
            } else {
                self.previous_calls = 0;
                self.previous_failures = 0;
            }
            self.calls = 0;
            self.failures = 0;
            // The current window starts at the last whole multiple of `window`.
            let advance = window.saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX));
            self.started = Some(started + advance);
        }
        self.calls += 1;
        self.failures += u64::from(failed);
        let into = now
            .saturating_duration_since(self.started.unwrap_or(now))
            .as_secs_f64()
            / window.as_secs_f64();
        let weight = (1.0 - into).clamp(0.0, 1.0);
        let calls = (self.previous_calls as f64).mul_add(weight, self.calls as f64);
        let failures = (self.previous_failures as f64).mul_add(weight, self.failures as f64);
        (calls, if calls > 0.0 { failures / calls } else { 0.0 })
    }

    /// Forgets every count (the breaker closed again).
    pub(super) fn clear(&mut self) {
        *self = FailureWindow::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_trips_are_named() {
        assert!(Trip::ConsecutiveFailures(0).problem().is_some());
        assert!(Trip::ConsecutiveFailures(1).problem().is_none());
        let ratio = |ratio, window, min_calls| Trip::FailureRatio {
            ratio,
            window,
            min_calls,
        };
        let second = Duration::from_secs(1);
        assert!(ratio(0.0, second, 1).problem().is_some());
        assert!(ratio(1.5, second, 1).problem().is_some());
        assert!(ratio(f64::NAN, second, 1).problem().is_some());
        assert!(ratio(0.5, Duration::ZERO, 1).problem().is_some());
        assert!(ratio(0.5, second, 0).problem().is_some());
        assert!(ratio(1.0, second, 1).problem().is_none());
    }

    #[test]
    fn the_window_slides_and_weights_the_previous_counts() {
        let start = Instant::now();
        let window = Duration::from_secs(10);
        let mut counts = FailureWindow::default();
        for _ in 0..4 {
            counts.record(start, window, true);
        }
        let (calls, ratio) = counts.record(start, window, false);
        assert_eq!((calls, ratio), (5.0, 0.8));
        // Halfway through the next window: half of the previous counts still weigh.
        let (calls, ratio) = counts.record(start + Duration::from_secs(15), window, false);
        assert!((calls - 3.5).abs() < 1e-9, "{calls}");
        assert!((ratio - 2.0 / 3.5).abs() < 1e-9, "{ratio}");
        // Two whole windows later nothing of the old counts is left.
        let (calls, ratio) = counts.record(start + Duration::from_secs(40), window, true);
        assert_eq!((calls, ratio), (1.0, 1.0));
    }
}
