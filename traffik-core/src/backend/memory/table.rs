//! [`Table`]: the in-memory entries of one throttle's keys under one strategy, typed by the
//! strategy.
//!
//! Every key of a throttle shares `{namespace}:{uid}:{` and `:{strategy}`, so a table keeps
//! that once and keys its entries by the [`Tail`] (16 bytes, inline up to 14). An entry holds
//! the strategy's own state, not an erased one, and a one-word [`Stamp`]: 40 bytes for a fixed
//! window against the general map's 64 plus its key. Decisions call the strategy directly, with
//! no dynamic dispatch and no erased state to unpack.
//!
//! A table is sharded like the general map (64 shards, each a mutex over a
//! `hashbrown::HashTable`); a batch locks the shards it touches in a global order
//! ([`Store::decide_all`](super::store::Store)).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as TableEntry;

use super::stamp::Stamp;
use super::store::{SHARDS, Store, shard_of};
use super::tail::{Tail, TailRef};
use crate::backend::Mode;
use crate::strategy::{
    Adaptive, DynStrategy, FixedWindow, Gcra, Hit, LeakyBucket, LeakyBucketWithQueue, Priority,
    Refund, SlidingWindowCounter, SlidingWindowLog, Strategy, Tiered, TokenBucket,
    TokenBucketWithDebt,
};
use crate::{Decision, Millis, StrategyStat};

/// The table's hasher: foldhash, seeded at random per table (see the general map's).
type Hasher = foldhash::fast::RandomState;

