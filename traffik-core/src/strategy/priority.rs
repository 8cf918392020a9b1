//! [`Priority`]: one budget shared by all priorities, with headroom reserved for the higher ones.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::fixed_window::{WindowState, refund_window, step, window_stat};
use super::{Hit, Refund, Strategy, StrategyConfigError};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A priority level, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriorityLevel {
    /// Background work: the first to be refused.
    Low = 1,
    /// Ordinary traffic.
    Normal = 2,
    /// Important traffic.
    High = 3,
    /// May use the whole budget.
    Critical = 4,
}

impl PriorityLevel {
    const ALL: [PriorityLevel; 4] = [
        PriorityLevel::Low,
        PriorityLevel::Normal,
        PriorityLevel::High,
        PriorityLevel::Critical,
    ];

    fn index(self) -> usize {
        self as usize - 1
    }

    /// Reads a level from a context value: a name (`"high"`, any case) or a number 1–4.
    #[must_use]
    pub fn from_value(value: &Value) -> Option<PriorityLevel> {
        match value {
            Value::String(name) => name.parse().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| {
                PriorityLevel::ALL
                    .get(usize::try_from(n).ok()?.checked_sub(1)?)
                    .copied()
            }),
            _ => None,
        }
    }
}

impl FromStr for PriorityLevel {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        match name.to_ascii_lowercase().as_str() {
            "low" | "1" => Ok(PriorityLevel::Low),
            "normal" | "2" => Ok(PriorityLevel::Normal),
            "high" | "3" => Ok(PriorityLevel::High),
            "critical" | "4" => Ok(PriorityLevel::Critical),
            _ => Err(()),
        }
    }
}

impl fmt::Display for PriorityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriorityLevel::Low => "low",
            PriorityLevel::Normal => "normal",
            PriorityLevel::High => "high",
            PriorityLevel::Critical => "critical",
        })
    }
}

/// All priorities of a client draw on **one** fixed-window budget of `limit`; a hit of
/// priority `p` is admitted only while the window's total stays within `limit × share(p)`.
/// Lower priorities therefore stop early and leave headroom that only higher ones can use.
///
/// Default shares: low 50 %, normal 75 %, high 90 %, critical 100 %. The priority is read from
/// the context (key `"priority"`: `"low"`…`"critical"` or 1–4); absent or unreadable means
/// the default (normal).
///
/// **Guarantees**: the total admitted across all priorities never exceeds `limit` per window;
/// priority `p` alone never pushes the total past its share. Refused hits do not count.
///
/// **Storage**: the fixed window's `{window, count}`, shared by all priorities.
///
/// ```
/// use traffik_core::strategy::{Hit, Priority, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (strategy, rate) = (Priority::new(), Rate::per_minute(100));
/// let (low, critical) = (Context::new().with("priority", "low"), Context::new().with("priority", "critical"));
/// let mut state = None;
/// assert!(strategy.apply(&mut state, &Hit::new(0, rate, 50, &low)).is_allowed());
/// assert!(strategy.apply(&mut state, &Hit::new(0, rate, 1, &low)).is_throttled());
/// assert!(strategy.apply(&mut state, &Hit::new(0, rate, 50, &critical)).is_allowed());
/// assert!(strategy.apply(&mut state, &Hit::new(0, rate, 1, &critical)).is_throttled());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Priority {
    shares: [f64; 4],
    default_level: PriorityLevel,
    context_key: String,
}

impl Default for Priority {
    fn default() -> Self {
        Priority::new()
    }
}

impl Priority {
    /// Shares 50 / 75 / 90 / 100 %, default level normal, context key `"priority"`.
    #[must_use]
    pub fn new() -> Self {
        Priority {
            shares: [0.5, 0.75, 0.9, 1.0],
            default_level: PriorityLevel::Normal,
            context_key: "priority".to_owned(),
        }
    }

    /// Sets the share of the budget `level` may fill (0 < share ≤ 1, non-decreasing with level).
    #[must_use]
    pub fn share(mut self, level: PriorityLevel, share: f64) -> Self {
        self.shares[level.index()] = share;
        self
    }

    /// The level used when the context names none.
    #[must_use]
    pub fn default_level(mut self, level: PriorityLevel) -> Self {
        self.default_level = level;
        self
    }

    /// The context key holding the priority (default `"priority"`).
    #[must_use]
    pub fn context_key(mut self, key: impl Into<String>) -> Self {
        self.context_key = key.into();
        self
    }

