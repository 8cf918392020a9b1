//! Named locks for the in-memory backend's key-value contract: ttl-bounded, FIFO-fair enough,
//! waiting on a notification rather than spinning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::MaybeReady;
use crate::backend::{BackendError, BackendFuture, HeldLock, LockError, LockGuard, LockOptions};

#[derive(Debug, Default)]
pub(super) struct Locks {
    held: DashMap<Box<str>, Holder>,
    next_token: AtomicU64,
    released: Notify,
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    token: u64,
    expires: Instant,
}

impl Locks {
    /// Takes the lock if free (or expired); otherwise says when the holder's ttl ends.
    fn try_take(&self, name: &str, options: &LockOptions) -> Result<u64, Instant> {
        let now = Instant::now();
        let holder = Holder {
            token: self.next_token.fetch_add(1, Ordering::Relaxed) + 1,
            // At least 1 ms, as Redis's `PX` (a zero ttl would be expired at once and exclude
            // nobody).
            expires: now + options.ttl.max(std::time::Duration::from_millis(1)),
        };
        match self.held.entry(Box::from(name)) {
            Entry::Vacant(vacant) => {
                vacant.insert(holder);
                Ok(holder.token)
            }
            Entry::Occupied(mut occupied) if occupied.get().expires <= now => {
                occupied.insert(holder);
                Ok(holder.token)
            }
            Entry::Occupied(occupied) => Err(occupied.get().expires),
        }
    }

    pub(super) async fn acquire(
        self: Arc<Self>,
        name: &str,
        options: LockOptions,
    ) -> Result<LockGuard, LockError> {
        let deadline = options
            .blocking_timeout
            .map(|timeout| Instant::now() + timeout);
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.try_take(name, &options) {
                Ok(token) => {
                    return Ok(LockGuard::new(Box::new(MemoryHeldLock {
                        locks: Arc::clone(&self),
                        name: Box::from(name),
                        token,
                    })));
                }
                Err(holder_expires) => {
                    if !options.blocking {
                        return Err(LockError::WouldBlock {
                            name: name.to_owned(),
                        });
                    }
                    let wake_at = match deadline {
                        Some(deadline) if Instant::now() >= deadline => {
                            return Err(LockError::Timeout {
                                name: name.to_owned(),
                                after: options.blocking_timeout.unwrap_or_default(),
                            });
                        }
                        Some(deadline) => deadline.min(holder_expires),
                        None => holder_expires,
                    };
                    tokio::select! {
                        () = &mut released => {}
                        () = tokio::time::sleep_until(wake_at) => {}
                    }
                }
            }
        }
    }

    fn release(&self, name: &str, token: u64) -> Result<(), LockError> {
        let removed = self
            .held
            .remove_if(name, |_, holder| holder.token == token)
            .is_some();
        self.released.notify_waiters();
        if removed {
            Ok(())
        } else {
            Err(LockError::NotHeld {
                name: name.to_owned(),
            })
        }
    }
}

#[derive(Debug)]
struct MemoryHeldLock {
    locks: Arc<Locks>,
    name: Box<str>,
    token: u64,
}

impl HeldLock for MemoryHeldLock {
    fn release(self: Box<Self>) -> BackendFuture<'static, ()> {
        MaybeReady::ready(
            self.locks
                .release(&self.name, self.token)
                .map_err(|source| BackendError::Lock {
                    backend: "memory".to_owned(),
                    source,
                }),
        )
    }

    fn release_on_drop(self: Box<Self>) {
        let _ = self.locks.release(&self.name, self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn options(ttl_ms: u64, blocking: bool, timeout_ms: Option<u64>) -> LockOptions {
        LockOptions {
            ttl: Duration::from_millis(ttl_ms),
            blocking,
            blocking_timeout: timeout_ms.map(Duration::from_millis),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_lock_refuses_non_blocking_callers() {
        let locks = Arc::new(Locks::default());
        let guard = Arc::clone(&locks)
            .acquire("a", options(1_000, true, None))
            .await
            .unwrap();
        let refused = Arc::clone(&locks)
            .acquire("a", options(1_000, false, None))
            .await
            .unwrap_err();
        assert!(matches!(refused, LockError::WouldBlock { .. }));
        assert!(
            Arc::clone(&locks)
                .acquire("b", options(1_000, false, None))
                .await
                .is_ok(),
            "other names are independent"
        );
        guard.release().await.unwrap();
        assert!(
            Arc::clone(&locks)
                .acquire("a", options(1_000, false, None))
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_the_lock_when_it_is_released() {
        let locks = Arc::new(Locks::default());
        let guard = Arc::clone(&locks)
            .acquire("a", options(60_000, true, None))
            .await
            .unwrap();
        let waiter =
            tokio::spawn(Arc::clone(&locks).acquire_owned("a", options(60_000, true, None)));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard); // released on drop
        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_lock_frees_itself_at_its_ttl() {
        let locks = Arc::new(Locks::default());
        let guard = Arc::clone(&locks)
            .acquire("a", options(500, true, None))
            .await
            .unwrap();
        let _crashed_holder = std::mem::ManuallyDrop::new(guard); // a holder that never releases
        let started = Instant::now();
        assert!(
            Arc::clone(&locks)
                .acquire("a", options(500, true, None))
                .await
                .is_ok()
        );
        assert_eq!(started.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn blocking_timeout_bounds_the_wait() {
        let locks = Arc::new(Locks::default());
        let _guard = Arc::clone(&locks)
            .acquire("a", options(60_000, true, None))
            .await
            .unwrap();
        let started = Instant::now();
        let error = Arc::clone(&locks)
            .acquire("a", options(60_000, true, Some(50)))
            .await
            .unwrap_err();
        assert!(matches!(error, LockError::Timeout { .. }));
        assert_eq!(started.elapsed(), Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn releasing_an_expired_lock_that_someone_else_took_is_reported() {
        let locks = Arc::new(Locks::default());
        let first = Arc::clone(&locks)
            .acquire("a", options(100, true, None))
            .await
            .unwrap();
        tokio::time::advance(Duration::from_millis(150)).await;
        let _second = Arc::clone(&locks)
            .acquire("a", options(100, true, None))
            .await
            .unwrap();
        assert!(first.release().await.is_err());
    }

    impl Locks {
        async fn acquire_owned(
            self: Arc<Self>,
            name: &'static str,
            options: LockOptions,
        ) -> Result<LockGuard, LockError> {
            self.acquire(name, options).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_still_excludes_for_a_millisecond() {
        let locks = Arc::new(Locks::default());
        let _held = Arc::clone(&locks)
            .acquire("zero", options(0, false, None))
            .await
            .unwrap();
        assert!(
            Arc::clone(&locks)
                .acquire("zero", options(0, false, None))
                .await
                .is_err(),
            "a second taker is refused while the first holds the lock"
        );
    }
}
