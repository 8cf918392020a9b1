//! Redis decisions per second and latency, beside `redis-benchmark` running the same script
//! with the same arguments at the same concurrency, in the same run (the floor: Redis's own
//! cost for the script, with the leanest possible client).
//!
//! ```text
//! cargo bench -p traffik-tests --bench redis            # 3 s per measurement
//! cargo bench -p traffik-tests --bench redis -- 10      # 10 s per measurement
//! ```
//!
//! traffik's side is `RedisBackend::decide` from N tasks sharing the backend (one multiplexed
//! connection), each on random keys out of 10 000, on Redis's clock. `redis-benchmark` runs
//! `EVALSHA` of the very script with the same arguments on the same key pattern: with one
//! connection and one request at a time for 1 task, and with one connection pipelining 64
//! requests (`-P 64`, the same number in flight on one socket) and with 64 connections for 64.

use std::fmt::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use traffik_core::backend::{Backend, KeyedHit, Mode};
use traffik_core::strategy::{DynStrategy, FixedWindow, Gcra, Hit, SlidingWindowLog, TokenBucket};
use traffik_core::{Context, Rate, RedisBackend};
use traffik_tests::redis_server::RedisServer;

const KEYS: u64 = 10_000;

/// Requests of two limits each (a fixed window and GCRA on one client's keys): decided as one
/// (`decide_all`, one script call) or one after the other (two calls), from `tasks` tasks.
async fn two_limits(
    backend: &Arc<RedisBackend>,
    together: bool,
    tasks: usize,
    seconds: u64,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let backend = Arc::clone(backend);
        handles.push(tokio::spawn(async move {
            let (context, rate) = (Context::new(), Rate::per_second(1_000));
            let (window, gcra) = (FixedWindow::new(), Gcra::new().burst(1_000));
            let mut latencies = Vec::with_capacity(1 << 16);
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ task as u64;
            while Instant::now() < deadline {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let client = state % KEYS;
                let first = format!("traffik:pair-a:{{{client:012}}}:fixed-window");
                let second = format!("traffik:pair-b:{{{client:012}}}:gcra");
                let hit = Hit::new(0, rate, 1, &context);
                let hits = [
                    KeyedHit {
                        key: &first,
                        strategy: &window,
                        hit,
                    },
                    KeyedHit {
                        key: &second,
                        strategy: &gcra,
                        hit,
                    },
                ];
                let started = Instant::now();
                if together {
                    backend
                        .decide_all(&hits, Mode::Consume)
                        .await
                        .expect("Redis answers");
                } else {
                    for hit in &hits {
                        backend
                            .decide(hit.key, hit.strategy, hit.hit, Mode::Consume)
                            .await
                            .expect("Redis answers");
                    }
                }
                latencies.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            latencies
        }));
    }
    gather(handles, seconds).await
}

/// Every task's latencies (ns), as throughput over `seconds` and percentiles.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // figures for a table; the percentile index is >= 0 and clamped to the last sample
async fn gather(handles: Vec<tokio::task::JoinHandle<Vec<u64>>>, seconds: u64) -> Measured {
    let started = Instant::now();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task ends"));
    }
    let elapsed = started.elapsed().max(Duration::from_secs(seconds));
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1_000.0;
    Measured {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

struct Measured {
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn traffik(
    backend: &Arc<RedisBackend>,
    strategy: &Arc<dyn DynStrategy>,
    tasks: usize,
    seconds: u64,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (backend, strategy) = (Arc::clone(backend), Arc::clone(strategy));
        handles.push(tokio::spawn(async move {
            let context = Context::new();
            let rate = Rate::per_second(1_000);
            let mut latencies = Vec::with_capacity(1 << 16);
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
                    state % KEYS,
                    strategy.name()
                );
                let hit = Hit::new(0, rate, 1, &context);
                let started = Instant::now();
                backend
                    .decide(&key, strategy.as_ref(), hit, Mode::Consume)
                    .await
                    .expect("Redis answers");
                latencies.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            latencies
        }));
    }
    gather(handles, seconds).await
}

