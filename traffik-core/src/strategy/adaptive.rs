//! [`Adaptive`]: a fixed window whose limit follows the client's load, once per window.

use serde::{Deserialize, Serialize};

use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A fixed window whose effective limit adapts to load. At each window boundary the previous
/// window's *demand* (all cost asked for, admitted or not) is compared with its effective limit:
///
/// * load above `load_threshold` → the limit shrinks to `limit × reduction_factor`, but never
///   below `limit × min_limit_ratio`;
/// * otherwise it recovers by `limit × recovery_rate` per window, up to `limit`
///   (idle windows recover too).
///
/// **Guarantees**: within a window the effective limit is fixed (no per-request ratchet); at
/// most the effective limit is admitted per window; a client that keeps hammering is held at
/// the floor, and one that calms down recovers to the full limit. Refused hits do not consume
/// quota but do count as demand (that is the load signal). A cost above `limit` is a permanent
/// [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity).
///
/// **Storage**: `{window, count, demand, limit}`.
///
/// ```
/// use traffik_core::strategy::{Adaptive, Hit, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (adaptive, context, rate) = (Adaptive::new(), Context::new(), Rate::per_second(100));
/// let mut state = None;
/// for _ in 0..150 { adaptive.apply(&mut state, &Hit::new(0, rate, 1, &context)); } // overloaded
/// let next = adaptive.apply(&mut state, &Hit::new(1_000, rate, 1, &context));
/// assert_eq!(next.limit, 60); // 100 × 0.6 for the next window
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    load_threshold: f64,
    reduction_factor: f64,
    recovery_rate: f64,
    min_limit_ratio: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive::new()
    }
}

impl Adaptive {
    /// Threshold 0.8, reduction 0.6, recovery 0.1 per window, floor 0.3 of the limit.
    #[must_use]
    pub const fn new() -> Self {
        Adaptive {
            load_threshold: 0.8,
            reduction_factor: 0.6,
            recovery_rate: 0.1,
            min_limit_ratio: 0.3,
        }
    }

    /// Demand / effective limit above which the next window's limit shrinks (> 0).
    #[must_use]
    pub const fn load_threshold(mut self, threshold: f64) -> Self {
        self.load_threshold = threshold;
        self
    }

    /// What the limit is multiplied by when overloaded (0 < factor < 1).
    #[must_use]
    pub const fn reduction_factor(mut self, factor: f64) -> Self {
        self.reduction_factor = factor;
        self
    }

    /// The share of the limit regained per calm window (0 < rate ≤ 1).
    #[must_use]
    pub const fn recovery_rate(mut self, rate: f64) -> Self {
        self.recovery_rate = rate;
        self
    }

