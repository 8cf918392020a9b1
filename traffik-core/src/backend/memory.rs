//! [`MemoryBackend`]: state in this process, on a sharded map (64 shards, each a mutex over a
//! `hashbrown` table).

mod builder;
mod key_value;
mod lane;
mod lock;
mod metrics;
mod stamp;
mod store;
mod sweeper;
mod table;
mod tables;
mod tail;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

pub use self::builder::MemoryBackendBuilder;
pub(crate) use self::lane::MemoryLane;
use self::lock::Locks;
use self::store::{Store, closed};
use super::{
    Backend, BackendError, BackendFuture, BackendSettings, KeyValueStore, KeyedHit, Lane,
    LockOptions, Mode, StoreId,
};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Clock, ConfigError, Decision, MaybeReady, Millis, StrategyStat};

/// The default cap on stored keys.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// The default time between sweeps of expired keys.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Throttle state in this process.
///
/// Each decision runs the strategy while holding the key's shard of the map: synchronous,
/// atomic, no `.await` under the lock, and no allocation once the key exists. A decision over
/// several limits ([`Backend::decide_all`]) holds every shard its keys live in at once, locked
/// in ascending order, so it is atomic too. Keys expire exactly when
/// their state no longer matters (the window ends, the bucket is full again); a background
/// sweeper drops them, and a hard cap bounds memory against floods of distinct identities.
///
/// **When full** (`max_keys`, default 1,000,000): before a new key goes in, expired keys are
/// swept (at most every 100 ms); if the map is still full, the key closest to expiry among a
/// sample of 16 is evicted, so new clients are always tracked and the clients evicted are the
/// ones about to be forgotten anyway. A warning is logged the first time.
///
/// Clones share the same store; [`with_namespace`](Self::with_namespace) gives another
/// namespace over the same store (one memory budget, separate [`reset`](Backend::reset)).
///
/// ```
/// use std::time::Duration;
/// use traffik_core::MemoryBackend;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), traffik_core::ConfigError> {
/// let backend = MemoryBackend::builder()
///     .namespace("api")
///     .max_keys(100_000)
///     .sweep_interval(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(backend.len(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
    /// Per handle: [`with_namespace`](MemoryBackend::with_namespace) shares the store.
    settings: Arc<BackendSettings>,
}

struct Shared {
    store: Arc<Store>,
    locks: Arc<Locks>,
    clock: Arc<dyn Clock>,
    shutdown: Arc<Notify>,
    sweeper_alive: Arc<AtomicBool>,
    max_keys: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown.notify_one();
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    /// A backend with the defaults: namespace `"traffik"`, 1,000,000 keys, a sweep every 10 s.
    ///
    /// Lock settings come from the `TRAFFIK_DEFAULT_*` variables; if one is invalid it is
    /// reported (logged as an error) and the default used. Use [`builder`](Self::builder) to
    /// get the error instead.
    #[must_use]
    pub fn new() -> Self {
        let lock_options = LockOptions::from_env().unwrap_or_else(|error| {
            tracing::error!(target: "traffik", %error, "ignoring invalid lock settings; using the defaults");
            LockOptions::default()
        });
        match MemoryBackend::builder().lock_options(lock_options).build() {
            Ok(backend) => backend,
            Err(error) => {
                unreachable!("the default memory backend configuration is valid: {error}")
            }
        }
    }

    /// Configures a backend.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::new()
    }

    /// The same store under another namespace, with this handle's other settings (on-error
    /// policy, extensions, lock options).
    pub fn with_namespace(
        &self,
        namespace: impl Into<String>,
    ) -> Result<MemoryBackend, ConfigError> {
        Ok(MemoryBackend {
            shared: Arc::clone(&self.shared),
            settings: Arc::new(self.settings.renamed(namespace)?),
        })
    }

    /// Keys stored, across every namespace of this store.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.store.len()
    }

    /// Whether no key is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys stored at once.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.shared.max_keys
    }

    /// Drops expired keys now (the sweeper does this periodically); returns how many.
    pub fn sweep(&self) -> usize {
        self.shared.store.sweep(self.shared.clock.now())
    }

    /// Whether the background sweeper is running.
    #[must_use]
    pub fn sweeper_running(&self) -> bool {
        self.shared.sweeper_alive.load(Ordering::SeqCst)
    }

    fn is_closed(&self) -> bool {
        self.shared.store.is_closed()
    }

    fn now(&self) -> Millis {
        self.shared.clock.now()
    }

    fn check_open(&self) -> Result<(), BackendError> {
        if self.is_closed() {
            Err(closed())
        } else {
            Ok(())
        }
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn settings(&self) -> &BackendSettings {
        &self.settings
    }

    fn store_id(&self) -> StoreId {
        StoreId::of(&*self.shared)
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::ready(
            self.check_open()
                .map(|()| self.shared.store.decide(key, strategy, &hit, mode)),
        )
    }

    #[inline]
    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        Some(
            self.check_open()
                .map(|()| self.shared.store.decide(key, strategy, &hit, mode)),
        )
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::ready(
            self.check_open()
                .map(|()| self.shared.store.decide_all(hits, mode)),
        )
    }

    fn decide_all_now(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Option<Result<Vec<Decision>, BackendError>> {
        Some(
            self.check_open()
                .map(|()| self.shared.store.decide_all(hits, mode)),
        )
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        _now: Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::ready(
            self.check_open()
                .map(|()| self.shared.store.refund(key, strategy, &hit)),
        )
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::ready(self.check_open().map(|()| {
            let mut stat = self.shared.store.stat(key, strategy, &hit);
            stat.key = key.to_owned();
            stat
        }))
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        let prefix = crate::key::namespace_prefix(self.settings.namespace());
        MaybeReady::ready(self.check_open().map(|()| {
            self.shared.store.clear_prefix(&prefix);
        }))
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        if self.shared.store.close() {
            self.shared.shutdown.notify_one();
            self.shared.store.clear();
        }
        MaybeReady::ready(Ok(()))
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        Some(self)
    }

    fn lane(&self, prefix: &str, strategy: &dyn DynStrategy) -> Option<Lane> {
        let table = self.shared.store.table(prefix, strategy)?;
        Some(Lane::memory(MemoryLane::new(
            Arc::clone(&self.shared.store),
            table,
        )))
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("namespace", &self.settings.namespace())
            .field("keys", &self.len())
            .field("max_keys", &self.shared.max_keys)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
