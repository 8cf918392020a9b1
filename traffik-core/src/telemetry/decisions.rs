//! [`DecisionMetrics`]: a throttle's decision counters, registered once and kept, so counting a
//! decision is one atomic add (nothing at all without a recorder).

use std::sync::OnceLock;

use metrics::Counter;

use super::names::{DECISIONS, NEAR_LIMIT, OUTCOME, REASON, THROTTLE};
use crate::{Decision, Outcome, SkipReason};

/// A throttle's counters. They are registered with the recorder installed at the throttle's
/// first decision and kept: a recorder installed later does not see them (the `metrics`
/// crate's rule for any handle registered before its recorder).
#[derive(Default)]
pub(crate) struct DecisionMetrics {
    handles: OnceLock<Handles>,
}

struct Handles {
    allowed: Counter,
    throttled: Counter,
    exceeds_capacity: Counter,
    shadow_throttled: Counter,
    /// By [`SkipReason`], in [`skip_index`] order.
    skipped: [Counter; 6],
    near_limit: Counter,
}

const SKIP_REASONS: [&str; 6] = [
    "exempted",
    "disabled",
    "unlimited",
    "zero_cost",
    "backend_failure",
    "bypassed",
];

fn skip_index(reason: SkipReason) -> usize {
    match reason {
        SkipReason::Exempted => 0,
        SkipReason::Disabled => 1,
        SkipReason::Unlimited => 2,
        SkipReason::ZeroCost => 3,
        SkipReason::BackendFailure => 4,
        SkipReason::Bypassed => 5,
    }
}

impl Handles {
    fn register(uid: &str) -> Self {
        let outcome = |outcome: &'static str| metrics::counter!(DECISIONS, THROTTLE => uid.to_owned(), OUTCOME => outcome);
        Handles {
            allowed: outcome("allowed"),
            throttled: outcome("throttled"),
            exceeds_capacity: outcome("exceeds_capacity"),
            shadow_throttled: outcome("shadow_throttled"),
            skipped: SKIP_REASONS.map(|reason| {
                metrics::counter!(
                    DECISIONS,
                    THROTTLE => uid.to_owned(),
                    OUTCOME => "skipped",
                    REASON => reason
                )
            }),
            near_limit: metrics::counter!(NEAR_LIMIT, THROTTLE => uid.to_owned()),
        }
    }
}

impl DecisionMetrics {
    /// Counts one decision of the throttle `uid`.
    #[inline]
    pub(crate) fn record(&self, uid: &str, decision: &Decision) {
        let handles = self.handles.get_or_init(|| Handles::register(uid));
        match decision.outcome {
            Outcome::Allowed => {
                handles.allowed.increment(1);
                if is_near_limit(decision) {
                    handles.near_limit.increment(1);
                }
            }
            Outcome::Throttled { .. } => handles.throttled.increment(1),
            Outcome::ExceedsCapacity { .. } => handles.exceeds_capacity.increment(1),
            Outcome::ShadowThrottled { .. } => handles.shadow_throttled.increment(1),
            Outcome::Skipped(reason) => handles.skipped[skip_index(reason)].increment(1),
        }
    }
}

/// At least 80 % of the limit used once this hit is counted (Envoy ratelimit's threshold).
#[inline]
fn is_near_limit(decision: &Decision) -> bool {
    let used = u128::from(decision.limit.saturating_sub(decision.remaining));
    decision.limit > 0 && used * 5 >= u128::from(decision.limit) * 4
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn near_limit_starts_at_80_percent_used() {
        let allowed = |limit, remaining| Decision::allowed(limit, remaining, Duration::ZERO);
        assert!(!is_near_limit(&allowed(10, 3)));
        assert!(is_near_limit(&allowed(10, 2)));
        assert!(is_near_limit(&allowed(10, 0)));
        assert!(!is_near_limit(&allowed(0, 0)));
        assert!(is_near_limit(&allowed(u64::MAX, 0)));
        assert!(!is_near_limit(&allowed(u64::MAX, u64::MAX)));
    }
}
