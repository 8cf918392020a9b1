//! [`KeyValueBackend`]: every strategy on any [`KeyValueStore`], by read-apply-write under a lock.

use std::fmt;
use std::time::Duration;

use super::{Backend, BackendFuture, BackendSettings, KeyValueStore, KeyedHit, LockOptions, Mode};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{ConfigError, Decision, MaybeReady, OnError, StrategyStat};

/// Runs any strategy on a [`KeyValueStore`]: under the store's lock on the key, it reads the
/// encoded state, applies the strategy and writes the new state with its exact expiry. Each
/// decision is atomic as long as the store's lock is.
///
/// ```
/// use traffik_core::backend::KeyValueBackend;
/// use traffik_core::{MemoryBackend, Throttle};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Any KeyValueStore works; the in-memory backend implements the contract too.
/// let store = MemoryBackend::new();
/// let backend = KeyValueBackend::new(store, "kv")?;
/// let throttle = Throttle::builder("kv-doc", "2/min").backend(backend).build()?;
/// assert!(throttle.hit("a").await?.is_allowed());
/// assert!(throttle.hit("a").await?.is_allowed());
/// assert!(throttle.hit("a").await?.is_throttled());
/// assert!(KeyValueBackend::new(MemoryBackend::new(), "bad namespace").is_err());
/// # Ok(()) }
/// ```
pub struct KeyValueBackend<S> {
    store: S,
    settings: BackendSettings,
}

impl<S: KeyValueStore> KeyValueBackend<S> {
    /// Wraps `store`; keys are prefixed with `namespace` (letters, digits, `.`, `_`, `-`, `/`,
    /// `:`). Decisions lock with the `TRAFFIK_DEFAULT_*` settings ([`LockOptions::from_env`])
    /// unless [`lock_options`](Self::lock_options) says otherwise; an invalid variable is a
    /// [`ConfigError::LockSettings`].
    pub fn new(store: S, namespace: impl Into<String>) -> Result<Self, ConfigError> {
        Ok(KeyValueBackend {
            store,
            settings: BackendSettings::new().with_namespace(namespace).resolve()?,
        })
    }

    /// How each decision takes its lock (default: the `TRAFFIK_DEFAULT_*` settings).
    #[must_use]
    pub fn lock_options(mut self, options: LockOptions) -> Self {
        self.settings = self.settings.with_lock_options(options);
        self
    }

    /// The on-error policy for throttles on this backend that set none.
    #[must_use]
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings = self.settings.with_on_error(policy);
        self
    }

    /// Attaches a typed value for the protocol crates (see [`Extensions`](super::Extensions)).
    #[must_use]
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.settings = self.settings.with_extension(value);
        self
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.store
    }
}

/// One decision on any key-value store: under the store's lock on the key, read the encoded
/// state, apply the strategy, and write the new state with its exact expiry (or delete it).
pub(crate) async fn read_apply_write(
    store: &dyn KeyValueStore,
    lock_options: LockOptions,
    key: &str,
    strategy: &dyn DynStrategy,
    hit: Hit<'_>,
    mode: Mode,
) -> Result<Decision, crate::backend::BackendError> {
    let hits = [KeyedHit { key, strategy, hit }];
    let mut decisions = read_apply_write_all(store, lock_options, &hits, mode).await?;
    Ok(decisions.remove(0))
}

