//! [`ThrottleLayer`]: the rules, applied to every service it wraps.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use traffik_core::backend::Backend;

use super::ThrottleService;
use crate::backend::RequestBackend;
use crate::refund::RefundPolicy;
use crate::rule::ThrottleRule;
use crate::throttle::HttpThrottle;

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
/// covers** ([`Scope::Shared`](crate::Scope::Shared)); give the throttle another [`Scope`](crate::Scope) for per-route budgets
/// (which need the layer on the `Router`, where it runs after routing). CORS preflights spend
/// a budget of their own unless the throttle says
/// [`count_preflights`](crate::HttpThrottleBuilderExt::count_preflights); put tower-http's
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
    backend: Option<RequestBackend>,
    refund: Option<RefundPolicy>,
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
            backend: None,
            refund: None,
        }
    }

    /// The rules, in order.
    #[must_use]
    pub fn rules(&self) -> &[ThrottleRule] {
        &self.rules
    }

    /// Adds a rule after the others.
    #[must_use]
    pub fn rule(self, rule: ThrottleRule) -> Self {
        let mut rules = self.rules.to_vec();
        rules.push(rule);
        ThrottleLayer {
            rules: rules.into(),
            backend: self.backend,
            refund: self.refund,
        }
    }

    /// Returns the request's charges when its response or its cancellation matches `policy`:
    /// this layer's charges and those of every entry point inside it (`Throttled<T>`,
    /// `ThrottledAll`, `#[throttled]`, inner layers). See [`RefundPolicy`]; the reference's
    /// quota contexts let a handler do this by hand.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use traffik_axum::{HttpThrottle, RefundPolicy, ThrottleLayer};
    /// use traffik_axum::prelude::*;
    ///
    /// let api = HttpThrottle::builder("doc-layer-refund", "100/min").backend(MemoryBackend::new()).build()?;
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(ThrottleLayer::new(api).refund(RefundPolicy::server_errors().on_cancel(true)));
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[must_use]
    pub fn refund(mut self, policy: RefundPolicy) -> Self {
        self.refund = Some(policy);
        self
    }

    /// The backend of this layer's throttles that have none of their own (the reference's
    /// middleware-level `backend`). It is placed in each request's extensions as a
    /// [`RequestBackend`] unless an outer layer already put one there (a tenant's backend
    /// wins), so extractors and `enforce` further in use it too. Resolution order stays: the
    /// throttle's own backend, then the request's, then the registry's default.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{Router, routing::get};
    /// use traffik_axum::{HttpThrottle, ThrottleLayer};
    /// use traffik_axum::prelude::*;
    ///
    /// let api = HttpThrottle::builder("doc-layer-backend", "100/min")
    ///     .registry(&ThrottleRegistry::new()) // no default backend there
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(ThrottleLayer::new(api).backend(Arc::new(MemoryBackend::new())));
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[must_use]
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(RequestBackend::new(backend));
        self
    }
}

impl fmt::Debug for ThrottleLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleLayer")
            .field("rules", &self.rules)
            .field("backend", &self.backend)
            .field("refund", &self.refund)
            .finish()
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = ThrottleService<S>;

    fn layer(&self, inner: S) -> ThrottleService<S> {
        ThrottleService::new(
            inner,
            self.rules.clone(),
            self.backend.clone(),
            self.refund.clone(),
        )
    }
}
