use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::http::request::Parts;
use axum::{Router, routing::post};
use traffik_axum::prelude::*;
use traffik_axum::throttled;

static SHARED: LazyLock<Arc<dyn Backend>> = LazyLock::new(|| Arc::new(MemoryBackend::new()));
static MEMORY: LazyLock<MemoryBackend> = LazyLock::new(MemoryBackend::new);
static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(0));

fn by_api_key(parts: &Parts) -> Identity<'_> {
    match parts.headers.get("x-api-key").and_then(|key| key.to_str().ok()) {
        Some(key) => Identity::from(key),
        None => EXEMPTED,
    }
}

async fn by_account(parts: &Parts) -> Identity<'_> {
    Identity::from(parts.uri.path())
}

fn by_length(parts: &Parts) -> u64 {
    parts.uri.path().len() as u64
}

async fn by_lookup(parts: &Parts) -> u64 {
    parts.headers.len() as u64
}

#[throttled(
    rate = "5/s",
    strategy = TokenBucket::new().burst(10),
    key = by_api_key,
    cost = 2,
    uid = "options-search",
    backend = SHARED,
    on_error = allow,
    scope = shared,
    headers = always,
    min_wait = "500ms",
)]
async fn search(body: String) -> String {
    body
}

#[throttled(
    "1/s",
    key = by_account,
    cost = by_lookup,
    backend = MEMORY,
    on_error = OnError::Throttle,
    scope = route_any_method,
    headers = Headers::throttled_only().ietf("upload"),
    min_wait = Duration::from_secs(1),
    context = Context::new().with("plan", "free"),
    on_throttled = ThrottledHandler::new(|_, _, _, _| axum::response::IntoResponse::into_response("slow down")),
    registry = ThrottleRegistry::global(),
    clock = CLOCK,
    strategy = Gcra::new(),
)]
async fn upload() {}

#[throttled("3/min", clock = SystemClock::new(), cost = by_length, key = ClientIp::new().ipv6_prefix(64).identifier(), backend = MemoryBackend::new(), on_error = raise, scope = path, headers = none)]
async fn export() {}

#[throttled("3/min", cost = CostFn::new(|_: &Parts, _: &Context| 4), on_error = throttle, scope = route)]
async fn report() {}

fn main() {
    let _: Router = Router::new()
        .route("/search", post(search))
        .route("/upload", post(upload))
        .route("/export", post(export))
        .route("/report", post(report));
}
