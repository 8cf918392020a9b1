//! Memcached decisions per second beside Redis's, from 1 and 64 tasks, in the same run, on one
//! `memcached` and one `redis-server` started here.
//!
//! ```text
//! cargo bench -p traffik-tests --bench memcached            # 3 s per measurement
//! cargo bench -p traffik-tests --bench memcached -- 10      # 10 s per measurement
//! BENCH_WORKERS=1 cargo bench -p traffik-tests --bench memcached   # tokio worker threads (2)
//! ```
//!
//! Each task runs `Backend::decide` (a fixed window and GCRA, on the caller's clock for both
//! backends) on random keys out of 10 000, one decision at a time. A memcached decision is a
//! read and a conditional write (two round trips); a Redis decision is one script call.
//!
//! Then contention: every task on one hot key, at a rate that admits every hit (so every
//! decision writes), with memcached's compare-and-swap retries per decision
//! (`MemcachedBackend::lost_races`) and the decisions that ran out of attempts
//! (`BackendError::Contention`).

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use traffik_core::backend::redis::TimeSource;
use traffik_core::backend::{Backend, BackendError, Mode};
use traffik_core::strategy::{DynStrategy, FixedWindow, Gcra, Hit};
use traffik_core::{Context, MemcachedBackend, Millis, Rate, RedisBackend};
use traffik_tests::memcached_server::MemcachedServer;
use traffik_tests::redis_server::RedisServer;

const KEYS: u64 = 10_000;

fn now() -> Millis {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// What one measurement saw.
struct Measured {
    /// Decisions that returned.
    decided: u64,
    /// Decisions that failed with `BackendError::Contention`.
    contended: u64,
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Decisions per second, p50 and p99 latency (µs), from `tasks` tasks for `seconds`, on `keys`
/// keys at `rate` per second each.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // figures for a table; the percentile index is >= 0 and clamped to the last sample
async fn decisions(
    backend: &Arc<dyn Backend>,
    strategy: &Arc<dyn DynStrategy>,
    tasks: usize,
    seconds: u64,
    (keys, rate): (u64, Rate),
) -> Measured {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (backend, strategy) = (Arc::clone(backend), Arc::clone(strategy));
        handles.push(tokio::spawn(async move {
            let context = Context::new();
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut contended = 0_u64;
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ task as u64;
            let mut key = String::new();
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                key.clear();
                let _ = write!(
                    key,
                    "traffik:bench:{{{:012}}}:{}",
                    state % keys,
                    strategy.name()
                );
                let hit = Hit::new(now(), rate, 1, &context);
                let sent = Instant::now();
                match backend
                    .decide(&key, strategy.as_ref(), hit, Mode::Consume)
                    .await
                {
                    Ok(_) => {
                        latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX))
                    }
                    Err(BackendError::Contention { .. }) => contended += 1,
                    Err(error) => panic!("the backend fails: {error}"),
                }
            }
            (latencies, contended)
        }));
    }
    let (mut all, mut contended) = (Vec::new(), 0);
    for handle in handles {
        let (latencies, lost) = handle.await.expect("task ends");
        all.extend(latencies);
        contended += lost;
    }
    let elapsed = started.elapsed().max(Duration::from_secs(seconds));
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1_000.0;
    Measured {
        decided: all.len() as u64,
        contended,
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let memcached = MemcachedServer::start();
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::env::var("BENCH_WORKERS")
                .ok()
                .and_then(|workers| workers.parse().ok())
                .unwrap_or(2),
        )
        .enable_all()
        .build()
        .unwrap();
    let memcached_backend = runtime.block_on(async {
        MemcachedBackend::builder([memcached.url()])
            .connections(64)
            .build()
            .expect("a valid backend")
    });
    let memcached: Arc<dyn Backend> = Arc::new(memcached_backend.clone());
    let redis: Arc<dyn Backend> = Arc::new(
        runtime
            .block_on(
                RedisBackend::builder(redis.url())
                    .time_source(TimeSource::Caller)
                    .connect(),
            )
            .expect("connects"),
    );
    let strategies: [Arc<dyn DynStrategy>; 2] = [
        Arc::new(FixedWindow::new()),
        Arc::new(Gcra::new().burst(1_000)),
    ];
    let spread = (KEYS, Rate::per_second(1_000));
    println!(
        "| strategy | tasks | memcached decisions/s (p50 / p99 µs) | CAS retries per decision | Redis decisions/s (p50 / p99 µs) | memcached / Redis |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for strategy in &strategies {
        for tasks in [1, 64] {
            let mut row = Vec::new();
            let mut retries = 0;
            for backend in [&memcached, &redis] {
                runtime.block_on(decisions(backend, strategy, tasks, 1, spread)); // warm-up
                let before = memcached_backend.lost_races();
                row.push(runtime.block_on(decisions(backend, strategy, tasks, seconds, spread)));
                retries += memcached_backend.lost_races() - before;
            }
            let (m, r) = (&row[0], &row[1]);
            println!(
                "| {} | {tasks} | {:.0} ({:.0} / {:.0}) | {:.2} | {:.0} ({:.0} / {:.0}) | {:.2}× |",
                strategy.name(),
                m.per_second,
                m.p50_us,
                m.p99_us,
                retries as f64 / m.decided.max(1) as f64,
                r.per_second,
                r.p50_us,
                r.p99_us,
                m.per_second / r.per_second
            );
        }
    }
    // Every hit admitted, so every decision writes and races the others on the one key.
    let hot = (1, Rate::per_second(100_000_000));
    println!();
    println!(
        "| strategy | tasks on one key | memcached decisions/s (p50 / p99 µs) | CAS retries per decision | out of attempts | Redis decisions/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for strategy in &strategies {
        for tasks in [1, 8, 64] {
            let before = memcached_backend.lost_races();
            let m = runtime.block_on(decisions(&memcached, strategy, tasks, seconds, hot));
            let retries = memcached_backend.lost_races() - before;
            let r = runtime.block_on(decisions(&redis, strategy, tasks, seconds, hot));
            println!(
                "| {} | {tasks} | {:.0} ({:.0} / {:.0}) | {:.2} | {} | {:.0} |",
                strategy.name(),
                m.per_second,
                m.p50_us,
                m.p99_us,
                retries as f64 / (m.decided + m.contended).max(1) as f64,
                m.contended,
                r.per_second
            );
        }
    }
}
