//! The quickstart's application: three routes, four limits, on whichever backend the caller
//! gives (`examples/quickstart.rs` on memory, `examples/redis.rs` on Redis).

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottlePolicy, ThrottleRejection, Throttled, throttled};
use traffik_core::backend::IntoBackend;

/// The application's throttles that handlers read directly, kept in its state.
#[derive(Clone)]
struct AppState {
    per_client: HttpThrottle,
    uploads: HttpThrottle,
}

/// `Throttled<PerClient>` enforces `AppState::per_client`.
struct PerClient;

impl ThrottlePolicy<AppState> for PerClient {
    fn throttle(state: &AppState) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.per_client)
    }
}

/// `GET /`: 5 requests per 10 seconds per client; the rate-limit headers on every answer.
async fn index(throttled: Throttled<PerClient>) -> (Throttled<PerClient>, Json<Value>) {
    let remaining = throttled.decision().remaining;
    (
        throttled,
        Json(json!({ "message": "hello from traffik", "remaining": remaining })),
    )
}

/// `GET /search`: a burst limit and a sustained limit, both enforced. The rates are checked when
/// this compiles; the throttles use the application's default backend.
#[throttled("2/s", "20/min", strategy = SlidingWindowCounter::new(), headers = throttled_only)]
async fn search(Query(query): Query<Vec<(String, String)>>) -> Json<Value> {
    Json(json!({ "query": query, "results": [] }))
}

/// `POST /upload?mb=N`: the cost is the size, decided per request.
async fn upload(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    parts: Parts,
) -> Result<Json<Value>, ThrottleRejection> {
    let megabytes = query
        .iter()
        .find(|(name, _)| name == "mb")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(1);
    let decision = state.uploads.enforce(&parts).cost(megabytes).await?;
    Ok(Json(json!({
        "stored_mb": megabytes,
        "remaining_mb_this_minute": decision.remaining,
    })))
}

/// The quickstart's routes and limits, every throttle on `backend` (the registry's default, so
/// the attribute's throttles use it too).
///
/// # Errors
/// When a throttle's settings cannot work: every throttle declared in the program (the
/// attribute's included) is built here, at start-up, not at its first request.
pub fn app(backend: impl IntoBackend) -> Result<Router, Box<dyn std::error::Error>> {
    ThrottleRegistry::global().set_default_backend_shared(backend.into_backend());
    traffik_axum::build_declared_throttles()?;
    let state = AppState {
        per_client: HttpThrottle::builder("quickstart-index", "5/10s")
            .headers(Headers::always().ietf("per-client"))
            .build()?,
        uploads: HttpThrottle::builder("quickstart-uploads", "10/min")
            .headers(Headers::always())
            .build()?,
    };
    Ok(Router::new()
        .route("/", get(index))
        .route("/search", get(search))
        .route("/upload", post(upload))
        .with_state(state))
}
