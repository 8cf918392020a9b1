//! Concurrency: many tasks on a multi-threaded runtime hitting one key admit exactly the limit,
//! for every strategy, on the in-memory backend and through the lock-based key-value executor.

use std::sync::Arc;

use traffik_core::throttle::HitOptions;
use traffik_core::{ManualClock, Throttle};
use traffik_tests::{every_strategy, memory_backends, throttle};

async fn admitted(throttle: &Throttle, tasks: usize, cost: u64) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let throttle = throttle.clone();
            tokio::spawn(async move {
                throttle
                    .hit_with("hot-key", HitOptions::new().cost(cost))
                    .await
                    .unwrap()
                    .is_allowed()
            })
        })
        .collect();
    let mut count = 0;
    for handle in handles {
        count += usize::from(handle.await.unwrap());
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_on_one_key_admit_exactly_the_limit() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (backend_name, backend) in memory_backends(&clock) {
        for (name, configure) in every_strategy() {
            for round in 0..5 {
                let uid = format!("burst-{round}-{name}");
                let throttle = throttle(&uid, "10/min", configure, Arc::clone(&backend), &clock);
                assert_eq!(
                    admitted(&throttle, 64, 1).await,
                    10,
                    "{backend_name}/{name}, round {round}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_unit_goes_to_exactly_one_of_two_racing_tasks() {
    let clock = ManualClock::new(1_700_000_000_000);
    for (backend_name, backend) in memory_backends(&clock) {
        for (name, configure) in every_strategy() {
            for round in 0..20 {
                let throttle = throttle(
                    &format!("race-{round}-{name}"),
                    "10/s",
                    configure,
                    Arc::clone(&backend),
                    &clock,
                );
                throttle
                    .hit_with("hot-key", HitOptions::new().cost(9))
                    .await
                    .unwrap();
                assert_eq!(
                    admitted(&throttle, 2, 1).await,
                    1,
                    "{backend_name}/{name}, round {round}"
                );
            }
        }
    }
}
