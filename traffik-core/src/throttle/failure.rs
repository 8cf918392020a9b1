//! A backend's failure: logged (at most once a second per throttle) and decided by the on-error
//! policy.

use std::sync::atomic::Ordering;

use super::Throttle;
use super::all::Ready;
use crate::backend::BackendError;
use crate::on_error::{ErrorInfo, OnError};
use crate::telemetry;
use crate::{Decision, ThrottleError};

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// Applies the limit's on-error policy to a failure of its backend.
    pub(super) async fn on_backend_error(
        &self,
        ready: &Ready,
        error: BackendError,
        cost: u64,
    ) -> Result<Decision, ThrottleError> {
        let info = ErrorInfo {
            error,
            uid: &self.inner.uid,
            key: &ready.key,
            cost,
            rate: ready.rate,
            context: &ready.context,
            backend: ready.backend.as_ref(),
            strategy: Some(ready.strategy.as_ref()),
            now: ready.now,
            min_wait: ready.min_wait,
        };
        self.apply_policy(&ready.on_error, info).await
    }

    /// Logs a backend failure (rate-limited) and lets `policy` decide the hit.
    pub(super) async fn apply_policy(
        &self,
        policy: &OnError,
        info: ErrorInfo<'_>,
    ) -> Result<Decision, ThrottleError> {
        self.log_backend_error(&info.error, info.backend.name());
        if matches!(info.error, BackendError::Unsupported { .. }) {
            // A configuration mistake (a rate the backend cannot decide exactly), not an
            // outage: never failed open, whatever the policy.
            let raised = Err(ThrottleError::Backend {
                uid: self.inner.uid.to_string(),
                source: info.error,
            });
            telemetry::on_error_action(&self.inner.uid, &raised);
            return raised;
        }
        let min_wait = info.min_wait;
        let result = policy
            .apply(info)
            .await
            .map(|decision| self.settle(decision, min_wait))
            .map_err(|source| ThrottleError::Backend {
                uid: self.inner.uid.to_string(),
                source,
            });
        telemetry::on_error_action(&self.inner.uid, &result);
        result
    }

    /// Logs a backend failure at most once a second per throttle.
    fn log_backend_error(&self, error: &BackendError, backend: &str) {
        let now = self.inner.clock.now();
        let last = self.inner.last_error_log.load(Ordering::Relaxed);
        if now >= last.saturating_add(1_000)
            && self
                .inner
                .last_error_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(target: "traffik", uid = %self.inner.uid, backend, %error, "backend failed; applying the on-error policy");
        }
    }
}
