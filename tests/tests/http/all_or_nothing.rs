//! Several limits on one request, over real TCP: a refusal by any of them consumes nothing from
//! any other, whatever order they are written in and however many requests race.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use tokio::task::JoinSet;
use traffik_axum::prelude::*;
use traffik_axum::{
    HttpThrottle, ThrottleLayer, ThrottlePolicy, ThrottleRule, Throttled, ThrottledAll,
};
use traffik_core::ManualClock;

use crate::support::serve;
use crate::throttle_on;

/// `30/30min` and `10/min`, on one clock.
#[derive(Clone)]
struct Pair {
    half_hour: HttpThrottle,
    minute: HttpThrottle,
}

struct HalfHour;
impl ThrottlePolicy<Pair> for HalfHour {
    fn throttle(state: &Pair) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.half_hour)
    }
}

struct Minute;
impl ThrottlePolicy<Pair> for Minute {
    fn throttle(state: &Pair) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.minute)
    }
}

/// Both on one backend, so that they are decided atomically (on two backends they are checked
/// on each, then charged: `hit_all`'s documented weaker guarantee).
fn pair(clock: &ManualClock) -> Pair {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let on = |rate| {
        throttle_on(rate, clock)
            .shared_backend(Arc::clone(&backend))
            .build()
            .unwrap()
    };
    Pair {
        half_hour: on("30/30min"),
        minute: on("10/min"),
    }
}

/// How many of `count` sequential requests to `url` get a 200.
async fn admitted(url: &str, count: usize) -> usize {
    let client = reqwest::Client::new();
    let mut admitted = 0;
    for _ in 0..count {
        let status = client.get(url).send().await.unwrap().status();
        assert!(
            matches!(status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS),
            "{status}"
        );
        admitted += usize::from(status == StatusCode::OK);
    }
    admitted
}

/// The failure report's sequence: 31 requests admit 10; a minute later 10 more admit 10 (the
/// half-hour limit was charged only for the 10 admitted).
async fn the_reported_sequence(url: &str, clock: &ManualClock) {
    assert_eq!(admitted(url, 31).await, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        admitted(url, 10).await,
        10,
        "the refused requests were charged"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted(url, 11).await, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted(url, 1).await, 0, "30 in half an hour");
}

#[tokio::test]
async fn the_throttled_all_extractor_charges_nothing_when_one_limit_refuses() {
    async fn ordered(_: ThrottledAll<(HalfHour, Minute)>) -> &'static str {
        "ok"
    }
    async fn reversed(_: ThrottledAll<(Minute, HalfHour)>) -> &'static str {
        "ok"
    }
    for reverse in [false, true] {
        let clock = ManualClock::new(1_000_000);
        let route = if reverse { get(reversed) } else { get(ordered) };
        let base = serve(Router::new().route("/", route).with_state(pair(&clock))).await;
        the_reported_sequence(&base, &clock).await;
    }
}

#[tokio::test]
async fn layer_rules_charge_nothing_when_one_refuses() {
    for reverse in [false, true] {
        let clock = ManualClock::new(1_000_000);
        let Pair { half_hour, minute } = pair(&clock);
        let mut rules = vec![ThrottleRule::new(half_hour), ThrottleRule::new(minute)];
        if reverse {
            rules.reverse();
        }
        let base = serve(
            Router::new()
                .route("/", get(|| async { "ok" }))
                .layer(ThrottleLayer::from_rules(rules)),
        )
        .await;
        the_reported_sequence(&base, &clock).await;
    }
}

