//! The in-memory map: one entry per key, strategy state updated in place under the entry.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::backend::{BackendError, Mode};
use crate::strategy::{DynStrategy, ErasedState, Hit};
use crate::{Decision, Millis, StrategyStat};

/// How many entries eviction looks at to pick the one closest to expiry.
const EVICTION_SAMPLE: usize = 16;
/// The least time between two full sweeps triggered by a full map.
const FULL_SWEEP_SPACING_MS: Millis = 100;
/// Shards of the map: each decision write-locks one, so more shards mean fewer collisions
/// between threads deciding for different keys (dashmap's default is 4 × cores).
const SHARDS: usize = 64;
/// An expiry that never comes.
pub(super) const NEVER: Millis = Millis::MAX;

/// The map's hasher: foldhash, seeded at random per map. About 4 ns for a 40-byte key against
/// 19 ns for SipHash (docs/benchmarks.md); the random seed keeps keys an attacker chooses (API
/// keys, escaped identities) from being aimed at one bucket.
type Hasher = foldhash::fast::RandomState;

pub(super) struct Store {
    map: DashMap<Box<str>, Entry, Hasher>,
    len: AtomicUsize,
    max_keys: usize,
    last_full_sweep: AtomicU64,
    warned_full: AtomicBool,
}

pub(super) struct Entry {
    pub(super) expires_at: Millis,
    /// The latest `now` a decision on this key used: time never runs backwards per key.
    seen: Millis,
    pub(super) value: Value,
}

pub(super) enum Value {
    State(ErasedState),
    Text(String),
    Integer(i64),
}

impl Entry {
    fn new() -> Self {
        Entry {
            expires_at: 0,
            seen: 0,
            value: Value::State(ErasedState::new()),
        }
    }

    fn state(&mut self) -> &mut ErasedState {
        if !matches!(self.value, Value::State(_)) {
            self.value = Value::State(ErasedState::new());
        }
        match &mut self.value {
            Value::State(state) => state,
            _ => unreachable!("just set to a state"),
        }
    }

    #[inline]
    /// Runs the strategy under this entry's lock. The hit's time is raised to the latest time
    /// this key has seen: two threads read the clock before taking the lock, so the later one
    /// to get here may carry a time a millisecond older than the state it meets. Seen from the
    /// key, time never runs backwards (what Redis gets by reading `TIME` inside the script).
    fn apply(&mut self, strategy: &dyn DynStrategy, hit: &Hit<'_>, mode: Mode) -> Decision {
        let now = hit.now.max(self.seen);
        let hit = Hit { now, ..*hit };
        let (decision, expiry) = strategy.apply_erased(self.state(), &hit, mode == Mode::Peek);
        if mode == Mode::Consume {
            self.seen = now;
            self.expires_at = expiry.unwrap_or(0);
        }
        decision
    }

    pub(super) fn is_live(&self, now: Millis) -> bool {
        self.expires_at > now
    }
}

impl Store {
    pub(super) fn new(max_keys: usize) -> Self {
        Store {
            map: DashMap::with_hasher_and_shard_amount(Hasher::default(), SHARDS),
            len: AtomicUsize::new(0),
            max_keys,
            last_full_sweep: AtomicU64::new(0),
            warned_full: AtomicBool::new(false),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn decide(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Decision {
        if let Some(mut entry) = self.map.get_mut(key) {
            return entry.apply(strategy, hit, mode);
        }
        if mode == Mode::Peek {
            return strategy.apply_erased(&mut ErasedState::new(), hit, true).0;
        }
        self.make_room(hit.now);
        let mut entry = self.entry(key);
        entry.apply(strategy, hit, mode)
    }

    pub(super) fn stat(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> StrategyStat {
        match self.map.get(key) {
            Some(entry) => match &entry.value {
                Value::State(state) => strategy.stat_erased(state, hit),
                _ => strategy.stat_erased(&ErasedState::new(), hit),
            },
            None => strategy.stat_erased(&ErasedState::new(), hit),
        }
    }

    /// The entry at `key`, created if absent (the caller made room).
    fn entry(&self, key: &str) -> dashmap::mapref::one::RefMut<'_, Box<str>, Entry> {
        match self.map.entry(Box::from(key)) {
            MapEntry::Occupied(occupied) => occupied.into_ref(),
            MapEntry::Vacant(vacant) => {
                self.len.fetch_add(1, Ordering::Relaxed);
                vacant.insert(Entry::new())
            }
        }
    }

    /// Runs `f` on the live entry at `key` (creating an expired placeholder if absent).
    pub(super) fn with_entry<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&mut Entry, bool) -> T,
    ) -> T {
        if let Some(mut entry) = self.map.get_mut(key) {
            let live = entry.is_live(now);
            return f(&mut entry, live);
        }
        self.make_room(now);
        let mut entry = self.entry(key);
        let live = entry.is_live(now);
        f(&mut entry, live)
    }

    /// Runs `f` on the entry at `key` if it is live; never creates one.
    pub(super) fn update_live<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        self.map
            .get_mut(key)
            .filter(|entry| entry.is_live(now))
            .map(|mut entry| f(&mut entry))
    }

    pub(super) fn get_live<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        self.map
            .get(key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| f(&entry))
    }

    pub(super) fn remove(&self, key: &str, now: Millis) -> bool {
        match self.map.remove(key) {
            Some((_, entry)) => {
                self.len.fetch_sub(1, Ordering::Relaxed);
                entry.is_live(now)
            }
            None => false,
        }
    }

    /// Drops every expired entry; returns how many.
    pub(super) fn sweep(&self, now: Millis) -> usize {
        self.retain(|_, entry| entry.is_live(now))
    }

    /// Keeps only the entries `keep` accepts; returns how many were dropped.
    pub(super) fn retain(&self, mut keep: impl FnMut(&str, &Entry) -> bool) -> usize {
        let mut removed = 0;
        self.map.retain(|key, entry| {
            let kept = keep(key, entry);
            removed += usize::from(!kept);
            kept
        });
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    pub(super) fn clear(&self) {
        self.retain(|_, _| false);
    }

    /// Keeps the map under `max_keys` before a new key goes in: expired entries go first (a
    /// full sweep, at most every 100 ms); if the map is still full, the entry closest to expiry
    /// among a sample goes.
    fn make_room(&self, now: Millis) {
        if self.len() < self.max_keys {
            return;
        }
        let last = self.last_full_sweep.load(Ordering::Relaxed);
        if now >= last.saturating_add(FULL_SWEEP_SPACING_MS)
            && self
                .last_full_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep(now);
        }
        while self.len() >= self.max_keys {
            if !self.warned_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "traffik",
                    max_keys = self.max_keys,
                    "in-memory backend is full: evicting the entries closest to expiry to admit new keys"
                );
            }
            if !self.evict_one() {
                break;
            }
        }
    }

    fn evict_one(&self) -> bool {
        let victim = self
            .map
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|entry| entry.expires_at)
            .map(|entry| entry.key().clone());
        match victim {
            Some(key) => {
                if self.map.remove(&key).is_some() {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }
}

/// The error for an operation on a closed backend.
pub(super) fn closed() -> BackendError {
    BackendError::Closed {
        backend: "memory".to_owned(),
    }
}
