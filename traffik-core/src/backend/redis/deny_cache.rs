//! [`DenyCache`]: the clients Redis refused, refused again here without a Redis call until
//! their wait is over (`RedisBackendBuilder::deny_cache`).
//!
//! **Exact**: an entry answers only a hit identical to the refused one (the same key, the same
//! strategy parameters, the same cost) and only until the refusal's wait ends. Without a
//! refund, nothing makes a refused hit admissible sooner than its wait (other hits only
//! consume), so the cache never refuses what Redis would admit, and it never admits at all. On
//! Redis's clock the wait is counted from the moment the call was *sent* (Redis decided later),
//! less 1 ms (`TIME` is read in whole ms, rounded down) and 0.1 % of the wait (Redis's clock
//! may be slewed against this host's monotonic one), so the entry ends no later than Redis's
//! own wait. A forget or clear between sending a call and keeping its refusal wins: each shard
//! has a generation, and a refusal decided before the shard changed is not kept.
//!
//! Not seen: a refund or a `reset` made by another instance, or another instance deciding the
//! key with other parameters (a rate changed mid-deploy). Each is visible at the end of the
//! cached wait at the latest.
//!
//! **Bounded**: at most `capacity` entries (rounded up to a multiple of 16), in 16 shards; a
//! full shard drops its ended entries once its earliest entry has ended, and until then the
//! new refusal is simply not cached (the next hit asks Redis, as without a cache).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::strategy::native::Native;
use crate::{Decision, Millis, Outcome};

const SHARDS: usize = 16;

/// A time on the clock decisions run on: this host's monotonic clock for decisions on Redis
/// `TIME` (waits are durations from when the call was sent), else the `now` (ms) sent with the
/// decision (the caller's clock, or the estimate of Redis's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// Decisions on Redis `TIME`.
    Server(Instant),
    /// Decisions on a `now` sent with them (ms).
    Sent(Millis),
}

impl At {
    /// When a refusal with `wait`, decided at `self` (or, on Redis's clock, after `self`), ends
    /// for certain: on a sent clock exactly `self + wait`; on Redis's, 1 ms and 0.1 % of
    /// the wait sooner (`None` when that leaves nothing to keep).
    fn after(self, wait: Duration) -> Option<At> {
        match self {
            At::Server(instant) => {
                let margin = Duration::from_millis(1) + wait / 1_000;
                let kept = wait.checked_sub(margin).filter(|kept| !kept.is_zero())?;
                Some(At::Server(instant + kept))
            }
            At::Sent(ms) => {
                let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                (wait > 0).then(|| At::Sent(ms.saturating_add(wait)))
            }
        }
    }

    /// Whether `self` comes before `other` (on the same clock).
    fn before(self, other: At) -> bool {
        match (self, other) {
            (At::Server(a), At::Server(b)) => a < b,
            (At::Sent(a), At::Sent(b)) => a < b,
            _ => false,
        }
    }

