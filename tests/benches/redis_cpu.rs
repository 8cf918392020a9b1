//! Redis CPU time per decision: what sets how many decisions one Redis core serves a fleet.
//!
//! ```text
//! cargo bench -p traffik-tests --bench redis_cpu             # 200 000 decisions per row
//! cargo bench -p traffik-tests --bench redis_cpu -- 50000    # fewer
//! ```
//!
//! One `redis-server` started here; for each row, 32 concurrent tasks make the decisions on
//! random keys out of 1 000, and the row is `redis-server`'s own CPU time over the row (user +
//! system, from `/proc/<pid>/stat`) divided by the decisions. In the same run:
//!
//! - every built-in strategy through `RedisBackend::decide` (one multiplexed connection, Redis's
//!   clock), at 1 000 per second per key (the hits are admitted: every decision writes);
//! - the peer: go-redis/redis_rate's GCRA script (v10 `allowN`: `TIME`, `GET`, float math,
//!   `SET EX`), transcribed, with `EVALSHA` on one multiplexed connection;
//! - the floor: a script doing only `TIME` + `GET` + `SET PX`.
//!
//! The ratio column is each row's CPU over the peer's.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use traffik_core::backend::{Backend, Mode};
use traffik_core::strategy::{
    Adaptive, DynStrategy, FixedWindow, Gcra, Hit, LeakyBucket, LeakyBucketWithQueue, Priority,
    PriorityLevel, SlidingWindowCounter, SlidingWindowLog, Tiered, TokenBucket,
    TokenBucketWithDebt,
};
use traffik_core::{Context, Rate, RedisBackend};
use traffik_tests::redis_server::RedisServer;

const TASKS: u64 = 32;
const KEYS: u64 = 1_000;

/// go-redis/redis_rate v10's `allowN` script (MIT), transcribed: the peer.
const REDIS_RATE: &str = r#"
redis.replicate_commands()
local rate_limit_key = KEYS[1]
local burst = ARGV[1]
local rate = ARGV[2]
local period = ARGV[3]
local cost = tonumber(ARGV[4])
local emission_interval = period / rate
local increment = emission_interval * cost
local burst_offset = emission_interval * burst
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local tat = redis.call("GET", rate_limit_key)
if not tat then
  tat = now
else
  tat = tonumber(tat)
end
tat = math.max(tat, now)
local new_tat = tat + increment
local allow_at = new_tat - burst_offset
local diff = now - allow_at
local remaining = diff / emission_interval
if remaining < 0 then
  local reset_after = tat - now
  local retry_after = diff * -1
  return {0, 0, tostring(retry_after), tostring(reset_after)}
end
local reset_after = new_tat - now
if reset_after > 0 then
  redis.call("SET", rate_limit_key, new_tat, "EX", math.ceil(reset_after))
end
local retry_after = -1
return {cost, remaining, tostring(retry_after), tostring(reset_after)}
"#;

/// The floor: the clock, a read and a write with an expiry, nothing else.
const FLOOR: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local stored = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], now, 'PX', 1000)
return {now, stored}
";

/// The floor without the clock: a read and a write with an expiry.
const FLOOR_NO_TIME: &str = r"
local stored = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', 1000)
return {ARGV[1], stored}
";

/// `redis-server`'s CPU time so far, in clock ticks (user + system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
    // The fields after the command name (which is in parentheses and may hold spaces).
    let after = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A xorshift step: the next key's number.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % KEYS
}

/// What a row measured.
struct Row {
    cpu_us: f64,
    per_second: f64,
}

