//! [`MemoryBackend`]: state in this process, on a sharded map (64 shards, each a mutex over a
//! `hashbrown` table).

mod lock;
mod store;
mod sweeper;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use self::lock::Locks;
use self::store::{NEVER, Store, Value, closed};
use super::{
    Backend, BackendError, BackendFuture, Extensions, KeyValueStore, KeyedHit, LockGuard,
    LockOptions, Mode,
};
use crate::key::validate_namespace;
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Clock, ConfigError, Decision, MaybeReady, Millis, OnError, StrategyStat, SystemClock};

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
    namespace: Arc<str>,
}

struct Shared {
    store: Arc<Store>,
    locks: Arc<Locks>,
    clock: Arc<dyn Clock>,
    closed: AtomicBool,
    shutdown: Arc<Notify>,
    sweeper_alive: Arc<AtomicBool>,
    on_error: Option<OnError>,
    extensions: Extensions,
    lock_options: LockOptions,
    max_keys: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.shutdown.notify_one();
    }
}

/// Configures a [`MemoryBackend`].
#[derive(Debug)]
#[must_use]
pub struct MemoryBackendBuilder {
    namespace: String,
    max_keys: usize,
    sweep_interval: Duration,
    clock: Option<Arc<dyn Clock>>,
    on_error: Option<OnError>,
    extensions: Extensions,
    lock_options: Option<LockOptions>,
}

