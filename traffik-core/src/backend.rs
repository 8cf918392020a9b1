//! Backends: where state lives, and how each one runs a strategy atomically.
//!
//! - [`MemoryBackend`](crate::MemoryBackend) (feature `memory`): runs the strategy while
//!   holding the key's map entry. Synchronous, no allocation for an existing key.
//! - [`KeyValueBackend`]: wraps any [`KeyValueStore`] (get/set/delete/increment/expire/lock, the
//!   reference's contract) and runs every strategy through a read-apply-write under the
//!   store's lock. This is how custom stores get every strategy.
//! - [`RedisBackend`](crate::RedisBackend) (feature `redis`): one Lua script per decision,
//!   single node or Redis Cluster.
//! - [`MemcachedBackend`](crate::MemcachedBackend) (feature `memcached`): compare-and-swap
//!   around the strategy, one or more servers.
//! - Any other store implements [`Backend`] with its own atomic step, or [`KeyValueStore`] to
//!   run every strategy through [`KeyValueBackend`].
//!
//! Throttles call backends for you; calling one directly shows the contract:
//!
//! ```
//! use traffik_core::backend::{Backend, Mode};
//! use traffik_core::strategy::{FixedWindow, Hit};
//! use traffik_core::{Context, MemoryBackend, Rate};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), traffik_core::backend::BackendError> {
//! let backend = MemoryBackend::new();
//! let context = Context::new();
//! let hit = Hit::new(1_700_000_000_000, Rate::per_second(1), 1, &context);
//! let key = "traffik:doc:{client}:fixed-window";
//! assert!(backend.decide(key, &FixedWindow::new(), hit, Mode::Consume).await?.is_allowed());
//! assert!(backend.decide(key, &FixedWindow::new(), hit, Mode::Peek).await?.is_throttled());
//! assert_eq!(backend.stat(key, &FixedWindow::new(), hit).await?.hits_remaining, 0);
//! # Ok(()) }
//! ```

#[cfg(feature = "resilience")]
mod breaker;
mod breaker_state;
mod error;
mod extensions;
#[cfg(feature = "resilience")]
mod failover;
#[cfg(feature = "resilience")]
mod fallback;
mod key_value;
mod key_value_backend;
mod lane;
mod lock;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "resilience")]
mod retry;
mod settings;
mod store_id;

use std::fmt::Debug;
use std::sync::Arc;

use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Decision, MaybeReady, OnError, StrategyStat};

#[cfg(feature = "resilience")]
pub use breaker::{BreakerHandle, BreakerInfo, CircuitBreaker, Trip};
pub use breaker_state::BreakerState;
pub use error::{BackendError, BoxError, LockError};
pub use extensions::Extensions;
#[cfg(feature = "resilience")]
pub use failover::{Failover, FailoverBuilder, failover};
#[cfg(feature = "resilience")]
pub use fallback::Fallback;
pub use key_value::{KeyValueStore, KeyValueStrategy};
pub use key_value_backend::KeyValueBackend;
pub use lane::Lane;
pub use lock::{
    BLOCKING_ENV, BLOCKING_TIMEOUT_ENV, HeldLock, LOCK_TTL_ENV, LockConfigError, LockGuard,
    LockOptions,
};
#[cfg(feature = "resilience")]
pub use retry::{Backoff, Jitter, Retry};
pub use settings::BackendSettings;
pub use store_id::StoreId;

/// What a throttle can be given as its backend: any [`Backend`], or one already shared as an
/// `Arc<dyn Backend>`.
///
/// ```
/// use std::sync::Arc;
/// use traffik_core::MemoryBackend;
/// use traffik_core::backend::{Backend, IntoBackend};
///
/// let shared: Arc<dyn Backend> = MemoryBackend::new().into_backend();
/// let again = Arc::clone(&shared).into_backend();
/// assert!(Arc::ptr_eq(&shared, &again));
/// ```
pub trait IntoBackend {
    /// The backend, shared.
    fn into_backend(self) -> Arc<dyn Backend>;
}

impl<B: Backend> IntoBackend for B {
    fn into_backend(self) -> Arc<dyn Backend> {
        Arc::new(self)
    }
}

impl IntoBackend for Arc<dyn Backend> {
    fn into_backend(self) -> Arc<dyn Backend> {
        self
    }
}

/// The future a backend returns: resolved at once for synchronous backends, boxed otherwise.
pub type BackendFuture<'a, T> = MaybeReady<'a, Result<T, BackendError>>;

/// Whether a decision consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Apply the hit and store the new state.
    Consume,
    /// Compute what the hit would get, storing nothing (`Throttle::check`).
    Peek,
}

