//! [`QuotaWithRollover`]: a quota per fixed period whose unused part rolls into the next
//! period, up to a cap (the reference's `QuotaWithRollover`, with its zero-usage bug fixed).

use serde::{Deserialize, Serialize};

use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Parts per million: the rollover fraction's fixed-point unit.
const PPM: u64 = 1_000_000;

/// A quota of the rate's limit per period (periods aligned on the Unix epoch, as the fixed
/// window's), plus a rollover: a fraction of the previous period's unused quota, at most a cap.
/// With `100/day`, fraction 0.5 and cap 30, a client that used 60 yesterday may use
/// `100 + min(30, 40 × 0.5) = 120` today.
///
/// - The rollover comes from the previous period only and does not compound: the unused part is
///   `limit − used`, counted against the base limit (a period that spent its rollover has none
///   to pass on).
/// - Only a client active in the previous period gets a rollover: a client with no record of it
///   (new, or idle through it) starts the period at the base limit. This is the reference's
///   behaviour, which its notes call questionable; it is kept on purpose: a limiter cannot tell
///   a new client from an idle one, and granting the rollover to every unknown client would
///   hand `limit + cap` to anyone who rotates identities, and make a new client's first period
///   exceed the rate's limit.
/// - Refused hits are not counted (as in the reference). A cost above the largest possible
///   quota, `limit + min(cap, limit × fraction)`, can never fit ([`Outcome::ExceedsCapacity`](crate::Outcome::ExceedsCapacity)); any other refusal
///   waits for the next period.
/// - The fraction is kept to parts per million, and the rollover rounded down.
///
/// **Storage**: `{window, used, rollover}`, kept until the end of the next period (it decides
/// that period's rollover); after that, no record means no rollover, as the state would say.
///
/// ```
/// use traffik_core::strategy::{Hit, QuotaWithRollover, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let quota = QuotaWithRollover::new(0.5, 30);
/// let (rate, context) = (Rate::per_second(100), Context::new());
/// let mut state = None;
/// quota.apply(&mut state, &Hit::new(0, rate, 60, &context)); // used 60 of the first second
/// let next = quota.apply(&mut state, &Hit::new(1_000, rate, 1, &context));
/// assert_eq!((next.limit, next.remaining), (120, 119)); // 100 + min(30, 40 × 0.5)
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaWithRollover {
    fraction: f64,
    max_rollover: u64,
}

impl Default for QuotaWithRollover {
    /// The reference's defaults: half the unused quota, at most 500.
    fn default() -> Self {
        QuotaWithRollover::new(0.5, 500)
    }
}

impl QuotaWithRollover {
    /// Rolls `fraction` (0 to 1) of the unused quota into the next period, at most
    /// `max_rollover` units.
    #[must_use]
    pub const fn new(fraction: f64, max_rollover: u64) -> Self {
        QuotaWithRollover {
            fraction,
            max_rollover,
        }
    }

    /// The fraction in parts per million.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // validated to [0, 1]
    pub(crate) fn fraction_ppm(&self) -> u64 {
        (self.fraction.clamp(0.0, 1.0) * PPM as f64).round() as u64
    }

    /// The rollover cap.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // read by the Redis scripts' mapping
    pub(crate) fn max_rollover(&self) -> u64 {
        self.max_rollover
    }

    /// The rollover a period gets from a previous period that left `unused` units.
    fn rollover(&self, unused: u64) -> u64 {
        let rolled = u128::from(unused) * u128::from(self.fraction_ppm()) / u128::from(PPM);
        u64::try_from(rolled)
            .unwrap_or(u64::MAX)
            .min(self.max_rollover)
    }

    /// `state` as of the period containing `now`, rolled forward if a period began: `(view,
    /// rolled)`. Time going backwards stays in the stored period.
    fn current(&self, state: Option<&QuotaState>, now: Millis, rate: &Rate) -> (QuotaState, bool) {
        let (period, limit) = (rate.period_ms(), rate.limit());
        let window = now / period;
        match state {
            Some(s) if now < s.window.saturating_add(1).saturating_mul(period) => (*s, false),
            Some(s) if s.window.saturating_add(1) == window => (
                QuotaState {
                    window,
                    used: 0,
                    rollover: self.rollover(limit.saturating_sub(s.used)),
                },
                true,
            ),
            _ => (
                QuotaState {
                    window,
                    used: 0,
                    rollover: 0,
                },
                true,
            ),
        }
    }
}

