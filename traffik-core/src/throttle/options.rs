//! [`HitOptions`]: per-call settings of a hit.

use std::sync::Arc;

use super::IdentityMemo;
use crate::backend::Backend;
use crate::{Context, Millis};

/// Per-call settings: a cost override, call-time context (merged over the throttle's), a
/// scope that splits the client's budget (e.g. per route), and a backend for throttles that
/// resolve theirs per request (multi-tenant setups).
///
/// ```
/// use traffik_core::{Context, throttle::HitOptions};
///
/// let context = Context::new().with("tier", "premium");
/// let options = HitOptions::new().cost(5).context(&context).scope("GET /search");
/// assert_eq!(options.cost, Some(5));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct HitOptions<'a> {
    /// The hit's cost, instead of the throttle's.
    pub cost: Option<u64>,
    /// Context merged over the throttle's static context.
    pub context: Option<&'a Context>,
    /// A scope appended to the key: the client has one budget per scope.
    pub scope: Option<&'a str>,
    /// The backend for this hit when the throttle has none of its own.
    pub backend: Option<&'a Arc<dyn Backend>>,
    /// The identities already computed for this connection (one request, one WebSocket
    /// connection): a memoized identifier runs once per connection ([`IdentityMemo`]).
    pub identities: Option<&'a IdentityMemo>,
    /// The time of the hit (ms since the Unix epoch) instead of the throttle's clock. For a
    /// refund ([`Throttle::refund_with`](crate::Throttle::refund_with)), the time of the charge
    /// being returned.
    pub now: Option<Millis>,
}

impl<'a> HitOptions<'a> {
    /// No overrides.
    #[must_use]
    pub const fn new() -> Self {
        HitOptions {
            cost: None,
            context: None,
            scope: None,
            backend: None,
            identities: None,
            now: None,
        }
    }

    /// Sets the cost.
    #[must_use]
    pub const fn cost(mut self, cost: u64) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Sets the call-time context.
    #[must_use]
    pub const fn context(mut self, context: &'a Context) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the scope.
    #[must_use]
    pub const fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sets the time of the hit (for a refund: of the charge).
    #[must_use]
    pub const fn now(mut self, now: Millis) -> Self {
        self.now = Some(now);
        self
    }

    /// Sets the connection's identity memo.
    #[must_use]
    pub const fn identities(mut self, memo: &'a IdentityMemo) -> Self {
        self.identities = Some(memo);
        self
    }

    /// Sets the backend used when the throttle has none.
    #[must_use]
    pub const fn backend(mut self, backend: &'a Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }
}