/// One hit of a decision over several limits ([`Backend::decide_all`]): a key, its strategy
/// and the hit.
#[derive(Debug, Clone, Copy)]
pub struct KeyedHit<'a> {
    /// The storage key.
    pub key: &'a str,
    /// The strategy of the limit.
    pub strategy: &'a dyn DynStrategy,
    /// The hit.
    pub hit: Hit<'a>,
}

/// [`Backend::decide_all`] one key at a time: every hit checked ([`Mode::Peek`]), then, if
/// every one admits, each charged in turn. Nothing is stored when a check refuses. When a
/// charge is refused anyway (a concurrent decision emptied that limit after the check) or
/// fails, the batch stops there: the charges made before it are returned
/// ([`Backend::refund`]; a refund that fails is logged and the charge stays), and the batch
/// reports the checks with that refusal (or returns the error). Concurrent decisions can see
/// the earlier charges between the charge and the refund.
pub(crate) async fn check_then_decide<B: Backend + ?Sized>(
    backend: &B,
    hits: &[KeyedHit<'_>],
    mode: Mode,
) -> Result<Vec<Decision>, BackendError> {
    let mut checked = Vec::with_capacity(hits.len());
    for hit in hits {
        checked.push(
            backend
                .decide(hit.key, hit.strategy, hit.hit, Mode::Peek)
                .await?,
        );
    }
    if mode == Mode::Peek || checked.iter().any(Decision::is_throttled) {
        return Ok(checked);
    }
    let mut charged = Vec::with_capacity(hits.len());
    for (index, hit) in hits.iter().enumerate() {
        match backend
            .decide(hit.key, hit.strategy, hit.hit, Mode::Consume)
            .await
        {
            Ok(decision) if decision.is_throttled() => {
                refund_all(backend, &hits[..index]).await;
                checked[index] = decision;
                return Ok(checked);
            }
            Ok(decision) => charged.push(decision),
            Err(error) => {
                refund_all(backend, &hits[..index]).await;
                return Err(error);
            }
        }
    }
    Ok(charged)
}

/// Returns the charges of `hits` (made just now), logging the ones that cannot be.
async fn refund_all<B: Backend + ?Sized>(backend: &B, hits: &[KeyedHit<'_>]) {
    for hit in hits {
        if let Err(error) = backend
            .refund(hit.key, hit.strategy, hit.hit, hit.hit.now)
            .await
        {
            tracing::warn!(
                target: "traffik",
                backend = backend.name(),
                %error,
                "a charge of a refused batch could not be returned"
            );
        }
    }
}

/// Where throttle state lives. Each backend runs a strategy's transition on a key atomically:
/// no two decisions on one key interleave.
///
/// Keys arrive complete (`{namespace}:{uid}:{{identity}}:…`, built by the throttle with this
/// backend's [`namespace`](Backend::namespace)).
pub trait Backend: Send + Sync + Debug + 'static {
    /// A short name for logs and errors (`"memory"`, `"redis"`, …).
    fn name(&self) -> &str;

    /// The backend's settings: namespace, on-error policy, extensions, lock options. Return
    /// settings that were [`resolve`](BackendSettings::resolve)d when the backend was built
    /// (unresolved ones skip the namespace check and ignore the `TRAFFIK_DEFAULT_*` lock
    /// variables).
    fn settings(&self) -> &BackendSettings;

    /// Which store this backend decides on: two handles of one store (clones of a backend, and
    /// wrappers around it) have the same id. The default is the handle's own address; a
    /// cloneable backend returns its shared state's, a wrapper its inner backend's.
    /// The `Fallback` wrapper uses it to refuse a fallback that is the backend
    /// it wraps.
    fn store_id(&self) -> StoreId {
        StoreId::of(self)
    }

    /// The prefix of every key this backend stores (from its [`settings`](Self::settings); not
    /// meant to be overridden).
    fn namespace(&self) -> &str {
        self.settings().namespace()
    }

    /// Decides one hit on `key` atomically.
    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision>;

    /// The same decision without awaiting, for backends that decide synchronously (`None` for
    /// the others). The throttle uses it to avoid allocating the key on the hot path.
    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        let _ = (key, strategy, hit, mode);
        None
    }

    /// Decides several hits on distinct keys as one: either every hit is admitted and stored,
    /// or none is stored; the decisions come back in order. The throttle engine calls it for
    /// the limits of one request that share this backend ([`crate::throttle::hit_all`]).
    ///
    /// The in-memory, Redis and key-value backends do it atomically (locks held on every key,
    /// one script, or every key's lock). The default, for backends that do not override it
    /// (Memcached among them), checks every hit ([`Mode::Peek`]) and then consumes them in
    /// turn: nothing is stored when one refuses; when a concurrent decision makes a later
    /// charge refuse after the check, the earlier charges are refunded
    /// ([`refund`](Self::refund)), so they count only between the charge and the refund.
    /// Override it to be atomic.
    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(check_then_decide(self, hits, mode))
    }

    /// [`decide_all`](Self::decide_all) without awaiting, for backends that decide
    /// synchronously (`None` for the others).
    fn decide_all_now(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Option<Result<Vec<Decision>, BackendError>> {
        let _ = (hits, mode);
        None
    }

    /// Checks that this backend decides `strategy` at `rate` exactly, before any hit: a throttle
    /// with its own backend and a fixed rate calls it when built (a
    /// [`ConfigError::UnsupportedRate`](crate::ConfigError::UnsupportedRate) then), and a
    /// backend whose range depends on the hit also checks each decision (a
    /// [`BackendError::Unsupported`]). The default accepts every rate.
    fn check_rate(&self, strategy: &dyn DynStrategy, rate: &crate::Rate) -> Result<(), String> {
        let _ = (strategy, rate);
        Ok(())
    }

    /// Returns a charge admitted on `key` ([`Strategy::refund`](crate::strategy::Strategy::refund)),
    /// atomically with decisions on the key. `charge` is the admitted hit as it was charged:
    /// its `now` is the time of the charge on the caller's clock; `now` is the time of the
    /// refund on the same clock (a backend that decides on its own clock, such as Redis with
    /// `TIME`, places the charge `now − charge.now` ms before its own present). The throttle
    /// engine calls it when another limit of the same request refuses after this one charged
    /// ([`Throttle::refund_with`](crate::Throttle::refund_with)).
    ///
    /// The in-memory, key-value and Redis backends implement it. The default, for backends that
    /// do not override it, returns [`Refund::Unsupported`] and changes nothing.
    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: crate::Millis,
    ) -> BackendFuture<'a, Refund> {
        let _ = (key, strategy, charge, now);
        MaybeReady::ready(Ok(Refund::Unsupported))
    }

    /// Reads the key's state without changing it.
    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat>;

    /// Whether the backend answers now: a health check for readiness probes and start-up (the
    /// reference's `ready()`). `Ok(())` when it is reachable and open; otherwise the error a hit
    /// would meet ([`BackendError::Closed`], a connection error, a timeout, an open circuit).
    ///
    /// The default reads the state of a probe key (`{namespace}:__traffik_ready__`, never
    /// written) with the fixed-window strategy: one real round trip through everything a hit
    /// goes through (connection, scripts, wrappers such as [`Retry`], [`CircuitBreaker`] and
    /// [`Fallback`], which is ready when either side is).
    ///
    /// ```
    /// use traffik_core::MemoryBackend;
    /// use traffik_core::backend::Backend;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let backend = MemoryBackend::new();
    /// assert!(backend.ready().await.is_ok());
    /// backend.close().await.unwrap();
    /// assert!(backend.ready().await.is_err());
    /// # }
    /// ```
    fn ready(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(async move {
            let strategy = crate::strategy::FixedWindow::new();
            let context = crate::Context::new();
            let key = format!("{}:__traffik_ready__", self.namespace());
            let now = crate::Clock::now(&crate::SystemClock::new());
            let probe = Hit::new(now, crate::Rate::per_second(1), 1, &context);
            self.stat(&key, &strategy, probe).await.map(drop)
        })
    }

    /// Deletes every key in this backend's namespace (and nothing else).
    fn reset(&self) -> BackendFuture<'_, ()>;

    /// Releases resources; later calls fail with [`BackendError::Closed`].
    fn close(&self) -> BackendFuture<'_, ()>;

    /// The on-error policy of throttles on this backend that set none themselves (from its
    /// [`settings`](Self::settings); not meant to be overridden).
    fn on_error(&self) -> Option<&OnError> {
        self.settings().on_error()
    }

    /// Typed values the protocol crates read, such as the default throttled handler of the
    /// throttles on this backend (see [`Extensions`]; from its [`settings`](Self::settings); not
    /// meant to be overridden).
    fn extensions(&self) -> &Extensions {
        self.settings().extensions()
    }

    /// The key-value contract, for [`KeyValueStrategy`]s (custom strategies written against
    /// get/set/increment/lock).
    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        None
    }

    /// A throttle's way straight into the entries of its keys, for a backend that keeps them in
    /// this process: the keys starting with `prefix` (`{namespace}:{uid}:{`) under `strategy`.
    /// The in-memory backend answers for its built-in strategies; every other backend
    /// (and wrapper) answers `None`, and the throttle builds each hit's key instead. Called when
    /// a throttle's configuration is built, never per hit.
    #[doc(hidden)]
    fn lane(&self, prefix: &str, strategy: &dyn DynStrategy) -> Option<Lane> {
        let _ = (prefix, strategy);
        None
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests;
