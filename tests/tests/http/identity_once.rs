//! An expensive asynchronous identifier runs once per request, however many throttles use it
//! and through whichever entry points (the reference's `cache_ids`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::request::Parts;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottlePolicy, Throttled, ThrottledAll};

use crate::support::serve;
use crate::throttle;

/// An identifier that counts its calls: the user named by `x-token` (a JWT decode, say).
fn counting(calls: &Arc<AtomicUsize>) -> Identifier<Parts> {
    let calls = Arc::clone(calls);
    Identifier::from_async(move |parts: &Parts| {
        calls.fetch_add(1, Ordering::SeqCst);
        let user = parts
            .headers
            .get("x-token")
            .and_then(|v| v.to_str().ok())
            .map(|token| format!("user-{token}"));
        Box::pin(async move { user.map_or(EXEMPTED, Identity::from) })
    })
}

#[derive(Clone)]
struct Limits {
    a: HttpThrottle,
    b: HttpThrottle,
    c: HttpThrottle,
}

struct A;
impl ThrottlePolicy<Limits> for A {
    fn throttle(state: &Limits) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.a)
    }
}
struct B;
impl ThrottlePolicy<Limits> for B {
    fn throttle(state: &Limits) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.b)
    }
}
struct C;
impl ThrottlePolicy<Limits> for C {
    fn throttle(state: &Limits) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.c)
    }
}

async fn two_extractors(_: Throttled<A>, _: Throttled<B>) -> &'static str {
    "ok"
}

async fn all_of_them(_: ThrottledAll<(A, B)>, _: Throttled<C>) -> &'static str {
    "ok"
}

#[tokio::test]
async fn one_identifier_call_per_request_across_layer_extractors_and_all_or_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let identifier = counting(&calls);
    let build = |rate: &str| {
        throttle(rate)
            .identifier(identifier.clone())
            .build()
            .unwrap()
    };
    let limits = Limits {
        a: build("100/min"),
        b: build("100/min"),
        c: build("100/min"),
    };
    let outer = build("100/min");
    let app = Router::new()
        .route("/two", get(two_extractors))
        .route("/all", get(all_of_them))
        .with_state(limits)
        .layer(ThrottleLayer::new(outer));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    for (n, path) in ["/two", "/all", "/two", "/all"].into_iter().enumerate() {
        let response = client
            .get(format!("{base}{path}"))
            .header("x-token", "t1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            n + 1,
            "{path}: once per request"
        );
    }
}

#[tokio::test]
async fn a_synchronous_identifier_can_be_memoized_and_an_asynchronous_one_need_not_be() {
    let calls = Arc::new(AtomicUsize::new(0));
    let limits = Limits {
        a: throttle("100/min")
            .identifier(counting(&calls).memoized(false))
            .build()
            .unwrap(),
        b: throttle("100/min")
            .identifier(counting(&calls).memoized(false))
            .build()
            .unwrap(),
        c: throttle("100/min").build().unwrap(),
    };
    let base = serve(
        Router::new()
            .route("/two", get(two_extractors))
            .with_state(limits),
    )
    .await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}/two"))
        .header("x-token", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "not memoized: once per throttle"
    );

    // An expensive synchronous identifier, memoized (decided on the synchronous path).
    let sync_calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sync_calls);
    let decode = Identifier::new(move |_: &Parts| {
        counted.fetch_add(1, Ordering::SeqCst);
        Identity::from("user")
    })
    .memoized(true);
    let limits = Limits {
        a: throttle("100/min")
            .identifier(decode.clone())
            .build()
            .unwrap(),
        b: throttle("100/min").identifier(decode).build().unwrap(),
        c: throttle("100/min").build().unwrap(),
    };
    let base = serve(
        Router::new()
            .route("/two", get(two_extractors))
            .with_state(limits),
    )
    .await;
    for n in 1..=3 {
        let response = client.get(format!("{base}/two")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(sync_calls.load(Ordering::SeqCst), n, "once per request");
    }
}
