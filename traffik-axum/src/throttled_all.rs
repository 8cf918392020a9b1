//! [`ThrottledAll<T>`]: the extractor that enforces several policies as one, all or nothing.

use std::fmt;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponseParts, ResponseParts};
use http::HeaderMap;
use http::request::Parts;
use traffik_core::Decision;

use crate::backend::RequestBackend;
use crate::charges::{Charge, Charges};
use crate::headers_layer::HeaderSlot;
use crate::policy::ThrottlePolicies;
use crate::rejection::{Misconfigured, ThrottleRejection};
use crate::request_identities::RequestIdentities;
use crate::scope::EntryPoint;
use crate::throttle::HttpThrottle;

/// Enforces every throttle named by the tuple `T` on the request **as one**: the handler runs
/// only if every limit admits, and then all are charged; if any refuses, **none is charged**
/// and the first refusing throttle answers (a 429 with `Retry-After`, or its own handler).
/// On Redis, the limits on one backend are decided in one round trip.
///
/// Use it for limits that belong together (a burst and a sustained limit): with separate
/// [`Throttled`](crate::Throttled) arguments each limit is decided on its own, so a request
/// admitted by the first and refused by the second has already spent the first.
/// `#[throttled("2/s", "30/min")]` expands to this extractor.
///
/// Budgets are per client and, unless a throttle sets another [`Scope`](crate::Scope), per route template
/// and method. Every throttle's rate-limit headers are written (where two throttles write the
/// same header, the one with the fewest units left wins).
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::{HttpThrottle, ThrottledAll, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// // The application's default backend: both throttles decided atomically on it.
/// ThrottleRegistry::global().set_default_backend(MemoryBackend::new());
///
/// throttle_policy! {
///     pub Burst = HttpThrottle::builder("doc-all-extract-burst", "2/s").build();
///     pub Hourly = HttpThrottle::builder("doc-all-extract-hourly", "100/h").build();
/// }
///
/// async fn search(limits: ThrottledAll<(Burst, Hourly)>) -> String {
///     format!("{} left this hour", limits.decisions()[1].remaining)
/// }
///
/// let app: Router = Router::new().route("/search", get(search));
/// ```
pub struct ThrottledAll<T> {
    decisions: Vec<Decision>,
    headers: HeaderMap,
    policies: PhantomData<fn() -> T>,
}

impl<T> ThrottledAll<T> {
    /// Each throttle's decision, in the tuple's order.
    #[must_use]
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }
}

impl<T> fmt::Debug for ThrottledAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottledAll")
            .field("policies", &std::any::type_name::<T>())
            .field("decisions", &self.decisions)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for ThrottledAll<T> {
    fn clone(&self) -> Self {
        ThrottledAll {
            decisions: self.decisions.clone(),
            headers: self.headers.clone(),
            policies: PhantomData,
        }
    }
}

impl<S, T> FromRequestParts<S> for ThrottledAll<T>
where
    S: Send + Sync,
    T: ThrottlePolicies<S>,
{
    type Rejection = ThrottleRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let throttles = match T::throttles(state) {
            Ok(throttles) => throttles,
            Err(error) => {
                Charges::refund(parts).await;
                return Err(ThrottleRejection::Misconfigured(
                    Misconfigured::from_config(error),
                ));
            }
        };
        if throttles.iter().any(|throttle| {
            throttle
                .core()
                .memoizes_identity(|| RequestBackend::of(&parts.extensions))
        }) {
            RequestIdentities::ensure(&mut parts.extensions);
        }
        let charges: Vec<Charge> = throttles
            .iter()
            .map(|throttle| Charge::new(throttle, EntryPoint::Extractor, None))
            .collect();
        let verdict = match HttpThrottle::try_enforce_all_now(&charges, parts) {
            Some(verdict) => verdict,
            None => Box::pin(HttpThrottle::enforce_all_scoped(&charges, parts)).await,
        };
        // A refusal returns what earlier entry points of the request charged.
        let decisions = match verdict {
            Ok(decisions) => decisions,
            Err(rejection) => {
                Charges::refund(parts).await;
                return Err(rejection);
            }
        };
        for (charge, decision) in charges.into_iter().zip(&decisions) {
            Charges::record(parts, charge, decision);
        }
        let mut headers = HeaderMap::new();
        HttpThrottle::write_all_headers(&throttles, &decisions, &mut headers);
        if !headers.is_empty()
            && let Some(slot) = parts.extensions.get::<HeaderSlot>()
        {
            slot.add(&headers);
        }
        Ok(ThrottledAll {
            decisions,
            headers,
            policies: PhantomData,
        })
    }
}

impl<T> IntoResponseParts for ThrottledAll<T> {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().extend(self.headers);
        Ok(res)
    }
}
