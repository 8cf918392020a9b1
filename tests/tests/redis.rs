//! The Redis backend's own promises, on real `redis-server` processes: one command per
//! decision, scripts surviving `SCRIPT FLUSH`, typed and bounded failures with recovery,
//! a namespace-only `reset`, expiry on every key, custom strategies, locks and connection URLs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use traffik_core::backend::redis::{RedisConnectError, TimeSource};
use traffik_core::backend::{Backend, BackendError, KeyValueStore, LockError, LockOptions};
use traffik_core::strategy::{
    FixedWindow, Gcra, Hit, Refund, SlidingWindowLog, Strategy, TokenBucket,
};
use traffik_core::throttle::HitOptions;
use traffik_core::{
    Decision, Millis, OnError, Rate, RedisBackend, StatMetadata, StrategyStat, Throttle,
    ThrottleError, ThrottleRegistry,
};
use traffik_tests::redis_server::{RedisServer, command};
use traffik_tests::{every_strategy, throttle};

async fn backend(server: &RedisServer, namespace: &str) -> RedisBackend {
    RedisBackend::builder(server.url())
        .namespace(namespace)
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connects")
}

fn on(backend: &RedisBackend, uid: &str, rate: &str, strategy: impl Strategy) -> Throttle {
    Throttle::builder(uid, rate)
        .strategy(strategy)
        .backend(backend.clone())
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .build()
        .expect("a valid throttle")
}

#[tokio::test]
async fn every_decision_is_one_command_and_reads_are_one_read_only_call() {
    let server = RedisServer::start();
    let backend = Arc::new(backend(&server, "trips").await);
    let clock = traffik_core::ManualClock::new(1_700_000_000_000);
    for (name, configure) in every_strategy() {
        let throttle = throttle(
            &format!("trips-{name}"),
            "50/min",
            configure,
            backend.clone(),
            &clock,
        );
        // Loads the scripts (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA) before counting.
        throttle.hit("warm").await.unwrap();
        throttle.check("warm").await.unwrap();
        let before = command_calls(&server);
        for _ in 0..20 {
            throttle.hit("client").await.unwrap();
        }
        throttle.check("client").await.unwrap();
        throttle.stat("client").await.unwrap();
        let after = command_calls(&server);
        let delta = |name: &str| {
            after.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c)
                - before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, c)| *c)
        };
        assert_eq!(
            delta("evalsha"),
            22,
            "{name}: one EVALSHA per decision, check and stat"
        );
        assert_eq!(delta("get"), 22, "{name}: each script read the state once");
        // Inside scripts Redis also counts TIME and the writes; nothing else ran, apart from
        // the INFO that read these figures.
        for (command, _) in &after {
            if !["evalsha", "get", "set", "del", "time", "info"].contains(&command.as_str()) {
                assert_eq!(delta(command), 0, "{name}: unexpected `{command}`");
            }
        }
    }
}

