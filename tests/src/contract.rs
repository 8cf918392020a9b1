//! The checks every backend must pass.

use std::sync::Arc;
use std::time::Duration;

use traffik_core::backend::{Backend, BackendError, KeyValueStore, LockError, LockOptions};
use traffik_core::strategy::{ErasedState, Hit, Refund};
use traffik_core::throttle::{HitOptions, Limit, hit_all};
use traffik_core::{Context, ManualClock, Rate};

use crate::sequence::Sequence;
use crate::{every_strategy, strategy_by_name, throttle};

/// Every strategy on `backend` decides exactly what its pure transition decides, over random
/// sequences of time steps and costs (the differential check).
pub async fn strategies_match_their_pure_transitions(
    backend: Arc<dyn Backend>,
    clock: &ManualClock,
) {
    // A minute's budget stepped in gaps of up to 15 s: the same dynamics as 10/s in gaps of up
    // to 250 ms, but the TTLs a backend sets are a minute of real time, so a loaded machine
    // (seconds between two steps) cannot expire a key that the manual clock says is live.
    const SCALE: u64 = 60;
    for seed in 1..=8 {
        for (name, configure) in every_strategy() {
            let uid = format!("diff-{seed}-{name}");
            let rate = Rate::per_millis(10, 1_000 * SCALE);
            let throttle = throttle(&uid, "10/60s", configure, Arc::clone(&backend), clock);
            let mut reference = Pure::new(name, rate);
            let mut steps = Sequence::new(seed);
            for (step, (gap, cost)) in steps.steps(120, 250, 4).into_iter().enumerate() {
                clock.advance(Duration::from_millis(gap * SCALE));
                let expected = reference.decide(clock_now(clock), cost);
                let actual = throttle
                    .hit_with("client", HitOptions::new().cost(cost))
                    .await
                    .expect("backend answers");
                assert_eq!(
                    actual, expected,
                    "{name}, seed {seed}, step {step}: backend and pure transition disagree"
                );
                let mut stat = throttle
                    .stat("client")
                    .await
                    .expect("backend answers")
                    .expect("a stat");
                let mut reference_stat = reference.stat(clock_now(clock));
                stat.key.clear();
                reference_stat.key.clear();
                assert_eq!(
                    stat, reference_stat,
                    "{name}, seed {seed}, step {step}: backend and pure stat disagree"
                );
            }
        }
    }
}

/// A strategy's pure transition on state of its own: what every backend must decide.
struct Pure {
    strategy: Box<dyn traffik_core::strategy::DynStrategy>,
    state: ErasedState,
    rate: Rate,
    context: Context,
}

impl Pure {
    fn new(name: &str, rate: Rate) -> Self {
        Pure {
            strategy: strategy_by_name(name),
            state: ErasedState::new(),
            rate,
            context: Context::new(),
        }
    }

    fn decide(&mut self, now: u64, cost: u64) -> traffik_core::Decision {
        let hit = Hit::new(now, self.rate, cost, &self.context);
        self.strategy.apply_erased(&mut self.state, &hit, false).0
    }

    fn refund(&mut self, charged_at: u64, cost: u64) -> Refund {
        let hit = Hit::new(charged_at, self.rate, cost, &self.context);
        self.strategy.refund_erased(&mut self.state, &hit).0
    }

    fn stat(&self, now: u64) -> traffik_core::StrategyStat {
        let hit = Hit::new(now, self.rate, 1, &self.context);
        self.strategy.stat_erased(&self.state, &hit)
    }
}

fn clock_now(clock: &ManualClock) -> u64 {
    traffik_core::Clock::now(clock)
}

