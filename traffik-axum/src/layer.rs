//! [`ThrottleLayer`] and [`ThrottleService`]: throttles as tower middleware, for a whole router,
//! a route, or many throttles with path/method/predicate rules.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, Request};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::enforce::CallOptions;
use crate::rule::ThrottleRule;
use crate::throttle::{HttpThrottle, Scope};

/// Applies throttles to every request through it: `Router::layer` for a router-wide limit,
/// `route_layer` or `MethodRouter::layer` for one route, and several [`ThrottleRule`]s for
/// middleware-style matching by path, method and predicate.
///
/// Rules run in order; the first that refuses answers (a 429, never a service error), and the
/// rest do not run. Each matching throttle's rate-limit headers are added to the response. By
/// default a layer's throttle keeps **one budget per client across everything the layer
/// covers** ([`Scope::Shared`]); give the throttle another [`Scope`] for per-route budgets
/// (which need the layer on the `Router`, where it runs after routing). CORS preflights are
/// not counted unless the throttle says
/// [`count_preflights`](crate::HttpThrottleBuilder::count_preflights); put tower-http's
/// `CorsLayer` outside this layer so refusals carry the CORS headers.
///
/// With synchronous inputs and the in-memory backend the decision is made inside
/// `Service::call`, with no boxed future; otherwise the request takes a boxed asynchronous path.
///
/// ```
/// use axum::{Router, routing::get};
/// use http::Method;
/// use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottleRule};
/// use traffik_axum::prelude::*;
///
/// let global = HttpThrottle::builder("doc-layer-global", "1000/min").backend(MemoryBackend::new()).build()?;
/// let writes = HttpThrottle::builder("doc-layer-writes", "10/min").backend(MemoryBackend::new()).build()?;
///
/// let app: Router = Router::new()
///     .route("/items", get(|| async { "items" }).post(|| async { "created" }))
///     .layer(ThrottleLayer::new(global).rule(ThrottleRule::new(writes).methods([Method::POST])));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct ThrottleLayer {
    rules: Arc<[ThrottleRule]>,
}

impl ThrottleLayer {
    /// A layer enforcing `throttle` on every request.
    #[must_use]
    pub fn new(throttle: HttpThrottle) -> Self {
        Self::from_rules([ThrottleRule::new(throttle)])
    }

    /// A layer enforcing these rules, in order.
    #[must_use]
    pub fn from_rules(rules: impl IntoIterator<Item = ThrottleRule>) -> Self {
        ThrottleLayer {
            rules: rules.into_iter().collect(),
        }
    }

    /// Adds a rule after the others.
    #[must_use]
    pub fn rule(self, rule: ThrottleRule) -> Self {
        let mut rules = self.rules.to_vec();
        rules.push(rule);
        ThrottleLayer {
            rules: rules.into(),
        }
    }
}

impl fmt::Debug for ThrottleLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleLayer")
            .field("rules", &self.rules)
            .finish()
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = ThrottleService<S>;

    fn layer(&self, inner: S) -> ThrottleService<S> {
        ThrottleService {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// The service of a [`ThrottleLayer`].
#[derive(Clone)]
pub struct ThrottleService<S> {
    inner: S,
    rules: Arc<[ThrottleRule]>,
}

impl<S> fmt::Debug for ThrottleService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleService")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// What the synchronous pass over the rules concluded.
enum Pass {
    /// Every rule allowed (or did not apply).
    Allowed,
    /// A rule refused: its response.
    Refused(Response),
    /// Rule `index` needs the asynchronous path.
    Suspend(usize),
}

/// Runs the rules from `start` as far as they go without awaiting.
fn sync_pass(rules: &[ThrottleRule], start: usize, parts: &Parts, headers: &mut HeaderMap) -> Pass {
    for (index, rule) in rules.iter().enumerate().skip(start) {
        if !rule.matches_cheap(parts) {
            continue;
        }
        if rule.async_predicate.is_some() {
            return Pass::Suspend(index);
        }
        match rule
            .throttle
            .try_enforce_now(parts, Scope::Shared, rule.cost)
        {
            Some(Ok(decision)) => rule.throttle.write_headers(&decision, headers),
            Some(Err(rejection)) => return Pass::Refused(rejection.into_response()),
            None => return Pass::Suspend(index),
        }
    }
    Pass::Allowed
}

impl<S, B> Service<Request<B>> for ThrottleService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let mut headers = HeaderMap::new();
        match sync_pass(&self.rules, 0, &parts, &mut headers) {
            Pass::Allowed => {
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)), headers)
            }
            Pass::Refused(response) => ResponseFuture::ready(response),
            Pass::Suspend(index) => {
                // The ready service goes to the future; this one keeps a fresh clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(Box::pin(run_async(
                    inner,
                    self.rules.clone(),
                    index,
                    parts,
                    body,
                    headers,
                )))
            }
        }
    }
}

