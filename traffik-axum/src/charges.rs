//! [`Charges`]: what the throttles of one request have charged so far, so that a refusal by a
//! later limit of the same request returns them.
//!
//! axum runs a handler's extractors one after the other, with nothing between the last one and
//! the handler, and a `ThrottleLayer` runs before them all. So when a request meets several
//! limits through several entry points (two `Throttled<_>` arguments, a layer and an
//! extractor, two nested layers), the earlier ones have charged before a later one refuses.
//! Each entry point records its admitted charges in the request's extensions; a refusal
//! returns every recorded charge ([`Throttle::refund_with`](traffik_core::Throttle::refund_with))
//! before answering, so a refused request consumes nothing.
//!
//! The limits inside one entry point (a `ThrottledAll`, an attribute's rates, the rules of one
//! layer) are decided as one instead, atomically: no charge, no refund.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::Extensions;
use http::request::Parts;

use crate::refund::RefundSlot;
use traffik_core::{Decision, Millis, Outcome};

use crate::scope::EntryPoint;
use crate::throttle::HttpThrottle;

/// One admitted charge of a request: enough to reach the same key and return the same cost.
#[derive(Clone)]
pub(crate) struct Charge {
    throttle: HttpThrottle,
    entry: EntryPoint,
    /// The scope string the hit used, when it was fixed at the charge ([`Self::fixing_scope`]):
    /// a layer sees the request at another stage than a later refusal does (outside the router
    /// no matched route, inside a nested router a stripped path).
    fixed_scope: FixedScope,
    cost: Option<u64>,
    at: Millis,
    /// Whether the charge was returned, shared with the refund slots that keep it (`None`
    /// when no refunding layer is around the request): a charge is returned once.
    returned: Option<Arc<AtomicBool>>,
}

impl Charge {
    /// A hit about to be made by `throttle` through `entry` (which decides the default scope)
    /// with a cost override, at the throttle's present time (which the hit must use:
    /// [`Self::at`]).
    pub(crate) fn new(throttle: &HttpThrottle, entry: EntryPoint, cost: Option<u64>) -> Self {
        Charge {
            throttle: throttle.clone(),
            entry,
            fixed_scope: FixedScope::No,
            cost,
            at: throttle.core().now(),
            returned: None,
        }
    }

    /// Keeps the scope string the hit used on `parts`, for a refund made at a later stage of
    /// the request (a layer's charge). Nothing is allocated for a shared scope.
    pub(crate) fn fixing_scope(mut self, parts: &Parts) -> Self {
        self.fixed_scope = FixedScope::Yes(self.throttle.scope_of(parts, self.entry));
        self
    }

    /// The time of the hit (ms, the throttle's clock).
    pub(crate) fn at(&self) -> Millis {
        self.at
    }

    pub(crate) fn throttle(&self) -> &HttpThrottle {
        &self.throttle
    }

    pub(crate) fn cost(&self) -> Option<u64> {
        self.cost
    }

    pub(crate) fn entry_point(&self) -> EntryPoint {
        self.entry
    }

    /// Returns the charge unless a refund slot did already.
    async fn refund(&self, parts: &Parts) {
        if self
            .returned
            .as_ref()
            .is_some_and(|returned| returned.swap(true, Ordering::AcqRel))
        {
            return;
        }
        self.return_now(parts).await;
    }

    /// Returns the charge; a failure is logged and the units stay consumed.
    pub(crate) async fn return_now(&self, parts: &Parts) {
        let scope = match &self.fixed_scope {
            FixedScope::Yes(fixed) => fixed.clone(),
            FixedScope::No => self.throttle.scope_of(parts, self.entry),
        };
        let options =
            self.throttle
                .options(parts, scope.as_deref(), self.cost, None, Some(self.at));
        if let Err(error) = self.throttle.core().refund_with(parts, options).await {
            tracing::warn!(
                target: "traffik",
                uid = self.throttle.uid(),
                %error,
                "could not return a request's charge; it stays consumed"
            );
        }
    }
}

/// Whether a charge keeps the scope string its hit used (`None` inside: a shared scope).
#[derive(Clone)]
enum FixedScope {
    No,
    Yes(Option<String>),
}

/// The admitted charges of one request, in its extensions: the first inline (most requests
/// meet one limit, so recording it allocates only the extension's box), the others after it.
#[derive(Clone)]
pub(crate) struct Charges {
    first: Charge,
    more: Vec<Charge>,
}

