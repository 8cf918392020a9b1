//! The production setup: the quickstart's routes and limits on Redis, so every instance of the
//! service shares one budget per client.
//!
//! ```text
//! redis-server --port 6379 &                        # or any Redis; REDIS_URL says where
//! cargo build -p traffik-examples --example redis
//! TRAFFIK_ADDR=127.0.0.1:3000 cargo run -p traffik-examples --example redis &
//! TRAFFIK_ADDR=127.0.0.1:3001 cargo run -p traffik-examples --example redis &
//! sleep 2   # until both print "listening"
//! for port in 3000 3001 3000 3001 3000 3001; do curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:$port/; done
//! # 200 200 200 200 200 429: five per 10 s, shared by both instances
//! ```
//!
//! `REDIS_URL` (default `redis://127.0.0.1:6379`) may carry a password and database
//! (`redis://:secret@host:6379/2`); `REDIS_CLUSTER` (comma-separated seed URLs) selects a Redis
//! Cluster instead. Decisions read Redis's clock, so instances need no clock agreement.
//!
//! traffik reports through `tracing`: without a subscriber its warnings (an evicting server,
//! a clock offset, a backend failing and the on-error policy letting requests through) go
//! nowhere. This example installs one (`RUST_LOG`, default `traffik=info`).

use std::time::Duration;

use traffik_axum::prelude::*;
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
    let builder = match std::env::var("REDIS_CLUSTER") {
        Ok(seeds) => RedisBackend::cluster(seeds.split(',').map(str::trim)),
        Err(_) => RedisBackend::builder(
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        ),
    };
    let backend = builder
        .namespace("quickstart")
        .connect_timeout(Duration::from_secs(2))
        .command_timeout(Duration::from_millis(250))
        .connect()
        .await?;
    println!("sharing limits through {backend:?}");
    traffik_examples::serve("traffik on Redis", app(backend)?).await?;
    Ok(())
}
