//! traffik-axum end to end: a real axum server on a loopback port, a real HTTP client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::routing::get;
use http::{Method, StatusCode};
use tokio::task::JoinSet;
use traffik_axum::prelude::*;
use traffik_axum::{
    ClientIp, HttpThrottle, ProxyHeader, ThrottleLayer, ThrottlePolicy, ThrottleRejection,
    ThrottleRule, Throttled, TrustedProxies,
};
use traffik_core::ManualClock;

#[path = "../support/mod.rs"]
mod support;

mod all_or_nothing;
mod budgets;
mod client_ip;
mod identity_once;
mod refunds;
mod reservations;
mod rules;
mod shadow;

use support::serve;

/// A throttle with a fresh uid (tests share the global registry) on a clock that only moves
/// when a test moves it, so no window boundary can fall between two requests by chance.
fn throttle(rate: &str) -> traffik_axum::HttpThrottleBuilder {
    throttle_on(rate, &ManualClock::new(1_000_000))
}

fn throttle_on(rate: &str, clock: &ManualClock) -> traffik_axum::HttpThrottleBuilder {
    static N: AtomicUsize = AtomicUsize::new(0);
    HttpThrottle::builder(format!("e2e-{}", N.fetch_add(1, Ordering::Relaxed)), rate)
        .backend(MemoryBackend::new())
        .clock(clock.clone())
}

/// A throttle that trusts the loopback peer as a proxy (every test request comes from it).
fn behind_local_proxy(rate: &str) -> HttpThrottle {
    throttle(rate)
        .identifier(
            ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::loopback()).identifier(),
        )
        .build()
        .unwrap()
}

async fn status(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.unwrap().status()
}

/// State-kept throttles, named by policies.
#[derive(Clone)]
struct Limits {
    burst: HttpThrottle,
    sustained: HttpThrottle,
}

struct Burst;
impl ThrottlePolicy<Limits> for Burst {
    fn throttle(state: &Limits) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.burst)
    }
}

struct Sustained;
impl ThrottlePolicy<Limits> for Sustained {
    fn throttle(state: &Limits) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.sustained)
    }
}

fn limits(burst: &str, sustained: &str, clock: &ManualClock) -> Limits {
    Limits {
        burst: throttle_on(burst, clock)
            .headers(Headers::always())
            .build()
            .unwrap(),
        sustained: throttle_on(sustained, clock).build().unwrap(),
    }
}

#[tokio::test]
async fn two_per_second_gives_200_200_then_429_with_retry_after_and_headers() {
    async fn one(throttled: Throttled<Burst>) -> (Throttled<Burst>, &'static str) {
        (throttled, "ok")
    }
    let app = Router::new().route("/", get(one)).with_state(limits(
        "2/s",
        "1000/min",
        &ManualClock::new(1_000_000),
    ));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    let first = client.get(&base).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert_eq!(status(&client, &base).await, StatusCode::OK);
    let refused = client.get(&base).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        refused.text().await.unwrap(),
        "Too many requests. Retry in 1 seconds."
    );
}

#[tokio::test]
async fn two_throttles_on_one_route_enforce_both_limits() {
    async fn search(_: Throttled<Burst>, _: Throttled<Sustained>) -> &'static str {
        "results"
    }
    let clock = ManualClock::new(1_000_000);
    let app = Router::new()
        .route("/search", get(search))
        .with_state(limits("2/s", "3/min", &clock));
    let url = format!("{}/search", serve(app).await);
    let client = reqwest::Client::new();
    assert_eq!(status(&client, &url).await, StatusCode::OK);
    assert_eq!(status(&client, &url).await, StatusCode::OK);
    assert_eq!(
        status(&client, &url).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the burst"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(status(&client, &url).await, StatusCode::OK);
    assert_eq!(
        status(&client, &url).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the sustained limit: 3 per minute"
    );
}

