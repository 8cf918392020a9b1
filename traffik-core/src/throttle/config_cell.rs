//! [`ConfigCell`]: where a throttle keeps its [`Config`], read on every hit and replaced by the
//! `update_*` methods.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::{ArcSwap, Guard};

use super::Config;

/// A throttle's configuration. Until the first update, a read borrows the configuration the
/// throttle was built with: one flag read (a plain load on x86) and no shared counter touched (an
/// `ArcSwap` read registers its reader and clears it again, two atomic read-modify-writes, about
/// 11 ns of a 95 ns in-memory decision; `docs/benchmarks.md`). Most throttles are never updated.
/// After one, reads go through the `ArcSwap`, as every update does.
///
/// A read that started before an update finishes on the configuration it read, as with any
/// `ArcSwap` snapshot.
pub(super) struct ConfigCell<C: ?Sized + 'static> {
    /// The configuration the throttle was built with (also `current`'s until an update).
    initial: Arc<Config<C>>,
    /// Set once an update has swapped a configuration in.
    updated: AtomicBool,
    current: ArcSwap<Config<C>>,
}

/// A configuration read from a [`ConfigCell`].
pub(super) enum ConfigRef<'a, C: ?Sized + 'static> {
    Initial(&'a Config<C>),
    Current(Guard<Arc<Config<C>>>),
}

impl<C: ?Sized> Deref for ConfigRef<'_, C> {
    type Target = Config<C>;

    #[inline]
    fn deref(&self) -> &Config<C> {
        match self {
            ConfigRef::Initial(config) => config,
            ConfigRef::Current(guard) => guard,
        }
    }
}

/// The rate-limit headers of a configuration read from a [`ConfigCell`].
pub(super) struct HeadersRef<'a, C: ?Sized + 'static>(pub(super) ConfigRef<'a, C>);

impl<C: ?Sized> Deref for HeadersRef<'_, C> {
    type Target = crate::headers::Headers;

    #[inline]
    fn deref(&self) -> &crate::headers::Headers {
        &self.0.headers
    }
}

impl<C: ?Sized> ConfigCell<C> {
    pub(super) fn new(config: Config<C>) -> Self {
        let initial = Arc::new(config);
        ConfigCell {
            current: ArcSwap::new(Arc::clone(&initial)),
            initial,
            updated: AtomicBool::new(false),
        }
    }

    /// The configuration now, borrowed.
    #[inline]
    pub(super) fn load(&self) -> ConfigRef<'_, C> {
        if self.updated.load(Ordering::Acquire) {
            ConfigRef::Current(self.current.load())
        } else {
            ConfigRef::Initial(&self.initial)
        }
    }

    /// The configuration now, shared.
    pub(super) fn load_full(&self) -> Arc<Config<C>> {
        if self.updated.load(Ordering::Acquire) {
            self.current.load_full()
        } else {
            Arc::clone(&self.initial)
        }
    }

    /// Replaces the configuration with what `change` makes of the current one (retried if
    /// another update got in first, as `ArcSwap::rcu` does).
    pub(super) fn rcu(&self, change: impl FnMut(&Arc<Config<C>>) -> Arc<Config<C>>) {
        self.current.rcu(change);
        // From here on, reads see the swapped-in configuration (and every later one).
        self.updated.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{ManualClock, MemoryBackend, Rate, Throttle, ThrottleRegistry};

    #[test]
    fn reads_see_the_first_configuration_then_every_update_while_threads_hit() {
        let clock = ManualClock::new(1_700_000_000_000);
        let throttle = Arc::new(
            Throttle::builder("cell", "1000/min")
                .backend(
                    MemoryBackend::builder()
                        .clock(clock.clone())
                        .build()
                        .unwrap(),
                )
                .clock(clock)
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap(),
        );
        assert_eq!(throttle.rate(), Some(Rate::per_minute(1_000)));
        let hitters: Vec<_> = (0..2)
            .map(|_| {
                let throttle = Arc::clone(&throttle);
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        let _ = throttle.try_hit_now("k", Default::default());
                    }
                })
            })
            .collect();
        for limit in 1..=50 {
            throttle
                .update_rate(Rate::per_minute(10_000 + limit))
                .unwrap();
            assert_eq!(throttle.rate(), Some(Rate::per_minute(10_000 + limit)));
        }
        for hitter in hitters {
            hitter.join().unwrap();
        }
        let decision = throttle
            .try_hit_now("k", Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(decision.limit, 10_050, "hits decide under the last update");
    }
}
