//! Backend metrics: failed calls, on-error actions and decision latency.

use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics::Histogram;

use super::names::{ACTION, BACKEND, BACKEND_DURATION, BACKEND_ERRORS, KIND, ON_ERROR, THROTTLE};
use crate::backend::BackendError;
use crate::{Decision, Outcome};

/// Counts one failed backend call (rare: registered on each call, not cached).
pub(crate) fn backend_error(backend: &str, error: &BackendError) {
    metrics::counter!(BACKEND_ERRORS, BACKEND => backend.to_owned(), KIND => error.kind())
        .increment(1);
}

/// Counts one lost compare-and-swap race (only under contention: registered on each call).
#[cfg(feature = "memcached")]
pub(crate) fn cas_retry(backend: &'static str) {
    metrics::counter!(super::names::CAS_RETRIES, BACKEND => backend).increment(1);
}

/// Counts one decision answered by a Redis backend's deny cache.
#[cfg(feature = "redis")]
pub(crate) fn deny_cache_hit(backend: &'static str) {
    metrics::counter!(super::names::DENY_CACHE_HITS, BACKEND => backend).increment(1);
}

/// Counts what an on-error policy made of a failure: the decision it returned (failed open or
/// closed), or the error it raised.
pub(crate) fn on_error_action<E>(uid: &str, result: &Result<Decision, E>) {
    let action = match result {
        Err(_) => "raised",
        Ok(decision) => match decision.outcome {
            Outcome::Throttled { .. }
            | Outcome::ExceedsCapacity { .. }
            | Outcome::ShadowThrottled { .. } => "failed_closed",
            Outcome::Allowed | Outcome::Skipped(_) => "failed_open",
        },
    };
    metrics::counter!(ON_ERROR, THROTTLE => uid.to_owned(), ACTION => action).increment(1);
}

/// A throttle's latency histograms, one per backend name it has decided on, registered once
/// (like the decision counters, with the recorder installed at that time).
#[derive(Default)]
pub(crate) struct LatencyHistograms {
    by_backend: ArcSwap<Vec<(Box<str>, Histogram)>>,
}

impl LatencyHistograms {
    /// Records that `backend` took `seconds` to decide.
    pub(crate) fn record(&self, backend: &str, seconds: f64) {
        let known = self.by_backend.load();
        if let Some((_, histogram)) = known.iter().find(|(name, _)| &**name == backend) {
            histogram.record(seconds);
            return;
        }
        let histogram = metrics::histogram!(BACKEND_DURATION, BACKEND => backend.to_owned());
        histogram.record(seconds);
        self.by_backend.rcu(|known| {
            let mut grown = Vec::clone(known);
            if !grown.iter().any(|(name, _)| &**name == backend) {
                grown.push((backend.into(), histogram.clone()));
            }
            Arc::new(grown)
        });
    }
}
