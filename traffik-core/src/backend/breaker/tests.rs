use std::time::Duration;

use super::*;
use crate::testing::Outage;
use crate::{MemoryBackend, OnError, Throttle};

fn outage() -> Outage {
    Outage::new(MemoryBackend::new())
}

/// Opens after 3 failed calls. A hit on a failing synchronous backend (the outage) fails twice,
/// on the synchronous path and again on the asynchronous one, so 2 hits open it.
fn breaker(backend: &Outage) -> CircuitBreaker<Outage> {
    CircuitBreaker::new(backend.clone())
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(30))
        .success_threshold(2)
        .build()
        .unwrap()
}

fn throttle(uid: &str, backend: impl Backend) -> Throttle {
    Throttle::builder(uid, "100/min")
        .registry(&crate::ThrottleRegistry::new())
        .backend(backend)
        .on_error(OnError::Allow)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn once_open_it_keeps_decisions_away_from_the_backend() {
    let backend = outage();
    let breaker = breaker(&backend);
    let handle = breaker.handle();
    let throttle = throttle("breaker-opens", breaker);
    backend.set_down(true);
    for _ in 0..2 {
        assert!(
            throttle.hit("alice").await.unwrap().is_skipped(),
            "failed open"
        );
    }
    assert_eq!(handle.state(), BreakerState::Open);
    let reached = backend.calls();
    for _ in 0..100 {
        assert!(throttle.hit("alice").await.unwrap().is_skipped());
    }
    assert_eq!(
        backend.calls(),
        reached,
        "no call reached the backend while open"
    );
    assert!(handle.info().consecutive_failures >= 3);
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_close_it_when_the_backend_is_back() {
    let backend = outage();
    let breaker = breaker(&backend);
    let handle = breaker.handle();
    let throttle = throttle("breaker-recovers", breaker);
    backend.set_down(true);
    for _ in 0..3 {
        throttle.hit("alice").await.unwrap();
    }
    assert_eq!(handle.state(), BreakerState::Open);
    backend.set_down(false);
    tokio::time::advance(Duration::from_secs(29)).await;
    throttle.hit("alice").await.unwrap();
    assert_eq!(
        handle.state(),
        BreakerState::Open,
        "before the recovery timeout"
    );

    tokio::time::advance(Duration::from_secs(1)).await;
    let first = throttle.hit("alice").await.unwrap();
    assert!(
        first.is_allowed() && !first.is_skipped(),
        "a probe decided on the backend"
    );
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    throttle.hit("alice").await.unwrap();
    assert_eq!(
        handle.state(),
        BreakerState::Closed,
        "two successful probes"
    );
    let decision = throttle.hit("alice").await.unwrap();
    assert_eq!(decision.remaining, 97, "three hits counted on the backend");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again() {
    let backend = outage();
    let breaker = breaker(&backend);
    let handle = breaker.handle();
    let throttle = throttle("breaker-reopens", breaker);
    backend.set_down(true);
    for _ in 0..3 {
        throttle.hit("alice").await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    let before = backend.calls();
    throttle.hit("alice").await.unwrap();
    // One probe: the synchronous attempt fails it, and the asynchronous retry of the same hit
    // finds the breaker open again.
    assert_eq!(backend.calls(), before + 1, "one probe");
    assert_eq!(handle.state(), BreakerState::Open);
    assert!(handle.info().opened_for.is_some_and(|open| open.is_zero()));
}

#[tokio::test(start_paused = true)]
async fn errors_that_prove_the_backend_answered_do_not_open_it() {
    let backend = outage();
    let breaker = CircuitBreaker::new(backend.clone())
        .failure_threshold(1)
        .failure_if(|_| false)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let throttle = throttle("breaker-ignores", breaker);
    backend.set_down(true);
    for _ in 0..5 {
        throttle.hit("alice").await.unwrap();
    }
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn operators_force_it_open_and_closed() {
    let backend = outage();
    let breaker = breaker(&backend);
    let handle = breaker.handle();
    let throttle = throttle("breaker-forced", breaker);
    handle.force_open();
    assert!(handle.info().forced_open);
    assert!(throttle.hit("alice").await.unwrap().is_skipped());
    assert_eq!(backend.calls(), 0);
    handle.force_close();
    assert!(!throttle.hit("alice").await.unwrap().is_skipped());
    assert_eq!(backend.calls(), 1);
}

#[test]
fn bad_settings_are_configuration_errors() {
    let error = |breaker: CircuitBreaker<MemoryBackend>| breaker.build().unwrap_err().to_string();
    let new = || CircuitBreaker::new(MemoryBackend::new());
    assert!(error(new().failure_threshold(0)).contains("failure threshold"));
    assert!(error(new().recovery_timeout(Duration::ZERO)).contains("recovery timeout"));
    assert!(error(new().half_open_probes(0)).contains("probe"));
    assert!(error(new().success_threshold(0)).contains("success threshold"));
    let ratio = |ratio| Trip::FailureRatio {
        ratio,
        window: Duration::from_secs(10),
        min_calls: 10,
    };
    assert!(error(new().trip(ratio(0.0))).contains("ratio"));
    assert!(new().trip(ratio(0.5)).build().is_ok());
}
