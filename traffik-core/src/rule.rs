//! [`Rule`]: when a throttle applies to a hit (`throttle_if`) or is bypassed (`bypass_if`),
//! decided by the engine for every entry point.
//!
//! A throttle applies to a hit when every `throttle_if` rule holds and no `bypass_if` rule
//! does; otherwise the hit is [skipped](crate::SkipReason::Bypassed): no backend call, nothing
//! consumed. Rules come from the throttle's builder ([`rules`](crate::throttle::ThrottleBuilder::rules))
//! and from its registry ([`ThrottleRegistry::add_rules`](crate::ThrottleRegistry::add_rules),
//! by uid or uid glob), the reference's `Rule`/`Bypass`, `throttle_if`/`bypass_if` and
//! `ThrottleRegistry.add_rules`. Unlike the reference, a bypass rule always bypasses (its
//! deprecated `BypassThrottleRule` applied instead) and the order rules are given in does not
//! matter: synchronous conditions are checked first, asynchronous ones only when those leave
//! the throttle applying.
//!
//! ```
//! use traffik_core::{Context, MemoryBackend, SkipReason, Throttle};
//! use traffik_core::rule::Rule;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let api = Throttle::builder("rule-module-doc", "1/min")
//!     .backend(MemoryBackend::new())
//!     .rules([Rule::bypass_if(|client: &str, _: &Context| client.starts_with("internal-"))])
//!     .build()?;
//! assert!(api.hit("alice").await?.is_allowed());
//! assert!(api.hit("alice").await?.is_throttled());
//! let internal = api.hit("internal-batch").await?;
//! assert_eq!(internal.skip_reason(), Some(SkipReason::Bypassed));
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::{BoxFuture, Context, MaybeReady};

/// Whether a rule holds for a hit: a condition over the connection and the hit's context (the
/// throttle's static context merged with the call's).
///
/// Closures are turned into conditions by [`Rule::throttle_if`], [`Rule::bypass_if`] and their
/// `_async` forms; implement this trait for a reusable matcher (the HTTP adapter's
/// `RequestMatch` on path, methods and predicates is one). Conditions should be pure: a
/// condition may be evaluated more than once for one hit.
pub trait Condition<C: ?Sized>: Send + Sync + 'static {
    /// Whether the condition holds, at once when it can.
    fn holds<'a>(&'a self, connection: &'a C, context: &'a Context) -> MaybeReady<'a, bool>;

    /// Whether the condition holds for a **bypass** rule. A condition that can match several
    /// spellings of one connection (a request path and its canonical form, say) should hold
    /// here only when every spelling matches, so that an exemption is never wider than what it
    /// names; a `throttle_if` rule uses [`holds`](Self::holds), where matching more is the safe
    /// side. The default is `holds`.
    fn holds_strictly<'a>(
        &'a self,
        connection: &'a C,
        context: &'a Context,
    ) -> MaybeReady<'a, bool> {
        self.holds(connection, context)
    }

    /// Whether [`holds`](Self::holds) always answers at once: a hit whose rules are all
    /// synchronous can be decided without a future.
    fn is_synchronous(&self) -> bool {
        true
    }
}

/// What a rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// The throttle applies only to hits for which the condition holds (the reference's
    /// `Rule`, `throttle_if`).
    ThrottleIf,
    /// The throttle is bypassed for hits for which the condition holds (the reference's
    /// `Bypass`, `bypass_if`).
    BypassIf,
}

/// A condition deciding whether a throttle applies to a hit. See the [module](self).
pub struct Rule<C: ?Sized + 'static> {
    kind: RuleKind,
    condition: Arc<dyn Condition<C>>,
}

