//! One `ThrottleLayer` carrying several throttles, each applied by path pattern, method and
//! predicate (the reference's middleware throttles).
//!
//! ```text
//! cargo run -p traffik-examples --example layer_rules
//! curl -i -X POST http://127.0.0.1:3000/api/v1/items     # writes: 3 per minute per client
//! curl -i http://127.0.0.1:3000/api/v1/items             # reads: only the global limit
//! curl -i http://127.0.0.1:3000/admin/users              # admin pages: 5 per minute...
//! curl -i -H 'x-internal: 1' http://127.0.0.1:3000/admin/users   # ...unless internal
//! ```
//!
//! Rules run in order and the first refusal answers. Cheap checks (method, then path) come
//! before the predicate.

use axum::Router;
use axum::http::Method;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottleRule};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = std::sync::Arc::new(MemoryBackend::new());
    let throttle = |uid: &str, rate: &str| {
        HttpThrottle::builder(uid, rate)
            .shared_backend(backend.clone())
            .headers(Headers::always())
    };
    let layer = ThrottleLayer::from_rules([
        // Everything: one budget per client across the whole router.
        ThrottleRule::new(throttle("rules-global", "600/min").build()?),
        // Writes under /api: a tighter budget.
        ThrottleRule::new(throttle("rules-writes", "3/min").build()?)
            .path("/api/**")
            .methods([Method::POST, Method::PUT, Method::PATCH, Method::DELETE]),
        // Admin pages, except internal callers.
        ThrottleRule::new(throttle("rules-admin", "5/min").build()?)
            .path("/admin/*")
            .predicate(|parts| !parts.headers.contains_key("x-internal")),
    ]);
    let app = Router::new()
        .route(
            "/api/v1/items",
            get(|| async { "items" }).post(|| async { "created" }),
        )
        .route("/admin/{page}", get(|| async { "admin" }))
        .layer(layer);

    traffik_examples::serve("layer_rules", app).await?;
    Ok(())
}
