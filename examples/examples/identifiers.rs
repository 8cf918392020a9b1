//! Who the client is: an API key header, the client IP behind trusted proxies (IPv6 keyed by
//! /64), and `EXEMPTED` for internal callers (no backend call at all).
//!
//! ```text
//! cargo run -p traffik-examples --example identifiers
//! curl -i -H 'x-api-key: alice' http://127.0.0.1:3000/    # alice's own budget (3 per minute)
//! curl -i -H 'x-api-key: internal-probe' http://127.0.0.1:3000/   # exempted: never limited
//! curl -i http://127.0.0.1:3000/                          # no key: limited by client IP
//! curl -i -H 'x-api-key: made-up' http://127.0.0.1:3000/  # an unknown key: its client IP's budget
//! ```

use axum::Router;
use axum::http::request::Parts;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{ClientIp, HttpThrottle, ProxyHeader, ThrottleLayer, TrustedProxies};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Behind a load balancer on 10.0.0.0/8 (or a proxy on this host) that appends the peer to
    // X-Forwarded-For, the client is read from that header, and only from it; a client talking
    // to us directly cannot choose its bucket by sending it. IPv6 clients count per /64.
    let client_ip = ClientIp::behind(
        ProxyHeader::XForwardedFor,
        TrustedProxies::parse_networks(["10.0.0.0/8", "127.0.0.1"])?,
    );
    // The known API keys. An identity taken from a header must be checked first: a key nobody
    // issued would give whoever invents it a fresh budget, so unknown keys count as their IP.
    let known_keys = ["alice", "bob"];
    let identify = Identifier::new(move |parts: &Parts| {
        match parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            // The one internal caller: exempted, no backend call at all.
            Some("internal-probe") => EXEMPTED,
            Some(key) if known_keys.contains(&key) => Identity::from(format!("key:{key}")),
            // No key, or one nobody issued.
            _ => match client_ip.key(parts) {
                Some(ip) => Identity::from(format!("ip:{ip}")),
                None => Identity::from("ip:unknown"),
            },
        }
    });
    let limit = HttpThrottle::builder("identifiers-example", "3/min")
        .identifier(identify)
        .backend(MemoryBackend::new())
        .headers(Headers::always())
        .build()?;
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(limit));

    traffik_examples::serve("identifiers", app).await?;
    Ok(())
}