    /// How long from `now` until `self` (`None` once reached, or on another clock).
    fn left(self, now: At) -> Option<Duration> {
        match (self, now) {
            (At::Server(until), At::Server(now)) => {
                Some(until.saturating_duration_since(now)).filter(|left| !left.is_zero())
            }
            (At::Sent(until), At::Sent(now)) => {
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

/// One shard: refusals by storage key, its generation (moved on by every forget and clear),
/// and the earliest end of its entries (a full shard is swept only once that has passed).
#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Box<str>, Entry>,
    generation: u64,
    earliest: Option<At>,
}

/// What [`DenyCache::ticket`] hands out before a call: the shard's generation then.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

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
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
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
        let entry = shard.entries.get(key)?;
        if entry.native != *native || entry.cost != cost {
            return None;
        }
        let Some(left) = entry.until.left(now) else {
            shard.entries.remove(key);
            return None;
        };
        let passed = entry.wait.saturating_sub(left);
        Some(Decision {
            outcome: Outcome::Throttled { wait: left },
            reset: entry.refused.reset.saturating_sub(passed),
            ..entry.refused
        })
    }

    /// Taken before a call to Redis, and given back to [`remember`](Self::remember) with its
    /// answer: a forget or clear in between makes the answer too old to keep.
    pub(super) fn ticket(&self, key: &str) -> Ticket {
        Ticket(self.shard(key).generation)
    }

    /// Keeps `decision` if it is a refusal with a wait, for hits like this one (`sent`: when
    /// the call that decided it was sent, or the hit's `now` on the caller's clock), unless the
    /// shard changed since `ticket` was taken.
    pub(super) fn remember(
        &self,
        key: &str,
        native: &Native,
        cost: u64,
        (sent, ticket): (At, Ticket),
        decision: &Decision,
    ) {
        let Outcome::Throttled { wait } = decision.outcome else {
            return;
        };
        let Some(until) = sent.after(wait) else {
            return;
        };
        let mut shard = self.shard(key);
        if shard.generation != ticket.0 {
            return;
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(key) {
            // Sweep only once something has ended: a full shard of live refusals stays as it
            // is, at no cost, and this refusal is not kept.
            if !shard.earliest.is_some_and(|earliest| earliest.before(sent)) {
                return;
            }
            shard
                .entries
                .retain(|_, entry| entry.until.left(sent).is_some());
            shard.earliest = shard
                .entries
                .values()
                .map(|entry| entry.until)
                .reduce(|a, b| if a.before(b) { a } else { b });
            if shard.entries.len() >= self.per_shard {
                return;
            }
        }
        if !shard
            .earliest
            .is_some_and(|earliest| earliest.before(until))
        {
            shard.earliest = Some(until);
        }
        shard.entries.insert(
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

    /// Forgets `key` (a refund on it may admit sooner, another decision changed it), and
    /// whatever calls in flight on its shard would bring back.
    pub(super) fn forget(&self, key: &str) {
        let mut shard = self.shard(key);
        shard.generation += 1;
        shard.entries.remove(key);
    }

    /// Forgets everything (a reset, a close), and whatever calls in flight would bring back.
    pub(super) fn clear(&self) {
        for shard in &*self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.generation += 1;
            shard.entries.clear();
            shard.earliest = None;
        }
    }

    /// The refusals kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
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

    /// Takes a ticket and keeps `decision` with it at once (no call in between).
    fn keep(cache: &DenyCache, key: &str, native: &Native, cost: u64, at: At, decision: &Decision) {
        let ticket = cache.ticket(key);
        cache.remember(key, native, cost, (at, ticket), decision);
    }

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
        keep(&cache, "k", &WINDOW, 1, At::Sent(10_000), &refusal(400));
        let at = |ms| cache.refused("k", &WINDOW, 1, At::Sent(ms));
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
        keep(&cache, "k", &WINDOW, 2, At::Sent(0), &refusal(400));
        assert_eq!(
            cache.refused("k", &WINDOW, 1, At::Sent(1)),
            None,
            "another cost"
        );
        let other_rate = Native::FixedWindow {
            period: 1_000,
            limit: 50,
        };
        assert_eq!(
            cache.refused("k", &other_rate, 2, At::Sent(1)),
            None,
            "another rate"
        );
        assert_eq!(
            cache.refused("j", &WINDOW, 2, At::Sent(1)),
            None,
            "another key"
        );
        assert!(cache.refused("k", &WINDOW, 2, At::Sent(1)).is_some());
    }

    #[test]
    fn admissions_and_waitless_refusals_are_not_kept() {
        let cache = DenyCache::new(100);
        let allowed = Decision {
            outcome: Outcome::Allowed,
            ..refusal(0)
        };
        keep(&cache, "a", &WINDOW, 1, At::Sent(0), &allowed);
        keep(&cache, "b", &WINDOW, 1, At::Sent(0), &refusal(0));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn on_redis_time_the_wait_runs_from_when_the_call_was_sent_less_a_margin() {
        let cache = DenyCache::new(100);
        let sent = Instant::now();
        // 2 000 ms, less 1 ms (TIME's rounding) and 2 ms (0.1 % for clock slew).
        keep(&cache, "k", &WINDOW, 1, At::Server(sent), &refusal(2_000));
        let halfway = At::Server(sent + Duration::from_millis(1_000));
        let left = cache
            .refused("k", &WINDOW, 1, halfway)
            .map(|decision| decision.outcome);
        let expected = Outcome::Throttled {
            wait: Duration::from_millis(997),
        };
        assert_eq!(left, Some(expected));
        let at_end = At::Server(sent + Duration::from_millis(1_997));
        assert_eq!(cache.refused("k", &WINDOW, 1, at_end), None);
        // A wait no longer than the margin is not kept at all.
        keep(&cache, "short", &WINDOW, 1, At::Server(sent), &refusal(1));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_refusal_decided_before_a_forget_or_clear_is_not_kept() {
        let cache = DenyCache::new(100);
        let ticket = cache.ticket("k");
        cache.forget("k"); // a refund landed while the call was out
        cache.remember("k", &WINDOW, 1, (At::Sent(0), ticket), &refusal(400));
        assert_eq!(cache.refused("k", &WINDOW, 1, At::Sent(1)), None);
        let ticket = cache.ticket("k");
        cache.clear(); // a reset
        cache.remember("k", &WINDOW, 1, (At::Sent(0), ticket), &refusal(400));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded_and_makes_room_from_ended_entries() {
        let cache = DenyCache::new(16);
        assert_eq!(cache.capacity(), 16);
        for i in 0..1_000 {
            keep(
                &cache,
                &format!("k{i}"),
                &WINDOW,
                1,
                At::Sent(0),
                &refusal(100),
            );
        }
        assert!(cache.len() <= 16, "{}", cache.len());
        // Once those have ended, new refusals replace them.
        for i in 0..1_000 {
            keep(
                &cache,
                &format!("n{i}"),
                &WINDOW,
                1,
                At::Sent(200),
                &refusal(100),
            );
        }
        assert!(cache.len() <= 16);
        assert!((0..1_000).any(|i| {
            cache
                .refused(&format!("n{i}"), &WINDOW, 1, At::Sent(250))
                .is_some()
        }));
    }

    #[test]
    fn forget_and_clear() {
        let cache = DenyCache::new(100);
        keep(&cache, "a", &WINDOW, 1, At::Sent(0), &refusal(100));
        keep(&cache, "b", &WINDOW, 1, At::Sent(0), &refusal(100));
        cache.forget("a");
        assert_eq!(cache.refused("a", &WINDOW, 1, At::Sent(1)), None);
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
