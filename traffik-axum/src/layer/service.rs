//! [`ThrottleService`]: decides each request against the layer's rules, then calls the inner
//! service (or answers the refusal).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, Request};
use tower_service::Service;

use super::future::{ResponseFuture, add_headers};
use crate::backend::RequestBackend;
use crate::call::CallOptions;
use crate::charges::{Charge, Charges};
use crate::refund::{RefundPolicy, RefundSlot, refunding};
use crate::request_identities::RequestIdentities;
use crate::rule::ThrottleRule;
use crate::scope::EntryPoint;
use crate::throttle::HttpThrottle;

/// The service of a [`ThrottleLayer`](super::ThrottleLayer).
#[derive(Clone)]
pub struct ThrottleService<S> {
    inner: S,
    rules: Arc<[ThrottleRule]>,
    backend: Option<RequestBackend>,
    refund: Option<RefundPolicy>,
}

impl<S> ThrottleService<S> {
    pub(super) fn new(
        inner: S,
        rules: Arc<[ThrottleRule]>,
        backend: Option<RequestBackend>,
        refund: Option<RefundPolicy>,
    ) -> Self {
        ThrottleService {
            inner,
            rules,
            backend,
            refund,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
            if rule.criteria.async_predicate().is_some() {
                return Pass::Suspend;
            }
            let charge = Charge::new(&rule.throttle, EntryPoint::Layer, rule.cost);
            return match rule.throttle.try_enforce_now(
                parts,
                EntryPoint::Layer,
                rule.cost,
                Some(charge.at()),
            ) {
                Some(Ok(decision)) => {
                    rule.throttle.write_headers(&decision, headers);
                    let charge = charge.fixing_scope(parts);
                    Charges::record(parts, charge, &decision);
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
        .any(|&index| rules[index].criteria.async_predicate().is_some())
    {
        return Pass::Suspend;
    }
    let charges: Vec<Charge> = several
        .iter()
        .map(|&index| Charge::new(&rules[index].throttle, EntryPoint::Layer, rules[index].cost))
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
        Charges::record(parts, charge, decision);
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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Some(policy) = &self.refund else {
            return self.decide(request);
        };
        let policy = policy.clone();
        let slot = RefundSlot::enter(request.extensions_mut());
        let response = self.decide(request);
        ResponseFuture::boxed(Box::pin(refunding(response, slot, policy)))
    }
}

impl<S> ThrottleService<S> {
    /// Decides the request and passes it on if every matching rule admits it.
    fn decide<B>(&mut self, request: Request<B>) -> ResponseFuture<S::Future, S::Error>
    where
        S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        let (mut parts, body) = request.into_parts();
        if let Some(backend) = &self.backend
            && parts.extensions.get::<RequestBackend>().is_none()
        {
            parts.extensions.insert(backend.clone());
        }
        if self.rules.iter().any(|rule| {
            rule.throttle
                .core()
                .memoizes_identity(|| RequestBackend::of(&parts.extensions))
        }) {
            RequestIdentities::ensure(&mut parts.extensions);
        }
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
        if let Some(predicate) = rule.criteria.async_predicate()
            && !predicate(&parts).await
        {
            continue;
        }
        charges.push(Charge::new(&rule.throttle, EntryPoint::Layer, rule.cost));
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
                .enforce_scoped(&parts, EntryPoint::Layer, call)
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