async fn run_async<S, B>(
    mut inner: S,
    rules: Arc<[ThrottleRule]>,
    mut index: usize,
    parts: Parts,
    body: B,
    mut headers: HeaderMap,
) -> Result<Response, S::Error>
where
    S: Service<Request<B>, Response = Response>,
{
    while let Some(rule) = rules.get(index) {
        index += 1;
        if !rule.matches_cheap(&parts) {
            continue;
        }
        if let Some(predicate) = &rule.async_predicate
            && !predicate(&parts).await
        {
            continue;
        }
        match rule
            .throttle
            .enforce_scoped(&parts, Scope::Shared, CallOptions::cost(rule.cost))
            .await
        {
            Ok(decision) => rule.throttle.write_headers(&decision, &mut headers),
            Err(rejection) => return Ok(rejection.into_response()),
        }
        // Later rules may again decide without awaiting.
        match sync_pass(&rules, index, &parts, &mut headers) {
            Pass::Allowed => break,
            Pass::Refused(response) => return Ok(response),
            Pass::Suspend(next) => index = next,
        }
    }
    let mut response = inner.call(Request::from_parts(parts, body)).await?;
    add_headers(&mut response, headers);
    Ok(response)
}

/// Adds the rate-limit headers the handler did not set itself.
fn add_headers(response: &mut Response, headers: HeaderMap) {
    if headers.is_empty() {
        return;
    }
    let target = response.headers_mut();
    for (name, value) in headers {
        if let Some(name) = name
            && !target.contains_key(&name)
        {
            target.insert(name, value);
        }
    }
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project! {
    /// The response future of a [`ThrottleService`].
    pub struct ResponseFuture<F, E> {
        #[pin]
        state: State<F, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, E> {
        // Allowed without awaiting: the inner service's future.
        Inner {
            #[pin]
            future: F,
            headers: HeaderMap,
        },
        // Refused without awaiting.
        Ready {
            response: Option<Response>,
        },
        // The asynchronous path.
        Boxed {
            future: BoxedResponse<E>,
        },
    }
}

impl<F, E> ResponseFuture<F, E> {
    fn inner(future: F, headers: HeaderMap) -> Self {
        ResponseFuture {
            state: State::Inner { future, headers },
        }
    }

    fn ready(response: Response) -> Self {
        ResponseFuture {
            state: State::Ready {
                response: Some(response),
            },
        }
    }

    fn boxed(future: BoxedResponse<E>) -> Self {
        ResponseFuture {
            state: State::Boxed { future },
        }
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, headers } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                add_headers(&mut response, std::mem::take(headers));
                Poll::Ready(Ok(response))
            }
            StateProj::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Inner { .. } => "ResponseFuture::Inner",
            State::Ready { .. } => "ResponseFuture::Ready",
            State::Boxed { .. } => "ResponseFuture::Boxed",
        })
    }
}
