//! The key-value contract on Redis, for custom strategies: each operation one command (or one
//! script), bounded by the command timeout.

use std::time::Duration;

use redis::Value;

use super::RedisBackend;
use super::error::invalid_reply;
use super::lock::lock_single;
use super::scripts::INCREMENT_WITH_TTL;
use crate::MaybeReady;
use crate::backend::{BackendFuture, KeyValueStore, LockGuard, LockOptions};

/// The longest expiry written: a hundred years (Redis refuses expiries past `i64::MAX` ms
/// from now; a key still expires, just late).
const LONGEST_TTL_MS: u64 = 100 * 365 * 24 * 3_600 * 1_000;

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, LONGEST_TTL_MS)
}

impl KeyValueStore for RedisBackend {
    fn name(&self) -> &str {
        super::error::NAME
    }

    fn get<'a>(&'a self, key: &'a str) -> BackendFuture<'a, Option<String>> {
        MaybeReady::boxed(self.call("get", key, move |mut connection| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut connection)
                .await
        }))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BackendFuture<'a, ()> {
        MaybeReady::boxed(self.call("set", key, move |mut connection| async move {
            let mut command = redis::cmd("SET");
            command.arg(key).arg(value);
            if let Some(ttl) = ttl {
                command.arg("PX").arg(millis(ttl));
            }
            command.query_async::<()>(&mut connection).await
        }))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BackendFuture<'a, bool> {
        MaybeReady::boxed(async move {
            let deleted: i64 = self
                .call("delete", key, |mut connection| async move {
                    redis::cmd("UNLINK")
                        .arg(key)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            Ok(deleted > 0)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, amount: i64) -> BackendFuture<'a, i64> {
        MaybeReady::boxed(
            self.call("increment", key, move |mut connection| async move {
                redis::cmd("INCRBY")
                    .arg(key)
                    .arg(amount)
                    .query_async(&mut connection)
                    .await
            }),
        )
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BackendFuture<'a, bool> {
        MaybeReady::boxed(async move {
            let set: i64 = self
                .call("expire", key, move |mut connection| async move {
                    redis::cmd("PEXPIRE")
                        .arg(key)
                        .arg(millis(ttl))
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            Ok(set == 1)
        })
    }

    fn increment_with_ttl<'a>(
        &'a self,
        key: &'a str,
        amount: i64,
        ttl: Duration,
    ) -> BackendFuture<'a, i64> {
        MaybeReady::boxed(
            self.call("increment", key, move |mut connection| async move {
                INCREMENT_WITH_TTL
                    .key(key)
                    .arg(amount)
                    .arg(millis(ttl))
                    .invoke_async(&mut connection)
                    .await
            }),
        )
    }

    fn multi_get<'a>(&'a self, keys: &'a [&'a str]) -> BackendFuture<'a, Vec<Option<String>>> {
        MaybeReady::boxed(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // One pipelined GET per key on a single node (one round trip). A cluster refuses
            // pipelines across slots (and MGET with CROSSSLOT), so there the GETs go out at
            // once, each routed to its slot's primary.
            let values: Vec<Value> = if self.is_cluster() {
                let mut gets = tokio::task::JoinSet::new();
                for (index, key) in keys.iter().enumerate() {
                    let (backend, key) = (self.clone(), (*key).to_owned());
                    gets.spawn(async move {
                        let value = backend
                            .call("multi_get", &key, |mut connection| {
                                let key = key.clone();
                                async move {
                                    redis::cmd("GET")
                                        .arg(key)
                                        .query_async::<Value>(&mut connection)
                                        .await
                                }
                            })
                            .await;
                        (index, value)
                    });
                }
                let mut values = vec![Value::Nil; keys.len()];
                while let Some(joined) = gets.join_next().await {
                    let (index, value) = joined.map_err(|error| {
                        invalid_reply("multi_get", format!("a GET task failed: {error}"))
                    })?;
                    values[index] = value?;
                }
                values
            } else {
                self.call("multi_get", "", |mut connection| async move {
                    let mut pipeline = redis::pipe();
                    for key in keys {
                        pipeline.cmd("GET").arg(*key);
                    }
                    pipeline.query_async(&mut connection).await
                })
                .await?
            };
            values
                .into_iter()
                .map(|value| match value {
                    Value::Nil => Ok(None),
                    other => redis::from_redis_value(other)
                        .map(Some)
                        .map_err(|error| invalid_reply("multi_get", error.to_string())),
                })
                .collect()
        })
    }

    fn lock<'a>(&'a self, name: &'a str, options: LockOptions) -> BackendFuture<'a, LockGuard> {
        MaybeReady::boxed(async move {
            self.ensure_open()?;
            let after = self.inner.command_timeout;
            match &self.inner.redlock {
                Some(redlock) => redlock.lock(name, options, after).await,
                None => lock_single(self.inner.connections.get(), name, options, after).await,
            }
        })
    }

    fn lock_options(&self) -> LockOptions {
        self.inner.settings.lock_options()
    }
}
