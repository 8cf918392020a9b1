//! [`Decision`]: the outcome of one hit. Being throttled is a value, not an error.

use std::time::Duration;

/// What a throttle decided for one hit.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::{Decision, Outcome};
///
/// let decision = Decision::throttled(10, 0, Duration::from_millis(1500), Duration::from_secs(2));
/// assert!(!decision.is_allowed());
/// assert_eq!(decision.wait(), Some(Duration::from_millis(1500)));
/// assert_eq!(decision.retry_after_secs(), Some(2)); // rounded up, at least 1
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed, throttled, impossible, or skipped.
    pub outcome: Outcome,
    /// The limit in force for this hit (units per period).
    pub limit: u64,
    /// Whole units still available right after this hit.
    pub remaining: u64,
    /// Time until the client's state is fully replenished (the window ends, the bucket refills).
    pub reset: Duration,
}

/// The verdict inside a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The hit was admitted and its cost consumed.
    Allowed,
    /// The hit was refused; the same hit can succeed after `wait`.
    Throttled {
        /// How long until the hit's cost is available.
        wait: Duration,
    },
    /// The hit's cost is larger than the most the strategy can ever admit at once, so waiting
    /// will never help. A permanent verdict, not an unreachable wait.
    ExceedsCapacity {
        /// The largest cost this strategy can admit in one hit.
        capacity: u64,
    },
    /// The throttle did not apply to this hit; nothing was consumed.
    Skipped(SkipReason),
    /// Shadow mode (a dry run): the hit was refused (by the strategy, or by a fail-closed
    /// on-error policy), but the throttle is in shadow mode, so it passes. Like any refusal it
    /// consumed nothing. `wait` is the refusal's wait (`None` when the cost exceeds the
    /// capacity).
    ShadowThrottled {
        /// How long the hit would have had to wait (`None`: it never could succeed).
        wait: Option<Duration>,
    },
}

/// Why a throttle let a hit through without consulting its strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The identifier returned `EXEMPTED`.
    Exempted,
    /// The throttle is disabled.
    Disabled,
    /// The rate is unlimited.
    Unlimited,
    /// The hit's cost was 0.
    ZeroCost,
    /// A rule of the throttle or its registry left the hit out ([`Rule`](crate::rule::Rule)).
    Bypassed,
    /// The backend failed and the on-error policy let the hit through (fail open).
    BackendFailure,
}

impl Decision {
    /// An admitted hit.
    #[must_use]
    pub const fn allowed(limit: u64, remaining: u64, reset: Duration) -> Self {
        Decision {
            outcome: Outcome::Allowed,
            limit,
            remaining,
            reset,
        }
    }

    /// A refused hit that may succeed after `wait`.
    #[must_use]
    pub const fn throttled(limit: u64, remaining: u64, wait: Duration, reset: Duration) -> Self {
        Decision {
            outcome: Outcome::Throttled { wait },
            limit,
            remaining,
            reset,
        }
    }

    /// A refused hit that can never succeed: its cost exceeds `capacity`.
    #[must_use]
    pub const fn exceeds_capacity(
        limit: u64,
        capacity: u64,
        remaining: u64,
        reset: Duration,
    ) -> Self {
        Decision {
            outcome: Outcome::ExceedsCapacity { capacity },
            limit,
            remaining,
            reset,
        }
    }

    /// A hit the throttle did not apply to.
    #[must_use]
    pub const fn skipped(reason: SkipReason) -> Self {
        Decision {
            outcome: Outcome::Skipped(reason),
            limit: 0,
            remaining: 0,
            reset: Duration::ZERO,
        }
    }

    /// The same decision in shadow mode: a refusal becomes [`Outcome::ShadowThrottled`]
    /// (the hit passes); anything else is unchanged.
    #[must_use]
    pub const fn shadowed(mut self) -> Self {
        self.outcome = match self.outcome {
            Outcome::Throttled { wait } => Outcome::ShadowThrottled { wait: Some(wait) },
            Outcome::ExceedsCapacity { .. } => Outcome::ShadowThrottled { wait: None },
            other => other,
        };
        self
    }

