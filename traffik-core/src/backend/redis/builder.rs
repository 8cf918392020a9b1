//! [`RedisBackendBuilder`]: where Redis is, and how the backend talks to it.

use std::time::Duration;

use redis::sentinel::SentinelNodeConnectionInfo;

use super::connection::Connections;
use super::error::{RedisConnectError, invalid_setting};
use super::lock::Redlock;
use super::target::{SentinelTarget, Target, Timeouts, node_at, redacted};
use super::{Inner, RedisBackend};
use crate::OnError;
use crate::backend::{BackendSettings, LockOptions};

/// Which clock decisions read. The choice, the skew bound and the figures are in the guide's
/// Redis chapter (`docs/redis.md`, "Clock").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeSource {
    /// Redis `TIME`, read inside each script (default): every instance decides on the very same
    /// clock (on a cluster, each key's own node's), and every script carries a deadline (a
    /// script Redis runs after its caller gave up, Redis having stalled past the command
    /// timeout, changes nothing).
    #[default]
    Server,
    /// Redis's clock, estimated in each instance and sent with each decision, for fleets whose
    /// Redis is the bottleneck: no `TIME` call in each script (7–10 % of a decision's Redis
    /// instructions, measured by `tests/benches/redis_cpu.rs`). The estimate is the middle of
    /// the shortest of three `TIME` round trips, refreshed every 5 s (on a cluster, read on the
    /// node holding `<namespace>:traffik-clock`); every instance decides within half that round
    /// trip, plus the drift since the reading (at most 500 ppm), plus 1 ms, of Redis's clock.
    /// The costs: scripts carry no deadline (checking one needs `TIME`), so after Redis stalls
    /// past the command timeout, the decisions queued meanwhile still count when it resumes,
    /// though their callers got `Timeout`; and keys live about a command timeout longer (a call
    /// may run after the `now` it carries, and must still find the state). `TIME` stays in the
    /// ACL: the estimate reads it.
    Fleet,
    /// The throttle's clock (the `now` of each hit): for tests with a manual clock, and for
    /// replaying recorded traffic. Not for a fleet: each host's clock differs.
    Caller,
}

/// Builds a [`RedisBackend`]: from a URL ([`RedisBackend::builder`]), cluster seeds
/// ([`RedisBackend::cluster`]), sentinels ([`RedisBackend::sentinel`]), or what the application
/// already has ([`RedisBackend::from_client`], [`from_connection_manager`](RedisBackend::from_connection_manager),
/// [`from_cluster_client`](RedisBackend::from_cluster_client), and `from_pool` with the
/// `redis-deadpool` feature). The settings below apply to every one, except where a setting
/// says otherwise.
#[must_use = "a builder does nothing until `connect` is awaited"]
pub struct RedisBackendBuilder {
    target: Target,
    settings: BackendSettings,
    connections: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    time: TimeSource,
    deny_cache: usize,
    redlock: Vec<String>,
    require_noeviction: bool,
    /// A sentinel-only setting used on another kind of backend (refused at connect).
    misplaced: Option<&'static str>,
}

impl std::fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs without their passwords: a builder ends up in logs.
        let redlock: Vec<String> = self.redlock.iter().map(|url| redacted(url)).collect();
        f.debug_struct("RedisBackendBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .field("connections", &self.connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("time", &self.time)
            .field("deny_cache", &self.deny_cache)
            .field("redlock", &redlock)
            .field("require_noeviction", &self.require_noeviction)
            .field("misplaced", &self.misplaced)
            .finish()
    }
}

