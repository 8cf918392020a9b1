//! The quickstart's routes and limits on Memcached, so every instance of the service shares one
//! budget per client.
//!
//! ```text
//! memcached -p 11211 -u memcache &   # or any memcached 1.6+; MEMCACHED_URL says where
//! cargo build -p traffik-examples --example memcached
//! TRAFFIK_ADDR=127.0.0.1:3000 cargo run -p traffik-examples --example memcached &
//! TRAFFIK_ADDR=127.0.0.1:3001 cargo run -p traffik-examples --example memcached &
//! sleep 2   # until both print "listening"
//! for port in 3000 3001 3000 3001 3000 3001; do curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:$port/; done
//! # 200 200 200 200 200 429: five per 10 s, shared by both instances
//! ```
//!
//! `MEMCACHED_URL` (default `memcache://127.0.0.1:11211`) may list several servers separated by
//! commas; keys are spread over them by rendezvous hashing. Memcached has no clock a command can
//! read, so decisions use each instance's clock: keep the fleet's clocks in sync (NTP). See
//! `docs/memcached.md`.
//!
//! traffik reports through `tracing`; this example installs a subscriber (`RUST_LOG`, default
//! `traffik=info`), so a failing memcached and the on-error policy show up in the log.

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
    let urls =
        std::env::var("MEMCACHED_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
    let backend = MemcachedBackend::builder(urls.split(',').map(str::trim))
        .namespace("quickstart")
        .connect_timeout(Duration::from_secs(2))
        .command_timeout(Duration::from_millis(250))
        .build()?;
    println!("sharing limits through {backend:?}");
    traffik_examples::serve("traffik on Memcached", app(backend)?).await?;
    Ok(())
}
