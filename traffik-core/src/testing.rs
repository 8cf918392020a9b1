//! Fixtures for traffik's own tests, shared by the unit tests here and the integration tests in
//! `tests/` (feature `testing`). Not part of the API: no stability promise.

#[cfg(feature = "memory")]
mod outage;

use std::time::Duration;

use crate::backend::{BackendFuture, KeyValueStore, KeyValueStrategy};
use crate::strategy::Hit;
use crate::{Decision, MaybeReady, StatMetadata, StrategyStat};

#[cfg(feature = "memory")]
pub use outage::Outage;

/// A custom strategy written against the key-value contract (the reference's style): counts
/// hits per period with one atomic counter ([`KeyValueStore::increment_with_ttl`]), so it is
/// exact under concurrency without a lock. `examples/custom_strategy.rs` shows the same
/// strategy to users.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl KeyValueStrategy for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn hit<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(async move {
            let cost = i64::try_from(hit.cost).unwrap_or(i64::MAX);
            let used = store
                .increment_with_ttl(key, cost, hit.rate.period())
                .await?;
            let used = u64::try_from(used).unwrap_or(0);
            let limit = hit.rate.limit();
            Ok(if used <= limit {
                Decision::allowed(limit, limit - used, hit.rate.period())
            } else {
                Decision::throttled(limit, 0, hit.rate.period(), hit.rate.period())
            })
        })
    }

    fn stat<'a>(
        &'a self,
        store: &'a dyn KeyValueStore,
        key: &'a str,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(async move {
            let used: u64 = store
                .get(key)
                .await?
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            Ok(StrategyStat::new(
                hit.rate,
                hit.rate.limit().saturating_sub(used),
                Duration::ZERO,
                StatMetadata::None,
            ))
        })
    }
}