/// Calls per command, from `INFO commandstats`.
fn command_calls(server: &RedisServer) -> Vec<(String, u64)> {
    let info = command(server.port(), "INFO commandstats").unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            Some((name.to_owned(), rest.split(',').next()?.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn decisions_survive_script_flush() {
    let server = RedisServer::start();
    let backend = backend(&server, "flush").await;
    let throttle = on(&backend, "flush", "3/min", Gcra::new().burst(3));
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert_eq!(command(server.port(), "SCRIPT FLUSH").unwrap(), "+OK");
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "reloaded after NOSCRIPT"
    );
    assert_eq!(command(server.port(), "SCRIPT FLUSH").unwrap(), "+OK");
    assert_eq!(throttle.stat("a").await.unwrap().unwrap().hits_remaining, 1);
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(
        throttle.hit("a").await.unwrap().is_throttled(),
        "state kept across flushes"
    );
}

#[tokio::test]
async fn a_killed_redis_gives_typed_errors_quickly_and_recovery_follows() {
    let mut server = RedisServer::start();
    let backend = backend(&server, "outage").await;
    let throttle = on(&backend, "outage", "100/min", TokenBucket::new());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    server.kill();
    for _ in 0..5 {
        let started = Instant::now();
        let error = throttle.hit("a").await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeouts, took {:?}",
            started.elapsed()
        );
        match error {
            ThrottleError::Backend { source, .. } => assert!(
                matches!(
                    source,
                    BackendError::Unavailable { .. } | BackendError::Timeout { .. }
                ),
                "{source}"
            ),
            other => panic!("expected a backend error, got {other}"),
        }
    }
    let allowing = Throttle::builder("outage-allow", "100/min")
        .backend(backend.clone())
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    assert!(
        allowing.hit("a").await.unwrap().is_allowed(),
        "the default policy lets traffic through while Redis is down"
    );
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(decision) = throttle.hit("a").await {
            assert!(decision.is_allowed());
            break;
        }
        assert!(Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_stalled_redis_gives_a_timeout_bounded_by_the_command_timeout() {
    let server = RedisServer::start();
    let backend = backend(&server, "stall").await; // command timeout 300 ms
    let throttle = on(&backend, "stall", "100/min", FixedWindow::new());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    // Redis stops answering every client for 1.5 s, as a stuck or overloaded server would.
    assert_eq!(
        command(server.port(), "CLIENT PAUSE 1500 ALL").unwrap(),
        "+OK"
    );
    let started = Instant::now();
    let error = throttle.hit("a").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        started.elapsed()
    );
    match error {
        ThrottleError::Backend {
            source: BackendError::Timeout {
                operation, after, ..
            },
            ..
        } => {
            assert_eq!(operation, "decide");
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "answers again after the stall"
    );
}

#[tokio::test]
async fn connecting_to_nothing_or_a_bad_url_is_a_typed_error() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let error = RedisBackend::builder(format!("redis://127.0.0.1:{closed_port}"))
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(error, RedisConnectError::Backend(_)), "{error}");
    assert!(error.to_string().contains("redis"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let error = RedisBackend::connect("http://nope").await.unwrap_err();
    assert!(matches!(error, RedisConnectError::Config(_)), "{error}");
    let error = RedisBackend::builder("redis://127.0.0.1:1")
        .namespace("bad{namespace}")
        .connect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("namespace"), "{error}");
}

#[tokio::test]
async fn a_key_of_the_wrong_type_is_a_typed_error_and_garbage_state_counts_as_none() {
    let server = RedisServer::start();
    let backend = backend(&server, "garbage").await;
    let throttle = on(&backend, "garbage", "2/min", FixedWindow::new());
    throttle.hit("a").await.unwrap();
    let key = throttle.stat("a").await.unwrap().unwrap().key;
    command(server.port(), &format!("SET {key} not-json")).unwrap();
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_throttled());
    command(server.port(), &format!("DEL {key}")).unwrap();
    command(server.port(), &format!("HSET {key} field value")).unwrap();
    let error = throttle.hit("a").await.unwrap_err();
    assert!(error.to_string().contains("decide"), "{error}");
}

#[tokio::test]
async fn every_key_expires_reset_clears_only_the_namespace_and_close_deletes_nothing() {
    let server = RedisServer::start();
    let ours = backend(&server, "ours").await;
    let theirs = backend(&server, "ours2").await;
    let clock = traffik_core::ManualClock::new(1_700_000_000_000);
    for (name, configure) in every_strategy() {
        for backend in [&ours, &theirs] {
            let throttle = Throttle::builder(format!("exp-{name}").as_str(), "5/min");
            let throttle = configure(throttle)
                .backend(backend.clone())
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap();
            for client in 0..3 {
                throttle.hit(&format!("client-{client}")).await.unwrap();
            }
        }
    }
    let _ = clock;
    command(server.port(), "SET unrelated keep").unwrap();
    let keys = all_keys(&server);
    assert!(keys.len() > 60, "{}", keys.len());
    for key in &keys {
        if key == "unrelated" {
            continue;
        }
        let ttl: i64 = command(server.port(), &format!("PTTL {key}"))
            .unwrap()
            .trim_start_matches(':')
            .parse()
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
    ours.close().await.unwrap();
    assert_eq!(all_keys(&server).len(), keys.len(), "close deletes nothing");
    assert!(matches!(
        ours.reset().await,
        Err(BackendError::Closed { .. })
    ));
    let reopened = backend(&server, "ours").await;
    reopened.reset().await.unwrap();
    let left = all_keys(&server);
    assert!(left.iter().all(|key| !key.starts_with("ours:")), "{left:?}");
    assert!(left.iter().any(|key| key.starts_with("ours2:")));
    assert!(left.contains(&"unrelated".to_owned()));
}

fn all_keys(server: &RedisServer) -> Vec<String> {
    let mut client = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("KEYS").arg("*").query(&mut client).unwrap()
}

#[tokio::test]
async fn server_time_is_the_default_clock() {
    let server = RedisServer::start();
    let backend = backend(&server, "clock").await;
    // The throttle's clock is far in the past; Redis TIME decides.
    let throttle = Throttle::builder("clock", "2/s")
        .strategy(SlidingWindowLog::new())
        .backend(backend.clone())
        .clock(traffik_core::ManualClock::new(0))
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    let stat = throttle.stat("a").await.unwrap().unwrap();
    let StatMetadata::SlidingWindowLog(log) = stat.metadata else {
        panic!("a sliding-log stat")
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let oldest = log.oldest_entry_ms.expect("one entry");
    assert!(
        oldest.abs_diff(now) < 5_000,
        "stamped with the server's time: {oldest} vs {now}"
    );
}

#[tokio::test]
async fn urls_carry_password_and_database() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let wrong = RedisBackend::builder(format!("redis://:wrong@127.0.0.1:{}", server.port()))
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert!(wrong.is_err());
    let backend = RedisBackend::builder(format!("redis://:s3cret@127.0.0.1:{}/3", server.port()))
        .namespace("db3")
        .connect()
        .await
        .unwrap();
    let throttle = on(&backend, "db", "1/min", FixedWindow::new());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    let mut client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/3", server.port()))
        .unwrap()
        .get_connection()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("db3:*").query(&mut client).unwrap();
    assert_eq!(keys.len(), 1, "the state is in database 3");
}

/// A pure strategy with no Lua script: runs by read-apply-write under the Redis lock.
#[derive(Debug, Clone, Copy)]
struct Lifetime;

impl Strategy for Lifetime {
    type State = u64;
    const NAME: &'static str = "lifetime";

    fn apply(&self, state: &mut Option<u64>, hit: &Hit<'_>) -> Decision {
        let used = state.get_or_insert(0);
        let limit = hit.rate.limit();
        if *used + hit.cost <= limit {
            *used += hit.cost;
            Decision::allowed(limit, limit - *used, hit.rate.period())
        } else {
            Decision::throttled(limit, limit - *used, hit.rate.period(), hit.rate.period())
        }
    }

    fn stat(&self, state: Option<&u64>, hit: &Hit<'_>) -> StrategyStat {
        let used = state.copied().unwrap_or(0);
        StrategyStat::new(
            hit.rate,
            hit.rate.limit() - used,
            Duration::ZERO,
            StatMetadata::None,
        )
    }

    fn expires_at(&self, _: &u64, _: &Rate) -> Millis {
        u64::MAX / 2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_strategies_work_on_redis_under_concurrency() {
    let server = RedisServer::start();
    let backend = backend(&server, "custom").await;
    let counted = Throttle::builder("counted", "10/min")
        .key_value_strategy(traffik_core::testing::Counter)
        .backend(backend.clone())
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    let lifetime = on(&backend, "lifetime", "10/min", Lifetime);
    for throttle in [counted, lifetime] {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.hit("hot").await.unwrap().is_allowed() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 10, "{}", throttle.uid());
        assert_eq!(
            throttle.stat("hot").await.unwrap().unwrap().hits_remaining,
            0
        );
    }
}

#[tokio::test]
async fn redlock_needs_a_majority_of_independent_nodes() {
    let mut nodes = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let home = RedisServer::start();
    let backend = RedisBackend::builder(home.url())
        .redlock(nodes.iter().map(RedisServer::url))
        .command_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let options = LockOptions::default()
        .ttl(Duration::from_secs(5))
        .blocking(false);
    let held = backend.lock("job", options).await.unwrap();
    for node in &nodes {
        assert_eq!(
            command(node.port(), "EXISTS job").unwrap(),
            ":1",
            "set on every node"
        );
    }
    let refused = backend.lock("job", options).await.unwrap_err();
    assert!(matches!(
        refused,
        BackendError::Lock {
            source: LockError::WouldBlock { .. },
            ..
        }
    ));
    held.release().await.unwrap();
    for node in &nodes {
        assert_eq!(
            command(node.port(), "EXISTS job").unwrap(),
            ":0",
            "released everywhere"
        );
    }
    let waited = backend
        .lock(
            "job",
            options
                .blocking(true)
                .blocking_timeout(Some(Duration::from_millis(50))),
        )
        .await;
    assert!(waited.is_ok(), "free again");
    let waiting = backend
        .lock(
            "job",
            options
                .blocking(true)
                .blocking_timeout(Some(Duration::from_millis(80))),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        waiting,
        BackendError::Lock {
            source: LockError::Timeout { .. },
            ..
        }
    ));
    nodes[0].kill();
    let with_two = backend.lock("other", options).await;
    assert!(with_two.is_ok(), "two of three is a majority");
    nodes[1].kill();
    let with_one = backend.lock("third", options).await;
    assert!(with_one.is_err(), "one of three is not");
}

/// The variable telling [`lock_settings_child`] which half of the check to run.
const LOCK_CHILD: &str = "TRAFFIK_TEST_LOCK_CHILD";

/// Runs [`lock_settings_child`] in a child process with `variables` set (the environment of a
/// running test harness cannot be changed safely), and requires it to pass.
fn run_lock_child(mode: &str, variables: &[(&str, &str)]) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_settings_child", "--ignored", "--nocapture"])
        .env(LOCK_CHILD, mode)
        .envs(variables.iter().copied())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && report.contains("1 passed"),
        "the {mode} child failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn lock_settings_come_from_the_environment_on_every_backend_that_locks() {
    run_lock_child(
        "valid",
        &[
            (traffik_core::backend::LOCK_TTL_ENV, "0.4"),
            (traffik_core::backend::BLOCKING_ENV, "false"),
            (traffik_core::backend::BLOCKING_TIMEOUT_ENV, "none"),
        ],
    );
    run_lock_child("invalid", &[(traffik_core::backend::LOCK_TTL_ENV, "soon")]);
}

/// The child half of [`lock_settings_come_from_the_environment_on_every_backend_that_locks`]:
/// with `TRAFFIK_DEFAULT_*` set, the in-memory, Redis and key-value backends built without lock
/// options lock with those settings; with an invalid one, each reports it. Without the parent's
/// variables it checks nothing.
#[tokio::test]
#[ignore = "run by lock_settings_come_from_the_environment_on_every_backend_that_locks"]
async fn lock_settings_child() {
    use traffik_core::backend::KeyValueBackend;
    use traffik_core::{ConfigError, MemoryBackend};

    let Ok(mode) = std::env::var(LOCK_CHILD) else {
        return;
    };
    let server = RedisServer::start();
    if mode == "invalid" {
        assert!(matches!(
            MemoryBackend::builder().build(),
            Err(ConfigError::LockSettings(_))
        ));
        assert!(matches!(
            KeyValueBackend::new(MemoryBackend::new(), "kv"),
            Err(ConfigError::LockSettings(_))
        ));
        assert!(matches!(
            RedisBackend::builder(server.url()).connect().await,
            Err(RedisConnectError::Config(ConfigError::LockSettings(_)))
        ));
        return;
    }
    let expected = LockOptions {
        ttl: Duration::from_millis(400),
        blocking: false,
        blocking_timeout: None,
    };
    let redis = RedisBackend::builder(server.url()).connect().await.unwrap();
    let memory = MemoryBackend::builder().build().unwrap();
    let stores: [(&str, &dyn KeyValueStore); 3] = [
        ("memory (builder)", &memory),
        ("memory (new)", &MemoryBackend::new()),
        ("redis", &redis),
    ];
    for (name, store) in stores {
        assert_eq!(store.lock_options(), expected, "{name}");
        let held = store.lock("env-probe", store.lock_options()).await.unwrap();
        let started = Instant::now();
        let second = store.lock("env-probe", store.lock_options()).await;
        assert!(
            matches!(
                second,
                Err(BackendError::Lock {
                    source: LockError::WouldBlock { .. },
                    ..
                })
            ),
            "{name}: {second:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{name}: did not block"
        );
        held.release().await.unwrap();
        // The ttl from the environment frees a lock its holder never releases.
        let _stuck = store.lock("env-ttl", store.lock_options()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(
            store.lock("env-ttl", store.lock_options()).await.is_ok(),
            "{name}: the lock outlived the environment's ttl"
        );
    }
    // The generic executor over any store takes each decision's lock with those settings: a
    // held lock on the key refuses at once instead of waiting.
    let executor = KeyValueBackend::new(redis.clone(), "env-kv").unwrap();
    let context = traffik_core::Context::new();
    let hit = Hit::new(1_700_000_000_000, Rate::per_second(1), 1, &context);
    let key = "env-kv:probe:{client}:custom";
    let _held = redis
        .lock(&format!("{key}:lock"), redis.lock_options())
        .await
        .unwrap();
    let started = Instant::now();
    let decision = executor
        .decide(key, &Custom, hit, traffik_core::backend::Mode::Consume)
        .await;
    assert!(
        matches!(
            decision,
            Err(BackendError::Lock {
                source: LockError::WouldBlock { .. },
                ..
            })
        ),
        "{decision:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
}

/// A strategy with no script, so every backend runs it under the contract's lock.
#[derive(Debug, Clone, Copy)]
struct Custom;

impl Strategy for Custom {
    type State = u64;
    const NAME: &'static str = "custom";
    fn apply(&self, state: &mut Option<u64>, hit: &Hit<'_>) -> Decision {
        *state = Some(state.unwrap_or(0) + hit.cost);
        Decision::allowed(hit.rate.limit(), 0, Duration::ZERO)
    }
    fn stat(&self, _: Option<&u64>, hit: &Hit<'_>) -> StrategyStat {
        StrategyStat::new(hit.rate, 0, Duration::ZERO, StatMetadata::None)
    }
    fn expires_at(&self, _: &u64, _: &Rate) -> Millis {
        Millis::MAX
    }
}

#[tokio::test]
async fn the_limits_of_one_request_are_one_round_trip_and_all_or_nothing() {
    use traffik_core::backend::redis::TimeSource;
    use traffik_core::throttle::{HitOptions, Limit, hit_all};

    let server = RedisServer::start();
    let clock = traffik_core::ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(
        RedisBackend::builder(server.url())
            .namespace("together")
            .time_source(TimeSource::Caller)
            .connect()
            .await
            .unwrap(),
    );
    let strategies = every_strategy();
    for (name, configure) in &strategies {
        // The failure report's pair: a slow limit, then `10/min` with each strategy.
        let half_hour = throttle(
            &format!("together-half-hour-{name}"),
            "30/30min",
            strategies[0].1,
            Arc::clone(&backend),
            &clock,
        );
        let minute = throttle(
            &format!("together-minute-{name}"),
            "10/min",
            *configure,
            Arc::clone(&backend),
            &clock,
        );
        let batch = |client| {
            [
                Limit::new(&half_hour, client, HitOptions::new()),
                Limit::new(&minute, client, HitOptions::new()),
            ]
        };
        // Loads the script.
        hit_all(&batch("warm")).await.unwrap();
        let before = command_calls(&server);
        let mut admitted = 0;
        for _ in 0..31 {
            let decisions = hit_all(&batch("client")).await.unwrap();
            admitted += usize::from(decisions.iter().all(Decision::is_allowed));
        }
        let after = command_calls(&server);
        let delta = |command: &str| {
            let calls = |calls: &[(String, u64)]| {
                calls
                    .iter()
                    .find(|(n, _)| n == command)
                    .map_or(0, |(_, c)| *c)
            };
            calls(&after) - calls(&before)
        };
        assert_eq!(admitted, 10, "{name}");
        assert_eq!(delta("evalsha"), 31, "{name}: one round trip per request");
        assert_eq!(delta("get"), 62, "{name}: each key read once per request");
        let left = half_hour.stat("client").await.unwrap().unwrap();
        assert_eq!(
            left.hits_remaining, 20,
            "{name}: the 21 refused requests charged the half-hour limit"
        );
    }
}

#[tokio::test]
async fn a_rate_past_the_scripts_exact_range_is_refused_never_failed_open() {
    use traffik_core::strategy::SlidingWindowCounter;
    use traffik_core::throttle::HitOptions;

    let server = RedisServer::start();
    let redis: Arc<dyn Backend> = Arc::new(backend(&server, "range").await);
    let too_large = "1000000000/day"; // limit × period = 8.64 × 10^16 > 2^52
    // On the throttle's own backend, or on the registry's default: refused when built.
    let error = Throttle::builder("range-own", too_large)
        .strategy(SlidingWindowCounter::new())
        .shared_backend(Arc::clone(&redis))
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap_err();
    assert!(
        matches!(error, traffik_core::ConfigError::UnsupportedRate { .. }),
        "{error}"
    );
    let registry = ThrottleRegistry::new();
    registry.set_default_backend_shared(Arc::clone(&redis));
    let error = Throttle::builder("range-default", too_large)
        .strategy(SlidingWindowCounter::new())
        .registry(&registry)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("2^52"), "{error}");
    // A backend chosen per hit: refused before the script runs, whatever the on-error policy.
    let per_hit = Throttle::builder("range-per-hit", too_large)
        .strategy(SlidingWindowCounter::new())
        .on_error(OnError::Allow)
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    let error = per_hit
        .hit_with("client", HitOptions::new().backend(&redis))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ThrottleError::Backend {
                source: BackendError::Unsupported { .. },
                ..
            }
        ),
        "{error}"
    );
}

