//! Named locks of the key-value contract: options, environment defaults and the guard.

use std::fmt::{self, Debug};
use std::time::Duration;

use super::{BackendError, BackendFuture};

/// How to take a lock.
///
/// Every lock has a time to live: a holder that crashes cannot block a key forever.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::backend::LockOptions;
///
/// let options = LockOptions::default().ttl(Duration::from_secs(2)).blocking_timeout(Some(Duration::from_millis(50)));
/// assert!(options.blocking);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// How long the lock lives if never released.
    pub ttl: Duration,
    /// Whether to wait for a held lock.
    pub blocking: bool,
    /// How long to wait at most (`None`: until the holder releases or its ttl ends).
    pub blocking_timeout: Option<Duration>,
}

impl Default for LockOptions {
    /// ttl 10 s, blocking, waiting at most 5 s.
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(10),
            blocking: true,
            blocking_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// The environment variable overriding the default lock ttl (seconds, e.g. `2.5`).
pub const LOCK_TTL_ENV: &str = "TRAFFIK_DEFAULT_LOCK_TTL";
/// The environment variable overriding whether locks block (`1/true/yes/on`, `0/false/no/off`).
pub const BLOCKING_ENV: &str = "TRAFFIK_DEFAULT_BLOCKING";
/// The environment variable overriding the blocking timeout (seconds; `none` to wait forever).
pub const BLOCKING_TIMEOUT_ENV: &str = "TRAFFIK_DEFAULT_BLOCKING_TIMEOUT";

/// An environment variable holds a value the lock settings cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}={value:?} is invalid: {reason}")]
pub struct LockConfigError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub reason: &'static str,
}

impl LockOptions {
    /// Sets the ttl (a lock held longer than this is taken as abandoned). Below 1 ms counts as
    /// 1 ms on every backend, as Redis's `PX` does.
    #[must_use]
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets whether to wait.
    #[must_use]
    pub const fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// Sets the longest wait.
    #[must_use]
    pub const fn blocking_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.blocking_timeout = timeout;
        self
    }

    /// The defaults, overridden by `TRAFFIK_DEFAULT_LOCK_TTL`, `TRAFFIK_DEFAULT_BLOCKING` and
    /// `TRAFFIK_DEFAULT_BLOCKING_TIMEOUT` where set.
    pub fn from_env() -> Result<LockOptions, LockConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (for tests and config files).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<LockOptions, LockConfigError> {
        let mut options = LockOptions::default();
        if let Some(value) = lookup(LOCK_TTL_ENV) {
            options.ttl = parse_seconds(LOCK_TTL_ENV, &value, false)?
                .ok_or_else(|| invalid(LOCK_TTL_ENV, &value, "a lock needs a ttl"))?;
        }
        if let Some(value) = lookup(BLOCKING_ENV) {
            options.blocking = match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(invalid(
                        BLOCKING_ENV,
                        &value,
                        "expected 1/true/yes/on or 0/false/no/off",
                    ));
                }
            };
        }
        if let Some(value) = lookup(BLOCKING_TIMEOUT_ENV) {
            options.blocking_timeout = parse_seconds(BLOCKING_TIMEOUT_ENV, &value, true)?;
        }
        Ok(options)
    }
}

fn invalid(variable: &'static str, value: &str, reason: &'static str) -> LockConfigError {
    LockConfigError {
        variable,
        value: value.to_owned(),
        reason,
    }
}

fn parse_seconds(
    variable: &'static str,
    value: &str,
    allow_none: bool,
) -> Result<Option<Duration>, LockConfigError> {
    let trimmed = value.trim();
    if allow_none && trimmed.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let seconds: f64 = trimmed
        .parse()
        .map_err(|_| invalid(variable, value, "expected a number of seconds, e.g. 2.5"))?;
    if !(0.001..=86_400.0 * 365.0).contains(&seconds) {
        return Err(invalid(
            variable,
            value,
            "expected a number of seconds from 0.001 (1 ms) to a year",
        ));
    }
    Ok(Some(Duration::from_secs_f64(seconds)))
}

/// A lock a backend granted: what its guard releases.
pub trait HeldLock: Send + Sync + Debug {
    /// Releases the lock.
    fn release(self: Box<Self>) -> BackendFuture<'static, ()>;

    /// Called when the guard is dropped without [`LockGuard::release`]. The default leaves the
    /// lock to its ttl; backends that can release synchronously do so.
    fn release_on_drop(self: Box<Self>) {}
}

/// A held lock; release it with [`release`](Self::release). Dropping it releases at once on the
/// in-memory backend and otherwise leaves the lock to expire at its ttl.
#[must_use = "a lock guard releases its lock when dropped"]
pub struct LockGuard(Option<Box<dyn HeldLock>>);

impl LockGuard {
    /// Wraps a backend's held lock.
    pub fn new(held: Box<dyn HeldLock>) -> Self {
        LockGuard(Some(held))
    }

    /// Releases the lock, reporting a lock that had already expired.
    pub async fn release(mut self) -> Result<(), BackendError> {
        match self.0.take() {
            Some(held) => held.release().await,
            None => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(held) = self.0.take() {
            held.release_on_drop();
        }
    }
}

impl Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockGuard").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn reads_each_variable() {
        let options = LockOptions::from_lookup(env(&[
            (LOCK_TTL_ENV, "2.5"),
            (BLOCKING_ENV, "off"),
            (BLOCKING_TIMEOUT_ENV, "none"),
        ]))
        .unwrap();
        assert_eq!(
            options,
            LockOptions {
                ttl: Duration::from_millis(2_500),
                blocking: false,
                blocking_timeout: None
            }
        );
        assert_eq!(
            LockOptions::from_lookup(env(&[])).unwrap(),
            LockOptions::default()
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (name, value) in [
            (LOCK_TTL_ENV, "-1"),
            (LOCK_TTL_ENV, "soon"),
            (LOCK_TTL_ENV, "none"),
            // Rounds to a zero ttl: a lock that would exclude nobody.
            (LOCK_TTL_ENV, "1e-12"),
            (LOCK_TTL_ENV, "0.0009"),
            (BLOCKING_ENV, "maybe"),
            (BLOCKING_TIMEOUT_ENV, "NaN"),
        ] {
            let error = LockOptions::from_lookup(env(&[(name, value)])).unwrap_err();
            assert_eq!(error.variable, name);
            assert!(error.to_string().contains(value), "{error}");
        }
    }
}
