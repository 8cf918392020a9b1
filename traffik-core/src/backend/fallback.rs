//! [`Fallback`]: a backend wrapper that sends what its primary backend fails to a second
//! backend.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::{
    Backend, BackendError, BackendFuture, BackendSettings, KeyValueStore, KeyedHit, Mode, StoreId,
};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{ConfigError, Decision, MaybeReady, Millis, Rate, StrategyStat};

/// Decides on a primary backend and, when it fails, on a fallback backend: the reference
/// library's `backend_fallback`. Typically a shared Redis with a local
/// [`MemoryBackend`](crate::MemoryBackend) running the same limits, behind a
/// [`CircuitBreaker`](super::CircuitBreaker) so that an outage costs no timeouts (see
/// [`failover`](super::failover), which builds the three together).
///
/// - **On which errors:** by default those meaning the primary is down
///   ([`BackendError::is_outage`], which includes an open circuit breaker, not a busy lock).
///   A typed data error (a key of another type) or an unsupported rate is returned as it is:
///   the fallback would hide a mistake. [`fall_back_if`](Self::fall_back_if) chooses otherwise.
/// - **Accuracy:** state does not carry over. The fallback starts from its own state (empty at
///   first), so during an outage a client gets the fallback's limit on top of what it used on
///   the primary, and with a local fallback **each instance of a fleet limits on its own: the
///   effective limit is the per-instance limit × the number of instances**. When the primary
///   returns, its state is what it was before the outage (what the fallback admitted is not
///   counted there). For a conservative fallback, give the throttle a per-instance share of
///   the limit, or accept the looser limit for the length of an outage (see
///   `docs/resilience.md`).
/// - **Keys:** the fallback gets the same keys, which carry the primary's namespace; the
///   two backends must have the same namespace, so that `reset` clears both.
/// - **What goes where:** decisions, refunds and reads go to the primary, and to the fallback
///   when it fails. A refund the primary cannot take goes to the fallback (where the charge
///   most likely went, the primary failing). `reset` and `close` reach both. Settings, name
///   and the key-value contract are the primary's.
/// - **Logs:** a failure of the primary is logged at WARN, at most once a second (target
///   `traffik`); the calls an open circuit breaker turns away at DEBUG (the breaker logs its
///   own transitions at INFO). The throttle's on-error policy never sees a failure the
///   fallback answered.
///
/// ```
/// use traffik_core::backend::Fallback;
/// use traffik_core::{MemoryBackend, Throttle};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let primary = MemoryBackend::new(); // a RedisBackend in production
/// let backend = Fallback::new(primary, MemoryBackend::new()).build()?;
/// let throttle = Throttle::builder("fallback-doc", "2/min").backend(backend).build()?;
/// assert!(throttle.hit("alice").await?.is_allowed());
/// # Ok(()) }
/// ```
pub struct Fallback<P, F> {
    primary: P,
    fallback: F,
    fall_back_if: fn(&BackendError) -> bool,
    /// When the wrapper was made, and the last WARN in ms since then (one a second at most).
    created: Instant,
    last_warning: AtomicU64,
}

impl<P: Backend, F: Backend> Fallback<P, F> {
    /// `primary`, falling back to `fallback` when it fails with a transient error.
    #[must_use]
    pub fn new(primary: P, fallback: F) -> Self {
        Fallback {
            primary,
            fallback,
            fall_back_if: BackendError::is_outage,
            created: Instant::now(),
            last_warning: AtomicU64::new(0),
        }
    }

    /// Which of the primary's errors send a call to the fallback (default
    /// [`BackendError::is_outage`]).
    #[must_use]
    pub fn fall_back_if(mut self, fall_back: fn(&BackendError) -> bool) -> Self {
        self.fall_back_if = fall_back;
        self
    }

