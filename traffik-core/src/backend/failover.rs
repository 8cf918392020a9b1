//! [`failover`]: a primary backend behind retries and a circuit breaker, falling back to a
//! second backend, in one (the reference library's `failover(backend, breaker, max_retries)`).

use std::fmt;

use super::{Backend, BackendError, CircuitBreaker, Fallback, Retry};
use crate::ConfigError;

/// A primary backend with retries inside a circuit breaker, falling back to a second backend:
/// what [`failover`] builds.
pub type Failover<P, F> = Fallback<CircuitBreaker<Retry<P>>, F>;

/// Starts a [`Failover`]: `primary` retried ([`Retry`], default 2 retries within 100 ms)
/// inside a [`CircuitBreaker`] (default: opens after 5 failed calls in a row, probes after
/// 30 s), falling back to `fallback` ([`Fallback`]) when the primary fails or the breaker is
/// open. The breaker counts a retried call once, as the reference does.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::backend::failover;
/// use traffik_core::{MemoryBackend, Throttle};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let primary = MemoryBackend::new(); // a RedisBackend in production
/// let backend = failover(primary, MemoryBackend::new())
///     .max_retries(1)
///     .breaker(|breaker| breaker.failure_threshold(3).recovery_timeout(Duration::from_secs(10)))
///     .build()?;
/// let breaker = backend.primary().handle(); // for a health endpoint
/// let throttle = Throttle::builder("failover-doc", "2/min").backend(backend).build()?;
/// assert!(throttle.hit("alice").await?.is_allowed());
/// # let _ = breaker;
/// # Ok(()) }
/// ```
pub fn failover<P: Backend, F: Backend>(primary: P, fallback: F) -> FailoverBuilder<P, F> {
    FailoverBuilder {
        breaker: CircuitBreaker::new(Retry::new(primary)),
        fallback,
        fall_back_if: BackendError::is_outage,
    }
}

/// Configures a [`Failover`] ([`failover`]).
pub struct FailoverBuilder<P, F> {
    breaker: CircuitBreaker<Retry<P>>,
    fallback: F,
    fall_back_if: fn(&BackendError) -> bool,
}

impl<P: Backend, F: Backend> FailoverBuilder<P, F> {
    /// The most retries of a failed call on the primary (default 2; 0 turns retrying off).
    #[must_use]
    pub fn max_retries(self, retries: u32) -> Self {
        self.retry(|retry| retry.max_retries(retries))
    }

    /// Configures the retries ([`Retry`]'s settings).
    #[must_use]
    pub fn retry(mut self, configure: impl FnOnce(Retry<P>) -> Retry<P>) -> Self {
        self.breaker = self.breaker.map_inner(configure);
        self
    }

    /// Configures the circuit breaker ([`CircuitBreaker`]'s settings).
    #[must_use]
    pub fn breaker(
        mut self,
        configure: impl FnOnce(CircuitBreaker<Retry<P>>) -> CircuitBreaker<Retry<P>>,
    ) -> Self {
        self.breaker = configure(self.breaker);
        self
    }

    /// Which errors send a call to the fallback (default [`BackendError::is_outage`], which
    /// includes an open breaker).
    #[must_use]
    pub fn fall_back_if(mut self, fall_back: fn(&BackendError) -> bool) -> Self {
        self.fall_back_if = fall_back;
        self
    }

    /// Checks every part.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBackend`] from [`Retry::build`], [`CircuitBreaker::build`] or
    /// [`Fallback::build`] (a fallback that is the primary, or of another namespace).
    pub fn build(self) -> Result<Failover<P, F>, ConfigError> {
        let breaker = self.breaker.try_map_inner(Retry::build)?.build()?;
        Fallback::new(breaker, self.fallback)
            .fall_back_if(self.fall_back_if)
            .build()
    }
}

impl<P: Backend, F: Backend> fmt::Debug for FailoverBuilder<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverBuilder")
            .field("breaker", &self.breaker)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}
