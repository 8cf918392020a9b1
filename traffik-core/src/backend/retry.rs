//! [`Retry`]: a backend wrapper that retries transient failures with backoff and jitter.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Backend, BackendError, BackendFuture, BackendSettings, KeyValueStore, KeyedHit, Mode, StoreId,
};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{ConfigError, Decision, MaybeReady, Millis, Rate, StrategyStat};

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// The same delay before every retry.
    Constant,
    /// `delay × n` before the n-th retry.
    Linear,
    /// `delay × 2ⁿ⁻¹` before the n-th retry.
    Exponential,
    /// `delay × log₂(n + 1)` before the n-th retry: fast growth at first, slow later (the
    /// reference's `LogarithmicBackoff` with base 2).
    Logarithmic,
}

/// How a retry's wait is randomised, so a fleet that failed together does not retry together
/// (AWS's "Exponential Backoff and Jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// The computed delay, exactly.
    None,
    /// A uniform random wait between 0 and the delay (the default).
    Full,
    /// Half the delay plus a uniform random wait up to the other half: never shorter than half
    /// the delay (the reference's `EQUAL`).
    Equal,
}

/// Retries a backend's failed calls: [`decide`](Backend::decide), [`decide_all`](Backend::decide_all),
/// [`stat`](Backend::stat), [`reset`](Backend::reset). Never a [`refund`](Backend::refund): a
/// refund whose reply was lost may have been applied, and applying it twice would return a
/// charge twice (looser). Nor the key-value contract ([`key_value`](Backend::key_value)) that
/// custom strategies drive.
///
/// - **Which errors:** by default the transient ones ([`BackendError::is_transient`]: a timeout,
///   a lost or refused connection, a read-only replica after a failover, an out-of-memory
///   server, a busy lock), except an open [`CircuitBreaker`](super::CircuitBreaker)'s. A typed data error (`WrongType`, `InvalidReply`), a refused
///   permission, a closed backend or an unsupported rate is never retried. [`retry_if`]
///   chooses otherwise.
/// - **How often and how long:** at most [`max_retries`] retries (default 2), waiting
///   [`delay`] (default 10 ms) grown by the [`Backoff`] (default exponential), with full jitter
///   (a uniform random wait between 0 and the computed delay, so a fleet that failed together
///   does not retry together; the pattern of AWS's "Exponential Backoff and Jitter"). No retry
///   starts once [`max_elapsed`] (default 100 ms) has passed since the first attempt, so a
///   retried decision stays bounded whatever the backend does. The budget includes the failed
///   attempts: to retry a Redis timeout, `max_elapsed` must exceed the `command_timeout`
///   (default 500 ms). With several Redis connections (`connections(n)`), a dropped
///   connection fails once on each: use `max_retries` ≥ `n` to hide it.
/// - **What a retry may do:** a decision that timed out, or whose connection was lost while it
///   ran, may have been applied (Redis ran the script, the reply was lost). Retrying it can count
///   that hit twice: stricter, never looser. A refused connection never ran anything. A retry
///   decides at the first attempt's time (`Hit::now`), so its wait and reset are measured from
///   then.
/// - The synchronous path ([`decide_now`](Backend::decide_now)) is not retried: a failure there
///   sends the hit down the asynchronous path, which is.
///
/// Settings, the key-value contract and exact-rate checks are the wrapped backend's.
///
/// [`retry_if`]: Retry::retry_if
/// [`max_retries`]: Retry::max_retries
/// [`delay`]: Retry::delay
/// [`max_elapsed`]: Retry::max_elapsed
///
/// ```
/// use std::time::Duration;
/// use traffik_core::backend::{Backoff, Retry};
/// use traffik_core::{MemoryBackend, Throttle};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = Retry::new(MemoryBackend::new())
///     .max_retries(3)
///     .delay(Duration::from_millis(5))
///     .backoff(Backoff::Exponential)
///     .max_elapsed(Duration::from_millis(200))
///     .build()?;
/// let throttle = Throttle::builder("retry-doc", "2/min").backend(backend).build()?;
/// assert!(throttle.hit("alice").await?.is_allowed());
/// # Ok(()) }
/// ```
pub struct Retry<B> {
    inner: B,
    max_retries: u32,
    delay: Duration,
    backoff: Backoff,
    jitter: Jitter,
    max_elapsed: Duration,
    retryable: fn(&BackendError) -> bool,
}

