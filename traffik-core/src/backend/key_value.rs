//! The key-value + lock contract (the reference's backend API), for custom stores and custom
//! strategies.

use std::fmt::Debug;
use std::time::Duration;

use super::{BackendFuture, LockGuard, LockOptions};
use crate::strategy::Hit;
use crate::{Decision, MaybeReady, StrategyStat};

/// A store of string values with atomic counters, expiry and named locks.
///
/// Implement it for any store (DynamoDB, a SQL table, …) and wrap it in a
/// [`KeyValueBackend`](super::KeyValueBackend) to get every built-in strategy on it. TTLs are
/// in milliseconds of precision (`Duration`); a store with coarser expiry rounds up. A complete
/// implementation over a `BTreeMap` is in `examples/examples/custom_store.rs`; the in-memory
/// backend implements it too:
///
/// ```
/// use std::time::Duration;
/// use traffik_core::MemoryBackend;
/// use traffik_core::backend::{KeyValueStore, LockOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), traffik_core::backend::BackendError> {
/// let store = MemoryBackend::new();
/// assert_eq!(store.increment_with_ttl("hits", 1, Duration::from_secs(60)).await?, 1);
/// assert_eq!(store.increment_with_ttl("hits", 1, Duration::from_secs(60)).await?, 2);
/// let lock = store.lock("lock:hits", LockOptions::default()).await?;
/// lock.release().await?;
/// # Ok(()) }
/// ```
pub trait KeyValueStore: Send + Sync + Debug + 'static {
    /// A short name for logs and errors.
    fn name(&self) -> &str;

    /// The value at `key`, if any (and not expired).
    fn get<'a>(&'a self, key: &'a str) -> BackendFuture<'a, Option<String>>;

    /// Stores `value` at `key`, expiring after `ttl` (never, with `None`).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BackendFuture<'a, ()>;

    /// Deletes `key`; whether it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BackendFuture<'a, bool>;

    /// Adds `amount` to the integer at `key` (a missing key counts from 0); the new value.
    fn increment<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64>;

    /// Subtracts `amount`; the new value.
    fn decrement<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64> {
        self.increment(key, amount.saturating_neg())
    }

    /// Sets `key` to expire after `ttl`; whether the key exists.
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BackendFuture<'a, bool>;

    /// Atomically adds `amount` and, if the key has no expiry (this created it, or it lost its
    /// TTL: a client that died between its increment and its expire, an operator's `PERSIST`),
    /// sets its `ttl`; a key with an expiry keeps it. So a counter never outlives its window for
    /// good. The in-memory and Redis backends do it in one atomic step. The default runs
    /// `increment`, then `expire` when the increment created the key: the contract cannot read a
    /// key's TTL, so a store that can lose one should override it as they do.
    fn increment_with_ttl<'a>(
        &'a self,
        key: &'a str,
        amount: i64,
        ttl: Duration,
    ) -> BackendFuture<'a, i64> {
        MaybeReady::boxed(async move {
            let value = self.increment(key, amount).await?;
            if value == amount {
                self.expire(key, ttl).await?;
            }
            Ok(value)
        })
    }

    /// The values at `keys`, in order. The default reads them one by one.
    fn multi_get<'a>(&'a self, keys: &'a [&'a str]) -> BackendFuture<'a, Vec<Option<String>>> {
        MaybeReady::boxed(async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.get(key).await?);
            }
            Ok(values)
        })
    }

    /// Takes the named lock (see [`LockOptions`]).
    fn lock<'a>(&'a self, name: &'a str, options: LockOptions) -> BackendFuture<'a, LockGuard>;

    /// The lock settings this store was configured with (from code or the
    /// `TRAFFIK_DEFAULT_*` environment variables), for strategies that lock.
    fn lock_options(&self) -> LockOptions {
        LockOptions::default()
    }
}

/// A custom strategy written against the [`KeyValueStore`] contract (like the reference's
/// custom strategies), rather than as a pure [`Strategy`](crate::strategy::Strategy).
///
/// It runs on any backend that exposes the contract ([`Backend::key_value`](super::Backend::key_value)):
/// the in-memory backend, [`KeyValueBackend`](super::KeyValueBackend)s and Redis.
/// It is responsible for its own atomicity (use [`KeyValueStore::lock`] or atomic counters).
///
/// ```
/// use std::time::Duration;
/// use traffik_core::backend::{BackendFuture, KeyValueStore, KeyValueStrategy};
/// use traffik_core::strategy::Hit;
/// use traffik_core::{Decision, MaybeReady, MemoryBackend, StatMetadata, StrategyStat, Throttle};
///
/// /// Counts hits per period with one atomic counter (no lock needed).
/// #[derive(Debug)]
/// struct Counter;
///
/// impl KeyValueStrategy for Counter {
///     fn name(&self) -> &'static str {
///         "counter"
///     }
///
///     fn hit<'a>(&'a self, store: &'a dyn KeyValueStore, key: &'a str, hit: Hit<'a>) -> BackendFuture<'a, Decision> {
///         MaybeReady::boxed(async move {
///             let used = store.increment_with_ttl(key, hit.cost as i64, hit.rate.period()).await? as u64;
///             let limit = hit.rate.limit();
///             Ok(if used <= limit {
///                 Decision::allowed(limit, limit - used, hit.rate.period())
///             } else {
///                 Decision::throttled(limit, 0, hit.rate.period(), hit.rate.period())
///             })
///         })
///     }
///
///     fn stat<'a>(&'a self, store: &'a dyn KeyValueStore, key: &'a str, hit: Hit<'a>) -> BackendFuture<'a, StrategyStat> {
///         MaybeReady::boxed(async move {
///             let used: u64 = store.get(key).await?.and_then(|v| v.parse().ok()).unwrap_or(0);
///             Ok(StrategyStat::new(hit.rate, hit.rate.limit().saturating_sub(used), Duration::ZERO, StatMetadata::None))
///         })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let throttle = Throttle::builder("counted", "2/min").key_value_strategy(Counter).backend(MemoryBackend::new()).build()?;
/// assert!(throttle.hit("a").await?.is_allowed());
/// assert!(throttle.hit("a").await?.is_allowed());
/// assert!(throttle.hit("a").await?.is_throttled());
/// # Ok(()) }
/// ```
pub trait KeyValueStrategy: Send + Sync + Debug + 'static {
    /// A stable, short name, part of the storage key.
    fn name(&self) -> &'static str;

    /// Decides one hit on `key`.
    fn hit<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, Decision>;

    /// Reports `key` without consuming.
    fn stat<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat>;
}
