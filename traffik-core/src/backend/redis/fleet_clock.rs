//! Redis's clock, estimated in this process: under
//! [`TimeSource::Fleet`](super::TimeSource::Fleet) scripts are sent `now` instead of each
//! reading `TIME`; under the other sources, deadlines are sent on Redis's clock.
//!
//! The estimate is NTP's: Redis's `TIME`, read between two readings of this host's monotonic
//! clock, was read at the middle of the round trip, give or take half of it. Of [`SAMPLES`]
//! round trips the shortest is kept. It is taken at connect and again every [`REFRESH`] by a
//! task that ends with the backend; a failed refresh keeps the last estimate, and so does a
//! noisier one: as NTP's clock filter, a reading replaces the estimate only when its round trip
//! is no longer than the estimate's uncertainty has grown to (half its round trip, plus
//! [`DRIFT_PPM`] of its age), so a refresh taken while Redis stalls or the connection is
//! queued does not replace a precise estimate.
//!
//! How far the estimate can be from Redis's clock (stated in `docs/redis.md`, "Clock"): half
//! the kept round trip, plus whatever the two clocks drift apart between refreshes (NTP slews a
//! clock by at most 500 ppm: 2.5 ms over [`REFRESH`]), plus the whole milliseconds scripts work
//! in. On a cluster every instance reads the node holding [`key`]'s slot, so a fleet on one
//! namespace shares one clock there too.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;

use super::connection::Handle;
use super::error::{NAME, from_redis, invalid_reply, timeout};
use crate::Millis;
use crate::backend::BackendError;
use crate::key::namespace_prefix;

/// How many round trips one estimate looks at (the shortest wins).
const SAMPLES: usize = 3;

/// How often the estimate is refreshed.
pub(super) const REFRESH: Duration = Duration::from_secs(5);

/// How fast two clocks an NTP daemon disciplines may drift apart at most (µs per s).
const DRIFT_PPM: u64 = 500;

/// How far back a new estimate may put the clock and still be held (ms): a larger step back
/// (Redis failed over to a node whose clock is behind, or its clock was stepped) is taken as
/// it is, rather than freezing the clock, and every window with it, for the step's length.
const LONGEST_HOLD_MS: u64 = 1_000;

/// Reads `TIME` on the node holding `KEYS[1]`: on a cluster, where a bare `TIME` goes to any
/// node, so that every instance reads one node.
static SAMPLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "#!lua flags=no-writes\nlocal time = redis.call('TIME')\nreturn {time[1], time[2]}\n",
    )
});

/// The key whose node is read on a cluster.
pub(super) fn key(namespace: &str) -> String {
    format!("{}traffik-clock", namespace_prefix(namespace))
}

/// An estimate of Redis's clock.
#[derive(Debug)]
pub(super) struct FleetClock {
    /// What this host's monotonic clock is measured from.
    origin: Instant,
    /// Redis's clock (µs since the Unix epoch) minus the µs elapsed since `origin`.
    offset_us: AtomicI64,
    /// Half the kept round trip (µs): how far the estimate may be off when taken.
    uncertainty_us: AtomicU64,
    /// When the kept reading was taken (µs since `origin`).
    taken_us: AtomicU64,
    /// The latest `now_ms` answered: a refresh that moves the estimate back holds the clock
    /// still until the estimate catches up, so it never runs backwards in this process.
    latest_ms: AtomicU64,
}

/// One reading: the offset and its uncertainty (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    offset_us: i64,
    uncertainty_us: u64,
}

impl Reading {
    /// Redis's clock read as `redis_us` (µs since the Unix epoch) by a call sent at `sent_us`
    /// and answered at `received_us` (µs on this host's monotonic clock): taken to have been
    /// read at the middle of the round trip, give or take half of it.
    fn of(sent_us: u64, received_us: u64, redis_us: i64) -> Reading {
        let middle = i64::try_from(sent_us / 2 + received_us / 2).unwrap_or(i64::MAX);
        Reading {
            offset_us: redis_us.saturating_sub(middle),
            uncertainty_us: received_us.saturating_sub(sent_us).div_ceil(2),
        }
    }
}

