//! Redis CPU time per decision: what sets how many decisions one Redis core serves a fleet.
//!
//! ```text
//! cargo bench -p traffik-tests --bench redis_cpu                    # 200 000 decisions per row
//! cargo bench -p traffik-tests --bench redis_cpu -- 50000           # fewer
//! cargo bench -p traffik-tests --bench redis_cpu -- --instructions  # under callgrind (valgrind)
//! cargo bench -p traffik-tests --bench redis_cpu -- --tasks=64      # 64 tasks instead of 32
//! ```
//!
//! One `redis-server` started here; for each row, 32 concurrent tasks (or `--tasks=N`) make the decisions on
//! random keys out of 1 000, and the row is `redis-server`'s own CPU time over the row (user +
//! system, from `/proc/<pid>/stat`) divided by the decisions: the median of 3 rounds, which
//! interleave the rows. With `--instructions`, `redis-server` runs under callgrind and the row
//! is the instructions it executed per decision (10 000 decisions, one round): repeatable to
//! about 0.1 % (Redis's own timed work, its cron and expiry cycle, is in the count), where CPU
//! time moves by ±15 % on this machine. In the same run:
//!
//! - every built-in strategy through `RedisBackend::decide` (one multiplexed connection, Redis
//!   `TIME`), at 1 000 per second per key (the hits are admitted: every decision writes), and
//!   GCRA and the fixed window on the fleet clock and on the caller's clock;
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

use traffik_core::backend::redis::TimeSource;
use traffik_core::backend::{Backend, Mode};
use traffik_core::strategy::{
    Adaptive, DynStrategy, FixedWindow, Gcra, Hit, LeakyBucket, LeakyBucketWithQueue, Priority,
    PriorityLevel, SlidingWindowCounter, SlidingWindowLog, Tiered, TokenBucket,
    TokenBucketWithDebt,
};
use traffik_core::{Context, Rate, RedisBackend};
use traffik_tests::redis_server::RedisServer;

/// Concurrent tasks (`--tasks=N` to change).
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

/// What a row costs Redis: CPU time from `/proc` (noisy), or instructions under callgrind
/// (deterministic).
enum Meter<'a> {
    Cpu(u32),
    Instructions(&'a RedisServer),
}

impl Meter<'_> {
    fn start(&self) -> u64 {
        match self {
            Meter::Cpu(pid) => cpu_ticks(*pid),
            Meter::Instructions(server) => {
                server.zero_instructions();
                0
            }
        }
    }

    /// The cost since `start` (µs of CPU, or instructions).
    #[allow(clippy::cast_precision_loss)] // figures for a table
    fn since(&self, start: u64) -> f64 {
        match self {
            Meter::Cpu(pid) => (cpu_ticks(*pid) - start) as f64 / ticks_per_second() * 1e6,
            Meter::Instructions(server) => server.instructions() as f64,
        }
    }
}

