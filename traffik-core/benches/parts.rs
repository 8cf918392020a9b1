//! What one decision is made of: clock reads, key hashing, the strategy's arithmetic. Used to
//! choose the clock and the hasher (see docs/benchmarks.md).

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use traffik_core::strategy::{
    FixedWindow, Gcra, Hit, Strategy, WindowState, decode_state, encode_state,
};
use traffik_core::{Clock, Context, Rate, SystemClock};

fn parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    let system = SystemClock::new();
    group.bench_function("traffik SystemClock::now", |b| {
        b.iter(|| black_box(system.now()));
    });
    group.bench_function("std Instant::now", |b| b.iter(|| black_box(Instant::now())));
    group.bench_function("std SystemTime::now", |b| {
        b.iter(|| black_box(SystemTime::now()));
    });
    let quanta = quanta::Clock::new();
    group.bench_function("quanta Clock::now", |b| b.iter(|| black_box(quanta.now())));
    group.bench_function("quanta Clock::raw", |b| b.iter(|| black_box(quanta.raw())));
    group.finish();

    let mut group = c.benchmark_group("hash 38-byte key");
    let key = "traffik:api:{127.0.0.1}:fixed-window";
    let sip = RandomState::new();
    let fold = foldhash::fast::RandomState::default();
    group.bench_function("std SipHash", |b| {
        b.iter(|| black_box(sip.hash_one(black_box(key))));
    });
    group.bench_function("foldhash fast", |b| {
        b.iter(|| black_box(fold.hash_one(black_box(key))));
    });
    group.finish();

    let mut group = c.benchmark_group("throttle path");
    let mut key = String::new();
    group.bench_function("write_storage_key", |b| {
        b.iter(|| {
            traffik_core::key::write_storage_key(
                &mut key,
                "traffik",
                "api",
                black_box("127.0.0.1"),
                None,
                "fixed-window",
            );
            black_box(key.len())
        });
    });
    let dyn_clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock::new());
    group.bench_function("dyn Clock::now", |b| b.iter(|| black_box(dyn_clock.now())));
    let swap = arc_swap::ArcSwap::from_pointee(42_u64);
    group.bench_function("ArcSwap::load", |b| b.iter(|| black_box(**swap.load())));
    group.finish();

    let mut group = c.benchmark_group("strategy apply");
    let context = Context::new();
    let rate = Rate::per_second(1_000_000);
    let mut window = None;
    group.bench_function("fixed window", |b| {
        let mut now = 0;
        b.iter(|| {
            now += 1;
            black_box(FixedWindow::new().apply(&mut window, &Hit::new(now, rate, 1, &context)))
        });
    });
    let mut gcra = None;
    group.bench_function("gcra", |b| {
        let mut now = 0;
        b.iter(|| {
            now += 1;
            black_box(Gcra::new().apply(&mut gcra, &Hit::new(now, rate, 1, &context)))
        });
    });
    group.finish();

    // What a backend that stores text (Redis's verification, memcached, key-value stores) pays
    // to read a state.
    let mut group = c.benchmark_group("state decode");
    let window_text = encode_state::<FixedWindow>(&WindowState {
        window: 1_764_000_000,
        count: 17,
    });
    group.bench_function("fixed window", |b| {
        b.iter(|| black_box(decode_state::<FixedWindow>(black_box(&window_text))))
    });
    let mut gcra_state = None;
    Gcra::new().apply(
        &mut gcra_state,
        &Hit::new(1_764_000_000_000, rate, 1, &context),
    );
    let gcra_text = encode_state::<Gcra>(&gcra_state.expect("a state"));
    group.bench_function("gcra", |b| {
        b.iter(|| black_box(decode_state::<Gcra>(black_box(&gcra_text))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
    targets = parts
}
criterion_main!(benches);
