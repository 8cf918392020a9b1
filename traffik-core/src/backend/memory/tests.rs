//! Behaviour of the in-memory backend (the contract suite in `tests/` covers the rest).

use std::sync::Arc;

use super::tables;
use super::*;
use crate::strategy::{FixedWindow, TokenBucket};
use crate::throttle::HitOptions;
use crate::{Context, ManualClock, Rate, Throttle};

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
    // millisecond older than the state. At 1,000,000/s that millisecond is 1000 cells. The
    // general map (a key of another form) and a typed table (a storage key) both raise it.
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    let context = Context::new();
    let rate = Rate::per_second(1_000_000);
    let typed = crate::key::storage_key("traffik", "t", "k", None, "gcra");
    for key in ["traffik:k", typed.as_str()] {
        let decide = |now| {
            backend
                .decide_now(
                    key,
                    &crate::strategy::Gcra::new(),
                    Hit::new(now, rate, 1, &context),
                    Mode::Consume,
                )
                .unwrap()
                .unwrap()
        };
        assert!(decide(1_700_000_000_001).is_allowed(), "{key}");
        assert!(
            decide(1_700_000_000_000).is_allowed(),
            "{key}: the stale reading is raised to the newer millisecond"
        );
    }
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

// The typed tables: storage keys (`{namespace}:{uid}:{{identity}}:{strategy}`) of built-in
// strategies, reached by string and by a throttle's lane.

fn throttle_on(backend: &MemoryBackend, clock: &ManualClock, uid: &str, rate: &str) -> Throttle {
    Throttle::builder(uid, rate)
        .strategy(FixedWindow::new())
        .backend(backend.clone())
        .clock(clock.clone())
        .registry(&crate::ThrottleRegistry::new())
        .build()
        .unwrap()
}

fn storage_hit(backend: &MemoryBackend, identity: &str, now: Millis) -> Decision {
    let key = crate::key::storage_key("traffik", "t", identity, None, "fixed-window");
    hit(backend, &key, now)
}

#[tokio::test]
async fn a_throttle_and_string_keyed_calls_share_one_state() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    let throttle = throttle_on(&backend, &clock, "t", "2/s");
    assert!(throttle.hit("10.0.0.1").await.unwrap().is_allowed());
    // The string-keyed call reaches the entry the throttle's lane wrote, and back.
    assert!(storage_hit(&backend, "10.0.0.1", 0).is_allowed());
    assert!(throttle.hit("10.0.0.1").await.unwrap().is_throttled());
    assert!(storage_hit(&backend, "10.0.0.1", 0).is_throttled());
    assert_eq!(
        throttle
            .stat("10.0.0.1")
            .await
            .unwrap()
            .unwrap()
            .hits_remaining,
        0
    );
    // A long identity (stored out of line), an escaped one, a scoped hit.
    for identity in [
        "2001:db8::1",
        "a client with spaces and é",
        &"x".repeat(300),
    ] {
        assert!(throttle.hit(identity).await.unwrap().is_allowed());
        assert!(storage_hit(&backend, identity, 0).is_allowed());
        assert!(throttle.hit(identity).await.unwrap().is_throttled());
    }
    let scoped = HitOptions::new().scope("GET /items");
    assert!(
        throttle
            .hit_with("10.0.0.1", scoped)
            .await
            .unwrap()
            .is_allowed()
    );
    let key = crate::key::storage_key(
        "traffik",
        "t",
        "10.0.0.1",
        Some("GET /items"),
        "fixed-window",
    );
    assert!(hit(&backend, &key, 0).is_allowed());
    assert!(
        throttle
            .hit_with("10.0.0.1", scoped)
            .await
            .unwrap()
            .is_throttled()
    );
    assert_eq!(backend.len(), 5);
}

#[tokio::test]
async fn a_flood_through_a_throttle_stays_under_the_cap() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 1_000);
    let throttle = throttle_on(&backend, &clock, "flood", "2/s");
    for i in 0..20_000_u32 {
        let [a, b, c, d] = i.to_be_bytes();
        let identity = format!("{a}.{b}.{c}.{d}");
        assert!(throttle.hit(&identity).await.unwrap().is_allowed());
    }
    assert!(backend.len() <= 1_000, "{} keys", backend.len());
    assert!(throttle.hit("new").await.unwrap().is_allowed());
    assert!(throttle.hit("new").await.unwrap().is_allowed());
    assert!(throttle.hit("new").await.unwrap().is_throttled());
}

