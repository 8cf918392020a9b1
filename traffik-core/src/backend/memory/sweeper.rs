//! The background task that drops expired keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::store::Store;
use crate::Clock;

/// Starts the sweeper on the current tokio runtime, if there is one. It holds the store weakly
/// and stops when the store is dropped, when `shutdown` is notified (close), or with the
/// runtime. Returns whether it started.
pub(super) fn spawn(
    store: Weak<Store>,
    clock: Arc<dyn Clock>,
    every: Duration,
    shutdown: Arc<Notify>,
    alive: Arc<AtomicBool>,
) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(target: "traffik", "no tokio runtime: the in-memory backend expires keys lazily and when full, without a sweeper");
        return false;
    };
    alive.store(true, Ordering::SeqCst);
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let Some(store) = store.upgrade() else { break };
                    let removed = store.sweep(clock.now());
                    store.metrics.keys(store.len());
                    if removed > 0 {
                        tracing::trace!(target: "traffik", removed, remaining = store.len(), "swept expired keys");
                    }
                }
                () = shutdown.notified() => break,
            }
        }
        alive.store(false, Ordering::SeqCst);
    });
    true
}
