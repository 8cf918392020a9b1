//! Refunds after the handler: [`RefundPolicy`] (which responses return the request's charges,
//! and whether a cancelled request does), applied by [`RefundLayer`] or
//! [`ThrottleLayer::refund`](crate::ThrottleLayer::refund).
//!
//! Every entry point inside the layer (its own throttles, `Throttled<T>`, `ThrottledAll`,
//! `#[throttled]`) records what it charged in the request's [`RefundSlot`]. When the response
//! matches the policy (a 5xx, say: the client should not pay for the server's failure), every
//! recorded charge is returned before the response leaves the layer; when the request is
//! cancelled before its response (the client went away, a timeout dropped the handler's
//! future), the charges are returned on a spawned task. A refund that fails is logged at WARN
//! and the units stay consumed, as for every refund.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::response::Response;
use http::Request;
use http::request::Parts;
use tower_layer::Layer;
use tower_service::Service;

use crate::charges::Charge;

type ResponsePredicate = Arc<dyn Fn(&Response) -> bool + Send + Sync>;

/// Which requests get their charges back after the handler ran.
///
/// ```
/// use traffik_axum::RefundPolicy;
///
/// // Server errors and cancelled requests cost nothing.
/// let policy = RefundPolicy::server_errors().on_cancel(true);
/// // Or any test of the response.
/// let not_found = RefundPolicy::when(|response| response.status() == 404);
/// # let _ = (policy, not_found);
/// ```
#[derive(Clone, Default)]
pub struct RefundPolicy {
    when: Option<ResponsePredicate>,
    on_cancel: bool,
}

impl RefundPolicy {
    /// No refunds (add a predicate or [`on_cancel`](Self::on_cancel)).
    #[must_use]
    pub fn new() -> Self {
        RefundPolicy::default()
    }

    /// Refunds responses with a 5xx status.
    #[must_use]
    pub fn server_errors() -> Self {
        RefundPolicy::when(|response| response.status().is_server_error())
    }

    /// Refunds responses for which `predicate` holds.
    #[must_use]
    pub fn when(predicate: impl Fn(&Response) -> bool + Send + Sync + 'static) -> Self {
        RefundPolicy {
            when: Some(Arc::new(predicate)),
            on_cancel: false,
        }
    }

    /// Whether a request cancelled before its response (its future dropped: the client
    /// disconnected, a timeout fired) gets its charges back.
    #[must_use]
    pub fn on_cancel(mut self, refund: bool) -> Self {
        self.on_cancel = refund;
        self
    }

    fn refunds(&self, response: &Response) -> bool {
        self.when.as_ref().is_some_and(|when| when(response))
    }
}

impl fmt::Debug for RefundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefundPolicy")
            .field("when", &self.when.is_some())
            .field("on_cancel", &self.on_cancel)
            .finish()
    }
}

/// The charges of one request that a refund policy may return, with the request as each entry
/// point saw it (to reach the same key). In the request's extensions while a refunding layer
/// is around it.
#[derive(Clone, Default)]
pub(crate) struct RefundSlot(Arc<Mutex<Vec<(Charge, Parts)>>>);

impl RefundSlot {
    /// Keeps `charge`, made on `parts`, if the request has a slot.
    pub(crate) fn keep(parts: &Parts, charge: &Charge) {
        if let Some(slot) = parts.extensions.get::<RefundSlot>() {
            slot.charges().push((charge.clone(), parts.clone()));
        }
    }

    /// Forgets the request's kept charges (they were returned another way: a refusal).
    pub(crate) fn forget(parts: &Parts) {
        if let Some(slot) = parts.extensions.get::<RefundSlot>() {
            slot.charges().clear();
        }
    }

    fn charges(&self) -> std::sync::MutexGuard<'_, Vec<(Charge, Parts)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Vec<(Charge, Parts)> {
        std::mem::take(&mut *self.charges())
    }

    /// Returns every kept charge, once.
    async fn refund(&self) {
        for (charge, parts) in self.take() {
            charge.refund(&parts).await;
        }
    }
}

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
        let slot = RefundSlot::default();
        request.extensions_mut().insert(slot.clone());
        Box::pin(refunding(
            self.inner.call(request),
            slot,
            self.policy.clone(),
        ))
    }
}

/// Drives `response` and returns the charges kept in `slot` as `policy` says.
pub(crate) async fn refunding<F, E>(
    response: F,
    slot: RefundSlot,
    policy: RefundPolicy,
) -> Result<Response, E>
where
    F: Future<Output = Result<Response, E>>,
{
    let mut guard = CancelGuard {
        slot: Some(slot),
        on_cancel: policy.on_cancel,
    };
    let response = response.await;
    let slot = guard.slot.take().unwrap_or_default();
    // An error of the inner service is not held across the refund (it need not be `Send`).
    let response = response?;
    if policy.refunds(&response) {
        slot.refund().await;
    }
    Ok(response)
}

/// Returns the kept charges on a spawned task if the request is dropped before its response.
struct CancelGuard {
    slot: Option<RefundSlot>,
    on_cancel: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take().filter(|_| self.on_cancel) else {
            return;
        };
        let charges = slot.take();
        if charges.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    for (charge, parts) in charges {
                        charge.refund(&parts).await;
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