/// [`QuotaWithRollover`]'s stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaState {
    /// The period's index: `start_ms / period_ms`.
    pub window: u64,
    /// Cost admitted in the period.
    pub used: u64,
    /// Units rolled into the period from the previous one.
    pub rollover: u64,
}

impl QuotaState {
    fn end(&self, period: u64) -> Millis {
        self.window.saturating_add(1).saturating_mul(period)
    }
}

/// [`QuotaWithRollover`]'s typed stat metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaWithRolloverStat {
    /// The rate's limit per period.
    pub base_limit: u64,
    /// Units rolled into this period.
    pub rollover: u64,
    /// Cost admitted in this period.
    pub used: u64,
    /// When this period ends.
    pub period_end_ms: Millis,
}

impl Strategy for QuotaWithRollover {
    type State = QuotaState;
    const NAME: &'static str = "quota-rollover";

    fn apply(&self, state: &mut Option<QuotaState>, hit: &Hit<'_>) -> Decision {
        let period = hit.rate.period_ms();
        let (mut quota, rolled) = self.current(state.as_ref(), hit.now, &hit.rate);
        let limit = hit.rate.limit().saturating_add(quota.rollover);
        // The most a period can ever allow: the base limit and the largest rollover, that of a
        // previous period left unused.
        let capacity = hit
            .rate
            .limit()
            .saturating_add(self.rollover(hit.rate.limit()));
        let reset = millis(u128::from(quota.end(period).saturating_sub(hit.now)));
        let remaining = limit.saturating_sub(quota.used);
        let decision = if hit.cost > capacity {
            Decision::exceeds_capacity(limit, capacity, remaining, reset)
        } else if hit.cost <= remaining {
            quota.used += hit.cost;
            Decision::allowed(limit, remaining - hit.cost, reset)
        } else {
            Decision::throttled(limit, remaining, reset, reset)
        };
        // Stored when admitted, or when a period began (its rollover is fixed from the previous
        // period's use, which the new state forgets): what the script writes too.
        if decision.is_allowed() || rolled {
            *state = Some(quota);
        }
        decision
    }

    fn refund(&self, state: &mut Option<QuotaState>, hit: &Hit<'_>) -> Refund {
        match state {
            Some(quota) if quota.window == hit.now / hit.rate.period_ms() => {
                quota.used = quota.used.saturating_sub(hit.cost);
                Refund::Returned
            }
            _ => Refund::Lapsed,
        }
    }

