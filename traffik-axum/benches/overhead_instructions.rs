//! Instructions per request through an axum router called with `oneshot`, counted by callgrind
//! (deterministic, unlike wall time here). One warm-up request first builds everything lazy
//! (throttles, clocks: quanta's calibration alone varies by thousands of instructions per run),
//! then only `measured` is counted; divide the total by `n`:
//!
//! ```text
//! cargo bench -p traffik-axum --bench overhead_instructions --no-run
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
//!     target/release/deps/overhead_instructions-<hash> layer 20000
//! ```
//!
//! Cases: `bare`, `extractor`, `layer`, `tower_governor`.

#![allow(missing_docs)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::routing::get;
use tower::ServiceExt;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, Throttled, throttle_policy};

const RATE: &str = "1000000000/s";

throttle_policy! {
    Unlimited = HttpThrottle::builder("instructions-extractor", RATE).backend(MemoryBackend::new()).build();
}

async fn hello() -> &'static str {
    "hello"
}

async fn hello_throttled(_: Throttled<Unlimited>) -> &'static str {
    "hello"
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let case = args.next().unwrap_or_else(|| "layer".to_owned());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let router = match case.as_str() {
        "bare" => Router::new().route("/", get(hello)),
        "extractor" => Router::new().route("/", get(hello_throttled)),
        "layer" => Router::new()
            .route("/", get(hello))
            .layer(ThrottleLayer::new(
                HttpThrottle::builder("instructions-layer", RATE)
                    .backend(MemoryBackend::new())
                    .build()
                    .unwrap(),
            )),
        "tower_governor" => Router::new()
            .route("/", get(hello))
            .layer(GovernorLayer::new(
                GovernorConfigBuilder::default()
                    .per_nanosecond(1)
                    .burst_size(u32::MAX)
                    .finish()
                    .unwrap(),
            )),
        other => panic!("unknown case {other}"),
    };
    let service = router.into_service::<Body>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(requests(&service, 1));
    measured(&runtime, &service, n);
}

#[inline(never)]
fn measured(
    runtime: &tokio::runtime::Runtime,
    service: &axum::routing::RouterIntoService<Body>,
    n: u64,
) {
    runtime.block_on(requests(service, n));
}

async fn requests(service: &axum::routing::RouterIntoService<Body>, n: u64) {
    for _ in 0..n {
        let mut request = Request::builder().uri("/").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
        let response = service.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success());
    }
}
