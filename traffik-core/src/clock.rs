//! Time as the engine sees it: whole milliseconds since the Unix epoch.
//!
//! Strategies never read a clock; the throttle reads one and passes `now` in. Tests use
//! [`ManualClock`] and never sleep.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// A source of the current time.
///
/// ```
/// use traffik_core::{Clock, Millis, SystemClock};
///
/// /// A clock frozen at one instant (for a replay, say).
/// #[derive(Debug)]
/// struct Frozen(Millis);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Millis {
///         self.0
///     }
/// }
///
/// let wall = SystemClock::new();
/// assert!(wall.now() > 1_700_000_000_000); // after November 2023
/// assert_eq!(Frozen(42).now(), 42);
/// ```
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// The wall clock, read through a monotonic anchor so it never goes backwards.
///
/// It reads `SystemTime` once when created and adds the monotonic time elapsed since, so an NTP
/// step on this machine cannot move time backwards inside one process. Windows stay aligned to
/// the Unix epoch, the same boundaries every instance of a fleet uses. The monotonic part is
/// read with `quanta` (the CPU's invariant TSC where available, the OS monotonic clock
/// otherwise): about 10 ns a read against 25 ns for `std::time::Instant` (docs/benchmarks.md).
#[derive(Debug, Clone)]
pub struct SystemClock {
    anchor_wall_ms: Millis,
    clock: quanta::Clock,
    anchor: u64,
}

impl SystemClock {
    /// A clock anchored to the wall time now.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // ms since epoch fit in u64 until year 584 million
    pub fn new() -> Self {
        let anchor_wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as Millis);
        let clock = quanta::Clock::new();
        let anchor = clock.raw();
        SystemClock {
            anchor_wall_ms,
            clock,
            anchor,
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Millis {
        self.anchor_wall_ms + self.clock.delta_as_nanos(self.anchor, self.clock.raw()) / 1_000_000
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now(), 1_250);
/// clock.set(900); // time may even go backwards, to test clock skew
/// assert_eq!(clock.now(), 900);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start` milliseconds.
    #[must_use]
    pub fn new(start: Millis) -> Self {
        ManualClock {
            now: Arc::new(AtomicU64::new(start)),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: Millis) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (whole milliseconds).
    #[allow(clippy::cast_possible_truncation)] // test clock: steps past 584 million years are moot
    pub fn advance(&self, by: Duration) {
        self.now
            .fetch_add(by.as_millis() as Millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_near_the_wall_clock_and_never_goes_back() {
        let clock = SystemClock::new();
        let wall = Millis::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let first = clock.now();
        assert!(first.abs_diff(wall) < 1_000);
        assert!(clock.now() >= first);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new(5);
        let other = clock.clone();
        clock.advance(Duration::from_secs(1));
        assert_eq!(other.now(), 1_005);
    }
}