    /// Checks the pair.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBackend`] when the fallback is the primary itself (a clone of it,
    /// or a wrapper around it: it would fail with it), or when the two backends have different
    /// namespaces.
    pub fn build(self) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidBackend {
            backend: "fallback",
            reason,
        };
        if self.primary.store_id() == self.fallback.store_id() {
            return Err(invalid(format!(
                "the fallback is the primary backend `{}` itself: it would fail with it",
                self.primary.name()
            )));
        }
        if self.primary.namespace() != self.fallback.namespace() {
            return Err(invalid(format!(
                "the fallback's namespace `{}` differs from the primary's `{}`: give both the same namespace, so keys and `reset` agree",
                self.fallback.namespace(),
                self.primary.namespace()
            )));
        }
        Ok(self)
    }

    /// The primary backend.
    pub fn primary(&self) -> &P {
        &self.primary
    }

    /// The fallback backend.
    pub fn fallback(&self) -> &F {
        &self.fallback
    }

    /// Counts the primary's failure (`traffik_backend_errors_total`) and logs the fall-back:
    /// at WARN at most once a second (an open circuit breaker's fast failures at DEBUG: the
    /// breaker logged its opening), else at DEBUG.
    fn log(&self, error: &BackendError) {
        let (primary, fallback) = (self.primary.name(), self.fallback.name());
        crate::telemetry::backend_error(primary, error);
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = !matches!(error, BackendError::CircuitOpen { .. })
            && (last == 0 || now >= last.saturating_add(1_000))
            && self
                .last_warning
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            tracing::warn!(target: "traffik", primary, fallback, %error, "the primary backend failed; deciding on the fallback");
        } else {
            tracing::debug!(target: "traffik", primary, fallback, %error, "deciding on the fallback backend");
        }
    }

    /// Runs `primary`, and `fallback` when it fails with an error that falls back.
    async fn either<'a, T, A, B>(
        &'a self,
        primary: A,
        fallback: impl FnOnce() -> B + 'a,
    ) -> Result<T, BackendError>
    where
        A: Future<Output = Result<T, BackendError>> + 'a,
        B: Future<Output = Result<T, BackendError>> + 'a,
    {
        match primary.await {
            Err(error) if (self.fall_back_if)(&error) => {
                self.log(&error);
                fallback().await
            }
            other => other,
        }
    }

    /// The synchronous form of [`either`](Self::either): `None` when the backend that would
    /// answer cannot answer at once.
    fn either_now<T>(
        &self,
        primary: Option<Result<T, BackendError>>,
        fallback: impl FnOnce() -> Option<Result<T, BackendError>>,
    ) -> Option<Result<T, BackendError>> {
        match primary? {
            Err(error) if (self.fall_back_if)(&error) => {
                self.log(&error);
                fallback()
            }
            other => Some(other),
        }
    }
}

impl<P: Backend, F: Backend> Backend for Fallback<P, F> {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn settings(&self) -> &BackendSettings {
        self.primary.settings()
    }

    fn store_id(&self) -> StoreId {
        self.primary.store_id()
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(
            self.either(self.primary.decide(key, strategy, hit, mode), move || {
                self.fallback.decide(key, strategy, hit, mode)
            }),
        )
    }

    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        self.either_now(self.primary.decide_now(key, strategy, hit, mode), || {
            self.fallback.decide_now(key, strategy, hit, mode)
        })
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(self.either(self.primary.decide_all(hits, mode), move || {
            self.fallback.decide_all(hits, mode)
        }))
    }

    fn decide_all_now(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Option<Result<Vec<Decision>, BackendError>> {
        self.either_now(self.primary.decide_all_now(hits, mode), || {
            self.fallback.decide_all_now(hits, mode)
        })
    }

    fn check_rate(&self, strategy: &dyn DynStrategy, rate: &Rate) -> Result<(), String> {
        self.primary.check_rate(strategy, rate)?;
        self.fallback
            .check_rate(strategy, rate)
            .map_err(|reason| format!("on the fallback `{}`: {reason}", self.fallback.name()))
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::boxed(
            self.either(self.primary.refund(key, strategy, charge, now), move || {
                self.fallback.refund(key, strategy, charge, now)
            }),
        )
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(self.either(self.primary.stat(key, strategy, hit), move || {
            self.fallback.stat(key, strategy, hit)
        }))
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(async move {
            let fallback = self.fallback.reset().await;
            self.primary.reset().await.and(fallback)
        })
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        MaybeReady::boxed(async move {
            let fallback = self.fallback.close().await;
            self.primary.close().await.and(fallback)
        })
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        self.primary.key_value()
    }
}

