//! A decision on an existing key allocates nothing: on the backend directly, and through a
//! whole `Throttle::hit` on the in-memory backend. Counted with dhat's heap profiler as the
//! global allocator (this test binary only).

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use traffik_core::backend::{Backend, LockOptions, Mode};
use traffik_core::strategy::{
    FixedWindow, Gcra, Hit, SlidingWindowCounter, SlidingWindowLog, TokenBucket,
};
use traffik_core::throttle::HitOptions;
use traffik_core::{Context, ManualClock, MemoryBackend, Throttle, ThrottleRegistry};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Polls a future that must complete without suspending (the synchronous path).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory path must not suspend"),
    }
}

fn blocks_allocated_by(f: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    f();
    dhat::HeapStats::get().total_blocks - before
}

#[test]
fn decisions_on_existing_keys_allocate_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let clock = ManualClock::new(1_700_000_000_000);
    let backend = MemoryBackend::builder()
        .clock(clock.clone())
        .lock_options(LockOptions::default())
        .build()
        .unwrap();
    let context = Context::new();
    let rate = "1000000/s".parse().unwrap();
    let strategies: [&dyn traffik_core::strategy::DynStrategy; 5] = [
        &FixedWindow::new(),
        &Gcra::new(),
        &TokenBucket::new(),
        &SlidingWindowCounter::new(),
        &SlidingWindowLog::new(),
    ];
    for strategy in strategies {
        let key = format!("traffik:bench:{{client}}:{}", strategy.name());
        // Create the key and run one full period, so the sliding log's deque reaches the size it
        // keeps from then on (it holds one entry per millisecond of the period).
        let start = clock_now(&clock);
        for i in 0..2_000 {
            let hit = Hit::new(start + i, rate, 1, &context);
            backend
                .decide_now(&key, strategy, hit, Mode::Consume)
                .unwrap()
                .unwrap();
        }
        let allocated = blocks_allocated_by(|| {
            for i in 2_000..3_000 {
                let hit = Hit::new(start + i, rate, 1, &context);
                assert!(
                    backend
                        .decide_now(&key, strategy, hit, Mode::Consume)
                        .unwrap()
                        .unwrap()
                        .is_allowed()
                );
            }
        });
        assert_eq!(
            allocated,
            0,
            "{}: {allocated} allocations in 1000 decisions",
            strategy.name()
        );
    }

    let registry = ThrottleRegistry::new();
    let throttle = Throttle::builder("alloc", "1000000/s")
        .strategy(Gcra::new().burst(10))
        .backend(backend)
        .registry(&registry)
        .clock(clock.clone())
        .build()
        .unwrap();
    now(throttle.hit("client-1")).unwrap();
    now(throttle.hit_with("client-1", HitOptions::new().scope("GET /items/{id}"))).unwrap();
    let allocated = blocks_allocated_by(|| {
        for _ in 0..1_000 {
            clock.advance(std::time::Duration::from_millis(1));
            assert!(now(throttle.hit("client-1")).unwrap().is_allowed());
            assert!(
                now(throttle.hit_with(
                    "client-1",
                    HitOptions::new().cost(2).scope("GET /items/{id}")
                ))
                .unwrap()
                .is_allowed()
            );
        }
    });
    assert_eq!(
        allocated, 0,
        "Throttle::hit: {allocated} allocations in 2000 hits"
    );
}

fn clock_now(clock: &ManualClock) -> u64 {
    traffik_core::Clock::now(clock)
}