/// Runs `total` decisions from [`TASKS`] tasks (`decide(task, key number)`), measuring
/// `redis-server`'s CPU over them.
#[allow(clippy::cast_precision_loss)] // figures for a table
async fn measure<F, Fut>(pid: u32, total: u64, decide: F) -> Row
where
    F: Fn(u64, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    let before = cpu_ticks(pid);
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let decide = decide.clone();
        handles.push(tokio::spawn(async move {
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (task + 1);
            for _ in 0..total / TASKS {
                decide(task, next(&mut state)).await;
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task ends");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_ticks(pid) - before) as f64 / ticks_per_second();
    let decided = (total / TASKS * TASKS) as f64;
    Row {
        cpu_us: cpu_seconds * 1e6 / decided,
        per_second: decided / elapsed,
    }
}

fn strategies() -> Vec<(&'static str, Arc<dyn DynStrategy>)> {
    vec![
        ("GCRA", Arc::new(Gcra::new().burst(1_000))),
        ("fixed window", Arc::new(FixedWindow::new())),
        (
            "sliding window counter",
            Arc::new(SlidingWindowCounter::new()),
        ),
        ("sliding window log", Arc::new(SlidingWindowLog::new())),
        ("token bucket", Arc::new(TokenBucket::new())),
        (
            "token bucket with debt",
            Arc::new(TokenBucketWithDebt::new(0)),
        ),
        ("leaky bucket", Arc::new(LeakyBucket::new())),
        (
            "leaky bucket with queue",
            Arc::new(LeakyBucketWithQueue::new()),
        ),
        ("tiered", Arc::new(Tiered::new())),
        (
            "priority",
            Arc::new(Priority::new().share(PriorityLevel::Normal, 1.0)),
        ),
        ("adaptive", Arc::new(Adaptive::new())),
    ]
}

#[allow(clippy::too_many_lines)] // one table, row by row
fn main() {
    let total: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200_000);
    let server = RedisServer::start();
    let pid = server.pid();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let backend = Arc::new(
        runtime
            .block_on(RedisBackend::builder(server.url()).connect())
            .expect("connects"),
    );
    let client = redis::Client::open(server.url()).expect("a client");
    let connection = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("connects");

    let peer_decide = script_decide(REDIS_RATE, "rate", &[1_000, 1_000, 1, 1], &connection);
    runtime.block_on(measure(pid, total / 10, peer_decide.clone())); // warm-up
    let peer = runtime.block_on(measure(pid, total, peer_decide));
    let floor = runtime.block_on(measure(
        pid,
        total,
        script_decide(FLOOR, "floor", &[], &connection),
    ));

    let floor_no_time = runtime.block_on(measure(
        pid,
        total,
        script_decide(FLOOR_NO_TIME, "floor2", &[1_700_000_000_000], &connection),
    ));
    let caller_clock = Arc::new(
        runtime
            .block_on(
                RedisBackend::builder(server.url())
                    .time_source(traffik_core::backend::redis::TimeSource::Caller)
                    .connect(),
            )
            .expect("connects"),
    );

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| what | Redis CPU per decision (µs) | decisions/s | ÷ redis_rate's script |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|");
    let mut rows: Vec<(String, Arc<RedisBackend>, Arc<dyn DynStrategy>)> = strategies()
        .into_iter()
        .map(|(name, strategy)| (format!("traffik {name}"), Arc::clone(&backend), strategy))
        .collect();
    for (name, strategy) in strategies().into_iter().take(2) {
        rows.push((
            format!("traffik {name}, caller's clock"),
            Arc::clone(&caller_clock),
            strategy,
        ));
    }
    for (name, backend, strategy) in rows {
        let decide = {
            let (backend, strategy) = (Arc::clone(&backend), Arc::clone(&strategy));
            move |_, key: u64| {
                let (backend, strategy) = (Arc::clone(&backend), Arc::clone(&strategy));
                async move {
                    let context = Context::new();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(0));
                    let hit = Hit::new(now, Rate::per_second(1_000), 1, &context);
                    let key = format!("traffik:cpu:{{{key:06}}}:{}", strategy.name());
                    backend
                        .decide(&key, strategy.as_ref(), hit, Mode::Consume)
                        .await
                        .expect("the backend answers");
                }
            }
        };
        runtime.block_on(measure(pid, total / 10, decide.clone())); // warm-up
        let row = runtime.block_on(measure(pid, total, decide));
        let _ = writeln!(
            table,
            "| {name} | {:.1} | {:.0} | {:.2}× |",
            row.cpu_us,
            row.per_second,
            row.cpu_us / peer.cpu_us
        );
    }
    let _ = writeln!(
        table,
        "| redis_rate's GCRA script (peer) | {:.1} | {:.0} | 1.00× |",
        peer.cpu_us, peer.per_second
    );
    let _ = writeln!(
        table,
        "| `TIME` + `GET` + `SET PX` (floor) | {:.1} | {:.0} | {:.2}× |",
        floor.cpu_us,
        floor.per_second,
        floor.cpu_us / peer.cpu_us
    );
    let _ = writeln!(
        table,
        "| `GET` + `SET PX` (floor without `TIME`) | {:.1} | {:.0} | {:.2}× |",
        floor_no_time.cpu_us,
        floor_no_time.per_second,
        floor_no_time.cpu_us / peer.cpu_us
    );
    print!("{table}");
}

/// Decisions by `EVALSHA` of `source` on `{prefix}:{{key}}` with `args`.
fn script_decide(
    source: &str,
    prefix: &'static str,
    args: &'static [u64],
    connection: &redis::aio::MultiplexedConnection,
) -> impl Fn(u64, u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + Clone + 'static {
    let (script, connection) = (Arc::new(redis::Script::new(source)), connection.clone());
    move |_, key| {
        let (script, mut connection) = (Arc::clone(&script), connection.clone());
        Box::pin(async move {
            let mut invocation = script.key(format!("{prefix}:{{{key:06}}}"));
            for arg in args {
                invocation.arg(*arg);
            }
            let _: redis::Value = invocation
                .invoke_async(&mut connection)
                .await
                .expect("the script runs");
        })
    }
}