/// A typed table, seen from the store: every operation takes the strategy as the throttle or
/// the caller holds it, and downcasts it once (a type-id comparison).
pub(super) trait AnyTable: Send + Sync + 'static {
    /// `{namespace}:{uid}:{`, the part of every key before the tail.
    fn prefix(&self) -> &str;
    /// The strategy's name, the last part of every key.
    fn strategy_name(&self) -> &'static str;
    /// The hash and shard of `tail`.
    fn locate(&self, tail: &TailRef<'_>) -> (u64, usize);
    /// Decides a hit on `tail`, creating its entry (after making room) when it consumes.
    fn decide(
        &self,
        store: &Store,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Decision;
    /// Returns a charge on `tail`; a missing entry holds none.
    fn refund(
        &self,
        store: &Store,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> Refund;
    /// Drops the entry of `tail`; returns whether it was live at `now`.
    fn remove(&self, store: &Store, tail: &TailRef<'_>, now: Millis) -> bool;
    /// How many entries the table holds.
    fn len(&self) -> usize;
    /// The entry's stat (a fresh state's when missing).
    fn stat(&self, tail: &TailRef<'_>, strategy: &dyn DynStrategy, hit: &Hit<'_>) -> StrategyStat;
    /// Drops the entries that are no longer live at `now`; returns how many.
    fn sweep(&self, now: Millis) -> usize;
    /// Drops every entry; returns how many.
    fn clear(&self) -> usize;
    /// The entry closest to expiry among up to `sample` entries, taken from the shards in turn
    /// from `start`, never one whose tail `keep` accepts: its expiry (ms), shard, hash and tail.
    fn candidate(
        &self,
        start: usize,
        sample: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Option<(Millis, usize, u64, Tail)>;
    /// Evicts the entry a [`candidate`](Self::candidate) named, if it is still there.
    fn evict(&self, shard: usize, hash: u64, tail: &Tail) -> bool;
    /// Locks one shard, for a batch.
    fn lock(&self, shard: usize) -> Box<dyn LockedShard + '_>;
}

/// One locked shard of a table, for a batch: every hit is first decided on the state as it is
/// ([`peek`](Self::peek)), then, if all are admitted, applied ([`consume`](Self::consume)).
pub(super) trait LockedShard {
    /// The decision on the entry as it is, storing nothing; and whether the entry exists.
    fn peek(
        &mut self,
        hash: u64,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> (Decision, bool);
    /// Applies the hit, creating the entry if missing (the caller made room), dropping it if
    /// the strategy leaves no state. Returns the decision and the change in the table's entries
    /// (+1, 0 or −1), which the caller counts in the store.
    fn consume(
        &mut self,
        hash: u64,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> (Decision, isize);
}

/// How a strategy's state leaves its entry for the strategy's `apply` and comes back: copied
/// (plain states) or taken (states that own a queue or a log, left empty meanwhile).
pub(super) trait TableState: Sized + Clone + Send + Sync + 'static {
    fn take(&mut self) -> Self;
}

macro_rules! copied_states {
    ($($state:ty),*) => {$(
        impl TableState for $state {
            #[inline]
            fn take(&mut self) -> Self {
                *self
            }
        }
    )*};
}

macro_rules! taken_states {
    ($($state:ty),*) => {$(
        impl TableState for $state {
            #[inline]
            fn take(&mut self) -> Self {
                std::mem::take(self)
            }
        }
    )*};
}

copied_states!(
    crate::strategy::WindowState,
    crate::strategy::GcraState,
    crate::strategy::TokenBucketState,
    crate::strategy::LeakyBucketState,
    crate::strategy::SlidingWindowCounterState,
    crate::strategy::AdaptiveState
);
taken_states!(
    crate::strategy::LeakyBucketQueueState,
    crate::strategy::SlidingWindowLogState
);

/// The built-in strategies that get typed tables (any other strategy's keys stay in the general
/// map): a table for the strategy `strategy` is, or `None`.
pub(super) fn new_table(strategy: &dyn DynStrategy, prefix: &str) -> Option<Box<dyn AnyTable>> {
    macro_rules! table_for {
        ($($strategy:ty),*) => {
            $(if strategy.as_any().is::<$strategy>() {
                return Some(Box::new(Table::<$strategy>::new(prefix)));
            })*
        };
    }
    table_for!(
        FixedWindow,
        Gcra,
        TokenBucket,
        TokenBucketWithDebt,
        LeakyBucket,
        LeakyBucketWithQueue,
        SlidingWindowCounter,
        SlidingWindowLog,
        Tiered,
        Priority,
        Adaptive
    );
    None
}

/// The entries of one throttle's keys under strategy `S`.
pub(super) struct Table<S: Strategy> {
    prefix: Box<str>,
    shards: Box<[Shard<S::State>]>,
    hasher: Hasher,
    /// Entries in the table (eviction passes over an empty table without locking it).
    len: AtomicUsize,
    strategy: PhantomData<fn() -> S>,
}

/// One shard, on its own cache lines.
#[repr(align(128))]
struct Shard<T>(Mutex<HashTable<Slot<T>>>);

struct Slot<T> {
    tail: Tail,
    stamp: Stamp,
    state: T,
}

impl<S: Strategy> Table<S>
where
    S::State: TableState,
{
    fn new(prefix: &str) -> Self {
        Table {
            prefix: Box::from(prefix),
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(HashTable::new())))
                .collect(),
            hasher: Hasher::default(),
            len: AtomicUsize::new(0),
            strategy: PhantomData,
        }
    }

    #[inline]
    fn strategy(strategy: &dyn DynStrategy) -> &S {
        match strategy.as_any().downcast_ref::<S>() {
            Some(strategy) => strategy,
            None => unreachable!("a table is only ever found by its strategy's type"),
        }
    }

    #[inline]
    fn lock_shard(&self, shard: usize) -> MutexGuard<'_, HashTable<Slot<S::State>>> {
        // A panic while holding a shard leaves each entry whole, so the shard stays usable.
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies `hit` to an entry's state: time raised to the latest the entry has seen (two threads
/// read the clock before taking the lock, so the later one to get here may carry a time a
/// millisecond older than the state it meets; seen from the key, time never runs backwards),
/// nothing stored when peeking. `None` when the strategy left no state (the entry goes).
#[inline]
fn apply<S: Strategy>(
    strategy: &S,
    slot: &mut Slot<S::State>,
    hit: &Hit<'_>,
    mode: Mode,
) -> (Decision, bool)
where
    S::State: TableState,
{
    let now = hit.now.max(slot.stamp.seen());
    let hit = Hit { now, ..*hit };
    if mode == Mode::Peek {
        let mut state = Some(slot.state.clone());
        return (strategy.apply(&mut state, &hit), true);
    }
    let mut state = Some(slot.state.take());
    let decision = strategy.apply(&mut state, &hit);
    match state {
        Some(state) => {
            slot.stamp = Stamp::new(strategy.expires_at(&state, &hit.rate), now);
            slot.state = state;
            (decision, true)
        }
        None => (decision, false),
    }
}

/// Applies `hit` to a new entry; the slot to store, if the strategy left a state.
#[inline]
fn apply_new<S: Strategy>(
    strategy: &S,
    tail: &TailRef<'_>,
    hit: &Hit<'_>,
) -> (Decision, Option<Slot<S::State>>) {
    let mut state = None;
    let decision = strategy.apply(&mut state, hit);
    let slot = state.map(|state| Slot {
        tail: tail.to_tail(),
        stamp: Stamp::new(strategy.expires_at(&state, &hit.rate), hit.now),
        state,
    });
    (decision, slot)
}

impl<S: Strategy> AnyTable for Table<S>
where
    S::State: TableState,
{
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn strategy_name(&self) -> &'static str {
        S::NAME
    }

    #[inline]
    fn locate(&self, tail: &TailRef<'_>) -> (u64, usize) {
        let hash = tail.hash(&self.hasher);
        (hash, shard_of(hash))
    }

    #[inline]
    fn decide(
        &self,
        store: &Store,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Decision {
        let strategy = Self::strategy(strategy);
        let (hash, shard) = self.locate(tail);
        {
            let mut table = self.lock_shard(shard);
            if let Ok(mut occupied) = table.find_entry(hash, |slot| tail.matches(&slot.tail)) {
                let (decision, kept) = apply(strategy, occupied.get_mut(), hit, mode);
                if !kept {
                    occupied.remove();
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    store.removed(1);
                }
                return decision;
            }
        }
        if mode == Mode::Peek {
            return strategy.apply(&mut None, hit);
        }
        store.make_room(hit.now);
        let mut table = self.lock_shard(shard);
        let hasher = &self.hasher;
        match table.entry(
            hash,
            |slot| tail.matches(&slot.tail),
            |slot| slot.tail.as_ref().hash(hasher),
        ) {
            TableEntry::Occupied(mut occupied) => {
                let (decision, kept) = apply(strategy, occupied.get_mut(), hit, mode);
                if !kept {
                    occupied.remove();
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    store.removed(1);
                }
                decision
            }
            TableEntry::Vacant(vacant) => {
                let (decision, slot) = apply_new(strategy, tail, hit);
                if let Some(slot) = slot {
                    vacant.insert(slot);
                    self.len.fetch_add(1, Ordering::Relaxed);
                    store.added(1);
                }
                decision
            }
        }
    }

    fn refund(
        &self,
        store: &Store,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> Refund {
        let strategy = Self::strategy(strategy);
        let (hash, shard) = self.locate(tail);
        let mut table = self.lock_shard(shard);
        let Ok(mut occupied) = table.find_entry(hash, |slot| tail.matches(&slot.tail)) else {
            return Refund::Lapsed;
        };
        let slot = occupied.get_mut();
        let mut state = Some(slot.state.take());
        let refund = strategy.refund(&mut state, hit);
        match state {
            Some(state) => {
                let seen = slot.stamp.seen();
                slot.stamp = Stamp::new(strategy.expires_at(&state, &hit.rate), seen);
                slot.state = state;
            }
            // The strategy dropped the state: so does the table.
            None => {
                occupied.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                store.removed(1);
            }
        }
        refund
    }

    fn remove(&self, store: &Store, tail: &TailRef<'_>, now: Millis) -> bool {
        let (hash, shard) = self.locate(tail);
        let mut table = self.lock_shard(shard);
        match table.find_entry(hash, |slot| tail.matches(&slot.tail)) {
            Ok(occupied) => {
                let (slot, _) = occupied.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                store.removed(1);
                slot.stamp.is_live(now)
            }
            Err(_) => false,
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    fn stat(&self, tail: &TailRef<'_>, strategy: &dyn DynStrategy, hit: &Hit<'_>) -> StrategyStat {
        let strategy = Self::strategy(strategy);
        let (hash, shard) = self.locate(tail);
        let table = self.lock_shard(shard);
        let state = table
            .find(hash, |slot| tail.matches(&slot.tail))
            .map(|slot| &slot.state);
        strategy.stat(state, hit)
    }

    fn sweep(&self, now: Millis) -> usize {
        let mut removed = 0;
        for shard in 0..SHARDS {
            let mut table = self.lock_shard(shard);
            table.retain(|slot| {
                let live = slot.stamp.is_live(now);
                removed += usize::from(!live);
                live
            });
            // Give back what a flood left: a table keeps its peak size otherwise, and the
            // store's bound is `max_keys` entries in all, not `max_keys` per table.
            if table.capacity() > 4 * table.len() + 64 {
                let hasher = &self.hasher;
                let len = table.len();
                table.shrink_to(len, |slot| slot.tail.as_ref().hash(hasher));
            }
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn clear(&self) -> usize {
        let mut removed = 0;
        for shard in 0..SHARDS {
            let mut table = self.lock_shard(shard);
            removed += table.len();
            *table = HashTable::new();
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    fn candidate(
        &self,
        start: usize,
        sample: usize,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Option<(Millis, usize, u64, Tail)> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut victim: Option<(Millis, usize, u64, Tail)> = None;
        let mut seen = 0;
        for step in 0..SHARDS {
            let shard = (start + step) % SHARDS;
            let table = self.lock_shard(shard);
            for slot in table
                .iter()
                .filter(|slot| !keep(slot.tail.bytes()))
                .take(sample - seen)
            {
                seen += 1;
                let expires = slot.stamp.expires_at();
                if victim.as_ref().is_none_or(|(best, ..)| expires < *best) {
                    let hash = slot.tail.as_ref().hash(&self.hasher);
                    victim = Some((expires, shard, hash, slot.tail.clone()));
                }
            }
            if seen >= sample {
                break;
            }
        }
        victim
    }

    fn evict(&self, shard: usize, hash: u64, tail: &Tail) -> bool {
        let tail = tail.as_ref();
        let evicted = self
            .lock_shard(shard)
            .find_entry(hash, |slot| tail.matches(&slot.tail))
            .map(|occupied| occupied.remove())
            .is_ok();
        if evicted {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        evicted
    }

    fn lock(&self, shard: usize) -> Box<dyn LockedShard + '_> {
        Box::new(Locked::<S> {
            table: self.lock_shard(shard),
            hasher: &self.hasher,
            len: &self.len,
        })
    }
}

struct Locked<'a, S: Strategy> {
    table: MutexGuard<'a, HashTable<Slot<S::State>>>,
    hasher: &'a Hasher,
    len: &'a AtomicUsize,
}

impl<S: Strategy> LockedShard for Locked<'_, S>
where
    S::State: TableState,
{
    fn peek(
        &mut self,
        hash: u64,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> (Decision, bool) {
        let strategy = Table::<S>::strategy(strategy);
        match self.table.find_mut(hash, |slot| tail.matches(&slot.tail)) {
            Some(slot) => (apply(strategy, slot, hit, Mode::Peek).0, true),
            None => (strategy.apply(&mut None, hit), false),
        }
    }

    fn consume(
        &mut self,
        hash: u64,
        tail: &TailRef<'_>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
    ) -> (Decision, isize) {
        let strategy = Table::<S>::strategy(strategy);
        let hasher = self.hasher;
        match self.table.entry(
            hash,
            |slot| tail.matches(&slot.tail),
            |slot| slot.tail.as_ref().hash(hasher),
        ) {
            TableEntry::Occupied(mut occupied) => {
                let (decision, kept) = apply(strategy, occupied.get_mut(), hit, Mode::Consume);
                if kept {
                    return (decision, 0);
                }
                occupied.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                (decision, -1)
            }
            TableEntry::Vacant(vacant) => {
                let (decision, slot) = apply_new(strategy, tail, hit);
                let Some(slot) = slot else {
                    return (decision, 0);
                };
                vacant.insert(slot);
                self.len.fetch_add(1, Ordering::Relaxed);
                (decision, 1)
            }
        }
    }
}