    fn stat(&self, state: Option<&QuotaState>, hit: &Hit<'_>) -> StrategyStat {
        let period = hit.rate.period_ms();
        let (quota, _) = self.current(state, hit.now, &hit.rate);
        let remaining = hit
            .rate
            .limit()
            .saturating_add(quota.rollover)
            .saturating_sub(quota.used);
        let end = quota.end(period);
        let wait = if remaining == 0 {
            millis(u128::from(end.saturating_sub(hit.now)))
        } else {
            std::time::Duration::ZERO
        };
        let metadata = StatMetadata::QuotaWithRollover(QuotaWithRolloverStat {
            base_limit: hit.rate.limit(),
            rollover: quota.rollover,
            used: quota.used,
            period_end_ms: end,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &QuotaState, rate: &Rate) -> Millis {
        // Through the next period, whose rollover it decides; after that no state means the
        // same (no activity in the previous period: no rollover).
        state
            .window
            .saturating_add(2)
            .saturating_mul(rate.period_ms())
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let _ = rate;
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "fraction",
                format!("{} must be between 0 and 1", self.fraction),
            ));
        }
        Ok(())
    }

    fn pack(state: &QuotaState) -> Option<[u64; 3]> {
        Some([state.window, state.used, state.rollover])
    }

    fn unpack([window, used, rollover]: [u64; 3]) -> Option<QuotaState> {
        Some(QuotaState {
            window,
            used,
            rollover,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    fn hits(
        quota: &QuotaWithRollover,
        state: &mut Option<QuotaState>,
        now: Millis,
        count: usize,
    ) -> usize {
        let context = Context::new();
        (0..count)
            .filter(|_| {
                quota
                    .apply(state, &Hit::new(now, Rate::per_second(100), 1, &context))
                    .is_allowed()
            })
            .count()
    }

    #[test]
    fn the_reference_cases_roll_half_the_unused_quota_up_to_the_cap() {
        // 100/s: use 60, then the next period allows 120 and refuses the 121st.
        let quota = QuotaWithRollover::new(0.5, 500);
        let mut state = None;
        let context = Context::new();
        let rate = Rate::per_second(100);
        // A fresh client gets the base limit.
        let first = quota.apply(&mut state, &Hit::new(0, rate, 60, &context));
        assert_eq!((first.limit, first.remaining), (100, 40));
        assert_eq!(hits(&quota, &mut state, 1_000, 121), 120);
        // With max_rollover 30 and 10 used, the next period allows 130.
        let capped = QuotaWithRollover::new(0.5, 30);
        let mut state = Some(QuotaState {
            window: 0,
            used: 10,
            rollover: 0,
        });
        assert_eq!(hits(&capped, &mut state, 1_000, 200), 130);
    }

    #[test]
    fn rollover_comes_from_the_previous_period_only_and_never_compounds() {
        let quota = QuotaWithRollover::new(1.0, 1_000);
        let mut state = Some(QuotaState {
            window: 0,
            used: 0,
            rollover: 0,
        });
        assert_eq!(
            hits(&quota, &mut state, 1_000, 300),
            200,
            "100 + 100 unused"
        );
        assert_eq!(
            hits(&quota, &mut state, 2_000, 300),
            100,
            "spent its rollover: none left"
        );
        assert_eq!(
            hits(&quota, &mut state, 3_000, 300),
            100,
            "period 2 used it all"
        );
        // Idle through period 4: period 5 starts at the base limit, as a new client does.
        assert_eq!(hits(&quota, &mut state, 5_000, 300), 100);
    }

    #[test]
    fn refused_hits_are_not_counted_and_big_costs_exceed_the_capacity() {
        let quota = QuotaWithRollover::new(0.5, 30);
        let context = Context::new();
        let rate = Rate::per_second(100);
        let mut state = None;
        let refused = quota.apply(&mut state, &Hit::new(0, rate, 131, &context));
        assert!(refused.wait().is_none(), "131 > 100 + 30 can never fit");
        let small_cap = QuotaWithRollover::new(0.1, 30);
        let never = small_cap.apply(&mut None, &Hit::new(0, rate, 111, &context));
        assert!(
            never.wait().is_none(),
            "the rollover is at most 10 % of 100, under the cap"
        );
        let later = quota.apply(&mut state, &Hit::new(0, rate, 120, &context));
        assert_eq!(
            later.wait(),
            Some(std::time::Duration::from_secs(1)),
            "may fit later"
        );
        assert!(
            quota
                .apply(&mut state, &Hit::new(0, rate, 95, &context))
                .is_allowed()
        );
        let waits = quota.apply(&mut state, &Hit::new(0, rate, 10, &context));
        assert_eq!(waits.wait(), Some(std::time::Duration::from_secs(1)));
        assert_eq!(
            state.map(|s| s.used),
            Some(95),
            "the refused 10 are not counted"
        );
    }

    #[test]
    fn a_refund_returns_units_within_the_period_and_lapses_after() {
        let quota = QuotaWithRollover::new(0.5, 30);
        let context = Context::new();
        let rate = Rate::per_second(100);
        let mut state = None;
        let charge = Hit::new(500, rate, 10, &context);
        quota.apply(&mut state, &charge);
        assert_eq!(quota.refund(&mut state, &charge), Refund::Returned);
        assert_eq!(state.map(|s| s.used), Some(0));
        quota.apply(&mut state, &charge);
        quota.apply(&mut state, &Hit::new(1_200, rate, 1, &context));
        assert_eq!(quota.refund(&mut state, &charge), Refund::Lapsed);
    }

    #[test]
    fn the_fraction_must_be_within_zero_and_one() {
        let rate = Rate::per_second(1);
        assert!(QuotaWithRollover::new(1.5, 1).validate(&rate).is_err());
        assert!(QuotaWithRollover::new(f64::NAN, 1).validate(&rate).is_err());
        assert!(QuotaWithRollover::new(0.0, 0).validate(&rate).is_ok());
    }
}
