//! `RedisBackend::sentinel` on real processes (a master, a replica and a sentinel): decisions go
//! to the master the sentinel names, limits hold, and after a failover (forced, or after the
//! master died) decisions reach the new master, with only transient typed errors in between.

use std::time::{Duration, Instant};

use traffik_core::backend::redis::RedisConnectError;
use traffik_core::backend::redis::redis::RedisConnectionInfo;
use traffik_core::backend::redis::redis::sentinel::SentinelNodeConnectionInfo;
use traffik_core::backend::{Backend, BackendError};
use traffik_core::strategy::FixedWindow;
use traffik_core::{OnError, RedisBackend, Throttle, ThrottleError, ThrottleRegistry};
use traffik_tests::redis_sentinel::{MASTER_NAME, RedisSentinel, array};
use traffik_tests::redis_server::{RedisServer, command};

async fn backend(setup: &RedisSentinel, namespace: &str) -> RedisBackend {
    RedisBackend::sentinel([setup.sentinel_url()], MASTER_NAME)
        .namespace(namespace)
        .sentinel_check_interval(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connects through the sentinel")
}

fn three_per_hour(backend: &RedisBackend, uid: &str) -> Throttle {
    Throttle::builder(uid, "3/hour")
        .strategy(FixedWindow::new())
        .backend(backend.clone())
        .on_error(OnError::Raise)
        .registry(&ThrottleRegistry::new())
        .build()
        .expect("a valid throttle")
}

/// The number of keys on the server on `port`.
fn keys(port: u16) -> u64 {
    command(port, "DBSIZE")
        .ok()
        .and_then(|reply| reply.trim_start_matches(':').parse().ok())
        .unwrap_or(0)
}

/// Waits (at most 10 s) until the replica on `replica` holds as many keys as the master.
async fn wait_for_replication(master: u16, replica: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys(replica) != keys(master) {
        assert!(Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Decides for fresh clients until one decision lands on `server` (at most 30 s). Every
/// failure on the way must be a transient backend error; returns how many there were.
async fn until_decisions_reach(throttle: &Throttle, server: &RedisServer) -> usize {
    let before = server.calls("evalsha");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failures = 0;
    let mut client = 0_u32;
    loop {
        client += 1;
        match throttle.hit(&format!("probe-{client}")).await {
            Ok(decision) => {
                assert!(decision.is_allowed(), "a fresh client is admitted");
                if server.calls("evalsha") > before {
                    return failures;
                }
            }
            Err(ThrottleError::Backend { source, .. }) => {
                assert!(source.is_transient(), "a typed, transient error: {source}");
                failures += 1;
            }
            Err(other) => panic!("expected a backend error, got {other}"),
        }
        assert!(
            Instant::now() < deadline,
            "decisions never reached the new master ({failures} failures)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After the switch: 20 decisions in a row succeed, every one on `server`.
async fn every_decision_lands_on(throttle: &Throttle, server: &RedisServer) {
    let before = server.calls("evalsha");
    for client in 0..20 {
        let decision = throttle
            .hit(&format!("after-{client}"))
            .await
            .expect("decides on the new master");
        assert!(decision.is_allowed());
    }
    assert_eq!(server.calls("evalsha") - before, 20, "one EVALSHA each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_the_master_through_a_sentinel_failover() {
    let setup = RedisSentinel::start();
    let first = setup.master_port().expect("the sentinel names a master");
    let backend = backend(&setup, "sentinel").await;
    let throttle = three_per_hour(&backend, "failover");
    // Loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA) before counting.
    assert!(throttle.hit("warm").await.unwrap().is_allowed());

    let before = setup.server(first).calls("evalsha");
    for _ in 0..3 {
        assert!(throttle.hit("kept").await.unwrap().is_allowed());
    }
    assert!(
        throttle.hit("kept").await.unwrap().is_throttled(),
        "the limit holds through the sentinel"
    );
    assert_eq!(
        setup.server(first).calls("evalsha") - before,
        4,
        "decisions went to the master the sentinel names"
    );
    wait_for_replication(first, setup.other(first).port()).await;

    let second = setup.failover();
    assert_ne!(first, second);
    let failures = until_decisions_reach(&throttle, setup.server(second)).await;
    eprintln!("{failures} decisions failed during the forced failover");
    every_decision_lands_on(&throttle, setup.server(second)).await;
    assert!(
        throttle.hit("kept").await.unwrap().is_throttled(),
        "the state replicated before the failover carries over"
    );
    assert_eq!(
        throttle.stat("kept").await.unwrap().unwrap().hits_remaining,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_resume_on_the_new_master_after_the_master_dies() {
    let mut setup = RedisSentinel::start();
    let first = setup.master_port().expect("the sentinel names a master");
    let backend = backend(&setup, "crash").await;
    let throttle = three_per_hour(&backend, "crash");
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    wait_for_replication(first, setup.other(first).port()).await;

    setup.kill(first);
    let error = throttle.hit("a").await.unwrap_err();
    assert!(
        matches!(
            error,
            ThrottleError::Backend {
                source: BackendError::Unavailable { .. } | BackendError::Timeout { .. },
                ..
            }
        ),
        "{error}"
    );
    // The sentinel notices after `down-after-milliseconds` (1 s) and promotes the replica.
    let second = setup.wait_for_new_master(first);
    let failures = until_decisions_reach(&throttle, setup.server(second)).await;
    eprintln!("{failures} decisions failed after the master died");
    every_decision_lands_on(&throttle, setup.server(second)).await;
    assert_eq!(
        throttle.stat("a").await.unwrap().unwrap().hits_remaining,
        2,
        "the hit before the crash was replicated"
    );
}

#[tokio::test]
async fn reset_and_close_work_through_the_sentinel() {
    let setup = RedisSentinel::start();
    let master = setup.master_port().expect("the sentinel names a master");
    let backend = backend(&setup, "lifecycle").await;
    let throttle = three_per_hour(&backend, "lifecycle");
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert_eq!(keys(master), 1);
    backend.reset().await.expect("reset deletes the namespace");
    assert_eq!(keys(master), 0);
    backend.close().await.expect("closes");
    assert!(matches!(
        throttle.hit("a").await.unwrap_err(),
        ThrottleError::Backend {
            source: BackendError::Closed { .. },
            ..
        }
    ));
}

#[tokio::test]
async fn an_unknown_master_name_or_no_sentinel_fails_to_connect_with_a_typed_error() {
    let setup = RedisSentinel::start();
    let unknown = RedisBackend::sentinel([setup.sentinel_url()], "no-such-master")
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            unknown,
            RedisConnectError::Backend(BackendError::Unavailable { .. })
        ),
        "{unknown}"
    );
    let started = Instant::now();
    let nobody = RedisBackend::sentinel(["redis://127.0.0.1:1"], MASTER_NAME)
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            nobody,
            RedisConnectError::Backend(
                BackendError::Unavailable { .. } | BackendError::Timeout { .. }
            )
        ),
        "{nobody}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The sentinel's port answers SENTINEL commands, not decisions.
    assert!(
        command(setup.sentinel_port(), "PING")
            .unwrap()
            .contains("PONG")
    );
}

#[tokio::test]
async fn a_master_with_a_password_is_reached_with_the_master_connection_settings() {
    let setup = RedisSentinel::start_with_password(Some("secret"));
    let without = RedisBackend::sentinel([setup.sentinel_url()], MASTER_NAME)
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            without,
            RedisConnectError::Backend(BackendError::Denied { .. })
        ),
        "{without}"
    );
    let master = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(RedisConnectionInfo::default().set_password("secret"));
    let backend = RedisBackend::sentinel([setup.sentinel_url()], MASTER_NAME)
        .sentinel_master_connection(master)
        .namespace("auth")
        .connect()
        .await
        .expect("connects with the master's password");
    let throttle = three_per_hour(&backend, "auth");
    for _ in 0..3 {
        assert!(throttle.hit("a").await.unwrap().is_allowed());
    }
    assert!(throttle.hit("a").await.unwrap().is_throttled());
    let port = setup.master_port().expect("the sentinel names a master");
    assert_eq!(
        array(port, Some("secret"), "KEYS auth:*").unwrap(),
        ["auth:auth:{a}:fixed-window"]
    );
}
