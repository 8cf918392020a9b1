//! Quickstart: an axum server rate limited by traffik on the in-memory backend (no other
//! servers needed).
//!
//! ```text
//! cargo run -p traffik-examples --example quickstart
//! curl -i http://127.0.0.1:3000/                 # 5 per 10 s per client, JSON
//! curl -i http://127.0.0.1:3000/search?q=rust    # a burst (2/s) and a sustained (20/min) limit
//! curl -i -X POST http://127.0.0.1:3000/upload?mb=4   # costs one unit per megabyte (10 per minute)
//! ```
//!
//! The address comes from `TRAFFIK_ADDR` (default `127.0.0.1:3000`). The routes are in
//! `examples/src/quickstart.rs`; `examples/redis.rs` serves the same ones on Redis.

use traffik_axum::prelude::*;
use traffik_examples::quickstart::app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    traffik_examples::serve("traffik quickstart", app(MemoryBackend::new())?).await?;
    Ok(())
}
