//! Rejections: why a throttled extractor, layer or `enforce` call answered instead of the
//! handler. One struct per cause, each with a fixed status, wrapped in [`ThrottleRejection`].
//!
//! As axum-core's rejections: every part and the enum have `status` and `body_text`, implement
//! `Display`, `std::error::Error` (with the limiter's error as `source` where there is one) and
//! `IntoResponse`, and each part converts `From` into the enum. A rejection is logged once, at
//! TRACE under the `traffik::rejection` target, when it is made; an ordinary refused request
//! is never logged above TRACE.

use std::fmt;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use traffik_core::{ConfigError, Decision, ThrottleError};

/// Any reason a request was answered by the limiter.
#[derive(Debug)]
#[non_exhaustive]
pub enum ThrottleRejection {
    /// The client is over its limit: 429.
    TooManyRequests(TooManyRequests),
    /// The backend failed and the throttle's on-error policy is `raise`: 503.
    BackendUnavailable(BackendUnavailable),
    /// The throttle has no backend anywhere: 500.
    NoBackend(NoBackend),
    /// The throttle could not be built, or its strategy does not suit its backend: 500.
    Misconfigured(Misconfigured),
}

impl ThrottleRejection {
    /// The status this rejection answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ThrottleRejection::TooManyRequests(r) => r.status(),
            ThrottleRejection::BackendUnavailable(r) => r.status(),
            ThrottleRejection::NoBackend(r) => r.status(),
            ThrottleRejection::Misconfigured(r) => r.status(),
        }
    }

    /// The body of the default response (a custom throttled handler's body is its own).
    #[must_use]
    pub fn body_text(&self) -> String {
        match self {
            ThrottleRejection::TooManyRequests(r) => r.body_text(),
            ThrottleRejection::BackendUnavailable(r) => r.body_text(),
            ThrottleRejection::NoBackend(r) => r.body_text(),
            ThrottleRejection::Misconfigured(r) => r.body_text(),
        }
    }

    /// The limiter's error behind a rejection that is not a 429.
    pub(crate) fn from_error(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Backend { .. } => {
                tracing::trace!(target: "traffik::rejection", %error, "rate-limit backend failed; answering 503");
                ThrottleRejection::BackendUnavailable(BackendUnavailable { error })
            }
            ThrottleError::NoBackend { ref uid } => {
                tracing::trace!(target: "traffik::rejection", %error, "throttle `{uid}` has no backend; answering 500");
                ThrottleRejection::NoBackend(NoBackend { error })
            }
            other => {
                tracing::trace!(target: "traffik::rejection", error = %other, "throttle misconfigured; answering 500");
                ThrottleRejection::Misconfigured(Misconfigured {
                    message: other.to_string(),
                    source: Some(Box::new(other)),
                })
            }
        }
    }
}

impl fmt::Display for ThrottleRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThrottleRejection::TooManyRequests(r) => r.fmt(f),
            ThrottleRejection::BackendUnavailable(r) => r.fmt(f),
            ThrottleRejection::NoBackend(r) => r.fmt(f),
            ThrottleRejection::Misconfigured(r) => r.fmt(f),
        }
    }
}

// As axum-core's composite rejections: `Display` is the part's, so `source` is the part's
// source (an error-chain printer shows each message once).
impl std::error::Error for ThrottleRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ThrottleRejection::TooManyRequests(r) => r.source(),
            ThrottleRejection::BackendUnavailable(r) => r.source(),
            ThrottleRejection::NoBackend(r) => r.source(),
            ThrottleRejection::Misconfigured(r) => r.source(),
        }
    }
}

macro_rules! part_of_rejection {
    ($($part:ident),*) => {$(
        impl From<$part> for ThrottleRejection {
            fn from(part: $part) -> Self {
                ThrottleRejection::$part(part)
            }
        }
    )*};
}

part_of_rejection!(
    TooManyRequests,
    BackendUnavailable,
    NoBackend,
    Misconfigured
);

impl IntoResponse for ThrottleRejection {
    fn into_response(self) -> Response {
        match self {
            ThrottleRejection::TooManyRequests(r) => r.into_response(),
            ThrottleRejection::BackendUnavailable(r) => r.into_response(),
            ThrottleRejection::NoBackend(r) => r.into_response(),
            ThrottleRejection::Misconfigured(r) => r.into_response(),
        }
    }
}

