//! A custom strategy, the reference's way: an async function of the store, the key and the hit,
//! written against the key-value contract (`get`, `set`, `increment_with_ttl`, `lock`) rather
//! than as a pure `Strategy`. It runs on every backend that exposes the contract: the in-memory
//! backend, Redis, and any `KeyValueBackend`.
//!
//! ```text
//! cargo run -p traffik-examples --example custom_strategy
//! ```
//!
//! Prefer a pure `Strategy` (a state transition) when you can: it is decided atomically by every
//! backend (one Lua script on Redis) and gets `check`, refunds and the synchronous path for free.
//! A key-value strategy is responsible for its own atomicity; this one needs none beyond the
//! store's atomic counter.

use std::time::Duration;

use traffik_core::backend::{BackendFuture, KeyValueStore, KeyValueStrategy};
use traffik_core::strategy::Hit;
use traffik_core::{Decision, MaybeReady, MemoryBackend, StatMetadata, StrategyStat, Throttle};

/// Counts each client's hits per period in one counter that expires with the period: a fixed
/// window whose window starts at the client's first hit.
#[derive(Debug)]
struct FirstHitWindow;

impl KeyValueStrategy for FirstHitWindow {
    fn name(&self) -> &'static str {
        "first-hit-window"
    }

    fn hit<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(async move {
            let cost = i64::try_from(hit.cost).unwrap_or(i64::MAX);
            // Atomic on every backend: INCRBY + PEXPIRE in one script on Redis.
            let used = store
                .increment_with_ttl(key, cost, hit.rate.period())
                .await?;
            let used = u64::try_from(used).unwrap_or(0);
            let limit = hit.rate.limit();
            Ok(if used <= limit {
                Decision::allowed(limit, limit - used, hit.rate.period())
            } else {
                Decision::throttled(limit, 0, hit.rate.period(), hit.rate.period())
            })
        })
    }

    fn stat<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(async move {
            let used: u64 = store
                .get(key)
                .await?
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            Ok(StrategyStat::new(
                hit.rate,
                hit.rate.limit().saturating_sub(used),
                Duration::ZERO,
                StatMetadata::None,
            ))
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exports = Throttle::builder("exports", "3/min")
        .key_value_strategy(FirstHitWindow)
        .backend(MemoryBackend::new())
        .build()?;
    for request in 1..=4 {
        let decision = exports.hit("alice").await?;
        println!(
            "request {request}: {} ({} left)",
            if decision.is_allowed() {
                "allowed"
            } else {
                "throttled"
            },
            decision.remaining
        );
    }
    let stat = exports.stat("alice").await?.expect("alice is not exempted");
    println!("alice has {} of 3 left this minute", stat.hits_remaining);
    assert_eq!(stat.hits_remaining, 0);
    Ok(())
}
