//! A key flood: 10,000,000 distinct clients, each hitting once, through `Throttle::hit` on an
//! in-memory backend capped at `max_keys(100_000)`. Prints the time per decision over the
//! flood (in slices of a million, to show it holds steady once the cap is reached), the keys
//! held at the end, and the peak resident set size (`VmHWM`) before and after.
//!
//! ```text
//! cargo bench -p traffik-core --bench flood
//! cargo bench -p traffik-core --bench flood -- 1000000   # fewer clients
//! ```

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use traffik_core::strategy::FixedWindow;
use traffik_core::{MemoryBackend, Rate, Throttle, ThrottleRegistry};

const MAX_KEYS: usize = 100_000;

/// The peak resident set size of this process, in MiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Completes a future that never suspends (the in-memory path).
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the in-memory path does not suspend"),
    }
}

#[allow(clippy::cast_precision_loss)] // counts and nanoseconds printed to one decimal
fn main() {
    let clients: u32 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10_000_000);
    let backend = MemoryBackend::builder()
        .max_keys(MAX_KEYS)
        .build()
        .expect("a valid backend");
    let throttle = Throttle::builder("flood", Rate::per_minute(100))
        .strategy(FixedWindow::new())
        .backend(backend.clone())
        .registry(&ThrottleRegistry::new())
        .build()
        .expect("a valid throttle");
    let before = peak_rss_mib();
    println!("| clients | ns per decision | keys held |");
    println!("|---:|---:|---:|");
    let slice = 1_000_000.min(clients);
    let mut identity = String::with_capacity(16);
    let mut start = Instant::now();
    for i in 0..clients {
        identity.clear();
        let [a, b, c, d] = i.to_be_bytes();
        use std::fmt::Write;
        let _ = write!(identity, "{a}.{b}.{c}.{d}");
        black_box(now(throttle.hit(&identity)).expect("decided").is_allowed());
        if (i + 1) % slice == 0 {
            let elapsed = start.elapsed();
            println!(
                "| {} | {:.1} | {} |",
                i + 1,
                elapsed.as_nanos() as f64 / f64::from(slice),
                backend.len()
            );
            start = Instant::now();
        }
    }
    assert!(backend.len() <= MAX_KEYS, "the cap holds");
    println!();
    println!(
        "peak RSS: {before:.1} MiB before the flood, {:.1} MiB after; {} keys held (max_keys {MAX_KEYS})",
        peak_rss_mib(),
        backend.len()
    );
}
