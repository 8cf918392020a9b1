//! [`MemoryBackendBuilder`]: the settings of a [`MemoryBackend`](super::MemoryBackend).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Notify;

use super::lock::Locks;
use super::store::Store;
use super::{DEFAULT_MAX_KEYS, DEFAULT_SWEEP_INTERVAL, MemoryBackend, Shared, sweeper};
use crate::backend::{BackendSettings, LockOptions};
use crate::{Clock, ConfigError, OnError, SystemClock};

/// Configures a [`MemoryBackend`].
#[derive(Debug)]
#[must_use]
pub struct MemoryBackendBuilder {
    settings: BackendSettings,
    max_keys: usize,
    sweep_interval: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl MemoryBackendBuilder {
    pub(super) fn new() -> Self {
        MemoryBackendBuilder {
            settings: BackendSettings::new(),
            max_keys: DEFAULT_MAX_KEYS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            clock: None,
        }
    }

    /// The key prefix (default `"traffik"`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings = self.settings.with_namespace(namespace);
        self
    }

    /// The most keys stored at once (default 1,000,000).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How often the sweeper drops expired keys (default 10 s).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// The clock for key-value expiry and sweeping (default: [`SystemClock`]). Give it the
    /// throttle's clock in tests.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The on-error policy of throttles on this backend that set none.
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings = self.settings.with_on_error(policy);
        self
    }

    /// Attaches a typed value for the protocol crates, such as `traffik-axum`'s
    /// `ThrottledHandler`: the response to a refusal for every throttle on this backend that
    /// sets none of its own.
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.settings = self.settings.with_extension(value);
        self
    }

    /// Lock settings for the key-value contract (default: [`LockOptions::from_env`]).
    pub fn lock_options(mut self, options: LockOptions) -> Self {
        self.settings = self.settings.with_lock_options(options);
        self
    }

    /// Builds the backend, starting its sweeper on the current tokio runtime if there is one.
    pub fn build(self) -> Result<MemoryBackend, ConfigError> {
        self.settings.check_namespace()?;
        if self.max_keys == 0 {
            return Err(ConfigError::InvalidBackend {
                backend: "memory",
                reason: "max_keys must be at least 1".to_owned(),
            });
        }
        if self.sweep_interval.is_zero() {
            return Err(ConfigError::InvalidBackend {
                backend: "memory",
                reason: "sweep_interval must be above zero".to_owned(),
            });
        }
        let settings = self.settings.resolve()?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let store = Arc::new(Store::new(self.max_keys, settings.namespace()));
        let shutdown = Arc::new(Notify::new());
        let sweeper_alive = Arc::new(AtomicBool::new(false));
        sweeper::spawn(
            Arc::downgrade(&store),
            Arc::clone(&clock),
            self.sweep_interval,
            Arc::clone(&shutdown),
            Arc::clone(&sweeper_alive),
        );
        Ok(MemoryBackend {
            shared: Arc::new(Shared {
                store,
                locks: Arc::new(Locks::default()),
                clock,
                shutdown,
                sweeper_alive,
                max_keys: self.max_keys,
            }),
            settings: Arc::new(settings),
        })
    }
}
