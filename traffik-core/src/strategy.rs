//! Strategies: each one a pure state transition.
//!
//! A [`Strategy`] takes the stored state for a key (or none), the hit (`now`, rate, cost,
//! context) and returns a [`Decision`], updating the state in place. It does no I/O, takes no
//! locks and reads no clock, so every backend can run it atomically in its own way (the
//! in-memory backend under the key's map entry; Redis as a Lua script that mirrors it; any
//! key-value store through the generic executor under a lock).
//!
//! Arithmetic is on integers (milliseconds and scaled units), so every backend computes the
//! same decision for the same inputs. One exception: the adaptive strategy compares demand with
//! `load_threshold × limit` and scales the limit by `reduction_factor` in `f64`, which a Redis
//! script computes with the same IEEE doubles. No strategy counts a refused hit: only admitted
//! cost is consumed (the adaptive strategy records refused demand as a load signal, separately
//! from the quota).
//!
//! | strategy | state | admits at once | notes |
//! |---|---|---|---|
//! | [`FixedWindow`] (default) | window id, count | `limit` per window; up to 2×`limit` across a boundary | O(1) |
//! | [`SlidingWindowCounter`] | window id, current, previous | ≈`limit` over any period | O(1), weighted estimate |
//! | [`SlidingWindowLog`] | (time, cost) log | exactly `limit` over any period | O(log n), ≤ min(limit, period/resolution) entries |
//! | [`TokenBucket`] | tokens, last refill | `burst` (default `limit`) | smooth refill |
//! | [`TokenBucketWithDebt`] | tokens (may be negative), last refill | `burst + max_debt` | overdraft repaid by refill |
//! | [`LeakyBucket`] | level, last leak | `capacity` (default `limit`) | meter: smooth drain |
//! | [`LeakyBucketWithQueue`] | FIFO of (time, cost) | `capacity` (default `limit`) | FIFO bookkeeping per request |
//! | [`Gcra`] | theoretical arrival time | `1 + burst_tolerance / interval` | single timestamp |
//! | [`Tiered`] | window id, count | `limit × multiplier(tier)` | tier from context |
//! | [`Adaptive`] | window id, count, demand, limit | an effective limit that follows load | adjusts once per window |
//! | [`Priority`] | window id, count | `limit × share(priority)` of one shared budget | priority from context |
//!
//! Strategies can be driven directly, with any clock you like:
//!
//! ```
//! use traffik_core::strategy::{Hit, SlidingWindowCounter, Strategy};
//! use traffik_core::{Context, Rate};
//!
//! let (strategy, context, rate) = (SlidingWindowCounter::new(), Context::new(), Rate::per_second(2));
//! let mut state = None;
//! for now in [0, 100] {
//!     assert!(strategy.apply(&mut state, &Hit::new(now, rate, 1, &context)).is_allowed());
//! }
//! let refused = strategy.apply(&mut state, &Hit::new(200, rate, 1, &context));
//! assert!(refused.is_throttled());
//! assert_eq!(strategy.stat(state.as_ref(), &Hit::new(200, rate, 1, &context)).hits_remaining, 0);
//! ```

mod adaptive;
mod codec;
mod cost_bucket;
mod erased;
mod fixed_window;
mod gcra;
mod leaky_bucket;
mod leaky_bucket_queue;
#[cfg(feature = "redis")]
pub(crate) mod native;
mod priority;
mod quota_rollover;
mod refund;
mod scale;
mod sliding_window_counter;
mod sliding_window_log;
mod tiered;
#[cfg(feature = "time-of-day")]
mod time_of_day;
mod token_bucket;
mod token_bucket_debt;

#[cfg(test)]
mod conformance;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Context, Decision, Millis, Rate, StrategyStat};

pub use adaptive::{Adaptive, AdaptiveStat, AdaptiveState};
pub use codec::{StateDecodeError, decode_state, encode_state};
pub use cost_bucket::{CostBasedTokenBucket, CostBasedTokenBucketStat, CostBucketState};
pub use erased::{DynStrategy, EncodedRefund, EncodedTransition, ErasedState};
pub use fixed_window::{FixedWindow, FixedWindowStat, WindowState};
pub use gcra::{Gcra, GcraStat, GcraState};
pub use leaky_bucket::{LeakyBucket, LeakyBucketStat, LeakyBucketState};
pub use leaky_bucket_queue::{
    LeakyBucketQueueState, LeakyBucketWithQueue, LeakyBucketWithQueueStat,
};
pub use priority::{Priority, PriorityLevel, PriorityStat};
pub use quota_rollover::{QuotaState, QuotaWithRollover, QuotaWithRolloverStat};
pub use refund::Refund;
pub use sliding_window_counter::{
    SlidingWindowCounter, SlidingWindowCounterStat, SlidingWindowCounterState,
};
pub use sliding_window_log::{SlidingWindowLog, SlidingWindowLogStat, SlidingWindowLogState};
pub use tiered::{Tiered, TieredStat};
#[cfg(feature = "time-of-day")]
pub use time_of_day::{TimeOfDay, TimeOfDayStat};
pub use token_bucket::{TokenBucket, TokenBucketStat, TokenBucketState};
pub use token_bucket_debt::{TokenBucketWithDebt, TokenBucketWithDebtStat};

/// One hit, as a strategy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// The current time.
    pub now: Millis,
    /// The rate in force (never unlimited: the throttle short-circuits those).
    pub rate: Rate,
    /// The cost of this hit (never 0 in `apply`: the throttle short-circuits those).
    pub cost: u64,
    /// The merged context of the hit.
    pub context: &'a Context,
}