/// Refunds on Redis's own clock (`TIME`, the default): the charge is placed on Redis's time
/// line, so every strategy gets its units back, whatever the app's clock says.
#[tokio::test]
async fn refunds_on_server_time_return_the_charge_for_every_strategy() {
    let server = RedisServer::start();
    let backend = backend(&server, "refund-time").await;
    for (name, configure) in every_strategy() {
        // Long periods: no window boundary falls between a charge and its refund.
        let throttle = configure(
            Throttle::builder(format!("refund-time-{name}"), "4/hour")
                .backend(backend.clone())
                .on_error(OnError::Raise)
                .registry(&ThrottleRegistry::new()),
        )
        .build()
        .unwrap();
        let charge = HitOptions::new().now(throttle.now());
        while throttle.hit_with("a", charge).await.unwrap().is_allowed() {}
        assert_eq!(
            throttle.refund_with("a", charge).await.unwrap(),
            Refund::Returned,
            "{name}"
        );
        assert!(
            throttle.hit_with("a", charge).await.unwrap().is_allowed(),
            "{name}: nothing came back"
        );
        assert!(
            throttle.hit_with("a", charge).await.unwrap().is_throttled(),
            "{name}: more came back than was charged"
        );
    }
}

/// Refunds racing decisions on one key (the compare-and-set reads again when a decision lands
/// in between): 32 tasks each charge and then refund, so the key ends as full as it started,
/// for every strategy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_racing_decisions_on_one_key_return_every_charge() {
    let server = RedisServer::start();
    let backend = backend(&server, "refund-race").await;
    for (name, configure) in every_strategy() {
        let throttle = configure(
            Throttle::builder(format!("refund-race-{name}"), "1000/hour")
                .backend(backend.clone())
                .on_error(OnError::Raise)
                .registry(&ThrottleRegistry::new()),
        )
        .build()
        .unwrap();
        let full = throttle.stat("hot").await.unwrap().unwrap().hits_remaining;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move {
                    let charge = HitOptions::new().now(throttle.now());
                    if throttle.hit_with("hot", charge).await.unwrap().is_allowed() {
                        throttle.refund_with("hot", charge).await.unwrap()
                    } else {
                        Refund::Lapsed
                    }
                })
            })
            .collect();
        let mut returned = 0;
        for task in tasks {
            returned += usize::from(task.await.unwrap() == Refund::Returned);
        }
        assert!(returned > 0, "{name}");
        assert_eq!(
            throttle.stat("hot").await.unwrap().unwrap().hits_remaining,
            full,
            "{name}: a charge was not returned"
        );
    }
}

