//! Each metric counted exactly, through a recorder local to the test.

use std::sync::Arc;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use super::names;
use crate::backend::{Backend, CircuitBreaker};
use crate::testing::Outage;
use crate::throttle::{HitOptions, Limit, hit_all, try_hit_all_now};
use crate::{EXEMPTED, Identity, MemoryBackend, OnError, Throttle, ThrottleRegistry};

/// A metric's labels, as (name, value) pairs.
type Labels = Vec<(String, String)>;

/// The values of one snapshot, by metric name and labels.
struct Values(Vec<(String, Labels, DebugValue)>);

impl Values {
    fn of(snapshotter: &Snapshotter) -> Values {
        Values(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| {
                    let key = key.key();
                    let labels = key
                        .labels()
                        .map(|label| (label.key().to_owned(), label.value().to_owned()))
                        .collect();
                    (key.name().to_owned(), labels, value)
                })
                .collect(),
        )
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0.iter().find_map(|(found, found_labels, value)| {
            let same = found == name
                && found_labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| found_labels.iter().any(|(fk, fv)| fk == k && fv == v));
            same.then_some(value)
        })
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(count)) => *count,
            None => 0,
            Some(other) => panic!("{name} {labels:?} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels) {
            Some(DebugValue::Gauge(value)) => Some(value.into_inner()),
            None => None,
            Some(other) => panic!("{name} {labels:?} is not a gauge: {other:?}"),
        }
    }

    fn histogram_len(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        match self.find(name, labels) {
            Some(DebugValue::Histogram(values)) => values.len(),
            None => 0,
            Some(other) => panic!("{name} {labels:?} is not a histogram: {other:?}"),
        }
    }

    fn decisions(&self, uid: &str, outcome: &str) -> u64 {
        self.counter(
            names::DECISIONS,
            &[(names::THROTTLE, uid), (names::OUTCOME, outcome)],
        )
    }

    fn skipped(&self, uid: &str, reason: &str) -> u64 {
        self.counter(
            names::DECISIONS,
            &[
                (names::THROTTLE, uid),
                (names::OUTCOME, "skipped"),
                (names::REASON, reason),
            ],
        )
    }
}

fn throttle(uid: &str, rate: &str, backend: impl Backend + 'static) -> Throttle {
    Throttle::builder(uid, rate)
        .backend(backend)
        .registry(&ThrottleRegistry::new())
        .build()
        .unwrap()
}

#[test]
fn every_hit_counts_once_by_outcome_and_checks_do_not() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let limited = throttle("metrics-outcomes", "3/min", MemoryBackend::new());
        for _ in 0..5 {
            limited
                .try_hit_now("alice", HitOptions::new())
                .unwrap()
                .unwrap();
        }
        for _ in 0..4 {
            limited
                .try_check_now("alice", HitOptions::new())
                .unwrap()
                .unwrap();
        }
        let big = limited
            .try_hit_now("bob", HitOptions::new().cost(10))
            .unwrap()
            .unwrap();
        assert!(!big.is_allowed());
        let free = limited
            .try_hit_now("carol", HitOptions::new().cost(0))
            .unwrap()
            .unwrap();
        assert!(free.is_skipped());

        let values = Values::of(&snapshotter);
        assert_eq!(values.decisions("metrics-outcomes", "allowed"), 3);
        assert_eq!(values.decisions("metrics-outcomes", "throttled"), 2);
        assert_eq!(values.decisions("metrics-outcomes", "exceeds_capacity"), 1);
        assert_eq!(values.skipped("metrics-outcomes", "zero_cost"), 1);
        // 1 of 3 used, 2 of 3 (67 %), 3 of 3: only the last is at 80 % or more.
        assert_eq!(
            values.counter(names::NEAR_LIMIT, &[(names::THROTTLE, "metrics-outcomes")]),
            1
        );
    });
}

