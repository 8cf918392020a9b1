//! `#[throttled(...)]` in every form: one rate, several rates, options (strategy, key and cost
//! functions, uid, backend, on-error policy, scope, headers, minimum wait), reused throttles, and
//! the attribute beside other extractors and a body.
//!
//! ```text
//! cargo run -p traffik-examples --example attribute
//! curl -i http://127.0.0.1:3000/items                      # 5/10s per client
//! curl -i http://127.0.0.1:3000/search                     # 2/s and 30/min, both enforced
//! curl -i -H 'x-api-key: alice' 'http://127.0.0.1:3000/export?rows=40'   # costs 40 of 100/min per key
//! curl -i http://127.0.0.1:3000/export                     # no key: not limited
//! curl -i http://127.0.0.1:3000/suggest                    # shares /search's burst budget
//! curl -i -X POST -d '{"name":"x"}' -H 'content-type: application/json' http://127.0.0.1:3000/notes/7
//! ```
//!
//! A bad rate does not compile: try `#[throttled("5/fortnight")]`.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use traffik_axum::prelude::*;
use traffik_axum::{throttle_policy, throttled};

/// One rate: the default strategy, the client's address, the application's default backend.
#[throttled("5/10s", headers = always)]
async fn items() -> Json<Value> {
    Json(json!({ "items": ["a", "b"] }))
}

/// A burst limit shared by `/search` and `/suggest` (a static: named in `SCREAMING_CASE`).
static BURST: LazyLock<Result<HttpThrottle, ConfigError>> = LazyLock::new(|| {
    HttpThrottle::builder("attribute-burst", "2/s")
        .strategy(TokenBucket::new())
        .scope(Scope::Shared)
        .headers(Headers::throttled_only())
        .build()
});

throttle_policy! {
    /// A sustained limit as a policy type (named in `CamelCase`).
    Sustained = HttpThrottle::builder("attribute-sustained", "30/min").build();
}

/// Reused throttles: both enforced, the first refusal answers.
#[throttled(BURST, Sustained)]
async fn search() -> &'static str {
    "results\n"
}

/// The same burst budget as `/search`.
#[throttled(BURST)]
async fn suggest() -> &'static str {
    "suggestions\n"
}

/// Clients by API key; a request without one is not limited.
async fn by_api_key(parts: &Parts) -> Identity<'_> {
    match parts.headers.get("x-api-key").map(|key| key.to_str()) {
        Some(Ok(key)) => Identity::from(key.to_owned()),
        _ => EXEMPTED,
    }
}

/// `?rows=N` costs N units.
fn rows(parts: &Parts) -> u64 {
    parts
        .uri
        .query()
        .and_then(|query| query.strip_prefix("rows="))
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(1)
}

/// Every option.
#[throttled(
    rate = "100/min",
    uid = "attribute-export",
    strategy = SlidingWindowCounter::new(),
    key = by_api_key,
    cost = rows,
    backend = MemoryBackend::new(),
    on_error = allow,
    scope = shared,
    headers = always,
    min_wait = "1s",
)]
async fn export() -> &'static str {
    "exported\n"
}

#[derive(Clone)]
struct AppState {
    owner: &'static str,
}

/// Other extractors, state and the body last: the limit is checked before the body is read.
#[throttled("10/min", "100/hour")]
async fn create_note(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    Json(note): Json<Value>,
) -> Json<Value> {
    Json(json!({ "id": id, "owner": state.owner, "note": note }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The backend of every throttle that names none of its own.
    ThrottleRegistry::global().set_default_backend(MemoryBackend::new());
    // Every throttle the attributes declare, built now: a mistake (a duplicate uid, say) stops
    // the program here instead of answering 500 at the first request.
    let built = traffik_axum::build_declared_throttles()?;
    tracing::info!(built, "declared throttles ready");
    let app = Router::new()
        .route("/items", get(items))
        .route("/search", get(search))
        .route("/suggest", get(suggest))
        .route("/export", get(export))
        .route("/notes/{id}", post(create_note))
        // Carries the attribute's rate-limit headers (`headers = always`) to successes too.
        .layer(RateLimitHeadersLayer::new())
        .with_state(AppState { owner: "example" });
    traffik_examples::serve("attribute", app).await?;
    Ok(())
}
