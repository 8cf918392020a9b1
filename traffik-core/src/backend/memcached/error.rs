//! The Memcached client's and the pool's failures as [`BackendError`]s, and the errors of the
//! backend's own settings.

use std::io;
use std::time::Duration;

use async_memcached::{Error, ErrorKind, Status};
use deadpool::managed::PoolError;

use super::NAME;
use crate::ConfigError;
use crate::backend::BackendError;

/// A failed command: a lost or refused connection is `Unavailable`, a timed-out one `Timeout`,
/// a reply that is not what the command expects `InvalidReply`, memcached out of memory (its
/// `SERVER_ERROR out of memory`) `OutOfMemory`.
pub(super) fn from_client(operation: &'static str, error: Error, after: Duration) -> BackendError {
    match error {
        Error::Connect(source) | Error::Io(source) if source.kind() == io::ErrorKind::TimedOut => {
            timeout(operation, after)
        }
        Error::Connect(source) | Error::Io(source) => unavailable(operation, source.into()),
        Error::ConnectionClosed => unavailable(
            operation,
            "the connection closed after an incomplete operation".into(),
        ),
        Error::Protocol(Status::Error(ErrorKind::Server(message)))
            if message.contains("out of memory") =>
        {
            BackendError::OutOfMemory {
                backend: NAME.to_owned(),
                operation,
            }
        }
        Error::Protocol(status) => invalid_reply(operation, format!("{status:?}")),
        Error::ParseError(kind) => invalid_reply(operation, format!("unparsable reply ({kind:?})")),
    }
}

/// A failed checkout: the pool's timeouts are `Timeout`, a failed connection is the client's
/// error, a closed pool (the backend was closed) is `Closed`.
pub(super) fn from_pool(
    operation: &'static str,
    error: PoolError<Error>,
    after: Duration,
) -> BackendError {
    match error {
        PoolError::Timeout(_) => timeout(operation, after),
        PoolError::Backend(error) => from_client(operation, error, after),
        PoolError::Closed => closed(),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            invalid_reply(operation, "the connection pool is misconfigured".to_owned())
        }
    }
}

pub(super) fn timeout(operation: &'static str, after: Duration) -> BackendError {
    BackendError::Timeout {
        backend: NAME.to_owned(),
        operation,
        after,
    }
}

pub(super) fn unavailable(
    operation: &'static str,
    source: crate::backend::BoxError,
) -> BackendError {
    BackendError::Unavailable {
        backend: NAME.to_owned(),
        operation,
        source,
    }
}

pub(super) fn invalid_reply(operation: &'static str, reason: String) -> BackendError {
    BackendError::InvalidReply {
        backend: NAME.to_owned(),
        operation,
        reason,
    }
}

pub(super) fn closed() -> BackendError {
    BackendError::Closed {
        backend: NAME.to_owned(),
    }
}

/// A value traffik did not write at one of its keys.
pub(super) fn foreign(key: &str, found: &'static str, operation: &'static str) -> BackendError {
    BackendError::WrongType {
        backend: NAME.to_owned(),
        key: key.to_owned(),
        found,
        operation,
    }
}

/// A setting that cannot work.
pub(super) fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidBackend {
        backend: NAME,
        reason: reason.into(),
    }
}

/// A client error with the server it came from (a fleet with several servers needs to know
/// which one is down).
#[derive(Debug)]
struct OnServer {
    address: String,
    source: crate::backend::BoxError,
}

impl std::fmt::Display for OnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server {}: {}", self.address, self.source)
    }
}

impl std::error::Error for OnServer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Names the server in an `Unavailable` error (the others name no connection).
pub(super) fn on_server(error: BackendError, address: &str) -> BackendError {
    match error {
        BackendError::Unavailable {
            backend,
            operation,
            source,
        } => BackendError::Unavailable {
            backend,
            operation,
            source: Box::new(OnServer {
                address: address.to_owned(),
                source,
            }),
        },
        other => other,
    }
}