#[tokio::test(flavor = "current_thread")]
async fn exempted_disabled_and_shadow_decisions_count_by_their_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let registry = ThrottleRegistry::new();
    let shadow = Throttle::<str>::builder("metrics-shadow", "1/min")
        .backend(MemoryBackend::new())
        .identifier(crate::throttle::Identifier::new(|key: &str| {
            if key == "internal" {
                EXEMPTED
            } else {
                Identity::from(key)
            }
        }))
        .shadow_mode(true)
        .registry(&registry)
        .build()
        .unwrap();
    for _ in 0..3 {
        shadow.hit("alice").await.unwrap();
    }
    shadow.hit("internal").await.unwrap();
    shadow.disable();
    shadow.hit("alice").await.unwrap();

    let values = Values::of(&snapshotter);
    assert_eq!(values.decisions("metrics-shadow", "allowed"), 1);
    assert_eq!(values.decisions("metrics-shadow", "shadow_throttled"), 2);
    assert_eq!(values.decisions("metrics-shadow", "throttled"), 0);
    assert_eq!(values.skipped("metrics-shadow", "exempted"), 1);
    assert_eq!(values.skipped("metrics-shadow", "disabled"), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_backend_counts_its_errors_and_the_policy_actions() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let outage = Outage::new(MemoryBackend::new());
    let registry = ThrottleRegistry::new();
    let build = |uid: &str, policy: OnError| {
        Throttle::builder(uid, "10/min")
            .backend(outage.clone())
            .on_error(policy)
            .registry(&registry)
            .build()
            .unwrap()
    };
    let open = build("metrics-fail-open", OnError::Allow);
    let closed = build("metrics-fail-closed", OnError::Throttle);
    let raise = build("metrics-raise", OnError::Raise);

    open.hit("alice").await.unwrap();
    outage.set_down(true);
    open.hit("alice").await.unwrap();
    open.hit("alice").await.unwrap();
    assert!(closed.hit("alice").await.unwrap().is_throttled());
    assert!(raise.hit("alice").await.is_err());

    let values = Values::of(&snapshotter);
    let action = |uid: &str, action: &str| {
        values.counter(
            names::ON_ERROR,
            &[(names::THROTTLE, uid), (names::ACTION, action)],
        )
    };
    assert_eq!(action("metrics-fail-open", "failed_open"), 2);
    assert_eq!(action("metrics-fail-closed", "failed_closed"), 1);
    assert_eq!(action("metrics-raise", "raised"), 1);
    assert_eq!(values.skipped("metrics-fail-open", "backend_failure"), 2);
    assert_eq!(values.decisions("metrics-fail-open", "allowed"), 1);
    assert_eq!(values.decisions("metrics-fail-closed", "throttled"), 1);
    // Errors are counted once each, by the throttle that applied its policy.
    assert_eq!(
        values.counter(
            names::BACKEND_ERRORS,
            &[(names::BACKEND, "outage"), (names::KIND, "unavailable")]
        ),
        4
    );
    // Every call that reached the backend on the asynchronous path was timed (the in-memory
    // backend's synchronous decisions are not).
    assert!(values.histogram_len(names::BACKEND_DURATION, &[(names::BACKEND, "outage")]) >= 4);
}

#[tokio::test(flavor = "current_thread")]
async fn breaker_transitions_and_state_are_reported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let outage = Outage::new(MemoryBackend::new());
    let breaker = CircuitBreaker::new(outage.clone())
        .name("sessions")
        .failure_threshold(2)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let limited = throttle("metrics-breaker", "10/min", breaker);
    limited.hit("alice").await.unwrap();
    let values = Values::of(&snapshotter);
    let state =
        |values: &Values| values.gauge(names::BREAKER_STATE, &[(names::BREAKER, "sessions")]);
    assert_eq!(state(&values), Some(0.0), "closed from the first call");

    outage.set_down(true);
    for _ in 0..3 {
        limited.hit("alice").await.unwrap();
    }
    handle.force_close();
    handle.force_open();
    let values = Values::of(&snapshotter);
    let transitions = |from: &str, to: &str| {
        values.counter(
            names::BREAKER_TRANSITIONS,
            &[
                (names::BREAKER, "sessions"),
                (names::FROM, from),
                (names::TO, to),
            ],
        )
    };
    assert_eq!(transitions("closed", "open"), 2, "tripped, then forced");
    assert_eq!(transitions("open", "closed"), 1, "forced closed");
    assert_eq!(state(&values), Some(2.0));
    // The first hit down tripped the breaker (its synchronous attempt and the asynchronous
    // one both failed); the other two met it open, without a backend call.
    let errors = |kind: &str| {
        values.counter(
            names::BACKEND_ERRORS,
            &[(names::BACKEND, "outage"), (names::KIND, kind)],
        )
    };
    assert_eq!(errors("unavailable"), 1);
    assert_eq!(errors("circuit_open"), 2);
}

