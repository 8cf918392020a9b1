//! [`BreakerState`]: the three states of a circuit breaker (named in
//! [`BackendError::CircuitOpen`](super::BackendError::CircuitOpen), so defined whatever the
//! features).

use std::fmt;

/// The state of a [circuit breaker](super::CircuitBreaker), in the standard terms (Nygard,
/// *Release It!*; the reference's `CircuitBreaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go to the backend; failures are counted.
    Closed,
    /// Calls fail fast with [`BackendError::CircuitOpen`](super::BackendError::CircuitOpen),
    /// without touching the backend, until the recovery timeout has passed (or until an
    /// operator closes the breaker, if it was forced open).
    Open,
    /// The recovery timeout has passed: a bounded number of probe calls reach the backend; their
    /// successes close the breaker, a failure opens it again. Other calls fail fast.
    HalfOpen,
}

impl BreakerState {
    /// The state's name: `closed`, `open` or `half-open`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
