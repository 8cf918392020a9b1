//! Cost of one decision on the in-memory backend, per strategy, beside governor's keyed
//! `check_key` in the same run.
//!
//! Scenarios: one hot key on one thread; 100k keys round-robin on one thread, independent and
//! dependent (each key chosen from the previous verdict); two threads on one key; two threads
//! over 100k keys. Rates are high enough never to refuse. `backend` rows call
//! the backend directly with a prebuilt storage key, and `governor/check_key` gives governor
//! the same key strings; `throttle` rows go through `Throttle::hit` on the client's identity
//! (clock read, identity, the throttle's typed table, strategy), what users call, and
//! `governor/identity` gives governor that same identity (`10.x.y.z`) as its key.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use traffik_core::backend::{Backend, LockOptions, Mode};
use traffik_core::strategy::{
    DynStrategy, FixedWindow, Gcra, Hit, LeakyBucket, LeakyBucketWithQueue, SlidingWindowCounter,
    SlidingWindowLog, TokenBucket, TokenBucketWithDebt,
};
use traffik_core::{Clock, Context, MemoryBackend, Rate, SystemClock, Throttle, ThrottleRegistry};

const KEYS: usize = 100_000;

fn strategies() -> Vec<Arc<dyn DynStrategy>> {
    vec![
        Arc::new(FixedWindow::new()),
        Arc::new(gcra()),
        Arc::new(TokenBucket::new()),
        Arc::new(TokenBucketWithDebt::new(10)),
        Arc::new(LeakyBucket::new()),
        Arc::new(LeakyBucketWithQueue::new()),
        Arc::new(SlidingWindowCounter::new()),
        Arc::new(SlidingWindowLog::new()),
    ]
}

/// The rate of every row: high enough never to refuse during a run.
fn rate() -> Rate {
    Rate::per_second(1_000_000_000)
}

/// GCRA as the rows use it: like governor's quota here, a burst far above what a run spends, at
/// `1000/s` (see `rate_for`).
fn gcra() -> Gcra {
    Gcra::new().burst(1_000_000_000_000)
}

/// The rate of a strategy's rows. GCRA runs at `1000/s`, whose schedule is whole cells per
/// millisecond (as for `100/min`, `10/s`, …: the common case, with no division in the schedule);
/// the burst keeps it from refusing. At a rate like `1e9/s` or `3/s` GCRA pays three 64-bit
/// divisions more (docs/benchmarks.md has both figures).
fn rate_for(strategy: &dyn DynStrategy) -> Rate {
    if strategy.name() == "gcra" {
        Rate::per_second(1_000)
    } else {
        rate()
    }
}

fn backend() -> MemoryBackend {
    MemoryBackend::builder()
        .max_keys(2 * KEYS)
        .lock_options(LockOptions::default())
        .build()
        .unwrap()
}

fn governor() -> governor::DefaultKeyedRateLimiter<String> {
    RateLimiter::keyed(Quota::per_second(NonZeroU32::MAX))
}

/// Client `i`'s address.
fn identity(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

/// The storage keys of `KEYS` clients under `strategy`: what traffik stores, and what governor
/// is given too, so both hash and compare the same keys.
fn keys(strategy: &str) -> Vec<String> {
    (0..KEYS)
        .map(|i| traffik_core::key::storage_key("traffik", "bench", &identity(i), None, strategy))
        .collect()
}

fn hot_key() -> String {
    traffik_core::key::storage_key("traffik", "bench", "127.0.0.1", None, "fixed-window")
}

/// Completes a future that never suspends (the in-memory path).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the in-memory path does not suspend"),
    }
}

fn decide(
    backend: &MemoryBackend,
    clock: &SystemClock,
    key: &str,
    strategy: &dyn DynStrategy,
    context: &Context,
) -> bool {
    let hit = Hit::new(clock.now(), rate_for(strategy), 1, context);
    backend
        .decide_now(key, strategy, hit, Mode::Consume)
        .unwrap()
        .unwrap()
        .is_allowed()
}

