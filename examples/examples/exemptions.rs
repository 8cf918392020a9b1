//! Exempting `/health` and internal networks from every throttle at once: bypass rules added
//! to the registry for the uid glob `*` (the reference's `BypassThrottleRule` and
//! `registry.add_rules`), honoured by the extractor, the layer, `#[throttled]` and WebSocket
//! message throttles alike (`#[throttled]` throttles live in `ThrottleRegistry::global()`: add
//! the rules there for them). Bypassed requests spend nothing.
//!
//! ```text
//! cargo run -p traffik-examples --example exemptions
//! curl -i http://127.0.0.1:3000/api/orders                              # 2 per minute...
//! curl -i http://127.0.0.1:3000/health                                  # ...never limited
//! curl -i -H 'x-forwarded-for: 10.1.2.3' http://127.0.0.1:3000/api/orders   # internal: never limited
//! ```
//!
//! The example trusts `X-Forwarded-For` from a proxy on the loopback address (curl plays that
//! proxy); in production name your proxy's networks ([`TrustedProxies`]).

use axum::Router;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, RequestMatch, ThrottleLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client_ip = ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::loopback());
    let registry = ThrottleRegistry::new();
    registry.set_default_backend(MemoryBackend::new());
    // Every throttle of the registry, including ones built later.
    registry.add_rules(
        "*",
        [
            Rule::bypass_when(RequestMatch::new().path("/health")),
            Rule::bypass_when(RequestMatch::new().client_in(
                client_ip.clone(),
                ["10.0.0.0/8".parse()?, "192.168.0.0/16".parse()?],
            )),
        ],
    )?;
    let orders = HttpThrottle::builder("exemptions-orders", "2/min")
        .registry(&registry)
        .identifier(client_ip.identifier())
        .headers(Headers::always())
        .build()?;
    let app = Router::new()
        .route("/api/orders", get(|| async { "orders" }))
        .route("/health", get(|| async { "healthy" }))
        .layer(ThrottleLayer::new(orders));

    traffik_examples::serve("exemptions", app).await?;
    Ok(())
}
