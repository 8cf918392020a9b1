//! [`RateLimitHeadersLayer`]: carries the rate-limit headers of `Throttled<T>` extractors to the
//! response, so handlers need not return the extractor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::response::Response;
use http::{HeaderMap, Request};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Adds the rate-limit headers of every [`Throttled<T>`](crate::Throttled) extractor that ran
/// for a request to its response (headers the handler set itself win).
///
/// Without it, a handler adds them by returning the extractor (`(throttled, body)`); refusals
/// carry them either way, and [`ThrottleLayer`](crate::ThrottleLayer) adds its own.
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::{HttpThrottle, RateLimitHeadersLayer, Throttled, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// throttle_policy! {
///     pub Api = HttpThrottle::builder("doc-headers-layer", "100/min")
///         .backend(MemoryBackend::new())
///         .headers(Headers::always())
///         .build();
/// }
///
/// async fn handler(_: Throttled<Api>) -> &'static str { "ok" } // headers added anyway
///
/// let app: Router = Router::new().route("/", get(handler)).layer(RateLimitHeadersLayer::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitHeadersLayer;

impl RateLimitHeadersLayer {
    /// The layer.
    #[must_use]
    pub fn new() -> Self {
        RateLimitHeadersLayer
    }
}

impl<S> Layer<S> for RateLimitHeadersLayer {
    type Service = RateLimitHeadersService<S>;

    fn layer(&self, inner: S) -> RateLimitHeadersService<S> {
        RateLimitHeadersService { inner }
    }
}

/// The service of a [`RateLimitHeadersLayer`].
#[derive(Debug, Clone)]
pub struct RateLimitHeadersService<S> {
    inner: S,
}

/// Where extractors leave their headers for the response (in the request's extensions).
#[derive(Clone, Default)]
pub(crate) struct HeaderSlot(Arc<Mutex<HeaderMap>>);

impl HeaderSlot {
    pub(crate) fn add(&self, headers: &HeaderMap) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, value) in headers {
            slot.insert(name, value.clone());
        }
    }

    fn take(&self) -> HeaderMap {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for HeaderSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeaderSlot")
    }
}

impl<S, B> Service<Request<B>> for RateLimitHeadersService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RateLimitHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let slot = HeaderSlot::default();
        request.extensions_mut().insert(slot.clone());
        RateLimitHeadersFuture {
            future: self.inner.call(request),
            slot,
        }
    }
}

pin_project! {
    /// The response future of [`RateLimitHeadersService`].
    pub struct RateLimitHeadersFuture<F> {
        #[pin]
        future: F,
        slot: HeaderSlot,
    }
}

impl<F, E> Future for RateLimitHeadersFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        let target = response.headers_mut();
        for (name, value) in this.slot.take() {
            if let Some(name) = name
                && !target.contains_key(&name)
            {
                target.insert(name, value);
            }
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for RateLimitHeadersFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimitHeadersFuture")
    }
}
