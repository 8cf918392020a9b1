//! Redis errors as [`BackendError`]s naming the backend and the operation.

use std::time::Duration;

use redis::RedisError;

use crate::ConfigError;
use crate::backend::BackendError;

/// The backend's name in errors and logs.
pub(super) const NAME: &str = "redis";

/// Why a [`RedisBackend`](super::RedisBackend) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// A setting cannot work (a malformed URL, an empty seed list, a bad namespace).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Redis could not be reached in time, or refused the connection.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

pub(super) fn invalid_setting(reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidBackend {
        backend: NAME,
        reason: reason.into(),
    }
}

/// `error` from `operation` as a typed backend error.
/// `after` is the command timeout in force, reported when the client library timed out.
pub(super) fn from_redis(
    operation: &'static str,
    error: RedisError,
    after: Duration,
) -> BackendError {
    if error.is_timeout() {
        return timeout(operation, after);
    }
    BackendError::Unavailable {
        backend: NAME.to_owned(),
        operation,
        source: Box::new(error),
    }
}

pub(super) fn timeout(operation: &'static str, after: Duration) -> BackendError {
    BackendError::Timeout {
        backend: NAME.to_owned(),
        operation,
        after,
    }
}

pub(super) fn invalid_reply(operation: &'static str, reason: impl Into<String>) -> BackendError {
    BackendError::InvalidReply {
        backend: NAME.to_owned(),
        operation,
        reason: reason.into(),
    }
}
