//! The observability example's application: `GET /` limited per client, and `GET /metrics`
//! serving every traffik metric in Prometheus text format through
//! `metrics-exporter-prometheus`.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use traffik_axum::prelude::*;
use traffik_axum::{HttpThrottle, ThrottlePolicy, Throttled};
use traffik_core::telemetry;

/// The uid of `GET /`'s throttle: the `throttle` label of its metrics.
pub const INDEX_UID: &str = "observability-index";

/// Installs the Prometheus recorder as the process's `metrics` recorder, describes traffik's
/// metrics to it (their `# HELP` lines), and starts its upkeep (histograms are drained every
/// 5 s). Call it before building throttles' traffic: a throttle registers its counters at its
/// first decision.
///
/// # Errors
/// When another recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        // Backend latency buckets from 100 µs to 1 s, in seconds.
        .set_buckets(&[
            0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0,
        ])?
        .install_recorder()?;
    telemetry::describe_metrics();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

#[derive(Clone)]
struct AppState {
    index: HttpThrottle,
    metrics: PrometheusHandle,
}

struct Index;

impl ThrottlePolicy<AppState> for Index {
    fn throttle(state: &AppState) -> Result<&HttpThrottle, &ConfigError> {
        Ok(&state.index)
    }
}

/// `GET /`: 5 requests per 10 seconds per client.
async fn index(throttled: Throttled<Index>) -> (Throttled<Index>, Json<Value>) {
    let remaining = throttled.decision().remaining;
    (
        throttled,
        Json(json!({ "message": "hello from traffik", "remaining": remaining })),
    )
}

/// `GET /metrics`: Prometheus text format (not rate limited: the scraper must always get in).
async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The routes, on the in-memory backend, reporting to `metrics`.
///
/// # Errors
/// When the throttle's settings cannot work.
pub fn app(metrics: PrometheusHandle) -> Result<Router, ConfigError> {
    let state = AppState {
        index: HttpThrottle::builder(INDEX_UID, "5/10s")
            .backend(MemoryBackend::new())
            .headers(Headers::always())
            .build()?,
        metrics,
    };
    Ok(Router::new()
        .route("/", get(index))
        .route("/metrics", get(scrape))
        .with_state(state))
}