fn single_thread(c: &mut Criterion) {
    let context = Context::new();
    let clock = SystemClock::new();
    let mut group = c.benchmark_group("hot_key");
    let limiter = governor();
    let hot = "127.0.0.1".to_owned();
    group.bench_function("governor/check_key", |b| {
        b.iter(|| black_box(limiter.check_key(black_box(&hot)).is_ok()));
    });
    for strategy in strategies() {
        let backend = backend();
        let key =
            traffik_core::key::storage_key("traffik", "bench", "127.0.0.1", None, strategy.name());
        group.bench_function(BenchmarkId::new("backend", strategy.name()), |b| {
            b.iter(|| {
                black_box(decide(
                    &backend,
                    &clock,
                    black_box(&key),
                    strategy.as_ref(),
                    &context,
                ))
            });
        });
    }
    for (name, throttle) in every_throttle() {
        group.bench_function(BenchmarkId::new("throttle", name), |b| {
            b.iter(|| {
                black_box(
                    now(throttle.hit(black_box("127.0.0.1")))
                        .unwrap()
                        .is_allowed(),
                )
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("100k_keys");
    let limiter = governor();
    let governor_keys = keys("fixed-window");
    let identities: Vec<String> = (0..KEYS).map(identity).collect();
    let mut i = 0;
    group.bench_function("governor/check_key", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(limiter.check_key(&governor_keys[i]).is_ok())
        });
    });
    let limiter = governor();
    let mut i = 0;
    group.bench_function("governor/identity", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(limiter.check_key(&identities[i]).is_ok())
        });
    });
    for strategy in strategies() {
        let backend = backend();
        let keys = keys(strategy.name());
        let mut i = 0;
        group.bench_function(BenchmarkId::new("backend", strategy.name()), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(decide(
                    &backend,
                    &clock,
                    &keys[i],
                    strategy.as_ref(),
                    &context,
                ))
            });
        });
    }
    for (name, throttle) in throttles() {
        let mut i = 0;
        group.bench_function(BenchmarkId::new("throttle", name), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(now(throttle.hit(&identities[i])).unwrap().is_allowed())
            });
        });
    }
    group.finish();

    // The same keys, but each decision's key depends on the previous decision's verdict, so the
    // processor cannot start the next lookup (and its cache miss) before this one completes: the
    // cost of one decision on a cold key, as a server pays it between requests. In the rows
    // above, a short loop lets the processor overlap consecutive misses, which rewards fewer
    // instructions per decision more than fewer misses (docs/benchmarks.md).
    let mut group = c.benchmark_group("100k_keys_dependent");
    let limiter = governor();
    let mut i = 0;
    group.bench_function("governor/check_key", |b| {
        b.iter(|| {
            let allowed = limiter.check_key(&governor_keys[i]).is_ok();
            i = (i + 1 + usize::from(!allowed)) % KEYS;
        });
    });
    let limiter = governor();
    let mut i = 0;
    group.bench_function("governor/identity", |b| {
        b.iter(|| {
            let allowed = limiter.check_key(&identities[i]).is_ok();
            i = (i + 1 + usize::from(!allowed)) % KEYS;
        });
    });
    for strategy in strategies().into_iter().take(2) {
        let backend = backend();
        let keys = keys(strategy.name());
        let mut i = 0;
        group.bench_function(BenchmarkId::new("backend", strategy.name()), |b| {
            b.iter(|| {
                let allowed = decide(&backend, &clock, &keys[i], strategy.as_ref(), &context);
                i = (i + 1 + usize::from(!allowed)) % KEYS;
            });
        });
    }
    for (name, throttle) in throttles() {
        let mut i = 0;
        group.bench_function(BenchmarkId::new("throttle", name), |b| {
            b.iter(|| {
                let allowed = now(throttle.hit(&identities[i])).unwrap().is_allowed();
                i = (i + 1 + usize::from(!allowed)) % KEYS;
            });
        });
    }
    group.finish();
}

/// Fixed window and GCRA through `Throttle::hit`, each on its own in-memory backend.
fn throttles() -> Vec<(&'static str, Throttle)> {
    every_throttle().into_iter().take(2).collect()
}

