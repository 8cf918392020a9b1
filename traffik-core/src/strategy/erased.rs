//! [`DynStrategy`]: the object-safe face of every [`Strategy`], used by backends and throttles.

use std::any::Any;
use std::fmt::{self, Debug};

use super::{Hit, Refund, Strategy, StrategyConfigError, decode_state, encode_state};
use crate::{Decision, Millis, Rate, StrategyStat};

/// A strategy's state held without its type, as the in-memory backend stores it.
///
/// States that [`Strategy::pack`] into three words live inline (no allocation); others are
/// boxed once when the key is created and then updated in place.
#[derive(Default)]
pub struct ErasedState(Repr);

#[derive(Default)]
enum Repr {
    #[default]
    Empty,
    Inline {
        strategy: u32,
        words: [u64; 3],
    },
    Boxed(Box<dyn Any + Send + Sync>),
}

/// A strategy's tag for inline state: FNV-1a of its name, folded to 32 bits.
#[allow(clippy::cast_possible_truncation)] // the fold keeps the low 32 bits on purpose
const fn tag(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    (hash ^ (hash >> 32)) as u32
}

impl ErasedState {
    /// No state yet.
    #[must_use]
    pub fn new() -> Self {
        ErasedState(Repr::Empty)
    }

    /// Stores `state` (inline when the strategy packs it).
    fn put<S: Strategy>(&mut self, state: Option<S::State>) {
        self.0 = match state {
            None => Repr::Empty,
            Some(state) => match S::pack(&state) {
                Some(words) => Repr::Inline {
                    strategy: const { tag(S::NAME) },
                    words,
                },
                None => Repr::Boxed(Box::new(Some(state))),
            },
        };
    }

    /// Runs `f` on the typed state, keeping what it leaves unless `dry_run`.
    #[inline]
    fn with_typed<S: Strategy, T>(
        &mut self,
        dry_run: bool,
        f: impl FnOnce(&mut Option<S::State>) -> T,
    ) -> T {
        match &mut self.0 {
            Repr::Inline { strategy, words } if *strategy == const { tag(S::NAME) } => {
                let mut state = S::unpack(*words);
                let result = f(&mut state);
                if !dry_run {
                    match state.as_ref().and_then(S::pack) {
                        Some(packed) => *words = packed,
                        None => self.put::<S>(state),
                    }
                }
                result
            }
            Repr::Boxed(slot) if slot.is::<Option<S::State>>() => {
                match slot.downcast_mut::<Option<S::State>>() {
                    Some(state) if dry_run => f(&mut state.clone()),
                    Some(state) => f(state),
                    None => unreachable!("the type was just checked"),
                }
            }
            other => {
                if !matches!(other, Repr::Empty) {
                    // Another strategy's state under this key (only possible if two strategies
                    // share a NAME): start afresh rather than misread it.
                    tracing::warn!(
                        strategy = S::NAME,
                        "state of another strategy found under this key; resetting it"
                    );
                }
                let mut state = None;
                let result = f(&mut state);
                if !dry_run {
                    self.put::<S>(state);
                }
                result
            }
        }
    }

    /// Runs `f` on a view of the typed state.
    fn with_ref<S: Strategy, T>(&self, f: impl FnOnce(Option<&S::State>) -> T) -> T {
        match &self.0 {
            Repr::Inline { strategy, words } if *strategy == const { tag(S::NAME) } => {
                f(S::unpack(*words).as_ref())
            }
            Repr::Boxed(slot) => f(slot
                .downcast_ref::<Option<S::State>>()
                .and_then(Option::as_ref)),
            _ => f(None),
        }
    }
}

impl Debug for ErasedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Repr::Empty => "ErasedState(empty)",
            Repr::Inline { .. } => "ErasedState(inline)",
            Repr::Boxed(_) => "ErasedState(boxed)",
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

/// What refunding a charge on encoded state produced ([`DynStrategy::refund_encoded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRefund {
    /// What the refund did.
    pub refund: Refund,
    /// The new encoded state when units were returned (`None` inside to delete the key);
    /// `None` when nothing is to be written.
    pub state: Option<Option<String>>,
    /// When the new state may be dropped.
    pub expires_at: Option<Millis>,
}

