//! A custom backend: implement the key-value + lock contract for your store, wrap it in
//! `KeyValueBackend`, and every built-in strategy runs on it (read-apply-write under the
//! store's lock, with exact expiries).
//!
//! ```text
//! cargo run -p traffik-examples --example custom_store
//! ```
//!
//! The store here is a `BTreeMap` behind a mutex, standing in for `DynamoDB`, a SQL table, etc.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use traffik_core::backend::{
    BackendError, BackendFuture, HeldLock, KeyValueBackend, KeyValueStore, LockError, LockGuard,
    LockOptions,
};
use traffik_core::strategy::{SlidingWindowCounter, TokenBucket};
use traffik_core::{MaybeReady, Throttle};

/// Each key's value and when it expires.
type Entries = BTreeMap<String, (String, Option<Instant>)>;

#[derive(Debug, Default, Clone)]
struct MapStore {
    entries: Arc<Mutex<Entries>>,
}

impl MapStore {
    fn with<T>(&self, f: impl FnOnce(&mut Entries) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
        f(&mut entries)
    }
}

#[derive(Debug)]
struct MapLock {
    store: MapStore,
    name: String,
    token: String,
}

impl HeldLock for MapLock {
    fn release(self: Box<Self>) -> BackendFuture<'static, ()> {
        let released = self.store.with(|entries| match entries.get(&self.name) {
            Some((token, _)) if *token == self.token => entries.remove(&self.name).is_some(),
            _ => false,
        });
        MaybeReady::ready(if released {
            Ok(())
        } else {
            Err(BackendError::Lock {
                backend: "map".to_owned(),
                source: LockError::NotHeld {
                    name: self.name.clone(),
                },
            })
        })
    }
}

impl KeyValueStore for MapStore {
    fn name(&self) -> &'static str {
        "map"
    }

    fn get<'a>(&'a self, key: &'a str) -> BackendFuture<'a, Option<String>> {
        MaybeReady::ready(Ok(
            self.with(|entries| entries.get(key).map(|(value, _)| value.clone()))
        ))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BackendFuture<'a, ()> {
        let expires = ttl.map(|ttl| Instant::now() + ttl);
        self.with(|entries| entries.insert(key.to_owned(), (value.to_owned(), expires)));
        MaybeReady::ready(Ok(()))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BackendFuture<'a, bool> {
        MaybeReady::ready(Ok(self.with(|entries| entries.remove(key).is_some())))
    }

    fn increment<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64> {
        MaybeReady::ready(self.with(|entries| {
            let (value, expires) = entries
                .remove(key)
                .unwrap_or_else(|| ("0".to_owned(), None));
            let current: i64 = value.parse().map_err(|_| BackendError::WrongType {
                backend: "map".to_owned(),
                key: key.to_owned(),
                found: "text",
                operation: "increment",
            })?;
            let next = current.saturating_add(amount);
            entries.insert(key.to_owned(), (next.to_string(), expires));
            Ok(next)
        }))
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BackendFuture<'a, bool> {
        MaybeReady::ready(Ok(self.with(|entries| {
            entries
                .get_mut(key)
                .map(|(_, expires)| *expires = Some(Instant::now() + ttl))
                .is_some()
        })))
    }

    fn lock<'a>(&'a self, name: &'a str, options: LockOptions) -> BackendFuture<'a, LockGuard> {
        MaybeReady::boxed(async move {
            let deadline = options
                .blocking_timeout
                .map(|timeout| Instant::now() + timeout);
            let token = format!("{:?}", Instant::now());
            loop {
                let acquired = self.with(|entries| {
                    if entries.contains_key(name) {
                        return false;
                    }
                    entries.insert(
                        name.to_owned(),
                        (token.clone(), Some(Instant::now() + options.ttl)),
                    );
                    true
                });
                if acquired {
                    return Ok(LockGuard::new(Box::new(MapLock {
                        store: self.clone(),
                        name: name.to_owned(),
                        token,
                    })));
                }
                let error = match deadline {
                    _ if !options.blocking => LockError::WouldBlock {
                        name: name.to_owned(),
                    },
                    Some(deadline) if Instant::now() >= deadline => LockError::Timeout {
                        name: name.to_owned(),
                        after: options.blocking_timeout.unwrap_or_default(),
                    },
                    _ => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                };
                return Err(BackendError::Lock {
                    backend: "map".to_owned(),
                    source: error,
                });
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = MapStore::default();
    let backend = KeyValueBackend::new(store.clone(), "custom")?;

    let throttle = Throttle::builder("custom-store", "3/min")
        .strategy(TokenBucket::new())
        .backend(backend)
        .build()?;
    for n in 1..=4 {
        let decision = throttle.hit("dave").await?;
        println!(
            "token bucket on a custom store, request {n}: allowed={} remaining={}",
            decision.is_allowed(),
            decision.remaining
        );
    }

    let counter = Throttle::builder("custom-counter", "2/s")
        .strategy(SlidingWindowCounter::new())
        .backend(KeyValueBackend::new(store.clone(), "custom")?)
        .build()?;
    for n in 1..=3 {
        println!(
            "sliding window counter, request {n}: allowed={}",
            counter.hit("erin").await?.is_allowed()
        );
    }

    store.with(|entries| {
        println!("\nwhat the store holds (versioned JSON state, exact expiries):");
        for (key, (value, expires)) in entries.iter() {
            let ttl = expires.map(|at| at.saturating_duration_since(Instant::now()));
            println!("  {key} = {value}  (expires in {ttl:?})");
        }
    });
    Ok(())
}
