//! The lane path: a hit on the throttle's own in-memory backend, at a fixed rate and cost, with
//! a synchronous identifier and no per-call context (what most hits are), decided straight from
//! the client's identity through the throttle's [`Lane`](crate::backend::Lane).
//!
//! It decides exactly what [`run_now`](super::sync_path) would, in the same order (exempted,
//! then an unlimited rate, then a cost of 0), written without the general path's per-hit
//! sources and merged context: each value is read where it is used, so nothing large moves
//! between the steps.

use std::sync::Arc;

use super::config::StrategyRef;
use super::verdict::{Refusal, Report};
use super::{CostSource, HitOptions, RateSource, Throttle};
use crate::backend::Mode;
use crate::key::KeyIdentity;
use crate::strategy::Hit;
use crate::telemetry::DecisionSpan;
use crate::{Decision, Identity, SkipReason, ThrottleError};

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// The lane path, when it applies; `None` sends the hit to the general synchronous path
    /// (nothing was consumed), which also answers a closed backend.
    #[inline]
    pub(super) fn decide_lane<R: Report>(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
        span: &DecisionSpan,
    ) -> Option<Result<R, ThrottleError>> {
        if options.context.is_some() {
            return None;
        }
        let config = self.inner.config.load();
        let (Some(lane), Some(backend), RateSource::Fixed(rate), StrategyRef::Pure(strategy)) = (
            &config.lane,
            &config.backend,
            &config.rate,
            &config.strategy,
        ) else {
            return None;
        };
        // A closed backend is answered (and counted) once, by the general path.
        if !config.identifier.is_synchronous() || !lane.is_open() {
            return None;
        }
        let cost = match (options.cost, &config.cost) {
            (Some(cost), _) => cost,
            (None, CostSource::Fixed(cost)) => *cost,
            (None, CostSource::Dynamic(_)) => return None,
        };
        // Read in place: moving the identity out of what the identifier wrote costs more than
        // the rest of the path (partial writes read back whole).
        let identity = config.identifier.identify(connection, options.identities);
        let client = match identity.as_ready()? {
            Identity::Key(key) => KeyIdentity::Text(key),
            Identity::Address(ip) => KeyIdentity::Address(*ip),
            Identity::Exempted => return Some(Ok(skipped(SkipReason::Exempted))),
        };
        if rate.is_unlimited() {
            return Some(Ok(skipped(SkipReason::Unlimited)));
        }
        if cost == 0 {
            return Some(Ok(skipped(SkipReason::ZeroCost)));
        }
        let hit = Hit::new(self.now_of(options), *rate, cost, &config.context);
        span.hit(cost, &**backend);
        let decision = lane.decide(client, options.scope, strategy.as_ref(), &hit, mode)?;
        Some(Ok(R::decided(
            self.settle(decision, config.min_wait),
            || Refusal::new(Arc::clone(backend), config.context.clone()),
        )))
    }
}

#[inline]
fn skipped<R: Report>(reason: SkipReason) -> R {
    R::unrefused(Decision::skipped(reason))
}
