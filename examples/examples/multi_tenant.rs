//! Per-tenant backends: a middleware picks each request's backend (here by the `x-tenant`
//! header; the host name is as good), and throttles without a backend of their own use it.
//! Tenants' counters never mix, and resetting one tenant leaves the others alone.
//!
//! ```text
//! cargo run -p traffik-examples --example multi_tenant
//! curl -i -H 'x-tenant: acme' http://127.0.0.1:3000/
//! curl -i -H 'x-tenant: globex' http://127.0.0.1:3000/
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, RequestBackend, ThrottleLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One store, one namespace per tenant.
    let store = MemoryBackend::new();
    let mut tenants: HashMap<&'static str, Arc<dyn Backend>> = HashMap::new();
    for tenant in ["acme", "globex"] {
        tenants.insert(tenant, Arc::new(store.with_namespace(tenant)?));
    }
    let tenants = Arc::new(tenants);

    // No backend of its own: each request's tenant backend is used.
    let per_client = HttpThrottle::builder("multi-tenant-example", "3/min")
        .headers(Headers::always())
        .build()?;

    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(per_client))
        .layer(middleware::from_fn(
            move |mut request: Request, next: Next| {
                let tenants = tenants.clone();
                async move {
                    let tenant = request
                        .headers()
                        .get("x-tenant")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|name| tenants.get(name).cloned());
                    match tenant {
                        Some(backend) => {
                            request
                                .extensions_mut()
                                .insert(RequestBackend::new(backend));
                            next.run(request).await
                        }
                        None => unknown_tenant(),
                    }
                }
            },
        ));

    traffik_examples::serve("multi_tenant", app).await?;
    Ok(())
}

fn unknown_tenant() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "unknown tenant: send x-tenant: acme or globex",
    )
        .into_response()
}
