//! The in-memory map: one entry per key, strategy state updated in place under the entry's
//! shard lock.
//!
//! The map is sharded by hand (64 shards, each a mutex over a `hashbrown::HashTable`) rather than
//! a `DashMap`, because a decision over several limits must hold several keys at once: here the
//! shards a batch touches are locked in ascending order (no deadlock, and two keys in one shard
//! share its lock), which `DashMap`'s safe API cannot do (docs/decisions/0005).
//!
//! The keys of a built-in strategy (`{namespace}:{uid}:{{identity}}[:{scope}]:{strategy}`) live
//! in typed tables instead ([`table`](super::table)), one per throttle prefix and strategy: a
//! string key is split into its prefix and tail and routed there, and a throttle holding its
//! table ([`Lane`](super::lane::Lane)) reaches it without building the key. This map keeps the
//! rest: other keys (the key-value store's), and custom strategies' states.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;

use crate::backend::{BackendError, KeyedHit, Mode};
use crate::strategy::{DynStrategy, ErasedState, Hit, Refund};
use crate::{Decision, Millis, StrategyStat};

use super::metrics::StoreMetrics;
use super::table::{AnyTable, LockedShard};
use super::tables::Tables;
use super::tail::{Tail, TailRef, split_key};

/// How many entries of one part of the store eviction looks at to pick its candidate.
const EVICTION_SAMPLE: usize = 16;
/// How many parts of the store (drawn in proportion to their keys) give a candidate to each
/// eviction.
const EVICTION_DRAWS: usize = 4;
/// The least time between two full sweeps triggered by a full map.
const FULL_SWEEP_SPACING_MS: Millis = 100;
/// Shards of the map (a power of two): each decision locks one, so more shards mean fewer
/// collisions between threads deciding for different keys.
pub(super) const SHARDS: usize = 64;
/// An expiry that never comes.
pub(super) const NEVER: Millis = Millis::MAX;

/// The map's hasher: foldhash, seeded at random per map. About 4 ns for a 40-byte key against
/// 19 ns for SipHash (docs/benchmarks.md); the random seed keeps keys an attacker chooses (API
/// keys, escaped identities) from being aimed at one bucket.
type Hasher = foldhash::fast::RandomState;

pub(super) struct Store {
    shards: Box<[Shard]>,
    hasher: Hasher,
    len: AtomicUsize,
    /// The keys in the general map (the rest of `len` are in typed tables).
    general: AtomicUsize,
    max_keys: usize,
    last_full_sweep: AtomicU64,
    warned_full: AtomicBool,
    /// Where the next eviction sample starts, so samples visit every shard in turn.
    next_sample: AtomicUsize,
    pub(super) metrics: StoreMetrics,
    /// The typed tables, by prefix and strategy type.
    tables: Tables,
    /// Set by `close`: every decision then fails.
    closed: AtomicBool,
}

/// One shard, on its own cache lines.
#[repr(align(128))]
struct Shard(Mutex<HashTable<Slot>>);

struct Slot {
    hash: u64,
    key: Box<str>,
    entry: Entry,
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

/// A shard of the general map, locked.
type GeneralShard<'a> = MutexGuard<'a, HashTable<Slot>>;

/// The shard of a hash: bits 51 to 56, clear of the top 7 bits the table itself uses to tell
/// entries apart within a shard.
#[inline]
pub(super) fn shard_of(hash: u64) -> usize {
    ((hash << 7) >> (64 - SHARDS.trailing_zeros())) as usize
}

impl Store {
    pub(super) fn new(max_keys: usize, namespace: &str) -> Self {
        Store {
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(HashTable::new())))
                .collect(),
            hasher: Hasher::default(),
            len: AtomicUsize::new(0),
            general: AtomicUsize::new(0),
            max_keys,
            last_full_sweep: AtomicU64::new(0),
            warned_full: AtomicBool::new(false),
            next_sample: AtomicUsize::new(0),
            metrics: StoreMetrics::new(namespace),
            tables: Tables::new(),
            closed: AtomicBool::new(false),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Counts `count` keys added by a table.
    #[inline]
    pub(super) fn added(&self, count: usize) {
        self.len.fetch_add(count, Ordering::Relaxed);
    }

