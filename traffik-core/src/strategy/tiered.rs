//! [`Tiered`]: a fixed window whose limit is multiplied per tier (free, premium, …).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixed_window::{WindowState, refund_window, step, window_stat};
use super::{Hit, Refund, Strategy, StrategyConfigError};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A fixed window whose limit is `floor(limit × multiplier)` for the hit's tier, read from the
/// context (key `"tier"` by default). An absent or unknown tier uses the default tier.
///
/// **Guarantees**: those of [`FixedWindow`](super::FixedWindow) at the tier's effective limit.
/// One key per client whatever its tier, so a client that changes tier mid-window keeps its
/// count (an upgrade raises the ceiling, it does not grant a fresh window).
///
/// **Storage**: the fixed window's `{window, count}`.
///
/// ```
/// use traffik_core::strategy::{Hit, Strategy, Tiered};
/// use traffik_core::{Context, Rate};
///
/// let tiered = Tiered::new(); // free ×1, premium ×5, enterprise ×10
/// let premium = Context::new().with("tier", "premium");
/// let mut state = None;
/// let decision = tiered.apply(&mut state, &Hit::new(0, Rate::per_minute(10), 1, &premium));
/// assert_eq!((decision.limit, decision.remaining), (50, 49));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Tiered {
    multipliers: Arc<BTreeMap<String, f64>>,
    default_tier: String,
    context_key: String,
}

impl Default for Tiered {
    fn default() -> Self {
        Tiered::new()
    }
}

impl Tiered {
    /// Tiers `free` (×1, the default), `premium` (×5) and `enterprise` (×10).
    #[must_use]
    pub fn new() -> Self {
        let multipliers = [("free", 1.0), ("premium", 5.0), ("enterprise", 10.0)]
            .into_iter()
            .map(|(tier, m)| (tier.to_owned(), m))
            .collect();
        Tiered {
            multipliers: Arc::new(multipliers),
            default_tier: "free".to_owned(),
            context_key: "tier".to_owned(),
        }
    }

    /// No tiers yet: add them with [`tier`](Self::tier) and pick the [`default_tier`](Self::default_tier).
    #[must_use]
    pub fn empty() -> Self {
        Tiered {
            multipliers: Arc::default(),
            default_tier: String::new(),
            context_key: "tier".to_owned(),
        }
    }

    /// Adds (or replaces) a tier.
    #[must_use]
    pub fn tier(mut self, name: impl Into<String>, multiplier: f64) -> Self {
        Arc::make_mut(&mut self.multipliers).insert(name.into(), multiplier);
        self
    }

    /// The tier used when the context names none, or an unknown one.
    #[must_use]
    pub fn default_tier(mut self, name: impl Into<String>) -> Self {
        self.default_tier = name.into();
        self
    }

    /// The context key holding the tier (default `"tier"`).
    #[must_use]
    pub fn context_key(mut self, key: impl Into<String>) -> Self {
        self.context_key = key.into();
        self
    }

    pub(crate) fn resolve<'h>(&'h self, hit: &Hit<'h>) -> (&'h str, f64) {
        let named = hit.context.get_str(&self.context_key);
        if let Some((tier, multiplier)) = named.and_then(|t| self.multipliers.get_key_value(t)) {
            return (tier, *multiplier);
        }
        (
            &self.default_tier,
            self.multipliers
                .get(&self.default_tier)
                .copied()
                .unwrap_or(1.0),
        )
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // a scaled limit: approximate above 2^53 is fine, and float-to-int `as` saturates
    pub(crate) fn effective(limit: u64, multiplier: f64) -> u64 {
        (limit as f64 * multiplier).floor() as u64
    }
}

/// Checks a limit multiplier of strategy `strategy` (named `what` in the error): a positive
/// number that leaves the limit above 0 at `rate`.
pub(crate) fn check_multiplier(
    strategy: &'static str,
    parameter: &'static str,
    what: &str,
    multiplier: f64,
    rate: &Rate,
) -> Result<(), StrategyConfigError> {
    if !multiplier.is_finite() || multiplier <= 0.0 {
        return Err(StrategyConfigError::new(
            strategy,
            parameter,
            format!("{what} has multiplier {multiplier}; it must be a positive number"),
        ));
    }
    if !rate.is_unlimited() && Tiered::effective(rate.limit(), multiplier) == 0 {
        return Err(StrategyConfigError::new(
            strategy,
            parameter,
            format!("{what} would have a limit of 0 at rate {rate}"),
        ));
    }
    Ok(())
}

