//! One resource, one budget: `HEAD` and `GET`, the spellings of a path, the fallback, and CORS
//! preflights, over real TCP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::{any, get};
use http::{HeaderValue, Method};
use tower_http::cors::CorsLayer;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottlePolicy, ThrottleRule, Throttled};

use crate::support::serve;
use crate::throttle;

/// A throttle kept in the router's state, counting the handler's runs.
#[derive(Clone)]
struct Counted {
    throttle: HttpThrottle,
    runs: Arc<AtomicUsize>,
}

struct FromState;
impl ThrottlePolicy<Counted> for FromState {
    fn throttle(state: &Counted) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.throttle)
    }
}

async fn counted(_: Throttled<FromState>, State(state): State<Counted>) -> &'static str {
    state.runs.fetch_add(1, Ordering::SeqCst);
    "ok"
}

fn state(throttle: HttpThrottle) -> Counted {
    Counted {
        throttle,
        runs: Arc::new(AtomicUsize::new(0)),
    }
}

/// A request: method, path, headers.
type Request = (
    Method,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The statuses of `requests`, in order.
async fn statuses(base: &str, requests: &[Request]) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for (method, path, headers) in requests {
        let mut request = client.request(method.clone(), format!("{base}{path}"));
        for (name, value) in *headers {
            request = request.header(*name, *value);
        }
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    statuses
}

const NONE: &[(&str, &str)] = &[];

#[tokio::test]
async fn head_spends_the_budget_of_get() {
    let state = state(throttle("2/min").build().unwrap());
    let runs = Arc::clone(&state.runs);
    let base = serve(Router::new().route("/", get(counted)).with_state(state)).await;
    let requests = [
        (Method::GET, "/", NONE),
        (Method::GET, "/", NONE),
        (Method::GET, "/", NONE),
        (Method::HEAD, "/", NONE),
        (Method::HEAD, "/", NONE),
        (Method::HEAD, "/", NONE),
    ];
    assert_eq!(
        statuses(&base, &requests).await,
        [200, 200, 429, 429, 429, 429]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the GET handler ran twice");
}

#[tokio::test]
async fn a_path_scope_keys_the_canonical_path() {
    let state = state(throttle("1/min").scope(Scope::Path).build().unwrap());
    let runs = Arc::clone(&state.runs);
    let base = serve(
        Router::new()
            .route("/items/{id}", get(counted))
            .with_state(state),
    )
    .await;
    let requests = [
        (Method::GET, "/items/1", NONE),
        (Method::GET, "/items/%31", NONE),
        (Method::HEAD, "/items/%31", NONE),
        (Method::GET, "/items/2", NONE),
    ];
    assert_eq!(statuses(&base, &requests).await, [200, 429, 429, 200]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn requests_no_route_matched_share_one_budget_per_route_scope() {
    let limit = throttle("2/min").scope(Scope::Route).build().unwrap();
    let base = serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .fallback(|| async { (http::StatusCode::NOT_FOUND, "nothing here") })
            .layer(ThrottleLayer::new(limit)),
    )
    .await;
    let requests = [
        (Method::GET, "/wp-admin", NONE),
        (Method::GET, "/.env", NONE),
        (Method::GET, "/phpinfo.php", NONE),
        (Method::GET, "/", NONE),
    ];
    assert_eq!(statuses(&base, &requests).await, [404, 404, 429, 200]);
}

#[tokio::test]
async fn a_get_rule_covers_head_and_other_spellings_of_its_path() {
    let reads = throttle("1/min").build().unwrap();
    let base = serve(
        Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(ThrottleLayer::from_rules([ThrottleRule::new(reads)
                .methods([Method::GET])
                .path("/items/1")])),
    )
    .await;
    let requests = [
        (Method::GET, "/items/1", NONE),
        (Method::HEAD, "/items/1", NONE),
        (Method::GET, "/items/%31", NONE),
        (Method::GET, "/items/2", NONE),
    ];
    assert_eq!(statuses(&base, &requests).await, [200, 429, 429, 200]);
}

const PREFLIGHT: &[(&str, &str)] = &[
    ("origin", "https://app.example"),
    ("access-control-request-method", "GET"),
];

/// The same request three times.
fn thrice(request: Request) -> [Request; 3] {
    [request.clone(), request.clone(), request]
}

/// Three GETs, each after the browser's preflight.
fn preflighted_gets(path: &'static str) -> Vec<Request> {
    (0..3)
        .flat_map(|_| {
            [
                (Method::OPTIONS, path, PREFLIGHT),
                (Method::GET, path, NONE),
            ]
        })
        .collect()
}

#[tokio::test]
async fn cors_preflights_spend_a_budget_of_their_own_with_the_layer_or_the_extractor() {
    // The layer, with the application answering OPTIONS itself: the preflights do not use up
    // the GETs' budget (2/min), and have 2/min of their own.
    let limit = throttle("2/min").build().unwrap();
    let base = serve(
        Router::new()
            .route("/", any(|| async { "ok" }))
            .layer(ThrottleLayer::new(limit)),
    )
    .await;
    assert_eq!(
        statuses(&base, &preflighted_gets("/")).await,
        [200, 200, 200, 200, 429, 429]
    );

    // The extractor on a handler that answers every method: preflight-shaped requests cannot
    // reach it without limit.
    let state = state(throttle("2/min").build().unwrap());
    let runs = Arc::clone(&state.runs);
    let base = serve(Router::new().route("/", any(counted)).with_state(state)).await;
    let preflights = thrice((Method::OPTIONS, "/", PREFLIGHT));
    assert_eq!(statuses(&base, &preflights).await, [200, 200, 429]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let gets = thrice((Method::GET, "/", NONE));
    assert_eq!(
        statuses(&base, &gets).await,
        [200, 200, 429],
        "the GETs' own budget"
    );
    // An OPTIONS that is not a preflight (no Origin) is an ordinary request (with its own
    // budget: another method).
    let plain = thrice((Method::OPTIONS, "/", NONE));
    assert_eq!(statuses(&base, &plain).await, [200, 200, 429]);
}

#[tokio::test]
async fn counting_preflights_is_an_option() {
    let limit = throttle("2/min").count_preflights(true).build().unwrap();
    let base = serve(
        Router::new()
            .route("/", any(|| async { "ok" }))
            .layer(ThrottleLayer::new(limit)),
    )
    .await;
    assert_eq!(
        statuses(&base, &preflighted_gets("/")).await,
        [200, 200, 429, 429, 429, 429]
    );
}

#[tokio::test]
async fn with_cors_layer_outside_the_throttle_refusals_carry_cors_headers() {
    let limit = throttle("1/min").build().unwrap();
    let cors = CorsLayer::new()
        .allow_origin(HeaderValue::from_static("https://app.example"))
        .allow_methods([Method::GET]);
    let base = serve(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(ThrottleLayer::new(limit))
            .layer(cors),
    )
    .await;
    assert_eq!(
        statuses(&base, &preflighted_gets("/")).await,
        [200, 200, 200, 429, 200, 429]
    );
    let refused = reqwest::Client::new()
        .get(&base)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://app.example",
        "the browser can read the 429"
    );
}