/// How often a backend on Redis Sentinel asks the sentinels for the master by default.
const SENTINEL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl RedisBackendBuilder {
    pub(super) fn node(url: impl Into<String>) -> Self {
        Self::with_target(Target::Node(url.into()))
    }

    pub(super) fn cluster<I, S>(seeds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::Cluster(seeds.into_iter().map(Into::into).collect()))
    }

    pub(super) fn sentinel<I, S>(sentinels: I, master: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::Sentinel(Box::new(SentinelTarget {
            sentinels: sentinels.into_iter().map(Into::into).collect(),
            master: master.into(),
            master_info: SentinelNodeConnectionInfo::default(),
            check_interval: SENTINEL_CHECK_INTERVAL,
        })))
    }

    pub(super) fn with_target(target: Target) -> Self {
        RedisBackendBuilder {
            target,
            settings: BackendSettings::new(),
            connections: 1,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_millis(500),
            time: TimeSource::Server,
            deny_cache: 0,
            require_noeviction: false,
            redlock: Vec::new(),
            misplaced: None,
        }
    }

    /// The prefix of every key (default `traffik`; letters, digits, `.`, `_`, `-`, `/`, `:`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings = self.settings.with_namespace(namespace);
        self
    }

    /// How many multiplexed connections to open to a single node (default 1, at most 64), used
    /// in turn. One connection pipelines every concurrent caller's commands; a second can help
    /// when one client core cannot keep the socket busy. Applies to [`RedisBackend::builder`]
    /// and [`RedisBackend::from_client`]; ignored for a cluster (whose connection already holds
    /// one per node), for Redis Sentinel (one connection to the master), and for a connection
    /// manager or pool the application brings (used as it is).
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// How long connecting (and each reconnect attempt) may take (default 2 s). Bounds
    /// [`connect`](Self::connect) for every kind of backend; for a connection manager or pool
    /// the application brings, which traffik does not open, it bounds only the check that
    /// `connect` runs on it (their reconnects follow the application's own settings). On Redis
    /// Sentinel it also bounds each lookup of the master.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long any one operation may take before it fails with
    /// [`BackendError::Timeout`](crate::backend::BackendError::Timeout) (default 500 ms). Bounds
    /// every operation whatever the connection (on a pool, the checkout included); where traffik
    /// opens the connections (a URL, a [`redis::Client`], cluster seeds or a cluster client,
    /// sentinels) it is also their response timeout.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Which clock decisions read (default [`TimeSource::Server`]; see [`TimeSource`]).
    pub fn time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// Keeps up to `capacity` refusals (rounded up to a multiple of 16) in this process and
    /// refuses the same hit again, without a Redis call, until its wait is over (default 0:
    /// off). Exact: an entry answers only a hit identical to the refused one (same key,
    /// strategy parameters and cost), for no longer than Redis's own wait (counted from when
    /// the call was sent, less 1 ms and 0.1 % on Redis's clock), so it never refuses what Redis
    /// would admit; a refund, `reset`, batch or admitted hit through this backend forgets the
    /// entries it touches. A refund or reset by *another* instance is seen when the cached
    /// wait ends. Not used for the adaptive strategy (its limit moves with demand), for custom
    /// strategies without a script, or for several limits decided in one script. Each entry
    /// is about 200 bytes plus its key. See `docs/redis.md` ("Local deny cache") and decision
    /// 0015.
    pub fn deny_cache(mut self, capacity: usize) -> Self {
        self.deny_cache = capacity;
        self
    }

    /// How the key-value contract's locks are taken (custom strategies; default: the
    /// `TRAFFIK_DEFAULT_*` settings, [`LockOptions::from_env`], read by
    /// [`connect`](Self::connect), where an invalid variable is a configuration error).
    pub fn lock_options(mut self, options: LockOptions) -> Self {
        self.settings = self.settings.with_lock_options(options);
        self
    }

    /// Takes the contract's locks with Redlock across these independent Redis nodes (an odd
    /// number, usually 3 or 5) instead of on the backend's own node.
    pub fn redlock<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redlock = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses, at [`connect`](Self::connect), a server that evicts keys under memory pressure
    /// (a `maxmemory` with any `maxmemory-policy` but `noeviction`), as
    /// [`RedisConnectError::Evicting`]: an evicted limiter key is a client whose budget is full
    /// again. Without it (the default) such a server is logged once at WARN. A server that does
    /// not say (`CONFIG` renamed or not permitted) is accepted either way.
    pub fn require_noeviction(mut self, require: bool) -> Self {
        self.require_noeviction = require;
        self
    }

    /// How to connect to the master the sentinels name (TLS, username and password, database;
    /// default: plain TCP, no credentials, database 0), as the `redis` crate's
    /// [`SentinelNodeConnectionInfo`]. The sentinels' own credentials go in their URLs. Only for
    /// [`RedisBackend::sentinel`]: on another backend, [`connect`](Self::connect) refuses it.
    ///
    /// ```no_run
    /// use traffik_core::RedisBackend;
    /// use traffik_core::backend::redis::redis::RedisConnectionInfo;
    /// use traffik_core::backend::redis::redis::sentinel::SentinelNodeConnectionInfo;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let master = SentinelNodeConnectionInfo::default().set_redis_connection_info(
    ///     RedisConnectionInfo::default().set_password("secret").set_db(2),
    /// );
    /// let backend = RedisBackend::sentinel(["redis://10.0.0.5:26379"], "mymaster")
    ///     .sentinel_master_connection(master)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn sentinel_master_connection(mut self, master: SentinelNodeConnectionInfo) -> Self {
        match &mut self.target {
            Target::Sentinel(target) => target.master_info = master,
            _ => self.misplaced = Some("sentinel_master_connection"),
        }
        self
    }

    /// How often the sentinels are asked which node is the master (default 1 s), besides at
    /// once when a reply suggests a failover (`READONLY`, a lost connection). After a failover
    /// decisions reach the new master within about this interval of the sentinels naming it;
    /// until then they go to the old one (which, until the sentinels turn it into a replica,
    /// still accepts writes that the failover will discard). Only for
    /// [`RedisBackend::sentinel`]: on another backend, [`connect`](Self::connect) refuses it.
    pub fn sentinel_check_interval(mut self, interval: Duration) -> Self {
        match &mut self.target {
            Target::Sentinel(target) => target.check_interval = interval,
            _ => self.misplaced = Some("sentinel_check_interval"),
        }
        self
    }

    /// The on-error policy for throttles on this backend that set none.
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings = self.settings.with_on_error(policy);
        self
    }

    /// Attaches a typed value for the protocol crates (see [`Extensions`](crate::backend::Extensions)).
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.settings = self.settings.with_extension(value);
        self
    }

    /// Checks the settings and connects (bounded by the connect timeout), then proves the
    /// connection can decide (see `docs/redis.md`, "What `connect` proves").
    ///
    /// # Errors
    ///
    /// [`RedisConnectError::Config`] for a setting that cannot work (namespace, URL, timeouts,
    /// connection count, lock options, a sentinel setting on another kind of backend),
    /// [`RedisConnectError::Backend`] when a node cannot be reached in time or refuses the
    /// connection (or no sentinel names the master), and [`RedisConnectError::Evicting`] when
    /// [`require_noeviction`](Self::require_noeviction) is set and the server evicts keys.
    pub async fn connect(mut self) -> Result<RedisBackend, RedisConnectError> {
        self.settings.check_namespace()?;
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(invalid_setting("timeouts must be longer than zero").into());
        }
        if let Some(setting) = self.misplaced {
            return Err(invalid_setting(format!(
                "`{setting}` applies only to a backend built with `RedisBackend::sentinel`"
            ))
            .into());
        }
        let settings = std::mem::take(&mut self.settings).resolve()?;
        if !(1..=64).contains(&self.connections) {
            return Err(invalid_setting(format!(
                "connections must be between 1 and 64, not {}",
                self.connections
            ))
            .into());
        }
        let timeouts = Timeouts {
            connect: self.connect_timeout,
            command: self.command_timeout,
        };
        let handles = self.target.open(self.connections, timeouts).await?;
        super::probe::inspect(
            &mut handles[0].clone(),
            settings.namespace(),
            self.command_timeout,
            self.require_noeviction,
        )
        .await?;
        let clock_key = super::fleet_clock::key(settings.namespace());
        let clock = super::fleet_clock::FleetClock::start(
            &mut handles[0].clone(),
            &clock_key,
            self.command_timeout,
        )
        .await
        .map_err(RedisConnectError::Backend)?;
        let redlock = if self.redlock.is_empty() {
            None
        } else {
            let mut nodes = Vec::with_capacity(self.redlock.len());
            for url in &self.redlock {
                nodes.push(node_at(url, timeouts, "connect to a Redlock node").await?);
            }
            Some(Redlock::new(nodes))
        };
        let backend = RedisBackend::from_inner(Inner {
            connections: Connections::new(handles),
            settings,
            command_timeout: self.command_timeout,
            time: self.time,
            deny_cache: (self.deny_cache > 0)
                .then(|| super::deny_cache::DenyCache::new(self.deny_cache)),
            redlock,
            closed: std::sync::atomic::AtomicBool::new(false),
            clock,
            clock_key,
        });
        backend.keep_clock();
        Ok(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_that_cannot_work_are_config_errors() {
        for builder in [
            RedisBackendBuilder::node("redis://127.0.0.1:1").namespace("has space"),
            RedisBackendBuilder::node("redis://127.0.0.1:1").connections(0),
            RedisBackendBuilder::node("redis://127.0.0.1:1").command_timeout(Duration::ZERO),
            RedisBackendBuilder::node("mongodb://127.0.0.1"),
            RedisBackendBuilder::cluster(Vec::<String>::new()),
            RedisBackendBuilder::sentinel(Vec::<String>::new(), "mymaster"),
            RedisBackendBuilder::sentinel(["redis://127.0.0.1:1"], ""),
            RedisBackendBuilder::sentinel(["redis://127.0.0.1:1"], "mymaster")
                .sentinel_check_interval(Duration::ZERO),
            RedisBackendBuilder::sentinel(["mongodb://127.0.0.1"], "mymaster"),
            RedisBackendBuilder::node("redis://127.0.0.1:1")
                .sentinel_check_interval(Duration::from_secs(1)),
            RedisBackendBuilder::node("redis://127.0.0.1:1")
                .sentinel_master_connection(SentinelNodeConnectionInfo::default()),
        ] {
            let error = builder.connect().await.unwrap_err();
            assert!(matches!(error, RedisConnectError::Config(_)), "{error}");
        }
    }

    #[test]
    fn rediss_urls_are_accepted_exactly_when_tls_is_built() {
        let opened = redis::Client::open("rediss://127.0.0.1:6380");
        assert_eq!(opened.is_ok(), cfg!(feature = "redis-tls"), "{opened:?}");
    }
}
