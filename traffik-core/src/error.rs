//! Configuration and throttle errors. Being throttled is never an error: see [`Decision`](crate::Decision).

use crate::ParseRateError;
use crate::backend::{BackendError, LockConfigError};
use crate::strategy::StrategyConfigError;

/// A throttle or backend cannot be built as configured.
///
/// ```
/// use traffik_core::{ConfigError, Throttle, ThrottleRegistry};
///
/// let registry = ThrottleRegistry::new();
/// let error = Throttle::builder("search", "10/fortnight").registry(&registry).build().unwrap_err();
/// assert!(matches!(error, ConfigError::InvalidRate { .. }));
/// assert!(error.to_string().contains("`fortnight`"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Another live throttle in the same registry has this uid.
    #[error(
        "throttle uid must be unique: a throttle with uid `{uid}` already exists in this registry"
    )]
    DuplicateUid {
        /// The uid.
        uid: String,
    },
    /// Rules were added for a uid (not a glob) that no live throttle of the registry has.
    #[error(
        "no throttle with uid `{uid}` in this registry (use a glob such as `{uid}*` to add rules for throttles built later)"
    )]
    UnknownThrottle {
        /// The uid.
        uid: String,
    },
    /// The uid is not usable in a storage key.
    #[error("invalid throttle uid `{uid}`: {reason}")]
    InvalidUid {
        /// The uid.
        uid: String,
        /// Why.
        reason: String,
    },
    /// The namespace is not usable in a storage key.
    #[error("invalid backend namespace `{namespace}`: {reason}")]
    InvalidNamespace {
        /// The namespace.
        namespace: String,
        /// Why.
        reason: String,
    },
    /// The rate string does not parse.
    #[error("throttle `{uid}`: {source}")]
    InvalidRate {
        /// The throttle's uid.
        uid: String,
        /// The parse error.
        #[source]
        source: ParseRateError,
    },
    /// The strategy's parameters cannot work with the rate.
    #[error("throttle `{uid}`: {source}")]
    InvalidStrategy {
        /// The throttle's uid.
        uid: String,
        /// What is wrong.
        #[source]
        source: StrategyConfigError,
    },
    /// The throttle's backend cannot decide its strategy at its rate exactly (a Redis script
    /// computes in IEEE doubles, exact only below 2^53).
    #[error(
        "throttle `{uid}`: the {backend} backend cannot run `{strategy}` at {rate} exactly: {reason}"
    )]
    UnsupportedRate {
        /// The throttle's uid.
        uid: String,
        /// The backend's name.
        backend: String,
        /// The strategy's name.
        strategy: &'static str,
        /// The rate.
        rate: crate::Rate,
        /// The bound it passes, and what to do.
        reason: String,
    },
    /// A backend setting cannot work.
    #[error("{backend} backend: {reason}")]
    InvalidBackend {
        /// The backend kind.
        backend: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The throttle has no identifier and its connection type has no default one.
    #[error("throttle `{uid}` has no identifier: set one with `.identifier(..)`")]
    MissingIdentifier {
        /// The throttle's uid.
        uid: String,
    },
    /// A `TRAFFIK_DEFAULT_*` lock setting is invalid.
    #[error(transparent)]
    LockSettings(#[from] LockConfigError),
}

/// A hit could not be decided. (A throttled hit is a [`Decision`](crate::Decision), not this.)
///
/// ```
/// use traffik_core::{Throttle, ThrottleError, ThrottleRegistry};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let registry = ThrottleRegistry::new(); // no default backend
/// let throttle = Throttle::builder("orphan", "1/s").registry(&registry).build().unwrap();
/// let error = throttle.hit("alice").await.unwrap_err();
/// assert!(matches!(error, ThrottleError::NoBackend { ref uid } if uid == "orphan"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The backend failed and the on-error policy is `raise` (or a handler re-raised).
    #[error("throttle `{uid}`: {source}")]
    Backend {
        /// The throttle's uid.
        uid: String,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// No backend: not on the throttle, not in the hit's options, no registry default.
    #[error(
        "throttle `{uid}` has no backend: give it one with `.backend(..)`, pass one per hit, or set a default with `ThrottleRegistry::set_default_backend`"
    )]
    NoBackend {
        /// The throttle's uid.
        uid: String,
    },
    /// A key-value strategy on a backend without the key-value contract.
    #[error(
        "throttle `{uid}`: strategy `{strategy}` needs the key-value contract, which backend `{backend}` does not offer"
    )]
    UnsupportedStrategy {
        /// The throttle's uid.
        uid: String,
        /// The strategy's name.
        strategy: &'static str,
        /// The backend's name.
        backend: String,
    },
    /// The throttle's configuration is invalid (from an `update_*` call or a rate function).
    #[error(transparent)]
    Config(#[from] ConfigError),
}
