//! Behaviour of the in-memory backend (the contract suite in `tests/` covers the rest).

use super::*;
use crate::strategy::{FixedWindow, TokenBucket};
use crate::{Context, ManualClock, Rate};

fn backend(clock: &ManualClock, max_keys: usize) -> MemoryBackend {
    MemoryBackend::builder()
        .clock(clock.clone())
        .max_keys(max_keys)
        .lock_options(LockOptions::default())
        .build()
        .unwrap()
}

fn hit(backend: &MemoryBackend, key: &str, now: Millis) -> Decision {
    let context = Context::new();
    let hit = Hit::new(now, Rate::per_second(2), 1, &context);
    backend
        .decide_now(key, &FixedWindow::new(), hit, Mode::Consume)
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn reset_clears_only_its_own_namespace() {
    let clock = ManualClock::new(0);
    let a = backend(&clock, 100);
    let b = a.with_namespace("other").unwrap();
    hit(&a, "traffik:t:{x}:s", 0);
    hit(&b, "other:t:{x}:s", 0);
    a.set("traffik:plain", "1", None).await.unwrap();
    assert_eq!(a.len(), 3);
    Backend::reset(&a).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(hit(&b, "other:t:{x}:s", 0).is_allowed());
    assert!(
        hit(&b, "other:t:{x}:s", 0).is_throttled(),
        "the other namespace kept its state"
    );
}

#[tokio::test]
async fn close_fails_every_later_call_and_stops_the_sweeper() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    assert!(backend.sweeper_running());
    hit(&backend, "traffik:k", 0);
    Backend::close(&backend).await.unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!backend.sweeper_running());
    assert!(backend.is_empty());
    let context = Context::new();
    let error = backend
        .decide(
            "traffik:k",
            &FixedWindow::new(),
            Hit::new(0, Rate::per_second(1), 1, &context),
            Mode::Consume,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, BackendError::Closed { .. }));
    assert!(matches!(
        backend.get("traffik:k").await,
        Err(BackendError::Closed { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_drops_expired_keys_and_stops_when_the_backend_is_dropped() {
    let clock = ManualClock::new(10_000);
    let backend = MemoryBackend::builder()
        .clock(clock.clone())
        .sweep_interval(Duration::from_secs(1))
        .lock_options(LockOptions::default())
        .build()
        .unwrap();
    for i in 0..10 {
        hit(&backend, &format!("traffik:k{i}"), 10_000);
    }
    backend.set("traffik:forever", "x", None).await.unwrap();
    assert_eq!(backend.len(), 11);
    clock.set(11_000); // the fixed windows ended
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(backend.len(), 1, "only the key without expiry is left");
    let alive = Arc::clone(&backend.shared.sweeper_alive);
    drop(backend);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!alive.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_flood_of_distinct_keys_stays_under_the_cap() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 1_000);
    for i in 0..10_000 {
        hit(&backend, &format!("traffik:flood:{{{i}}}:s"), 0);
    }
    assert!(backend.len() <= 1_000, "{} keys", backend.len());
    assert!(
        hit(&backend, "traffik:new", 0).is_allowed(),
        "new clients are still tracked"
    );
    assert!(hit(&backend, "traffik:new", 0).is_allowed());
    assert!(hit(&backend, "traffik:new", 0).is_throttled());
}

#[tokio::test]
async fn a_full_map_makes_room_for_a_batchs_new_keys_only() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 3);
    let context = Context::new();
    let hit = Hit::new(0, Rate::per_second(2), 1, &context);
    let strategy = FixedWindow::new();
    let batch = |keys: &[&'static str]| -> Vec<Decision> {
        let hits: Vec<KeyedHit<'_>> = keys
            .iter()
            .map(|key| KeyedHit {
                key,
                strategy: &strategy,
                hit,
            })
            .collect();
        backend
            .decide_all_now(&hits, Mode::Consume)
            .unwrap()
            .unwrap()
    };
    for key in ["traffik:a", "traffik:b", "traffik:c"] {
        self::hit(&backend, key, 0);
    }
    assert_eq!(backend.len(), 3);
    // Known keys only: nothing is evicted, so both keep their count (the second hit fills
    // each one's limit of 2).
    assert!(
        batch(&["traffik:a", "traffik:b"])
            .iter()
            .all(Decision::is_allowed)
    );
    assert_eq!(backend.len(), 3);
    assert!(
        batch(&["traffik:a", "traffik:b"])
            .iter()
            .all(Decision::is_throttled)
    );
    // One new key: exactly one entry makes room for it.
    assert!(
        batch(&["traffik:c", "traffik:d"])
            .iter()
            .all(Decision::is_allowed)
    );
    assert_eq!(backend.len(), 3);
}

#[tokio::test]
async fn when_full_expired_keys_go_before_live_ones() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 10);
    let context = Context::new();
    // A long-lived bucket that must survive.
    let long = Hit::new(0, Rate::per_hour(2), 2, &context);
    backend
        .decide_now("traffik:keep", &TokenBucket::new(), long, Mode::Consume)
        .unwrap()
        .unwrap();
    for i in 0..9 {
        hit(&backend, &format!("traffik:short{i}"), 0);
    }
    clock.set(5_000);
    for i in 0..9 {
        hit(&backend, &format!("traffik:later{i}"), 5_000);
    }
    let again = Hit::new(5_000, Rate::per_hour(2), 1, &context);
    let decision = backend
        .decide_now("traffik:keep", &TokenBucket::new(), again, Mode::Consume)
        .unwrap()
        .unwrap();
    assert!(decision.is_throttled(), "the live bucket was not evicted");
}

