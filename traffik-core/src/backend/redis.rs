//! [`RedisBackend`] (feature `redis`): state shared by a fleet, every built-in strategy as one
//! atomic Lua script per decision, on a single node, a Redis Cluster or the master Redis
//! Sentinel names; from a URL, or from the application's own client, connection or pool.
//!
//! - **One round trip per decision.** Each built-in strategy has a Lua script that mirrors its
//!   Rust `apply`; a decision is one `EVALSHA` (reloaded by itself after `SCRIPT FLUSH` or a
//!   failover). The script replies with the state it read, and the client runs the same
//!   `apply` on it for the decision's details (remaining, wait, reset), so the numbers in
//!   headers are exactly what the in-memory backend would give. `stat` and `check` are one
//!   read-only script call.
//! - **One clock.** Every app instance decides on Redis's clock: read by each script
//!   ([`TimeSource::Server`], the default), or estimated in the instance and sent with each
//!   decision ([`TimeSource::Fleet`], which spares Redis a `TIME` call per decision).
//! - **Keys** are `{namespace}:{uid}:{{identity}}…`: the identity is a hash tag, so every key
//!   of a decision is in one cluster slot. Each key expires (`PX`) when its state stops
//!   meaning anything.
//! - **Shared connections.** Decisions go over shared multiplexed connections (the `redis`
//!   crate's `ConnectionManager`, which reconnects by itself, its cluster connection, or the
//!   connection to the master Sentinel names, moved after a failover); nothing is checked out
//!   of a pool per call, unless the application hands over its own `deadpool-redis` pool
//!   (`RedisBackend::from_pool`, feature `redis-deadpool`).
//! - **Custom strategies** run through the key-value contract ([`KeyValueStore`] on Redis:
//!   read-apply-write under a `SET NX PX` lock, or Redlock across nodes).
//! - **Failures** are typed [`BackendError`]s naming the backend and operation, each bounded by
//!   the command timeout; nothing panics and nothing hangs.
//!
//! ```no_run
//! use traffik_core::{RedisBackend, Throttle};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = RedisBackend::builder("redis://127.0.0.1:6379").namespace("shop").connect().await?;
//! let throttle = Throttle::builder("api", "100/min").backend(backend).build()?;
//! assert!(throttle.hit("client-1").await?.is_allowed());
//! # Ok(()) }
//! ```

mod builder;
mod connection;
mod deny_cache;
mod error;
mod fleet_clock;
mod lock;
#[cfg(feature = "redis-deadpool")]
mod pool;
mod probe;
mod reset;
mod script_loads;
mod scripts;
mod sentinel;
mod store;
mod target;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{FromRedisValue, RedisError, Value};

use self::connection::Connections;
use self::error::{NAME, from_redis, invalid_reply, timeout};
use self::lock::Redlock;
use self::script_loads::Loading;
use crate::backend::{
    Backend, BackendError, BackendFuture, BackendSettings, KeyValueStore, KeyedHit, Mode,
};
use crate::strategy::native::{LUA_EXACT, Native};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Decision, MaybeReady, Millis, StrategyStat};

pub use builder::{RedisBackendBuilder, TimeSource};
pub use error::RedisConnectError;

/// The `redis` crate this backend is built on (the version [`RedisBackend::from_client`] and
/// the other `from_*` constructors take), so an application can name the same version.
pub use ::redis;

/// The `deadpool-redis` crate [`RedisBackend::from_pool`] takes a pool of (feature
/// `redis-deadpool`).
#[cfg(feature = "redis-deadpool")]
pub use ::deadpool_redis;

/// A backend on Redis (single node, cluster or Sentinel); cheap to clone (clones share
/// connections).
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    connections: Connections,
    settings: BackendSettings,
    command_timeout: Duration,
    time: TimeSource,
    /// Refusals kept locally (`RedisBackendBuilder::deny_cache`).
    deny_cache: Option<deny_cache::DenyCache>,
    redlock: Option<Redlock>,
    closed: AtomicBool,
    /// Redis's clock, estimated here: `now` under [`TimeSource::Fleet`], and deadlines.
    clock: fleet_clock::FleetClock,
    /// The key whose node the clock is read on.
    clock_key: String,
}

