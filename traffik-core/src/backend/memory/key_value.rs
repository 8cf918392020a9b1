//! The in-memory backend as a [`KeyValueStore`]: get, set, increment with TTLs, locks.

use std::sync::Arc;
use std::time::Duration;

use super::MemoryBackend;
use super::store::{NEVER, Value};
use crate::backend::{BackendError, BackendFuture, KeyValueStore, LockGuard, LockOptions};
use crate::{MaybeReady, Millis};

impl MemoryBackend {
    fn wrong_type(key: &str, found: &'static str, operation: &'static str) -> BackendError {
        BackendError::WrongType {
            backend: "memory".to_owned(),
            key: key.to_owned(),
            found,
            operation,
        }
    }

    fn read(&self, key: &str) -> Result<Option<String>, BackendError> {
        self.check_open()?;
        match self
            .shared
            .store
            .get_live(key, self.now(), |entry| match &entry.value {
                Value::Text(text) => Ok(text.clone()),
                Value::Integer(value) => Ok(value.to_string()),
                Value::State(_) => Err(Self::wrong_type(key, "strategy state", "get")),
            }) {
            Some(result) => result.map(Some),
            None => Ok(None),
        }
    }

    fn add(&self, key: &str, amount: i64, ttl: Option<Duration>) -> Result<i64, BackendError> {
        self.check_open()?;
        let now = self.now();
        self.shared.store.with_entry(key, now, |entry, live| {
            let current = match (&entry.value, live) {
                (_, false) => None,
                (Value::Integer(value), true) => Some(*value),
                (Value::Text(text), true) => Some(text.trim().parse::<i64>().map_err(|_| {
                    Self::wrong_type(key, "text that is not an integer", "increment")
                })?),
                (Value::State(_), true) => {
                    return Err(Self::wrong_type(key, "strategy state", "increment"));
                }
            };
            let value = current.unwrap_or(0).saturating_add(amount);
            let created = current.is_none();
            entry.value = Value::Integer(value);
            match ttl {
                Some(ttl) if created || entry.expires_at == NEVER => {
                    entry.expires_at = now.saturating_add(ttl.as_millis() as Millis)
                }
                _ if created => entry.expires_at = NEVER,
                _ => {}
            }
            Ok(value)
        })
    }
}

impl KeyValueStore for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    fn get<'a>(&'a self, key: &'a str) -> BackendFuture<'a, Option<String>> {
        MaybeReady::ready(self.read(key))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BackendFuture<'a, ()> {
        MaybeReady::ready(self.check_open().map(|()| {
            let now = self.now();
            self.shared.store.with_entry(key, now, |entry, _| {
                entry.value = Value::Text(value.to_owned());
                entry.expires_at = ttl.map_or(NEVER, |ttl| {
                    now.saturating_add((ttl.as_millis() as Millis).max(1))
                });
            });
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BackendFuture<'a, bool> {
        MaybeReady::ready(
            self.check_open()
                .map(|()| self.shared.store.remove(key, self.now())),
        )
    }

    fn increment<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64> {
        MaybeReady::ready(self.add(key, amount, None))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BackendFuture<'a, bool> {
        MaybeReady::ready(self.check_open().map(|()| {
            let now = self.now();
            let expires_at = now.saturating_add((ttl.as_millis() as Millis).max(1));
            self.shared
                .store
                .update_live(key, now, |entry| entry.expires_at = expires_at)
                .is_some()
        }))
    }

    fn increment_with_ttl<'a>(
        &'a self,
        key: &'a str,
        amount: i64,
        ttl: Duration,
    ) -> BackendFuture<'a, i64> {
        MaybeReady::ready(self.add(key, amount, Some(ttl)))
    }

    fn multi_get<'a>(&'a self, keys: &'a [&'a str]) -> BackendFuture<'a, Vec<Option<String>>> {
        MaybeReady::ready(keys.iter().map(|key| self.read(key)).collect())
    }

    fn lock_options(&self) -> LockOptions {
        self.settings.lock_options()
    }

    fn lock<'a>(&'a self, name: &'a str, options: LockOptions) -> BackendFuture<'a, LockGuard> {
        if let Err(error) = self.check_open() {
            return MaybeReady::ready(Err(error));
        }
        let locks = Arc::clone(&self.shared.locks);
        MaybeReady::boxed(async move {
            locks
                .acquire(name, options)
                .await
                .map_err(|source| BackendError::Lock {
                    backend: "memory".to_owned(),
                    source,
                })
        })
    }
}