/// Every kind of Redis failure arrives as its own `BackendError`, and `is_transient` tells
/// "Redis is down or busy" from "this key belongs to someone else" and "not permitted".
#[tokio::test]
async fn every_redis_failure_keeps_its_kind() {
    let server = RedisServer::start();
    let port = server.port();
    let kinds = backend(&server, "kinds").await;

    // A key of another type: text under a counter, a hash under a limiter key.
    command(port, "SET kinds:text abc").unwrap();
    let error = kinds.increment("kinds:text", 1).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::WrongType { key, .. } if key == "kinds:text"),
        "{error}"
    );
    assert!(!error.is_transient());
    let throttle = on(&kinds, "kinds", "2/min", FixedWindow::new());
    throttle.hit("a").await.unwrap();
    let key = throttle.stat("a").await.unwrap().unwrap().key;
    command(port, &format!("DEL {key}")).unwrap();
    command(port, &format!("HSET {key} field value")).unwrap();
    match throttle.hit("a").await.unwrap_err() {
        ThrottleError::Backend {
            source: BackendError::WrongType { key: named, .. },
            ..
        } => assert_eq!(named, key),
        other => panic!("expected WrongType, got {other}"),
    }

    // Out of memory under `noeviction`: transient.
    command(port, "CONFIG SET maxmemory 1").unwrap();
    let error = backend_error(throttle.hit("b").await);
    assert!(matches!(error, BackendError::OutOfMemory { .. }), "{error}");
    assert!(error.is_transient());
    command(port, "CONFIG SET maxmemory 0").unwrap();

    // A permission taken away after connecting: denied, not an outage.
    command(port, "ACL SETUSER limited on >pw ~* +@all").unwrap();
    let limited = RedisBackend::builder(format!("redis://limited:pw@127.0.0.1:{port}"))
        .namespace("kinds")
        .connect()
        .await
        .unwrap();
    command(port, "ACL SETUSER limited -set").unwrap();
    let error = backend_error(
        on(&limited, "kinds-denied", "2/min", FixedWindow::new())
            .hit("c")
            .await,
    );
    assert!(matches!(error, BackendError::Denied { .. }), "{error}");
    assert!(!error.is_transient());

    // A primary demoted to a read-only replica after connecting (a failover in progress):
    // transient. A backend pointed at a replica is refused at connect.
    let primary = RedisServer::start();
    let demoted = backend(&primary, "kinds").await;
    command(primary.port(), &format!("REPLICAOF 127.0.0.1 {port}")).unwrap();
    let error = backend_error(
        on(&demoted, "kinds-replica", "2/min", FixedWindow::new())
            .hit("d")
            .await,
    );
    assert!(matches!(error, BackendError::ReadOnly { .. }), "{error}");
    assert!(error.is_transient());
    match RedisBackend::builder(primary.url()).connect().await {
        Err(RedisConnectError::Backend(BackendError::ReadOnly { .. })) => {}
        other => panic!("expected ReadOnly at connect, got {:?}", other.map(|_| ())),
    }

    // Connection lost: transient.
    let mut gone = RedisServer::start();
    let lost = backend(&gone, "kinds").await;
    gone.kill();
    let error = backend_error(
        on(&lost, "kinds-lost", "2/min", FixedWindow::new())
            .hit("e")
            .await,
    );
    assert!(
        matches!(
            error,
            BackendError::Unavailable { .. } | BackendError::Timeout { .. }
        ),
        "{error}"
    );
    assert!(error.is_transient());
}

