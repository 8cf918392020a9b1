//! `reset`: deletes this backend's namespace and nothing else, in batches (`SCAN` of 500 keys
//! then one pipelined round of single-key `UNLINK`s), so Redis is never blocked for long and
//! no multi-key command crosses cluster slots. On a cluster, every primary is scanned.

use redis::cluster_routing::SingleNodeRoutingInfo;
use redis::{Pipeline, Value};

use super::RedisBackend;
use super::connection::{Handle, primaries};
use super::error::{from_redis, invalid_reply, timeout};
use crate::backend::BackendError;

const BATCH: usize = 500;

pub(super) async fn clear_namespace(backend: &RedisBackend) -> Result<(), BackendError> {
    // Valid namespaces hold no glob character (`*?[]\\`), so the prefix matches literally.
    let pattern = format!(
        "{}*",
        crate::key::namespace_prefix(backend.inner.settings.namespace())
    );
    match backend.inner.connections.handle() {
        Handle::Cluster(mut connection) => {
            let after = backend.inner.command_timeout;
            let nodes: String = tokio::time::timeout(
                after,
                redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut connection),
            )
            .await
            .map_err(|_| timeout("reset", after))?
            .map_err(|error| from_redis("reset", error, after))?;
            let primaries = primaries(&nodes);
            if primaries.is_empty() {
                return Err(invalid_reply("reset", "CLUSTER NODES lists no primary"));
            }
            for primary in primaries {
                clear_node(
                    backend,
                    Handle::Cluster(connection.clone()),
                    Some(primary.route()),
                    &pattern,
                )
                .await?;
            }
            Ok(())
        }
        // A single node: its own, the master Sentinel names, or the application's.
        single => clear_node(backend, single, None, &pattern).await,
    }
}

/// Scans one node (a cluster primary by `route`) and unlinks what matches.
async fn clear_node(
    backend: &RedisBackend,
    handle: Handle,
    route: Option<SingleNodeRoutingInfo>,
    pattern: &str,
) -> Result<(), BackendError> {
    let after = backend.inner.command_timeout;
    let mut cursor = 0_u64;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(BATCH);
        let reply = send(handle.clone(), route.as_ref(), scan, after).await?;
        let (next, keys): (u64, Vec<String>) = redis::from_redis_value(reply)
            .map_err(|error| invalid_reply("reset", error.to_string()))?;
        if !keys.is_empty() {
            let mut pipeline = Pipeline::with_capacity(keys.len());
            for key in &keys {
                pipeline.cmd("UNLINK").arg(key).ignore();
            }
            send_pipeline(handle.clone(), route.as_ref(), pipeline, after).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

async fn send(
    handle: Handle,
    route: Option<&SingleNodeRoutingInfo>,
    command: redis::Cmd,
    after: std::time::Duration,
) -> Result<Value, BackendError> {
    let request = async move {
        match (handle, route) {
            (Handle::Cluster(mut connection), Some(route)) => {
                connection
                    .route_command(
                        command,
                        redis::cluster_routing::RoutingInfo::SingleNode(route.clone()),
                    )
                    .await
            }
            (mut handle, _) => command.query_async(&mut handle).await,
        }
    };
    tokio::time::timeout(after, request)
        .await
        .map_err(|_| timeout("reset", after))?
        .map_err(|error| from_redis("reset", error, after))
}

async fn send_pipeline(
    handle: Handle,
    route: Option<&SingleNodeRoutingInfo>,
    pipeline: Pipeline,
    after: std::time::Duration,
) -> Result<(), BackendError> {
    let count = pipeline.len();
    let request = async move {
        match (handle, route) {
            (Handle::Cluster(mut connection), Some(route)) => connection
                .route_pipeline(pipeline, 0, count, route.clone())
                .await
                .map(drop),
            (mut handle, _) => pipeline.query_async::<()>(&mut handle).await,
        }
    };
    tokio::time::timeout(after, request)
        .await
        .map_err(|_| timeout("reset", after))?
        .map_err(|error| from_redis("reset", error, after))
}
