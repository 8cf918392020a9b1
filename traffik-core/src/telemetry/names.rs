//! The names of traffik's metrics and of their labels.
//!
//! Prometheus and OpenTelemetry conventions: a `traffik_` prefix, `_total` on counters, base
//! units (`_seconds`). Labels never hold a client's identity: the throttle's uid is the only
//! per-throttle label, so the number of series is bounded by what the application configures.

/// Counter: decisions by throttle and outcome. Labels [`THROTTLE`], [`OUTCOME`] (`allowed`,
/// `throttled`, `exceeds_capacity`, `skipped`, `shadow_throttled`) and, for `skipped` only,
/// [`REASON`] (`exempted`, `disabled`, `unlimited`, `zero_cost`, `backend_failure`).
pub const DECISIONS: &str = "traffik_decisions_total";

/// Counter: allowed decisions that left at least 80 % of the limit used (Envoy ratelimit's
/// `near_limit`). Label [`THROTTLE`].
pub const NEAR_LIMIT: &str = "traffik_near_limit_decisions_total";

/// Counter: failed backend calls. Labels [`BACKEND`] (the backend's name: `memory`, `redis`, …)
/// and [`KIND`] ([`BackendError::kind`](crate::backend::BackendError::kind)).
pub const BACKEND_ERRORS: &str = "traffik_backend_errors_total";

/// Counter: what the on-error policy made of a backend failure. Labels [`THROTTLE`] and
/// [`ACTION`] (`failed_open`, `failed_closed`, `raised`).
pub const ON_ERROR: &str = "traffik_on_error_total";

/// Histogram, in seconds: how long a backend took to decide (the asynchronous path: one
/// network round trip on Redis). Label [`BACKEND`].
pub const BACKEND_DURATION: &str = "traffik_backend_decision_duration_seconds";

/// Gauge: keys held by an in-memory backend (set by its sweeper, and on evictions). Label
/// [`NAMESPACE`].
pub const MEMORY_KEYS: &str = "traffik_memory_keys";

/// Counter: live keys an in-memory backend evicted because it was full (`max_keys`). Label
/// [`NAMESPACE`].
pub const MEMORY_EVICTIONS: &str = "traffik_memory_evictions_total";

/// Counter: compare-and-swap writes lost to a concurrent writer on the same key (each one read
/// again and retried, or, past the backend's attempts, a `Contention` error). Label
/// [`BACKEND`] (`memcached`).
pub const CAS_RETRIES: &str = "traffik_cas_retries_total";

/// Counter: decisions a Redis backend's local deny cache answered without a Redis call (a
/// refusal Redis made, repeated until its wait is over). Label [`BACKEND`] (`redis`).
pub const DENY_CACHE_HITS: &str = "traffik_deny_cache_hits_total";

/// Counter: circuit-breaker transitions. Labels [`BREAKER`], [`FROM`] and [`TO`] (`closed`,
/// `open`, `half-open`).
pub const BREAKER_TRANSITIONS: &str = "traffik_circuit_breaker_transitions_total";

/// Gauge: a circuit breaker's state: 0 closed, 1 half-open, 2 open. Label [`BREAKER`].
pub const BREAKER_STATE: &str = "traffik_circuit_breaker_state";

/// Label: the throttle's uid.
pub const THROTTLE: &str = "throttle";
/// Label: a decision's outcome.
pub const OUTCOME: &str = "outcome";
/// Label: why a decision was skipped.
pub const REASON: &str = "reason";
/// Label: a backend's name.
pub const BACKEND: &str = "backend";
/// Label: a backend error's kind.
pub const KIND: &str = "kind";
/// Label: an on-error policy's action.
pub const ACTION: &str = "action";
/// Label: an in-memory backend's namespace.
pub const NAMESPACE: &str = "namespace";
/// Label: a circuit breaker's name.
pub const BREAKER: &str = "breaker";
/// Label: the state a breaker left.
pub const FROM: &str = "from";
/// Label: the state a breaker entered.
pub const TO: &str = "to";