impl<C: ?Sized + 'static> Rule<C> {
    /// A rule of `kind` on `condition`.
    #[must_use]
    pub fn new(kind: RuleKind, condition: impl Condition<C>) -> Self {
        Rule {
            kind,
            condition: Arc::new(condition),
        }
    }

    /// The throttle applies only where `condition` holds.
    #[must_use]
    pub fn throttle_if(condition: impl Fn(&C, &Context) -> bool + Send + Sync + 'static) -> Self {
        Rule::new(RuleKind::ThrottleIf, SyncCondition(condition))
    }

    /// The throttle is bypassed where `condition` holds.
    #[must_use]
    pub fn bypass_if(condition: impl Fn(&C, &Context) -> bool + Send + Sync + 'static) -> Self {
        Rule::new(RuleKind::BypassIf, SyncCondition(condition))
    }

    /// [`throttle_if`](Self::throttle_if) with an asynchronous condition (a lookup, say).
    #[must_use]
    pub fn throttle_if_async(
        condition: impl for<'a> Fn(&'a C, &'a Context) -> BoxFuture<'a, bool> + Send + Sync + 'static,
    ) -> Self {
        Rule::new(RuleKind::ThrottleIf, AsyncCondition(condition))
    }

    /// [`bypass_if`](Self::bypass_if) with an asynchronous condition.
    #[must_use]
    pub fn bypass_if_async(
        condition: impl for<'a> Fn(&'a C, &'a Context) -> BoxFuture<'a, bool> + Send + Sync + 'static,
    ) -> Self {
        Rule::new(RuleKind::BypassIf, AsyncCondition(condition))
    }

    /// The throttle applies only where `condition` holds (a reusable [`Condition`]).
    #[must_use]
    pub fn throttle_when(condition: impl Condition<C>) -> Self {
        Rule::new(RuleKind::ThrottleIf, condition)
    }

    /// The throttle is bypassed where `condition` holds (a reusable [`Condition`]).
    #[must_use]
    pub fn bypass_when(condition: impl Condition<C>) -> Self {
        Rule::new(RuleKind::BypassIf, condition)
    }

    /// What the rule does when its condition holds.
    #[must_use]
    pub fn kind(&self) -> RuleKind {
        self.kind
    }

    /// Whether the rule's condition answers at once.
    #[must_use]
    pub fn is_synchronous(&self) -> bool {
        self.condition.is_synchronous()
    }

    /// Whether a hit whose condition came out `holds` skips the throttle.
    #[inline]
    pub(crate) fn skips(&self, holds: bool) -> bool {
        match self.kind {
            RuleKind::ThrottleIf => !holds,
            RuleKind::BypassIf => holds,
        }
    }

    pub(crate) fn holds<'a>(
        &'a self,
        connection: &'a C,
        context: &'a Context,
    ) -> MaybeReady<'a, bool> {
        match self.kind {
            RuleKind::ThrottleIf => self.condition.holds(connection, context),
            RuleKind::BypassIf => self.condition.holds_strictly(connection, context),
        }
    }
}

impl<C: ?Sized + 'static> Clone for Rule<C> {
    fn clone(&self) -> Self {
        Rule {
            kind: self.kind,
            condition: Arc::clone(&self.condition),
        }
    }
}

impl<C: ?Sized + 'static> fmt::Debug for Rule<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("kind", &self.kind)
            .field("synchronous", &self.condition.is_synchronous())
            .finish_non_exhaustive()
    }
}

struct SyncCondition<F>(F);

impl<C: ?Sized, F> Condition<C> for SyncCondition<F>
where
    F: Fn(&C, &Context) -> bool + Send + Sync + 'static,
{
    fn holds<'a>(&'a self, connection: &'a C, context: &'a Context) -> MaybeReady<'a, bool> {
        MaybeReady::ready((self.0)(connection, context))
    }
}

struct AsyncCondition<F>(F);

impl<C: ?Sized, F> Condition<C> for AsyncCondition<F>
where
    F: for<'a> Fn(&'a C, &'a Context) -> BoxFuture<'a, bool> + Send + Sync + 'static,
{
    fn holds<'a>(&'a self, connection: &'a C, context: &'a Context) -> MaybeReady<'a, bool> {
        MaybeReady::from_boxed((self.0)(connection, context))
    }

    fn is_synchronous(&self) -> bool {
        false
    }
}
