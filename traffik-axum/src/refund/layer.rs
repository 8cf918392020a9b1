//! [`RefundLayer`] and the future that applies a [`RefundPolicy`] to a response.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use super::{RefundPolicy, RefundSlot};

/// Returns a request's charges when the response or a cancellation matches its
/// [`RefundPolicy`]: for the charges of `Throttled<T>`, `ThrottledAll` and `#[throttled]`
/// inside it (a [`ThrottleLayer`](crate::ThrottleLayer) takes the policy itself:
/// [`refund`](crate::ThrottleLayer::refund)). Put it outside the routes whose charges it
/// returns; the response waits for the refund (a 5xx only), a cancelled request's refund runs
/// on a spawned task.
///
/// ```
/// use axum::{Router, routing::get};
/// use axum::http::StatusCode;
/// use traffik_axum::{HttpThrottle, RefundLayer, RefundPolicy, Throttled, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// throttle_policy! {
///     pub Reports = HttpThrottle::builder("doc-refund-layer", "10/min")
///         .backend(MemoryBackend::new())
///         .build();
/// }
///
/// async fn report(_: Throttled<Reports>) -> Result<&'static str, StatusCode> {
///     Err(StatusCode::BAD_GATEWAY) // the upstream failed: this one is on us
/// }
///
/// let app: Router = Router::new()
///     .route("/report", get(report))
///     .layer(RefundLayer::new(RefundPolicy::server_errors().on_cancel(true)));
/// ```
#[derive(Debug, Clone)]
pub struct RefundLayer {
    policy: RefundPolicy,
}

impl RefundLayer {
    /// A layer applying `policy`.
    #[must_use]
    pub fn new(policy: RefundPolicy) -> Self {
        RefundLayer { policy }
    }
}

impl<S> Layer<S> for RefundLayer {
    type Service = RefundService<S>;

    fn layer(&self, inner: S) -> RefundService<S> {
        RefundService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of a [`RefundLayer`].
#[derive(Debug, Clone)]
pub struct RefundService<S> {
    inner: S,
    policy: RefundPolicy,
}

impl<S, B> Service<Request<B>> for RefundService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let slot = RefundSlot::enter(request.extensions_mut());
        Box::pin(refunding(
            self.inner.call(request),
            slot,
            self.policy.clone(),
        ))
    }
}

/// Drives `response` and returns the charges kept in `slot` as `policy` says. The slot is
/// emptied whatever happens, so no charge outlives the request.
pub(crate) async fn refunding<F, E>(
    response: F,
    slot: RefundSlot,
    policy: RefundPolicy,
) -> Result<Response, E>
where
    F: Future<Output = Result<Response, E>>,
{
    let mut guard = Guard {
        slot,
        refund: policy.on_cancel,
    };
    let response = response.await;
    guard.refund = false;
    // An error of the inner service is not held across the refund (it need not be `Send`).
    let response = response?;
    if policy.refunds(&response) {
        // Popped one by one: if this future is dropped meanwhile, the guard returns the rest.
        guard.refund = true;
        while let Some(kept) = guard.slot.pop() {
            kept.refund().await;
        }
    }
    guard.refund = false;
    Ok(response)
}

/// Empties the slot when the request ends; returns what is left on a spawned task when
/// `refund` is set (a cancelled request under `on_cancel`, or a refund cut short).
struct Guard {
    slot: RefundSlot,
    refund: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let left = self.slot.take();
        if !self.refund || left.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    for kept in left {
                        kept.refund().await;
                    }
                });
            }
            Err(_) => tracing::warn!(
                target: "traffik",
                "a cancelled request's charges could not be returned outside a Tokio runtime; \
                 they stay consumed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use http::StatusCode;
    use traffik_core::MemoryBackend;

    use super::*;
    use crate::HttpThrottle;
    use crate::charges::{Charge, Charges};
    use crate::scope::EntryPoint;

    #[tokio::test]
    async fn the_slot_is_emptied_whatever_the_response_and_keeps_no_cycle() {
        let throttle = HttpThrottle::builder("refund-slot-empty", "5/min")
            .backend(MemoryBackend::new())
            .build()
            .unwrap();
        let (mut parts, ()) = Request::new(()).into_parts();
        let slot = RefundSlot::enter(&mut parts.extensions);
        let charge = Charge::new(&throttle, EntryPoint::Enforce, None);
        let decision = throttle.enforce(&parts).await.unwrap();
        Charges::record(&mut parts, charge, &decision);
        let kept = slot.take();
        assert_eq!(kept.len(), 1);
        assert!(
            kept[0].parts().extensions.get::<RefundSlot>().is_none(),
            "a kept request does not point back at its slot"
        );
        let charge = Charge::new(&throttle, EntryPoint::Enforce, None);
        Charges::record(&mut parts, charge, &decision);
        let ok = async { Ok::<_, ()>(StatusCode::OK.into_response()) };
        let response = refunding(ok, slot.clone(), RefundPolicy::server_errors()).await;
        assert_eq!(response.unwrap().status(), StatusCode::OK);
        assert!(
            slot.take().is_empty(),
            "emptied after a response it does not refund"
        );
    }
}
