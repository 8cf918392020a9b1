//! The backend's connections: shared multiplexed connections to one node (a few
//! `ConnectionManager`s, used in turn), to a Redis Cluster (one `ClusterConnection`, which routes
//! each key to its slot's primary) or to the master Redis Sentinel names (following a failover);
//! or, when the application brings one, a `deadpool-redis` pool.
//!
//! A multiplexed connection pipelines concurrent callers' commands; only the pool checks a
//! connection out per command (see `docs/decisions/0007-no-deadpool.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::script_loads::{Loading, ScriptLoads};
use super::sentinel::SentinelConnection;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// One handle to Redis, cheap to clone.
#[derive(Clone)]
pub(super) enum Handle {
    /// A single node (reconnects by itself).
    Node(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
    /// The master Redis Sentinel names (moves to the new master after a failover).
    Sentinel(SentinelConnection),
    /// The application's `deadpool-redis` pool: one checkout per command.
    #[cfg(feature = "redis-deadpool")]
    Pool(deadpool_redis::Pool),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Node(connection) => connection.req_packed_command(cmd),
            Handle::Cluster(connection) => connection.req_packed_command(cmd),
            Handle::Sentinel(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "redis-deadpool")]
            Handle::Pool(pool) => super::pool::request(pool, cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Handle::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Handle::Sentinel(connection) => connection.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-deadpool")]
            Handle::Pool(pool) => super::pool::request_pipeline(pool, pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Node(connection) => connection.get_db(),
            Handle::Cluster(connection) => connection.get_db(),
            Handle::Sentinel(connection) => connection.get_db(),
            // The pool does not say which database its connections select (only they know).
            #[cfg(feature = "redis-deadpool")]
            Handle::Pool(_) => 0,
        }
    }
}

/// The backend's connections, handed out in turn.
pub(super) struct Connections {
    handles: Box<[Handle]>,
    next: AtomicUsize,
    loads: Arc<ScriptLoads>,
}

/// A primary of a cluster, by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Primary {
    pub(super) host: String,
    pub(super) port: u16,
}

impl Connections {
    pub(super) fn new(handles: Vec<Handle>) -> Self {
        Connections {
            handles: handles.into_boxed_slice(),
            next: AtomicUsize::new(0),
            loads: Arc::default(),
        }
    }

    /// The next connection, its script reloads in single flight with every other caller's.
    pub(super) fn get(&self) -> Loading {
        Loading {
            handle: self.handle(),
            loads: Arc::clone(&self.loads),
            evalsha_sent: None,
            skipped_load: None,
        }
    }

    /// The next handle (a clone shares the connection).
    pub(super) fn handle(&self) -> Handle {
        let index = if self.handles.len() == 1 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len()
        };
        self.handles[index].clone()
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.handles.first(), Some(Handle::Cluster(_)))
    }

    pub(super) fn count(&self) -> usize {
        self.handles.len()
    }

    /// What the handles are, for `Debug`: `node`, `cluster`, `sentinel` or `pool`.
    pub(super) fn kind(&self) -> &'static str {
        match self.handles.first() {
            Some(Handle::Cluster(_)) => "cluster",
            Some(Handle::Sentinel(_)) => "sentinel",
            #[cfg(feature = "redis-deadpool")]
            Some(Handle::Pool(_)) => "pool",
            Some(Handle::Node(_)) | None => "node",
        }
    }

    /// Stops what runs in the background for the handles (the sentinel watcher).
    pub(super) fn close(&self) {
        for handle in &self.handles {
            if let Handle::Sentinel(connection) = handle {
                connection.stop();
            }
        }
    }
}

/// The primaries in a `CLUSTER NODES` reply (skipping failed nodes).
pub(super) fn primaries(cluster_nodes: &str) -> Vec<Primary> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (_, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            let address = address.split('@').next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some(Primary {
                host: host.to_owned(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

impl Primary {
    pub(super) fn route(&self) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_primaries_from_cluster_nodes() {
        let reply = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1426238318243 3 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
";
        assert_eq!(
            primaries(reply),
            [
                Primary {
                    host: "127.0.0.1".to_owned(),
                    port: 30002
                },
                Primary {
                    host: "127.0.0.1".to_owned(),
                    port: 30001
                }
            ]
        );
    }
}
