//! Decision latency (p50 / p99 / max) through `Throttle::hit` in the four states of an outage,
//! on a real `redis-server`, in one run:
//!
//! 1. **healthy**: Redis answers; the decision goes through the breaker to Redis.
//! 2. **hung, no breaker**: Redis is SIGSTOPped and nothing wraps it; every decision waits for
//!    the command timeout and then the on-error policy (the baseline the breaker exists for).
//! 3. **hung, breaker closed**: the calls that open the breaker, each waiting on the timeout.
//! 4. **breaker open, no fallback**: decisions fail fast to the on-error policy.
//! 5. **breaker open, memory fallback**: decisions are made on the in-memory fallback.
//!
//! ```text
//! cargo bench -p traffik-tests --bench resilience          # 20 000 decisions per fast case
//! cargo bench -p traffik-tests --bench resilience -- 100000
//! ```
//!
//! The goal while open: p99 at most 1 ms.

use std::time::{Duration, Instant};

use traffik_core::backend::{Backend, BreakerState, CircuitBreaker, failover};
use traffik_core::{MemoryBackend, RedisBackend, Throttle, ThrottleRegistry};
use traffik_tests::redis_server::RedisServer;

const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
const THRESHOLD: u32 = 5;

async fn redis(server: &RedisServer) -> RedisBackend {
    RedisBackend::builder(server.url())
        .namespace("bench")
        .command_timeout(COMMAND_TIMEOUT)
        .connect()
        .await
        .expect("connects")
}

fn throttle(uid: &str, backend: impl Backend) -> Throttle {
    Throttle::builder(uid, "1000000/s")
        .registry(&ThrottleRegistry::new())
        .backend(backend)
        .build()
        .expect("a throttle")
}

/// Latencies of `count` sequential decisions over 1 000 clients.
async fn measure(throttle: &Throttle, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let client = format!("client-{}", n % 1_000);
        let started = Instant::now();
        let decision = throttle.hit(&client).await.expect("a decision");
        latencies.push(started.elapsed());
        std::hint::black_box(decision);
    }
    latencies
}

fn report(case: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "| {case} | {} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        latencies[latencies.len() - 1].as_secs_f64() * 1e6,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20_000);
    let server = RedisServer::start();
    let bare = throttle("bare", redis(&server).await);
    let alone = open_after_threshold(CircuitBreaker::new(redis(&server).await))
        .build()
        .unwrap();
    let alone_handle = alone.handle();
    let open_alone = throttle("open", alone);
    let fallback = MemoryBackend::builder().namespace("bench").build().unwrap();
    let with_fallback = failover(redis(&server).await, fallback)
        .max_retries(0)
        .breaker(open_after_threshold)
        .build()
        .unwrap();
    let handle = with_fallback.primary().handle();
    let guarded = throttle("guarded", with_fallback);

    println!("| case | decisions | p50 (µs) | p99 (µs) | max (µs) |");
    println!("|---|---|---|---|---|");
    measure(&guarded, 1_000).await; // warm-up: connections, scripts
    report(
        "Redis healthy, through the breaker",
        measure(&guarded, count).await,
    );
    report("Redis healthy, no wrapper", measure(&bare, count).await);

    server.freeze();
    report("Redis hung, no breaker", measure(&bare, 5).await);
    report(
        "Redis hung, breaker closed (the calls that open it)",
        measure(&guarded, THRESHOLD as usize).await,
    );
    assert_eq!(handle.state(), BreakerState::Open);
    report(
        "breaker open, memory fallback",
        measure(&guarded, count).await,
    );
    measure(&open_alone, THRESHOLD as usize).await;
    assert_eq!(alone_handle.state(), BreakerState::Open);
    report(
        "breaker open, no fallback (on-error policy)",
        measure(&open_alone, count).await,
    );
    server.thaw();
}

/// Opens after [`THRESHOLD`] failures and stays open for the run.
fn open_after_threshold<B: Backend>(breaker: CircuitBreaker<B>) -> CircuitBreaker<B> {
    breaker
        .failure_threshold(THRESHOLD)
        .recovery_timeout(Duration::from_secs(3_600))
}