/// The client is over its limit.
///
/// The default response is `429 Too Many Requests` with `Retry-After: N` (whole seconds,
/// rounded up, at least 1), the throttle's rate-limit headers, and the body
/// `Too many requests. Retry in N seconds.`, as JSON
/// (`{"detail": "...", "retry_after": N}`) when the request's `Accept` prefers
/// `application/json`. The hit's context can change the default response as the reference's
/// default handler allows: `"status_code"` (400 to 599), `"detail"` (the message) and
/// `"headers"` (an object of names to text values; `Retry-After` is always the wait). A
/// throttle's own handler replaces the response (`Retry-After` and the rate-limit headers are
/// still added unless it set them).
pub struct TooManyRequests(Box<Refusal>);

struct Refusal {
    decision: Decision,
    headers: HeaderMap,
    json: bool,
    custom: Option<Response>,
    look: Look,
}

/// What the hit's context asks of the default 429 (the reference's default handler reads the
/// same keys): `"status_code"` (a number from 400 to 599), `"detail"` (the message) and
/// `"headers"` (an object of header names to text values). Anything else is ignored.
#[derive(Debug, Default)]
pub(crate) struct Look {
    status: Option<StatusCode>,
    detail: Option<String>,
    headers: HeaderMap,
}

impl Look {
    /// Reads the keys from `context`; a value of the wrong type or range is ignored.
    pub(crate) fn from_context(context: &traffik_core::Context) -> Look {
        let status = context
            .get("status_code")
            .and_then(serde_json::Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (400..=599).contains(code))
            .and_then(|code| StatusCode::from_u16(code).ok());
        let detail = context.get_str("detail").map(ToOwned::to_owned);
        let mut headers = HeaderMap::new();
        if let Some(object) = context
            .get("headers")
            .and_then(serde_json::Value::as_object)
        {
            for (name, value) in object {
                if let (Ok(name), Some(Ok(value))) = (
                    http::HeaderName::try_from(name.as_str()),
                    value.as_str().map(HeaderValue::try_from),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        // `Retry-After` is always the wait (the reference forces it too).
        headers.remove(RETRY_AFTER);
        Look {
            status,
            detail,
            headers,
        }
    }
}

impl TooManyRequests {
    /// A refusal answered by `custom`, else by the default response as `look` shapes it.
    pub(crate) fn new(
        decision: Decision,
        headers: HeaderMap,
        json: bool,
        custom: Option<Response>,
        look: Look,
    ) -> Self {
        tracing::trace!(target: "traffik::rejection", ?decision, "client over its limit; answering 429");
        TooManyRequests(Box::new(Refusal {
            decision,
            headers,
            json,
            custom,
            look,
        }))
    }

    /// The refused hit's decision.
    #[must_use]
    pub fn decision(&self) -> &Decision {
        &self.0.decision
    }

    /// How long until the hit could succeed.
    #[must_use]
    pub fn wait(&self) -> Duration {
        self.0.decision.wait().unwrap_or_default()
    }

    /// `Retry-After`'s value: the wait in whole seconds, rounded up, at least 1.
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(&self.0.decision)
    }

    /// `429 Too Many Requests`, or the hit's context's `"status_code"`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0.look.status.unwrap_or(StatusCode::TOO_MANY_REQUESTS)
    }

    /// The body of the default plain-text response (a custom handler's body is its own): the
    /// hit's context's `"detail"` when it has one.
    #[must_use]
    pub fn body_text(&self) -> String {
        if let Some(detail) = &self.0.look.detail {
            detail.clone()
        } else if self.0.decision.wait().is_none() {
            OVER_CAPACITY.to_owned()
        } else {
            self.to_string()
        }
    }
}

/// The body of a refusal that waiting cannot fix.
const OVER_CAPACITY: &str = "Too many requests: this request costs more than the limit allows.";

impl std::error::Error for TooManyRequests {}

/// The wait of a refused decision in whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(decision: &Decision) -> u64 {
    decision.retry_after_secs().unwrap_or_default().max(1)
}