/// Several decisions as one on any key-value store: under every key's lock (taken in key
/// order, so concurrent batches cannot deadlock), read every state, apply every strategy, and
/// only if every hit is admitted write every new state. Keys are distinct.
pub(crate) async fn read_apply_write_all(
    store: &dyn KeyValueStore,
    lock_options: LockOptions,
    hits: &[KeyedHit<'_>],
    mode: Mode,
) -> Result<Vec<Decision>, crate::backend::BackendError> {
    let mut order: Vec<usize> = (0..hits.len()).collect();
    order.sort_by_key(|&index| hits[index].key);
    let mut guards = Vec::with_capacity(hits.len());
    let mut locked = Ok(());
    for &index in &order {
        match store
            .lock(&format!("{}:lock", hits[index].key), lock_options)
            .await
        {
            Ok(guard) => guards.push(guard),
            Err(error) => {
                locked = Err(error);
                break;
            }
        }
    }
    let result = match locked {
        Ok(()) => apply_all(store, hits, mode).await,
        Err(error) => Err(error),
    };
    let mut released = Ok(());
    for guard in guards.into_iter().rev() {
        if let Err(error) = guard.release().await {
            released = Err(error);
        }
    }
    let decisions = result?;
    released?;
    Ok(decisions)
}

/// The locked part of [`read_apply_write_all`].
async fn apply_all(
    store: &dyn KeyValueStore,
    hits: &[KeyedHit<'_>],
    mode: Mode,
) -> Result<Vec<Decision>, crate::backend::BackendError> {
    let mut transitions = Vec::with_capacity(hits.len());
    for hit in hits {
        let stored = store.get(hit.key).await?;
        let transition = hit.strategy.apply_encoded(stored.as_deref(), &hit.hit);
        transitions.push((stored, transition));
    }
    // One hit stores what its transition leaves, refused or not (as `apply` does); several
    // store only when every one is admitted.
    let store_all = hits.len() == 1
        || transitions
            .iter()
            .all(|(_, transition)| transition.decision.is_allowed());
    if mode == Mode::Consume && store_all {
        for (hit, (stored, transition)) in hits.iter().zip(&transitions) {
            if transition.state == *stored {
                continue;
            }
            write_state(
                store,
                hit.key,
                transition.state.as_deref(),
                transition.expires_at,
                hit.hit.now,
            )
            .await?;
        }
    }
    Ok(transitions
        .into_iter()
        .map(|(_, transition)| transition.decision)
        .collect())
}

/// Stores `state` until `expires_at` (a ttl counted from `now`), or deletes the key when no
/// state remains.
async fn write_state(
    store: &dyn KeyValueStore,
    key: &str,
    state: Option<&str>,
    expires_at: Option<crate::Millis>,
    now: crate::Millis,
) -> Result<(), crate::backend::BackendError> {
    match (state, expires_at) {
        (Some(state), Some(expires_at)) => {
            let ttl = Duration::from_millis(expires_at.saturating_sub(now).max(1));
            store.set(key, state, Some(ttl)).await
        }
        _ => store.delete(key).await.map(|_| ()),
    }
}

/// A refund on any key-value store: under the store's lock on the key, read the encoded state,
/// return the charge ([`DynStrategy::refund_encoded`]) and write what is left. The ttl is
/// counted from the charge's time, so it is never shorter than the state's.
pub(crate) async fn read_refund_write(
    store: &dyn KeyValueStore,
    lock_options: LockOptions,
    key: &str,
    strategy: &dyn DynStrategy,
    hit: Hit<'_>,
) -> Result<Refund, crate::backend::BackendError> {
    let guard = store.lock(&format!("{key}:lock"), lock_options).await?;
    let result = async {
        let stored = store.get(key).await?;
        let refunded = strategy.refund_encoded(stored.as_deref(), &hit);
        if let Some(state) = &refunded.state {
            write_state(store, key, state.as_deref(), refunded.expires_at, hit.now).await?;
        }
        Ok(refunded.refund)
    }
    .await;
    let released = guard.release().await;
    let refund = result?;
    released?;
    Ok(refund)
}

impl<S: KeyValueStore> Backend for KeyValueBackend<S> {
    fn name(&self) -> &str {
        self.store.name()
    }

    fn settings(&self) -> &BackendSettings {
        &self.settings
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(read_apply_write(
            &self.store,
            self.settings.lock_options(),
            key,
            strategy,
            hit,
            mode,
        ))
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(read_apply_write_all(
            &self.store,
            self.settings.lock_options(),
            hits,
            mode,
        ))
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        _now: crate::Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::boxed(read_refund_write(
            &self.store,
            self.settings.lock_options(),
            key,
            strategy,
            hit,
        ))
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(async move {
            let stored = self.store.get(key).await?;
            let mut stat = strategy.stat_encoded(stored.as_deref(), &hit);
            stat.key = key.to_owned();
            Ok(stat)
        })
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        // The contract has no scan; stores that can list keys override `Backend` themselves.
        MaybeReady::ready(Err(crate::backend::BackendError::Unavailable {
            backend: self.store.name().to_owned(),
            operation: "reset",
            source: "the key-value contract cannot list keys; reset the store directly".into(),
        }))
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        MaybeReady::ready(Ok(()))
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        Some(&self.store)
    }
}

impl<S: fmt::Debug> fmt::Debug for KeyValueBackend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValueBackend")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