#[tokio::test]
async fn typed_tables_evict_expired_keys_before_live_ones() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 10);
    let context = Context::new();
    let key = crate::key::storage_key("traffik", "t", "keep", None, "token-bucket");
    let long = Hit::new(0, Rate::per_hour(2), 2, &context);
    backend
        .decide_now(&key, &TokenBucket::new(), long, Mode::Consume)
        .unwrap()
        .unwrap();
    for i in 0..9 {
        storage_hit(&backend, &format!("short{i}"), 0);
    }
    clock.set(5_000);
    for i in 0..9 {
        storage_hit(&backend, &format!("later{i}"), 5_000);
    }
    let again = Hit::new(5_000, Rate::per_hour(2), 1, &context);
    let decision = backend
        .decide_now(&key, &TokenBucket::new(), again, Mode::Consume)
        .unwrap()
        .unwrap();
    assert!(decision.is_throttled(), "the live bucket was not evicted");
    assert!(backend.len() <= 10);
}

#[tokio::test]
async fn a_full_store_makes_room_for_a_batch_of_typed_keys() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 3);
    let context = Context::new();
    let hit = Hit::new(0, Rate::per_second(2), 1, &context);
    let strategy = FixedWindow::new();
    let keys: Vec<String> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|identity| crate::key::storage_key("traffik", "t", identity, None, "fixed-window"))
        .collect();
    let batch = |keys: &[&String]| -> Vec<Decision> {
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
    for identity in ["a", "b", "c"] {
        storage_hit(&backend, identity, 0);
    }
    assert!(
        batch(&[&keys[0], &keys[1]])
            .iter()
            .all(Decision::is_allowed)
    );
    assert!(
        batch(&[&keys[0], &keys[1]])
            .iter()
            .all(Decision::is_throttled)
    );
    assert_eq!(backend.len(), 3);
    assert!(
        batch(&[&keys[2], &keys[3]])
            .iter()
            .all(Decision::is_allowed)
    );
    assert_eq!(backend.len(), 3);
    // The batch's own keys were kept: `c` is at its limit, `d` has one hit left.
    assert!(batch(&[&keys[2], &keys[3]])[0].is_throttled());
    assert!(storage_hit(&backend, "d", 0).is_allowed());
    assert!(storage_hit(&backend, "d", 0).is_throttled());
}

#[tokio::test]
async fn reset_and_close_reach_the_typed_tables() {
    let clock = ManualClock::new(0);
    let a = backend(&clock, 100);
    let b = a.with_namespace("other").unwrap();
    let on_a = throttle_on(&a, &clock, "t", "1/s");
    let on_b = throttle_on(&b, &clock, "t", "1/s");
    assert!(on_a.hit("x").await.unwrap().is_allowed());
    assert!(on_b.hit("x").await.unwrap().is_allowed());
    Backend::reset(&a).await.unwrap();
    assert!(
        on_a.hit("x").await.unwrap().is_allowed(),
        "reset cleared it"
    );
    assert!(
        on_b.hit("x").await.unwrap().is_throttled(),
        "the other namespace kept it"
    );
    a.sweep();
    assert_eq!(a.len(), 2);
    clock.set(10_000);
    assert_eq!(a.sweep(), 2, "the sweep reaches typed tables");
    Backend::close(&a).await.unwrap();
    on_a.update_on_error(Some(crate::OnError::Raise)).unwrap();
    assert!(
        matches!(
            on_a.hit("x").await,
            Err(crate::ThrottleError::Backend { .. })
        ),
        "a closed backend is an error through the lane too"
    );
}

#[tokio::test]
async fn a_flood_in_one_throttle_evicts_from_its_own_table() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 1_000);
    // Login counters last the hour; the spray's keys a minute.
    let login = throttle_on(&backend, &clock, "login", "3/hour");
    let api = throttle_on(&backend, &clock, "api", "100/min");
    for user in 0..10 {
        for _ in 0..3 {
            assert!(
                login
                    .hit(&format!("user{user}"))
                    .await
                    .unwrap()
                    .is_allowed()
            );
        }
    }
    // A spray of new identities on another throttle fills the store twenty times over.
    for i in 0..20_000 {
        api.hit(&format!("spray{i}")).await.unwrap();
    }
    assert!(backend.len() <= 1_000);
    // Each eviction compares candidates from parts drawn in proportion to their keys: the
    // spray's table is drawn nearly always, and its candidates expire first.
    for user in 0..10 {
        assert!(
            login
                .hit(&format!("user{user}"))
                .await
                .unwrap()
                .is_throttled(),
            "user{user}'s login counter was evicted by another throttle's spray"
        );
    }
}

