//! [`Throttled<T>`]: the extractor that enforces policy `T` before the handler runs.

use std::fmt;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponseParts, ResponseParts};
use http::HeaderMap;
use http::request::Parts;
use traffik_core::Decision;

use crate::backend::RequestBackend;
use crate::call::CallOptions;
use crate::charges::{Charge, Charges};
use crate::headers_layer::HeaderSlot;
use crate::policy::ThrottlePolicy;
use crate::rejection::{Misconfigured, ThrottleRejection};
use crate::request_identities::RequestIdentities;
use crate::scope::EntryPoint;

/// Enforces the throttle named by `T` on the request: the handler runs only if the hit is
/// allowed; otherwise the request is answered with the [`ThrottleRejection`] (a 429 with
/// `Retry-After`, or the throttle's own handler). Several `Throttled<..>` arguments enforce
/// several limits, in argument order; the first refusal answers, and **a refused request
/// consumes nothing**: the refusal returns what the earlier arguments (and any
/// [`ThrottleLayer`](crate::ThrottleLayer) in front) charged. [`ThrottledAll`](crate::ThrottledAll)
/// decides several limits atomically instead, with no charge to return (see `docs/http.md`).
///
/// Budgets are per client and, unless the throttle sets another [`Scope`](crate::Scope), per route template
/// and method (`GET /items/{id}` is one budget for every id).
///
/// The throttle's rate-limit headers reach a success response when the router has a
/// [`RateLimitHeadersLayer`](crate::RateLimitHeadersLayer), or when the handler returns the
/// extractor (`(throttled, body)`); refusals carry them always.
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::{HttpThrottle, Throttled, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// throttle_policy! {
///     pub PerClient = HttpThrottle::builder("doc-extract", "5/10s")
///         .backend(MemoryBackend::new())
///         .headers(Headers::always())
///         .build();
/// }
///
/// async fn index(throttled: Throttled<PerClient>) -> (Throttled<PerClient>, &'static str) {
///     (throttled, "hello")
/// }
///
/// let app: Router = Router::new().route("/", get(index));
/// ```
pub struct Throttled<T> {
    decision: Decision,
    headers: HeaderMap,
    policy: PhantomData<fn() -> T>,
}

impl<T> Throttled<T> {
    /// The hit's decision (remaining units, reset time, …).
    #[must_use]
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

impl<T> fmt::Debug for Throttled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttled")
            .field("policy", &std::any::type_name::<T>())
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Throttled<T> {
    fn clone(&self) -> Self {
        Throttled {
            decision: self.decision,
            headers: self.headers.clone(),
            policy: PhantomData,
        }
    }
}

impl<S, T> FromRequestParts<S> for Throttled<T>
where
    S: Send + Sync,
    T: ThrottlePolicy<S>,
{
    type Rejection = ThrottleRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let throttle = match T::throttle(state) {
            Ok(throttle) => throttle,
            Err(error) => {
                Charges::refund(parts).await;
                return Err(ThrottleRejection::Misconfigured(
                    Misconfigured::from_config(error),
                ));
            }
        };
        if throttle
            .core()
            .memoizes_identity(|| RequestBackend::of(&parts.extensions))
        {
            RequestIdentities::ensure(&mut parts.extensions);
        }
        // Decide without a future when the throttle can (in memory, synchronous identifier);
        // the general path is boxed so it does not enlarge every handler's future.
        let charge = Charge::new(throttle, EntryPoint::Extractor, None);
        let verdict =
            match throttle.try_enforce_now(parts, EntryPoint::Extractor, None, Some(charge.at())) {
                Some(verdict) => verdict,
                None => {
                    let call = CallOptions {
                        now: Some(charge.at()),
                        ..CallOptions::default()
                    };
                    Box::pin(throttle.enforce_scoped(parts, EntryPoint::Extractor, call)).await
                }
            };
        // A refusal returns what earlier limits of the request charged; an admission is
        // recorded for a later limit's refusal to return.
        let decision = match verdict {
            Ok(decision) => decision,
            Err(rejection) => {
                Charges::refund(parts).await;
                return Err(rejection);
            }
        };
        Charges::record(parts, charge, &decision);
        let mut headers = HeaderMap::new();
        throttle.write_headers(&decision, &mut headers);
        if !headers.is_empty()
            && let Some(slot) = parts.extensions.get::<HeaderSlot>()
        {
            slot.add(&headers);
        }
        Ok(Throttled {
            decision,
            headers,
            policy: PhantomData,
        })
    }
}

impl<T> IntoResponseParts for Throttled<T> {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().extend(self.headers);
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use axum::response::IntoResponse;
    use http::{Request, StatusCode};

    use super::*;
    use crate::HttpThrottle;
    use crate::prelude::*;

    crate::throttle_policy! {
        TwoPerMinute = HttpThrottle::builder("extract-two-per-minute", "2/min")
            .backend(MemoryBackend::new())
            .headers(Headers::always())
            .build();
        Broken = HttpThrottle::builder("not a valid uid", "2/min").build();
    }

    fn parts(peer: [u8; 4]) -> Parts {
        let (mut parts, ()) = Request::builder().uri("/x").body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from((peer, 1))));
        parts
    }

    #[tokio::test]
    async fn allows_up_to_the_limit_then_rejects_with_429() {
        let mut client = parts([198, 51, 100, 1]);
        let first = Throttled::<TwoPerMinute>::from_request_parts(&mut client, &())
            .await
            .unwrap();
        assert_eq!(first.decision().remaining, 1);
        let response = (first, "ok").into_response();
        assert_eq!(response.headers()["x-ratelimit-remaining"], "1");
        Throttled::<TwoPerMinute>::from_request_parts(&mut client, &())
            .await
            .unwrap();
        let rejection = Throttled::<TwoPerMinute>::from_request_parts(&mut client, &())
            .await
            .unwrap_err();
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
        // Another client has its own budget.
        let mut other = parts([198, 51, 100, 2]);
        assert!(
            Throttled::<TwoPerMinute>::from_request_parts(&mut other, &())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_policy_that_cannot_be_built_answers_500_with_the_reason() {
        let rejection = Throttled::<Broken>::from_request_parts(&mut parts([192, 0, 2, 1]), &())
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            rejection.to_string().contains("not a valid uid"),
            "{rejection}"
        );
    }
}
