//! [`MemcachedBackend`]: every strategy on one or more memcached servers, each decision atomic
//! by compare-and-swap (feature `memcached`).
//!
//! A decision reads the key's state and its compare-and-swap token (`mg`), applies the
//! strategy's pure transition in Rust (the same `apply` the in-memory backend runs), and
//! writes the new state only if the key still holds what was read (`ms … C<token>`, or `ME`
//! to create it). A concurrent writer makes the write fail; the decision reads again, at most
//! [`cas_attempts`](MemcachedBackendBuilder::cas_attempts) times, and then fails with
//! [`BackendError::Contention`](super::BackendError::Contention): never an admission it could not make atomically.
//!
//! - **Servers:** keys are spread over the servers by rendezvous hashing (stable across
//!   processes and builds; adding a server moves about 1/N of the keys). A server that is down
//!   fails the decisions on its keys with typed errors, which the on-error policy decides;
//!   keys are not moved to the others (that would split a client's state).
//! - **Time:** memcached has no clock a command can read, so decisions use the caller's clock
//!   (the throttle's): a fleet needs its clocks in sync (NTP), as with Redis's
//!   `TimeSource::Caller`. Expiry is in whole seconds, rounded up.
//! - **Reset:** memcached cannot list keys, so keys carry the namespace's generation and
//!   [`reset`](Backend::reset) moves to the next one in O(1); see
//!   [`generation_refresh`](MemcachedBackendBuilder::generation_refresh).
//! - **Batches** ([`Backend::decide_all`]) are checked on every key, then charged key by key:
//!   memcached has no multi-key transaction. When a concurrent request empties a limit between
//!   the check and its charge, the batch is refused and the charges made before it are
//!   refunded (they count for others only in between).
//!
//! The client is `async-memcached` (meta protocol, memcached 1.6 or later), pooled per server
//! by `deadpool` (`docs/decisions/0014-memcached-client.md`).

mod builder;
mod cas;
mod commands;
mod error;
mod generation;
mod key;
mod pool;
mod ring;

pub use builder::MemcachedBackendBuilder;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{Backend, BackendFuture, BackendSettings, Mode, StoreId};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Decision, MaybeReady, Millis, StrategyStat};
use generation::Generation;
use ring::Ring;

/// The backend's name in errors, logs and metrics.
const NAME: &str = "memcached";

/// The client flags on every value traffik writes ("trfk"), which tell its values from other
/// applications' at the same key.
const FLAGS: u32 = 0x7472_666b;

/// Rate limits on memcached: one or more servers, every strategy, atomic by compare-and-swap.
/// Clones share the connections.
///
/// ```no_run
/// use traffik_core::{MemcachedBackend, Throttle};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = MemcachedBackend::builder(["memcache://10.0.0.1:11211", "memcache://10.0.0.2:11211"])
///     .namespace("api")
///     .build()?;
/// let throttle = Throttle::builder("search", "100/min").backend(backend).build()?;
/// let decision = throttle.hit("alice").await?;
/// # let _ = decision;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemcachedBackend {
    inner: Arc<Inner>,
}

struct Inner {
    settings: BackendSettings,
    servers: Vec<Server>,
    ring: Ring,
    command_timeout: Duration,
    cas_attempts: u32,
    generation: Generation,
    closed: AtomicBool,
    /// Compare-and-swap writes lost to a concurrent writer since the backend was built.
    lost_races: AtomicU64,
}

struct Server {
    /// `host:port`.
    address: String,
    pool: pool::Pool,
}

impl MemcachedBackend {
    /// Starts a backend on the servers at `urls` (`memcache://host:port`; several spread the
    /// keys between them).
    pub fn builder<I, S>(urls: I) -> MemcachedBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MemcachedBackendBuilder::new(urls.into_iter().map(Into::into).collect())
    }

    /// A backend on one server with the default settings.
    ///
    /// # Errors
    ///
    /// As [`MemcachedBackendBuilder::build`].
    pub fn new(url: impl Into<String>) -> Result<Self, crate::ConfigError> {
        Self::builder([url]).build()
    }

    /// The servers' addresses (`host:port`), in the order given.
    #[must_use]
    pub fn servers(&self) -> Vec<&str> {
        self.inner
            .servers
            .iter()
            .map(|server| server.address.as_str())
            .collect()
    }

    /// How many compare-and-swap writes (decisions and refunds) lost to a concurrent writer
    /// since this backend was built (shared by its clones): each was read and tried again, or,
    /// on the last attempt, ended in `BackendError::Contention`. Divided by the decisions made,
    /// it is the retries per decision; a recorder sees the same count as
    /// `traffik_cas_retries_total{backend="memcached"}`.
    #[must_use]
    pub fn lost_races(&self) -> u64 {
        self.inner.lost_races.load(Ordering::Relaxed)
    }

    /// The address of the server holding `key` (a storage key, as throttles write it).
    #[must_use]
    pub fn server_for(&self, key: &str) -> &str {
        &self.inner.servers[self.inner.ring.server_for(key)].address
    }
}

impl Inner {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Counts a lost compare-and-swap race (the caller tries again or gives up).
    fn lost_race(&self) {
        self.lost_races.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::cas_retry(NAME);
    }
}

impl Backend for MemcachedBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn settings(&self) -> &BackendSettings {
        &self.inner.settings
    }

    fn store_id(&self) -> StoreId {
        StoreId::of(&*self.inner)
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(self.inner.decide(key, strategy, hit, mode))
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::boxed(self.inner.refund(key, strategy, hit, now))
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(self.inner.stat(key, strategy, hit))
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(self.inner.bump_generation())
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        self.inner.closed.store(true, Ordering::Release);
        for server in &self.inner.servers {
            server.pool.close();
        }
        MaybeReady::ready(Ok(()))
    }
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("servers", &self.servers())
            .field("settings", &self.inner.settings)
            .field("command_timeout", &self.inner.command_timeout)
            .field("cas_attempts", &self.inner.cas_attempts)
            .field("closed", &self.inner.is_closed())
            .finish_non_exhaustive()
    }
}