#[tokio::test]
async fn route_templates_share_one_budget_and_routes_are_separate() {
    async fn item(_: Throttled<Burst>) -> &'static str {
        "item"
    }
    let app = Router::new()
        .route("/items/{id}", get(item))
        .route("/other", get(item))
        .with_state(limits("2/min", "1000/min", &ManualClock::new(1_000_000)));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    assert_eq!(
        status(&client, &format!("{base}/items/1")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&client, &format!("{base}/items/2")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&client, &format!("{base}/items/3")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&client, &format!("{base}/other")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn exempted_clients_skip_the_throttle_and_costs_consume_more() {
    let exempt = throttle("1/min")
        .identifier(Identifier::new(|parts: &Parts| {
            match parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
                Some("internal") => EXEMPTED,
                Some(key) => Identity::from(key),
                None => Identity::from("anonymous"),
            }
        }))
        .build()
        .unwrap();
    async fn costly(
        State(throttle): State<HttpThrottle>,
        parts: Parts,
    ) -> Result<String, ThrottleRejection> {
        let cost = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("cost="))
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let decision = throttle.enforce(&parts).cost(cost).await?;
        Ok(decision.remaining.to_string())
    }
    let costs = throttle("10/min").build().unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(exempt))
        .merge(
            Router::new()
                .route("/costly", get(costly))
                .with_state(costs),
        );
    let base = serve(app).await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = client
            .get(&base)
            .header("x-api-key", "internal")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let keyed = |key: &'static str| client.get(&base).header("x-api-key", key).send();
    assert_eq!(keyed("alice").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        keyed("alice").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(keyed("bob").await.unwrap().status(), StatusCode::OK);

    let costly_url = |cost: u64| format!("{base}/costly?cost={cost}");
    let response = client.get(costly_url(7)).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "3");
    assert_eq!(
        status(&client, &costly_url(4)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(status(&client, &costly_url(3)).await, StatusCode::OK);
}

#[tokio::test]
async fn middleware_rules_match_by_path_method_and_predicate() {
    let writes = throttle("1/min").build().unwrap();
    let admin = throttle("1/min").build().unwrap();
    let layer = ThrottleLayer::from_rules([
        ThrottleRule::new(writes)
            .path("/api/**")
            .methods([Method::POST]),
        ThrottleRule::new(admin)
            .path("/admin/*")
            .predicate(|parts| !parts.headers.contains_key("x-trusted")),
    ]);
    let app = Router::new()
        .route(
            "/api/v1/items",
            get(|| async { "list" }).post(|| async { "created" }),
        )
        .route("/apixyz", axum::routing::post(|| async { "not api" }))
        .route("/admin/{page}", get(|| async { "admin" }))
        .layer(layer);
    let base = serve(app).await;
    let client = reqwest::Client::new();
    let post = |path: &str| client.post(format!("{base}{path}")).send();
    assert_eq!(
        post("/api/v1/items").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        post("/api/v1/items").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // GETs and other paths are not covered by the write rule.
    assert_eq!(
        status(&client, &format!("{base}/api/v1/items")).await,
        StatusCode::OK
    );
    assert_eq!(post("/apixyz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(post("/apixyz").await.unwrap().status(), StatusCode::OK);
    // The admin rule: one per minute, except for requests the predicate lets through.
    assert_eq!(
        status(&client, &format!("{base}/admin/a")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&client, &format!("{base}/admin/b")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the layer's budget is shared across the paths it covers"
    );
    let trusted = client
        .get(format!("{base}/admin/c"))
        .header("x-trusted", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(trusted.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let untrusting = throttle("1/min").build().unwrap();
    let behind_proxy = behind_local_proxy("1/min");
    let app = Router::new()
        .route("/direct", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(untrusting))
        .merge(
            Router::new()
                .route("/proxied", get(|| async { "ok" }))
                .layer(ThrottleLayer::new(behind_proxy)),
        );
    let base = serve(app).await;
    let client = reqwest::Client::new();
    // (path, X-Forwarded-For, expected), in order.
    let steps = [
        // The peer (127.0.0.1) is not trusted here: rotating X-Forwarded-For does not help.
        ("/direct", "1.1.1.1", StatusCode::OK),
        ("/direct", "2.2.2.2", StatusCode::TOO_MANY_REQUESTS),
        // Behind a trusted proxy, each forwarded client has its own bucket.
        ("/proxied", "1.1.1.1", StatusCode::OK),
        ("/proxied", "2.2.2.2", StatusCode::OK),
        ("/proxied", "1.1.1.1", StatusCode::TOO_MANY_REQUESTS),
        // A client prepending a fake hop is still keyed by what the proxy appended.
        (
            "/proxied",
            "9.9.9.9, 1.1.1.1",
            StatusCode::TOO_MANY_REQUESTS,
        ),
    ];
    for (path, xff, expected) in steps {
        let response = client
            .get(format!("{base}{path}"))
            .header("x-forwarded-for", xff)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            expected,
            "{path} with X-Forwarded-For: {xff}"
        );
    }
}

#[tokio::test]
async fn hostile_headers_never_crash_and_land_in_the_peer_bucket() {
    let behind_proxy = behind_local_proxy("3/min");
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(behind_proxy));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    let huge = "9".repeat(32 * 1024);
    let values: Vec<reqwest::header::HeaderValue> = vec![
        reqwest::header::HeaderValue::from_static("not-an-ip, , ;;, [::1"),
        reqwest::header::HeaderValue::from_bytes(b"\xff\xfe\xfd").unwrap(),
        reqwest::header::HeaderValue::from_str(&huge).unwrap(),
    ];
    for value in values {
        let response = client
            .get(&base)
            .header("x-forwarded-for", value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "unusable headers: the peer's bucket"
        );
    }
    // All three landed in the peer's bucket (127.0.0.1), which is now empty.
    assert_eq!(status(&client, &base).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_requests_against_three_per_five_seconds_admit_exactly_three() {
    let limited = throttle("3/5s").build().unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(ThrottleLayer::new(limited));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    let mut requests = JoinSet::new();
    for _ in 0..10 {
        let (client, base) = (client.clone(), base.clone());
        requests.spawn(async move { status(&client, &base).await });
    }
    let mut ok = 0;
    let mut refused = 0;
    while let Some(status) = requests.join_next().await {
        match status.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, refused), (3, 7));
}

#[tokio::test]
async fn the_headers_layer_carries_extractor_headers_to_successes() {
    async fn plain(_: Throttled<Burst>) -> &'static str {
        "ok"
    }
    let app = Router::new()
        .route("/", get(plain))
        .layer(RateLimitHeadersLayer::new())
        .with_state(limits("3/min", "1000/min", &ManualClock::new(1_000_000)));
    let base = serve(app).await;
    let response = reqwest::get(&base).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-ratelimit-limit"], "3");
    assert_eq!(response.headers()["x-ratelimit-remaining"], "2");
}
