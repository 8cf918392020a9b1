//! Where Redis is ([`Target`]): a URL, cluster seeds, sentinels and a master name, or a client,
//! connection or pool the application already has; and how each becomes the backend's
//! [`Handle`]s, with the builder's timeouts wherever traffik opens the connections itself.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::sentinel::SentinelNodeConnectionInfo;

use super::connection::Handle;
use super::error::{RedisConnectError, from_redis, invalid_setting, timeout};
use super::sentinel::SentinelConnection;

/// How long connecting, and each operation, may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// Connecting and each reconnect attempt.
    pub(super) connect: Duration,
    /// Any one operation.
    pub(super) command: Duration,
}

/// Where Redis is.
pub(super) enum Target {
    /// A single node's URL.
    Node(String),
    /// Seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
    /// The master a group of sentinels names.
    Sentinel(Box<SentinelTarget>),
    /// The application's client for a single node (traffik opens the connections).
    Client(Box<redis::Client>),
    /// The application's connection manager, used as it is.
    Manager(ConnectionManager),
    /// The application's cluster client (traffik opens the connection).
    ClusterClient(Box<ClusterClient>),
    /// The application's pool, used as it is.
    #[cfg(feature = "redis-deadpool")]
    Pool(deadpool_redis::Pool),
}

/// Sentinels, the master's name, and how to reach and watch the master.
#[derive(Clone)]
pub(super) struct SentinelTarget {
    /// The sentinels' URLs (`redis://[user:password@]host:port`).
    pub(super) sentinels: Vec<String>,
    /// The master's name in the sentinels' configuration (`sentinel monitor <name> …`).
    pub(super) master: String,
    /// How to connect to the master once found (TLS, credentials, database).
    pub(super) master_info: SentinelNodeConnectionInfo,
    /// How often the sentinels are asked for the master besides after an error.
    pub(super) check_interval: Duration,
}

impl Target {
    /// Opens the handles: `connections` managers for a single node (ignored where the
    /// connection is the application's, or a cluster's or sentinel's single one).
    pub(super) async fn open(
        &self,
        connections: usize,
        timeouts: Timeouts,
    ) -> Result<Vec<Handle>, RedisConnectError> {
        Ok(match self {
            Target::Node(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|error| invalid_setting(format!("invalid Redis URL: {error}")))?;
                managers(&client, connections, timeouts).await?
            }
            Target::Client(client) => managers(client, connections, timeouts).await?,
            Target::Cluster(seeds) => {
                if seeds.is_empty() {
                    return Err(invalid_setting("a cluster needs at least one seed node").into());
                }
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(timeouts.connect)
                    .response_timeout(timeouts.command)
                    .build()
                    .map_err(|error| invalid_setting(format!("invalid cluster seeds: {error}")))?;
                vec![Handle::Cluster(
                    cluster_connection(&client, timeouts).await?,
                )]
            }
            Target::ClusterClient(client) => {
                vec![Handle::Cluster(cluster_connection(client, timeouts).await?)]
            }
            Target::Sentinel(target) => {
                vec![Handle::Sentinel(
                    SentinelConnection::connect(target, timeouts).await?,
                )]
            }
            Target::Manager(manager) => vec![Handle::Node(manager.clone())],
            #[cfg(feature = "redis-deadpool")]
            Target::Pool(pool) => vec![Handle::Pool(pool.clone())],
        })
    }
}

/// `count` connection managers on `client`.
async fn managers(
    client: &redis::Client,
    count: usize,
    timeouts: Timeouts,
) -> Result<Vec<Handle>, RedisConnectError> {
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        handles.push(Handle::Node(
            node_connection(client.clone(), timeouts, "connect").await?,
        ));
    }
    Ok(handles)
}