/// Any [`Strategy`], without its state type: what backends and throttles call.
///
/// Every `Strategy` implements it; you never implement it yourself.
pub trait DynStrategy: Send + Sync + Debug + 'static {
    /// The strategy's [`Strategy::NAME`].
    fn name(&self) -> &'static str;

    /// [`Strategy::validate`].
    ///
    /// # Errors
    ///
    /// The [`StrategyConfigError`] of [`Strategy::validate`].
    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError>;

    /// The strategy itself, so a backend can recognise the built-in strategies it runs
    /// natively (the Redis backend's Lua scripts) and run any other one generically.
    fn as_any(&self) -> &dyn Any;

    /// [`Strategy::STATE_VERSION`]: the version its encoded state carries.
    fn state_version(&self) -> u32;

    /// Runs the strategy on in-memory state. With `dry_run` the state is left untouched (the
    /// decision is what a real hit would get). Returns the decision and the state's new expiry
    /// (`None` when no state remains).
    fn apply_erased(
        &self,
        state: &mut ErasedState,
        hit: &Hit<'_>,
        dry_run: bool,
    ) -> (Decision, Option<Millis>);

    /// [`Strategy::refund`] on in-memory state: what the refund did, and the state's new expiry
    /// (`None` when no state remains).
    fn refund_erased(&self, state: &mut ErasedState, hit: &Hit<'_>) -> (Refund, Option<Millis>);

    /// [`Strategy::refund`] on encoded state (see [`encode_state`]): what the refund did, and
    /// when it returned units the new encoded state (`None` to delete the key) with its expiry.
    /// Unreadable or absent state has nothing to refund ([`Refund::Lapsed`]).
    fn refund_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> EncodedRefund;

    /// Reports in-memory state.
    fn stat_erased(&self, state: &ErasedState, hit: &Hit<'_>) -> StrategyStat;

    /// Runs the strategy on encoded state (see [`encode_state`]). Unreadable state is treated
    /// as absent, with a warning.
    fn apply_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> EncodedTransition;

    /// The decision of a hit on encoded state, without encoding the new state (for backends
    /// that stored it themselves, such as a Redis script).
    fn decide_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> Decision;

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

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn state_version(&self) -> u32 {
        S::STATE_VERSION
    }

    #[inline]
    fn apply_erased(
        &self,
        state: &mut ErasedState,
        hit: &Hit<'_>,
        dry_run: bool,
    ) -> (Decision, Option<Millis>) {
        state.with_typed::<S, _>(dry_run, |typed| {
            let decision = self.apply(typed, hit);
            (
                decision,
                typed.as_ref().map(|s| self.expires_at(s, &hit.rate)),
            )
        })
    }

    fn refund_erased(&self, state: &mut ErasedState, hit: &Hit<'_>) -> (Refund, Option<Millis>) {
        state.with_typed::<S, _>(false, |typed| {
            let refund = self.refund(typed, hit);
            (
                refund,
                typed.as_ref().map(|s| self.expires_at(s, &hit.rate)),
            )
        })
    }

    fn refund_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> EncodedRefund {
        let mut state = decode_or_absent::<S>(stored);
        if state.is_none() {
            return EncodedRefund {
                refund: Refund::Lapsed,
                state: None,
                expires_at: None,
            };
        }
        let refund = self.refund(&mut state, hit);
        if refund != Refund::Returned {
            return EncodedRefund {
                refund,
                state: None,
                expires_at: None,
            };
        }
        EncodedRefund {
            refund,
            expires_at: state.as_ref().map(|s| self.expires_at(s, &hit.rate)),
            state: Some(state.as_ref().map(encode_state::<S>)),
        }
    }

    fn stat_erased(&self, state: &ErasedState, hit: &Hit<'_>) -> StrategyStat {
        state.with_ref::<S, _>(|typed| self.stat(typed, hit))
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

    fn decide_encoded(&self, stored: Option<&str>, hit: &Hit<'_>) -> Decision {
        self.apply(&mut decode_or_absent::<S>(stored), hit)
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
    fn inline_and_boxed_states_behave_alike() {
        use crate::strategy::SlidingWindowLog;
        let context = Context::new();
        let mut inline = ErasedState::new();
        let mut boxed = ErasedState::new();
        for now in [0, 10, 20, 30] {
            let hit = Hit::new(now, Rate::per_second(3), 1, &context);
            let a = FixedWindow::new().apply_erased(&mut inline, &hit, false).0;
            let b = SlidingWindowLog::new()
                .apply_erased(&mut boxed, &hit, false)
                .0;
            assert_eq!(a.is_allowed(), b.is_allowed(), "at {now}");
        }
        assert_eq!(format!("{inline:?}"), "ErasedState(inline)");
        assert_eq!(format!("{boxed:?}"), "ErasedState(boxed)");
        let hit = Hit::new(40, Rate::per_second(3), 1, &context);
        assert!(
            SlidingWindowLog::new()
                .apply_erased(&mut boxed, &hit, true)
                .0
                .is_throttled()
        );
        assert_eq!(
            SlidingWindowLog::new()
                .stat_erased(&boxed, &hit)
                .hits_remaining,
            0
        );
        assert_eq!(
            FixedWindow::new().stat_erased(&inline, &hit).hits_remaining,
            0
        );
        // State of one strategy is never read as another's.
        assert_eq!(
            crate::strategy::Gcra::new()
                .stat_erased(&inline, &hit)
                .hits_remaining,
            1
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
