//! The backend contract suite: the same checks for every backend, so all backends are held to
//! identical semantics. Each backend's test file calls these with a fresh backend.
//!
//! Time is a [`ManualClock`] that drives every hit's `now` (and, for backends that take one, the
//! backend's own expiry clock).

pub mod contract;
pub mod memcached_server;
pub mod redis_sentinel;
pub mod redis_server;
pub mod sequence;

use std::sync::Arc;

use traffik_core::backend::{Backend, KeyValueBackend, LockOptions};
use traffik_core::strategy::{
    Adaptive, CostBasedTokenBucket, FixedWindow, Gcra, LeakyBucket, LeakyBucketWithQueue, Priority,
    QuotaWithRollover, SlidingWindowCounter, SlidingWindowLog, Strategy, Tiered, TimeOfDay,
    TokenBucket, TokenBucketWithDebt,
};
use traffik_core::throttle::ThrottleBuilder;
use traffik_core::{ManualClock, MemoryBackend, Throttle, ThrottleRegistry};

/// An in-memory backend on `clock`, under `namespace`.
pub fn memory(clock: &ManualClock, namespace: &str) -> MemoryBackend {
    MemoryBackend::builder()
        .namespace(namespace)
        .clock(clock.clone())
        .lock_options(LockOptions::default())
        .build()
        .expect("a valid in-memory backend")
}

/// The in-process backends: the in-memory backend itself, and the generic key-value executor
/// (read-apply-write under a lock) over an in-memory store.
pub fn memory_backends(clock: &ManualClock) -> Vec<(&'static str, Arc<dyn Backend>)> {
    let executor = KeyValueBackend::new(memory(clock, "store"), "kv").expect("a valid namespace");
    vec![
        ("memory", Arc::new(memory(clock, "mem"))),
        ("key-value executor over memory", Arc::new(executor)),
    ]
}

/// A throttle builder for a strategy, by name.
pub type Configure = fn(ThrottleBuilder<str>) -> ThrottleBuilder<str>;

/// Every built-in strategy, configured so that it can admit the rate's whole limit at once.
pub fn every_strategy() -> Vec<(&'static str, Configure)> {
    vec![
        ("fixed-window", |b| b.strategy(FixedWindow::new())),
        ("sliding-window-counter", |b| {
            b.strategy(SlidingWindowCounter::new())
        }),
        ("sliding-window-log", |b| {
            b.strategy(SlidingWindowLog::new())
        }),
        ("token-bucket", |b| b.strategy(TokenBucket::new())),
        ("token-bucket-debt", |b| {
            b.strategy(TokenBucketWithDebt::new(0))
        }),
        ("leaky-bucket", |b| b.strategy(LeakyBucket::new())),
        ("leaky-bucket-queue", |b| {
            b.strategy(LeakyBucketWithQueue::new())
        }),
        ("gcra", |b| b.strategy(Gcra::new().burst(10))),
        ("tiered", |b| b.strategy(Tiered::new())),
        ("priority", |b| {
            b.strategy(
                Priority::new()
                    .share(traffik_core::strategy::PriorityLevel::Normal, 1.0)
                    .share(traffik_core::strategy::PriorityLevel::High, 1.0),
            )
        }),
        ("adaptive", |b| b.strategy(Adaptive::new())),
        ("time-of-day", |b| b.strategy(time_of_day())),
        ("quota-rollover", |b| {
            b.strategy(QuotaWithRollover::new(0.5, 5))
        }),
        ("cost-bucket", |b| {
            b.strategy(CostBasedTokenBucket::new().cost_window(3))
        }),
    ]
}

/// The time-of-day strategy as the suite runs it: the limit doubles from 22:30 to 22:40 UTC,
/// which the differential checks (starting at 22:13 UTC on their clock) cross in their second
/// seed; the other checks, which expect the rate's own limit, run outside it.
pub fn time_of_day() -> TimeOfDay {
    TimeOfDay::new("UTC").window("22:30", "22:40", 2.0)
}

