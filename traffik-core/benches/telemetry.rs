//! What metrics cost a decision: `Throttle::hit` on one hot key (in-memory backend) without a
//! recorder and with `metrics-exporter-prometheus`'s recorder, beside governor's `check_key`,
//! in the same run.
//!
//! A throttle registers its counters with the recorder in effect at its first decision, so the
//! "prometheus" throttles make their first decision inside `metrics::with_local_recorder` and
//! keep counting into that recorder afterwards; the others never see one.

// criterion_group! generates undocumented functions.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use traffik_core::strategy::{FixedWindow, Gcra};
use traffik_core::{MemoryBackend, Rate, Throttle, ThrottleRegistry};

fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the in-memory backend decides at once"),
    }
}

fn throttle(name: &str, gcra: bool, recorder: Option<&PrometheusRecorder>) -> Throttle {
    let builder = Throttle::builder(
        format!("bench-telemetry-{name}"),
        Rate::per_second(1_000_000_000),
    )
    .backend(MemoryBackend::new())
    .registry(&ThrottleRegistry::new());
    let builder = if gcra {
        builder.strategy(Gcra::new().burst(1_000_000_000_000))
    } else {
        builder.strategy(FixedWindow::new())
    };
    let throttle = builder.build().unwrap();
    let first = || now(throttle.hit("127.0.0.1")).unwrap();
    match recorder {
        Some(recorder) => metrics::with_local_recorder(recorder, first),
        None => first(),
    };
    throttle
}

fn hot_key(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let mut group = c.benchmark_group("telemetry_hot_key");
    let limiter = RateLimiter::keyed(Quota::per_second(NonZeroU32::MAX));
    let key = "traffik:bench:127.0.0.1".to_owned();
    group.bench_function("governor/check_key", |b| {
        b.iter(|| black_box(limiter.check_key(black_box(&key)).is_ok()));
    });
    for (strategy, gcra) in [("fixed-window", false), ("gcra", true)] {
        for (name, recorder) in [("no-recorder", None), ("prometheus", Some(&recorder))] {
            let throttle = throttle(&format!("{strategy}-{name}"), gcra, recorder);
            group.bench_function(BenchmarkId::new(strategy, name), |b| {
                b.iter(|| {
                    black_box(
                        now(throttle.hit(black_box("127.0.0.1")))
                            .unwrap()
                            .is_allowed(),
                    )
                });
            });
        }
    }
    group.finish();
    // The counts really went to the recorder.
    let scrape = handle.render();
    assert!(
        scrape.contains("traffik_decisions_total{throttle=\"bench-telemetry-fixed-window-prometheus\",outcome=\"allowed\"}"),
        "{scrape}"
    );
    assert!(!scrape.contains("no-recorder"), "{scrape}");
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    targets = hot_key
}
criterion_main!(benches);
