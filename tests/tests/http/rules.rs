//! Engine rules over real TCP: a registry's bypass rules (a path, an internal network) reach
//! every throttle of the registry, through the extractor and the layer alike.

use axum::Router;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, RequestMatch, ThrottleLayer, ThrottlePolicy, Throttled};

use crate::support::serve;
use crate::throttle;

/// Clients are told apart by the `X-Forwarded-For` the loopback "proxy" (the test) writes.
fn behind_proxy() -> ClientIp {
    ClientIp::behind(ProxyHeader::XForwardedFor, TrustedProxies::loopback())
}

/// A registry that exempts `/health` and 10.0.0.0/8 from every throttle.
fn exempting_registry() -> ThrottleRegistry {
    let registry = ThrottleRegistry::new();
    registry
        .add_rules(
            "*",
            [
                Rule::bypass_when(RequestMatch::new().path("/health")),
                Rule::bypass_when(
                    RequestMatch::new().client_in(behind_proxy(), ["10.0.0.0/8".parse().unwrap()]),
                ),
            ],
        )
        .unwrap();
    registry
}

fn one_per_minute(registry: &ThrottleRegistry) -> HttpThrottle {
    throttle("1/min")
        .registry(registry)
        .identifier(behind_proxy().identifier())
        .build()
        .unwrap()
}

#[derive(Clone)]
struct Limit(HttpThrottle);

struct FromState;
impl ThrottlePolicy<Limit> for FromState {
    fn throttle(state: &Limit) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.0)
    }
}

async fn ok() -> &'static str {
    "ok"
}

async fn extracted(_: Throttled<FromState>) -> &'static str {
    "ok"
}

/// The statuses of three requests to `path` from `client`.
async fn thrice(base: &str, path: &str, client: &str) -> Vec<u16> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = http
            .get(format!("{base}{path}"))
            .header("x-forwarded-for", client)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

async fn check(base: &str) {
    assert_eq!(
        thrice(base, "/health", "203.0.113.9").await,
        [200, 200, 200]
    );
    assert_eq!(thrice(base, "/api", "10.1.2.3").await, [200, 200, 200]);
    assert_eq!(thrice(base, "/api", "203.0.113.9").await, [200, 429, 429]);
    // The bypassed requests spent nothing: another outside client still has its budget.
    assert_eq!(thrice(base, "/api", "198.51.100.7").await, [200, 429, 429]);
}

#[tokio::test]
async fn registry_bypass_rules_exempt_health_and_internal_networks_through_the_extractor() {
    let registry = exempting_registry();
    let app = Router::new()
        .route("/health", get(extracted))
        .route("/api", get(extracted))
        .with_state(Limit(one_per_minute(&registry)));
    check(&serve(app).await).await;
}

#[tokio::test]
async fn registry_bypass_rules_exempt_health_and_internal_networks_through_the_layer() {
    let registry = exempting_registry();
    let app = Router::new()
        .route("/health", get(ok))
        .route("/api", get(ok))
        .layer(ThrottleLayer::new(one_per_minute(&registry)));
    check(&serve(app).await).await;
}

#[tokio::test]
async fn a_throttles_own_rules_apply_only_where_they_hold() {
    let registry = ThrottleRegistry::new();
    let writes = throttle("1/min")
        .registry(&registry)
        .identifier(behind_proxy().identifier())
        .rules([Rule::throttle_if_async(
            |parts: &http::request::Parts, _: &Context| {
                let api = parts.uri.path().starts_with("/api");
                Box::pin(async move { api })
            },
        )])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(ok))
        .route("/other", get(ok))
        .layer(ThrottleLayer::new(writes));
    let base = serve(app).await;
    assert_eq!(
        thrice(&base, "/other", "203.0.113.9").await,
        [200, 200, 200]
    );
    assert_eq!(thrice(&base, "/api", "203.0.113.9").await, [200, 429, 429]);
}

#[tokio::test]
async fn an_exemption_covers_only_the_path_as_it_names_it_not_other_spellings() {
    // `/api/../health` and `/health/.` are routed to the catch-all, not to `/health`: an
    // exemption on `/health` must not reach them (a throttle rule may, an exemption may not).
    let registry = exempting_registry();
    let app = Router::new()
        .route("/health", get(ok))
        .route("/{*rest}", get(ok))
        .layer(ThrottleLayer::new(one_per_minute(&registry)));
    let base = serve(app).await;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for path in [
        "/api/../health",
        "/health/.",
        "/api/%2e%2e/health",
        "/health",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 203.0.113.9\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = vec![0; 4096];
        let read = stream.read(&mut buffer).await.unwrap();
        let head = String::from_utf8_lossy(&buffer[..read]).to_string();
        statuses.push(head[9..12].to_owned());
    }
    assert_eq!(statuses, ["200", "429", "429", "200"]);
}