/// Refunds on `backend` return exactly what the pure `refund` returns, for every strategy:
/// over random sequences, every other admitted hit is refunded (some at once, some after the
/// next hit), and decisions, refunds and stats all match the pure transitions. A client at its
/// limit that gets one charge back is admitted once more.
pub async fn refunds_match_their_pure_transitions(backend: Arc<dyn Backend>, clock: &ManualClock) {
    for seed in 1..=4 {
        for (name, configure) in every_strategy() {
            let uid = format!("refund-{seed}-{name}");
            // Periods of seconds: a store with its own clock (Redis) expires keys in real time,
            // and a loaded machine can take a few hundred milliseconds between steps.
            let rate = Rate::per_millis(10, 10_000);
            let throttle = throttle(&uid, "10/10s", configure, Arc::clone(&backend), clock);
            let mut reference = Pure::new(name, rate);
            let mut owed: Option<(u64, u64)> = None;
            let mut steps = Sequence::new(seed);
            for (step, (gap, cost)) in steps.steps(100, 2_500, 4).into_iter().enumerate() {
                clock.advance(Duration::from_millis(gap));
                let now = clock_now(clock);
                let charge = HitOptions::new().cost(cost).now(now);
                let expected = reference.decide(now, cost);
                let actual = throttle
                    .hit_with("client", charge)
                    .await
                    .expect("backend answers");
                assert_eq!(
                    actual, expected,
                    "{name}, seed {seed}, step {step}: decisions differ"
                );
                // A refund owed since the previous step, after this hit.
                if let Some((at, cost)) = owed.take() {
                    let expected = reference.refund(at, cost);
                    let options = HitOptions::new().cost(cost).now(at);
                    let actual = throttle
                        .refund_with("client", options)
                        .await
                        .expect("backend answers");
                    assert_eq!(
                        actual, expected,
                        "{name}, seed {seed}, step {step}: late refunds differ"
                    );
                }
                if actual.is_allowed() && step % 2 == 0 {
                    if step % 4 == 0 {
                        let expected = reference.refund(now, cost);
                        let actual = throttle
                            .refund_with("client", charge)
                            .await
                            .expect("backend answers");
                        assert_eq!(
                            actual, expected,
                            "{name}, seed {seed}, step {step}: refunds differ"
                        );
                        assert_eq!(actual, Refund::Returned, "{name}, seed {seed}, step {step}");
                    } else {
                        owed = Some((now, cost));
                    }
                }
                let mut stat = throttle
                    .stat("client")
                    .await
                    .expect("backend answers")
                    .expect("a stat");
                let mut reference_stat = reference.stat(now);
                stat.key.clear();
                reference_stat.key.clear();
                assert_eq!(
                    stat, reference_stat,
                    "{name}, seed {seed}, step {step}: stats differ"
                );
            }
        }
    }
    for (name, configure) in every_strategy() {
        let throttle = throttle(
            &format!("refund-full-{name}"),
            "3/min",
            configure,
            Arc::clone(&backend),
            clock,
        );
        let charge = HitOptions::new().now(clock_now(clock));
        // Up to the limit (a strategy's burst may be below it), then refused.
        while throttle
            .hit_with("full", charge)
            .await
            .unwrap()
            .is_allowed()
        {}
        assert_eq!(
            throttle.refund_with("full", charge).await.unwrap(),
            Refund::Returned,
            "{name}"
        );
        assert!(
            throttle
                .hit_with("full", charge)
                .await
                .unwrap()
                .is_allowed(),
            "{name}: the refund returned nothing"
        );
        assert!(
            throttle
                .hit_with("full", charge)
                .await
                .unwrap()
                .is_throttled(),
            "{name}: the refund returned too much"
        );
    }
}

/// The reference's cost sequence (`10/600ms`: 3, 3, 4 allowed; 5 and 1 refused) on `backend`.
pub async fn reference_cost_sequence(backend: Arc<dyn Backend>, clock: &ManualClock) {
    for (name, configure) in every_strategy() {
        let throttle = throttle(
            &format!("costs-{name}"),
            "10/600ms",
            configure,
            Arc::clone(&backend),
            clock,
        );
        let mut allowed = Vec::new();
        for cost in [3, 3, 4, 5, 1] {
            allowed.push(
                throttle
                    .hit_with("client", HitOptions::new().cost(cost))
                    .await
                    .unwrap()
                    .is_allowed(),
            );
        }
        assert_eq!(allowed, [true, true, true, false, false], "{name}");
    }
}