/// One decision on the key with this number.
type Decide = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Runs `total` decisions from `tasks` tasks on random keys: Redis's cost per decision, and
/// decisions per second.
#[allow(clippy::cast_precision_loss)] // figures for a table
async fn measure(meter: &Meter<'_>, tasks: u64, total: u64, decide: &Decide) -> (f64, f64) {
    let before = meter.start();
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let decide = Arc::clone(decide);
        handles.push(tokio::spawn(async move {
            let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (task + 1);
            for _ in 0..total / tasks {
                decide(next(&mut state)).await;
            }
        }));
    }
    for handle in handles {
        handle.await.expect("task ends");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let decided = (total / tasks * tasks) as f64;
    (meter.since(before) / decided, decided / elapsed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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

/// Decisions through `backend`.
fn traffik_decide(backend: &Arc<RedisBackend>, strategy: &Arc<dyn DynStrategy>) -> Decide {
    let (backend, strategy) = (Arc::clone(backend), Arc::clone(strategy));
    Arc::new(move |key: u64| {
        let (backend, strategy) = (Arc::clone(&backend), Arc::clone(&strategy));
        Box::pin(async move {
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
        })
    })
}

fn main() {
    let instructions = std::env::args().any(|arg| arg == "--instructions");
    let total: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(if instructions { 10_000 } else { 200_000 });
    let rounds = if instructions { 1 } else { 3 };
    let tasks = std::env::args()
        .find_map(|arg| arg.strip_prefix("--tasks=")?.parse().ok())
        .unwrap_or(TASKS);
    let server = if instructions {
        RedisServer::start_under_callgrind()
    } else {
        RedisServer::start()
    };
    let meter = if instructions {
        Meter::Instructions(&server)
    } else {
        Meter::Cpu(server.pid())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = redis::Client::open(server.url()).expect("a client");
    let connection = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("connects");
    let on_clock = |time: TimeSource| {
        Arc::new(
            runtime
                .block_on(
                    RedisBackend::builder(server.url())
                        .time_source(time)
                        .connect(),
                )
                .expect("connects"),
        )
    };
    let clocks = [
        ("", on_clock(TimeSource::Server)),
        (", fleet clock", on_clock(TimeSource::Fleet)),
        (", the caller's clock", on_clock(TimeSource::Caller)),
    ];

    let mut rows: Vec<(String, Decide)> = Vec::new();
    for (index, (clock, backend)) in clocks.iter().enumerate() {
        // Every strategy on the default clock; GCRA and the fixed window on the others.
        let count = if index == 0 { usize::MAX } else { 2 };
        for (name, strategy) in strategies().into_iter().take(count) {
            rows.push((
                format!("traffik {name}{clock}"),
                traffik_decide(backend, &strategy),
            ));
        }
    }
    let peer = "redis_rate's GCRA script (peer)".to_owned();
    rows.push((
        peer.clone(),
        script_decide(REDIS_RATE, "rate", &[1_000, 1_000, 1, 1], &connection),
    ));
    rows.push((
        "`TIME` + `GET` + `SET PX` (floor)".to_owned(),
        script_decide(FLOOR, "floor", &[], &connection),
    ));
    rows.push((
        "`GET` + `SET PX` (floor without `TIME`)".to_owned(),
        script_decide(FLOOR_NO_TIME, "floor2", &[1_700_000_000_000], &connection),
    ));

    for (_, decide) in &rows {
        runtime.block_on(measure(&meter, tasks, total / 10, decide)); // warm-up: loads the scripts
    }
    // Rounds interleave the rows, so a noisy spell falls on all of them; each row's median.
    let mut costs = vec![Vec::new(); rows.len()];
    let mut rates = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        for (index, (_, decide)) in rows.iter().enumerate() {
            let (cost, rate) = runtime.block_on(measure(&meter, tasks, total, decide));
            costs[index].push(cost);
            rates[index].push(rate);
        }
    }
    let costs: Vec<f64> = costs.into_iter().map(median).collect();
    let peer_cost = costs[rows
        .iter()
        .position(|(name, _)| *name == peer)
        .expect("the peer")];

    let mut table = String::new();
    let unit = if instructions {
        "Redis instructions per decision"
    } else {
        "Redis CPU per decision (µs)"
    };
    let _ = writeln!(
        table,
        "| what | {unit} | decisions/s | ÷ redis_rate's script |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|");
    for (index, (name, _)) in rows.iter().enumerate() {
        let rate = median(rates[index].clone());
        let cost = if instructions {
            format!("{:.0}", costs[index])
        } else {
            format!("{:.1}", costs[index])
        };
        let _ = writeln!(
            table,
            "| {name} | {cost} | {rate:.0} | {:.2}× |",
            costs[index] / peer_cost
        );
    }
    print!("{table}");
}

/// Decisions by `EVALSHA` of `source` on `{prefix}:{{key}}` with `args`.
fn script_decide(
    source: &str,
    prefix: &'static str,
    args: &'static [u64],
    connection: &redis::aio::MultiplexedConnection,
) -> Decide {
    let (script, connection) = (Arc::new(redis::Script::new(source)), connection.clone());
    Arc::new(move |key| {
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
    })
}