/// Every built-in strategy through `Throttle::hit`, each on its own in-memory backend (GCRA at
/// its common-case rate, as in the backend rows).
fn every_throttle() -> Vec<(&'static str, Throttle)> {
    let registry = ThrottleRegistry::new();
    let builder = |name: &str, rate: Rate| {
        Throttle::builder(format!("bench-{name}"), rate)
            .backend(backend())
            .registry(&registry)
    };
    let build = |builder: traffik_core::throttle::ThrottleBuilder<str>| builder.build().unwrap();
    vec![
        (
            "fixed-window",
            build(builder("fixed-window", rate()).strategy(FixedWindow::new())),
        ),
        (
            "gcra",
            build(builder("gcra", Rate::per_second(1_000)).strategy(gcra())),
        ),
        (
            "token-bucket",
            build(builder("token-bucket", rate()).strategy(TokenBucket::new())),
        ),
        (
            "token-bucket-debt",
            build(builder("token-bucket-debt", rate()).strategy(TokenBucketWithDebt::new(10))),
        ),
        (
            "leaky-bucket",
            build(builder("leaky-bucket", rate()).strategy(LeakyBucket::new())),
        ),
        (
            "leaky-bucket-queue",
            build(builder("leaky-bucket-queue", rate()).strategy(LeakyBucketWithQueue::new())),
        ),
        (
            "sliding-window-counter",
            build(builder("sliding-window-counter", rate()).strategy(SlidingWindowCounter::new())),
        ),
        (
            "sliding-window-log",
            build(builder("sliding-window-log", rate()).strategy(SlidingWindowLog::new())),
        ),
    ]
}

/// Runs `op(thread, i)` `iters` times on each of two threads; the time per decision per thread.
fn two_threads(iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let start = Instant::now();
    thread::scope(|scope| {
        for t in 0..2 {
            let op = &op;
            scope.spawn(move || (0..iters).for_each(|i| op(t, i)));
        }
    });
    start.elapsed()
}

#[allow(clippy::cast_possible_truncation)] // the iteration index only picks a key modulo KEYS
fn multi_thread(c: &mut Criterion) {
    let context = Context::new();
    let clock = SystemClock::new();
    let mut group = c.benchmark_group("two_threads_one_key");
    let limiter = governor();
    let hot = hot_key();
    group.bench_function("governor/check_key", |b| {
        b.iter_custom(|iters| two_threads(iters, |_, _| assert!(limiter.check_key(&hot).is_ok())));
    });
    for strategy in strategies() {
        let backend = backend();
        let key =
            traffik_core::key::storage_key("traffik", "bench", "127.0.0.1", None, strategy.name());
        group.bench_function(BenchmarkId::new("backend", strategy.name()), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |_, _| {
                    assert!(decide(&backend, &clock, &key, strategy.as_ref(), &context));
                })
            });
        });
    }
    for (name, throttle) in throttles() {
        group.bench_function(BenchmarkId::new("throttle", name), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |_, _| {
                    assert!(now(throttle.hit("127.0.0.1")).unwrap().is_allowed());
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("two_threads_100k_keys");
    let limiter = governor();
    let governor_keys = keys("fixed-window");
    let identities: Vec<String> = (0..KEYS).map(identity).collect();
    let by_identity = governor();
    group.bench_function("governor/identity", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |t, i| {
                assert!(
                    by_identity
                        .check_key(&identities[(i as usize * 2 + t) % KEYS])
                        .is_ok()
                );
            })
        });
    });
    group.bench_function("governor/check_key", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |t, i| {
                assert!(
                    limiter
                        .check_key(&governor_keys[(i as usize * 2 + t) % KEYS])
                        .is_ok()
                );
            })
        });
    });
    for strategy in strategies() {
        let backend = backend();
        let keys = keys(strategy.name());
        group.bench_function(BenchmarkId::new("backend", strategy.name()), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |t, i| {
                    assert!(decide(
                        &backend,
                        &clock,
                        &keys[(i as usize * 2 + t) % KEYS],
                        strategy.as_ref(),
                        &context
                    ));
                })
            });
        });
    }
    for (name, throttle) in throttles() {
        group.bench_function(BenchmarkId::new("throttle", name), |b| {
            b.iter_custom(|iters| {
                two_threads(iters, |t, i| {
                    assert!(
                        now(throttle.hit(&identities[(i as usize * 2 + t) % KEYS]))
                            .unwrap()
                            .is_allowed()
                    );
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("clock");
    let system = SystemClock::new();
    group.bench_function("traffik/SystemClock::now", |b| {
        b.iter(|| black_box(system.now()));
    });
    group.bench_function("std/Instant::now", |b| b.iter(|| black_box(Instant::now())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = single_thread, multi_thread
}
criterion_main!(benches);
