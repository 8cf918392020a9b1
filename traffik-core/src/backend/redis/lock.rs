//! The key-value contract's locks on Redis: one node (`SET NX PX` with an owner token,
//! released by a token-checked script), or Redlock across independent nodes.
//!
//! Every lock has its ttl set in the same command that takes it, so a crashed holder frees it
//! by expiry. A blocking wait polls with a growing pause (2 ms doubling to 50 ms), bounded by
//! the blocking timeout.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{RedisError, Value};

use super::error::{NAME, from_redis};
use super::scripts::UNLOCK;
use crate::MaybeReady;
use crate::backend::{BackendError, BackendFuture, HeldLock, LockError, LockGuard, LockOptions};

/// A token no other owner holds: 128 bits from the process's random hasher keys, a counter and
/// the time.
pub(super) fn owner_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for (i, word) in words.iter_mut().enumerate() {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(count);
        hasher.write_u128(nanos);
        hasher.write_usize(i);
        *word = hasher.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

fn lock_error(source: LockError) -> BackendError {
    BackendError::Lock {
        backend: NAME.to_owned(),
        source,
    }
}

/// `SET name token NX PX ttl` on one connection: whether it was taken.
#[allow(clippy::cast_possible_truncation)] // ttls past u64 ms (584 million years) are moot
async fn try_set<C: ConnectionLike>(
    connection: &mut C,
    name: &str,
    token: &str,
    ttl: Duration,
) -> Result<bool, RedisError> {
    let reply: Value = redis::cmd("SET")
        .arg(name)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64)
        .query_async(connection)
        .await?;
    Ok(!matches!(reply, Value::Nil))
}

/// Releases `name` if it still holds `token`: whether it did.
async fn unlock<C: ConnectionLike>(
    connection: &mut C,
    name: &str,
    token: &str,
) -> Result<bool, RedisError> {
    let deleted: i64 = UNLOCK.key(name).arg(token).invoke_async(connection).await?;
    Ok(deleted == 1)
}

/// Retries `attempt` under `options`: at once, then with growing pauses until the blocking
/// timeout (or forever without one, until the holder's ttl frees the lock).
async fn acquire<F, Fut>(
    name: &str,
    options: LockOptions,
    mut attempt: F,
) -> Result<(), BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, BackendError>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if attempt().await? {
            return Ok(());
        }
        if !options.blocking {
            return Err(lock_error(LockError::WouldBlock {
                name: name.to_owned(),
            }));
        }
        let mut sleep = pause;
        if let Some(limit) = options.blocking_timeout {
            let waited = started.elapsed();
            if waited >= limit {
                return Err(lock_error(LockError::Timeout {
                    name: name.to_owned(),
                    after: limit,
                }));
            }
            sleep = sleep.min(limit.saturating_sub(waited));
        }
        tokio::time::sleep(sleep).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Takes `name` on one node.
pub(super) async fn lock_single<C>(
    connection: C,
    name: &str,
    options: LockOptions,
    command_timeout: Duration,
) -> Result<LockGuard, BackendError>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let token = owner_token();
    acquire(name, options, || {
        let mut connection = connection.clone();
        let token = token.as_str();
        async move {
            match tokio::time::timeout(
                command_timeout,
                try_set(&mut connection, name, token, options.ttl),
            )
            .await
            {
                Ok(result) => result.map_err(|e| from_redis("lock", e, command_timeout)),
                Err(_) => Err(super::error::timeout("lock", command_timeout)),
            }
        }
    })
    .await?;
    Ok(LockGuard::new(Box::new(SingleLock {
        connection,
        name: name.to_owned(),
        token,
        command_timeout,
    })))
}

struct SingleLock<C> {
    connection: C,
    name: String,
    token: String,
    command_timeout: Duration,
}

impl<C> fmt::Debug for SingleLock<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<C> HeldLock for SingleLock<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn release(self: Box<Self>) -> BackendFuture<'static, ()> {
        MaybeReady::boxed(async move {
            let SingleLock {
                mut connection,
                name,
                token,
                command_timeout,
            } = *self;
            let released =
                tokio::time::timeout(command_timeout, unlock(&mut connection, &name, &token))
                    .await
                    .map_err(|_| super::error::timeout("unlock", command_timeout))?
                    .map_err(|e| from_redis("unlock", e, command_timeout))?;
            if released {
                Ok(())
            } else {
                Err(lock_error(LockError::NotHeld { name }))
            }
        })
    }

    fn release_on_drop(self: Box<Self>) {
        // Release in the background when a runtime is there; otherwise the ttl frees it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = self.release().await {
                    tracing::debug!(%error, "dropped Redis lock was not released");
                }
            });
        }
    }
}

