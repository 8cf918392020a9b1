//! [`StrategyStat`]: a read-only report of a key's state.

use std::time::Duration;

use crate::Rate;
use crate::strategy::{
    AdaptiveStat, FixedWindowStat, GcraStat, LeakyBucketStat, LeakyBucketWithQueueStat,
    PriorityStat, SlidingWindowCounterStat, SlidingWindowLogStat, TieredStat, TokenBucketStat,
    TokenBucketWithDebtStat,
};

/// What a strategy reports about one key, without consuming anything.
///
/// ```
/// use traffik_core::{MemoryBackend, StatMetadata, Throttle};
/// use traffik_core::strategy::FixedWindow;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let throttle = Throttle::builder("stat-doc", "10/min").strategy(FixedWindow::new()).backend(MemoryBackend::new()).build()?;
/// throttle.hit("alice").await?;
/// let stat = throttle.stat("alice").await?.expect("alice is not exempted");
/// assert_eq!(stat.hits_remaining, 9);
/// if let StatMetadata::FixedWindow(window) = stat.metadata {
///     assert_eq!(window.current_count, 1);
///     assert_eq!(window.window_end_ms - window.window_start_ms, 60_000);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyStat {
    /// The storage key the stat was read from (empty when computed outside a backend).
    pub key: String,
    /// The rate in force.
    pub rate: Rate,
    /// Whole units the client may still spend right now.
    pub hits_remaining: u64,
    /// How long until one more unit is available (zero if one is available now).
    pub wait: Duration,
    /// Strategy-specific details.
    pub metadata: StatMetadata,
}

impl StrategyStat {
    /// A stat with no key yet (the backend fills it in).
    #[must_use]
    pub fn new(rate: Rate, hits_remaining: u64, wait: Duration, metadata: StatMetadata) -> Self {
        StrategyStat {
            key: String::new(),
            rate,
            hits_remaining,
            wait,
            metadata,
        }
    }
}

/// Typed, strategy-specific details of a [`StrategyStat`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StatMetadata {
    /// No details (unlimited rates, exempted clients, custom strategies without any).
    None,
    /// From [`FixedWindow`](crate::strategy::FixedWindow).
    FixedWindow(FixedWindowStat),
    /// From [`SlidingWindowCounter`](crate::strategy::SlidingWindowCounter).
    SlidingWindowCounter(SlidingWindowCounterStat),
    /// From [`SlidingWindowLog`](crate::strategy::SlidingWindowLog).
    SlidingWindowLog(SlidingWindowLogStat),
    /// From [`TokenBucket`](crate::strategy::TokenBucket).
    TokenBucket(TokenBucketStat),
    /// From [`TokenBucketWithDebt`](crate::strategy::TokenBucketWithDebt).
    TokenBucketWithDebt(TokenBucketWithDebtStat),
    /// From [`LeakyBucket`](crate::strategy::LeakyBucket).
    LeakyBucket(LeakyBucketStat),
    /// From [`LeakyBucketWithQueue`](crate::strategy::LeakyBucketWithQueue).
    LeakyBucketWithQueue(LeakyBucketWithQueueStat),
    /// From [`Gcra`](crate::strategy::Gcra).
    Gcra(GcraStat),
    /// From [`Tiered`](crate::strategy::Tiered).
    Tiered(TieredStat),
    /// From [`CostBasedTokenBucket`](crate::strategy::CostBasedTokenBucket).
    CostBasedTokenBucket(crate::strategy::CostBasedTokenBucketStat),
    /// From [`QuotaWithRollover`](crate::strategy::QuotaWithRollover).
    QuotaWithRollover(crate::strategy::QuotaWithRolloverStat),
    /// From [`TimeOfDay`](crate::strategy::TimeOfDay).
    #[cfg(feature = "time-of-day")]
    TimeOfDay(crate::strategy::TimeOfDayStat),
    /// From [`Adaptive`](crate::strategy::Adaptive).
    Adaptive(AdaptiveStat),
    /// From [`Priority`](crate::strategy::Priority).
    Priority(PriorityStat),
    /// From a custom strategy.
    Custom(serde_json::Value),
}
