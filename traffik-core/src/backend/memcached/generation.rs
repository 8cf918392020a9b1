//! The namespace's generation: memcached cannot list keys, so `reset` moves the whole namespace
//! to new keys in O(1) by bumping a number every key carries. Each backend keeps the number it
//! read for `generation_refresh` (1 s by default), so another instance's reset reaches this one
//! within that time; this instance's own reset applies at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Inner;
use super::commands::Written;
use crate::backend::BackendError;

/// The generation last read, and when.
#[derive(Debug)]
pub(super) struct Generation {
    /// `{namespace}:traffik-generation`.
    key: String,
    refresh: Duration,
    read: Mutex<Option<(u64, Instant)>>,
}

impl Generation {
    pub(super) fn new(namespace: &str, refresh: Duration) -> Self {
        Generation {
            key: format!("{namespace}:traffik-generation"),
            refresh,
            read: Mutex::new(None),
        }
    }

    fn cached(&self) -> Option<u64> {
        let read = *self
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read.and_then(|(generation, at)| (at.elapsed() < self.refresh).then_some(generation))
    }

    fn remember(&self, generation: u64) {
        *self
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((generation, Instant::now()));
    }
}

/// A fresh generation for a namespace that has none: the time in ms, so a generation key lost
/// to eviction never brings back an older generation's keys.
fn fresh() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl Inner {
    /// The namespace's generation: cached, or read (created when missing).
    async fn generation(&self) -> Result<u64, BackendError> {
        if let Some(generation) = self.generation.cached() {
            return Ok(generation);
        }
        let key = &self.generation.key;
        let server = self.ring.server_for(key);
        for _ in 0..self.cas_attempts {
            if let Some(stored) = self
                .get(server, key, "read the namespace generation")
                .await?
            {
                let generation = stored.value.trim().parse().map_err(|_| {
                    super::error::foreign(
                        key,
                        "a value that is not a generation",
                        "read the namespace generation",
                    )
                })?;
                self.generation.remember(generation);
                return Ok(generation);
            }
            let generation = fresh();
            let created = self
                .write(
                    server,
                    key,
                    &generation.to_string(),
                    "T0",
                    None,
                    "create the namespace generation",
                )
                .await?;
            if created == Written::Done {
                self.generation.remember(generation);
                return Ok(generation);
            }
        }
        Err(self.contention(key))
    }

    /// Moves the namespace to a new generation: every key of the old one is forgotten (and
    /// expires in memcached on its own). With no generation stored (none yet, evicted, or a
    /// restarted server) it writes a fresh one, with traffik's flags (`ma` with `N` would
    /// create the key without them, and every later read would refuse it).
    pub(super) async fn bump_generation(&self) -> Result<(), BackendError> {
        let key = &self.generation.key;
        let server = self.ring.server_for(key);
        for _ in 0..self.cas_attempts {
            if let Some(generation) = self.increment(server, key, "reset the namespace").await? {
                self.generation.remember(generation);
                return Ok(());
            }
            let generation = fresh();
            let created = self
                .write(
                    server,
                    key,
                    &generation.to_string(),
                    "T0",
                    None,
                    "reset the namespace",
                )
                .await?;
            if created == Written::Done {
                self.generation.remember(generation);
                return Ok(());
            }
        }
        Err(self.contention(key))
    }

    /// The server holding `key` and the key memcached stores it under
    /// ([`stored_key`](super::key::stored_key)). The server is chosen from `key` alone, so a
    /// reset moves no key to another server.
    pub(super) async fn locate(&self, key: &str) -> Result<(usize, String), BackendError> {
        let generation = self.generation().await?;
        Ok((
            self.ring.server_for(key),
            super::key::stored_key(generation, key),
        ))
    }
}
