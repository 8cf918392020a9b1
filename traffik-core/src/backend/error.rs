//! [`BackendError`]: a backend failed (never "the client is throttled": that is a `Decision`).

use std::time::Duration;

/// A boxed error from a backend's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a backend could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend was closed.
    #[error("backend `{backend}` is closed")]
    Closed {
        /// The backend's name.
        backend: String,
    },
    /// The backend could not be reached or failed the operation.
    #[error("backend `{backend}` failed to {operation}: {source}")]
    Unavailable {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
        /// The client library's error.
        #[source]
        source: BoxError,
    },
    /// The operation took longer than allowed.
    #[error("backend `{backend}` timed out after {after:?} during {operation}")]
    Timeout {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
        /// The time limit.
        after: Duration,
    },
    /// A stored value is not what the operation needs (e.g. incrementing text).
    #[error("backend `{backend}`: key `{key}` holds {found}, cannot {operation}")]
    WrongType {
        /// The backend's name.
        backend: String,
        /// The key.
        key: String,
        /// What the key holds.
        found: &'static str,
        /// What was being done.
        operation: &'static str,
    },
    /// The backend answered with something the operation cannot use (a reply of the wrong
    /// shape, or a native decision that disagrees with the strategy's own transition).
    #[error("backend `{backend}` gave an invalid reply during {operation}: {reason}")]
    InvalidReply {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The backend cannot decide this hit exactly (a Redis script at a rate, or with a clock,
    /// beyond the range its doubles hold exactly). Nothing was stored. A configuration
    /// mistake, not an outage: the throttle returns it whatever its on-error policy (it never
    /// fails open on it).
    #[error("backend `{backend}` cannot decide this hit exactly: {reason}")]
    Unsupported {
        /// The backend's name.
        backend: String,
        /// The bound the hit passes.
        reason: String,
    },
    /// A lock could not be taken or released.
    #[error("backend `{backend}`: {source}")]
    Lock {
        /// The backend's name.
        backend: String,
        /// What went wrong.
        #[source]
        source: LockError,
    },
}

impl BackendError {
    /// A copy of this error, for the second of two limits that met the same failure (the
    /// client library's error is kept as its text).
    pub(crate) fn duplicate(&self) -> BackendError {
        match self {
            BackendError::Closed { backend } => BackendError::Closed {
                backend: backend.clone(),
            },
            BackendError::Unavailable {
                backend,
                operation,
                source,
            } => BackendError::Unavailable {
                backend: backend.clone(),
                operation,
                source: source.to_string().into(),
            },
            BackendError::Timeout {
                backend,
                operation,
                after,
            } => BackendError::Timeout {
                backend: backend.clone(),
                operation,
                after: *after,
            },
            BackendError::WrongType {
                backend,
                key,
                found,
                operation,
            } => BackendError::WrongType {
                backend: backend.clone(),
                key: key.clone(),
                found,
                operation,
            },
            BackendError::InvalidReply {
                backend,
                operation,
                reason,
            } => BackendError::InvalidReply {
                backend: backend.clone(),
                operation,
                reason: reason.clone(),
            },
            BackendError::Unsupported { backend, reason } => BackendError::Unsupported {
                backend: backend.clone(),
                reason: reason.clone(),
            },
            BackendError::Lock { backend, source } => BackendError::Lock {
                backend: backend.clone(),
                source: source.clone(),
            },
        }
    }
}

/// Why a lock operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock is held and the caller asked not to wait.
    #[error("lock `{name}` is held by another owner")]
    WouldBlock {
        /// The lock's name.
        name: String,
    },
    /// The lock was not free within the blocking timeout.
    #[error("lock `{name}` was not acquired within {after:?}")]
    Timeout {
        /// The lock's name.
        name: String,
        /// The blocking timeout.
        after: Duration,
    },
    /// Releasing a lock that had already expired and been taken by another owner.
    #[error("lock `{name}` was no longer held by this owner when released (its ttl ran out)")]
    NotHeld {
        /// The lock's name.
        name: String,
    },
}
