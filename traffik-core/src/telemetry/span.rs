//! [`DecisionSpan`]: the TRACE span around one decision.

use quanta::Instant;
use tracing::Span;
use tracing::field::Empty;

use crate::backend::Backend;
use crate::{Decision, Outcome, ThrottleError};

/// One decision's span (`traffik::decision`, TRACE): `uid`, `cost`, `backend`, `outcome` and
/// `latency_us`. When no subscriber wants it, it holds nothing (one word, moved for free) and
/// nothing is measured.
pub(crate) struct DecisionSpan(Option<Box<Recording>>);

struct Recording {
    span: Span,
    started: Instant,
}

impl DecisionSpan {
    /// Opens the span of a decision of the throttle `uid`.
    #[inline]
    pub(crate) fn start(uid: &str) -> Self {
        // Asked first: a disabled `trace_span!` still formats its fields for the `log` crate
        // when tracing's `log` feature is on (axum's default `tower-log` turns it on) and no
        // subscriber is installed.
        if !tracing::enabled!(target: "traffik::decision", tracing::Level::TRACE) {
            return DecisionSpan(None);
        }
        let span = tracing::trace_span!(
            target: "traffik::decision",
            "decision",
            uid,
            cost = Empty,
            backend = Empty,
            outcome = Empty,
            latency_us = Empty,
        );
        if span.is_disabled() {
            return DecisionSpan(None);
        }
        DecisionSpan(Some(Box::new(Recording {
            span,
            started: Instant::now(),
        })))
    }

    /// The span, to instrument the asynchronous path with (a disabled span when not
    /// recording).
    pub(crate) fn span(&self) -> Span {
        self.0
            .as_ref()
            .map_or_else(Span::none, |recording| recording.span.clone())
    }

    /// Records the hit's cost (units) and the backend deciding it.
    #[inline]
    pub(crate) fn hit(&self, cost: u64, backend: &dyn Backend) {
        if let Some(recording) = &self.0 {
            recording.span.record("cost", cost);
            recording.span.record("backend", backend.name());
        }
    }

    /// Records how the decision ended and how long it took (µs).
    #[inline]
    pub(crate) fn finish<R>(
        &self,
        result: &Result<R, ThrottleError>,
        decision: impl Fn(&R) -> Decision,
    ) {
        let Some(recording) = &self.0 else {
            return;
        };
        let outcome = match result {
            Ok(report) => outcome_name(&decision(report)),
            Err(_) => "error",
        };
        recording.span.record("outcome", outcome);
        let micros = u64::try_from(recording.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        recording.span.record("latency_us", micros);
    }
}

/// An outcome's name, as in the `outcome` label of `traffik_decisions_total`.
fn outcome_name(decision: &Decision) -> &'static str {
    match decision.outcome {
        Outcome::Allowed => "allowed",
        Outcome::Throttled { .. } => "throttled",
        Outcome::ExceedsCapacity { .. } => "exceeds_capacity",
        Outcome::Skipped(_) => "skipped",
        Outcome::ShadowThrottled { .. } => "shadow_throttled",
    }
}