#[tokio::test]
async fn deleting_a_storage_key_resets_that_client() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    let throttle = throttle_on(&backend, &clock, "t", "1/s");
    assert!(throttle.hit("alice").await.unwrap().is_allowed());
    assert!(throttle.hit("alice").await.unwrap().is_throttled());
    let key = crate::key::storage_key("traffik", "t", "alice", None, "fixed-window");
    assert!(backend.delete(&key).await.unwrap());
    assert_eq!(backend.len(), 0);
    assert!(throttle.hit("alice").await.unwrap().is_allowed());
}

#[tokio::test]
async fn reads_and_peeks_make_no_table_and_store_nothing() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 100);
    let key = crate::key::storage_key("traffik", "t", "bob", None, "fixed-window");
    let context = Context::new();
    let hit = Hit::new(0, Rate::per_second(1), 1, &context);
    let strategy = FixedWindow::new();
    assert!(
        backend
            .decide_now(&key, &strategy, hit, Mode::Peek)
            .unwrap()
            .unwrap()
            .is_allowed()
    );
    let stat = Backend::stat(&backend, &key, &strategy, hit).await.unwrap();
    assert_eq!(stat.hits_remaining, 1);
    assert_eq!(backend.shared.store.tables_made(), 0);
    assert_eq!(backend.len(), 0);
}

#[tokio::test]
async fn past_the_most_tables_keys_stay_exact_in_the_general_map() {
    let clock = ManualClock::new(0);
    let backend = backend(&clock, 10_000);
    for uid in 0..tables::MAX_TABLES + 5 {
        let key = crate::key::storage_key("traffik", &format!("t{uid}"), "x", None, "fixed-window");
        assert!(hit(&backend, &key, 0).is_allowed(), "{uid}");
        assert!(hit(&backend, &key, 0).is_allowed(), "{uid}");
        assert!(hit(&backend, &key, 0).is_throttled(), "{uid}");
    }
    assert_eq!(backend.shared.store.tables_made(), tables::MAX_TABLES);
    assert_eq!(backend.len(), tables::MAX_TABLES + 5);
    // A throttle built now has no lane, and still decides on the same entries.
    let throttle = throttle_on(&backend, &clock, "late", "1/s");
    assert!(throttle.hit("y").await.unwrap().is_allowed());
    let key = crate::key::storage_key("traffik", "late", "y", None, "fixed-window");
    // The throttle's hit counted: at a limit of 2, one more is admitted, then none.
    assert!(hit(&backend, &key, 0).is_allowed());
    assert!(hit(&backend, &key, 0).is_throttled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hits_through_lanes_and_strings_admit_exactly_the_limit() {
    let clock = ManualClock::new(1_700_000_000_000);
    let backend = backend(&clock, 1_000);
    let throttle = Arc::new(throttle_on(&backend, &clock, "ws", "100/min"));
    for (identity, scope) in [
        ("10.0.0.1", None),
        ("a-client-with-a-long-id", Some("GET /ws")),
    ] {
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let throttle = Arc::clone(&throttle);
                let backend = backend.clone();
                tokio::spawn(async move {
                    let mut admitted = 0;
                    for i in 0..25 {
                        // Even tasks (and every fifth hit of the others) go through the
                        // throttle's lane; the rest by string key, as the asynchronous path and
                        // batches do.
                        let allowed = if task % 2 == 0 || i % 5 == 0 {
                            let options = match scope {
                                Some(scope) => HitOptions::new().scope(scope),
                                None => HitOptions::new(),
                            };
                            throttle
                                .hit_with(identity, options)
                                .await
                                .unwrap()
                                .is_allowed()
                        } else {
                            let key = crate::key::storage_key(
                                "traffik",
                                "ws",
                                identity,
                                scope,
                                "fixed-window",
                            );
                            let context = Context::new();
                            let hit =
                                Hit::new(1_700_000_000_000, Rate::per_minute(100), 1, &context);
                            backend
                                .decide_now(&key, &FixedWindow::new(), hit, Mode::Consume)
                                .unwrap()
                                .unwrap()
                                .is_allowed()
                        };
                        admitted += usize::from(allowed);
                    }
                    admitted
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        assert_eq!(admitted, 100, "{identity} {scope:?}");
    }
}
