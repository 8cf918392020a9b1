//! Redis decisions per second over one shared multiplexed connection (the default) and over a
//! `deadpool-redis` pool (`RedisBackend::from_pool`, one checkout per decision), from the same
//! number of tasks, in the same run, on one `redis-server` started here.
//!
//! ```text
//! cargo bench -p traffik-tests --bench redis_pool            # 3 s per measurement
//! cargo bench -p traffik-tests --bench redis_pool -- 10      # 10 s per measurement
//! BENCH_WORKERS=1 cargo bench -p traffik-tests --bench redis_pool   # tokio worker threads (2)
//! ```
//!
//! Each task runs `RedisBackend::decide` (a fixed window, on Redis's clock) on random keys out of
//! 10 000, one decision at a time. The table also gives the `PING`s Redis counted per decision:
//! `deadpool-redis` recycles each connection it hands out with `UNWATCH` + `PING`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use traffik_core::backend::{Backend, Mode};
use traffik_core::strategy::{FixedWindow, Hit};
use traffik_core::{Context, Rate, RedisBackend};
use traffik_tests::redis_server::RedisServer;

const KEYS: u64 = 10_000;
const TASKS: usize = 64;

/// Decisions per second, p50 and p99 latency (µs), from `tasks` tasks for `seconds`.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // figures for a table; the percentile index is >= 0 and clamped to the last sample
async fn decisions(backend: &Arc<RedisBackend>, tasks: usize, seconds: u64) -> (f64, f64, f64) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let backend = Arc::clone(backend);
        handles.push(tokio::spawn(async move {
            let (context, rate, strategy) =
                (Context::new(), Rate::per_second(1_000), FixedWindow::new());
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ task as u64;
            let mut key = String::new();
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                key.clear();
                let _ = write!(key, "traffik:pool:{{{:012}}}:fixed-window", state % KEYS);
                let hit = Hit::new(0, rate, 1, &context);
                let sent = Instant::now();
                backend
                    .decide(&key, &strategy, hit, Mode::Consume)
                    .await
                    .expect("Redis answers");
                latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task ends"));
    }
    let elapsed = started.elapsed().max(Duration::from_secs(seconds));
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1_000.0;
    (all.len() as f64 / elapsed.as_secs_f64(), at(0.50), at(0.99))
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let server = RedisServer::start();
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
    let multiplexed = runtime
        .block_on(RedisBackend::builder(server.url()).connect())
        .expect("connects");
    let mut setups: Vec<(String, Arc<RedisBackend>)> = vec![(
        "one multiplexed connection (default)".to_owned(),
        Arc::new(multiplexed),
    )];
    for size in [16, 64] {
        let mut config = deadpool_redis::Config::from_url(server.url());
        config.pool = Some(deadpool_redis::PoolConfig::new(size));
        let pool = config
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .expect("a pool");
        let backend = runtime
            .block_on(RedisBackend::from_pool(pool).connect())
            .expect("connects");
        setups.push((format!("deadpool-redis pool of {size}"), Arc::new(backend)));
    }
    println!("| connection | tasks | decisions/s | p50 µs | p99 µs | PINGs per decision |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, backend) in &setups {
        runtime.block_on(decisions(backend, TASKS, 1)); // warm-up: script loaded, pool filled
        let pings = server.calls("ping");
        let evalshas = server.calls("evalsha");
        let (per_second, p50, p99) = runtime.block_on(decisions(backend, TASKS, seconds));
        #[allow(clippy::cast_precision_loss)] // counts far below 2^53
        let pings_per_decision = (server.calls("ping") - pings) as f64
            / (server.calls("evalsha") - evalshas).max(1) as f64;
        println!(
            "| {name} | {TASKS} | {per_second:.0} | {p50:.0} | {p99:.0} | {pings_per_decision:.2} |"
        );
    }
}
