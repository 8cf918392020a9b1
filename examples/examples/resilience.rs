//! The quickstart on Redis, made to survive Redis: a circuit breaker in front of Redis, and a
//! local in-memory fallback running the same limits while Redis is down or hung.
//!
//! ```text
//! redis-server --port 6379 &                       # or any Redis; REDIS_URL says where
//! cargo run -p traffik-examples --example resilience &
//! for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:3000/; done
//! # 200 200 200 200 200 429: five per 10 s, on Redis
//! kill -STOP $(pgrep -f "redis-server.*6379")      # Redis hangs
//! for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:3000/; done
//! # the first 3 requests wait 250 ms each (the command timeout), then the breaker opens:
//! # "circuit breaker open" in the log, and requests are decided at once on the fallback,
//! # which enforces its own five per 10 s
//! curl -s http://127.0.0.1:3000/breaker            # {"state":"open",...}
//! kill -CONT $(pgrep -f "redis-server.*6379")      # Redis is back: after 10 s two probes
//! # close the breaker ("circuit breaker half-open", then "closed") and Redis decides again
//! ```
//!
//! `TRAFFIK_ADDR` (default `127.0.0.1:3000`) is the address to serve; `REDIS_URL` (default
//! `redis://127.0.0.1:6379`) the Redis. The log (`RUST_LOG`, default `traffik=info`) shows each
//! breaker transition. During an outage each instance limits on its own: see
//! `docs/resilience.md` for what that means for accuracy.

use std::time::Duration;

use axum::Json;
use axum::routing::get;
use traffik_axum::prelude::*;
use traffik_core::backend::{BreakerHandle, failover};
use traffik_examples::quickstart::app;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("traffik=info")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = RedisBackend::builder(url)
        .namespace("quickstart")
        .connect_timeout(Duration::from_secs(2))
        .command_timeout(Duration::from_millis(250))
        .connect()
        .await?;
    // The fallback has the primary's namespace: the keys are the same.
    let local = MemoryBackend::builder().namespace("quickstart").build()?;
    let backend = failover(redis, local)
        .max_retries(1)
        .breaker(|breaker| {
            breaker
                .failure_threshold(3)
                .recovery_timeout(Duration::from_secs(10))
                .success_threshold(2)
        })
        .build()?;
    let breaker = backend.primary().handle();
    let app = app(backend)?.route("/breaker", get(move || breaker_state(breaker.clone())));
    traffik_examples::serve("traffik on Redis, with a fallback", app).await?;
    Ok(())
}

/// The breaker's state, for a health check or a dashboard.
async fn breaker_state(breaker: BreakerHandle) -> Json<serde_json::Value> {
    let info = breaker.info();
    Json(serde_json::json!({
        "state": info.state.as_str(),
        "consecutive_failures": info.consecutive_failures,
        "open_for_ms": info.opened_for.map(|open| open.as_millis()),
        "forced_open": info.forced_open,
    }))
}