impl<B: Backend> Retry<B> {
    /// Wraps `inner` with the defaults: 2 retries, 10 ms, exponential, jittered, 100 ms in all.
    #[must_use]
    pub fn new(inner: B) -> Self {
        Retry {
            inner,
            max_retries: 2,
            delay: Duration::from_millis(10),
            backoff: Backoff::Exponential,
            jitter: Jitter::Full,
            max_elapsed: Duration::from_millis(100),
            retryable: retried_by_default,
        }
    }

    /// The most retries after the first attempt (0 turns retrying off).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The base delay before a retry (grown by the [`Backoff`]).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How the delay grows from one retry to the next.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Whether each wait is a uniform random time between 0 and the delay (default `true`):
    /// [`Jitter::Full`] or [`Jitter::None`].
    #[must_use]
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = if jitter { Jitter::Full } else { Jitter::None };
        self
    }

    /// How each wait is randomised (default [`Jitter::Full`]).
    #[must_use]
    pub fn jitter_kind(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// No retry starts after this much time since the first attempt.
    #[must_use]
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// Which errors are retried (default: [`BackendError::is_transient`] ones, except an open
    /// circuit breaker, which would only fail fast again).
    #[must_use]
    pub fn retry_if(mut self, retryable: fn(&BackendError) -> bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBackend`] for a zero `max_elapsed` with retries on (no retry could
    /// ever start).
    pub fn build(self) -> Result<Self, ConfigError> {
        if self.max_retries > 0 && self.max_elapsed.is_zero() {
            return Err(ConfigError::InvalidBackend {
                backend: "retry",
                reason: "max_elapsed must be above zero when retries are on".to_owned(),
            });
        }
        Ok(self)
    }

    /// The wrapped backend.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wait before retry `retry` (1-based), jitter aside.
    fn delay_before(&self, retry: u32) -> Duration {
        match self.backoff {
            Backoff::Constant => self.delay,
            Backoff::Linear => self.delay.saturating_mul(retry),
            Backoff::Exponential => self
                .delay
                .saturating_mul(2_u32.saturating_pow(retry.saturating_sub(1))),
            Backoff::Logarithmic => self.delay.mul_f64((f64::from(retry) + 1.0).log2()),
        }
    }

    /// `wait` randomised as [`Jitter`] says, drawing `uniform` in `[0, 1)`.
    fn jittered(&self, wait: Duration, uniform: f64) -> Duration {
        match self.jitter {
            Jitter::None => wait,
            Jitter::Full => wait.mul_f64(uniform),
            Jitter::Equal => wait / 2 + (wait / 2).mul_f64(uniform),
        }
    }

    /// Runs `attempt` until it succeeds, fails with an error not retried, or the retries or the
    /// time run out (then the last error).
    async fn run<'a, T, F>(&'a self, attempt: impl Fn() -> F) -> Result<T, BackendError>
    where
        F: Future<Output = Result<T, BackendError>> + 'a,
    {
        let started = Instant::now();
        let mut retry: u32 = 0;
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if retry >= self.max_retries || !(self.retryable)(&error) {
                return Err(error);
            }
            retry += 1;
            let remaining = self.max_elapsed.saturating_sub(started.elapsed());
            let wait = self.jittered(self.delay_before(retry), fastrand::f64());
            if remaining.is_zero() || wait >= remaining {
                return Err(error);
            }
            crate::telemetry::backend_error(self.inner.name(), &error);
            tracing::debug!(target: "traffik", backend = self.inner.name(), retry, ?wait, %error, "retrying a failed backend call");
            tokio::time::sleep(wait).await;
        }
    }
}

/// The transient errors, except an open circuit breaker's: retrying it only fails fast again.
fn retried_by_default(error: &BackendError) -> bool {
    error.is_transient() && !matches!(error, BackendError::CircuitOpen { .. })
}

impl<B: Backend> Backend for Retry<B> {
    fn store_id(&self) -> StoreId {
        self.inner.store_id()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn settings(&self) -> &BackendSettings {
        self.inner.settings()
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(self.run(move || self.inner.decide(key, strategy, hit, mode)))
    }

    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        self.inner.decide_now(key, strategy, hit, mode)
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(self.run(move || self.inner.decide_all(hits, mode)))
    }

    fn decide_all_now(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Option<Result<Vec<Decision>, BackendError>> {
        self.inner.decide_all_now(hits, mode)
    }

    fn check_rate(&self, strategy: &dyn DynStrategy, rate: &Rate) -> Result<(), String> {
        self.inner.check_rate(strategy, rate)
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        // Not retried: see the type's docs.
        self.inner.refund(key, strategy, charge, now)
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(self.run(move || self.inner.stat(key, strategy, hit)))
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(self.run(move || self.inner.reset()))
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        self.inner.close()
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        self.inner.key_value()
    }
}

impl<B: Backend> fmt::Debug for Retry<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("max_retries", &self.max_retries)
            .field("delay", &self.delay)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .field("max_elapsed", &self.max_elapsed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn backoffs_grow_as_named() {
        let retry = |backoff| {
            Retry::new(MemoryBackend::new())
                .delay(Duration::from_millis(10))
                .backoff(backoff)
        };
        let waits = |retry: Retry<MemoryBackend>| -> Vec<u128> {
            (1..=4).map(|n| retry.delay_before(n).as_millis()).collect()
        };
        assert_eq!(waits(retry(Backoff::Constant)), [10, 10, 10, 10]);
        assert_eq!(waits(retry(Backoff::Linear)), [10, 20, 30, 40]);
        assert_eq!(waits(retry(Backoff::Exponential)), [10, 20, 40, 80]);
        // 10 × log2(n + 1): 10, 15.8, 20, 23.2 ms.
        assert_eq!(waits(retry(Backoff::Logarithmic)), [10, 15, 20, 23]);
        // No overflow at absurd retry counts.
        assert_eq!(
            retry(Backoff::Exponential).delay_before(u32::MAX),
            Duration::from_millis(10).saturating_mul(u32::MAX)
        );
    }

    #[test]
    fn jitter_keeps_each_wait_in_its_range() {
        let wait = Duration::from_millis(100);
        let with = |jitter| Retry::new(MemoryBackend::new()).jitter_kind(jitter);
        for uniform in [0.0, 0.25, 0.5, 0.999_999] {
            assert_eq!(with(Jitter::None).jittered(wait, uniform), wait);
            let full = with(Jitter::Full).jittered(wait, uniform);
            assert!(full <= wait && full == wait.mul_f64(uniform), "{full:?}");
            let equal = with(Jitter::Equal).jittered(wait, uniform);
            assert!(equal >= wait / 2 && equal <= wait, "{equal:?}");
        }
        assert_eq!(
            with(Jitter::Equal).jittered(wait, 0.0),
            Duration::from_millis(50)
        );
        assert_eq!(
            Retry::new(MemoryBackend::new()).jitter(false).jitter,
            Jitter::None
        );
    }

    #[test]
    fn a_zero_time_budget_with_retries_is_a_configuration_error() {
        let error = Retry::new(MemoryBackend::new())
            .max_elapsed(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("max_elapsed"), "{error}");
        assert!(
            Retry::new(MemoryBackend::new())
                .max_retries(0)
                .max_elapsed(Duration::ZERO)
                .build()
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_that_are_not_transient_are_returned_at_once() {
        // A closed backend fails every call with `Closed`: never retried, so no wait.
        let memory = MemoryBackend::new();
        let _ = Backend::close(&memory).await;
        let retry = Retry::new(memory)
            .delay(Duration::from_secs(60))
            .max_elapsed(Duration::from_secs(600))
            .build()
            .unwrap();
        let started = Instant::now();
        let context = crate::Context::new();
        let hit = Hit::new(0, Rate::per_second(1), 1, &context);
        let error = retry
            .decide(
                "k",
                &crate::strategy::FixedWindow::new(),
                hit,
                Mode::Consume,
            )
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::Closed { .. }), "{error}");
        // The paused clock advances only by sleeping: no retry waited.
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
