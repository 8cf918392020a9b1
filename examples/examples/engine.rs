//! The traffik engine on its own (no HTTP): the in-memory backend, direct keys.
//!
//! ```text
//! cargo run -p traffik-examples --example engine
//! ```
//!
//! Three clients call an API limited to 5 requests per 10 seconds each; a search endpoint has a
//! burst limit and a sustained limit; an upload costs one unit per megabyte.

use std::time::Duration;

use traffik_core::strategy::{Gcra, SlidingWindowLog, TokenBucket};
use traffik_core::throttle::HitOptions;
use traffik_core::{Decision, MemoryBackend, Outcome, Throttle};

fn describe(decision: &Decision) -> String {
    match decision.outcome {
        Outcome::Allowed => format!(
            "200 OK       remaining {}/{}",
            decision.remaining, decision.limit
        ),
        Outcome::Throttled { wait } => format!(
            "429 Too Many Requests, Retry-After: {}s ({wait:?})",
            decision.retry_after_secs().unwrap_or(1)
        ),
        Outcome::ExceedsCapacity { capacity } => {
            format!("413/429: cost above what this limit ever admits ({capacity})")
        }
        Outcome::Skipped(reason) => format!("200 OK       not limited ({reason:?})"),
        _ => format!("{decision:?}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = MemoryBackend::new();

    // GET /: 5 requests per 10 s per client.
    let api = Throttle::builder("api", "5/10s")
        .backend(backend.clone())
        .build()?;
    println!("GET / (5/10s per client)");
    for client in ["alice", "bob"] {
        for n in 1..=6 {
            let decision = api.hit(client).await?;
            println!("  {client:<6} request {n}: {}", describe(&decision));
        }
    }

    // GET /search: a burst of 2 per second and 20 per minute, both enforced.
    let burst = Throttle::builder("search-burst", "2/s")
        .strategy(Gcra::new().burst(2))
        .backend(backend.clone())
        .build()?;
    let sustained = Throttle::builder("search-sustained", "20/min")
        .strategy(TokenBucket::new())
        .backend(backend.clone())
        .build()?;
    println!("\nGET /search (2/s burst + 20/min sustained)");
    // One after the other: when the sustained limit refuses, the burst charge goes back
    // (`refund_with`, at the time the hit used), so a refused request costs nothing.
    // `traffik_core::throttle::hit_all` decides both as one instead, with nothing to return.
    for n in 1..=4 {
        let charge = HitOptions::new().now(burst.now());
        let first = burst.hit_with("carol", charge).await?;
        let decision = if first.is_allowed() {
            let second = sustained.hit("carol").await?;
            if !second.is_allowed() {
                burst.refund_with("carol", charge).await?;
            }
            second
        } else {
            first
        };
        println!("  carol  request {n}: {}", describe(&decision));
    }

    // POST /upload: cost = size in megabytes, 10 MB per minute, exact sliding log.
    let uploads = Throttle::builder("uploads", "10/min")
        .strategy(SlidingWindowLog::new())
        .backend(backend.clone())
        .build()?;
    println!("\nPOST /upload (10 MB/min, cost = MB)");
    for megabytes in [4, 4, 3, 2, 11] {
        let decision = uploads
            .hit_with("alice", HitOptions::new().cost(megabytes))
            .await?;
        println!("  alice  {megabytes:>2} MB: {}", describe(&decision));
    }

    let stat = uploads.stat("alice").await?.expect("alice is not exempted");
    println!(
        "\nalice's upload quota: {} MB left, next MB in {:?}",
        stat.hits_remaining, stat.wait
    );
    println!("keys tracked in memory: {}", backend.len());
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}