impl FleetClock {
    /// Takes the first estimate on `handle`.
    pub(super) async fn start(
        handle: &mut Handle,
        key: &str,
        after: Duration,
    ) -> Result<Self, BackendError> {
        let origin = Instant::now();
        let clock = FleetClock::from_reading(origin, read(handle, key, origin, after).await?);
        clock.log_skew();
        Ok(clock)
    }

    fn from_reading(origin: Instant, reading: Reading) -> Self {
        FleetClock {
            origin,
            offset_us: AtomicI64::new(reading.offset_us),
            uncertainty_us: AtomicU64::new(reading.uncertainty_us),
            taken_us: AtomicU64::new(micros(origin.elapsed())),
            latest_ms: AtomicU64::new(0),
        }
    }

    /// Redis's clock now, estimated (ms since the Unix epoch, rounded down); never less than
    /// an earlier answer.
    pub(super) fn now_ms(&self) -> Millis {
        let estimate = self.estimate_ms();
        self.latest_ms
            .fetch_max(estimate, Ordering::Relaxed)
            .max(estimate)
    }

    /// The estimate as it stands, which a refresh may move back.
    fn estimate_ms(&self) -> Millis {
        let elapsed = i64::try_from(micros(self.origin.elapsed())).unwrap_or(i64::MAX);
        let us = elapsed.saturating_add(self.offset_us.load(Ordering::Relaxed));
        u64::try_from(us.div_euclid(1_000)).unwrap_or(0)
    }

    /// How far the estimate may be off, in whole ms (rounded up): half its round trip, plus
    /// the drift its age allows.
    pub(super) fn uncertainty_ms(&self) -> u64 {
        self.uncertainty_us_now().div_ceil(1_000)
    }

    fn uncertainty_us_now(&self) -> u64 {
        let age =
            micros(self.origin.elapsed()).saturating_sub(self.taken_us.load(Ordering::Relaxed));
        self.uncertainty_us
            .load(Ordering::Relaxed)
            .saturating_add(age / 1_000_000 * DRIFT_PPM + age % 1_000_000 * DRIFT_PPM / 1_000_000)
    }

    /// Takes a new estimate on `handle`; a failure, or a reading noisier than the estimate
    /// has become, keeps the last one.
    pub(super) async fn refresh(&self, handle: &mut Handle, key: &str, after: Duration) {
        match read(handle, key, self.origin, after).await {
            Ok(reading) if reading.uncertainty_us <= self.uncertainty_us_now() => self.set(reading),
            Ok(reading) => tracing::debug!(
                target: "traffik",
                backend = NAME,
                round_trip_us = reading.uncertainty_us * 2,
                "a reading of Redis's clock was noisier than the estimate; keeping the estimate"
            ),
            Err(error) => tracing::debug!(
                target: "traffik",
                backend = NAME,
                %error,
                "could not refresh the estimate of Redis's clock; keeping the last one"
            ),
        }
    }

    fn set(&self, reading: Reading) {
        self.offset_us.store(reading.offset_us, Ordering::Relaxed);
        self.uncertainty_us
            .store(reading.uncertainty_us, Ordering::Relaxed);
        self.taken_us
            .store(micros(self.origin.elapsed()), Ordering::Relaxed);
        // A step back longer than the hold is taken as it is.
        let estimate = self.estimate_ms();
        let latest = self.latest_ms.load(Ordering::Relaxed);
        if latest > estimate.saturating_add(LONGEST_HOLD_MS) {
            tracing::warn!(
                target: "traffik",
                backend = NAME,
                step_ms = latest - estimate,
                "Redis's clock went back; decisions follow it"
            );
            self.latest_ms.store(estimate, Ordering::Relaxed);
        }
    }

    /// Logs (at WARN) a Redis clock more than a second from this host's wall clock: harmless to
    /// decisions, which run on the estimate, but worth synchronising.
    fn log_skew(&self) {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| micros(since) / 1_000);
        let skew_ms = i128::from(self.now_ms()) - i128::from(wall);
        if skew_ms.unsigned_abs() > 1_000 {
            tracing::warn!(
                target: "traffik",
                backend = NAME,
                skew_ms = i64::try_from(skew_ms).unwrap_or(i64::MAX),
                "Redis's clock is {skew_ms} ms from this host's; decisions use Redis's, but synchronise the clocks"
            );
        }
    }
}

