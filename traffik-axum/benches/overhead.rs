//! Per-request overhead of traffik in an axum router, without the network: the same router
//! called through `oneshot`, bare, with the `Throttled<T>` extractor, with `ThrottleLayer`,
//! with `tower_governor`'s layer, and with an empty `axum::middleware::from_fn` (the cost of
//! the simplest possible middleware). Limits are high enough never to refuse; every request
//! comes from the same peer (`ConnectInfo` set on the request, as `into_make_service_with_connect_info`
//! would).

#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::StatusCode;
use tower::ServiceExt;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, Throttled, throttle_policy};

const RATE: &str = "1000000000/s";

throttle_policy! {
    Unlimited = HttpThrottle::builder("bench-extractor", RATE).backend(MemoryBackend::new()).build();
}

async fn hello() -> &'static str {
    "hello"
}

async fn hello_throttled(_: Throttled<Unlimited>) -> &'static str {
    "hello"
}

fn request() -> Request {
    let mut request = Request::builder().uri("/").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40_000))));
    request
}

fn run(c: &mut Criterion, name: &str, router: Router, runtime: &tokio::runtime::Runtime) {
    let service = router.into_service::<Body>();
    c.bench_function(name, |b| {
        b.to_async(runtime).iter(|| {
            let service = service.clone();
            async move {
                let response = service.oneshot(request()).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        });
    });
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    run(
        c,
        "oneshot/bare",
        Router::new().route("/", get(hello)),
        &runtime,
    );
    run(
        c,
        "oneshot/from_fn-empty",
        Router::new()
            .route("/", get(hello))
            .layer(middleware::from_fn(
                |request: Request, next: Next| async move {
                    Ok::<_, Infallible>(next.run(request).await)
                },
            )),
        &runtime,
    );
    run(
        c,
        "oneshot/traffik-extractor",
        Router::new().route("/", get(hello_throttled)),
        &runtime,
    );
    let layer_throttle = HttpThrottle::builder("bench-layer", RATE)
        .backend(MemoryBackend::new())
        .build()
        .unwrap();
    run(
        c,
        "oneshot/traffik-layer",
        Router::new()
            .route("/", get(hello))
            .layer(ThrottleLayer::new(layer_throttle)),
        &runtime,
    );
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .finish()
        .unwrap();
    run(
        c,
        "oneshot/tower_governor-layer",
        Router::new()
            .route("/", get(hello))
            .layer(GovernorLayer::new(config)),
        &runtime,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = overhead
}
criterion_main!(benches);