/// Redlock across independent Redis nodes: a lock is held when a majority granted it and its
/// validity (ttl minus the time taken and a clock-drift allowance) is still positive.
#[derive(Clone)]
pub(super) struct Redlock {
    nodes: Arc<[ConnectionManager]>,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Redlock {
    pub(super) fn new(nodes: Vec<ConnectionManager>) -> Self {
        Redlock {
            nodes: nodes.into(),
        }
    }

    pub(super) fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// One round: ask every node at once, each bounded by `per_node`; whether a quorum granted
    /// the lock in time (if not, what was granted is released).
    async fn round(&self, name: &str, token: &str, ttl: Duration, per_node: Duration) -> bool {
        let started = Instant::now();
        let mut asks = tokio::task::JoinSet::new();
        for node in self.nodes.iter() {
            let (mut node, name, token) = (node.clone(), name.to_owned(), token.to_owned());
            asks.spawn(async move {
                matches!(
                    tokio::time::timeout(per_node, try_set(&mut node, &name, &token, ttl)).await,
                    Ok(Ok(true))
                )
            });
        }
        let mut granted = 0;
        while let Some(answer) = asks.join_next().await {
            granted += usize::from(matches!(answer, Ok(true)));
        }
        let drift = ttl / 100 + Duration::from_millis(2);
        let valid = ttl
            .checked_sub(started.elapsed())
            .and_then(|left| left.checked_sub(drift))
            .is_some_and(|left| !left.is_zero());
        if granted >= self.quorum() && valid {
            return true;
        }
        self.release_all(name, token, per_node).await;
        false
    }

    /// Releases on every node; how many still held it.
    async fn release_all(&self, name: &str, token: &str, per_node: Duration) -> usize {
        let mut releases = tokio::task::JoinSet::new();
        for node in self.nodes.iter() {
            let (mut node, name, token) = (node.clone(), name.to_owned(), token.to_owned());
            releases.spawn(async move {
                matches!(
                    tokio::time::timeout(per_node, unlock(&mut node, &name, &token)).await,
                    Ok(Ok(true))
                )
            });
        }
        let mut unlocked = 0;
        while let Some(answer) = releases.join_next().await {
            unlocked += usize::from(matches!(answer, Ok(true)));
        }
        unlocked
    }

    pub(super) async fn lock(
        &self,
        name: &str,
        options: LockOptions,
        command_timeout: Duration,
    ) -> Result<LockGuard, BackendError> {
        let token = owner_token();
        // Each node gets a small share of the ttl, so one slow node cannot eat the validity.
        let per_node = command_timeout
            .min(options.ttl / 10)
            .max(Duration::from_millis(5));
        acquire(name, options, || {
            let token = token.as_str();
            async move { Ok(self.round(name, token, options.ttl, per_node).await) }
        })
        .await?;
        Ok(LockGuard::new(Box::new(RedlockHeld {
            redlock: self.clone(),
            name: name.to_owned(),
            token,
            per_node,
        })))
    }
}

#[derive(Debug)]
struct RedlockHeld {
    redlock: Redlock,
    name: String,
    token: String,
    per_node: Duration,
}

impl HeldLock for RedlockHeld {
    fn release(self: Box<Self>) -> BackendFuture<'static, ()> {
        MaybeReady::boxed(async move {
            let released = self
                .redlock
                .release_all(&self.name, &self.token, self.per_node)
                .await;
            if released >= self.redlock.quorum() {
                Ok(())
            } else {
                Err(lock_error(LockError::NotHeld { name: self.name }))
            }
        })
    }

    fn release_on_drop(self: Box<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = self.release().await {
                    tracing::debug!(%error, "dropped Redlock was not released");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tokens_are_distinct_128_bit_hex() {
        let tokens: std::collections::HashSet<String> = (0..1_000).map(|_| owner_token()).collect();
        assert_eq!(tokens.len(), 1_000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