    /// Counts `count` keys removed by a table.
    #[inline]
    pub(super) fn removed(&self, count: usize) {
        self.len.fetch_sub(count, Ordering::Relaxed);
    }

    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the store closed; returns whether it was open.
    pub(super) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    #[inline]
    fn hash(&self, key: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The typed table of the keys under `prefix` (`{namespace}:{uid}:{`) for `strategy`,
    /// made on first use; `None` when the strategy has none (a custom strategy) or the store
    /// holds [`MAX_TABLES`](super::tables::MAX_TABLES) already.
    pub(super) fn table(
        &self,
        prefix: &str,
        strategy: &dyn DynStrategy,
    ) -> Option<Arc<dyn AnyTable>> {
        self.tables.get_or_add(prefix, strategy).cloned()
    }

    /// How many typed tables the store has made.
    #[cfg(test)]
    pub(super) fn tables_made(&self) -> usize {
        self.tables.len()
    }

    /// Runs `f` on the typed table and tail of `key` under `strategy`, if the key has one.
    /// With `Use::Read`, a table is never made: a prefix with none yet has no entry in any
    /// table (reads and peeks then answer from the general map, which stores nothing for them).
    #[inline]
    fn with_table<T>(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        using: Use,
        f: impl FnOnce(&dyn AnyTable, TailRef<'_>) -> T,
    ) -> Option<T> {
        let (prefix, tail) = split_key(key, strategy.name())?;
        let table = match using {
            Use::Write => self.tables.get_or_add(prefix, strategy)?,
            Use::Read => self.tables.get_existing(prefix, strategy)?,
        };
        Some(f(&**table, TailRef::new(tail)))
    }

    #[inline]
    fn lock(&self, shard: usize) -> GeneralShard<'_> {
        // A panic while holding a shard (never expected: strategies do not panic) leaves each
        // entry whole, so the shard stays usable.
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry at `key` in its (locked) shard table.
    #[inline]
    fn find<'t>(table: &'t mut HashTable<Slot>, hash: u64, key: &str) -> Option<&'t mut Entry> {
        table
            .find_mut(hash, |slot| &*slot.key == key)
            .map(|slot| &mut slot.entry)
    }