/// `check` and `stat` consume nothing; `stat` names the key it read.
pub async fn reads_consume_nothing(backend: Arc<dyn Backend>, clock: &ManualClock) {
    for (name, configure) in every_strategy() {
        let throttle = throttle(
            &format!("reads-{name}"),
            "10/min",
            configure,
            Arc::clone(&backend),
            clock,
        );
        throttle
            .hit_with("client", HitOptions::new().cost(4))
            .await
            .unwrap();
        for _ in 0..20 {
            assert!(
                throttle
                    .check_with("client", HitOptions::new().cost(6))
                    .await
                    .unwrap()
                    .is_allowed(),
                "{name}"
            );
            let stat = throttle.stat("client").await.unwrap().unwrap();
            assert_eq!(stat.hits_remaining, 6, "{name}");
            assert!(
                stat.key
                    .starts_with(&format!("{}:reads-{name}:{{client}}", backend.namespace())),
                "{name}: {}",
                stat.key
            );
        }
        assert!(
            throttle
                .hit_with("client", HitOptions::new().cost(6))
                .await
                .unwrap()
                .is_allowed(),
            "{name}"
        );
        assert!(
            throttle.check("client").await.unwrap().is_throttled(),
            "{name}"
        );
    }
}

/// `reset` forgets this backend's keys, and only them: `nested` is a backend on the same store
/// whose namespace extends this one's with `:` (`app` and `app:child`), and uids hold `:` too.
pub async fn reset_forgets_the_namespace(
    backend: Arc<dyn Backend>,
    nested: Arc<dyn Backend>,
    clock: &ManualClock,
) {
    assert_eq!(
        nested.namespace(),
        format!("{}:child", backend.namespace()),
        "the nested backend's namespace"
    );
    let (_, configure) = every_strategy()[0];
    let mine = throttle(
        "reset:items",
        "1/min",
        configure,
        Arc::clone(&backend),
        clock,
    );
    // `{namespace}:child` + uid `items` spells what `{namespace}` + uid `child:items` would
    // without escaping: the two must not share a budget.
    let forger = throttle(
        "child:items",
        "1/min",
        configure,
        Arc::clone(&backend),
        clock,
    );
    let other = throttle("items", "1/min", configure, Arc::clone(&nested), clock);
    assert!(mine.hit("client").await.unwrap().is_allowed());
    assert!(mine.hit("client").await.unwrap().is_throttled());
    assert!(other.hit("client").await.unwrap().is_allowed());
    assert!(
        forger.hit("client").await.unwrap().is_allowed(),
        "a uid with `:` forged another namespace's key"
    );
    backend.reset().await.unwrap();
    assert!(mine.hit("client").await.unwrap().is_allowed());
    assert!(
        other.hit("client").await.unwrap().is_throttled(),
        "the reset of `{}` reached `{}`",
        backend.namespace(),
        nested.namespace()
    );
}

/// How a contract check lets time pass: a manual clock the store reads, or real time for a
/// store with its own clock (a Redis server).
#[derive(Debug, Clone, Copy)]
pub enum Time<'a> {
    /// Advance this clock.
    Manual(&'a ManualClock),
    /// Sleep (with a small margin for the server's expiry cycle).
    Real,
}

impl Time<'_> {
    /// Lets `duration` pass.
    pub async fn pass(&self, duration: Duration) {
        match self {
            Time::Manual(clock) => clock.advance(duration),
            Time::Real => tokio::time::sleep(duration + Duration::from_millis(20)).await,
        }
    }
}