impl RedisBackend {
    /// A backend on the single node at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` with the `redis-tls` feature).
    pub fn builder(url: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder::node(url)
    }

    /// A backend on the Redis Cluster reached through these seed nodes (any few of its nodes;
    /// the rest are discovered).
    pub fn cluster<I, S>(seeds: I) -> RedisBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisBackendBuilder::cluster(seeds)
    }

    /// A backend on the master that these Redis Sentinel nodes name `master` (the name in their
    /// `sentinel monitor` line). Give the sentinels' URLs (`redis://[user:password@]host:port`;
    /// a few, any of which may be down); the master's own credentials, TLS or database go in
    /// [`sentinel_master_connection`](RedisBackendBuilder::sentinel_master_connection).
    ///
    /// `connect` asks the sentinels for the master and checks its role. Afterwards the sentinels
    /// are asked again every [check interval](RedisBackendBuilder::sentinel_check_interval)
    /// (1 s), and at once when a reply suggests a failover (`READONLY`, a lost connection); when
    /// they name a new master, decisions go to it. Calls in flight during the switch may fail
    /// with [`BackendError::ReadOnly`], `Unavailable` or `Timeout` (all transient: a
    /// [`Retry`](crate::backend::Retry) wrapper hides them). State written to the old master
    /// and replicated before the failover carries over; writes the old master took after the
    /// new one was promoted are lost, as with every Sentinel client.
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = RedisBackend::sentinel(
    ///     ["redis://10.0.0.5:26379", "redis://10.0.0.6:26379", "redis://10.0.0.7:26379"],
    ///     "mymaster",
    /// )
    /// .namespace("shop")
    /// .connect()
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub fn sentinel<I, S>(sentinels: I, master: impl Into<String>) -> RedisBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisBackendBuilder::sentinel(sentinels, master)
    }

    /// A backend on the application's own [`redis::Client`] for a single node: traffik opens its
    /// connection managers from it (as many as
    /// [`connections`](RedisBackendBuilder::connections)), with the builder's timeouts.
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    /// use traffik_core::backend::redis::redis;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?; // the application's
    /// let backend = RedisBackend::from_client(client).namespace("shop").connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_client(client: redis::Client) -> RedisBackendBuilder {
        RedisBackendBuilder::with_target(target::Target::Client(Box::new(client)))
    }

    /// A backend on the application's own [`ConnectionManager`](redis::aio::ConnectionManager),
    /// shared with the rest of the application (decisions are pipelined on it with its other
    /// commands). It is used as it is: its reconnection and response timeout are the
    /// application's; the builder's [`command_timeout`](RedisBackendBuilder::command_timeout)
    /// still bounds each of traffik's operations, and
    /// [`connections`](RedisBackendBuilder::connections) is ignored.
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    /// use traffik_core::backend::redis::redis;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let manager = redis::aio::ConnectionManager::new(client).await?; // the application's
    /// let backend = RedisBackend::from_connection_manager(manager.clone()).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_connection_manager(manager: redis::aio::ConnectionManager) -> RedisBackendBuilder {
        RedisBackendBuilder::with_target(target::Target::Manager(manager))
    }

    /// A backend on the application's own [`ClusterClient`](redis::cluster::ClusterClient):
    /// traffik opens one cluster connection from it, with the builder's connect timeout and its
    /// command timeout as each node's response timeout (the client's other settings, such as
    /// credentials, TLS or retries, are kept).
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    /// use traffik_core::backend::redis::redis;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::cluster::ClusterClient::new(vec!["redis://10.0.0.1:6379"])?;
    /// let backend = RedisBackend::from_cluster_client(client).connect().await?;
    /// assert!(backend.is_cluster());
    /// # Ok(()) }
    /// ```
    pub fn from_cluster_client(client: redis::cluster::ClusterClient) -> RedisBackendBuilder {
        RedisBackendBuilder::with_target(target::Target::ClusterClient(Box::new(client)))
    }

    /// A backend on the application's own `deadpool-redis` pool (feature `redis-deadpool`):
    /// every operation checks a connection out for its one command and gives it back. Use it
    /// when the application already sizes and monitors a pool; otherwise the default, one
    /// shared multiplexed connection, decides several times faster (each checkout also costs
    /// deadpool's `PING` round trip; see `docs/redis.md`, "Connections").
    ///
    /// The pool is used as it is: its size, wait and create timeouts are the application's;
    /// the builder's [`command_timeout`](RedisBackendBuilder::command_timeout) bounds each
    /// operation, the checkout included, and
    /// [`connections`](RedisBackendBuilder::connections) is ignored.
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    /// use traffik_core::backend::redis::deadpool_redis::{Config, Runtime};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Config::from_url("redis://127.0.0.1:6379").create_pool(Some(Runtime::Tokio1))?;
    /// let backend = RedisBackend::from_pool(pool.clone()).namespace("shop").connect().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis-deadpool")]
    pub fn from_pool(pool: deadpool_redis::Pool) -> RedisBackendBuilder {
        RedisBackendBuilder::with_target(target::Target::Pool(pool))
    }

    /// Connects to `url` with the default settings (namespace `traffik`).
    ///
    /// # Errors
    ///
    /// As [`RedisBackendBuilder::connect`]: a malformed URL, a server that cannot be reached or
    /// refuses the connection.
    pub async fn connect(url: impl Into<String>) -> Result<RedisBackend, RedisConnectError> {
        Self::builder(url).connect().await
    }

    fn from_inner(inner: Inner) -> Self {
        RedisBackend {
            inner: Arc::new(inner),
        }
    }

    /// Whether this backend is on a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        self.inner.connections.is_cluster()
    }

    /// The `now` argument of scripts: the caller's time, the estimate of Redis's clock, or
    /// `None` for Redis `TIME`.
    fn now(&self, hit: &Hit<'_>) -> Option<Millis> {
        match self.inner.time {
            TimeSource::Caller => Some(hit.now),
            TimeSource::Fleet => Some(self.inner.clock.now_ms()),
            TimeSource::Server => None,
        }
    }

    /// Refreshes the estimate of Redis's clock every [`fleet_clock::REFRESH`] until the backend
    /// is dropped or closed (started by `connect`).
    fn keep_clock(&self) {
        let backend = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(fleet_clock::REFRESH);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is at once: the estimate `connect` took is fresh.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = backend.upgrade() else {
                    return;
                };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let mut handle = inner.connections.handle();
                inner
                    .clock
                    .refresh(&mut handle, &inner.clock_key, inner.command_timeout)
                    .await;
            }
        });
    }

    /// The longest a key is kept past its state's meaning under [`TimeSource::Fleet`] (a day):
    /// bounds the `PX` a script computes whatever the command timeout.
    const LONGEST_KEEP_MS: u64 = 86_400_000;

    /// When a script sent now must have run, or change nothing: the command timeout from now,
    /// on Redis's clock (as estimated here, plus how far the estimate may be behind; Redis
    /// compares it with its own `TIME`). Under [`TimeSource::Fleet`], whose scripts read no
    /// `TIME` to compare it with, none: keys are kept a command timeout (and the estimate's
    /// uncertainty) past their state's meaning instead, so a call that runs later than the
    /// `now` it carries still finds the state.
    fn deadline(&self) -> scripts::Deadline {
        let timeout = u64::try_from(self.inner.command_timeout.as_millis()).unwrap_or(u64::MAX);
        let margin = timeout
            .saturating_add(self.inner.clock.uncertainty_ms())
            .saturating_add(1);
        if self.inner.time == TimeSource::Fleet {
            return scripts::Deadline::Keep(margin.min(Self::LONGEST_KEEP_MS));
        }
        scripts::Deadline::At(self.inner.clock.now_ms().saturating_add(margin))
    }

    /// How long past its state's meaning a key written now is kept (ms): see
    /// [`deadline`](Self::deadline).
    fn keep_ms(&self) -> u64 {
        match self.deadline() {
            scripts::Deadline::Keep(ms) => ms,
            scripts::Deadline::At(_) => 0,
        }
    }

    fn ensure_open(&self) -> Result<(), BackendError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BackendError::Closed {
                backend: NAME.to_owned(),
            });
        }
        Ok(())
    }

    /// Runs `request` on a shared connection, bounded by the command timeout. `key` names the
    /// key in a wrong-type error (empty when several or none).
    async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        key: &str,
        request: F,
    ) -> Result<T, BackendError>
    where
        F: FnOnce(Loading) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.ensure_open()?;
        let after = self.inner.command_timeout;
        match tokio::time::timeout(after, request(self.inner.connections.get())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(from_redis(operation, error, after).on_key(key)),
            Err(_) => Err(timeout(operation, after)),
        }
    }

    /// The clock and the stored state of `key`, in one read-only call.
    async fn read(
        &self,
        operation: &'static str,
        key: &str,
        hit: &Hit<'_>,
    ) -> Result<(Millis, Option<String>), BackendError> {
        let now = scripts::now_arg(self.now(hit));
        let reply: Value = self
            .call(operation, key, |mut connection| async move {
                scripts::READ
                    .key(key)
                    .arg(now)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        <(Millis, Option<String>)>::from_redis_value(reply)
            .map_err(|error| invalid_reply(operation, error.to_string()))
    }

    /// One decision through the strategy's script.
    async fn decide_natively(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        native: Native,
        hit: Hit<'_>,
    ) -> Result<Decision, BackendError> {
        self.check_exact(&native, &hit)?;
        let invocation = scripts::decision(
            &native,
            key,
            self.now(&hit),
            hit.cost,
            strategy.state_version(),
            self.deadline(),
        );
        let reply: Value = self
            .call("decide", key, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        let (now, stored, admitted, after) =
            <(Millis, Option<String>, u8, String)>::from_redis_value(reply)
                .map_err(|error| invalid_reply("decide", error.to_string()))?;
        let at = Hit { now, ..hit };
        match verdict(strategy, stored.as_deref(), admitted, &at) {
            Ok(decision) => Ok(decision),
            Err(disagreement) => {
                // The script wrote what the strategy would not have: put the strategy's own
                // transition in its place, and answer with its decision.
                let transition = strategy.apply_encoded(stored.as_deref(), &at);
                let target = transition.state.zip(transition.expires_at);
                self.repair(key, &after, target, now, disagreement).await?;
                Ok(transition.decision)
            }
        }
    }

    /// After a script disagreed with its strategy's transition (`disagreement`): stores
    /// `target` (the state and its expiry; `None` deletes the key) if the key still holds
    /// `after`, what the script left there (`""` when absent), and logs it. When the key changed
    /// meanwhile (a decision landed on the script's state), nothing is overwritten and
    /// `disagreement` is returned.
    async fn repair(
        &self,
        key: &str,
        after: &str,
        target: Option<(String, Millis)>,
        now: Millis,
        disagreement: BackendError,
    ) -> Result<(), BackendError> {
        tracing::warn!(
            target: "traffik",
            key,
            %disagreement,
            "a Redis script disagreed with its strategy; storing the strategy's own state"
        );
        let mut invocation = scripts::REPAIR.key(key);
        invocation
            .arg(if after.is_empty() { "0" } else { "1" })
            .arg(after);
        match target {
            Some((state, expires_at)) => invocation.arg(state).arg(
                expires_at
                    .saturating_sub(now)
                    .max(1)
                    .saturating_add(self.keep_ms()),
            ),
            None => invocation.arg("").arg(1),
        };
        let written: u8 = self
            .call("repair", key, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        if written == 1 {
            Ok(())
        } else {
            Err(disagreement)
        }
    }

    /// Several limits as one: one script over every key (one round trip), all or nothing.
    /// Strategies without a script, and keys in several cluster slots, are checked and then
    /// decided one by one instead.
    async fn decide_together(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Result<Vec<Decision>, BackendError> {
        let natives: Option<Vec<Native>> = hits
            .iter()
            .map(|hit| Native::of(hit.strategy, &hit.hit))
            .collect();
        let one_slot = !self.is_cluster()
            || hits
                .windows(2)
                .all(|pair| hash_tag(pair[0].key) == hash_tag(pair[1].key));
        let (Some(natives), Mode::Consume, true, 2..) = (natives, mode, one_slot, hits.len())
        else {
            return crate::backend::check_then_decide(self, hits, mode).await;
        };
        // The script may charge these keys: what the deny cache kept for them may be stale.
        if let Some(cache) = &self.inner.deny_cache {
            for hit in hits {
                cache.forget(hit.key);
            }
        }
        let mut members = Vec::with_capacity(hits.len());
        for (hit, native) in hits.iter().zip(natives) {
            self.check_exact(&native, &hit.hit)?;
            members.push(scripts::Member {
                key: hit.key,
                native,
                cost: hit.hit.cost,
                version: hit.strategy.state_version(),
            });
        }
        // Every hit of a batch carries the same time.
        let invocation = scripts::decisions(&members, self.now(&hits[0].hit), self.deadline());
        let reply: Vec<Value> = self
            .call("decide", "", |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await
            .map_err(|error| {
                let keys: Vec<&str> = hits.iter().map(|hit| hit.key).collect();
                error.on_key(&keys.join(" or "))
            })?;
        let malformed = |reason: String| invalid_reply("decide", reason);
        let mut fields = reply.into_iter();
        let now = fields
            .next()
            .map(Millis::from_redis_value)
            .transpose()
            .map_err(|error| malformed(error.to_string()))?
            .ok_or_else(|| malformed("an empty reply".to_owned()))?;
        let mut decisions = Vec::with_capacity(hits.len());
        let mut reads = Vec::with_capacity(hits.len());
        for hit in hits {
            let (Some(stored), Some(admitted), Some(after)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed(format!("no verdict for `{}`", hit.key)));
            };
            let stored = Option::<String>::from_redis_value(stored)
                .map_err(|error| malformed(error.to_string()))?;
            let admitted =
                u8::from_redis_value(admitted).map_err(|error| malformed(error.to_string()))?;
            let after =
                String::from_redis_value(after).map_err(|error| malformed(error.to_string()))?;
            reads.push((stored, admitted, after));
        }
        // Every verdict checked against the strategies' own transitions; on a disagreement,
        // every key gets what the Rust batch leaves (every transition if all admit, else the
        // states as read).
        let mut disagreement = None;
        for (hit, (stored, admitted, _)) in hits.iter().zip(&reads) {
            match verdict(
                hit.strategy,
                stored.as_deref(),
                *admitted,
                &Hit { now, ..hit.hit },
            ) {
                Ok(decision) => decisions.push(decision),
                Err(error) => {
                    disagreement.get_or_insert(error);
                    decisions.push(
                        hit.strategy
                            .decide_encoded(stored.as_deref(), &Hit { now, ..hit.hit }),
                    );
                }
            }
        }
        let Some(disagreement) = disagreement else {
            return Ok(decisions);
        };
        let all_admit = decisions.iter().all(Decision::is_allowed);
        for (hit, (stored, _, after)) in hits.iter().zip(reads) {
            let target = if all_admit {
                let transition = hit
                    .strategy
                    .apply_encoded(stored.as_deref(), &Hit { now, ..hit.hit });
                transition.state.zip(transition.expires_at)
            } else {
                // As read, with the transition's expiry (at least the state's own: a longer
                // ttl is harmless, lapsed state means nothing).
                stored.map(|state| {
                    let expires_at = hit
                        .strategy
                        .apply_encoded(Some(&state), &Hit { now, ..hit.hit })
                        .expires_at
                        .unwrap_or(now);
                    (state, expires_at)
                })
            };
            self.repair(hit.key, &after, target, now, disagreement.duplicate())
                .await?;
        }
        Ok(decisions)
    }

    /// Refuses, before running it, a script that would compute this hit inexactly.
    fn check_exact(&self, native: &Native, hit: &Hit<'_>) -> Result<(), BackendError> {
        let unsupported = |reason| BackendError::Unsupported {
            backend: NAME.to_owned(),
            reason,
        };
        native.exact_in_lua().map_err(unsupported)?;
        match self.now(hit) {
            Some(now) if now > LUA_EXACT => Err(unsupported(format!(
                "the caller's clock ({now} ms) is past 2^52 ms, the range Lua's doubles hold exactly"
            ))),
            _ => Ok(()),
        }
    }

    /// A refund: the strategy's refund script (one atomic call), or, for a strategy without
    /// one, a read-refund-write under the contract's lock (as its decisions run).
    async fn refund_any(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        charge: Hit<'_>,
        now: Millis,
    ) -> Result<Refund, BackendError> {
        let Some(native) = Native::of(strategy, &charge) else {
            return super::key_value_backend::read_refund_write(
                self,
                self.inner.settings.lock_options(),
                key,
                strategy,
                charge,
            )
            .await;
        };
        self.check_exact(&native, &Hit { now, ..charge })?;
        let invocation = scripts::refund(
            &native,
            key,
            self.now(&Hit { now, ..charge }),
            charge.cost,
            strategy.state_version(),
            scripts::ChargeTime {
                elapsed: now.saturating_sub(charge.now),
                // On Redis TIME the charge ran after the caller read its clock, by at most a
                // command timeout: all the script can place it by.
                slack: match self.inner.time {
                    TimeSource::Caller => 0,
                    // The estimate may have moved between the charge and now: by its
                    // uncertainty and a millisecond of rounding at each end, and by the drift
                    // a refresh corrects (at most 2.5 ms).
                    TimeSource::Fleet => 2 * (self.inner.clock.uncertainty_ms() + 1) + 3,
                    TimeSource::Server => {
                        u64::try_from(self.inner.command_timeout.as_millis()).unwrap_or(u64::MAX)
                    }
                },
            },
            self.deadline(),
        );
        let returned: Result<u8, BackendError> = self
            .call("refund", key, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await;
        // Even a failed refund may have run (a timeout): a refusal kept for the key may be
        // too long now.
        if let Some(cache) = &self.inner.deny_cache {
            cache.forget(key);
        }
        Ok(if returned? == 1 {
            Refund::Returned
        } else {
            Refund::Lapsed
        })
    }

    /// The decision on `key`: from the deny cache when it holds this very hit's refusal, else
    /// from Redis (and a refusal is kept for the next identical hits).
    async fn decide_any(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Result<Decision, BackendError> {
        let cached = self.inner.deny_cache.as_ref().and_then(|cache| {
            Native::of(strategy, &hit)
                .filter(deny_cache::cacheable)
                .map(|native| (cache, native))
        });
        let Some((cache, native)) = cached else {
            return self.decide_uncached(key, strategy, hit, mode).await;
        };
        self.ensure_open()?;
        let ticket = cache.ticket(key);
        let sent = match self.now(&hit) {
            Some(now) => deny_cache::At::Sent(now),
            None => deny_cache::At::Server(std::time::Instant::now()),
        };
        if let Some(refused) = cache.refused(key, &native, hit.cost, sent) {
            crate::telemetry::deny_cache_hit(NAME);
            return Ok(refused);
        }
        let decision = self.decide_uncached(key, strategy, hit, mode).await?;
        if decision.is_throttled() {
            cache.remember(key, &native, hit.cost, (sent, ticket), &decision);
        } else {
            // Another hit on the key went through: a refusal kept for it would report a stale
            // `remaining`.
            cache.forget(key);
        }
        Ok(decision)
    }

    async fn decide_uncached(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Result<Decision, BackendError> {
        if mode == Mode::Peek {
            let (now, stored) = self.read("check", key, &hit).await?;
            return Ok(strategy.decide_encoded(stored.as_deref(), &Hit { now, ..hit }));
        }
        match Native::of(strategy, &hit) {
            Some(native) => self.decide_natively(key, strategy, native, hit).await,
            // A strategy without a script: read-apply-write under the contract's lock.
            None => {
                super::key_value_backend::read_apply_write(
                    self,
                    self.inner.settings.lock_options(),
                    key,
                    strategy,
                    hit,
                    mode,
                )
                .await
            }
        }
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &str {
        NAME
    }

    fn settings(&self) -> &BackendSettings {
        &self.inner.settings
    }

    fn store_id(&self) -> crate::backend::StoreId {
        crate::backend::StoreId::of(&*self.inner)
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(self.decide_any(key, strategy, hit, mode))
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(self.decide_together(hits, mode))
    }

    fn check_rate(&self, strategy: &dyn DynStrategy, rate: &crate::Rate) -> Result<(), String> {
        let context = crate::Context::new();
        match Native::of(strategy, &Hit::new(0, *rate, 1, &context)) {
            Some(native) => native.exact_in_lua(),
            None => Ok(()),
        }
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::boxed(self.refund_any(key, strategy, charge, now))
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(async move {
            let (now, stored) = self.read("stat", key, &hit).await?;
            let mut stat = strategy.stat_encoded(stored.as_deref(), &Hit { now, ..hit });
            key.clone_into(&mut stat.key);
            Ok(stat)
        })
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(async move {
            self.ensure_open()?;
            let cleared = reset::clear_namespace(self).await;
            // After the keys are gone: a refusal kept meanwhile came from the old state.
            if let Some(cache) = &self.inner.deny_cache {
                cache.clear();
            }
            cleared
        })
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        // Nothing is deleted: state outlives this process (other instances share it).
        self.inner.closed.store(true, Ordering::Release);
        if let Some(cache) = &self.inner.deny_cache {
            cache.clear();
        }
        self.inner.connections.close();
        MaybeReady::ready(Ok(()))
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        Some(self)
    }
}

/// The decision a script's reply stands for: the strategy's own transition on the state the
/// script read, which must agree with the script's verdict (`admitted` 1 or 0), else the reply
/// is invalid rather than guessed at.
fn verdict(
    strategy: &dyn DynStrategy,
    stored: Option<&str>,
    admitted: u8,
    at: &Hit<'_>,
) -> Result<Decision, BackendError> {
    let decision = strategy.decide_encoded(stored, at);
    if decision.is_allowed() != (admitted == 1) {
        return Err(invalid_reply(
            "decide",
            format!(
                "the `{}` script {} a hit its strategy {} (stored state {stored:?})",
                strategy.name(),
                if admitted == 1 { "admitted" } else { "refused" },
                if decision.is_allowed() {
                    "admits"
                } else {
                    "refuses"
                },
            ),
        ));
    }
    Ok(decision)
}

/// The part of a key Redis Cluster hashes: between the first `{` and the next `}` when not
/// empty, else the whole key.
fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("namespace", &self.inner.settings.namespace())
            .field("connection", &self.inner.connections.kind())
            .field("connections", &self.inner.connections.count())
            .field("command_timeout", &self.inner.command_timeout)
            .field("time", &self.inner.time)
            .field(
                "deny_cache",
                &self
                    .inner
                    .deny_cache
                    .as_ref()
                    .map(deny_cache::DenyCache::capacity),
            )
            .field("redlock", &self.inner.redlock)
            .finish_non_exhaustive()
    }
}
