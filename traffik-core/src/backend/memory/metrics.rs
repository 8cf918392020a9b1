//! [`StoreMetrics`]: the in-memory backend's key gauge and eviction counter.

use std::sync::OnceLock;

use metrics::{Counter, Gauge};

use crate::telemetry::names::{MEMORY_EVICTIONS, MEMORY_KEYS, NAMESPACE};

/// `traffik_memory_keys` and `traffik_memory_evictions_total` for one store, labelled with its
/// namespace and registered on first use (by the sweeper's first tick or the first eviction).
pub(super) struct StoreMetrics {
    namespace: Box<str>,
    handles: OnceLock<(Gauge, Counter)>,
}

impl StoreMetrics {
    pub(super) fn new(namespace: &str) -> Self {
        StoreMetrics {
            namespace: namespace.into(),
            handles: OnceLock::new(),
        }
    }

    fn handles(&self) -> &(Gauge, Counter) {
        self.handles.get_or_init(|| {
            let namespace = self.namespace.to_string();
            (
                metrics::gauge!(MEMORY_KEYS, NAMESPACE => namespace.clone()),
                metrics::counter!(MEMORY_EVICTIONS, NAMESPACE => namespace),
            )
        })
    }

    /// The store holds `keys` keys.
    pub(super) fn keys(&self, keys: usize) {
        #[allow(clippy::cast_precision_loss)] // a key count is far below 2^53
        self.handles().0.set(keys as f64);
    }

    /// One live key was evicted; the store now holds `keys`.
    pub(super) fn evicted(&self, keys: usize) {
        self.handles().1.increment(1);
        self.keys(keys);
    }
}
