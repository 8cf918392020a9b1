//! [`DynStrategy`]: the object-safe face of every [`Strategy`], used by backends and throttles.

use std::any::Any;
use std::fmt::{self, Debug};

use super::{Hit, Strategy, StrategyConfigError, decode_state, encode_state};
use crate::{Decision, Millis, Rate, StrategyStat};

/// A strategy's state held without its type, as the in-memory backend stores it.
///
/// It is allocated once when a key is created and then updated in place.
#[derive(Default)]
pub struct ErasedState(Option<Box<dyn Any + Send + Sync>>);

impl ErasedState {
    /// No state yet.
    #[must_use]
    pub fn new() -> Self {
        ErasedState(None)
    }

    fn typed_mut<S: Strategy>(&mut self) -> &mut Option<S::State> {
        let slot = self.0.get_or_insert_with(|| Box::new(None::<S::State>));
        if !slot.is::<Option<S::State>>() {
            // Another strategy's state under the same key (only possible if two strategies
            // share a NAME): start afresh rather than misread it.
            tracing::warn!(
                strategy = S::NAME,
                "state of another type found under this strategy's key; resetting it"
            );
            *slot = Box::new(None::<S::State>);
        }
        match slot.downcast_mut::<Option<S::State>>() {
            Some(state) => state,
            None => unreachable!("the slot was just set to this type"),
        }
    }

    fn typed_ref<S: Strategy>(&self) -> Option<&S::State> {
        self.0
            .as_ref()
            .and_then(|slot| slot.downcast_ref::<Option<S::State>>())
            .and_then(Option::as_ref)
    }
}

impl Debug for ErasedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "ErasedState(..)"
        } else {
            "ErasedState(empty)"
        })
    }
}

/// What running a strategy on encoded state produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedTransition {
    /// The decision.
    pub decision: Decision,
    /// The new encoded state, `None` to delete the key.
    pub state: Option<String>,
    /// When the new state may be dropped (`None` with no state).
    pub expires_at: Option<Millis>,
}

/// Any [`Strategy`], without its state type: what backends and throttles call.
///
/// Every `Strategy` implements it; you never implement it yourself.
pub trait DynStrategy: Send + Sync + Debug + 'static {
    /// The strategy's [`Strategy::NAME`].
    fn name(&self) -> &'static str;

    /// [`Strategy::validate`].
    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError>;

    /// Runs the strategy on in-memory state. With `dry_run` the state is left untouched (the
    /// decision is what a real hit would get). Returns the decision and the state's new expiry
    /// (`None` when no state remains).
    fn apply_erased(
        &self,
        state: &mut ErasedState,
        hit: &Hit<'_>,
        dry_run: bool,
    ) -> (Decision, Option<Millis>);

    /// Reports in-memory state.
    fn stat_erased(&self, state: &ErasedState, hit: &Hit<'_>) -> StrategyStat;

    /// Runs the strategy on encoded state (see [`encode_state`]). Unreadable state is treated
    /// as absent, with a warning.
    fn apply_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> EncodedTransition;

    /// Reports encoded state.
    fn stat_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> StrategyStat;
}

fn decode_or_absent<S: Strategy>(stored: Option<&str>) -> Option<S::State> {
    let text = stored?;
    match decode_state::<S>(text) {
        Ok(state) => Some(state),
        Err(error) => {
            tracing::warn!(strategy = S::NAME, %error, "unreadable stored state treated as absent");
            None
        }
    }
}

impl<S: Strategy> DynStrategy for S {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        Strategy::validate(self, rate)
    }

    #[inline]
    fn apply_erased(
        &self,
        state: &mut ErasedState,
        hit: &Hit<'_>,
        dry_run: bool,
    ) -> (Decision, Option<Millis>) {
        let typed = state.typed_mut::<S>();
        if dry_run {
            let mut scratch = typed.clone();
            let decision = self.apply(&mut scratch, hit);
            let expiry = typed.as_ref().map(|s| self.expires_at(s, &hit.rate));
            return (decision, expiry);
        }
        let decision = self.apply(typed, hit);
        let expiry = typed.as_ref().map(|s| self.expires_at(s, &hit.rate));
        (decision, expiry)
    }

    fn stat_erased(&self, state: &ErasedState, hit: &Hit<'_>) -> StrategyStat {
        self.stat(state.typed_ref::<S>(), hit)
    }

    fn apply_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> EncodedTransition {
        let mut state = decode_or_absent::<S>(stored);
        let decision = self.apply(&mut state, hit);
        let expires_at = state.as_ref().map(|s| self.expires_at(s, &hit.rate));
        EncodedTransition {
            decision,
            state: state.as_ref().map(encode_state::<S>),
            expires_at,
        }
    }

    fn stat_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> StrategyStat {
        self.stat(decode_or_absent::<S>(stored).as_ref(), hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{FixedWindow, TokenBucket};
    use crate::{Context, Rate};

    #[test]
    fn erased_and_encoded_paths_agree() {
        let context = Context::new();
        let strategy = FixedWindow::new();
        let mut erased = ErasedState::new();
        let mut stored: Option<String> = None;
        for (now, cost) in [(0, 1), (10, 2), (20, 3), (999, 1), (1_000, 4)] {
            let hit = Hit::new(now, Rate::per_second(5), cost, &context);
            let (decision, _) = strategy.apply_erased(&mut erased, &hit, false);
            let encoded = strategy.apply_encoded(stored.as_deref(), &hit);
            assert_eq!(decision, encoded.decision, "at {now}");
            stored = encoded.state;
        }
    }

    #[test]
    fn dry_run_leaves_state_untouched() {
        let context = Context::new();
        let strategy = TokenBucket::new();
        let mut erased = ErasedState::new();
        let hit = Hit::new(0, Rate::per_second(1), 1, &context);
        assert!(
            strategy
                .apply_erased(&mut erased, &hit, true)
                .0
                .is_allowed()
        );
        assert!(
            strategy
                .apply_erased(&mut erased, &hit, true)
                .0
                .is_allowed()
        );
        assert!(
            strategy
                .apply_erased(&mut erased, &hit, false)
                .0
                .is_allowed()
        );
        assert!(
            strategy
                .apply_erased(&mut erased, &hit, true)
                .0
                .is_throttled()
        );
    }

    #[test]
    fn garbage_state_is_treated_as_absent() {
        let context = Context::new();
        let hit = Hit::new(0, Rate::per_second(1), 1, &context);
        let transition = FixedWindow::new().apply_encoded(Some("{garbage"), &hit);
        assert!(transition.decision.is_allowed());
        assert!(transition.state.is_some());
    }
}