    /// The floor, as a share of the limit (0 < ratio ≤ 1).
    #[must_use]
    pub const fn min_limit_ratio(mut self, ratio: f64) -> Self {
        self.min_limit_ratio = ratio;
        self
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // approximate above 2^53 is fine for a floor; `as` saturates and the result is clamped
    fn floor(&self, limit: u64) -> u64 {
        ((limit as f64 * self.min_limit_ratio).ceil() as u64).clamp(1, limit.max(1))
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // approximate above 2^53 is fine for a step; `as` saturates and the step is at least 1
    fn recovery_step(&self, limit: u64) -> u64 {
        ((limit as f64 * self.recovery_rate).ceil() as u64).max(1)
    }

    /// How many windows a state that is not calm lives: the next window may shrink to the
    /// floor; then it takes this many calm windows to climb back to the full limit.
    pub(crate) fn unsettled_windows(&self, limit: u64) -> u64 {
        2 + (limit - self.floor(limit).min(limit)).div_ceil(self.recovery_step(limit))
    }

    /// The parameters a backend running the strategy natively needs for `limit`: the floor,
    /// the recovery step, the load threshold and the reduction factor.
    #[cfg(feature = "redis")]
    pub(crate) fn parameters(&self, limit: u64) -> (u64, u64, f64, f64) {
        (
            self.floor(limit),
            self.recovery_step(limit),
            self.load_threshold,
            self.reduction_factor,
        )
    }

    /// The state rolled forward to the window containing `now`.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // the load test is a ratio (approximate above 2^53 is fine); `as` saturates, then max
    fn roll(&self, state: Option<&AdaptiveState>, now: Millis, rate: &Rate) -> AdaptiveState {
        let (limit, window) = (rate.limit(), now / rate.period_ms());
        let Some(s) = state else {
            return AdaptiveState {
                window,
                count: 0,
                demand: 0,
                limit,
            };
        };
        let floor = self.floor(limit);
        let current = s.limit.clamp(floor, limit);
        if window <= s.window {
            return AdaptiveState {
                limit: current,
                ..*s
            };
        }
        let overloaded = s.demand as f64 > self.load_threshold * current as f64;
        let mut next = if overloaded {
            ((current as f64 * self.reduction_factor).floor() as u64).max(floor)
        } else {
            current.saturating_add(self.recovery_step(limit)).min(limit)
        };
        let idle_windows = window - s.window - 1;
        next = next
            .saturating_add(idle_windows.saturating_mul(self.recovery_step(limit)))
            .min(limit);
        AdaptiveState {
            window,
            count: 0,
            demand: 0,
            limit: next,
        }
    }
}

/// The state of [`Adaptive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdaptiveState {
    /// The window's index.
    pub window: u64,
    /// Cost admitted in the window.
    pub count: u64,
    /// Cost asked for in the window, admitted or not.
    pub demand: u64,
    /// The window's effective limit.
    pub limit: u64,
}

/// [`Adaptive`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveStat {
    /// The limit in force this window.
    pub effective_limit: u64,
    /// The configured limit.
    pub base_limit: u64,
    /// Demand / effective limit so far this window.
    pub current_load: f64,
    /// Cost admitted this window.
    pub current_count: u64,
    /// Cost asked for this window.
    pub demand: u64,
}

impl Strategy for Adaptive {
    type State = AdaptiveState;
    const NAME: &'static str = "adaptive";

    fn apply(&self, state: &mut Option<AdaptiveState>, hit: &Hit<'_>) -> Decision {
        let period = hit.rate.period_ms();
        let mut rolled = self.roll(state.as_ref(), hit.now, &hit.rate);
        let reset = millis(u128::from(
            rolled
                .window
                .saturating_add(1)
                .saturating_mul(period)
                .saturating_sub(hit.now),
        ));
        let remaining = rolled.limit.saturating_sub(rolled.count);
        if hit.cost > hit.rate.limit() {
            return Decision::exceeds_capacity(rolled.limit, hit.rate.limit(), remaining, reset);
        }
        rolled.demand = rolled.demand.saturating_add(hit.cost);
        let decision = if hit.cost <= remaining {
            rolled.count += hit.cost;
            Decision::allowed(rolled.limit, remaining - hit.cost, reset)
        } else {
            Decision::throttled(rolled.limit, remaining, reset, reset)
        };
        *state = Some(rolled);
        decision
    }

    /// Returns the charge to its window's count and demand (the refunded hit no longer counts
    /// as load either); nothing once that window has ended.
    fn refund(&self, state: &mut Option<AdaptiveState>, hit: &Hit<'_>) -> Refund {
        match state {
            Some(s) if s.window == hit.now / hit.rate.period_ms() => {
                s.count = s.count.saturating_sub(hit.cost);
                s.demand = s.demand.saturating_sub(hit.cost);
                Refund::Returned
            }
            _ => Refund::Lapsed,
        }
    }