#[tokio::test]
async fn layer_rules_with_an_async_predicate_are_decided_as_one_too() {
    let clock = ManualClock::new(1_000_000);
    let Pair { half_hour, minute } = pair(&clock);
    let layer = ThrottleLayer::from_rules([
        ThrottleRule::new(half_hour).predicate_async(|_| Box::pin(async { true })),
        ThrottleRule::new(minute),
    ]);
    let base = serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(layer),
    )
    .await;
    the_reported_sequence(&base, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_admit_exactly_and_charge_only_what_they_admit() {
    async fn both(_: ThrottledAll<(HalfHour, Minute)>) -> &'static str {
        "ok"
    }
    let clock = ManualClock::new(1_000_000);
    let base = Arc::new(serve(Router::new().route("/", get(both)).with_state(pair(&clock))).await);
    let client = reqwest::Client::new();
    let mut requests = JoinSet::new();
    for _ in 0..64 {
        let (client, base) = (client.clone(), Arc::clone(&base));
        requests.spawn(async move { client.get(base.as_str()).send().await.unwrap().status() });
    }
    let mut admitted = 0;
    while let Some(status) = requests.join_next().await {
        admitted += usize::from(status.unwrap() == StatusCode::OK);
    }
    assert_eq!(admitted, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        admitted_concurrently(&base, 64).await,
        10,
        "20 of 30 were left"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted_concurrently(&base, 64).await, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted_concurrently(&base, 64).await, 0);
}

async fn admitted_concurrently(url: &str, count: usize) -> usize {
    let client = reqwest::Client::new();
    let mut requests = JoinSet::new();
    for _ in 0..count {
        let (client, url) = (client.clone(), url.to_owned());
        requests.spawn(async move { client.get(url).send().await.unwrap().status() });
    }
    let mut admitted = 0;
    while let Some(status) = requests.join_next().await {
        admitted += usize::from(status.unwrap() == StatusCode::OK);
    }
    admitted
}

#[tokio::test]
async fn separate_extractors_return_the_charges_of_a_refused_request() {
    async fn ordered(_: Throttled<HalfHour>, _: Throttled<Minute>) -> &'static str {
        "ok"
    }
    async fn reversed(_: Throttled<Minute>, _: Throttled<HalfHour>) -> &'static str {
        "ok"
    }
    for reverse in [false, true] {
        let clock = ManualClock::new(1_000_000);
        let route = if reverse { get(reversed) } else { get(ordered) };
        let base = serve(Router::new().route("/", route).with_state(pair(&clock))).await;
        the_reported_sequence(&base, &clock).await;
    }
}

#[tokio::test]
async fn a_layer_and_an_extractor_return_the_charges_of_a_refused_request() {
    async fn minute(_: Throttled<Minute>) -> &'static str {
        "ok"
    }
    async fn half_hour(_: Throttled<HalfHour>) -> &'static str {
        "ok"
    }
    for layer_refuses in [false, true] {
        let clock = ManualClock::new(1_000_000);
        let limits = pair(&clock);
        // The layer runs first; the extractor's refusal returns the layer's charge.
        let (rule, handler) = if layer_refuses {
            (limits.minute.clone(), get(half_hour))
        } else {
            (limits.half_hour.clone(), get(minute))
        };
        let router = Router::new()
            .route("/", handler)
            .route_layer(ThrottleLayer::new(rule))
            .with_state(limits);
        let base = serve(router).await;
        the_reported_sequence(&base, &clock).await;
    }
}

#[tokio::test]
async fn nested_layers_return_the_outer_charge_when_the_inner_refuses() {
    for reverse in [false, true] {
        let clock = ManualClock::new(1_000_000);
        let Pair {
            mut half_hour,
            mut minute,
        } = pair(&clock);
        if reverse {
            std::mem::swap(&mut half_hour, &mut minute);
        }
        let base = serve(
            Router::new()
                .route("/", get(|| async { "ok" }))
                .layer(ThrottleLayer::new(minute))
                .layer(ThrottleLayer::new(half_hour)),
        )
        .await;
        the_reported_sequence(&base, &clock).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_through_separate_extractors_are_charged_only_what_they_admit() {
    async fn both(_: Throttled<HalfHour>, _: Throttled<Minute>) -> &'static str {
        "ok"
    }
    let clock = ManualClock::new(1_000_000);
    let base = serve(Router::new().route("/", get(both)).with_state(pair(&clock))).await;
    assert_eq!(admitted_concurrently(&base, 64).await, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        admitted_concurrently(&base, 64).await,
        10,
        "20 of 30 were left"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted_concurrently(&base, 64).await, 10);
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted_concurrently(&base, 64).await, 0);
}