impl Charges {
    /// Records `charge`, made on `parts`, if `decision` consumed (a skipped hit, fail-open
    /// included, did not): for a later refusal of the request, and for a refund policy around
    /// it ([`RefundSlot`]).
    pub(crate) fn record(parts: &mut Parts, mut charge: Charge, decision: &Decision) {
        if decision.outcome != Outcome::Allowed {
            return;
        }
        charge.returned = RefundSlot::keep(parts, &charge);
        let extensions = &mut parts.extensions;
        match extensions.get_mut::<Charges>() {
            Some(charges) => charges.more.push(charge),
            None => {
                extensions.insert(Charges {
                    first: charge,
                    more: Vec::new(),
                });
            }
        }
    }

    /// Whether `extensions` hold charges to return.
    pub(crate) fn any(extensions: &Extensions) -> bool {
        extensions.get::<Charges>().is_some()
    }

    /// Returns every charge recorded for the request (a later limit refused it), once.
    pub(crate) async fn refund(parts: &mut Parts) {
        let Some(charges) = parts.extensions.remove::<Charges>() else {
            return;
        };
        let mut left = Left {
            charges: std::iter::once(charges.first).chain(charges.more).collect(),
            parts: parts.clone(),
        };
        Box::pin(async {
            // One at a time: if this future is dropped meanwhile (the client went away), the
            // guard returns the rest.
            while let Some(charge) = left.charges.pop() {
                charge.refund(&left.parts).await;
            }
        })
        .await;
    }
}

/// The charges of a refused request not returned yet, and the request they were made on:
/// returned on a spawned task if the refund is dropped part-way.
struct Left {
    charges: Vec<Charge>,
    parts: Parts,
}

impl Drop for Left {
    fn drop(&mut self) {
        if self.charges.is_empty() {
            return;
        }
        let (charges, parts) = (std::mem::take(&mut self.charges), self.parts.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for charge in charges {
                    charge.refund(&parts).await;
                }
            });
        } else {
            tracing::warn!(
                target: "traffik",
                "a refused request's charges could not be returned outside a Tokio runtime; they \
                 stay consumed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context as TaskContext, Waker};

    use http::Request;
    use traffik_core::backend::{Backend, BackendFuture, BackendSettings, Mode};
    use traffik_core::strategy::{DynStrategy, Hit, Refund};
    use traffik_core::{Decision, MaybeReady, MemoryBackend, Millis, StrategyStat};

    use super::*;
    use crate::HttpThrottle;

    /// Memory whose refunds never finish.
    #[derive(Debug)]
    struct StalledRefunds(MemoryBackend);

    impl Backend for StalledRefunds {
        fn name(&self) -> &str {
            "stalled"
        }
        fn settings(&self) -> &BackendSettings {
            self.0.settings()
        }
        fn decide<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
            mode: Mode,
        ) -> BackendFuture<'a, Decision> {
            self.0.decide(key, strategy, hit, mode)
        }
        fn refund<'a>(
            &'a self,
            _: &'a str,
            _: &'a dyn DynStrategy,
            _: Hit<'a>,
            _: Millis,
        ) -> BackendFuture<'a, Refund> {
            MaybeReady::boxed(std::future::pending())
        }
        fn stat<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
        ) -> BackendFuture<'a, StrategyStat> {
            self.0.stat(key, strategy, hit)
        }
        fn reset(&self) -> BackendFuture<'_, ()> {
            self.0.reset()
        }
        fn close(&self) -> BackendFuture<'_, ()> {
            self.0.close()
        }
    }

    #[tokio::test]
    async fn a_refund_dropped_part_way_returns_the_rest_on_a_task() {
        let returned = HttpThrottle::builder("charges-drop-returned", "2/min")
            .backend(MemoryBackend::new())
            .build()
            .unwrap();
        let stalled = HttpThrottle::builder("charges-drop-stalled", "2/min")
            .backend(StalledRefunds(MemoryBackend::new()))
            .build()
            .unwrap();
        let (mut parts, ()) = Request::new(()).into_parts();
        for throttle in [&returned, &stalled] {
            let charge = Charge::new(throttle, EntryPoint::Enforce, None);
            let decision = throttle.enforce(&parts).await.unwrap();
            Charges::record(&mut parts, charge, &decision);
        }
        {
            // The stalled refund comes first (last recorded) and never finishes: the request
            // is dropped there, as when its client goes away.
            let mut refund = pin!(Charges::refund(&mut parts));
            let mut context = TaskContext::from_waker(Waker::noop());
            assert!(refund.as_mut().poll(&mut context).is_pending());
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // A check answers as a hit would: 1 left after it means both units are free again.
        let left = returned.check_request(&parts).await.unwrap();
        assert_eq!(
            left.remaining, 1,
            "the charge not yet returned came back on a task"
        );
    }
}