/// Calls `$builder.strategy(..)` (on any throttle builder) with the built-in strategy named
/// `$name`, configured as in [`every_strategy`].
#[macro_export]
macro_rules! with_strategy {
    ($builder:expr, $name:expr) => {{
        use $crate::strategies::*;
        match $name {
            "fixed-window" => $builder.strategy(FixedWindow::new()),
            "sliding-window-counter" => $builder.strategy(SlidingWindowCounter::new()),
            "sliding-window-log" => $builder.strategy(SlidingWindowLog::new()),
            "token-bucket" => $builder.strategy(TokenBucket::new()),
            "token-bucket-debt" => $builder.strategy(TokenBucketWithDebt::new(0)),
            "leaky-bucket" => $builder.strategy(LeakyBucket::new()),
            "leaky-bucket-queue" => $builder.strategy(LeakyBucketWithQueue::new()),
            "gcra" => $builder.strategy(Gcra::new().burst(10)),
            "tiered" => $builder.strategy(Tiered::new()),
            "priority" => $builder.strategy(
                Priority::new()
                    .share(PriorityLevel::Normal, 1.0)
                    .share(PriorityLevel::High, 1.0),
            ),
            "adaptive" => $builder.strategy(Adaptive::new()),
            "time-of-day" => $builder.strategy($crate::time_of_day()),
            "quota-rollover" => $builder.strategy(QuotaWithRollover::new(0.5, 5)),
            "cost-bucket" => $builder.strategy(CostBasedTokenBucket::new().cost_window(3)),
            other => panic!("unknown strategy {other}"),
        }
    }};
}

/// The strategy types [`with_strategy!`] names.
pub mod strategies {
    pub use traffik_core::strategy::{
        Adaptive, CostBasedTokenBucket, FixedWindow, Gcra, LeakyBucket, LeakyBucketWithQueue,
        Priority, PriorityLevel, QuotaWithRollover, SlidingWindowCounter, SlidingWindowLog, Tiered,
        TokenBucket, TokenBucketWithDebt,
    };
}

/// A throttle on `backend` limited to `rate`, using `configure`'s strategy, in its own registry.
pub fn throttle(
    uid: &str,
    rate: &str,
    configure: Configure,
    backend: Arc<dyn Backend>,
    clock: &ManualClock,
) -> Throttle {
    configure(Throttle::builder(uid, rate))
        .shared_backend(backend)
        .registry(&ThrottleRegistry::new())
        .clock(clock.clone())
        .build()
        .expect("a valid throttle")
}

/// Runs `strategy` directly (no backend) for the differential checks.
pub fn strategy_by_name(name: &str) -> Box<dyn traffik_core::strategy::DynStrategy> {
    fn boxed<S: Strategy>(strategy: S) -> Box<dyn traffik_core::strategy::DynStrategy> {
        Box::new(strategy)
    }
    match name {
        "fixed-window" => boxed(FixedWindow::new()),
        "sliding-window-counter" => boxed(SlidingWindowCounter::new()),
        "sliding-window-log" => boxed(SlidingWindowLog::new()),
        "token-bucket" => boxed(TokenBucket::new()),
        "token-bucket-debt" => boxed(TokenBucketWithDebt::new(0)),
        "leaky-bucket" => boxed(LeakyBucket::new()),
        "leaky-bucket-queue" => boxed(LeakyBucketWithQueue::new()),
        "gcra" => boxed(Gcra::new().burst(10)),
        "tiered" => boxed(Tiered::new()),
        "priority" => boxed(
            Priority::new()
                .share(traffik_core::strategy::PriorityLevel::Normal, 1.0)
                .share(traffik_core::strategy::PriorityLevel::High, 1.0),
        ),
        "adaptive" => boxed(Adaptive::new()),
        "time-of-day" => boxed(time_of_day()),
        "quota-rollover" => boxed(QuotaWithRollover::new(0.5, 5)),
        "cost-bucket" => boxed(CostBasedTokenBucket::new().cost_window(3)),
        other => panic!("unknown strategy {other}"),
    }
}