impl<'a> Hit<'a> {
    /// A hit at `now` under `rate` costing `cost`, with `context`.
    #[must_use]
    pub fn new(now: Millis, rate: Rate, cost: u64, context: &'a Context) -> Self {
        Hit {
            now,
            rate,
            cost,
            context,
        }
    }
}

/// A rate-limiting algorithm as a pure state transition.
///
/// Implement it for your own algorithm and it runs on every backend (see
/// [`KeyValueBackend`](crate::backend::KeyValueBackend) for custom stores); the state is
/// stored encoded with [`encode_state`] where a backend needs bytes.
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
/// use traffik_core::strategy::{Hit, Strategy, StrategyConfigError};
/// use traffik_core::{Decision, Millis, Rate, StatMetadata, StrategyStat};
///
/// /// Admits `limit` hits, ever (until the key expires after one idle period).
/// #[derive(Debug, Clone, Copy)]
/// struct Lifetime;
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct Used { count: u64, last: Millis }
///
/// impl Strategy for Lifetime {
///     type State = Used;
///     const NAME: &'static str = "lifetime";
///
///     fn apply(&self, state: &mut Option<Used>, hit: &Hit<'_>) -> Decision {
///         let used = state.get_or_insert(Used { count: 0, last: hit.now });
///         let limit = hit.rate.limit();
///         if used.count + hit.cost <= limit {
///             used.count += hit.cost;
///             used.last = hit.now;
///             Decision::allowed(limit, limit - used.count, hit.rate.period())
///         } else {
///             Decision::throttled(limit, limit - used.count, hit.rate.period(), hit.rate.period())
///         }
///     }
///
///     fn stat(&self, state: Option<&Used>, hit: &Hit<'_>) -> StrategyStat {
///         let count = state.map_or(0, |s| s.count);
///         StrategyStat::new(hit.rate, hit.rate.limit().saturating_sub(count), Duration::ZERO, StatMetadata::None)
///     }
///
///     fn expires_at(&self, state: &Used, rate: &Rate) -> Millis {
///         state.last + rate.period_ms()
///     }
/// }
/// ```
pub trait Strategy: Send + Sync + Debug + 'static {
    /// The state stored per key: small, plain integers, serialisable.
    type State: Clone + Send + Sync + Debug + Serialize + DeserializeOwned + 'static;

    /// A stable, short name: part of the storage key, so two strategies never read each
    /// other's state.
    const NAME: &'static str;

    /// The version of the stored state's encoding. Bump it when the encoding changes: state
    /// written with another version is treated as absent rather than misread.
    const STATE_VERSION: u32 = 1;

    /// Decides one hit and updates `state` in place (set it to `None` to delete the key).
    fn apply(&self, state: &mut Option<Self::State>, hit: &Hit<'_>) -> Decision;

    /// Returns a charge this strategy admitted, as if the hit had never been admitted.
    ///
    /// `hit` is the admitted hit as it was charged: its `now` is the time of the charge (not
    /// the time of the refund), with the same rate, cost and context. The built-in strategies
    /// return exactly what the charge still holds: the count of the charge's window (nothing
    /// once that window has ended), the log entry (nothing once aged out), the bucket's level
    /// or the GCRA schedule (capped where a full bucket or an idle schedule already forgot the
    /// charge). A refund that follows its charge closely, as the engine's do, restores the
    /// budget exactly; one made after later hits found the bucket full (or the schedule idle)
    /// can return a little more than the charge still held.
    ///
    /// The default returns [`Refund::Unsupported`] and changes nothing: a custom strategy that
    /// does not implement it keeps every charge.
    fn refund(&self, state: &mut Option<Self::State>, hit: &Hit<'_>) -> Refund {
        let _ = (state, hit);
        Refund::Unsupported
    }

    /// Reports the state without changing it (`hit.cost` is ignored: the wait is for one unit).
    fn stat(&self, state: Option<&Self::State>, hit: &Hit<'_>) -> StrategyStat;

    /// The time from which `state` means the same as no state at all, so the key can be
    /// dropped (the backend's expiry for the key).
    fn expires_at(&self, state: &Self::State, rate: &Rate) -> Millis;

    /// Checks the strategy's parameters against a rate; called when a throttle is built.
    ///
    /// # Errors
    ///
    /// A [`StrategyConfigError`] naming the parameter that cannot work with `rate`.
    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let _ = rate;
        Ok(())
    }

    /// Optionally packs the state into three words, so the in-memory backend keeps it inline
    /// in the map entry: no allocation per key and one pointer less to follow per decision.
    /// The default (`None`) stores the state boxed. Implement it together with [`unpack`](Self::unpack).
    #[must_use]
    fn pack(state: &Self::State) -> Option<[u64; 3]> {
        let _ = state;
        None
    }

    /// The inverse of [`pack`](Self::pack).
    #[must_use]
    fn unpack(words: [u64; 3]) -> Option<Self::State> {
        let _ = words;
        None
    }
}

/// A strategy parameter that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("strategy `{strategy}`: parameter `{parameter}` {reason}")]
pub struct StrategyConfigError {
    /// The strategy's name.
    pub strategy: &'static str,
    /// The parameter at fault.
    pub parameter: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl StrategyConfigError {
    pub(crate) fn new(
        strategy: &'static str,
        parameter: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        StrategyConfigError {
            strategy,
            parameter,
            reason: reason.into(),
        }
    }
}

/// Milliseconds as a `Duration`, saturating.
#[inline]
pub(crate) fn millis(ms: u128) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