/// The key-value contract: values, counters, expiry, batches and locks.
pub async fn key_value_contract(store: &dyn KeyValueStore, clock: Time<'_>) {
    let key = |name: &str| format!("kv-contract:{name}");
    assert_eq!(store.get(&key("missing")).await.unwrap(), None);
    store.set(&key("a"), "alpha", None).await.unwrap();
    assert_eq!(
        store.get(&key("a")).await.unwrap().as_deref(),
        Some("alpha")
    );
    store
        .set(&key("a"), "beta", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap().as_deref(), Some("beta"));
    clock.pass(Duration::from_millis(1_001)).await;
    assert_eq!(
        store.get(&key("a")).await.unwrap(),
        None,
        "set with a ttl expires"
    );
    assert!(
        !store.delete(&key("a")).await.unwrap(),
        "deleting an expired key reports it absent"
    );

    assert_eq!(
        store.increment(&key("n"), 5).await.unwrap(),
        5,
        "a missing counter counts from 0"
    );
    assert_eq!(store.increment(&key("n"), 2).await.unwrap(), 7);
    assert_eq!(store.decrement(&key("n"), 10).await.unwrap(), -3);
    assert_eq!(
        store.decrement(&key("fresh"), 1).await.unwrap(),
        -1,
        "a missing counter decrements from 0"
    );
    assert!(
        store
            .expire(&key("n"), Duration::from_secs(2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .expire(&key("nothing"), Duration::from_secs(2))
            .await
            .unwrap()
    );
    clock.pass(Duration::from_secs(2)).await;
    assert_eq!(store.get(&key("n")).await.unwrap(), None);

    assert_eq!(
        store
            .increment_with_ttl(&key("w"), 1, Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    clock.pass(Duration::from_millis(600)).await;
    assert_eq!(
        store
            .increment_with_ttl(&key("w"), 1, Duration::from_secs(1))
            .await
            .unwrap(),
        2
    );
    clock.pass(Duration::from_millis(400)).await;
    assert_eq!(
        store.get(&key("w")).await.unwrap(),
        None,
        "the ttl is set on creation only"
    );
    // A counter that lost its expiry (a client died between its increment and its expire, or
    // an operator ran PERSIST) gets one back from the next increment_with_ttl.
    assert_eq!(store.increment(&key("lost"), 1).await.unwrap(), 1);
    assert_eq!(
        store
            .increment_with_ttl(&key("lost"), 1, Duration::from_millis(500))
            .await
            .unwrap(),
        2
    );
    clock.pass(Duration::from_millis(600)).await;
    assert_eq!(
        store.get(&key("lost")).await.unwrap(),
        None,
        "a counter without a ttl got none back"
    );

    store.set(&key("x"), "1", None).await.unwrap();
    store.set(&key("z"), "3", None).await.unwrap();
    let (x, y, z) = (key("x"), key("y"), key("z"));
    let keys = [x.as_str(), y.as_str(), z.as_str()];
    assert_eq!(
        store.multi_get(&keys).await.unwrap(),
        [Some("1".to_owned()), None, Some("3".to_owned())]
    );
    assert!(store.delete(&key("x")).await.unwrap());
    assert!(!store.delete(&key("x")).await.unwrap());

    let options = LockOptions::default()
        .ttl(Duration::from_millis(200))
        .blocking(false);
    let guard = store.lock(&key("lock"), options).await.unwrap();
    let refused = store.lock(&key("lock"), options).await.unwrap_err();
    assert!(
        matches!(
            refused,
            BackendError::Lock {
                source: LockError::WouldBlock { .. },
                ..
            }
        ),
        "{refused}"
    );
    guard.release().await.unwrap();
    let again = store.lock(&key("lock"), options).await.unwrap();
    let _crashed_holder = std::mem::ManuallyDrop::new(again); // never released: only its ttl frees it
    let waiting = options
        .blocking(true)
        .blocking_timeout(Some(Duration::from_secs(5)));
    let taken = store.lock(&key("lock"), waiting).await;
    assert!(taken.is_ok(), "an abandoned lock frees itself at its ttl");
    let timeout = store
        .lock(
            &key("lock"),
            options
                .ttl(Duration::from_secs(60))
                .blocking(true)
                .blocking_timeout(Some(Duration::from_millis(20))),
        )
        .await;
    assert!(matches!(
        timeout,
        Err(BackendError::Lock {
            source: LockError::Timeout { .. },
            ..
        })
    ));
}

/// Every strategy as configured for [`on_rate_clients_are_never_refused`]: the defaults, but
/// the adaptive strategy with a load threshold of 1 (by design it lowers the limit of a client
/// whose demand passes `load_threshold × limit`, 0.8 by default, so a client at 100 % of its
/// rate is "overloaded" there), and every priority level with the whole budget (a level's share
/// is its budget by design).
fn on_rate_strategies() -> Vec<(&'static str, crate::Configure)> {
    use traffik_core::strategy::{Adaptive, Priority, PriorityLevel};
    every_strategy()
        .into_iter()
        .map(|(name, configure)| match name {
            "adaptive" => (
                name,
                (|b| b.strategy(Adaptive::new().load_threshold(1.0))) as crate::Configure,
            ),
            "priority" => (
                name,
                (|b| {
                    b.strategy(
                        [
                            PriorityLevel::Low,
                            PriorityLevel::Normal,
                            PriorityLevel::High,
                            PriorityLevel::Critical,
                        ]
                        .into_iter()
                        .fold(Priority::new(), |priority, level| {
                            priority.share(level, 1.0)
                        }),
                    )
                }) as crate::Configure,
            ),
            _ => (name, configure),
        })
        .collect()
}

/// A client whose hits are spaced exactly `period / limit` apart is never refused, by any
/// strategy, at limits 1, 2, 3, 10 and 100, several periods and any phase against the
/// windows.
pub async fn on_rate_clients_are_never_refused(backend: Arc<dyn Backend>, clock: &ManualClock) {
    for (name, configure) in on_rate_strategies() {
        for limit in [1u64, 2, 3, 10, 100] {
            for period in [600u64, 60_000, 3_600_000] {
                let spacing = period / limit;
                let rate = Rate::per_millis(limit, period);
                for phase in [0, 1, spacing / 2, spacing - 1] {
                    let uid = format!("on-rate-{name}-{limit}-{period}-{phase}");
                    let throttle = throttle(
                        &uid,
                        &rate.to_string(),
                        configure,
                        Arc::clone(&backend),
                        clock,
                    );
                    // Start on a window boundary, shifted by the phase.
                    let start = clock_now(clock).div_ceil(period) * period + phase;
                    clock.set(start);
                    for n in 0..(2 * limit + 2) {
                        clock.set(start + n * spacing);
                        let decision = throttle.hit("client").await.expect("backend answers");
                        assert!(
                            decision.is_allowed(),
                            "{name} at {rate} (every {spacing} ms, phase {phase}): hit {n} refused: {decision:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Rates at the edge of what a backend decides exactly (for Redis, 2^52 for a script's integers)
/// decide exactly what the pure transitions decide, with large costs; the rate one past the
/// edge is refused when the throttle is built, or accepted when the backend has no such edge.
pub async fn strategies_match_at_the_edges_of_exact_ranges(
    backend: Arc<dyn Backend>,
    clock: &ManualClock,
    edges: bool,
) {
    const E52: u64 = 1 << 52;
    for (name, configure) in every_strategy() {
        let (edge, beyond) = match name {
            "sliding-window-counter" => (
                Rate::per_millis(1 << 42, 1 << 10),
                Rate::per_millis((1 << 42) + 1, 1 << 10),
            ),
            "sliding-window-log" => (
                Rate::per_millis(E52 / 2, 1_000),
                Rate::per_millis(E52 / 2 + 1, 1_000),
            ),
            "fixed-window" | "tiered" | "priority" | "adaptive" => (
                Rate::per_millis(E52, 1_000),
                Rate::per_millis(E52 + 1, 1_000),
            ),
            // Its limit doubles in the suite's 22:30–22:40 window: half the fixed window's edge.
            "time-of-day" => (
                Rate::per_millis(E52 / 2, 1_000),
                Rate::per_millis(E52 + 1, 1_000),
            ),
            // The rollover fraction is kept in parts per million: the limit times a million.
            "quota-rollover" => (
                Rate::per_millis(E52 / 1_000_000, 1_000),
                Rate::per_millis(E52 / 1_000_000 + 1, 1_000),
            ),
            // Its tokens are millionths of scaled units, kept below 2^52 on every backend: at
            // `L/1000ms` with `gcd(L, 1000) = 1`, `L × 1000 × 10^6`.
            "cost-bucket" => (
                Rate::per_millis(4_503_599, 1_000),
                Rate::per_millis(4_503_601, 1_000),
            ),
            // GCRA (burst 10) keeps `τ + T` = 10 emission intervals below 2^53 on every backend.
            "gcra" => (Rate::per_millis(3, 1 << 49), Rate::per_millis(3, 1 << 50)),
            // The buckets keep their scaled units below 2^53 on every backend. (A
            // period of 2^20 ms keeps the keys' expiry long: Redis expires them in real time,
            // while this test's clock is the caller's.)
            _ => (
                Rate::per_millis(E52, 1 << 20),
                Rate::per_millis(1 << 53, 1 << 20),
            ),
        };
        let built = configure(traffik_core::Throttle::builder(
            format!("beyond-{name}"),
            beyond,
        ))
        .shared_backend(Arc::clone(&backend))
        .registry(&traffik_core::ThrottleRegistry::new())
        .build();
        let bucket = matches!(
            name,
            "token-bucket"
                | "token-bucket-debt"
                | "leaky-bucket"
                | "leaky-bucket-queue"
                | "gcra"
                | "cost-bucket"
        );
        match (&built, edges || bucket) {
            (Err(error), true) => assert!(
                error.to_string().contains("exact"),
                "{name} at {beyond}: {error}"
            ),
            (Ok(_), false) => {}
            (result, _) => panic!("{name} at {beyond} on {}: {result:?}", backend.name()),
        }
        for seed in 1..=3 {
            let uid = format!("edge-{seed}-{name}");
            let throttle = throttle(
                &uid,
                &edge.to_string(),
                configure,
                Arc::clone(&backend),
                clock,
            );
            let mut reference = Pure::new(name, edge);
            let mut steps = Sequence::new(seed);
            for step in 0..60 {
                // At most 100 s a step: the caller's clock stays far below 2^52 ms.
                let gap = steps.below((edge.period_ms() / 2).min(100_000) + 2);
                clock.advance(Duration::from_millis(gap));
                let cost = 1 + steps.below(edge.limit() / 3);
                let expected = reference.decide(clock_now(clock), cost);
                let actual = throttle
                    .hit_with("client", HitOptions::new().cost(cost))
                    .await
                    .expect("backend answers");
                assert_eq!(
                    actual, expected,
                    "{name} at {edge}, seed {seed}, step {step} (cost {cost}): backend and pure transition disagree"
                );
            }
        }
    }
}

/// The first throttle at `cost`, the second at its own.
fn pair_batch(throttles: &[traffik_core::Throttle; 2], cost: u64) -> [Limit<'_, str>; 2] {
    [
        Limit::new(&throttles[0], "client", HitOptions::new().cost(cost)),
        Limit::new(&throttles[1], "client", HitOptions::new()),
    ]
}

/// Pairs of limits decided as one ([`hit_all`]) on `backend` decide exactly what the same
/// pairs decide in memory, step by step, over random sequences of time steps and costs: every
/// strategy's transition, in either position, with refusals charging neither.
pub async fn batches_match_the_in_memory_backend(backend: Arc<dyn Backend>, clock: &ManualClock) {
    let reference: Arc<dyn Backend> = Arc::new(crate::memory(clock, "reference"));
    let strategies = every_strategy();
    for (index, &(first_name, first)) in strategies.iter().enumerate() {
        let (second_name, second) = strategies[(index + 1) % strategies.len()];
        for seed in 1..=2 {
            let on = |backend: &Arc<dyn Backend>| {
                [
                    throttle(
                        &format!("batch-{seed}-{first_name}-a"),
                        "7/1000ms",
                        first,
                        Arc::clone(backend),
                        clock,
                    ),
                    throttle(
                        &format!("batch-{seed}-{second_name}-b"),
                        "4/700ms",
                        second,
                        Arc::clone(backend),
                        clock,
                    ),
                ]
            };
            let (tested, expected) = (on(&backend), on(&reference));
            let mut steps = Sequence::new(seed);
            for (step, (gap, cost)) in steps.steps(80, 200, 3).into_iter().enumerate() {
                clock.advance(Duration::from_millis(gap));
                let actual = hit_all(&pair_batch(&tested, cost))
                    .await
                    .expect("backend answers");
                let wanted = hit_all(&pair_batch(&expected, cost))
                    .await
                    .expect("memory answers");
                assert_eq!(
                    actual, wanted,
                    "{first_name} + {second_name}, seed {seed}, step {step}: the batch differs from memory"
                );
            }
        }
    }
}
