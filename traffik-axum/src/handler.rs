//! [`ThrottledHandler`]: the response to a refused request, per throttle or per backend.

use std::fmt;
use std::sync::Arc;

use axum::response::Response;
use http::request::Parts;
use traffik_core::{Context, Decision};

use crate::HttpThrottle;

/// Builds the response for a refused request, in place of the default 429.
///
/// It sees the request, the refused [`Decision`] (its [`wait`](Decision::wait) is how long
/// the client should back off), the throttle, and the hit's context (the throttle's static
/// context with the call's merged over it). The response still gets `Retry-After` and the
/// throttle's rate-limit headers unless it sets them itself.
///
/// Set it per throttle with
/// [`HttpThrottleBuilderExt::on_throttled`](crate::HttpThrottleBuilderExt::on_throttled), or for
/// every throttle on a backend by attaching it to the backend as an extension; the
/// throttle's own handler wins:
///
/// ```
/// use axum::Json;
/// use axum::response::IntoResponse;
/// use http::StatusCode;
/// use traffik_axum::prelude::*;
///
/// let handler = ThrottledHandler::new(|_parts, decision, throttle, context| {
///     let wait = decision.wait().unwrap_or_default().as_secs_f64();
///     (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({
///         "error": "rate_limited",
///         "throttle": throttle.uid(),
///         "plan": context.get_str("plan"),
///         "retry_in_seconds": wait,
///     }))).into_response()
/// });
/// // The default of every throttle on this backend that sets no handler of its own.
/// let backend = MemoryBackend::builder().extension(handler).build()?;
/// # let _ = backend;
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ThrottledHandler(Arc<HandlerFn>);

type HandlerFn = dyn Fn(&Parts, &Decision, &HttpThrottle, &Context) -> Response + Send + Sync;

impl ThrottledHandler {
    /// A handler from a function of the request, the refused decision, the throttle and the
    /// hit's context.
    pub fn new<F>(handler: F) -> Self
    where
        F: Fn(&Parts, &Decision, &HttpThrottle, &Context) -> Response + Send + Sync + 'static,
    {
        ThrottledHandler(Arc::new(handler))
    }

    pub(crate) fn call(
        &self,
        parts: &Parts,
        decision: &Decision,
        throttle: &HttpThrottle,
        context: &Context,
    ) -> Response {
        (self.0)(parts, decision, throttle, context)
    }
}

impl fmt::Debug for ThrottledHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThrottledHandler")
    }
}