fn backend_error(result: Result<Decision, ThrottleError>) -> BackendError {
    match result {
        Err(ThrottleError::Backend { source, .. }) => source,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// `connect` answers Ok only when the connection can decide: refused credentials and missing
/// permissions are connect errors naming their cause, never a timeout and never a backend that
/// fails every decision afterwards.
#[tokio::test]
async fn connect_proves_the_connection_can_decide() {
    let server = RedisServer::start_with(&["--requirepass", "sekret"]);
    let port = server.port();
    let connect = |url: String| async move {
        RedisBackend::builder(url)
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
    };
    let denied = |result: Result<RedisBackend, RedisConnectError>, cause: &str| match result {
        Err(RedisConnectError::Backend(error @ BackendError::Denied { .. })) => {
            assert!(error.to_string().contains(cause), "{cause}: {error}");
        }
        Err(other) => panic!("{cause}: expected Denied, got {other}"),
        Ok(_) => panic!("{cause}: connected"),
    };
    denied(connect(format!("redis://127.0.0.1:{port}")).await, "NOAUTH");
    denied(
        connect(format!("redis://:wrong@127.0.0.1:{port}")).await,
        "WRONGPASS",
    );
    assert!(
        connect(format!("redis://:sekret@127.0.0.1:{port}"))
            .await
            .is_ok()
    );
    // Settings, not outages: a database the server does not have, a server that is not Redis.
    match connect(format!("redis://:sekret@127.0.0.1:{port}/99")).await {
        Err(RedisConnectError::Config(error)) => {
            assert!(error.to_string().contains("database number"), "{error}");
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let not_redis = http.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = http.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    match connect(format!("redis://{not_redis}")).await {
        Err(RedisConnectError::Config(error)) => {
            assert!(
                error.to_string().contains("did not answer like Redis"),
                "{error}"
            );
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }

    let admin = |line: &str| {
        redis_cli(port, &["-a", "sekret", "--no-auth-warning"], line);
    };
    admin("ACL SETUSER noscripts on >pw ~* +@all -evalsha");
    denied(
        connect(format!("redis://noscripts:pw@127.0.0.1:{port}")).await,
        "evalsha",
    );
    admin("ACL SETUSER noset on >pw ~* +@all -set");
    denied(
        connect(format!("redis://noset:pw@127.0.0.1:{port}")).await,
        "SET",
    );
    admin("ACL SETUSER otherkeys on >pw ~elsewhere:* +@all");
    denied(
        connect(format!("redis://otherkeys:pw@127.0.0.1:{port}")).await,
        "NOPERM",
    );

    // The least-privileged user `docs/redis.md` gives decides, refunds and reads.
    admin(
        "ACL SETUSER app on >secret ~traffik:* +evalsha +script|load +get +set +del +time +pttl +pexpire +incrby +unlink +scan +config|get",
    );
    let app = connect(format!("redis://app:secret@127.0.0.1:{port}"))
        .await
        .unwrap();
    let throttle = on(&app, "least-privilege", "2/hour", SlidingWindowLog::new());
    let charge = HitOptions::new().now(throttle.now());
    assert!(throttle.hit_with("a", charge).await.unwrap().is_allowed());
    assert_eq!(
        throttle.refund_with("a", charge).await.unwrap(),
        Refund::Returned
    );
    assert_eq!(throttle.stat("a").await.unwrap().unwrap().hits_remaining, 2);
    assert_eq!(
        app.increment_with_ttl("traffik:n", 1, Duration::from_secs(5))
            .await
            .unwrap(),
        1
    );
}

/// `redis-cli` with `options` against `port`, for commands that need credentials.
fn redis_cli(port: u16, options: &[&str], line: &str) {
    let status = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(options)
        .args(line.split_whitespace())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success(), "redis-cli {line}");
}

/// A server that evicts keys under memory pressure is logged, or refused at connect when asked.
#[tokio::test]
async fn an_evicting_server_is_reported_at_connect() {
    let evicting =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    assert!(
        RedisBackend::builder(evicting.url())
            .connect()
            .await
            .is_ok()
    );
    match RedisBackend::builder(evicting.url())
        .require_noeviction(true)
        .connect()
        .await
    {
        Err(RedisConnectError::Evicting { policy }) => assert_eq!(policy, "allkeys-lru"),
        other => panic!("expected Evicting, got {:?}", other.map(|_| ())),
    }
    let volatile =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]);
    assert!(matches!(
        RedisBackend::builder(volatile.url())
            .require_noeviction(true)
            .connect()
            .await,
        Err(RedisConnectError::Evicting { .. })
    ));
    let exact =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]);
    assert!(
        RedisBackend::builder(exact.url())
            .require_noeviction(true)
            .connect()
            .await
            .is_ok()
    );
    let unbounded = RedisServer::start();
    assert!(
        RedisBackend::builder(unbounded.url())
            .require_noeviction(true)
            .connect()
            .await
            .is_ok()
    );
}