/// The best of [`SAMPLES`] readings of Redis's clock against `origin`.
async fn read(
    handle: &mut Handle,
    key: &str,
    origin: Instant,
    after: Duration,
) -> Result<Reading, BackendError> {
    let mut best: Option<Reading> = None;
    for _ in 0..SAMPLES {
        let sent = micros(origin.elapsed());
        let time = async {
            if matches!(handle, Handle::Cluster(_)) {
                SAMPLE.key(key).invoke_async(handle).await
            } else {
                redis::cmd("TIME").query_async(handle).await
            }
        };
        let reply = tokio::time::timeout(after, time).await;
        let received = micros(origin.elapsed());
        let (seconds, us): (i64, i64) = match reply {
            Ok(Ok(time)) => time,
            Ok(Err(error)) => return Err(from_redis("read the clock", error, after)),
            Err(_) => return Err(timeout("read the clock", after)),
        };
        let redis_us = seconds
            .checked_mul(1_000_000)
            .and_then(|s| s.checked_add(us))
            .filter(|us| *us > 0)
            .ok_or_else(|| {
                invalid_reply("read the clock", format!("TIME said {seconds} s {us} µs"))
            })?;
        let reading = Reading::of(sent, received, redis_us);
        if best.is_none_or(|best| reading.uncertainty_us < best.uncertainty_us) {
            best = Some(reading);
        }
    }
    best.ok_or_else(|| invalid_reply("read the clock", "no reading".to_owned()))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_the_middle_of_the_round_trip_give_or_take_half_of_it() {
        // Sent at 1,000 µs, answered at 1,400 µs; Redis said 5,000,000 µs.
        let reading = Reading::of(1_000, 1_400, 5_000_000);
        assert_eq!(reading.offset_us, 5_000_000 - 1_200);
        assert_eq!(reading.uncertainty_us, 200);
        // An odd round trip rounds the uncertainty up.
        assert_eq!(Reading::of(0, 3, 10).uncertainty_us, 2);
    }

    #[test]
    fn the_estimate_runs_with_this_host_s_clock_and_never_back() {
        let origin = Instant::now();
        let redis_ms: u64 = 1_800_000_000_000;
        let clock = FleetClock::from_reading(
            origin,
            Reading {
                offset_us: i64::try_from(redis_ms * 1_000).unwrap(),
                uncertainty_us: 1_500,
            },
        );
        let first = clock.now_ms();
        let elapsed = u64::try_from(origin.elapsed().as_millis()).unwrap();
        assert!(first >= redis_ms && first <= redis_ms + elapsed, "{first}");
        assert_eq!(clock.uncertainty_ms(), 2);
        // A refresh a second back: the clock holds still rather than run backwards.
        clock.set(Reading {
            offset_us: i64::try_from((redis_ms - 1_000) * 1_000).unwrap(),
            uncertainty_us: 100,
        });
        assert!(clock.now_ms() >= first);
        // A refresh ahead moves it on.
        clock.set(Reading {
            offset_us: i64::try_from((redis_ms + 60_000) * 1_000).unwrap(),
            uncertainty_us: 100,
        });
        assert!(clock.now_ms() >= redis_ms + 60_000);
        // A step back past the hold is followed.
        clock.set(Reading {
            offset_us: i64::try_from(redis_ms * 1_000).unwrap(),
            uncertainty_us: 100,
        });
        assert!(clock.now_ms() < redis_ms + 60_000);
    }

    #[test]
    fn the_uncertainty_grows_with_the_estimate_s_age() {
        let origin = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .unwrap_or_else(Instant::now);
        let clock = FleetClock::from_reading(
            origin,
            Reading {
                offset_us: 0,
                uncertainty_us: 1_000,
            },
        );
        // Taken 10 s ago (if the host has been up that long): 1 ms, plus 500 ppm of 10 s.
        clock.taken_us.store(0, Ordering::Relaxed);
        let grown = clock.uncertainty_us_now();
        assert!(grown >= 1_000 + 5_000, "{grown}");
        assert!(grown < 1_000 + 5_000 + 1_000, "{grown}");
    }
}
