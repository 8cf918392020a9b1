//! Instructions per hot-key decision, counted by callgrind (deterministic, unlike wall time on
//! a shared machine). Each case runs `n` decisions on one existing key; run it twice under
//! callgrind with different `n` and divide the difference by the difference in `n`:
//!
//! ```text
//! cargo bench -p traffik-core --bench instructions --no-run
//! valgrind --tool=callgrind target/release/deps/instructions-* fixed-window 100000
//! ```
//!
//! Cases: `governor`, `fixed-window`, `gcra`, `throttle-fixed-window`, and
//! `throttle-fixed-window-prometheus` (the same with `metrics-exporter-prometheus`'s recorder
//! installed, so every decision is counted). Governor gets the same key string traffik stores.

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;

use governor::{Quota, RateLimiter};
use traffik_core::backend::{Backend, LockOptions, Mode};
use traffik_core::strategy::{DynStrategy, FixedWindow, Gcra, Hit};
use traffik_core::{Clock, Context, MemoryBackend, Rate, SystemClock, Throttle, ThrottleRegistry};

fn backend_case(strategy: &dyn DynStrategy, rate: Rate, n: u64) {
    let backend = MemoryBackend::builder()
        .lock_options(LockOptions::default())
        .build()
        .unwrap();
    let clock = SystemClock::new();
    let context = Context::new();
    let key =
        traffik_core::key::storage_key("traffik", "bench", "127.0.0.1", None, strategy.name());
    for _ in 0..n {
        let hit = Hit::new(clock.now(), rate, 1, &context);
        black_box(
            backend
                .decide_now(black_box(&key), strategy, hit, Mode::Consume)
                .unwrap()
                .unwrap(),
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let case = args.next().unwrap_or_else(|| "fixed-window".to_owned());
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    match case.as_str() {
        "governor" => {
            let limiter = RateLimiter::keyed(Quota::per_second(NonZeroU32::MAX));
            let key = traffik_core::key::storage_key(
                "traffik",
                "bench",
                "127.0.0.1",
                None,
                "fixed-window",
            );
            for _ in 0..n {
                black_box(limiter.check_key(black_box(&key)).is_ok());
            }
        }
        "fixed-window" => backend_case(&FixedWindow::new(), Rate::per_second(1_000_000_000), n),
        "gcra" => backend_case(
            &Gcra::new().burst(1_000_000_000_000),
            Rate::per_second(1_000),
            n,
        ),
        "throttle-fixed-window" => throttle_case(n),
        "throttle-fixed-window-prometheus" => {
            // The recorder an application installs: every decision now counts in it.
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .unwrap();
            throttle_case(n);
        }
        other => eprintln!("unknown case {other}"),
    }
}

/// `n` hits through `Throttle::hit` on one key (fixed window).
fn throttle_case(n: u64) {
    {
        {
            let throttle = Throttle::builder("bench", Rate::per_second(1_000_000_000))
                .strategy(FixedWindow::new())
                .backend(MemoryBackend::new())
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap();
            let waker = std::task::Waker::noop();
            let mut context = std::task::Context::from_waker(waker);
            for _ in 0..n {
                let mut future = std::pin::pin!(throttle.hit(black_box("127.0.0.1")));
                let _ = black_box(Future::poll(future.as_mut(), &mut context));
            }
        }
    }
}
