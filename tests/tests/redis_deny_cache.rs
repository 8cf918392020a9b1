//! The Redis backend's local deny cache on a real `redis-server`: it answers exactly what Redis
//! would (every strategy, random costs and gaps, on the caller's clock), a flooding client
//! costs about one Redis call per wait period, and refunds and resets forget what it kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use traffik_core::backend::Backend;
use traffik_core::backend::redis::TimeSource;
use traffik_core::throttle::HitOptions;
use traffik_core::{ManualClock, RedisBackend, Throttle, ThrottleRegistry};
use traffik_tests::redis_server::RedisServer;
use traffik_tests::{every_strategy, throttle};

async fn backend(server: &RedisServer, namespace: &str, deny_cache: usize) -> RedisBackend {
    RedisBackend::builder(server.url())
        .namespace(namespace)
        .time_source(TimeSource::Caller)
        .deny_cache(deny_cache)
        .connect()
        .await
        .expect("connects")
}

/// A small deterministic sequence: (gap ms, cost) pairs.
fn steps(seed: u64, count: usize) -> Vec<(u64, u64)> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ seed;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let gap = [0, 0, 0, 1, 7, 40, 150][usize::try_from(state % 7).unwrap_or(0)];
            let cost = if (state >> 8).is_multiple_of(4) { 2 } else { 1 };
            (gap, cost)
        })
        .collect()
}

#[tokio::test]
async fn cached_refusals_are_what_redis_would_answer() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let cached: Arc<dyn Backend> = Arc::new(backend(&server, "cached", 1_000).await);
    let plain: Arc<dyn Backend> = Arc::new(backend(&server, "plain", 0).await);
    for (name, configure) in every_strategy() {
        let on = |backend: &Arc<dyn Backend>| {
            throttle(
                &format!("deny-{name}"),
                "4/500ms",
                configure,
                Arc::clone(backend),
                &clock,
            )
        };
        let (with_cache, without) = (on(&cached), on(&plain));
        let (mut cached_calls, mut plain_calls) = (0, 0);
        for (step, (gap, cost)) in steps(7, 300).into_iter().enumerate() {
            clock.advance(Duration::from_millis(gap));
            let options = HitOptions::new().cost(cost);
            let before = server.calls("evalsha");
            let mine = with_cache.hit_with("client", options).await.unwrap();
            let between = server.calls("evalsha");
            let redis = without.hit_with("client", options).await.unwrap();
            cached_calls += between - before;
            plain_calls += server.calls("evalsha") - between;
            // The verdict and the wait are exact; `remaining` is the refusal's, which Redis
            // may since have raised for a cost above 1 on a replenishing strategy.
            assert_eq!(mine.outcome, redis.outcome, "{name}, step {step}");
            assert_eq!(mine.reset, redis.reset, "{name}, step {step}");
            if cost == 1 {
                assert_eq!(mine, redis, "{name}, step {step}");
            }
        }
        if name != "adaptive" {
            assert!(
                cached_calls < plain_calls,
                "{name}: the cache answered some hits ({cached_calls} calls against {plain_calls})"
            );
        }
    }
}

#[tokio::test]
async fn a_flooding_client_costs_about_one_redis_call_per_wait() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(backend(&server, "flood", 1_000).await);
    let (_, fixed_window) = every_strategy()[0];
    let flooded = throttle("flood", "10/s", fixed_window, Arc::clone(&backend), &clock);
    let before = server.calls("evalsha");
    let (mut allowed, mut hits) = (0, 0);
    // 1 000 hits a second (100× the limit) for 3 windows (the clock starts on a second).
    for _ in 0..3_000 {
        hits += 1;
        allowed += usize::from(flooded.hit("flooder").await.unwrap().is_allowed());
        clock.advance(Duration::from_millis(1));
    }
    let calls = server.calls("evalsha") - before;
    assert_eq!(
        allowed, 30,
        "10 per window, 3 windows, as without the cache"
    );
    // Each window: 10 admissions and one refusal from Redis; the rest answered here.
    assert!(calls <= 33 + 1, "{calls} Redis calls for {hits} hits");
    assert!(calls >= 30, "{calls}");
}

/// On Redis's clock, read by each script or estimated in the instance (the fleet clock).
#[tokio::test]
async fn on_redis_time_a_flood_is_answered_locally_and_admits_the_same() {
    let server = RedisServer::start();
    for time in [TimeSource::Server, TimeSource::Fleet] {
        let backend = RedisBackend::builder(server.url())
            .namespace(format!("realtime-{time:?}"))
            .time_source(time)
            .deny_cache(1_000)
            .connect()
            .await
            .unwrap();
        let flooded = Throttle::builder("realtime", "5/s")
            .registry(&ThrottleRegistry::new())
            .backend(backend)
            .build()
            .unwrap();
        let before = server.calls("evalsha");
        let started = Instant::now();
        let (mut allowed, mut hits) = (0_u64, 0_u64);
        // About 1 000 hits a second, 200× the limit.
        while started.elapsed() < Duration::from_millis(1_500) {
            hits += 1;
            allowed += u64::from(flooded.hit("flooder").await.unwrap().is_allowed());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let calls = server.calls("evalsha") - before;
        // 1.5 s spans 2 or 3 windows of Redis's clock.
        assert!((10..=15).contains(&allowed), "{time:?}: {allowed} admitted");
        assert!(
            hits > 20 * allowed,
            "{time:?}: the client flooded: {hits} hits"
        );
        // Per window: its admissions, the refusal that is kept, and (on `TIME`) the hits of the
        // last 1 ms and 0.1 % of the wait, which the cache leaves to Redis (a few at this pace).
        assert!(
            calls <= allowed + 3 * 5,
            "{time:?}: {calls} Redis calls for {hits} hits and {allowed} admissions"
        );
    }
}

#[tokio::test]
async fn refunds_and_resets_forget_what_was_kept() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend: Arc<dyn Backend> = Arc::new(backend(&server, "forget", 1_000).await);
    let (_, fixed_window) = every_strategy()[0];
    let limited = throttle(
        "forget",
        "1/min",
        fixed_window,
        Arc::clone(&backend),
        &clock,
    );
    let charge = limited.hit("a").await.unwrap();
    assert!(charge.is_allowed());
    assert!(limited.hit("a").await.unwrap().is_throttled(), "kept");
    assert!(
        limited.hit("a").await.unwrap().is_throttled(),
        "answered here"
    );
    limited
        .refund_with("a", HitOptions::new())
        .await
        .expect("the refund runs");
    assert!(
        limited.hit("a").await.unwrap().is_allowed(),
        "the refund was seen"
    );
    assert!(limited.hit("a").await.unwrap().is_throttled());
    backend.reset().await.unwrap();
    assert!(
        limited.hit("a").await.unwrap().is_allowed(),
        "the reset was seen"
    );
    assert!(limited.hit("a").await.unwrap().is_throttled(), "kept again");
    backend.close().await.unwrap();
    // A closed backend answers nothing from the cache: the on-error policy decides.
    assert!(
        !limited.hit("a").await.unwrap().is_throttled(),
        "the closed backend failed, and the default policy let the hit through"
    );
}
