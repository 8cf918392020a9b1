//! Custom throttled handlers: refusals answered with a JSON error instead of the default
//! plain-text 429 (`Retry-After` and the rate-limit headers are still added).
//!
//! The JSON handler is the backend's default, so every throttle on that backend uses it;
//! `/reports` sets its own handler, which wins over the backend's.
//!
//! ```text
//! cargo run -p traffik-examples --example custom_response
//! curl -i http://127.0.0.1:3000/ ; curl -i http://127.0.0.1:3000/
//! curl -i http://127.0.0.1:3000/reports ; curl -i http://127.0.0.1:3000/reports
//! ```

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottledHandler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The backend-level default: every throttle on `backend` answers refusals with this JSON.
    let json_refusal = ThrottledHandler::new(|parts, decision, throttle, context| {
        let retry_after = decision.retry_after_secs().unwrap_or(1);
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "error": "rate_limited",
                "limit": throttle.uid(),
                "path": parts.uri.path(),
                "plan": context.get_str("plan"),
                "retry_after_seconds": retry_after,
            })),
        )
            .into_response()
    });
    let backend: Arc<dyn Backend> =
        Arc::new(MemoryBackend::builder().extension(json_refusal).build()?);

    let home = HttpThrottle::builder("custom-response-home", "1/10s")
        .shared_backend(Arc::clone(&backend))
        .headers(Headers::throttled_only())
        .context(Context::new().with("plan", "free"))
        .build()?;
    // This throttle's own handler wins over the backend's.
    let reports = HttpThrottle::builder("custom-response-reports", "1/10s")
        .shared_backend(backend)
        .on_throttled(ThrottledHandler::new(
            |_parts, decision, _throttle, _context| {
                let retry_after = decision.retry_after_secs().unwrap_or(1);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Reports are busy; come back in {retry_after} s.\n"),
                )
                    .into_response()
            },
        ))
        .build()?;

    let app = Router::new()
        .route(
            "/",
            get(|| async { "ok\n" }).layer(ThrottleLayer::new(home)),
        )
        .route(
            "/reports",
            get(|| async { "report\n" }).layer(ThrottleLayer::new(reports)),
        );

    traffik_examples::serve("custom_response", app).await?;
    Ok(())
}
