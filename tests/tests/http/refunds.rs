//! Refunds after the handler over real TCP: a 5xx response or a request cancelled before its
//! response (the client hung up) gets its charges back, through the layer and the extractor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{
    HttpThrottle, RefundLayer, RefundPolicy, ThrottleLayer, ThrottlePolicy, Throttled,
};

use crate::support::serve;
use crate::throttle;

/// Set when a handler's future is dropped before it finished (the request was cancelled).
#[derive(Clone, Default)]
struct Dropped(Arc<AtomicBool>);

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `/fail` answers 500, `/slow` never answers in time, anything else 200.
async fn handler(State(dropped): State<Dropped>, parts: Parts) -> StatusCode {
    match parts.uri.path() {
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "/slow" => {
            let _guard = SetOnDrop(Arc::clone(&dropped.0));
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    }
}

#[derive(Clone)]
struct Limited {
    throttle: HttpThrottle,
    dropped: Dropped,
}

impl axum::extract::FromRef<Limited> for Dropped {
    fn from_ref(state: &Limited) -> Dropped {
        state.dropped.clone()
    }
}

struct FromState;
impl ThrottlePolicy<Limited> for FromState {
    fn throttle(state: &Limited) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.throttle)
    }
}

async fn extracted(_: Throttled<FromState>, state: State<Dropped>, parts: Parts) -> StatusCode {
    handler(state, parts).await
}

/// How the app under test is built.
#[derive(Clone, Copy)]
enum Entry {
    Layer,
    Extractor,
}

async fn app(entry: Entry, policy: RefundPolicy) -> (String, Dropped) {
    let dropped = Dropped::default();
    let throttle = throttle("2/min").build().unwrap();
    let router = match entry {
        Entry::Layer => Router::new()
            .route("/{*path}", get(handler))
            .with_state(dropped.clone())
            .layer(ThrottleLayer::new(throttle).refund(policy)),
        Entry::Extractor => Router::new()
            .route("/{*path}", get(extracted))
            .with_state(Limited {
                throttle,
                dropped: dropped.clone(),
            })
            .layer(RefundLayer::new(policy)),
    };
    (serve(router).await, dropped)
}

async fn get_status(base: &str, path: &str) -> u16 {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn server_errors_are_refunded_through_the_layer_and_the_extractor() {
    for entry in [Entry::Layer, Entry::Extractor] {
        let (base, _) = app(entry, RefundPolicy::server_errors()).await;
        for _ in 0..4 {
            assert_eq!(
                get_status(&base, "/fail").await,
                500,
                "refunded: never a 429"
            );
        }
        assert_eq!(get_status(&base, "/ok").await, 200);
        assert_eq!(get_status(&base, "/ok").await, 200);
        assert_eq!(
            get_status(&base, "/ok").await,
            429,
            "2xx responses keep their charge"
        );
    }
}

#[tokio::test]
async fn without_a_policy_a_server_error_keeps_its_charge() {
    let (base, _) = app(Entry::Layer, RefundPolicy::new()).await;
    assert_eq!(get_status(&base, "/fail").await, 500);
    assert_eq!(get_status(&base, "/fail").await, 500);
    assert_eq!(get_status(&base, "/fail").await, 429);
}

/// Starts `/slow` and hangs up after 200 ms; returns once the server dropped the handler.
async fn hang_up(base: &str, dropped: &Dropped) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(
        client.get(format!("{base}/slow")).send().await.is_err(),
        "timed out"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dropped.0.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the server never cancelled the handler"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_request_cancelled_by_its_client_is_refunded_when_the_policy_says_so() {
    for entry in [Entry::Layer, Entry::Extractor] {
        let (base, dropped) = app(entry, RefundPolicy::new().on_cancel(true)).await;
        assert_eq!(get_status(&base, "/ok").await, 200);
        hang_up(&base, &dropped).await;
        // The refund runs on a spawned task: poll (a refused request consumes nothing).
        let deadline = Instant::now() + Duration::from_secs(10);
        while get_status(&base, "/ok").await != 200 {
            assert!(
                Instant::now() < deadline,
                "the cancelled request was never refunded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(get_status(&base, "/ok").await, 429);
    }
    let (base, dropped) = app(Entry::Layer, RefundPolicy::server_errors()).await;
    assert_eq!(get_status(&base, "/ok").await, 200);
    hang_up(&base, &dropped).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        get_status(&base, "/ok").await,
        429,
        "on_cancel is off: the charge stays"
    );
}

async fn extracted_only(_: Throttled<FromState>) -> StatusCode {
    StatusCode::OK
}

#[tokio::test]
async fn a_charge_returned_by_a_later_refusal_is_not_returned_again_by_the_policy() {
    // The layer's budget (2/min) is charged by every request; `/b` also meets an extractor
    // (1/min) that refuses its second request. That refusal returns the layer's charge; the
    // layer's policy, refunding every non-2xx, must not return it a second time.
    let layer_throttle = throttle("2/min").build().unwrap();
    let state = Limited {
        throttle: throttle("1/min").build().unwrap(),
        dropped: Dropped::default(),
    };
    let app = Router::new()
        .route("/b", get(extracted_only))
        .route("/free", get(|| async { StatusCode::OK }))
        .with_state(state)
        .layer(
            ThrottleLayer::new(layer_throttle).refund(RefundPolicy::when(|response| {
                !response.status().is_success()
            })),
        );
    let base = serve(app).await;
    assert_eq!(get_status(&base, "/b").await, 200);
    assert_eq!(get_status(&base, "/b").await, 429);
    assert_eq!(
        get_status(&base, "/free").await,
        200,
        "the layer's second unit"
    );
    assert_eq!(
        get_status(&base, "/free").await,
        429,
        "returned once, not twice"
    );
}

#[tokio::test]
async fn an_outer_refunding_layer_sees_the_charges_made_inside_an_inner_one() {
    // The inner layer refunds only 404s; the outer one refunds 5xx: an extractor's charge on a
    // 500 is returned by the outer layer.
    let state = Limited {
        throttle: throttle("3/min").build().unwrap(),
        dropped: Dropped::default(),
    };
    let app = Router::new()
        .route("/{*path}", get(extracted))
        .with_state(state)
        .layer(RefundLayer::new(RefundPolicy::when(|r| r.status() == 404)))
        .layer(RefundLayer::new(RefundPolicy::server_errors()));
    let base = serve(app).await;
    for _ in 0..4 {
        assert_eq!(
            get_status(&base, "/fail").await,
            500,
            "refunded by the outer layer"
        );
    }
    for expected in [200, 200, 200, 429] {
        assert_eq!(get_status(&base, "/ok").await, expected);
    }
}