impl<P: Backend, F: Backend> fmt::Debug for Fallback<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::{BreakerState, CircuitBreaker, failover};
    use crate::testing::Outage;
    use crate::{MemoryBackend, OnError, Throttle, ThrottleRegistry};

    fn throttle(uid: &str, rate: &str, backend: impl Backend) -> Throttle {
        Throttle::builder(uid, rate)
            .registry(&ThrottleRegistry::new())
            .backend(backend)
            .on_error(OnError::Raise)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn the_fallback_enforces_its_own_limit_while_the_primary_is_down() {
        let primary = Outage::new(MemoryBackend::new());
        let backend = Fallback::new(primary.clone(), MemoryBackend::new())
            .build()
            .unwrap();
        let throttle = throttle("fallback-limits", "3/min", backend);
        assert!(
            throttle.hit("alice").await.unwrap().is_allowed(),
            "on the primary"
        );
        primary.set_down(true);
        // State does not carry over: the fallback starts with the whole limit.
        for _ in 0..3 {
            assert!(throttle.hit("alice").await.unwrap().is_allowed());
        }
        assert!(throttle.hit("alice").await.unwrap().is_throttled());
        primary.set_down(false);
        let back = throttle.hit("alice").await.unwrap();
        assert_eq!(back.remaining, 1, "the primary kept its own count");
    }

    #[tokio::test]
    async fn errors_that_do_not_fall_back_are_returned() {
        let primary = Outage::new(MemoryBackend::new());
        let backend = Fallback::new(primary.clone(), MemoryBackend::new())
            .fall_back_if(|_| false)
            .build()
            .unwrap();
        let throttle = throttle("fallback-raises", "3/min", backend);
        primary.set_down(true);
        assert!(throttle.hit("alice").await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failover_falls_back_at_once_while_its_breaker_is_open() {
        let primary = Outage::new(MemoryBackend::new());
        let backend = failover(primary.clone(), MemoryBackend::new())
            .max_retries(0)
            .breaker(|breaker| breaker.failure_threshold(2))
            .build()
            .unwrap();
        let breaker = backend.primary().handle();
        let throttle = throttle("failover-open", "5/min", backend);
        primary.set_down(true);
        for _ in 0..2 {
            assert!(throttle.hit("alice").await.unwrap().is_allowed());
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let reached = primary.calls();
        for _ in 0..3 {
            assert!(throttle.hit("alice").await.unwrap().is_allowed());
        }
        assert!(
            throttle.hit("alice").await.unwrap().is_throttled(),
            "5 on the fallback"
        );
        assert_eq!(
            primary.calls(),
            reached,
            "the open breaker kept every call away"
        );
        // Decided synchronously too: the open breaker and the in-memory fallback need no await.
        assert!(
            throttle
                .try_hit_now("bob", crate::throttle::HitOptions::new())
                .is_some()
        );
    }

    #[test]
    fn a_fallback_that_is_the_primary_is_a_configuration_error() {
        let memory = MemoryBackend::new();
        let error = Fallback::new(memory.clone(), memory.clone())
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("itself"), "{error}");
        let wrapped = CircuitBreaker::new(memory.clone()).build().unwrap();
        assert!(Fallback::new(wrapped, memory.clone()).build().is_err());
        let renamed = memory.with_namespace("other").unwrap();
        assert!(Fallback::new(memory, renamed).build().is_err(), "one store");
        let error = Fallback::new(
            MemoryBackend::new(),
            MemoryBackend::builder().namespace("other").build().unwrap(),
        )
        .build()
        .unwrap_err();
        assert!(error.to_string().contains("namespace"), "{error}");
        let error = failover(MemoryBackend::new(), MemoryBackend::new())
            .breaker(|breaker| breaker.recovery_timeout(Duration::ZERO))
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("recovery timeout"), "{error}");
    }
}