/// A connection manager on `client`'s node: one plain attempt first, so that refused
/// credentials (and a server that is not Redis) are reported as such (the manager retries,
/// which would turn them into a timeout); then the manager, reconnecting by itself with the
/// connect timeout per attempt and the command timeout as its response timeout.
pub(super) async fn node_connection(
    client: redis::Client,
    timeouts: Timeouts,
    operation: &'static str,
) -> Result<ConnectionManager, RedisConnectError> {
    let first = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.connect));
    match tokio::time::timeout(
        timeouts.connect,
        client.get_multiplexed_async_connection_with_config(&first),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            let address = client.get_connection_info().addr().to_string();
            return Err(connect_error(&address, operation, error, timeouts.connect));
        }
        Err(_) => return Err(timeout(operation, timeouts.connect).into()),
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.command))
        .set_number_of_retries(2)
        .set_max_delay(timeouts.connect);
    let connect = ConnectionManager::new_with_config(client, config);
    match tokio::time::timeout(timeouts.connect, connect).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(from_redis(operation, error, timeouts.connect).into()),
        Err(_) => Err(timeout(operation, timeouts.connect).into()),
    }
}

/// A connection manager on the node at `url` (a Redlock node).
pub(super) async fn node_at(
    url: &str,
    timeouts: Timeouts,
    operation: &'static str,
) -> Result<ConnectionManager, RedisConnectError> {
    let client = redis::Client::open(url)
        .map_err(|error| invalid_setting(format!("invalid Redis URL: {error}")))?;
    node_connection(client, timeouts, operation).await
}

/// The cluster connection of `client`, with the builder's connect timeout and the command
/// timeout as the response timeout of each node's connection.
async fn cluster_connection(
    client: &ClusterClient,
    timeouts: Timeouts,
) -> Result<redis::cluster_async::ClusterConnection, RedisConnectError> {
    let config = ClusterConfig::new()
        .set_connection_timeout(timeouts.connect)
        .set_response_timeout(timeouts.command);
    match tokio::time::timeout(
        timeouts.connect,
        client.get_async_connection_with_config(config),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(from_redis("connect", error, timeouts.connect).into()),
        Err(_) => Err(timeout("connect", timeouts.connect).into()),
    }
}

/// A failed first connection as the error that names its cause: a database that does not
/// exist or a server that does not speak Redis are settings, not outages.
fn connect_error(
    address: &str,
    operation: &'static str,
    error: redis::RedisError,
    after: Duration,
) -> RedisConnectError {
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

/// A URL without its credentials (`redis://host:port/db`), for `Debug` and logs.
pub(super) fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, address))) => format!("{scheme}://{address}"),
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(url) => f.debug_tuple("Node").field(&redacted(url)).finish(),
            Target::Cluster(seeds) => f
                .debug_tuple("Cluster")
                .field(&seeds.iter().map(|seed| redacted(seed)).collect::<Vec<_>>())
                .finish(),
            Target::Sentinel(target) => f
                .debug_struct("Sentinel")
                .field(
                    "sentinels",
                    &target
                        .sentinels
                        .iter()
                        .map(|url| redacted(url))
                        .collect::<Vec<_>>(),
                )
                .field("master", &target.master)
                .field("check_interval", &target.check_interval)
                .finish_non_exhaustive(),
            Target::Client(client) => f
                .debug_tuple("Client")
                .field(&client.get_connection_info().addr().to_string())
                .finish(),
            Target::Manager(_) => f.write_str("ConnectionManager"),
            Target::ClusterClient(_) => f.write_str("ClusterClient"),
            #[cfg(feature = "redis-deadpool")]
            Target::Pool(pool) => f.debug_tuple("Pool").field(&pool.status()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_debug() {
        assert_eq!(
            redacted("redis://app:secret@10.0.0.1:6379/2"),
            "redis://10.0.0.1:6379/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let shown = format!("{:?}", Target::Node("redis://:pa@ss@h:1".to_owned()));
        assert!(!shown.contains("pa"), "{shown}");
        let builder = crate::RedisBackend::builder("redis://app:secret1@10.0.0.1:6379")
            .redlock(["redis://app:secret2@10.0.0.2:6379", "redis://10.0.0.3:6379"]);
        let shown = format!("{builder:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("10.0.0.2:6379"), "{shown}");
    }
}