#[test]
fn a_batch_counts_each_limit_once() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let registry = ThrottleRegistry::new();
        let on = |uid: &str, rate: &str| {
            Throttle::builder(uid, rate)
                .shared_backend(Arc::clone(&backend))
                .registry(&registry)
                .build()
                .unwrap()
        };
        let hourly = on("metrics-batch-hourly", "30/h");
        let burst = on("metrics-batch-burst", "2/min");
        for _ in 0..3 {
            let limits = [
                Limit::new(&hourly, "alice", HitOptions::new()),
                Limit::new(&burst, "alice", HitOptions::new()),
            ];
            try_hit_all_now(&limits).unwrap().unwrap();
        }
        let values = Values::of(&snapshotter);
        assert_eq!(values.decisions("metrics-batch-hourly", "allowed"), 3);
        assert_eq!(values.decisions("metrics-batch-burst", "allowed"), 2);
        assert_eq!(values.decisions("metrics-batch-burst", "throttled"), 1);
    });
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_batch_counts_each_limit_once() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let backend: Arc<dyn Backend> = Arc::new(Outage::new(MemoryBackend::new()));
    let registry = ThrottleRegistry::new();
    let on = |uid: &str, rate: &str| {
        Throttle::builder(uid, rate)
            .shared_backend(Arc::clone(&backend))
            .registry(&registry)
            .build()
            .unwrap()
    };
    let hourly = on("metrics-async-batch-hourly", "30/h");
    let burst = on("metrics-async-batch-burst", "2/min");
    for _ in 0..3 {
        let limits = [
            Limit::new(&hourly, "alice", HitOptions::new()),
            Limit::new(&burst, "alice", HitOptions::new()),
        ];
        hit_all(&limits).await.unwrap();
    }
    let values = Values::of(&snapshotter);
    assert_eq!(values.decisions("metrics-async-batch-hourly", "allowed"), 3);
    assert_eq!(values.decisions("metrics-async-batch-burst", "allowed"), 2);
    assert_eq!(
        values.decisions("metrics-async-batch-burst", "throttled"),
        1
    );
}

#[test]
fn a_full_memory_backend_counts_its_evictions_and_keys() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let backend = MemoryBackend::builder()
            .namespace("metrics-evictions")
            .max_keys(2)
            .build()
            .unwrap();
        let limited = throttle("metrics-evictions", "5/min", backend);
        for client in ["a", "b", "c", "d"] {
            limited
                .try_hit_now(client, HitOptions::new())
                .unwrap()
                .unwrap();
        }
        let values = Values::of(&snapshotter);
        let namespace = [(names::NAMESPACE, "metrics-evictions")];
        assert_eq!(values.counter(names::MEMORY_EVICTIONS, &namespace), 2);
        assert_eq!(values.gauge(names::MEMORY_KEYS, &namespace), Some(1.0));
    });
}

#[test]
fn no_label_holds_a_client_identity() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let limited = throttle("metrics-cardinality", "1/min", MemoryBackend::new());
        for client in 0..50 {
            let client = format!("client-{client}");
            limited
                .try_hit_now(&client, HitOptions::new())
                .unwrap()
                .unwrap();
            limited
                .try_hit_now(&client, HitOptions::new())
                .unwrap()
                .unwrap();
        }
        let values = Values::of(&snapshotter);
        // Five outcomes, five skip reasons and the near-limit counter, whatever the clients.
        assert!(values.0.len() <= 11, "series: {}", values.0.len());
        assert!(
            values
                .0
                .iter()
                .all(|(_, labels, _)| labels.iter().all(|(_, value)| !value.contains("client")))
        );
        assert_eq!(values.decisions("metrics-cardinality", "allowed"), 50);
        assert_eq!(values.decisions("metrics-cardinality", "throttled"), 50);
    });
}