/// Whether the client asked for JSON before plain text.
pub(crate) fn prefers_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let position = |needle: &str| accept.find(needle);
    match (position("application/json"), position("text/plain")) {
        (Some(json), Some(text)) => json < text,
        (Some(_), None) => true,
        _ => false,
    }
}

impl fmt::Debug for TooManyRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TooManyRequests")
            .field("decision", &self.0.decision)
            .field("custom", &self.0.custom.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TooManyRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Too many requests. Retry in {} seconds.",
            self.retry_after_secs()
        )
    }
}

impl IntoResponse for TooManyRequests {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_secs();
        let status = self.status();
        let text = self.body_text();
        let Refusal {
            decision,
            headers: rate_limit_headers,
            json,
            custom,
            look,
        } = *self.0;
        if decision.wait().is_none() && custom.is_none() {
            // Over capacity: waiting cannot help, so no Retry-After.
            let mut response = (status, text).into_response();
            response.headers_mut().extend(look.headers);
            response.headers_mut().extend(rate_limit_headers);
            return response;
        }
        let mut response = match custom {
            Some(response) => response,
            None if json => (
                status,
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                serde_json::json!({
                    "detail": text,
                    "retry_after": retry_after,
                })
                .to_string(),
            )
                .into_response(),
            None => (status, text).into_response(),
        };
        let headers = response.headers_mut();
        for (name, value) in look.headers {
            if let Some(name) = name {
                headers.insert(name, value);
            }
        }
        if !headers.contains_key(RETRY_AFTER) {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
        }
        for (name, value) in &rate_limit_headers {
            if !headers.contains_key(name) {
                headers.insert(name, value.clone());
            }
        }
        response
    }
}

/// The backend failed and the throttle's on-error policy is `raise`.
#[derive(Debug)]
pub struct BackendUnavailable {
    error: ThrottleError,
}

impl BackendUnavailable {
    /// The limiter's error.
    #[must_use]
    pub fn error(&self) -> &ThrottleError {
        &self.error
    }

    /// `503 Service Unavailable`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    /// The body of the response (it does not name the backend or its error).
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl std::error::Error for BackendUnavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl fmt::Display for BackendUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rate limiting is unavailable. Try again later.")
    }
}

impl IntoResponse for BackendUnavailable {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}

/// The throttle has no backend: not its own, not one in the request's extensions, no default.
#[derive(Debug)]
pub struct NoBackend {
    error: ThrottleError,
}

impl NoBackend {
    /// The limiter's error (it names the throttle's uid).
    #[must_use]
    pub fn error(&self) -> &ThrottleError {
        &self.error
    }

    /// `500 Internal Server Error`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The body of the response: the error, naming the throttle.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

// `Display` is the limiter's error itself, so the chain continues with its source.
impl std::error::Error for NoBackend {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl fmt::Display for NoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl IntoResponse for NoBackend {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}

/// The throttle could not be built (a static policy's configuration error), or its strategy
/// needs what its backend lacks.
#[derive(Debug)]
pub struct Misconfigured {
    message: String,
    /// The limiter's error, when this rejection owns it (a policy's configuration error is
    /// built once and shared by every request, so its rejections carry its text only). Boxed:
    /// a rejection travels in every extractor's future, so it stays small.
    source: Option<Box<ThrottleError>>,
}

impl Misconfigured {
    pub(crate) fn from_config(error: &ConfigError) -> Self {
        tracing::trace!(target: "traffik::rejection", %error, "throttle policy could not be built; answering 500");
        Misconfigured {
            message: error.to_string(),
            source: None,
        }
    }

    /// `500 Internal Server Error`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The body of the response: what is wrong with the throttle.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.message.clone()
    }
}

// The message is the limiter's error's text, so the chain continues with its source.
impl std::error::Error for Misconfigured {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().and_then(std::error::Error::source)
    }
}

impl fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for Misconfigured {
    fn into_response(self) -> Response {
        (self.status(), self.message).into_response()
    }
}

#[cfg(test)]
mod tests {
    use http::header::HeaderName;

    use super::*;

    fn refused(wait_ms: u64) -> TooManyRequests {
        TooManyRequests::new(
            Decision::throttled(2, 0, Duration::from_millis(wait_ms), Duration::from_secs(1)),
            HeaderMap::new(),
            false,
            None,
            Look::default(),
        )
    }