#[test]
fn a_hit_carrying_an_older_time_than_its_key_has_seen_uses_the_newer_one() {
    // Two threads read the clock, then race for the key: the loser may carry a time a
    // millisecond older than the state. At 1,000,000/s that millisecond is 1000 cells.
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    let context = Context::new();
    let rate = Rate::per_second(1_000_000);
    let decide = |now| {
        backend
            .decide_now(
                "traffik:k",
                &crate::strategy::Gcra::new(),
                Hit::new(now, rate, 1, &context),
                Mode::Consume,
            )
            .unwrap()
            .unwrap()
    };
    assert!(decide(1).is_allowed());
    assert!(
        decide(0).is_allowed(),
        "the stale reading is raised to 1 ms instead of looking 1000 cells late"
    );
}

#[tokio::test]
async fn key_value_counters_keep_their_first_ttl() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    assert_eq!(
        backend
            .increment_with_ttl("traffik:c", 2, Duration::from_secs(1))
            .await
            .unwrap(),
        2
    );
    clock.set(900);
    assert_eq!(
        backend
            .increment_with_ttl("traffik:c", 3, Duration::from_secs(1))
            .await
            .unwrap(),
        5
    );
    clock.set(1_000);
    assert_eq!(
        backend.get("traffik:c").await.unwrap(),
        None,
        "expired at the first ttl, not re-armed"
    );
    assert_eq!(backend.increment("traffik:c", 1).await.unwrap(), 1);
}

#[tokio::test]
async fn incrementing_text_or_strategy_state_is_a_typed_error() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    backend.set("traffik:t", "hello", None).await.unwrap();
    assert!(matches!(
        backend.increment("traffik:t", 1).await,
        Err(BackendError::WrongType { .. })
    ));
    backend.set("traffik:n", " 41 ", None).await.unwrap();
    assert_eq!(backend.increment("traffik:n", 1).await.unwrap(), 42);
    hit(&backend, "traffik:s", 0);
    assert!(matches!(
        backend.get("traffik:s").await,
        Err(BackendError::WrongType { .. })
    ));
}

#[test]
fn builds_without_a_runtime_and_validates_settings() {
    let backend = MemoryBackend::builder()
        .lock_options(LockOptions::default())
        .build()
        .unwrap();
    assert!(!backend.sweeper_running());
    assert!(MemoryBackend::builder().max_keys(0).build().is_err());
    assert!(
        MemoryBackend::builder()
            .namespace("bad ns")
            .build()
            .is_err()
    );
    assert!(
        MemoryBackend::builder()
            .sweep_interval(Duration::ZERO)
            .build()
            .is_err()
    );
    assert!(backend.with_namespace("a{b").is_err());
}
