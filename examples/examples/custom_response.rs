//! A custom throttled handler: refusals answered with a JSON error instead of the default
//! plain-text 429 (`Retry-After` and the rate-limit headers are still added).
//!
//! ```text
//! cargo run -p traffik-examples --example custom_response
//! curl -i http://127.0.0.1:3000/ ; curl -i http://127.0.0.1:3000/
//! ```

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottledHandler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit = HttpThrottle::builder("custom-response-example", "1/10s")
        .backend(MemoryBackend::new())
        .headers(Headers::throttled_only())
        .on_throttled(ThrottledHandler::new(|parts, decision, throttle| {
            let retry_after = decision.retry_after_secs().unwrap_or(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "error": "rate_limited",
                    "limit": throttle.uid(),
                    "path": parts.uri.path(),
                    "retry_after_seconds": retry_after,
                })),
            )
                .into_response()
        }))
        .build()?;
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(limit));

    traffik_examples::serve("custom_response", app).await?;
    Ok(())
}
