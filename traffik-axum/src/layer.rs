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

use crate::call::CallOptions;
use crate::charges::{Charge, Charges};
use crate::rule::ThrottleRule;
use crate::throttle::{HttpThrottle, Scope};

/// Applies throttles to every request through it: `Router::layer` for a router-wide limit,
/// `route_layer` or `MethodRouter::layer` for one route, and several [`ThrottleRule`]s for
/// middleware-style matching by path, method and predicate.
///
/// Every rule that matches a request applies, and **they are decided as one**: either each
/// admits and all are charged, or none is charged and the first refusing rule answers (a 429,
/// never a service error), whatever the order the rules are written in and however many
/// requests race (see [`hit_all`](traffik_core::throttle::hit_all)). Each matching throttle's
/// rate-limit headers are added to the response. By
/// default a layer's throttle keeps **one budget per client across everything the layer
/// covers** ([`Scope::Shared`]); give the throttle another [`Scope`] for per-route budgets
/// (which need the layer on the `Router`, where it runs after routing). CORS preflights spend
/// a budget of their own unless the throttle says
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
    /// Every rule allowed (or none applied).
    Allowed,
    /// A rule refused: its response.
    Refused(Response),
    /// The decision needs the asynchronous path.
    Suspend,
}

/// The rules that apply to a request by their synchronous criteria (each rule's criteria asked
/// once): none or one without allocating, several as a list.
enum Applying {
    None,
    One(usize),
    Several(Vec<usize>),
}

fn applying(rules: &[ThrottleRule], parts: &Parts) -> Applying {
    let mut found = Applying::None;
    for (index, rule) in rules.iter().enumerate() {
        if !rule.matches_cheap(parts) {
            continue;
        }
        found = match found {
            Applying::None => Applying::One(index),
            Applying::One(first) => Applying::Several(vec![first, index]),
            Applying::Several(mut several) => {
                several.push(index);
                Applying::Several(several)
            }
        };
    }
    found
}

/// Decides without awaiting when it can. One rule takes the throttle's own fast path; several
/// are decided as one (all or nothing). Admitted charges are recorded in the request.
fn sync_pass(
    rules: &[ThrottleRule],
    applying: &Applying,
    parts: &mut Parts,
    headers: &mut HeaderMap,
) -> Pass {
    let several = match applying {
        Applying::None => return Pass::Allowed,
        Applying::One(index) => {
            let rule = &rules[*index];
            if rule.async_predicate.is_some() {
                return Pass::Suspend;
            }
            let charge = Charge::new(&rule.throttle, Scope::Shared, rule.cost);
            return match rule.throttle.try_enforce_now(
                parts,
                Scope::Shared,
                rule.cost,
                Some(charge.at()),
            ) {
                Some(Ok(decision)) => {
                    rule.throttle.write_headers(&decision, headers);
                    let charge = charge.fixing_scope(parts);
                    Charges::record(&mut parts.extensions, charge, &decision);
                    Pass::Allowed
                }
                Some(Err(rejection)) => Pass::Refused(rejection.into_response()),
                None => Pass::Suspend,
            };
        }
        Applying::Several(several) => several,
    };
    if several
        .iter()
        .any(|&index| rules[index].async_predicate.is_some())
    {
        return Pass::Suspend;
    }
    let charges: Vec<Charge> = several
        .iter()
        .map(|&index| Charge::new(&rules[index].throttle, Scope::Shared, rules[index].cost))
        .collect();
    match HttpThrottle::try_enforce_all_now(&charges, parts) {
        Some(Ok(decisions)) => {
            write_headers(&charges, &decisions, headers);
            record(parts, charges, &decisions);
            Pass::Allowed
        }
        Some(Err(rejection)) => Pass::Refused(rejection.into_response()),
        None => Pass::Suspend,
    }
}

/// Records the admitted charges of the rules in the request.
fn record(parts: &mut Parts, charges: Vec<Charge>, decisions: &[traffik_core::Decision]) {
    for (charge, decision) in charges.into_iter().zip(decisions) {
        let charge = charge.fixing_scope(parts);
        Charges::record(&mut parts.extensions, charge, decision);
    }
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
        let (mut parts, body) = request.into_parts();
        let mut headers = HeaderMap::new();
        let applying = applying(&self.rules, &parts);
        match sync_pass(&self.rules, &applying, &mut parts, &mut headers) {
            Pass::Allowed => {
                ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)), headers)
            }
            // What an outer layer charged goes back before the refusal answers.
            Pass::Refused(response) if Charges::any(&parts.extensions) => {
                ResponseFuture::boxed(Box::pin(async move {
                    Charges::refund(&mut parts).await;
                    Ok(response)
                }))
            }
            Pass::Refused(response) => ResponseFuture::ready(response),
            Pass::Suspend => {
                // The ready service goes to the future; this one keeps a fresh clone.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::boxed(Box::pin(run_async(
                    inner,
                    self.rules.clone(),
                    applying,
                    parts,
                    body,
                )))
            }
        }
    }
}

