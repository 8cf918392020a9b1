//! Metrics and tracing: what traffik reports about its decisions, backends and circuit
//! breakers.
//!
//! # Metrics
//!
//! traffik reports through the [`metrics`] facade, the way tokio, hyper's ecosystem and most
//! Rust services do: nothing is kept until the application installs a recorder (for instance
//! `metrics-exporter-prometheus`), and then every metric below goes to it. Without a recorder
//! a decision pays one predictable branch per counter (measured in `docs/observability.md`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | [`traffik_decisions_total`](names::DECISIONS) | counter | `throttle`, `outcome`, `reason` (skipped only) |
//! | [`traffik_near_limit_decisions_total`](names::NEAR_LIMIT) | counter | `throttle` |
//! | [`traffik_backend_errors_total`](names::BACKEND_ERRORS) | counter | `backend`, `kind` |
//! | [`traffik_on_error_total`](names::ON_ERROR) | counter | `throttle`, `action` |
//! | [`traffik_backend_decision_duration_seconds`](names::BACKEND_DURATION) | histogram | `backend` |
//! | [`traffik_memory_keys`](names::MEMORY_KEYS) | gauge | `namespace` |
//! | [`traffik_memory_evictions_total`](names::MEMORY_EVICTIONS) | counter | `namespace` |
//! | [`traffik_circuit_breaker_transitions_total`](names::BREAKER_TRANSITIONS) | counter | `breaker`, `from`, `to` |
//! | [`traffik_circuit_breaker_state`](names::BREAKER_STATE) | gauge | `breaker` |
//!
//! **No label ever holds a client's identity**: the throttle's uid is the only per-throttle
//! label, so the number of series is bounded by the throttles, backends and breakers the
//! application configures, however many clients it serves.
//!
//! What counts:
//! - Each **hit** counts once, whichever entry point made it (`Throttle::hit`, `try_hit_now`,
//!   a batch, an extractor, a layer, a WebSocket message). Checks (`check`, `try_check_now`)
//!   consume nothing and do not count. In a batch each limit counts its own decision, so a
//!   limit that admitted in a batch another limit refused counts as `allowed` (though nothing
//!   was charged).
//! - Each **failed backend call** counts once, where it is handled: by the
//!   [`Retry`](crate::backend::Retry) that retries it, the [`Fallback`](crate::backend::Fallback)
//!   that falls back from it, or the throttle that applies its on-error policy.
//! - A throttle registers its counters at its **first decision**, a circuit breaker its gauge at
//!   its first call: install the recorder before serving traffic. Handles registered before the
//!   recorder stay without one (the `metrics` crate's rule).
//!
//! # Tracing
//!
//! - One span per decision, `decision` at TRACE under the `traffik::decision` target, with
//!   `uid`, `cost` (units), `backend`, `outcome` and `latency_us` (µs). When no subscriber
//!   enables it, nothing is measured.
//! - A backend failure: WARN under `traffik`, at most once a second per throttle (and once a
//!   second per fallback).
//! - A circuit-breaker transition: INFO under `traffik`, once per transition.
//! - A refused request is never logged above TRACE (`traffik::rejection` in traffik-axum).
//!
//! ```
//! use traffik_core::telemetry::{self, names};
//!
//! // After installing the recorder: the HELP text and units of every traffik metric.
//! telemetry::describe_metrics();
//! assert_eq!(names::DECISIONS, "traffik_decisions_total");
//! ```

mod backend;
mod decisions;
pub mod names;
mod span;

#[cfg(feature = "memcached")]
pub(crate) use backend::cas_retry;
#[cfg(feature = "redis")]
pub(crate) use backend::deny_cache_hit;
pub(crate) use backend::{LatencyHistograms, backend_error, on_error_action};
pub(crate) use decisions::DecisionMetrics;
pub(crate) use span::DecisionSpan;

use metrics::Unit;

/// Describes every traffik metric (its help text and unit) to the installed recorder, so an
/// exporter can print them (Prometheus `# HELP` lines). Call it once, after installing the
/// recorder; metrics are recorded whether or not it is called.
pub fn describe_metrics() {
    metrics::describe_counter!(
        names::DECISIONS,
        Unit::Count,
        "Rate-limit decisions by throttle and outcome (allowed, throttled, exceeds_capacity, skipped by reason, shadow_throttled)."
    );
    metrics::describe_counter!(
        names::NEAR_LIMIT,
        Unit::Count,
        "Allowed decisions that left at least 80% of the limit used."
    );
    metrics::describe_counter!(
        names::BACKEND_ERRORS,
        Unit::Count,
        "Failed backend calls by backend and error kind."
    );
    metrics::describe_counter!(
        names::ON_ERROR,
        Unit::Count,
        "What the on-error policy made of a backend failure (failed_open, failed_closed, raised)."
    );
    metrics::describe_histogram!(
        names::BACKEND_DURATION,
        Unit::Seconds,
        "How long a backend took to decide, in seconds."
    );
    metrics::describe_gauge!(
        names::MEMORY_KEYS,
        Unit::Count,
        "Keys held by an in-memory backend."
    );
    metrics::describe_counter!(
        names::MEMORY_EVICTIONS,
        Unit::Count,
        "Live keys an in-memory backend evicted because it was full."
    );
    metrics::describe_counter!(
        names::CAS_RETRIES,
        Unit::Count,
        "Compare-and-swap writes lost to a concurrent writer on the same key, by backend."
    );
    metrics::describe_counter!(
        names::DENY_CACHE_HITS,
        Unit::Count,
        "Decisions a Redis backend's local deny cache answered without a Redis call."
    );
    metrics::describe_counter!(
        names::BREAKER_TRANSITIONS,
        Unit::Count,
        "Circuit-breaker transitions by breaker, from and to state."
    );
    metrics::describe_gauge!(
        names::BREAKER_STATE,
        "A circuit breaker's state: 0 closed, 1 half-open, 2 open."
    );
}

#[cfg(test)]
mod tests;
