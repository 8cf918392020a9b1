//! [`Enforce`]: one direct hit from inside a handler, with its per-call options.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use http::request::Parts;
use traffik_core::headers::Headers;
use traffik_core::{Context, Decision};

use crate::call::CallOptions;
use crate::rejection::ThrottleRejection;
use crate::scope::EntryPoint;
use crate::throttle::HttpThrottle;

impl HttpThrottle {
    /// Counts one hit of this request; a refusal becomes the 429 rejection, so `?` answers
    /// with it. Uses the throttle's scope (default [`Scope::Route`](crate::Scope::Route)) and a backend in the
    /// request's extensions ([`RequestBackend`](crate::RequestBackend)) when the throttle has
    /// none. Await it as is, or first set a per-call [`cost`](Enforce::cost),
    /// [`context`](Enforce::context), [`scope`](Enforce::scope) or
    /// [`headers`](Enforce::headers) override.
    ///
    /// ```
    /// use axum::{Router, extract::State, http::request::Parts, routing::post};
    /// use traffik_axum::{HttpThrottle, ThrottleRejection};
    /// use traffik_axum::prelude::*;
    ///
    /// async fn upload(State(uploads): State<HttpThrottle>, parts: Parts) -> Result<&'static str, ThrottleRejection> {
    ///     uploads.enforce(&parts).cost(5).await?; // an upload costs 5 units
    ///     Ok("stored")
    /// }
    ///
    /// let uploads = HttpThrottle::builder("doc-uploads", "100/hour").backend(MemoryBackend::new()).build()?;
    /// let app: Router = Router::new().route("/upload", post(upload)).with_state(uploads);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn enforce<'a>(&'a self, parts: &'a Parts) -> Enforce<'a> {
        Enforce::new(self, parts)
    }
}

/// A hit of one request, made by [`HttpThrottle::enforce`]: set per-call options, then
/// `.await` it for the [`Decision`] (a refusal is the 429 [`ThrottleRejection`], so `?`
/// answers with it).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http::Request;
/// use traffik_axum::prelude::*;
///
/// let exports = HttpThrottle::builder("doc-exports", "100/hour")
///     .backend(MemoryBackend::new())
///     .headers(Headers::always())
///     .build()?;
/// let (parts, ()) = Request::new(()).into_parts();
/// let context = Context::new().with("plan", "pro");
/// let overrides = Headers::none().with(Header::disabled("X-RateLimit-Reset"));
/// let decision = exports.enforce(&parts).cost(40).context(&context).headers(&overrides).await?;
/// assert_eq!(decision.remaining, 60);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an Enforce does nothing until awaited"]
pub struct Enforce<'a> {
    throttle: &'a HttpThrottle,
    parts: &'a Parts,
    call: CallOptions<'a>,
}

impl<'a> Enforce<'a> {
    pub(crate) fn new(throttle: &'a HttpThrottle, parts: &'a Parts) -> Self {
        Enforce {
            throttle,
            parts,
            call: CallOptions::default(),
        }
    }

    /// The hit's cost, instead of the throttle's (0 consumes nothing and is allowed).
    pub fn cost(mut self, cost: u64) -> Self {
        self.call.cost = Some(cost);
        self
    }

    /// Call-time context, merged over the throttle's static context.
    pub fn context(mut self, context: &'a Context) -> Self {
        self.call.context = Some(context);
        self
    }

    /// A budget of its own for this call (a tenant's workspace, a document, …), in place of
    /// the throttle's scope ([`Scope`](crate::Scope)), as core hits
    /// ([`HitOptions::scope`](traffik_core::throttle::HitOptions::scope)) and WebSocket
    /// messages take one.
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.call.scope = Some(scope);
        self
    }

    /// Headers merged over the throttle's for this call's 429 ([`Headers::merged_over`]); use
    /// [`HttpThrottle::write_headers_with`] with the same overrides on a success.
    pub fn headers(mut self, overrides: &'a Headers) -> Self {
        self.call.headers = Some(overrides);
        self
    }
}

impl<'a> IntoFuture for Enforce<'a> {
    type Output = Result<Decision, ThrottleRejection>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(
            self.throttle
                .enforce_scoped(self.parts, EntryPoint::Enforce, self.call),
        )
    }
}

#[cfg(test)]
mod tests {
    use http::Request;
    use traffik_core::MemoryBackend;

    use crate::HttpThrottle;

    #[tokio::test]
    async fn a_per_call_scope_is_a_budget_of_its_own() {
        let exports = HttpThrottle::builder("enforce-scope", "1/min")
            .backend(MemoryBackend::new())
            .build()
            .unwrap();
        let (parts, ()) = Request::new(()).into_parts();
        assert!(exports.enforce(&parts).scope("doc-1").await.is_ok());
        assert!(exports.enforce(&parts).scope("doc-1").await.is_err());
        assert!(exports.enforce(&parts).scope("doc-2").await.is_ok());
        assert!(
            exports.enforce(&parts).await.is_ok(),
            "the route's budget is apart"
        );
        assert!(exports.enforce(&parts).await.is_err());
    }
}
