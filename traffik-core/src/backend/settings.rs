//! [`BackendSettings`]: what every backend is configured with besides its storage, kept in one
//! place for the in-memory, Redis and key-value backends (and any backend of yours).

use std::fmt;
use std::sync::Arc;

use super::{Extensions, LockOptions};
use crate::key::validate_namespace;
use crate::{ConfigError, OnError};

/// The settings of a backend: the namespace that prefixes its keys, the on-error policy of the
/// throttles on it that set none, typed extensions for the protocol crates (such as a default
/// throttled handler), and how the key-value contract's locks are taken.
///
/// A backend builder collects them and [`resolve`](Self::resolve)s them once when the backend is
/// built; the backend hands them out through [`Backend::settings`](super::Backend::settings).
///
/// ```
/// use traffik_core::backend::{BackendSettings, LockOptions};
/// use traffik_core::OnError;
///
/// let settings = BackendSettings::new()
///     .with_namespace("shop")
///     .with_on_error(OnError::Throttle)
///     .with_lock_options(LockOptions::default())
///     .resolve()?;
/// assert_eq!(settings.namespace(), "shop");
/// assert!(settings.on_error().is_some());
/// assert!(BackendSettings::new().with_namespace("no spaces").resolve().is_err());
/// # Ok::<(), traffik_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct BackendSettings {
    namespace: Arc<str>,
    on_error: Option<OnError>,
    extensions: Extensions,
    /// `None` until resolved: the `TRAFFIK_DEFAULT_*` settings then.
    lock_options: Option<LockOptions>,
}

impl BackendSettings {
    /// The defaults: namespace `"traffik"`, no on-error policy (throttles fail open unless they
    /// set one), no extensions, locks from the `TRAFFIK_DEFAULT_*` settings.
    #[must_use]
    pub fn new() -> Self {
        BackendSettings {
            namespace: Arc::from("traffik"),
            on_error: None,
            extensions: Extensions::new(),
            lock_options: None,
        }
    }

    /// The prefix of every key (letters, digits, `.`, `_`, `-`, `/`, `:`; checked by
    /// [`resolve`](Self::resolve)).
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Arc::from(namespace.into());
        self
    }

    /// The on-error policy for throttles on this backend that set none.
    #[must_use]
    pub fn with_on_error(mut self, policy: OnError) -> Self {
        self.on_error = Some(policy);
        self
    }

    /// Attaches a typed value for the protocol crates (see [`Extensions`]); one per type.
    #[must_use]
    pub fn with_extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// How the key-value contract's locks are taken (default: the `TRAFFIK_DEFAULT_*`
    /// settings, [`LockOptions::from_env`]).
    #[must_use]
    pub fn with_lock_options(mut self, options: LockOptions) -> Self {
        self.lock_options = Some(options);
        self
    }

    /// Checks the namespace and fixes the lock options (reading `TRAFFIK_DEFAULT_*` when none
    /// were given).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidNamespace`] for a namespace with other characters or out of 1–64
    /// bytes; [`ConfigError::LockSettings`] for an invalid `TRAFFIK_DEFAULT_*` variable.
    pub fn resolve(mut self) -> Result<Self, ConfigError> {
        validate_namespace(&self.namespace)?;
        if self.lock_options.is_none() {
            self.lock_options = Some(LockOptions::from_env()?);
        }
        Ok(self)
    }

    /// Checks the namespace alone (a builder checks it first, before its own settings, as
    /// [`resolve`](Self::resolve) does too).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidNamespace`].
    pub fn check_namespace(&self) -> Result<(), ConfigError> {
        validate_namespace(&self.namespace)
    }

    /// The same settings under another namespace (checked).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidNamespace`], as [`resolve`](Self::resolve).
    pub fn renamed(&self, namespace: impl Into<String>) -> Result<Self, ConfigError> {
        let mut renamed = self.clone();
        renamed.namespace = Arc::from(namespace.into());
        validate_namespace(&renamed.namespace)?;
        Ok(renamed)
    }

    /// The prefix of every key.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The on-error policy for throttles that set none.
    #[must_use]
    pub fn on_error(&self) -> Option<&OnError> {
        self.on_error.as_ref()
    }

    /// The typed extensions.
    #[must_use]
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// How locks are taken (the defaults before [`resolve`](Self::resolve)).
    #[must_use]
    pub fn lock_options(&self) -> LockOptions {
        self.lock_options.unwrap_or_default()
    }
}

impl Default for BackendSettings {
    fn default() -> Self {
        BackendSettings::new()
    }
}

impl fmt::Debug for BackendSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendSettings")
            .field("namespace", &self.namespace)
            .field("on_error", &self.on_error)
            .field("extensions", &self.extensions)
            .field("lock_options", &self.lock_options)
            .finish()
    }
}