/// `redis-benchmark` on the script `sha` with `args` (after the key): requests/s, p50, p99.
fn redis_benchmark(
    port: u16,
    clients: usize,
    pipeline: usize,
    requests: u64,
    sha: &str,
    strategy: &str,
    args: &[String],
) -> Measured {
    let key = format!("traffik:bench:{{__rand_int__}}:{strategy}");
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-P", &pipeline.to_string()])
        .args([
            "-n",
            &requests.to_string(),
            "-r",
            &KEYS.to_string(),
            "--csv",
        ])
        .args(["EVALSHA", sha, "1", &key])
        .args(args)
        .output()
        .expect("redis-benchmark runs (apt-get install redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    let row = text
        .lines()
        .last()
        .expect("a CSV row")
        .split(',')
        .map(|field| field.trim_matches('"').parse::<f64>().unwrap_or(0.0))
        .collect::<Vec<_>>();
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    Measured {
        per_second: row[1],
        p50_us: row[4] * 1_000.0,
        p99_us: row[6] * 1_000.0,
    }
}

/// The SHA1 and arguments of the strategy's script, read back from Redis's script cache after
/// traffik's warm-up loaded it.
fn script_of(port: u16, strategy: &str) -> (String, Vec<String>) {
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let source = match strategy {
        "fixed-window" => "fixed_window.lua",
        "token-bucket" => "token_bucket.lua",
        "gcra" => "gcra.lua",
        _ => "sliding_window_log.lua",
    };
    let path = format!(
        "{}/../traffik-core/src/backend/redis/lua/{source}",
        env!("CARGO_MANIFEST_DIR")
    );
    let lua = |file: &str| {
        std::fs::read_to_string(format!(
            "{}/../traffik-core/src/backend/redis/lua/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let code = lua("clock.lua") + &lua("single.lua") + &std::fs::read_to_string(path).unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(code)
        .query(&mut connection)
        .unwrap();
    // now = Redis TIME, cost 1, state version 1, then the parameters for 1000/s.
    let params: &[&str] = match strategy {
        "fixed-window" => &["1000", "1000"],
        "token-bucket" => &["1", "1", "1000", "0"],
        "gcra" => &["1", "1", "999"],
        _ => &["1000", "1000", "1"],
    };
    let mut args = vec![String::new(), "1".to_owned(), "1".to_owned()];
    args.extend(params.iter().map(|p| (*p).to_owned()));
    (sha, args)
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // a request count sized from a measured rate: positive, far below 2^53
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
                .and_then(|w| w.parse().ok())
                .unwrap_or(2),
        )
        .enable_all()
        .build()
        .unwrap();
    let backend = Arc::new(
        runtime
            .block_on(
                RedisBackend::builder(server.url())
                    .namespace("traffik")
                    .connect(),
            )
            .expect("connects"),
    );
    let strategies: Vec<(&str, Arc<dyn DynStrategy>)> = vec![
        ("fixed-window", Arc::new(FixedWindow::new())),
        ("token-bucket", Arc::new(TokenBucket::new())),
        ("gcra", Arc::new(Gcra::new().burst(1_000))),
        ("sliding-window-log", Arc::new(SlidingWindowLog::new())),
    ];
    println!(
        "| strategy | tasks | traffik decisions/s | p50 µs | p99 µs | redis-benchmark req/s (same script) | p50 µs | p99 µs | traffik / floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, strategy) in &strategies {
        // Warm-up: loads the script and fills the keys.
        runtime.block_on(traffik(&backend, strategy, 8, 1));
        let (sha, args) = script_of(server.port(), name);
        for tasks in [1_usize, 64] {
            let ours = runtime.block_on(traffik(&backend, strategy, tasks, seconds));
            let requests = (ours.per_second * seconds as f64) as u64;
            let floors: Vec<(String, Measured)> = if tasks == 1 {
                vec![(
                    "-c 1".to_owned(),
                    redis_benchmark(server.port(), 1, 1, requests, &sha, name, &args),
                )]
            } else {
                vec![
                    (
                        "-c 1 -P 64".to_owned(),
                        redis_benchmark(server.port(), 1, 64, requests, &sha, name, &args),
                    ),
                    (
                        "-c 64".to_owned(),
                        redis_benchmark(server.port(), 64, 1, requests, &sha, name, &args),
                    ),
                ]
            };
            for (how, floor) in floors {
                println!(
                    "| {name} | {tasks} | {:.0} | {:.0} | {:.0} | {:.0} (`{how}`) | {:.0} | {:.0} | {:.0} % |",
                    ours.per_second,
                    ours.p50_us,
                    ours.p99_us,
                    floor.per_second,
                    floor.p50_us,
                    floor.p99_us,
                    100.0 * ours.per_second / floor.per_second
                );
            }
        }
    }
    println!();
    println!(
        "| two limits per request | tasks | requests/s | p50 µs | p99 µs | Redis round trips per request |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    runtime.block_on(two_limits(&backend, true, 8, 1));
    for tasks in [1_usize, 64] {
        for (how, together) in [
            ("as one (`decide_all`, one script)", true),
            ("one after the other", false),
        ] {
            let measured = runtime.block_on(two_limits(&backend, together, tasks, seconds));
            println!(
                "| {how} | {tasks} | {:.0} | {:.0} | {:.0} | {} |",
                measured.per_second,
                measured.p50_us,
                measured.p99_us,
                if together { 1 } else { 2 }
            );
        }
    }
}
