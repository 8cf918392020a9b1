//! [`DenyCache`]: the clients Redis refused, refused again here without a Redis call until
//! their wait is over (`RedisBackendBuilder::deny_cache`).
//!
//! **Exact**: an entry answers only a hit identical to the refused one (the same key, the same
//! strategy parameters, the same cost) and only until the refusal's wait ends. Without a
//! refund, nothing makes a refused hit admissible sooner than its wait (other hits only
//! consume), so the cache never refuses what Redis would admit, and it never admits at all. The
//! wait is counted from the moment the call was *sent*: Redis decided later than that, so the
//! entry ends no later than Redis's own wait would.
//!
//! Not seen: a refund or a `reset` made by another instance (this instance's own forget the
//! entry). Each is visible at the end of the cached wait at the latest.
//!
//! **Bounded**: at most `capacity` entries, in 16 shards; a full shard first drops its ended
//! entries, and when none has ended the new refusal is simply not cached (the next hit asks
//! Redis, as without a cache).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::strategy::native::Native;
use crate::{Decision, Millis, Outcome};

const SHARDS: usize = 16;

/// A time on the clock decisions run on: this host's monotonic clock for decisions on Redis
/// `TIME` (waits are durations from when the call was sent), the hit's own `now` (ms) on the
/// caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// Decisions on Redis `TIME`.
    Server(Instant),
    /// Decisions on the caller's clock (ms).
    Caller(Millis),
}

impl At {
    /// `self + wait`.
    fn after(self, wait: Duration) -> At {
        match self {
            At::Server(instant) => At::Server(instant + wait),
            At::Caller(ms) => {
                At::Caller(ms.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)))
            }
        }
    }

    /// How long from `now` until `self` (`None` once reached, or on another clock).
    fn left(self, now: At) -> Option<Duration> {
        match (self, now) {
            (At::Server(until), At::Server(now)) => {
                Some(until.saturating_duration_since(now)).filter(|left| !left.is_zero())
            }
            (At::Caller(until), At::Caller(now)) => {
                (until > now).then(|| Duration::from_millis(until - now))
            }
            _ => None,
        }
    }
}

/// One refusal.
#[derive(Debug, Clone, Copy)]
struct Entry {
    native: Native,
    cost: u64,
    /// When the refusal's wait ends.
    until: At,
    /// The wait the refusal reported (to count `reset` down by what has passed).
    wait: Duration,
    refused: Decision,
}

/// One shard: refusals by storage key.
type Shard = HashMap<Box<str>, Entry>;

