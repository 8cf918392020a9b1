//! The application's `deadpool-redis` pool as the backend's connection (feature
//! `redis-deadpool`): each command checks a connection out, sends itself, and gives the
//! connection back. A checkout that fails is a [`RedisError`] like any other, so the caller gets
//! the same typed [`BackendError`](crate::backend::BackendError)s: a wait or create timeout is a
//! `Timeout`, a closed pool or a connection that cannot be made is `Unavailable`.
//!
//! `deadpool-redis` recycles a connection at each checkout with `UNWATCH` and `PING` (one round
//! trip), so a decision on a pool costs two round trips where a shared multiplexed connection
//! costs one; see `docs/redis.md`, "Connections".

use std::io;

use deadpool_redis::{Pool, PoolError};
use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

/// Sends `cmd` on a connection checked out of `pool` for it.
pub(super) fn request<'a>(pool: &'a Pool, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
    Box::pin(async move {
        let mut connection = pool.get().await.map_err(checkout_failed)?;
        connection.req_packed_command(cmd).await
    })
}

/// Sends `pipeline` (from `offset`, `count` replies) on a connection checked out of `pool`.
pub(super) fn request_pipeline<'a>(
    pool: &'a Pool,
    pipeline: &'a Pipeline,
    offset: usize,
    count: usize,
) -> RedisFuture<'a, Vec<Value>> {
    Box::pin(async move {
        let mut connection = pool.get().await.map_err(checkout_failed)?;
        connection
            .req_packed_commands(pipeline, offset, count)
            .await
    })
}

/// A failed checkout as the Redis error that classifies it: the backend's own error when
/// creating or recycling a connection failed, a timed-out I/O error for the pool's timeouts (so
/// it becomes `BackendError::Timeout`), a lost connection for a closed pool.
fn checkout_failed(error: PoolError) -> RedisError {
    match error {
        PoolError::Backend(error) => error,
        PoolError::Timeout(which) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("deadpool-redis: timed out ({which:?}) checking a connection out"),
        )
        .into(),
        PoolError::Closed => io::Error::new(
            io::ErrorKind::NotConnected,
            "deadpool-redis: the pool is closed",
        )
        .into(),
        PoolError::NoRuntimeSpecified => RedisError::from((
            ErrorKind::InvalidClientConfig,
            "deadpool-redis: the pool has timeouts but no runtime (build it with `Runtime::Tokio1`)",
        )),
        PoolError::PostCreateHook(error) => RedisError::from((
            ErrorKind::Client,
            "deadpool-redis: a post-create hook failed",
            error.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadpool_redis::TimeoutType;

    #[test]
    fn checkout_failures_keep_their_kind() {
        assert!(checkout_failed(PoolError::Timeout(TimeoutType::Wait)).is_timeout());
        assert!(checkout_failed(PoolError::Closed).is_connection_dropped());
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(checkout_failed(PoolError::Backend(refused)).is_connection_refusal());
        assert_eq!(
            checkout_failed(PoolError::NoRuntimeSpecified).kind(),
            ErrorKind::InvalidClientConfig
        );
    }
}
