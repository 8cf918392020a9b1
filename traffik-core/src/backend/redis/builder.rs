//! [`RedisBackendBuilder`]: where Redis is, and how the backend talks to it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;

use super::connection::{Connections, Handle};
use super::error::{RedisConnectError, from_redis, invalid_setting, timeout};
use super::lock::Redlock;
use super::{Inner, RedisBackend};
use crate::OnError;
use crate::backend::{BackendSettings, LockOptions};

/// Which clock decisions read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeSource {
    /// Redis `TIME`, read inside each script: every app instance shares one clock (default).
    #[default]
    Server,
    /// The throttle's clock (the `now` of each hit): for tests with a manual clock, and for
    /// replaying recorded traffic.
    Caller,
}

#[derive(Debug, Clone)]
enum Target {
    Node(String),
    Cluster(Vec<String>),
}

/// Builds a [`RedisBackend`]; see [`RedisBackend::builder`] and [`RedisBackend::cluster`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `connect` is awaited"]
pub struct RedisBackendBuilder {
    target: Target,
    settings: BackendSettings,
    connections: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    time: TimeSource,
    redlock: Vec<String>,
    require_noeviction: bool,
}

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

    fn with_target(target: Target) -> Self {
        RedisBackendBuilder {
            target,
            settings: BackendSettings::new(),
            connections: 1,
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_millis(500),
            time: TimeSource::Server,
            require_noeviction: false,
            redlock: Vec::new(),
        }
    }

    /// The prefix of every key (default `traffik`; letters, digits, `.`, `_`, `-`, `/`, `:`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings = self.settings.with_namespace(namespace);
        self
    }

    /// How many multiplexed connections to open to a single node (default 1), used in turn.
    /// One connection pipelines every concurrent caller's commands; a second can help when
    /// one client core cannot keep the socket busy. Ignored for a cluster, whose connection
    /// already holds one per node.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// How long connecting (and each reconnect attempt) may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long any one operation may take before it fails with
    /// [`BackendError::Timeout`](crate::backend::BackendError::Timeout) (default 500 ms).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Which clock decisions read (default [`TimeSource::Server`]).
    pub fn time_source(mut self, time: TimeSource) -> Self {
        self.time = time;
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

    /// Checks the settings and connects (bounded by the connect timeout).
    ///
    /// # Errors
    ///
    /// [`RedisConnectError::Config`] for a setting that cannot work (namespace, URL, timeouts,
    /// connection count, lock options), [`RedisConnectError::Backend`] when a node cannot be
    /// reached in time or refuses the connection, and [`RedisConnectError::Evicting`] when
    /// [`require_noeviction`](Self::require_noeviction) is set and the server evicts keys.
    pub async fn connect(mut self) -> Result<RedisBackend, RedisConnectError> {
        self.settings.check_namespace()?;
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(invalid_setting("timeouts must be longer than zero").into());
        }
        let settings = std::mem::take(&mut self.settings).resolve()?;
        if !(1..=64).contains(&self.connections) {
            return Err(invalid_setting(format!(
                "connections must be between 1 and 64, not {}",
                self.connections
            ))
            .into());
        }
        let handles = match &self.target {
            Target::Node(url) => {
                let mut handles = Vec::with_capacity(self.connections);
                for _ in 0..self.connections {
                    handles.push(Handle::Node(self.node_connection(url, "connect").await?));
                }
                handles
            }
            Target::Cluster(seeds) => vec![Handle::Cluster(self.cluster_connection(seeds).await?)],
        };
        let skew_ms = super::probe::inspect(
            &mut handles[0].clone(),
            settings.namespace(),
            self.command_timeout,
            self.require_noeviction,
        )
        .await?;
        let redlock = if self.redlock.is_empty() {
            None
        } else {
            let mut nodes = Vec::with_capacity(self.redlock.len());
            for url in &self.redlock {
                nodes.push(
                    self.node_connection(url, "connect to a Redlock node")
                        .await?,
                );
            }
            Some(Redlock::new(nodes))
        };
        Ok(RedisBackend::from_inner(Inner {
            connections: Connections::new(handles),
            settings,
            command_timeout: self.command_timeout,
            time: self.time,
            redlock,
            closed: std::sync::atomic::AtomicBool::new(false),
            skew_ms,
        }))
    }

    async fn node_connection(
        &self,
        url: &str,
        operation: &'static str,
    ) -> Result<ConnectionManager, RedisConnectError> {
        let client = redis::Client::open(url)
            .map_err(|error| invalid_setting(format!("invalid Redis URL: {error}")))?;
        // One plain attempt first, with the configured timeouts, so that refused credentials
        // (and a server that is not Redis) are reported as such: the manager below retries,
        // which would turn them into a timeout.
        let first = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.connect_timeout));
        match tokio::time::timeout(
            self.connect_timeout,
            client.get_multiplexed_async_connection_with_config(&first),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                return Err(connect_error(url, operation, error, self.connect_timeout));
            }
            Err(_) => return Err(timeout(operation, self.connect_timeout).into()),
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(self.connect_timeout);
        let connect = ConnectionManager::new_with_config(client, config);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(from_redis(operation, error, self.connect_timeout).into()),
            Err(_) => Err(timeout(operation, self.connect_timeout).into()),
        }
    }

    async fn cluster_connection(
        &self,
        seeds: &[String],
    ) -> Result<redis::cluster_async::ClusterConnection, RedisConnectError> {
        if seeds.is_empty() {
            return Err(invalid_setting("a cluster needs at least one seed node").into());
        }
        let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.command_timeout)
            .build()
            .map_err(|error| invalid_setting(format!("invalid cluster seeds: {error}")))?;
        match tokio::time::timeout(self.connect_timeout, client.get_async_connection()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(from_redis("connect", error, self.connect_timeout).into()),
            Err(_) => Err(timeout("connect", self.connect_timeout).into()),
        }
    }
}

/// A failed first connection as the error that names its cause: a URL whose database does not
/// exist or a server that does not speak Redis are settings, not outages.
fn connect_error(
    url: &str,
    operation: &'static str,
    error: redis::RedisError,
    after: Duration,
) -> RedisConnectError {
    let address = url.rsplit('@').next().unwrap_or(url);
    if error
        .detail()
        .is_some_and(|detail| detail.contains("DB index is out of range"))
    {
        return invalid_setting(format!(
            "the database number in `{address}` does not exist on that server (its `databases` setting)"
        ))
        .into();
    }
    if error.kind() == redis::ErrorKind::Parse {
        return invalid_setting(format!(
            "the server at `{address}` did not answer like Redis ({error})"
        ))
        .into();
    }
    from_redis(operation, error, after).into()
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