    /// The entry at `key` in its (locked) shard table, created if absent (the caller made
    /// room).
    fn find_or_insert<'t>(
        &self,
        table: &'t mut HashTable<Slot>,
        hash: u64,
        key: &str,
    ) -> &'t mut Entry {
        match table.entry(hash, |slot| &*slot.key == key, |slot| slot.hash) {
            TableEntry::Occupied(occupied) => &mut occupied.into_mut().entry,
            TableEntry::Vacant(vacant) => {
                self.len.fetch_add(1, Ordering::Relaxed);
                self.general.fetch_add(1, Ordering::Relaxed);
                let slot = Slot {
                    hash,
                    key: Box::from(key),
                    entry: Entry::new(),
                };
                &mut vacant.insert(slot).into_mut().entry
            }
        }
    }

    #[inline]
    pub(super) fn decide(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Decision {
        let using = if mode == Mode::Peek {
            Use::Read
        } else {
            Use::Write
        };
        if let Some(decision) = self.with_table(key, strategy, using, |table, tail| {
            table.decide(self, &tail, strategy, hit, mode)
        }) {
            return decision;
        }
        let hash = self.hash(key);
        let shard = shard_of(hash);
        {
            let mut table = self.lock(shard);
            if let Some(entry) = Self::find(&mut table, hash, key) {
                return entry.apply(strategy, hit, mode);
            }
        }
        if mode == Mode::Peek {
            return strategy.apply_erased(&mut ErasedState::new(), hit, true).0;
        }
        self.make_room(hit.now);
        let mut table = self.lock(shard);
        self.find_or_insert(&mut table, hash, key)
            .apply(strategy, hit, mode)
    }

    /// Decides `hits` (distinct keys) as one while holding every shard they live in: either
    /// every hit is admitted and stored, or none is stored (with `Mode::Peek` nothing ever is).
    /// The shards are locked in one global order (the general map's in ascending order, then
    /// the typed tables' by table and shard), so concurrent batches cannot deadlock; a single
    /// decision holds one shard at a time.
    pub(super) fn decide_all(&self, hits: &[KeyedHit<'_>], mode: Mode) -> Vec<Decision> {
        // Tables the batch's keys need are made before any shard is locked (not for a peek,
        // which stores nothing).
        let places: Vec<Place<'_>> = hits
            .iter()
            .map(|hit| match split_key(hit.key, hit.strategy.name()) {
                Some((prefix, tail)) => match match mode {
                    Mode::Peek => self.tables.get_existing(prefix, hit.strategy).cloned(),
                    Mode::Consume => self.table(prefix, hit.strategy),
                } {
                    Some(table) => {
                        let tail = TailRef::new(tail);
                        let (hash, shard) = table.locate(&tail);
                        Place::Table {
                            table,
                            tail,
                            hash,
                            shard,
                        }
                    }
                    None => Place::General(self.hash(hit.key)),
                },
                None => Place::General(self.hash(hit.key)),
            })
            .collect();
        match self.decide_all_locked(hits, &places, mode, false) {
            Ok(decisions) => decisions,
            // New keys to store and no room: make it with no shard held, then decide again
            // (anything may have changed meanwhile).
            Err(missing) => {
                let keys: Vec<&str> = hits.iter().map(|hit| hit.key).collect();
                self.make_room_for(missing, hits.first().map_or(0, |hit| hit.hit.now), &keys);
                match self.decide_all_locked(hits, &places, mode, true) {
                    Ok(decisions) => decisions,
                    Err(_) => unreachable!("an overfilling batch always stores"),
                }
            }
        }
    }

    /// [`decide_all`](Self::decide_all) under the locks. Unless `overfill`, an admitted batch
    /// that would store new keys in a full map stores nothing and returns how many keys it
    /// misses (`Err`), for the caller to make room first.
    fn decide_all_locked(
        &self,
        hits: &[KeyedHit<'_>],
        places: &[Place<'_>],
        mode: Mode,
        overfill: bool,
    ) -> Result<Vec<Decision>, usize> {
        let mut shards: Vec<usize> = places
            .iter()
            .filter_map(|place| match place {
                Place::General(hash) => Some(shard_of(*hash)),
                Place::Table { .. } => None,
            })
            .collect();
        shards.sort_unstable();
        shards.dedup();
        let mut general: Vec<(usize, GeneralShard<'_>)> = shards
            .into_iter()
            .map(|shard| (shard, self.lock(shard)))
            .collect();
        let mut order: Vec<(usize, usize)> = places.iter().filter_map(Place::table_shard).collect();
        order.sort_unstable();
        order.dedup();
        let mut typed: Vec<TypedShard<'_>> = order
            .into_iter()
            .map(|at| {
                let table = places
                    .iter()
                    .find_map(|place| match place {
                        Place::Table { table, shard, .. }
                            if (table_address(table), *shard) == at =>
                        {
                            Some(table)
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| unreachable!("the shard came from a place"));
                (at, table.lock(at.1))
            })
            .collect();
        let general_at = |general: &[(usize, GeneralShard<'_>)], hash: u64| match general
            .binary_search_by_key(&shard_of(hash), |(index, _)| *index)
        {
            Ok(at) => at,
            Err(_) => unreachable!("every shard of the batch is locked"),
        };
        let typed_at =
            |typed: &[TypedShard<'_>], at| match typed.binary_search_by_key(&at, |(key, _)| *key) {
                Ok(at) => at,
                Err(_) => unreachable!("every shard of the batch is locked"),
            };
        // First every hit on the state as it is, storing nothing.
        let mut decisions = Vec::with_capacity(hits.len());
        let mut missing = 0;
        for (hit, place) in hits.iter().zip(places) {
            let (decision, found) = match place {
                Place::General(hash) => {
                    let at = general_at(&general, *hash);
                    match Self::find(&mut general[at].1, *hash, hit.key) {
                        Some(entry) => (entry.apply(hit.strategy, &hit.hit, Mode::Peek), true),
                        None => (
                            hit.strategy
                                .apply_erased(&mut ErasedState::new(), &hit.hit, true)
                                .0,
                            false,
                        ),
                    }
                }
                Place::Table { tail, hash, .. } => {
                    let at = typed_at(&typed, place.table_shard().unwrap_or_default());
                    typed[at].1.peek(*hash, tail, hit.strategy, &hit.hit)
                }
            };
            missing += usize::from(!found);
            decisions.push(decision);
        }
        if mode == Mode::Peek || decisions.iter().any(Decision::is_throttled) {
            return Ok(decisions);
        }
        if !overfill && missing > 0 && self.len() + missing > self.max_keys {
            return Err(missing);
        }
        // Every hit is admitted: apply them for real, under the same locks (so with the same
        // decisions).
        decisions.clear();
        for (hit, place) in hits.iter().zip(places) {
            let decision = match place {
                Place::General(hash) => {
                    let at = general_at(&general, *hash);
                    let entry = self.find_or_insert(&mut general[at].1, *hash, hit.key);
                    entry.apply(hit.strategy, &hit.hit, Mode::Consume)
                }
                Place::Table { tail, hash, .. } => {
                    let at = typed_at(&typed, place.table_shard().unwrap_or_default());
                    let (decision, change) =
                        typed[at].1.consume(*hash, tail, hit.strategy, &hit.hit);
                    match change {
                        1 => self.added(1),
                        -1 => self.removed(1),
                        _ => {}
                    }
                    decision
                }
            };
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// Returns a charge on `key` under its shard's lock (the state itself tells whether the
    /// charge still counts, as in `decide`); a key that is gone (swept, evicted) holds none.
    pub(super) fn refund(&self, key: &str, strategy: &dyn DynStrategy, hit: &Hit<'_>) -> Refund {
        if let Some(refund) = self.with_table(key, strategy, Use::Read, |table, tail| {
            table.refund(self, &tail, strategy, hit)
        }) {
            return refund;
        }
        let hash = self.hash(key);
        let mut table = self.lock(shard_of(hash));
        match Self::find(&mut table, hash, key) {
            Some(entry) => match &mut entry.value {
                Value::State(state) => {
                    let (refund, expiry) = strategy.refund_erased(state, hit);
                    entry.expires_at = expiry.unwrap_or(0);
                    refund
                }
                _ => Refund::Lapsed,
            },
            _ => Refund::Lapsed,
        }
    }

    pub(super) fn stat(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> StrategyStat {
        if let Some(stat) = self.with_table(key, strategy, Use::Read, |table, tail| {
            table.stat(&tail, strategy, hit)
        }) {
            return stat;
        }
        let hash = self.hash(key);
        let mut table = self.lock(shard_of(hash));
        match Self::find(&mut table, hash, key).map(|entry| &entry.value) {
            Some(Value::State(state)) => strategy.stat_erased(state, hit),
            _ => strategy.stat_erased(&ErasedState::new(), hit),
        }
    }

    /// Runs `f` on the live entry at `key` (creating an expired placeholder if absent).
    pub(super) fn with_entry<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&mut Entry, bool) -> T,
    ) -> T {
        let hash = self.hash(key);
        let shard = shard_of(hash);
        {
            let mut table = self.lock(shard);
            if let Some(entry) = Self::find(&mut table, hash, key) {
                let live = entry.is_live(now);
                return f(entry, live);
            }
        }
        self.make_room(now);
        let mut table = self.lock(shard);
        let entry = self.find_or_insert(&mut table, hash, key);
        let live = entry.is_live(now);
        f(entry, live)
    }

    /// Runs `f` on the entry at `key` if it is live; never creates one.
    pub(super) fn update_live<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let hash = self.hash(key);
        let mut table = self.lock(shard_of(hash));
        Self::find(&mut table, hash, key)
            .filter(|entry| entry.is_live(now))
            .map(f)
    }

    pub(super) fn get_live<T>(
        &self,
        key: &str,
        now: Millis,
        f: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        let hash = self.hash(key);
        let mut table = self.lock(shard_of(hash));
        Self::find(&mut table, hash, key)
            .filter(|entry| entry.is_live(now))
            .map(|entry| f(entry))
    }

    /// Drops `key` (a strategy's state in a typed table too); returns whether it was live.
    pub(super) fn remove(&self, key: &str, now: Millis) -> bool {
        let mut live = false;
        for table in self.tables.iter() {
            if let Some((prefix, tail)) = split_key(key, table.strategy_name())
                && prefix == table.prefix()
            {
                live |= table.remove(self, &TailRef::new(tail), now);
            }
        }
        live | self.remove_general(key, now)
    }

    fn remove_general(&self, key: &str, now: Millis) -> bool {
        let hash = self.hash(key);
        let mut table = self.lock(shard_of(hash));
        match table.find_entry(hash, |slot| &*slot.key == key) {
            Ok(occupied) => {
                let (slot, _) = occupied.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                self.general.fetch_sub(1, Ordering::Relaxed);
                slot.entry.is_live(now)
            }
            Err(_) => false,
        }
    }

    /// Drops every expired entry, in the general map and every typed table; returns how many.
    pub(super) fn sweep(&self, now: Millis) -> usize {
        let general = self.retain(|_, entry| entry.is_live(now));
        let typed: usize = self.tables.iter().map(|table| table.sweep(now)).sum();
        self.removed(typed);
        general + typed
    }

    /// Keeps only the general map's entries `keep` accepts; returns how many were dropped.
    fn retain(&self, mut keep: impl FnMut(&str, &Entry) -> bool) -> usize {
        let mut removed = 0;
        for shard in 0..SHARDS {
            let mut table = self.lock(shard);
            table.retain(|slot| {
                let kept = keep(&slot.key, &slot.entry);
                removed += usize::from(!kept);
                kept
            });
            // Give back what a flood left (see the typed tables' sweep).
            if table.capacity() > 4 * table.len() + 64 {
                let len = table.len();
                table.shrink_to(len, |slot| slot.hash);
            }
        }
        self.removed(removed);
        self.general.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Drops every key.
    pub(super) fn clear(&self) {
        self.retain(|_, _| false);
        let typed: usize = self.tables.iter().map(|table| table.clear()).sum();
        self.removed(typed);
    }

    /// Drops every key that starts with `prefix` (a namespace's).
    pub(super) fn clear_prefix(&self, prefix: &str) {
        self.retain(|key, _| !key.starts_with(prefix));
        let typed: usize = self
            .tables
            .iter()
            .filter(|table| table.prefix().starts_with(prefix))
            .map(|table| table.clear())
            .sum();
        self.removed(typed);
    }

    /// Keeps the map under `max_keys` before a new key goes in.
    pub(super) fn make_room(&self, now: Millis) {
        if self.len() < self.max_keys {
            return;
        }
        self.make_room_for(1, now, &[]);
    }

    /// Keeps the store within `max_keys` before `count` new keys go in: expired entries go
    /// first (a full sweep, at most every 100 ms); if the store is still too full, entries
    /// closest to expiry among a sample go, one for each new key (and for any overshoot that
    /// concurrent inserts left), never more, and never one of `keep` (the keys of the batch
    /// the room is for). Called with no shard locked.
    fn make_room_for(&self, count: usize, now: Millis, keep: &[&str]) {
        if self.len() + count <= self.max_keys {
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
        let mut budget = count + self.len().saturating_sub(self.max_keys);
        while budget > 0 && self.len() + count > self.max_keys {
            budget -= 1;
            if !self.warned_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "traffik",
                    max_keys = self.max_keys,
                    "in-memory backend is full: evicting the entries closest to expiry to admit new keys"
                );
            }
            if !self.evict_one(keep) {
                break;
            }
        }
    }

    /// Evicts one entry: the one closest to expiry among the candidates of a few parts of the
    /// store (the general map and the typed tables), each part's candidate the entry closest to
    /// expiry among [`EVICTION_SAMPLE`] of its entries, taken from its shards in turn and never
    /// one of `keep`. The parts are drawn in proportion to the keys they hold
    /// ([`EVICTION_DRAWS`] draws), so the victim is close to what a sample of the whole store
    /// would give: a flood of short-lived keys in one throttle's table evicts those keys rather
    /// than a small table's long-lived ones beside it. Returns whether one was evicted.
    fn evict_one(&self, keep: &[&str]) -> bool {
        let turn = self.next_sample.fetch_add(1, Ordering::Relaxed);
        let parts = self.tables.len() + 1;
        let size = |part: usize| match part.checked_sub(1) {
            None => self.general.load(Ordering::Relaxed),
            Some(index) => self.tables.nth(index).map_or(0, |table| table.len()),
        };
        let total: usize = (0..parts).map(size).sum();
        let start = turn % SHARDS;
        let mut drawn: Vec<usize> = (0..EVICTION_DRAWS)
            .filter_map(|draw| {
                // A spread draw (Fibonacci hashing) of one key among `total`, then its part.
                let mut key =
                    spread(turn.wrapping_mul(EVICTION_DRAWS).wrapping_add(draw)) % total.max(1);
                (0..parts).find(|&part| {
                    let held = size(part);
                    if key < held {
                        return true;
                    }
                    key -= held;
                    false
                })
            })
            .collect();
        drawn.sort_unstable();
        drawn.dedup();
        // The drawn parts first; if none has a candidate (all kept, or emptied meanwhile), every
        // other part in turn.
        let others = (0..parts)
            .filter(|part| !drawn.contains(part))
            .collect::<Vec<_>>();
        for group in [drawn, others] {
            let best = group
                .into_iter()
                .filter_map(|part| self.candidate(part, start, keep))
                .min_by_key(|victim| victim.expires_at());
            if let Some(victim) = best {
                if self.evict(&victim) {
                    self.metrics.evicted(self.len());
                }
                return true;
            }
        }
        false
    }

    /// The eviction candidate of one part: 0 is the general map, `n` the `n`th typed table.
    fn candidate(&self, part: usize, start: usize, keep: &[&str]) -> Option<Victim> {
        let Some(index) = part.checked_sub(1) else {
            return self.general_candidate(start, keep);
        };
        let table = self.tables.nth(index)?;
        let name = table.strategy_name();
        let kept = |tail: &[u8]| {
            keep.iter().any(|key| {
                split_key(key, name)
                    .is_some_and(|(prefix, kept)| prefix == table.prefix() && kept == tail)
            })
        };
        let (expires, shard, hash, tail) = table.candidate(start, EVICTION_SAMPLE, &kept)?;
        Some(Victim::Table {
            index,
            expires,
            shard,
            hash,
            tail,
        })
    }

    /// Evicts `victim` if it is still there (a decision may have removed it meanwhile).
    fn evict(&self, victim: &Victim) -> bool {
        match victim {
            Victim::General {
                shard, hash, key, ..
            } => match self.lock(*shard).find_entry(*hash, |slot| slot.key == *key) {
                Ok(occupied) => {
                    occupied.remove();
                    self.removed(1);
                    self.general.fetch_sub(1, Ordering::Relaxed);
                    true
                }
                Err(_) => false,
            },
            Victim::Table {
                index,
                shard,
                hash,
                tail,
                ..
            } => {
                let evicted = self
                    .tables
                    .nth(*index)
                    .is_some_and(|table| table.evict(*shard, *hash, tail));
                if evicted {
                    self.removed(1);
                }
                evicted
            }
        }
    }

    /// The general map's eviction candidate.
    fn general_candidate(&self, start: usize, keep: &[&str]) -> Option<Victim> {
        if self.general.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut victim: Option<Victim> = None;
        let mut seen = 0;
        for step in 0..SHARDS {
            let shard = (start + step) % SHARDS;
            let table = self.lock(shard);
            for slot in table
                .iter()
                .filter(|slot| !keep.contains(&&*slot.key))
                .take(EVICTION_SAMPLE - seen)
            {
                seen += 1;
                if victim
                    .as_ref()
                    .is_none_or(|best| slot.entry.expires_at < best.expires_at())
                {
                    victim = Some(Victim::General {
                        expires: slot.entry.expires_at,
                        shard,
                        hash: slot.hash,
                        key: slot.key.clone(),
                    });
                }
            }
            if seen >= EVICTION_SAMPLE {
                break;
            }
        }
        victim
    }
}

/// A typed table's shard locked by a batch, with its place in the lock order.
type TypedShard<'a> = ((usize, usize), Box<dyn LockedShard + 'a>);

/// Whether a string-keyed call may make a typed table.
#[derive(Clone, Copy)]
enum Use {
    /// A decision that stores: the table is made if missing.
    Write,
    /// A read, a peek or a refund: a missing table means no entry.
    Read,
}

/// An entry chosen for eviction.
enum Victim {
    General {
        expires: Millis,
        shard: usize,
        hash: u64,
        key: Box<str>,
    },
    Table {
        index: usize,
        expires: Millis,
        shard: usize,
        hash: u64,
        tail: Tail,
    },
}

impl Victim {
    fn expires_at(&self) -> Millis {
        match self {
            Victim::General { expires, .. } | Victim::Table { expires, .. } => *expires,
        }
    }
}

/// Fibonacci hashing: spreads consecutive numbers over the whole range.
fn spread(n: usize) -> usize {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    #[allow(clippy::cast_possible_truncation)] // the low bits are as spread as the high ones
    let spread = (n as u64).wrapping_mul(GOLDEN) as usize;
    spread
}

/// Where a batch's hit is decided.
enum Place<'k> {
    /// The general map, with the key's hash.
    General(u64),
    /// A typed table.
    Table {
        table: Arc<dyn AnyTable>,
        tail: TailRef<'k>,
        hash: u64,
        shard: usize,
    },
}

impl Place<'_> {
    /// The global lock order of a typed table's shard: the table's address, then the shard.
    fn table_shard(&self) -> Option<(usize, usize)> {
        match self {
            Place::General(_) => None,
            Place::Table { table, shard, .. } => Some((table_address(table), *shard)),
        }
    }
}

/// A table's address, which orders the locks of a batch.
fn table_address(table: &Arc<dyn AnyTable>) -> usize {
    Arc::as_ptr(table).cast::<()>() as usize
}

/// The error for an operation on a closed backend.
pub(super) fn closed() -> BackendError {
    BackendError::Closed {
        backend: "memory".to_owned(),
    }
}