/// A script that disagrees with its strategy's own transition (here: stored state the script
/// reads as 1.5 units and the strategy as unreadable) never leaves state the strategy would not
/// have written: the strategy's state is put in its place and its decision answers.
#[tokio::test]
async fn a_script_that_disagrees_with_its_strategy_leaves_the_strategys_state() {
    let server = RedisServer::start();
    let backend = backend(&server, "disagree").await;
    let throttle = on(&backend, "disagree", "2/hour", FixedWindow::new());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    let key = throttle.stat("a").await.unwrap().unwrap().key;
    let stored = backend.get(&key).await.unwrap().expect("a state");
    let tampered = stored.replace("\"count\":1}", "\"count\":1.5}");
    assert_ne!(stored, tampered);
    backend
        .set(&key, &tampered, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    // The script refuses (1.5 + 1 > 2); the strategy reads no state and admits.
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    let repaired = backend.get(&key).await.unwrap().expect("a state");
    assert!(repaired.ends_with("\"count\":1}]"), "{repaired}");
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_throttled());
}

/// After `SCRIPT FLUSH` (as after a restart), 300 concurrent decisions meet `NOSCRIPT` at once:
/// the script is loaded once, the other callers wait for that load, and every decision is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_flush_reloads_each_script_once() {
    let server = RedisServer::start();
    let backend = backend(&server, "reload").await;
    let throttle = on(&backend, "reload", "1000000/min", FixedWindow::new());
    assert!(throttle.hit("warm").await.unwrap().is_allowed());
    for round in 0..3 {
        assert_eq!(command(server.port(), "SCRIPT FLUSH").unwrap(), "+OK");
        assert_eq!(command(server.port(), "CONFIG RESETSTAT").unwrap(), "+OK");
        let tasks: Vec<_> = (0..300)
            .map(|client| {
                let throttle = throttle.clone();
                tokio::spawn(async move {
                    throttle
                        .hit(&format!("client-{client}"))
                        .await
                        .unwrap()
                        .is_allowed()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap(), "round {round}");
        }
        assert_eq!(
            server.calls("script|load"),
            1,
            "round {round}: SCRIPT LOADs"
        );
    }
}

/// Redis paused (as a stalled server) while 2,000 decisions are in flight with a 200 ms
/// timeout: every caller times out, and when Redis resumes and runs the queued scripts, they
/// are past their deadline and change nothing (before deadlines, 2,050 units were charged
/// against 50).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_whose_callers_gave_up_change_nothing() {
    let server = RedisServer::start();
    let backend = RedisBackend::builder(server.url())
        .time_source(TimeSource::Server)
        .namespace("deadline")
        .command_timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let throttle = on(&backend, "deadline", "5000/hour", FixedWindow::new());
    let other = on(
        &backend,
        "deadline-other",
        "5000/hour",
        Gcra::new().burst(5000),
    );
    for _ in 0..50 {
        assert!(throttle.hit("a").await.unwrap().is_allowed());
    }
    assert_eq!(
        command(server.port(), "CLIENT PAUSE 1500 ALL").unwrap(),
        "+OK"
    );
    let paused = Instant::now();
    let tasks: Vec<_> = (0..2_000)
        .map(|index| {
            let (throttle, other) = (throttle.clone(), other.clone());
            tokio::spawn(async move {
                if index % 4 == 0 {
                    // A batch of two limits (one script call for both).
                    use traffik_core::throttle::{Limit, hit_all};
                    let limits = [
                        Limit::new(&throttle, "a", HitOptions::new()),
                        Limit::new(&other, "a", HitOptions::new()),
                    ];
                    hit_all(&limits)
                        .await
                        .map(|mut decisions| decisions.remove(0))
                } else {
                    throttle.hit("a").await
                }
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Err(ThrottleError::Backend {
                source: BackendError::Timeout { .. },
                ..
            }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    // Redis resumes and runs every queued script; none of them may charge.
    tokio::time::sleep(
        Duration::from_millis(1_500).saturating_sub(paused.elapsed()) + Duration::from_millis(700),
    )
    .await;
    assert_eq!(
        throttle.stat("a").await.unwrap().unwrap().hits_remaining,
        5_000 - 50,
        "scripts whose callers had given up charged"
    );
    assert_eq!(
        other.stat("a").await.unwrap().unwrap().hits_remaining,
        5_000,
        "batches whose callers had given up charged"
    );
    assert!(throttle.hit("a").await.unwrap().is_allowed());
}

/// What eviction does to limits, measured: 50 clients at their limit, then other data fills
/// Redis's memory. Under `allkeys-lru` the limiter keys are evicted and clients are admitted
/// again with no error anywhere; under `noeviction` no client is (refusals still answer; a
/// decision that would store fails with `OutOfMemory`, for the on-error policy to decide).
#[tokio::test]
async fn eviction_forgets_clients_and_noeviction_keeps_them() {
    async fn readmitted(policy: &str) -> (usize, usize) {
        let server = RedisServer::start_with(&["--maxmemory", "8mb", "--maxmemory-policy", policy]);
        let backend = backend(&server, "evict").await;
        let throttle = on(&backend, "evict", "3/hour", FixedWindow::new());
        for client in 0..50 {
            let client = format!("client-{client}");
            for _ in 0..3 {
                assert!(throttle.hit(&client).await.unwrap().is_allowed());
            }
            assert!(throttle.hit(&client).await.unwrap().is_throttled());
        }
        // Other data fills the memory: 64 MB of 16 KB values (refused once full under
        // `noeviction`).
        let value = "x".repeat(16 * 1024);
        for index in 0..4_096 {
            let _ = backend.set(&format!("other:{index}"), &value, None).await;
        }
        let (mut admitted, mut out_of_memory) = (0, 0);
        for client in 0..50 {
            match throttle.hit(&format!("client-{client}")).await {
                Ok(decision) => admitted += usize::from(decision.is_allowed()),
                Err(ThrottleError::Backend {
                    source: BackendError::OutOfMemory { .. },
                    ..
                }) => out_of_memory += 1,
                Err(other) => panic!("{policy}: {other}"),
            }
        }
        (admitted, out_of_memory)
    }
    let (lru, _) = readmitted("allkeys-lru").await;
    let (exact, failed) = readmitted("noeviction").await;
    println!("allkeys-lru: {lru} of 50 admitted again; noeviction: {exact} ({failed} OutOfMemory)");
    assert!(
        lru > 25,
        "allkeys-lru evicted only {lru} of 50 clients' keys"
    );
    assert_eq!(exact, 0, "noeviction admitted a client again");
    assert_eq!(failed, 0, "under noeviction a refusal still answers");
}

/// A live update that would give a throttle a backend unable to decide its rate exactly is
/// refused with the reason, and the throttle keeps deciding where it did.
#[tokio::test]
async fn an_update_to_a_backend_that_cannot_decide_the_rate_is_refused() {
    use traffik_core::strategy::SlidingWindowCounter;

    let server = RedisServer::start();
    let redis: Arc<dyn Backend> = Arc::new(backend(&server, "update").await);
    let throttle = Throttle::builder("update", "1000000000/day")
        .strategy(SlidingWindowCounter::new())
        .backend(traffik_core::MemoryBackend::new())
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    let error = throttle.update_backend(Some(redis)).unwrap_err();
    assert!(
        matches!(error, traffik_core::ConfigError::UnsupportedRate { .. }),
        "{error}"
    );
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(all_keys(&server).is_empty(), "the hit went to Redis");
}

#[tokio::test]
async fn a_retried_backend_hides_a_dropped_connection() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use traffik_core::backend::Retry;

    /// Transient errors the wrapper saw (the default rule, counted).
    static TRANSIENT: AtomicUsize = AtomicUsize::new(0);
    fn transient(error: &BackendError) -> bool {
        let transient = error.is_transient();
        if transient {
            TRANSIENT.fetch_add(1, Ordering::SeqCst);
        }
        transient
    }

    let server = RedisServer::start();
    let plain = on(
        &backend(&server, "retry-plain").await,
        "retry",
        "5/min",
        Gcra::new().burst(5),
    );
    let retried = Throttle::builder("retry", "5/min")
        .strategy(Gcra::new().burst(5))
        .backend(
            Retry::new(backend(&server, "retry-wrapped").await)
                .max_retries(5)
                .delay(Duration::from_millis(20))
                .max_elapsed(Duration::from_secs(2))
                .retry_if(transient)
                .build()
                .expect("valid retry settings"),
        )
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap();
    assert!(plain.hit("a").await.unwrap().is_allowed());
    assert!(retried.hit("a").await.unwrap().is_allowed());

    // Redis drops every client connection: the first call on each fails.
    let killed = command(server.port(), "CLIENT KILL TYPE normal").unwrap();
    assert!(
        killed
            .trim_start_matches(':')
            .trim()
            .parse::<u32>()
            .unwrap()
            >= 2,
        "{killed}"
    );
    assert!(
        matches!(
            plain.hit("a").await,
            Err(ThrottleError::Backend { ref source, .. }) if source.is_transient()
        ),
        "without retries the dropped connection reaches the caller"
    );
    assert_eq!(TRANSIENT.load(Ordering::SeqCst), 0);
    let decision = retried.hit("a").await.expect("the retry reconnects");
    assert!(decision.is_allowed());
    assert_eq!(decision.remaining, 3, "counted once: 2 of 5 used");
    assert!(
        TRANSIENT.load(Ordering::SeqCst) >= 1,
        "the first attempt failed and was retried"
    );
}

/// The fleet clock (`TimeSource::Fleet`) sends Redis's clock as estimated in the
/// instance: the `now` a decision ran on lies between Redis's `TIME` read just before and just
/// after it, give or take the stated bound (half a round trip, and a millisecond of rounding),
/// for two instances alike, so a fleet decides on one clock.
#[tokio::test]
async fn the_fleet_clock_is_redis_s_clock_within_its_bound() {
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let backend = RedisBackend::builder(server.url())
            .time_source(TimeSource::Fleet)
            .namespace("clock")
            .connect()
            .await
            .unwrap();
        instances.push(on(&backend, "clock", "1/s", Gcra::new()));
    }
    for round in 0..40 {
        let throttle = &instances[round % 2];
        let before = server.time_ms();
        assert!(
            throttle
                .hit(&format!("c{round}"))
                .await
                .unwrap()
                .is_allowed()
        );
        let after = server.time_ms();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("clock:*c{round}*"))
            .query_async(&mut connection)
            .await
            .unwrap();
        let stored: String = redis::cmd("GET")
            .arg(&keys[0])
            .query_async(&mut connection)
            .await
            .unwrap();
        // A first hit at 1/s leaves the theoretical arrival time one emission interval on.
        let tat: u64 = stored
            .split("\"tat\":")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|tat| tat.parse().ok())
            .unwrap_or_else(|| panic!("no tat in {stored}"));
        let now = tat - 1_000;
        assert!(
            before.saturating_sub(2) <= now && now <= after + 2,
            "round {round}: decided at {now} ms, Redis read {before}..{after} ms"
        );
    }
}

#[tokio::test]
async fn a_reservation_is_one_round_trip_and_a_dropped_one_returns_its_charges() {
    use traffik_core::throttle::{HitOptions, Limit, reserve};

    let server = RedisServer::start();
    // One handle: limits are grouped by backend handle.
    let backend: Arc<dyn Backend> = Arc::new(backend(&server, "reserve").await);
    let shared = |uid: &str, rate: &str| {
        Throttle::builder(uid, rate)
            .shared_backend(Arc::clone(&backend))
            .on_error(OnError::Raise)
            .registry(&ThrottleRegistry::new())
            .build()
            .unwrap()
    };
    let exports = shared("reserve-exports", "10/h");
    let rows = shared("reserve-rows", "1000/h");
    let limits = |rows_cost| {
        [
            Limit::new(&exports, "acme", HitOptions::new()),
            Limit::new(&rows, "acme", HitOptions::new().cost(rows_cost)),
        ]
    };
    reserve(&limits(1)).await.unwrap().commit(); // loads the script
    let before = server.calls("evalsha");
    let reservation = reserve(&limits(400)).await.unwrap();
    assert_eq!(
        server.calls("evalsha"),
        before + 1,
        "one script call for both limits"
    );
    assert_eq!(
        rows.stat("acme").await.unwrap().unwrap().hits_remaining,
        599
    );
    drop(reservation); // returned on a spawned task
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows.stat("acme").await.unwrap().unwrap().hits_remaining != 999 {
        assert!(Instant::now() < deadline, "never returned");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        exports.stat("acme").await.unwrap().unwrap().hits_remaining,
        9
    );
    let refused = reserve(&limits(1000)).await.unwrap();
    assert!(refused.is_refused());
    assert_eq!(
        exports.stat("acme").await.unwrap().unwrap().hits_remaining,
        9,
        "nothing"
    );
}
