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
    /// Redis could not be reached in time, refused the connection, or cannot decide on it:
    /// refused credentials or a missing ACL permission ([`BackendError::Denied`], naming the
    /// cause: `NOAUTH`, `WRONGPASS`, `NOPERM` with the command).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The server evicts keys under memory pressure and
    /// [`require_noeviction`](super::RedisBackendBuilder::require_noeviction) is set.
    #[error(
        "Redis evicts keys under memory pressure (maxmemory-policy {policy}), so limits would not stay exact; set `maxmemory-policy noeviction` or do not require it"
    )]
    Evicting {
        /// The server's `maxmemory-policy`.
        policy: String,
    },
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
    let backend = NAME.to_owned();
    let error_saying = |words: &str| {
        error.code() == Some("ERR") && error.detail().is_some_and(|detail| detail.contains(words))
    };
    let not_an_integer = || error_saying("not an integer");
    // A command a script's user may not run is `ERR The user executing the script can't run
    // this command` (Redis 7.0), `ERR ACL failure in script: … no permissions …` (7.2+, Valkey),
    // not `NOPERM`.
    let script_denied = || {
        error_saying("can't run this command")
            || error_saying("ACL failure in script")
            || error_saying("no permissions")
    };
    // Any other error a script raised (a Lua runtime error): a bug or a misuse, not an outage.
    let script_failed = || error_saying("user_script");
    // The server's own words, with its code as it sent it (`NOPERM …`, `NOAUTH …`).
    let reply = || match (error.code(), error.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => error.to_string(),
    };
    match error.code() {
        // A script that ran after the caller's deadline changed nothing: the caller timed out.
        Some("DEADLINE") => timeout(operation, after),
        // The key is filled in by the caller that knows it (`BackendError::on_key`).
        Some("WRONGTYPE") => BackendError::WrongType {
            backend,
            key: String::new(),
            found: "a value of another Redis type",
            operation,
        },
        _ if not_an_integer() => BackendError::WrongType {
            backend,
            key: String::new(),
            found: "a value that is not an integer",
            operation,
        },
        Some("CROSSSLOT") => BackendError::InvalidReply {
            backend,
            operation,
            reason: reply(),
        },
        Some("READONLY") => BackendError::ReadOnly { backend, operation },
        Some("OOM") => BackendError::OutOfMemory { backend, operation },
        _ if script_denied() => BackendError::Denied {
            backend,
            operation,
            reason: reply(),
        },
        Some("NOAUTH") => BackendError::Denied {
            backend,
            operation,
            reason: format!(
                "NOAUTH: the server wants a password and the URL has none ({})",
                reply()
            ),
        },
        Some("WRONGPASS" | "NOPERM") => BackendError::Denied {
            backend,
            operation,
            reason: reply(),
        },
        _ if error.kind() == redis::ErrorKind::AuthenticationFailed => BackendError::Denied {
            backend,
            operation,
            reason: format!("WRONGPASS: the server refused the URL's credentials ({error})"),
        },
        _ if script_failed() => BackendError::InvalidReply {
            backend,
            operation,
            reason: reply(),
        },
        _ => BackendError::Unavailable {
            backend,
            operation,
            source: Box::new(error),
        },
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