/// Refusals by storage key.
#[derive(Debug)]
pub(super) struct DenyCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl DenyCache {
    /// A cache of at most `capacity` refusals (`capacity` ≥ 1).
    pub(super) fn new(capacity: usize) -> DenyCache {
        DenyCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// The most refusals kept.
    pub(super) fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The refusal Redis would give this hit now, if one is cached for exactly this hit: the
    /// refused decision with its wait and reset counted down to `now`.
    pub(super) fn refused(
        &self,
        key: &str,
        native: &Native,
        cost: u64,
        now: At,
    ) -> Option<Decision> {
        let mut shard = self.shard(key);
        let entry = shard.get(key)?;
        if entry.native != *native || entry.cost != cost {
            return None;
        }
        let Some(left) = entry.until.left(now) else {
            shard.remove(key);
            return None;
        };
        let passed = entry.wait.saturating_sub(left);
        Some(Decision {
            outcome: Outcome::Throttled { wait: left },
            reset: entry.refused.reset.saturating_sub(passed),
            ..entry.refused
        })
    }

    /// Keeps `decision` if it is a refusal with a wait, for hits like this one (`sent`: when
    /// the call that decided it was sent, or the hit's `now` on the caller's clock).
    pub(super) fn remember(
        &self,
        key: &str,
        native: &Native,
        cost: u64,
        sent: At,
        decision: &Decision,
    ) {
        let Outcome::Throttled { wait } = decision.outcome else {
            return;
        };
        if wait.is_zero() {
            return;
        }
        let until = sent.after(wait);
        let mut shard = self.shard(key);
        if shard.len() >= self.per_shard && !shard.contains_key(key) {
            shard.retain(|_, entry| entry.until.left(sent).is_some());
            if shard.len() >= self.per_shard {
                return;
            }
        }
        shard.insert(
            key.into(),
            Entry {
                native: *native,
                cost,
                until,
                wait,
                refused: *decision,
            },
        );
    }

    /// Forgets `key` (a refund on it may admit sooner).
    pub(super) fn forget(&self, key: &str) {
        self.shard(key).remove(key);
    }

    /// Forgets everything (a reset).
    pub(super) fn clear(&self) {
        for shard in &*self.shards {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// The refusals kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Whether refusals of this strategy can be cached: every built-in one whose decision depends
/// only on its state, its parameters, the time and the cost. Not the adaptive limit, which
/// moves with demand.
pub(super) fn cacheable(native: &Native) -> bool {
    !matches!(native, Native::Adaptive { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Native = Native::FixedWindow {
        period: 1_000,
        limit: 5,
    };

    fn refusal(wait_ms: u64) -> Decision {
        Decision {
            outcome: Outcome::Throttled {
                wait: Duration::from_millis(wait_ms),
            },
            limit: 5,
            remaining: 0,
            reset: Duration::from_millis(wait_ms),
        }
    }

    #[test]
    fn a_refusal_answers_the_same_hit_until_its_wait_ends_and_no_longer() {
        let cache = DenyCache::new(100);
        cache.remember("k", &WINDOW, 1, At::Caller(10_000), &refusal(400));
        let at = |ms| cache.refused("k", &WINDOW, 1, At::Caller(ms));
        assert_eq!(at(10_000), Some(refusal(400)));
        let later = at(10_300).expect("still refused");
        assert_eq!(
            later.outcome,
            Outcome::Throttled {
                wait: Duration::from_millis(100)
            }
        );
        assert_eq!(
            later.reset,
            Duration::from_millis(100),
            "reset counts down too"
        );
        assert_eq!(
            at(10_399).map(|d| d.outcome),
            Some(Outcome::Throttled {
                wait: Duration::from_millis(1)
            })
        );
        assert_eq!(at(10_400), None, "the wait is over: Redis decides");
        assert_eq!(cache.len(), 0, "and the entry is gone");
    }

    #[test]
    fn only_an_identical_hit_is_answered() {
        let cache = DenyCache::new(100);
        cache.remember("k", &WINDOW, 2, At::Caller(0), &refusal(400));
        assert_eq!(
            cache.refused("k", &WINDOW, 1, At::Caller(1)),
            None,
            "another cost"
        );
        let other_rate = Native::FixedWindow {
            period: 1_000,
            limit: 50,
        };
        assert_eq!(
            cache.refused("k", &other_rate, 2, At::Caller(1)),
            None,
            "another rate"
        );
        assert_eq!(
            cache.refused("j", &WINDOW, 2, At::Caller(1)),
            None,
            "another key"
        );
        assert!(cache.refused("k", &WINDOW, 2, At::Caller(1)).is_some());
    }

    #[test]
    fn admissions_and_waitless_refusals_are_not_kept() {
        let cache = DenyCache::new(100);
        let allowed = Decision {
            outcome: Outcome::Allowed,
            ..refusal(0)
        };
        cache.remember("a", &WINDOW, 1, At::Caller(0), &allowed);
        cache.remember("b", &WINDOW, 1, At::Caller(0), &refusal(0));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn on_redis_time_the_wait_runs_from_when_the_call_was_sent() {
        let cache = DenyCache::new(100);
        let sent = Instant::now();
        cache.remember("k", &WINDOW, 1, At::Server(sent), &refusal(50));
        let left = cache
            .refused(
                "k",
                &WINDOW,
                1,
                At::Server(sent + Duration::from_millis(20)),
            )
            .map(|decision| decision.outcome);
        assert_eq!(
            left,
            Some(Outcome::Throttled {
                wait: Duration::from_millis(30)
            })
        );
        assert_eq!(
            cache.refused(
                "k",
                &WINDOW,
                1,
                At::Server(sent + Duration::from_millis(50))
            ),
            None
        );
    }

    #[test]
    fn the_cache_is_bounded_and_makes_room_from_ended_entries() {
        let cache = DenyCache::new(16);
        assert_eq!(cache.capacity(), 16);
        for i in 0..1_000 {
            cache.remember(&format!("k{i}"), &WINDOW, 1, At::Caller(0), &refusal(100));
        }
        assert!(cache.len() <= 16, "{}", cache.len());
        // Once those have ended, new refusals replace them.
        for i in 0..1_000 {
            cache.remember(&format!("n{i}"), &WINDOW, 1, At::Caller(200), &refusal(100));
        }
        assert!(cache.len() <= 16);
        assert!((0..1_000).any(|i| {
            cache
                .refused(&format!("n{i}"), &WINDOW, 1, At::Caller(250))
                .is_some()
        }));
    }

    #[test]
    fn forget_and_clear() {
        let cache = DenyCache::new(100);
        cache.remember("a", &WINDOW, 1, At::Caller(0), &refusal(100));
        cache.remember("b", &WINDOW, 1, At::Caller(0), &refusal(100));
        cache.forget("a");
        assert_eq!(cache.refused("a", &WINDOW, 1, At::Caller(1)), None);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_adaptive_limit_is_never_cached() {
        assert!(cacheable(&WINDOW));
        assert!(!cacheable(&Native::Adaptive {
            period: 1_000,
            limit: 10,
            floor: 1,
            step: 1,
            threshold: 0.5,
            reduction: 0.5,
            unsettled_windows: 1,
        }));
    }
}
