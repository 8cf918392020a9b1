//! `#[throttled]` end to end: routers built from annotated handlers, served on a loopback port,
//! called with a real HTTP client. Each test has its own clock, so no window boundary falls
//! between two requests by chance.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use traffik_axum::prelude::*;
use traffik_axum::{RequestMatch, throttled};
use traffik_core::ManualClock;

mod support;

use support::serve;

static MEMORY: LazyLock<MemoryBackend> = LazyLock::new(MemoryBackend::new);

fn clock() -> ManualClock {
    ManualClock::new(1_000_000)
}

static BASIC_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

#[throttled("2/s", clock = BASIC_CLOCK, backend = MEMORY, headers = throttled_only)]
async fn basic() -> &'static str {
    "ok"
}

#[tokio::test]
async fn two_per_second_gives_two_successes_then_a_429_with_retry_after() {
    let base = serve(Router::new().route("/", get(basic))).await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let response = client.get(&base).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    let refused = client.get(&base).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["x-ratelimit-limit"], "2");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    BASIC_CLOCK.advance(Duration::from_secs(1));
    assert_eq!(
        client.get(&base).send().await.unwrap().status(),
        StatusCode::OK
    );
}

static TWO_LIMITS_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

#[throttled("3/min", "5/hour", clock = TWO_LIMITS_CLOCK, backend = MEMORY)]
async fn two_limits() -> &'static str {
    "ok"
}

#[tokio::test]
async fn both_limits_of_one_attribute_are_enforced() {
    let base = serve(Router::new().route("/", get(two_limits))).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(client.get(&base).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "the minute limit");
    // A new minute: the minute limit has room again, the hour limit for two more (the refused
    // 4th request charged neither).
    TWO_LIMITS_CLOCK.advance(Duration::from_secs(60));
    statuses.clear();
    for _ in 0..3 {
        statuses.push(client.get(&base).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "the hour limit");
}

static REPORTED_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

/// The failure report's attribute: the slow limit first.
#[throttled("30/30min", "10/min", clock = REPORTED_CLOCK, backend = MEMORY)]
async fn reported() -> &'static str {
    "ok"
}

#[tokio::test]
async fn a_refusal_by_one_rate_of_an_attribute_charges_none_of_the_others() {
    let base = serve(Router::new().route("/", get(reported))).await;
    let client = reqwest::Client::new();
    let admitted = |count: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let mut admitted = 0;
            for _ in 0..count {
                let status = client.get(&base).send().await.unwrap().status();
                admitted += usize::from(status == StatusCode::OK);
            }
            admitted
        }
    };
    assert_eq!(admitted(31).await, 10);
    REPORTED_CLOCK.advance(Duration::from_secs(60));
    assert_eq!(
        admitted(10).await,
        10,
        "the 21 refused requests charged 30/30min"
    );
}

static KEYS_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

/// Clients by API key; requests without one are not limited.
async fn by_api_key(parts: &Parts) -> Identity<'_> {
    match parts.headers.get("x-api-key").map(|key| key.to_str()) {
        Some(Ok(key)) => Identity::from(key.to_owned()),
        _ => EXEMPTED,
    }
}

/// `?units=N` costs N (1 without it).
fn units(parts: &Parts) -> u64 {
    parts
        .uri
        .query()
        .and_then(|query| query.strip_prefix("units="))
        .and_then(|units| units.parse().ok())
        .unwrap_or(1)
}

#[throttled("10/min", key = by_api_key, cost = units, clock = KEYS_CLOCK, backend = MEMORY)]
async fn metered() -> &'static str {
    "ok"
}

#[tokio::test]
async fn the_key_and_cost_functions_decide_who_pays_and_how_much() {
    let base = serve(Router::new().route("/", get(metered))).await;
    let client = reqwest::Client::new();
    let call = |key: Option<&'static str>, units: u64| {
        let mut request = client.get(format!("{base}/?units={units}"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(Some("alice"), 4).await, 200);
    assert_eq!(call(Some("alice"), 4).await, 200);
    assert_eq!(call(Some("alice"), 4).await, 429, "alice has 2 units left");
    assert_eq!(
        call(Some("alice"), 2).await,
        200,
        "which a cheaper call fits"
    );
    assert_eq!(call(Some("bob"), 10).await, 200, "bob has his own budget");
    for _ in 0..20 {
        assert_eq!(call(None, 10).await, 200, "no key: exempted");
    }
}

static UID_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

#[throttled("1/min", clock = UID_CLOCK, backend = MEMORY)]
async fn first() -> &'static str {
    "first"
}

#[throttled("1/min", clock = UID_CLOCK, backend = MEMORY)]
async fn second() -> &'static str {
    "second"
}

static SHARED: LazyLock<Result<HttpThrottle, ConfigError>> = LazyLock::new(|| {
    HttpThrottle::builder("macros-shared", "1/min")
        .backend(MEMORY.clone())
        .clock(UID_CLOCK.clone())
        .scope(Scope::Shared)
        .build()
});

#[throttled(SHARED)]
async fn shared_one() -> &'static str {
    "one"
}

#[throttled(SHARED)]
async fn shared_two() -> &'static str {
    "two"
}

#[tokio::test]
async fn handlers_with_the_same_rate_have_their_own_budgets_unless_they_reuse_a_throttle() {
    let app = Router::new()
        .route("/first", get(first))
        .route("/second", get(second))
        .route("/shared-one", get(shared_one))
        .route("/shared-two", get(shared_two));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let request = client.get(format!("{base}{path}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/first").await, 200);
    assert_eq!(get("/second").await, 200, "a budget of its own");
    assert_eq!(get("/first").await, 429);
    assert_eq!(get("/shared-one").await, 200);
    assert_eq!(get("/shared-two").await, 429, "one throttle, one budget");
    // The uid scheme: module path, then the function's name.
    let registry = ThrottleRegistry::global();
    assert!(registry.contains("macros.first"), "{:?}", registry.uids());
    assert!(registry.contains("macros.second"));
}

static BODY_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

#[throttled("1/min", clock = BODY_CLOCK, backend = MEMORY)]
async fn create(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(body)
}

#[tokio::test]
async fn the_limit_is_checked_before_the_body_is_read() {
    let base = serve(Router::new().route("/", post(create))).await;
    let client = reqwest::Client::new();
    let allowed = client
        .post(&base)
        .json(&serde_json::json!({"name": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.json::<serde_json::Value>().await.unwrap()["name"],
        "first"
    );
    // Malformed and refused: the 429 answers, not the JSON rejection.
    let refused = client
        .post(&base)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
}

static BYPASS_CLOCK: LazyLock<ManualClock> = LazyLock::new(clock);

#[throttled("1/min", uid = "attr-bypass", clock = BYPASS_CLOCK, backend = MEMORY)]
async fn bypassable() -> &'static str {
    "ok"
}

#[tokio::test]
async fn registry_rules_reach_throttles_declared_by_the_attribute() {
    // A glob: the declared throttle is built when the router is.
    ThrottleRegistry::global()
        .add_rules(
            "attr-bypass*",
            [Rule::bypass_when(RequestMatch::new().predicate(|parts| {
                parts.headers.contains_key("x-internal")
            }))],
        )
        .unwrap();
    let base = serve(Router::new().route("/", get(bypassable))).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let internal = client
            .get(&base)
            .header("x-internal", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(internal.status(), StatusCode::OK);
    }
    assert_eq!(
        client.get(&base).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(&base).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
