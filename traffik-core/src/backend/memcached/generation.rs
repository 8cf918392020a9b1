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

    /// The newest generation this backend has seen, however long ago.
    fn known(&self) -> Option<u64> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map(|(generation, _)| generation)
    }

    /// Keeps `generation`, unless a newer one was kept meanwhile (a read that began before
    /// this instance's own reset may end after it: generations only grow).
    fn remember(&self, generation: u64) {
        let mut read = self
            .read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newest = read.map_or(generation, |(kept, _)| kept.max(generation));
        *read = Some((newest, Instant::now()));
    }
}

/// A fresh generation for a namespace that has none and a backend that never saw one: the time
/// in ms, newer than any generation made before it (with the fleet's clocks in sync).
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
            if let Some(generation) = self
                .read_generation(server, "read the namespace generation")
                .await?
            {
                self.generation.remember(generation);
                return Ok(generation);
            }
            if let Some(generation) = self
                .create_generation(
                    server,
                    self.generation.known(),
                    "create the namespace generation",
                )
                .await?
            {
                return Ok(generation);
            }
        }
        Err(self.contention(key))
    }

    /// Moves the namespace to a new generation: every key of the old one is forgotten (and
    /// expires in memcached on its own). With no generation stored (none yet, evicted, or a
    /// restarted server) it writes a fresh one, with traffik's flags (`ma` with `N` would
    /// create the key without them, and every later read would refuse it).
    /// A value at the generation key that is not one (another application's, or garbage) is
    /// deleted and replaced: `reset` is how an operator repairs a namespace whose decisions
    /// fail with `WrongType` at the generation key.
    pub(super) async fn bump_generation(&self) -> Result<(), BackendError> {
        let key = &self.generation.key;
        let server = self.ring.server_for(key);
        for _ in 0..self.cas_attempts {
            match self.read_generation(server, "reset the namespace").await {
                Err(BackendError::WrongType { .. }) => {
                    self.delete_any(server, key, "reset the namespace").await?;
                    continue;
                }
                Err(error) => return Err(error),
                Ok(_) => {}
            }
            if let Some(generation) = self.increment(server, key, "reset the namespace").await? {
                self.generation.remember(generation);
                return Ok(());
            }
            if self
                .create_generation(
                    server,
                    // A reset moves past everything seen: never back to a known generation.
                    Some(
                        self.generation
                            .known()
                            .map_or(0, |known| known.saturating_add(1))
                            .max(fresh()),
                    ),
                    "reset the namespace",
                )
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(self.contention(key))
    }

    /// The generation stored, if any; `WrongType` for a value that is not one.
    async fn read_generation(
        &self,
        server: usize,
        operation: &'static str,
    ) -> Result<Option<u64>, BackendError> {
        let key = &self.generation.key;
        let Some(stored) = self.get(server, key, operation).await? else {
            return Ok(None);
        };
        stored
            .value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| super::error::foreign(key, "a value that is not a generation", operation))
    }

    /// Writes `generation` (never expiring, with traffik's flags) if the namespace has none,
    /// and keeps it; `None` when another writer created one first. Reading, it is the newest
    /// this backend has seen, if any: a generation key lost to a restart or an eviction comes
    /// back as it was, so the clients' state written under it since (or still there) is not
    /// reset a second time; a backend that never saw one writes a fresh one (`None` here).
    async fn create_generation(
        &self,
        server: usize,
        generation: Option<u64>,
        operation: &'static str,
    ) -> Result<Option<u64>, BackendError> {
        let generation = generation.unwrap_or_else(fresh);
        let created = self
            .write(
                server,
                &self.generation.key,
                &generation.to_string(),
                "T0",
                None,
                operation,
            )
            .await?;
        if created != Written::Done {
            return Ok(None);
        }
        self.generation.remember(generation);
        Ok(Some(generation))
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