    pub(crate) fn level(&self, hit: &Hit<'_>) -> PriorityLevel {
        hit.context
            .get(&self.context_key)
            .and_then(PriorityLevel::from_value)
            .unwrap_or(self.default_level)
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // a share of the limit: approximate above 2^53 is fine, and float-to-int `as` saturates
    pub(crate) fn ceiling(&self, limit: u64, level: PriorityLevel) -> u64 {
        (limit as f64 * self.shares[level.index()]).floor() as u64
    }
}

/// [`Priority`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityStat {
    /// The priority the stat was computed for.
    pub priority: PriorityLevel,
    /// Its share of the budget.
    pub share: f64,
    /// The total it may fill the window to.
    pub ceiling: u64,
    /// Cost admitted in the window, across all priorities.
    pub current_count: u64,
    /// When the window ends.
    pub window_end_ms: Millis,
}

impl Strategy for Priority {
    type State = WindowState;
    const NAME: &'static str = "priority";

    fn apply(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Decision {
        let ceiling = self.ceiling(hit.rate.limit(), self.level(hit));
        step(state, hit, ceiling, ceiling)
    }

    fn refund(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
        refund_window(state, hit)
    }

    fn stat(&self, state: Option<&WindowState>, hit: &Hit<'_>) -> StrategyStat {
        let level = self.level(hit);
        let ceiling = self.ceiling(hit.rate.limit(), level);
        let (remaining, wait, window) = window_stat(state, hit.now, hit.rate.period_ms(), ceiling);
        let metadata = StatMetadata::Priority(PriorityStat {
            priority: level,
            share: self.shares[level.index()],
            ceiling,
            current_count: window.current_count,
            window_end_ms: window.window_end_ms,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &WindowState, rate: &Rate) -> Millis {
        state.ends_at(rate)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let mut previous = 0.0;
        for level in PriorityLevel::ALL {
            let share = self.shares[level.index()];
            if !(share > 0.0 && share <= 1.0) {
                return Err(StrategyConfigError::new(
                    Self::NAME,
                    "share",
                    format!("{level} has share {share}; it must be in (0, 1]"),
                ));
            }
            if share < previous {
                return Err(StrategyConfigError::new(
                    Self::NAME,
                    "share",
                    format!("{level} has a smaller share than the level below it"),
                ));
            }
            if !rate.is_unlimited() && self.ceiling(rate.limit(), level) == 0 {
                return Err(StrategyConfigError::new(
                    Self::NAME,
                    "share",
                    format!("{level} would have a ceiling of 0 at rate {rate}"),
                ));
            }
            previous = share;
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

    fn at(level: &str) -> Context {
        Context::new().with("priority", level)
    }

    #[test]
    fn priorities_share_one_budget() {
        let rate = Rate::per_minute(100);
        let mut total = 0;
        let mut sim = Sim::new(Priority::new(), rate);
        sim.at(0);
        for level in ["low", "normal", "high", "critical", "low", "critical"] {
            sim = sim.with_context(at(level));
            while sim.hit(1).is_allowed() {
                total += 1;
            }
        }
        assert_eq!(total, 100, "all priorities together never exceed the limit");
    }

    #[test]
    fn lower_priorities_stop_at_their_share() {
        let mut sim = Sim::new(Priority::new(), Rate::per_minute(100)).with_context(at("normal"));
        sim.at(0);
        assert!(sim.hit(75).is_allowed());
        assert!(sim.hit(1).is_throttled());
        let mut sim = sim.with_context(at("high"));
        assert!(sim.hit(15).is_allowed());
        assert!(sim.hit(1).is_throttled());
        let mut sim = sim.with_context(Context::new().with("priority", 4));
        assert!(sim.hit(10).is_allowed());
        let StatMetadata::Priority(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(
            (meta.priority, meta.ceiling, meta.current_count),
            (PriorityLevel::Critical, 100, 100)
        );
    }

    #[test]
    fn parses_levels_by_name_and_number() {
        assert_eq!(
            PriorityLevel::from_value(&"HIGH".into()),
            Some(PriorityLevel::High)
        );
        assert_eq!(
            PriorityLevel::from_value(&1.into()),
            Some(PriorityLevel::Low)
        );
        assert_eq!(PriorityLevel::from_value(&9.into()), None);
        assert_eq!(PriorityLevel::from_value(&0.into()), None);
        assert_eq!(PriorityLevel::from_value(&Value::Null), None);
    }

    #[test]
    fn validates_shares() {
        let rate = Rate::per_minute(100);
        assert!(Strategy::validate(&Priority::new(), &rate).is_ok());
        assert!(
            Strategy::validate(&Priority::new().share(PriorityLevel::Low, 0.0), &rate).is_err()
        );
        assert!(
            Strategy::validate(&Priority::new().share(PriorityLevel::Low, 0.95), &rate).is_err()
        );
        assert!(
            Strategy::validate(&Priority::new().share(PriorityLevel::Critical, 1.5), &rate)
                .is_err()
        );
    }
}