    #[allow(clippy::cast_precision_loss)] // a load ratio; approximate above 2^53 is fine
    fn stat(&self, state: Option<&AdaptiveState>, hit: &Hit<'_>) -> StrategyStat {
        let rolled = self.roll(state, hit.now, &hit.rate);
        let remaining = rolled.limit.saturating_sub(rolled.count);
        let end = rolled
            .window
            .saturating_add(1)
            .saturating_mul(hit.rate.period_ms());
        let wait = if remaining == 0 {
            millis(u128::from(end.saturating_sub(hit.now)))
        } else {
            std::time::Duration::ZERO
        };
        let metadata = StatMetadata::Adaptive(AdaptiveStat {
            effective_limit: rolled.limit,
            base_limit: hit.rate.limit(),
            current_load: rolled.demand as f64 / rolled.limit.max(1) as f64,
            current_count: rolled.count,
            demand: rolled.demand,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    #[allow(clippy::cast_precision_loss)] // a load ratio; approximate above 2^53 is fine
    fn expires_at(&self, state: &AdaptiveState, rate: &Rate) -> Millis {
        let limit = rate.limit();
        let calm = state.limit >= limit
            && (state.demand as f64) <= self.load_threshold * state.limit as f64;
        let windows = if calm {
            1
        } else {
            self.unsettled_windows(limit)
        };
        state
            .window
            .saturating_add(windows)
            .saturating_mul(rate.period_ms())
    }

    fn validate(&self, _rate: &Rate) -> Result<(), StrategyConfigError> {
        let checks = [
            (
                "load_threshold",
                self.load_threshold,
                self.load_threshold > 0.0 && self.load_threshold.is_finite(),
                "must be a positive number",
            ),
            (
                "reduction_factor",
                self.reduction_factor,
                self.reduction_factor > 0.0 && self.reduction_factor < 1.0,
                "must be in (0, 1)",
            ),
            (
                "recovery_rate",
                self.recovery_rate,
                self.recovery_rate > 0.0 && self.recovery_rate <= 1.0,
                "must be in (0, 1]",
            ),
            (
                "min_limit_ratio",
                self.min_limit_ratio,
                self.min_limit_ratio > 0.0 && self.min_limit_ratio <= 1.0,
                "must be in (0, 1]",
            ),
        ];
        for (parameter, value, ok, rule) in checks {
            if !ok {
                return Err(StrategyConfigError::new(
                    Self::NAME,
                    parameter,
                    format!("is {value}; it {rule}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;

    #[test]
    fn the_limit_is_fixed_within_a_window() {
        let mut sim = Sim::new(Adaptive::new(), Rate::per_second(100));
        sim.at(0);
        for _ in 0..100 {
            assert!(sim.hit(1).is_allowed(), "no ratchet inside the window");
        }
        assert!(sim.hit(1).is_throttled());
    }

    #[test]
    fn shrinks_under_load_down_to_the_floor_then_recovers() {
        let mut sim = Sim::new(Adaptive::new(), Rate::per_second(100));
        let mut limits = Vec::new();
        for window in 0..4 {
            sim.at(window * 1_000);
            limits.push(sim.hit(1).limit);
            for _ in 0..200 {
                sim.hit(1);
            }
        }
        assert_eq!(limits, [100, 60, 36, 30]);
        for window in 4..12 {
            sim.at(window * 1_000);
            limits.push(sim.hit(1).limit);
        }
        assert_eq!(&limits[4..], [30, 40, 50, 60, 70, 80, 90, 100]);
    }

    #[test]
    fn idle_windows_recover_too() {
        let mut sim = Sim::new(Adaptive::new(), Rate::per_second(100));
        sim.at(0);
        for _ in 0..200 {
            sim.hit(1);
        }
        sim.at(1_000);
        assert_eq!(sim.hit(1).limit, 60);
        sim.at(4_000); // window 1 was calm, windows 2 and 3 idle: +30
        assert_eq!(sim.hit(1).limit, 90);
        let StatMetadata::Adaptive(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(
            (meta.effective_limit, meta.base_limit, meta.current_count),
            (90, 100, 1)
        );
    }

    #[test]
    fn validates_its_factors() {
        let rate = Rate::per_second(1);
        assert!(Strategy::validate(&Adaptive::new(), &rate).is_ok());
        assert!(Strategy::validate(&Adaptive::new().reduction_factor(1.0), &rate).is_err());
        assert!(Strategy::validate(&Adaptive::new().recovery_rate(0.0), &rate).is_err());
        assert!(Strategy::validate(&Adaptive::new().min_limit_ratio(f64::NAN), &rate).is_err());
        assert!(Strategy::validate(&Adaptive::new().load_threshold(-1.0), &rate).is_err());
    }
}
