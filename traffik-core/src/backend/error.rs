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
    /// The backend could not be reached, the connection was lost, or the operation failed for
    /// a reason no other variant names. Usually an outage ([`is_transient`](Self::is_transient)).
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
    #[error("backend `{backend}` timed out after {after:?} trying to {operation}")]
    Timeout {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
        /// The time limit.
        after: Duration,
    },
    /// A stored value is not what the operation needs (incrementing text, a Redis hash at a
    /// limiter key): the key belongs to someone else. Not an outage; retrying cannot help.
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
    #[error("backend `{backend}` gave an invalid reply when asked to {operation}: {reason}")]
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
    /// The backend is a read-only replica and refused a write (Redis `READONLY`): a failover in
    /// progress, or a URL that points at a replica. Transient during a failover.
    #[error("backend `{backend}` is a read-only replica and refused to {operation}")]
    ReadOnly {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
    },
    /// The backend is out of memory and refuses writes (Redis `OOM` under `maxmemory` with the
    /// `noeviction` policy). Transient: it lasts until memory is freed.
    #[error("backend `{backend}` is out of memory and refused to {operation}")]
    OutOfMemory {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
    },
    /// The backend refused the credentials or the permission (Redis `NOAUTH`, `WRONGPASS`,
    /// `NOPERM` naming the command): a configuration mistake, not an outage.
    #[error("backend `{backend}` denied {operation}: {reason}")]
    Denied {
        /// The backend's name.
        backend: String,
        /// What was being done.
        operation: &'static str,
        /// The backend's own words (which credential, which command).
        reason: String,
    },
    /// The backend was not called: its [circuit breaker](super::CircuitBreaker) is open (or
    /// half-open with every probe taken) after the backend failed too often. An outage seen
    /// earlier, reported at once instead of after a timeout. Transient; a
    /// [`Fallback`](super::Fallback) or the on-error policy handles it.
    #[error("backend `{backend}` was not called: its circuit breaker is {state}")]
    CircuitOpen {
        /// The backend's name.
        backend: String,
        /// The breaker's state (`open`, or `half-open` with every probe in flight).
        state: super::BreakerState,
    },
    /// Every compare-and-swap attempt on a key lost to a concurrent writer (the Memcached
    /// backend, which decides by reading the state, applying the strategy, and writing back
    /// only if nothing changed). Nothing was admitted. Transient: the key is contended, the
    /// store answered, so it is not an outage.
    #[error(
        "backend `{backend}`: key `{key}` changed under each of {attempts} compare-and-swap attempts"
    )]
    Contention {
        /// The backend's name.
        backend: String,
        /// The key.
        key: String,
        /// How many times the decision was tried.
        attempts: u32,
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
    /// Whether the same call may succeed later unchanged: the backend is unreachable, timed
    /// out, failing over (read-only), out of memory, behind an open circuit breaker, or a lock
    /// is busy. `false` for what
    /// retrying cannot fix: a key of another type, an invalid reply, a rate the backend cannot
    /// decide exactly, denied credentials or permissions, a closed backend. Retry, circuit
    /// breaker and fallback logic tell "the backend is down" from "this key belongs to someone
    /// else" with it.
    ///
    /// ```
    /// use traffik_core::backend::BackendError;
    ///
    /// let down = BackendError::ReadOnly { backend: "redis".into(), operation: "decide" };
    /// assert!(down.is_transient());
    /// let foreign = BackendError::WrongType {
    ///     backend: "redis".into(), key: "app:k".into(), found: "a hash", operation: "decide",
    /// };
    /// assert!(!foreign.is_transient());
    /// ```
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            BackendError::Unavailable { .. }
            | BackendError::Timeout { .. }
            | BackendError::ReadOnly { .. }
            | BackendError::OutOfMemory { .. }
            | BackendError::CircuitOpen { .. }
            | BackendError::Contention { .. } => true,
            BackendError::Lock { source, .. } => {
                matches!(
                    source,
                    LockError::WouldBlock { .. } | LockError::Timeout { .. }
                )
            }
            BackendError::Closed { .. }
            | BackendError::WrongType { .. }
            | BackendError::InvalidReply { .. }
            | BackendError::Unsupported { .. }
            | BackendError::Denied { .. } => false,
        }
    }

    /// The error's kind in `snake_case`: `closed`, `unavailable`, `timeout`, `wrong_type`,
    /// `invalid_reply`, `unsupported`, `read_only`, `out_of_memory`, `denied`, `circuit_open`,
    /// `contention` or `lock`. The `kind` label of `traffik_backend_errors_total` (see
    /// [`telemetry`](crate::telemetry)); a bounded set, unlike the message.
    ///
    /// ```
    /// use std::time::Duration;
    /// use traffik_core::backend::BackendError;
    ///
    /// let error = BackendError::Timeout {
    ///     backend: "redis".into(), operation: "decide", after: Duration::from_millis(500),
    /// };
    /// assert_eq!(error.kind(), "timeout");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Closed { .. } => "closed",
            BackendError::Unavailable { .. } => "unavailable",
            BackendError::Timeout { .. } => "timeout",
            BackendError::WrongType { .. } => "wrong_type",
            BackendError::InvalidReply { .. } => "invalid_reply",
            BackendError::Unsupported { .. } => "unsupported",
            BackendError::ReadOnly { .. } => "read_only",
            BackendError::OutOfMemory { .. } => "out_of_memory",
            BackendError::Denied { .. } => "denied",
            BackendError::CircuitOpen { .. } => "circuit_open",
            BackendError::Contention { .. } => "contention",
            BackendError::Lock { .. } => "lock",
        }
    }

    /// Whether the error says the backend is down or failing over: [transient](Self::is_transient)
    /// but not a busy lock or a lost compare-and-swap race (those prove the store answered; the
    /// key is only contended). What a [`CircuitBreaker`](super::CircuitBreaker) counts as a
    /// failure and what a [`Fallback`](super::Fallback) falls back on, by default.
    ///
    /// ```
    /// use traffik_core::backend::{BackendError, LockError};
    ///
    /// let down = BackendError::ReadOnly { backend: "redis".into(), operation: "decide" };
    /// assert!(down.is_outage());
    /// let busy = BackendError::Lock {
    ///     backend: "redis".into(),
    ///     source: LockError::WouldBlock { name: "app:k:lock".into() },
    /// };
    /// assert!(busy.is_transient() && !busy.is_outage());
    /// ```
    #[must_use]
    pub fn is_outage(&self) -> bool {
        self.is_transient()
            && !matches!(
                self,
                BackendError::Lock { .. } | BackendError::Contention { .. }
            )
    }

    /// Names `key` in a [`WrongType`](Self::WrongType) error that did not know it.
    #[cfg(feature = "redis")]
    pub(crate) fn on_key(self, key: &str) -> Self {
        match self {
            BackendError::WrongType {
                backend,
                key: unknown,
                found,
                operation,
            } if unknown.is_empty() => BackendError::WrongType {
                backend,
                key: key.to_owned(),
                found,
                operation,
            },
            other => other,
        }
    }

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
            BackendError::ReadOnly { backend, operation } => BackendError::ReadOnly {
                backend: backend.clone(),
                operation,
            },
            BackendError::OutOfMemory { backend, operation } => BackendError::OutOfMemory {
                backend: backend.clone(),
                operation,
            },
            BackendError::Denied {
                backend,
                operation,
                reason,
            } => BackendError::Denied {
                backend: backend.clone(),
                operation,
                reason: reason.clone(),
            },
            BackendError::CircuitOpen { backend, state } => BackendError::CircuitOpen {
                backend: backend.clone(),
                state: *state,
            },
            BackendError::Contention {
                backend,
                key,
                attempts,
            } => BackendError::Contention {
                backend: backend.clone(),
                key: key.clone(),
                attempts: *attempts,
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
