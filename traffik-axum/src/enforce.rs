//! [`Enforce`]: one direct hit from inside a handler, with its per-call options.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use http::request::Parts;
use traffik_core::headers::Headers;
use traffik_core::{Context, Decision, Millis};

use crate::rejection::ThrottleRejection;
use crate::throttle::{HttpThrottle, Scope};

/// The per-call settings of one enforced hit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallOptions<'a> {
    pub(crate) cost: Option<u64>,
    pub(crate) context: Option<&'a Context>,
    pub(crate) headers: Option<&'a Headers>,
    /// The time of the hit (ms), when the entry point read it to record the charge.
    pub(crate) now: Option<Millis>,
}

impl CallOptions<'_> {
    pub(crate) fn cost(cost: Option<u64>) -> Self {
        CallOptions {
            cost,
            ..CallOptions::default()
        }
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
                .enforce_scoped(self.parts, Scope::Route, self.call),
        )
    }
}