    #[tokio::test]
    async fn the_hits_context_shapes_the_default_429_as_the_reference_allows() {
        let context = traffik_core::Context::new()
            .with("status_code", 503)
            .with("detail", "Slow down, please.")
            .with(
                "headers",
                serde_json::json!({"X-Reason": "quota", "Retry-After": "999", "bad name": "x", "X-Num": 1}),
            );
        let decision =
            Decision::throttled(2, 0, Duration::from_millis(2_500), Duration::from_secs(3));
        let shaped = |json| {
            TooManyRequests::new(
                decision,
                HeaderMap::new(),
                json,
                None,
                Look::from_context(&context),
            )
            .into_response()
        };
        let response = shaped(false);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-reason"], "quota");
        assert_eq!(
            response.headers()[RETRY_AFTER],
            "3",
            "the wait, whatever the context says"
        );
        assert!(
            !response.headers().contains_key("x-num"),
            "not text: ignored"
        );
        assert_eq!(body(response).await, "Slow down, please.");
        let json = body(shaped(true)).await;
        assert_eq!(json, r#"{"detail":"Slow down, please.","retry_after":3}"#);
        // Out of range or of the wrong type: the defaults.
        let odd = traffik_core::Context::new()
            .with("status_code", 200)
            .with("detail", 5);
        let response = TooManyRequests::new(
            decision,
            HeaderMap::new(),
            false,
            None,
            Look::from_context(&odd),
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            body(response).await,
            "Too many requests. Retry in 3 seconds."
        );
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_default_429_rounds_the_wait_up_to_whole_seconds() {
        for (wait_ms, secs) in [(1, "1"), (1_000, "1"), (1_001, "2"), (0, "1")] {
            let response = refused(wait_ms).into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[RETRY_AFTER], secs);
            assert_eq!(
                body(response).await,
                format!("Too many requests. Retry in {secs} seconds.")
            );
        }
    }

    #[tokio::test]
    async fn json_when_asked_and_custom_responses_keep_their_own_headers() {
        let mut json = refused(2_500);
        json.0.json = true;
        let response = json.into_response();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            body(response).await,
            r#"{"detail":"Too many requests. Retry in 3 seconds.","retry_after":3}"#
        );

        let mut custom = refused(500);
        custom.0.headers.insert(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(2),
        );
        custom.0.custom = Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, "60")],
                "busy",
            )
                .into_response(),
        );
        let response = custom.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "60");
        assert_eq!(response.headers()["x-ratelimit-limit"], "2");
    }

    #[test]
    fn accept_negotiation() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static(value));
            prefers_json(&headers)
        };
        assert!(accept("application/json"));
        assert!(accept("application/json, text/plain"));
        assert!(!accept("text/plain, application/json"));
        assert!(!accept("text/html"));
        assert!(!prefers_json(&HeaderMap::new()));
    }

    #[test]
    fn every_rejection_states_its_status_body_and_source() {
        use std::error::Error;

        let too_many = ThrottleRejection::from(refused(1_500));
        assert_eq!(too_many.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            too_many.body_text(),
            "Too many requests. Retry in 2 seconds."
        );
        assert!(too_many.source().is_none());

        let backend = ThrottleError::Backend {
            uid: "api".to_owned(),
            source: traffik_core::backend::BackendError::Timeout {
                backend: "redis".to_owned(),
                operation: "decide",
                after: Duration::from_millis(500),
            },
        };
        let unavailable = ThrottleRejection::from_error(backend);
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            unavailable.body_text(),
            "Rate limiting is unavailable. Try again later."
        );
        // The chain reaches the backend's own error: rejection (the part's message) ->
        // limiter -> backend, each message once.
        let limiter = unavailable.source().unwrap();
        assert!(limiter.to_string().contains("api"), "{limiter}");
        assert!(limiter.source().is_some());

        let none = ThrottleRejection::from_error(ThrottleError::NoBackend {
            uid: "lonely".to_owned(),
        });
        assert_eq!(none.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(none.body_text().contains("lonely"));
        assert!(matches!(none, ThrottleRejection::NoBackend(_)));
    }
}