impl MemoryBackendBuilder {
    /// The key prefix (default `"traffik"`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The most keys stored at once (default 1,000,000).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How often the sweeper drops expired keys (default 10 s).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// The clock for key-value expiry and sweeping (default: [`SystemClock`]). Give it the
    /// throttle's clock in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The on-error policy of throttles on this backend that set none.
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.on_error = Some(policy);
        self
    }

    /// Attaches a typed value for the protocol crates, such as `traffik-axum`'s
    /// `ThrottledHandler`: the response to a refusal for every throttle on this backend that
    /// sets none of its own.
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Lock settings for the key-value contract (default: [`LockOptions::from_env`]).
    pub fn lock_options(mut self, options: LockOptions) -> Self {
        self.lock_options = Some(options);
        self
    }

    /// Builds the backend, starting its sweeper on the current tokio runtime if there is one.
    pub fn build(self) -> Result<MemoryBackend, ConfigError> {
        validate_namespace(&self.namespace)?;
        if self.max_keys == 0 {
            return Err(ConfigError::InvalidBackend {
                backend: "memory",
                reason: "max_keys must be at least 1".to_owned(),
            });
        }
        if self.sweep_interval.is_zero() {
            return Err(ConfigError::InvalidBackend {
                backend: "memory",
                reason: "sweep_interval must be above zero".to_owned(),
            });
        }
        let lock_options = match self.lock_options {
            Some(options) => options,
            None => LockOptions::from_env()?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let store = Arc::new(Store::new(self.max_keys));
        let shutdown = Arc::new(Notify::new());
        let sweeper_alive = Arc::new(AtomicBool::new(false));
        sweeper::spawn(
            Arc::downgrade(&store),
            Arc::clone(&clock),
            self.sweep_interval,
            Arc::clone(&shutdown),
            Arc::clone(&sweeper_alive),
        );
        Ok(MemoryBackend {
            shared: Arc::new(Shared {
                store,
                locks: Arc::new(Locks::default()),
                clock,
                closed: AtomicBool::new(false),
                shutdown,
                sweeper_alive,
                on_error: self.on_error,
                extensions: self.extensions,
                lock_options,
                max_keys: self.max_keys,
            }),
            namespace: Arc::from(self.namespace),
        })
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
        MemoryBackendBuilder {
            namespace: "traffik".to_owned(),
            max_keys: DEFAULT_MAX_KEYS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            clock: None,
            on_error: None,
            extensions: Extensions::new(),
            lock_options: None,
        }
    }

    /// The same store under another namespace.
    pub fn with_namespace(
        &self,
        namespace: impl Into<String>,
    ) -> Result<MemoryBackend, ConfigError> {
        let namespace = namespace.into();
        validate_namespace(&namespace)?;
        Ok(MemoryBackend {
            shared: Arc::clone(&self.shared),
            namespace: Arc::from(namespace),
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
        self.shared.closed.load(Ordering::Acquire)
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

    fn wrong_type(key: &str, found: &'static str, operation: &'static str) -> BackendError {
        BackendError::WrongType {
            backend: "memory".to_owned(),
            key: key.to_owned(),
            found,
            operation,
        }
    }

    fn read(&self, key: &str) -> Result<Option<String>, BackendError> {
        self.check_open()?;
        match self
            .shared
            .store
            .get_live(key, self.now(), |entry| match &entry.value {
                Value::Text(text) => Ok(text.clone()),
                Value::Integer(value) => Ok(value.to_string()),
                Value::State(_) => Err(Self::wrong_type(key, "strategy state", "get")),
            }) {
            Some(result) => result.map(Some),
            None => Ok(None),
        }
    }

    fn add(&self, key: &str, amount: i64, ttl: Option<Duration>) -> Result<i64, BackendError> {
        self.check_open()?;
        let now = self.now();
        self.shared.store.with_entry(key, now, |entry, live| {
            let current = match (&entry.value, live) {
                (_, false) => None,
                (Value::Integer(value), true) => Some(*value),
                (Value::Text(text), true) => Some(text.trim().parse::<i64>().map_err(|_| {
                    Self::wrong_type(key, "text that is not an integer", "increment")
                })?),
                (Value::State(_), true) => {
                    return Err(Self::wrong_type(key, "strategy state", "increment"));
                }
            };
            let value = current.unwrap_or(0).saturating_add(amount);
            let created = current.is_none();
            entry.value = Value::Integer(value);
            match ttl {
                Some(ttl) if created || entry.expires_at == NEVER => {
                    entry.expires_at = now.saturating_add(ttl.as_millis() as Millis)
                }
                _ if created => entry.expires_at = NEVER,
                _ => {}
            }
            Ok(value)
        })
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn namespace(&self) -> &str {
        &self.namespace
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
        let prefix = crate::key::namespace_prefix(&self.namespace);
        MaybeReady::ready(self.check_open().map(|()| {
            self.shared.store.retain(|key, _| !key.starts_with(&prefix));
        }))
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.shared.shutdown.notify_one();
            self.shared.store.clear();
        }
        MaybeReady::ready(Ok(()))
    }

    fn on_error(&self) -> Option<&OnError> {
        self.shared.on_error.as_ref()
    }

    fn extensions(&self) -> Option<&Extensions> {
        Some(&self.shared.extensions)
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        Some(self)
    }
}

impl KeyValueStore for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn get<'a>(&'a self, key: &'a str) -> BackendFuture<'a, Option<String>> {
        MaybeReady::ready(self.read(key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BackendFuture<'a, ()> {
        MaybeReady::ready(self.check_open().map(|()| {
            let now = self.now();
            self.shared.store.with_entry(key, now, |entry, _| {
                entry.value = Value::Text(value.to_owned());
                entry.expires_at = ttl.map_or(NEVER, |ttl| {
                    now.saturating_add((ttl.as_millis() as Millis).max(1))
                });
            });
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BackendFuture<'a, bool> {
        MaybeReady::ready(
            self.check_open()
                .map(|()| self.shared.store.remove(key, self.now())),
        )
    }

    fn increment<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64> {
        MaybeReady::ready(self.add(key, amount, None))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BackendFuture<'a, bool> {
        MaybeReady::ready(self.check_open().map(|()| {
            let now = self.now();
            let expires_at = now.saturating_add((ttl.as_millis() as Millis).max(1));
            self.shared
                .store
                .update_live(key, now, |entry| entry.expires_at = expires_at)
                .is_some()
        }))
    }

    fn increment_with_ttl<'a>(
        &'a self,
        key: &'a str,
        amount: i64,
        ttl: Duration,
    ) -> BackendFuture<'a, i64> {
        MaybeReady::ready(self.add(key, amount, Some(ttl)))
    }

    fn multi_get<'a>(&'a self, keys: &'a [&'a str]) -> BackendFuture<'a, Vec<Option<String>>> {
        MaybeReady::ready(keys.iter().map(|key| self.read(key)).collect())
    }

    fn lock_options(&self) -> LockOptions {
        self.shared.lock_options
    }

    fn lock<'a>(&'a self, name: &'a str, options: LockOptions) -> BackendFuture<'a, LockGuard> {
        if let Err(error) = self.check_open() {
            return MaybeReady::ready(Err(error));
        }
        let locks = Arc::clone(&self.shared.locks);
        MaybeReady::boxed(async move {
            locks
                .acquire(name, options)
                .await
                .map_err(|source| BackendError::Lock {
                    backend: "memory".to_owned(),
                    source,
                })
        })
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("namespace", &self.namespace)
            .field("keys", &self.len())
            .field("max_keys", &self.shared.max_keys)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{FixedWindow, TokenBucket};
    use crate::{Context, ManualClock, Rate};

    fn backend(clock: &ManualClock, max_keys: usize) -> MemoryBackend {
        MemoryBackend::builder()
            .clock(clock.clone())
            .max_keys(max_keys)
            .lock_options(LockOptions::default())
            .build()
            .unwrap()
    }

    fn hit(backend: &MemoryBackend, key: &str, now: Millis) -> Decision {
        let context = Context::new();
        let hit = Hit::new(now, Rate::per_second(2), 1, &context);
        backend
            .decide_now(key, &FixedWindow::new(), hit, Mode::Consume)
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn reset_clears_only_its_own_namespace() {
        let clock = ManualClock::new(0);
        let a = backend(&clock, 100);
        let b = a.with_namespace("other").unwrap();
        hit(&a, "traffik:t:{x}:s", 0);
        hit(&b, "other:t:{x}:s", 0);
        a.set("traffik:plain", "1", None).await.unwrap();
        assert_eq!(a.len(), 3);
        Backend::reset(&a).await.unwrap();
        assert_eq!(a.len(), 1);
        assert!(hit(&b, "other:t:{x}:s", 0).is_allowed());
        assert!(
            hit(&b, "other:t:{x}:s", 0).is_throttled(),
            "the other namespace kept its state"
        );
    }

    #[tokio::test]
    async fn close_fails_every_later_call_and_stops_the_sweeper() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 100);
        assert!(backend.sweeper_running());
        hit(&backend, "traffik:k", 0);
        Backend::close(&backend).await.unwrap();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!backend.sweeper_running());
        assert!(backend.is_empty());
        let context = Context::new();
        let error = backend
            .decide(
                "traffik:k",
                &FixedWindow::new(),
                Hit::new(0, Rate::per_second(1), 1, &context),
                Mode::Consume,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::Closed { .. }));
        assert!(matches!(
            backend.get("traffik:k").await,
            Err(BackendError::Closed { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_drops_expired_keys_and_stops_when_the_backend_is_dropped() {
        let clock = ManualClock::new(10_000);
        let backend = MemoryBackend::builder()
            .clock(clock.clone())
            .sweep_interval(Duration::from_secs(1))
            .lock_options(LockOptions::default())
            .build()
            .unwrap();
        for i in 0..10 {
            hit(&backend, &format!("traffik:k{i}"), 10_000);
        }
        backend.set("traffik:forever", "x", None).await.unwrap();
        assert_eq!(backend.len(), 11);
        clock.set(11_000); // the fixed windows ended
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(backend.len(), 1, "only the key without expiry is left");
        let alive = Arc::clone(&backend.shared.sweeper_alive);
        drop(backend);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!alive.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_stays_under_the_cap() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 1_000);
        for i in 0..10_000 {
            hit(&backend, &format!("traffik:flood:{{{i}}}:s"), 0);
        }
        assert!(backend.len() <= 1_000, "{} keys", backend.len());
        assert!(
            hit(&backend, "traffik:new", 0).is_allowed(),
            "new clients are still tracked"
        );
        assert!(hit(&backend, "traffik:new", 0).is_allowed());
        assert!(hit(&backend, "traffik:new", 0).is_throttled());
    }

    #[tokio::test]
    async fn a_full_map_makes_room_for_a_batchs_new_keys_only() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 3);
        let context = Context::new();
        let hit = Hit::new(0, Rate::per_second(2), 1, &context);
        let strategy = FixedWindow::new();
        let batch = |keys: &[&'static str]| -> Vec<Decision> {
            let hits: Vec<KeyedHit<'_>> = keys
                .iter()
                .map(|key| KeyedHit {
                    key,
                    strategy: &strategy,
                    hit,
                })
                .collect();
            backend
                .decide_all_now(&hits, Mode::Consume)
                .unwrap()
                .unwrap()
        };
        for key in ["traffik:a", "traffik:b", "traffik:c"] {
            self::hit(&backend, key, 0);
        }
        assert_eq!(backend.len(), 3);
        // Known keys only: nothing is evicted, so both keep their count (the second hit fills
        // each one's limit of 2).
        assert!(
            batch(&["traffik:a", "traffik:b"])
                .iter()
                .all(Decision::is_allowed)
        );
        assert_eq!(backend.len(), 3);
        assert!(
            batch(&["traffik:a", "traffik:b"])
                .iter()
                .all(Decision::is_throttled)
        );
        // One new key: exactly one entry makes room for it.
        assert!(
            batch(&["traffik:c", "traffik:d"])
                .iter()
                .all(Decision::is_allowed)
        );
        assert_eq!(backend.len(), 3);
    }

    #[tokio::test]
    async fn when_full_expired_keys_go_before_live_ones() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 10);
        let context = Context::new();
        // A long-lived bucket that must survive.
        let long = Hit::new(0, Rate::per_hour(2), 2, &context);
        backend
            .decide_now("traffik:keep", &TokenBucket::new(), long, Mode::Consume)
            .unwrap()
            .unwrap();
        for i in 0..9 {
            hit(&backend, &format!("traffik:short{i}"), 0);
        }
        clock.set(5_000);
        for i in 0..9 {
            hit(&backend, &format!("traffik:later{i}"), 5_000);
        }
        let again = Hit::new(5_000, Rate::per_hour(2), 1, &context);
        let decision = backend
            .decide_now("traffik:keep", &TokenBucket::new(), again, Mode::Consume)
            .unwrap()
            .unwrap();
        assert!(decision.is_throttled(), "the live bucket was not evicted");
    }

    #[test]
    fn a_hit_carrying_an_older_time_than_its_key_has_seen_uses_the_newer_one() {
        // Two threads read the clock, then race for the key: the loser may carry a time a
        // millisecond older than the state. At 1,000,000/s that millisecond is 1000 cells.
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 100);
        let context = Context::new();
        let rate = Rate::per_second(1_000_000);
        let decide = |now| {
            backend
                .decide_now(
                    "traffik:k",
                    &crate::strategy::Gcra::new(),
                    Hit::new(now, rate, 1, &context),
                    Mode::Consume,
                )
                .unwrap()
                .unwrap()
        };
        assert!(decide(1).is_allowed());
        assert!(
            decide(0).is_allowed(),
            "the stale reading is raised to 1 ms instead of looking 1000 cells late"
        );
    }

    #[tokio::test]
    async fn key_value_counters_keep_their_first_ttl() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 100);
        assert_eq!(
            backend
                .increment_with_ttl("traffik:c", 2, Duration::from_secs(1))
                .await
                .unwrap(),
            2
        );
        clock.set(900);
        assert_eq!(
            backend
                .increment_with_ttl("traffik:c", 3, Duration::from_secs(1))
                .await
                .unwrap(),
            5
        );
        clock.set(1_000);
        assert_eq!(
            backend.get("traffik:c").await.unwrap(),
            None,
            "expired at the first ttl, not re-armed"
        );
        assert_eq!(backend.increment("traffik:c", 1).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn incrementing_text_or_strategy_state_is_a_typed_error() {
        let clock = ManualClock::new(0);
        let backend = backend(&clock, 100);
        backend.set("traffik:t", "hello", None).await.unwrap();
        assert!(matches!(
            backend.increment("traffik:t", 1).await,
            Err(BackendError::WrongType { .. })
        ));
        backend.set("traffik:n", " 41 ", None).await.unwrap();
        assert_eq!(backend.increment("traffik:n", 1).await.unwrap(), 42);
        hit(&backend, "traffik:s", 0);
        assert!(matches!(
            backend.get("traffik:s").await,
            Err(BackendError::WrongType { .. })
        ));
    }

    #[test]
    fn builds_without_a_runtime_and_validates_settings() {
        let backend = MemoryBackend::builder()
            .lock_options(LockOptions::default())
            .build()
            .unwrap();
        assert!(!backend.sweeper_running());
        assert!(MemoryBackend::builder().max_keys(0).build().is_err());
        assert!(
            MemoryBackend::builder()
                .namespace("bad ns")
                .build()
                .is_err()
        );
        assert!(
            MemoryBackend::builder()
                .sweep_interval(Duration::ZERO)
                .build()
                .is_err()
        );
        assert!(backend.with_namespace("a{b").is_err());
    }
}
