//! [`Tables`]: a store's typed tables, found by prefix and strategy type with no lock and no
//! reference count touched.

use std::any::TypeId;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::table::{AnyTable, new_table};
use crate::strategy::DynStrategy;

/// Slots of the registry (a power of two). Each throttle prefix and strategy takes one.
const SLOTS: usize = 1_024;
/// The most typed tables a store makes (three quarters of the slots, so that a lookup probes
/// few); keys of any further prefix stay in the general map.
pub(super) const MAX_TABLES: usize = SLOTS * 3 / 4;

/// The typed tables of a store, by `{namespace}:{uid}:{` prefix and strategy type: an
/// open-addressed array of slots written once each. A lookup reads slots with acquire loads
/// only (the string-keyed path does one per decision); adding a table takes a mutex.
pub(super) struct Tables {
    slots: Box<[OnceLock<Slot>]>,
    /// The tables in the order they were made, the first `count` set: what sweeps, clears and
    /// eviction go through without visiting every slot.
    made: Box<[OnceLock<Arc<dyn AnyTable>>]>,
    count: AtomicUsize,
    /// Set once [`MAX_TABLES`] are registered: later prefixes go to the general map without
    /// taking `adding`.
    full: AtomicBool,
    hasher: foldhash::fast::RandomState,
    adding: Mutex<usize>,
}

struct Slot {
    prefix: Box<str>,
    strategy: TypeId,
    /// `None`: the strategy has no typed table (a custom one); its keys stay in the general map.
    table: Option<Arc<dyn AnyTable>>,
}

impl Tables {
    pub(super) fn new() -> Self {
        Tables {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            made: (0..MAX_TABLES).map(|_| OnceLock::new()).collect(),
            count: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            hasher: foldhash::fast::RandomState::default(),
            adding: Mutex::new(0),
        }
    }

    #[inline]
    fn start(&self, prefix: &str) -> usize {
        #[allow(clippy::cast_possible_truncation)] // only the low bits pick a slot
        let hash = self.hasher.hash_one(prefix) as usize;
        hash % SLOTS
    }

    /// The registration of `prefix` under `strategy`, if there is one yet.
    #[inline]
    fn get(&self, prefix: &str, strategy: TypeId) -> Option<&Slot> {
        let start = self.start(prefix);
        for step in 0..SLOTS {
            let slot = self.slots[(start + step) % SLOTS].get()?;
            if slot.strategy == strategy && &*slot.prefix == prefix {
                return Some(slot);
            }
        }
        None
    }

    /// The table of `prefix` under `strategy` if one was made; never makes one.
    #[inline]
    pub(super) fn get_existing(
        &self,
        prefix: &str,
        strategy: &dyn DynStrategy,
    ) -> Option<&Arc<dyn AnyTable>> {
        self.get(prefix, strategy.as_any().type_id())?
            .table
            .as_ref()
    }

    /// The table of `prefix` under `strategy`, made and registered on first use; `None` when
    /// the strategy has none or the registry is full.
    pub(super) fn get_or_add(
        &self,
        prefix: &str,
        strategy: &dyn DynStrategy,
    ) -> Option<&Arc<dyn AnyTable>> {
        let type_id = strategy.as_any().type_id();
        if let Some(found) = self.get(prefix, type_id) {
            return found.table.as_ref();
        }
        if self.full.load(Ordering::Relaxed) {
            return None;
        }
        let mut added = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = self.get(prefix, type_id) {
            return found.table.as_ref();
        }
        if *added >= MAX_TABLES {
            self.full.store(true, Ordering::Relaxed);
            return None;
        }
        let start = self.start(prefix);
        let free = (0..SLOTS)
            .map(|step| &self.slots[(start + step) % SLOTS])
            .find(|slot| slot.get().is_none())?;
        *added += 1;
        let table: Option<Arc<dyn AnyTable>> = new_table(strategy, prefix).map(Arc::from);
        if let Some(table) = &table {
            let index = self.count.load(Ordering::Relaxed);
            let _ = self.made[index].set(Arc::clone(table));
            self.count.store(index + 1, Ordering::Release);
        }
        let slot = free.get_or_init(|| Slot {
            prefix: Box::from(prefix),
            strategy: type_id,
            table,
        });
        slot.table.as_ref()
    }

    /// How many typed tables there are.
    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The `index`th typed table made (`index < len()`).
    pub(super) fn nth(&self, index: usize) -> Option<&Arc<dyn AnyTable>> {
        self.made.get(index).and_then(OnceLock::get)
    }

    /// Every typed table.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<dyn AnyTable>> {
        self.made[..self.len()].iter().filter_map(OnceLock::get)
    }
}