    /// Whether the hit may proceed (allowed, skipped, or refused in shadow mode).
    #[must_use]
    pub const fn is_allowed(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Allowed | Outcome::Skipped(_) | Outcome::ShadowThrottled { .. }
        )
    }

    /// Whether the hit was refused in shadow mode, and passes.
    #[must_use]
    pub const fn is_shadow_throttled(&self) -> bool {
        matches!(self.outcome, Outcome::ShadowThrottled { .. })
    }

    /// Whether the hit was refused (throttled or over capacity).
    #[must_use]
    pub const fn is_throttled(&self) -> bool {
        !self.is_allowed()
    }

    /// Whether the throttle skipped this hit.
    #[must_use]
    pub const fn is_skipped(&self) -> bool {
        matches!(self.outcome, Outcome::Skipped(_))
    }

    /// Why the throttle skipped this hit, if it did.
    #[must_use]
    pub const fn skip_reason(&self) -> Option<SkipReason> {
        match self.outcome {
            Outcome::Skipped(reason) => Some(reason),
            _ => None,
        }
    }

    /// How long until this hit could succeed: zero when allowed, `None` when it never can.
    #[must_use]
    pub const fn wait(&self) -> Option<Duration> {
        match self.outcome {
            Outcome::Allowed | Outcome::Skipped(_) | Outcome::ShadowThrottled { .. } => {
                Some(Duration::ZERO)
            }
            Outcome::Throttled { wait } => Some(wait),
            Outcome::ExceedsCapacity { .. } => None,
        }
    }

    /// The wait in whole seconds, rounded up and at least 1, as `Retry-After` wants it.
    /// `None` when allowed or when waiting can never help.
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Throttled { wait } => Some(wait.as_millis().div_ceil(1_000).max(1) as u64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_and_skipped_may_proceed_and_wait_nothing() {
        let allowed = Decision::allowed(5, 4, Duration::from_secs(1));
        assert!(allowed.is_allowed() && !allowed.is_skipped());
        assert_eq!(allowed.wait(), Some(Duration::ZERO));
        let skipped = Decision::skipped(SkipReason::Exempted);
        assert!(skipped.is_allowed() && skipped.is_skipped());
        assert_eq!(skipped.retry_after_secs(), None);
    }

    #[test]
    fn shadowed_refusals_pass_and_keep_what_they_would_have_waited() {
        let refused = Decision::throttled(5, 0, Duration::from_millis(1500), Duration::ZERO);
        let shadowed = refused.shadowed();
        assert!(shadowed.is_allowed() && shadowed.is_shadow_throttled());
        assert_eq!(
            shadowed.outcome,
            Outcome::ShadowThrottled {
                wait: Some(Duration::from_millis(1500))
            }
        );
        assert_eq!(
            (shadowed.wait(), shadowed.retry_after_secs()),
            (Some(Duration::ZERO), None)
        );
        let impossible = Decision::exceeds_capacity(5, 5, 5, Duration::ZERO).shadowed();
        assert_eq!(impossible.outcome, Outcome::ShadowThrottled { wait: None });
        let allowed = Decision::allowed(5, 4, Duration::ZERO);
        assert_eq!(allowed.shadowed(), allowed);
    }

    #[test]
    fn exceeding_capacity_has_no_finite_wait() {
        let decision = Decision::exceeds_capacity(5, 5, 5, Duration::ZERO);
        assert!(decision.is_throttled());
        assert_eq!(decision.wait(), None);
        assert_eq!(decision.retry_after_secs(), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_with_a_floor_of_one() {
        let at = |ms| {
            Decision::throttled(1, 0, Duration::from_millis(ms), Duration::ZERO).retry_after_secs()
        };
        assert_eq!(at(1), Some(1));
        assert_eq!(at(1000), Some(1));
        assert_eq!(at(1001), Some(2));
        assert_eq!(at(0), Some(1));
    }
}
