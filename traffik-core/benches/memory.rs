//! Bytes per tracked key in the in-memory backend, beside governor's keyed limiter, measured
//! by dhat's heap profiler: the heap in use after tracking 1,000,000 distinct clients, divided
//! by the number of clients. Keys are what each would store for a client `10.x.y.z`.
//!
//! `cargo bench -p traffik-core --bench memory` prints a table (Markdown).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::num::NonZeroU32;

use governor::{Quota, RateLimiter};
use traffik_core::backend::{Backend, LockOptions, Mode};
use traffik_core::strategy::{
    DynStrategy, FixedWindow, Gcra, Hit, SlidingWindowCounter, TokenBucket,
};
use traffik_core::{Context, MemoryBackend, Rate};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const CLIENTS: usize = 1_000_000;

fn client(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

fn in_use() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn traffik(strategy: &dyn DynStrategy) -> (usize, usize) {
    let before = in_use();
    let backend = MemoryBackend::builder()
        .max_keys(2 * CLIENTS)
        .lock_options(LockOptions::default())
        .build()
        .unwrap();
    let context = Context::new();
    let mut key = String::new();
    for i in 0..CLIENTS {
        key.clear();
        key.push_str("traffik:api:{");
        key.push_str(&client(i));
        key.push_str("}:");
        key.push_str(strategy.name());
        let hit = Hit::new(1_700_000_000_000, Rate::per_minute(100), 1, &context);
        backend
            .decide_now(&key, strategy, hit, Mode::Consume)
            .unwrap()
            .unwrap();
    }
    let bytes = in_use() - before;
    let key_len = key.len();
    drop(backend);
    (bytes, key_len)
}

/// Governor keyed by `key(i)`.
fn governor(key: impl Fn(usize) -> String) -> usize {
    let before = in_use();
    let limiter = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(100).unwrap()));
    for i in 0..CLIENTS {
        let _ = limiter.check_key(&key(i));
    }
    let bytes = in_use() - before;
    drop(limiter);
    bytes
}

#[allow(clippy::cast_precision_loss)] // byte counts averaged for a table, printed to no decimals
fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    println!("| store ({CLIENTS} clients) | bytes per client | key length |");
    println!("|---|---:|---:|");
    let short = governor(client);
    println!(
        "| governor keyed, the address as key | {:.0} | {} |",
        short as f64 / CLIENTS as f64,
        client(CLIENTS - 1).len()
    );
    let storage_key =
        |i| traffik_core::key::storage_key("traffik", "api", &client(i), None, "fixed-window");
    let same = governor(storage_key);
    println!(
        "| governor keyed, traffik's fixed-window key | {:.0} | {} |",
        same as f64 / CLIENTS as f64,
        storage_key(CLIENTS - 1).len()
    );
    for strategy in [
        &FixedWindow::new() as &dyn DynStrategy,
        &Gcra::new(),
        &TokenBucket::new(),
        &SlidingWindowCounter::new(),
    ] {
        let (bytes, key_len) = traffik(strategy);
        println!(
            "| traffik memory, {} | {:.0} | {key_len} |",
            strategy.name(),
            bytes as f64 / CLIENTS as f64
        );
    }
}
