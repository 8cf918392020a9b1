//! Resilience on real `redis-server` processes: Redis killed (SIGKILL), hung (SIGSTOP),
//! restarted and paused (`CLIENT PAUSE`), behind a circuit breaker with an in-memory fallback.
//!
//! What is asserted is behaviour (where a decision went, the breaker's state, that nothing
//! waited on the command timeout once the breaker opened), with bounds far from the timeouts
//! involved, never a performance figure.

use std::time::{Duration, Instant};

use traffik_core::backend::{BreakerHandle, BreakerState, Failover, failover};
use traffik_core::{MemoryBackend, RedisBackend, Throttle, ThrottleRegistry};
use traffik_tests::redis_server::{RedisServer, command};

/// The command timeout: what every decision would wait on a hung Redis without the breaker.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1_500);

async fn redis(server: &RedisServer) -> RedisBackend {
    RedisBackend::builder(server.url())
        .namespace("resilience")
        .command_timeout(COMMAND_TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connects")
}

/// Redis behind a breaker (opens after 3 failed calls, probes after 300 ms, closes after 2
/// probes) falling back to memory; no retries, so each failed decision is one failed call.
async fn resilient(server: &RedisServer) -> Failover<RedisBackend, MemoryBackend> {
    let fallback = MemoryBackend::builder()
        .namespace("resilience")
        .build()
        .unwrap();
    failover(redis(server).await, fallback)
        .max_retries(0)
        .breaker(|breaker| {
            breaker
                .failure_threshold(3)
                .recovery_timeout(Duration::from_millis(300))
                .success_threshold(2)
        })
        .build()
        .unwrap()
}

fn throttle(uid: &str, backend: Failover<RedisBackend, MemoryBackend>) -> Throttle {
    Throttle::builder(uid, "5/min")
        .registry(&ThrottleRegistry::new())
        .backend(backend)
        .build()
        .unwrap()
}

/// Hits as `client` until the breaker closes (bounded): the probes that close it.
async fn until_closed(throttle: &Throttle, breaker: &BreakerHandle, client: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while breaker.state() != BreakerState::Closed {
        assert!(Instant::now() < deadline, "the breaker never closed");
        throttle.hit(client).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens the breaker on a Redis that fails, then checks that decisions go to the fallback at
/// once and that the fallback enforces its own limit.
async fn open_and_fall_back(throttle: &Throttle, breaker: &BreakerHandle) {
    for _ in 0..3 {
        // Each waits on the failure (a refused connection, or the command timeout).
        assert!(throttle.hit("opener").await.unwrap().is_allowed());
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let mut slowest = Duration::ZERO;
    let mut allowed = 0;
    for _ in 0..8 {
        let started = Instant::now();
        allowed += usize::from(throttle.hit("fallback-client").await.unwrap().is_allowed());
        slowest = slowest.max(started.elapsed());
    }
    assert_eq!(allowed, 5, "the fallback enforces its own limit");
    assert!(
        slowest < COMMAND_TIMEOUT / 3,
        "no decision waits on the command timeout while open: {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_falls_back_and_a_restarted_one_takes_the_decisions_back() {
    let mut server = RedisServer::start();
    let backend = resilient(&server).await;
    let breaker = backend.primary().handle();
    let throttle = throttle("killed", backend);
    assert!(throttle.hit("alice").await.unwrap().is_allowed());
    assert!(server.calls("evalsha") >= 1, "decided on Redis");

    server.kill();
    open_and_fall_back(&throttle, &breaker).await;

    server.restart();
    until_closed(&throttle, &breaker, "prober").await;
    let before = server.calls("evalsha");
    let decision = throttle.hit("alice").await.unwrap();
    assert!(decision.is_allowed());
    assert_eq!(
        server.calls("evalsha"),
        before + 1,
        "decided on Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_timeouts_only_until_the_breaker_opens() {
    let server = RedisServer::start();
    let backend = resilient(&server).await;
    let breaker = backend.primary().handle();
    let throttle = throttle("hung", backend);
    assert!(throttle.hit("alice").await.unwrap().is_allowed());

    server.freeze();
    let started = Instant::now();
    open_and_fall_back(&throttle, &breaker).await;
    assert!(
        started.elapsed() >= COMMAND_TIMEOUT * 3,
        "the calls that opened it each waited on the timeout"
    );

    server.thaw();
    until_closed(&throttle, &breaker, "prober").await;
    let before = server.calls("evalsha");
    assert!(throttle.hit("alice").await.unwrap().is_allowed());
    assert_eq!(
        server.calls("evalsha"),
        before + 1,
        "decided on Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_opens_the_breaker_and_the_probes_close_it_after_the_pause() {
    let server = RedisServer::start();
    let backend = resilient(&server).await;
    let breaker = backend.primary().handle();
    let throttle = throttle("paused", backend);
    assert!(throttle.hit("alice").await.unwrap().is_allowed());

    let pause = COMMAND_TIMEOUT * 4 + Duration::from_secs(2);
    let reply = command(
        server.port(),
        &format!("CLIENT PAUSE {} ALL", pause.as_millis()),
    )
    .unwrap();
    assert_eq!(reply, "+OK");
    let paused_at = Instant::now();
    open_and_fall_back(&throttle, &breaker).await;

    until_closed(&throttle, &breaker, "prober").await;
    assert!(
        paused_at.elapsed() >= pause,
        "closed only once Redis answered again"
    );
    let before = server.calls("evalsha");
    assert!(throttle.hit("alice").await.unwrap().is_allowed());
    assert_eq!(
        server.calls("evalsha"),
        before + 1,
        "decided on Redis again"
    );
}

/// Polls `backend.ready()` until it answers `Ok` (bounded).
async fn until_ready(backend: &dyn traffik_core::backend::Backend) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while backend.ready().await.is_err() {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_a_killed_or_hung_redis_and_a_fallback_stays_ready() {
    use traffik_core::backend::Backend;
    let mut server = RedisServer::start();
    let plain = redis(&server).await;
    let wrapped = resilient(&server).await;
    assert!(plain.ready().await.is_ok());
    assert!(wrapped.ready().await.is_ok());

    server.kill();
    let error = plain.ready().await.unwrap_err();
    assert!(error.is_outage(), "{error}");
    assert!(
        wrapped.ready().await.is_ok(),
        "the in-memory fallback answers"
    );

    server.restart();
    until_ready(&plain).await;

    server.freeze();
    let started = Instant::now();
    let error = plain.ready().await.unwrap_err();
    assert!(error.is_outage(), "{error}");
    assert!(
        started.elapsed() < COMMAND_TIMEOUT * 3,
        "bounded by the command timeout"
    );
    server.thaw();
    until_ready(&plain).await;
    let _ = command(server.port(), "PING");
}