async fn run_async<S, B>(
    mut inner: S,
    rules: Arc<[ThrottleRule]>,
    applying: Applying,
    mut parts: Parts,
    body: B,
) -> Result<Response, S::Error>
where
    S: Service<Request<B>, Response = Response>,
{
    let candidates = match applying {
        Applying::None => Vec::new(),
        Applying::One(index) => vec![index],
        Applying::Several(several) => several,
    };
    let mut charges: Vec<Charge> = Vec::with_capacity(candidates.len());
    for index in candidates {
        let rule = &rules[index];
        if let Some(predicate) = &rule.async_predicate
            && !predicate(&parts).await
        {
            continue;
        }
        charges.push(Charge::new(&rule.throttle, Scope::Shared, rule.cost));
    }
    let decided = match charges.as_slice() {
        [] => Ok(Vec::new()),
        [charge] => {
            let call = CallOptions {
                now: Some(charge.at()),
                ..CallOptions::cost(charge.cost())
            };
            charge
                .throttle()
                .enforce_scoped(&parts, Scope::Shared, call)
                .await
                .map(|decision| vec![decision])
        }
        several => HttpThrottle::enforce_all_scoped(several, &parts).await,
    };
    let decisions = match decided {
        Ok(decisions) => decisions,
        Err(rejection) => {
            // What an outer layer charged goes back before the refusal answers.
            Charges::refund(&mut parts).await;
            return Ok(rejection.into_response());
        }
    };
    let mut headers = HeaderMap::new();
    write_headers(&charges, &decisions, &mut headers);
    record(&mut parts, charges, &decisions);
    let mut response = inner.call(Request::from_parts(parts, body)).await?;
    add_headers(&mut response, headers);
    Ok(response)
}

/// The headers of the rules' decisions (where two write one header, the fewest units left wins).
fn write_headers(charges: &[Charge], decisions: &[traffik_core::Decision], out: &mut HeaderMap) {
    let throttles: Vec<&HttpThrottle> = charges.iter().map(Charge::throttle).collect();
    HttpThrottle::write_all_headers(&throttles, decisions, out);
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use http::StatusCode;
    use tower::ServiceExt;
    use traffik_core::MemoryBackend;

    use super::*;

    fn throttle(uid: &str, rate: &str) -> HttpThrottle {
        HttpThrottle::builder(uid, rate)
            .backend(MemoryBackend::new())
            .build()
            .unwrap()
    }

    /// The status of one `GET /` from 192.0.2.1 through `app`.
    async fn status(app: &Router) -> StatusCode {
        let mut request = Request::get("/").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 1))));
        app.clone().oneshot(request).await.unwrap().status()
    }

    async fn statuses(app: &Router, count: usize) -> Vec<u16> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(status(app).await.as_u16());
        }
        out
    }

    fn app(layer: ThrottleLayer) -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer)
    }

    #[tokio::test]
    async fn the_synchronous_path_admits_to_the_limit_then_answers_429() {
        let app = app(ThrottleLayer::new(throttle("layer-sync", "2/min")));
        assert_eq!(statuses(&app, 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn an_async_predicate_takes_the_asynchronous_path_and_decides_alike() {
        let layer =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-async", "2/min"))
                .predicate_async(|_| Box::pin(async { true }))]);
        assert_eq!(statuses(&app(layer), 3).await, [200, 200, 429]);
        let skipped =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-async-skip", "1/min"))
                .predicate_async(|_| Box::pin(async { false }))]);
        assert_eq!(statuses(&app(skipped), 3).await, [200, 200, 200]);
    }

    #[tokio::test]
    async fn a_rules_cost_is_charged_on_both_paths() {
        let sync =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-cost", "5/min")).cost(2)]);
        assert_eq!(statuses(&app(sync), 3).await, [200, 200, 429]);
        let asynchronous =
            ThrottleLayer::from_rules([ThrottleRule::new(throttle("layer-cost-async", "5/min"))
                .cost(2)
                .predicate_async(|_| Box::pin(async { true }))]);
        assert_eq!(statuses(&app(asynchronous), 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn several_rules_are_decided_as_one() {
        let layer = ThrottleLayer::from_rules([
            ThrottleRule::new(throttle("layer-pair-wide", "3/min")),
            ThrottleRule::new(throttle("layer-pair-narrow", "1/min")),
        ]);
        let app = app(layer);
        assert_eq!(statuses(&app, 3).await, [200, 429, 429]);
    }
}