/// [`Tiered`]'s typed stat metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct TieredStat {
    /// The tier applied.
    pub tier: String,
    /// Its multiplier.
    pub tier_multiplier: f64,
    /// The limit in force for it.
    pub effective_limit: u64,
    /// Cost admitted in the current window.
    pub current_count: u64,
    /// When the current window ends.
    pub window_end_ms: Millis,
}

impl Strategy for Tiered {
    type State = WindowState;
    const NAME: &'static str = "tiered";

    fn apply(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Decision {
        let (_, multiplier) = self.resolve(hit);
        let limit = Self::effective(hit.rate.limit(), multiplier);
        step(state, hit, limit, limit)
    }

    fn refund(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
        refund_window(state, hit)
    }

    fn stat(&self, state: Option<&WindowState>, hit: &Hit<'_>) -> StrategyStat {
        let (tier, multiplier) = self.resolve(hit);
        let limit = Self::effective(hit.rate.limit(), multiplier);
        let (remaining, wait, window) = window_stat(state, hit.now, hit.rate.period_ms(), limit);
        let metadata = StatMetadata::Tiered(TieredStat {
            tier: tier.to_owned(),
            tier_multiplier: multiplier,
            effective_limit: limit,
            current_count: window.current_count,
            window_end_ms: window.window_end_ms,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &WindowState, rate: &Rate) -> Millis {
        state.ends_at(rate)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        if self.multipliers.is_empty() {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "tiers",
                "must name at least one tier",
            ));
        }
        if !self.multipliers.contains_key(&self.default_tier) {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "default_tier",
                format!("`{}` is not one of the tiers", self.default_tier),
            ));
        }
        for (tier, multiplier) in self.multipliers.iter() {
            check_multiplier(
                Self::NAME,
                "tiers",
                &format!("tier `{tier}`"),
                *multiplier,
                rate,
            )?;
        }
        Ok(())
    }

    fn pack(state: &WindowState) -> Option<[u64; 3]> {
        Some(state.pack())
    }

    fn unpack(words: [u64; 3]) -> Option<WindowState> {
        Some(WindowState::unpack(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;
    use crate::strategy::conformance::Sim;

    #[test]
    fn each_tier_gets_its_multiple_and_unknown_tiers_get_the_default() {
        for (tier, limit) in [
            (Some("free"), 10),
            (Some("premium"), 50),
            (Some("enterprise"), 100),
            (Some("gold"), 10),
            (None, 10),
        ] {
            let context = tier.map_or_else(Context::new, |t| Context::new().with("tier", t));
            let mut sim = Sim::new(Tiered::new(), Rate::per_minute(10)).with_context(context);
            sim.at(0);
            assert!(sim.hit(limit).is_allowed(), "{tier:?}");
            assert!(sim.hit(1).is_throttled(), "{tier:?}");
        }
    }

    #[test]
    fn changing_tier_keeps_the_count() {
        let mut sim = Sim::new(Tiered::new(), Rate::per_minute(10));
        sim.at(0);
        assert!(sim.hit(10).is_allowed());
        let mut sim = sim.with_context(Context::new().with("tier", "premium"));
        assert_eq!(sim.hit(1).remaining, 39);
        let StatMetadata::Tiered(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(
            (meta.tier.as_str(), meta.effective_limit, meta.current_count),
            ("premium", 50, 11)
        );
    }

    #[test]
    fn validates_its_tiers() {
        let rate = Rate::per_minute(10);
        assert!(Strategy::validate(&Tiered::new(), &rate).is_ok());
        assert!(Strategy::validate(&Tiered::empty(), &rate).is_err());
        assert!(Strategy::validate(&Tiered::new().default_tier("gold"), &rate).is_err());
        assert!(Strategy::validate(&Tiered::new().tier("bad", -1.0), &rate).is_err());
        assert!(Strategy::validate(&Tiered::new().tier("tiny", 0.01), &rate).is_err());
        assert!(
            Strategy::validate(&Tiered::empty().tier("a", 2.0).default_tier("a"), &rate).is_ok()
        );
    }
}
