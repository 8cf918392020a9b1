//! [`OnError`]: what a throttle does when its backend fails. Backends carry a default policy
//! and throttles their own, so it lives beside both rather than inside either.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, BackendError};
use crate::strategy::{DynStrategy, Hit};
use crate::{BoxFuture, Context, Decision, Millis, Rate, SkipReason};

/// The wait when failing closed without a `min_wait`.
pub const DEFAULT_ERROR_WAIT: Duration = Duration::from_secs(1);

/// What to do when the backend fails. Set per backend, overridden per throttle; the default is
/// [`OnError::Allow`] (fail open; see `docs/decisions/0001-fail-open-by-default.md`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum OnError {
    /// Let the hit through ([`SkipReason::BackendFailure`]): the limiter's outage does not
    /// become the service's outage.
    #[default]
    Allow,
    /// Refuse the hit, waiting `min_wait` or 1 s (fail closed).
    Throttle,
    /// Return the error to the caller ([`ThrottleError::Backend`](crate::ThrottleError::Backend)).
    Raise,
    /// Ask a handler: it sees the error, the throttle, key, cost, rate and context and decides.
    Handler(ErrorHandler),
}

type HandlerFn =
    dyn for<'a> Fn(ErrorInfo<'a>) -> BoxFuture<'a, Result<Decision, BackendError>> + Send + Sync;

/// A custom on-error handler (see [`OnError::handler`]).
#[derive(Clone)]
pub struct ErrorHandler(Arc<HandlerFn>);

impl OnError {
    /// A custom handler: return [`ErrorInfo::allow`], [`ErrorInfo::throttle`], any decision
    /// (for instance one from a fallback backend via [`ErrorInfo::retry_on`]), or
    /// `Err(info.error)` to raise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use traffik_core::OnError;
    ///
    /// // Fail closed for a second on timeouts, open otherwise.
    /// let policy = OnError::handler(|info| Box::pin(async move {
    ///     match info.error {
    ///         traffik_core::backend::BackendError::Timeout { .. } => Ok(info.throttle(Duration::from_secs(1))),
    ///         _ => Ok(info.allow()),
    ///     }
    /// }));
    /// # let _ = policy;
    /// ```
    pub fn handler<F>(handler: F) -> Self
    where
        F: for<'a> Fn(ErrorInfo<'a>) -> BoxFuture<'a, Result<Decision, BackendError>>
            + Send
            + Sync
            + 'static,
    {
        OnError::Handler(ErrorHandler(Arc::new(handler)))
    }

    pub(crate) async fn apply(&self, info: ErrorInfo<'_>) -> Result<Decision, BackendError> {
        match self {
            OnError::Allow => Ok(info.allow()),
            OnError::Throttle => Ok(info.throttle(info.min_wait.unwrap_or(DEFAULT_ERROR_WAIT))),
            OnError::Raise => Err(info.error),
            OnError::Handler(handler) => (handler.0)(info).await,
        }
    }
}

/// Everything an on-error handler may want to know.
#[non_exhaustive]
pub struct ErrorInfo<'a> {
    /// The backend's error.
    pub error: BackendError,
    /// The throttle's uid.
    pub uid: &'a str,
    /// The storage key.
    pub key: &'a str,
    /// The hit's cost.
    pub cost: u64,
    /// The rate in force.
    pub rate: Rate,
    /// The hit's merged context.
    pub context: &'a Context,
    /// The backend that failed.
    pub backend: &'a dyn Backend,
    /// The strategy, to retry the decision elsewhere (`None` for key-value strategies).
    pub strategy: Option<&'a dyn DynStrategy>,
    /// When the hit happened.
    pub now: Millis,
    /// The throttle's minimum wait, if any.
    pub min_wait: Option<Duration>,
}

impl<'a> ErrorInfo<'a> {
    /// A decision letting the hit through.
    #[must_use]
    pub fn allow(&self) -> Decision {
        Decision::skipped(SkipReason::BackendFailure)
    }

    /// A decision refusing the hit for `wait` (raised to the throttle's `min_wait`).
    #[must_use]
    pub fn throttle(&self, wait: Duration) -> Decision {
        let wait = self.min_wait.map_or(wait, |floor| wait.max(floor));
        Decision::throttled(self.rate.limit(), 0, wait, wait)
    }

    /// The hit, as the strategy saw it.
    #[must_use]
    pub fn hit(&self) -> Hit<'a> {
        Hit::new(self.now, self.rate, self.cost, self.context)
    }

    /// Decides the same hit on another backend (a fallback), with the same key. Key-value
    /// strategies cannot be replayed this way: their original error is returned.
    pub async fn retry_on(self, backend: &dyn Backend) -> Result<Decision, BackendError> {
        match self.strategy {
            Some(strategy) => {
                backend
                    .decide(
                        self.key,
                        strategy,
                        self.hit(),
                        crate::backend::Mode::Consume,
                    )
                    .await
            }
            None => Err(self.error),
        }
    }
}

impl fmt::Debug for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::Allow => "Allow",
            OnError::Throttle => "Throttle",
            OnError::Raise => "Raise",
            OnError::Handler(_) => "Handler(..)",
        })
    }
}

impl fmt::Debug for ErrorHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorHandler(..)")
    }
}

impl fmt::Debug for ErrorInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorInfo")
            .field("error", &self.error)
            .field("uid", &self.uid)
            .field("key", &self.key)
            .field("cost", &self.cost)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}
