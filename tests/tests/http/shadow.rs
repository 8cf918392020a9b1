//! Shadow mode (a dry run) over real TCP: every request passes, the would-be refusals are
//! recorded, and the rate-limit headers follow the throttle's choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottlePolicy, Throttled};
use traffik_core::headers::Headers;

use crate::support::serve;
use crate::throttle;

#[derive(Clone)]
struct Shadowed {
    throttle: HttpThrottle,
    refusals: Arc<AtomicUsize>,
}

struct FromState;
impl ThrottlePolicy<Shadowed> for FromState {
    fn throttle(state: &Shadowed) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.throttle)
    }
}

async fn handler(
    throttled: Throttled<FromState>,
    State(state): State<Shadowed>,
) -> (Throttled<FromState>, &'static str) {
    if throttled.decision().is_shadow_throttled() {
        state.refusals.fetch_add(1, Ordering::SeqCst);
    }
    (throttled, "ok")
}

/// 10 requests against 3/min; the statuses, the shadow refusals, and the last response's
/// `X-RateLimit-Remaining`.
async fn ten_requests(headers: Headers) -> (Vec<u16>, usize, Option<String>) {
    let state = Shadowed {
        throttle: throttle("3/min")
            .shadow_mode(true)
            .headers(headers)
            .build()
            .unwrap(),
        refusals: Arc::new(AtomicUsize::new(0)),
    };
    let refusals = Arc::clone(&state.refusals);
    let base = serve(Router::new().route("/", get(handler)).with_state(state)).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let mut remaining = None;
    for _ in 0..10 {
        let response = client.get(format!("{base}/")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        remaining = response
            .headers()
            .get("x-ratelimit-remaining")
            .map(|value| value.to_str().unwrap().to_owned());
    }
    (statuses, refusals.load(Ordering::SeqCst), remaining)
}

#[tokio::test]
async fn ten_requests_against_three_a_minute_all_pass_and_seven_are_shadow_refusals() {
    let (statuses, refusals, remaining) = ten_requests(Headers::always()).await;
    assert_eq!(statuses, [200; 10]);
    assert_eq!(refusals, 7);
    assert_eq!(
        remaining, None,
        "by default a shadow refusal sends no rate-limit header"
    );
}

#[tokio::test]
async fn shadow_refusals_can_carry_the_headers_of_a_refusal() {
    let (statuses, refusals, remaining) =
        ten_requests(Headers::always().on_shadow_refusals(true)).await;
    assert_eq!(statuses, [200; 10]);
    assert_eq!(refusals, 7);
    assert_eq!(remaining.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_layer_in_shadow_mode_lets_every_request_through_and_records_the_hits() {
    let throttle = throttle("3/min").shadow_mode(true).build().unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(throttle.clone()));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let status = client
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    // Turned off at run time, the same throttle refuses: the hits were recorded.
    throttle.core().set_shadow_mode(false);
    let status = client
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 429);
}
