//! [`Outage`]: an in-memory backend that can be taken down and brought back, counting the
//! calls that reach it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::backend::{
    Backend, BackendError, BackendFuture, BackendSettings, KeyedHit, Mode, StoreId,
};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Decision, MaybeReady, MemoryBackend, Millis, StrategyStat};

/// An in-memory backend with a switch: while [`down`](Self::set_down), every decision, read
/// and refund fails with [`BackendError::Unavailable`] (as a lost Redis does), synchronously
/// too. [`calls`](Self::calls) counts the calls that reached it, up or down, so a test sees
/// what a wrapper kept away. Clones share the switch, the count and the store.
#[derive(Debug, Clone)]
pub struct Outage {
    inner: MemoryBackend,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

impl Outage {
    /// Up, over `inner`.
    #[must_use]
    pub fn new(inner: MemoryBackend) -> Self {
        Outage {
            inner,
            down: Arc::default(),
            calls: Arc::default(),
        }
    }

    /// Takes the backend down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The calls that reached the backend so far.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts a call; the error it fails with while down.
    fn call(&self, operation: &'static str) -> Result<(), BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(BackendError::Unavailable {
                backend: "outage".to_owned(),
                operation,
                source: "the test took the backend down".into(),
            });
        }
        Ok(())
    }
}

impl Backend for Outage {
    fn name(&self) -> &str {
        "outage"
    }

    fn settings(&self) -> &BackendSettings {
        self.inner.settings()
    }

    fn store_id(&self) -> StoreId {
        self.inner.store_id()
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        match self.call("decide") {
            Ok(()) => self.inner.decide(key, strategy, hit, mode),
            Err(error) => MaybeReady::ready(Err(error)),
        }
    }

    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        match self.call("decide") {
            Ok(()) => self.inner.decide_now(key, strategy, hit, mode),
            Err(error) => Some(Err(error)),
        }
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        match self.call("decide") {
            Ok(()) => self.inner.decide_all(hits, mode),
            Err(error) => MaybeReady::ready(Err(error)),
        }
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        match self.call("refund") {
            Ok(()) => self.inner.refund(key, strategy, charge, now),
            Err(error) => MaybeReady::ready(Err(error)),
        }
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        match self.call("stat") {
            Ok(()) => self.inner.stat(key, strategy, hit),
            Err(error) => MaybeReady::ready(Err(error)),
        }
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        self.inner.reset()
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        self.inner.close()
    }
}
