//! Redis Sentinel ([`RedisBackend::sentinel`](super::RedisBackend::sentinel)): decisions go to
//! the master the sentinels name, and follow it through a failover.
//!
//! The `redis` crate's `SentinelClient` finds the master once; a connection to it stays on that
//! address, and after a failover the old master (a replica now) answers writes with `READONLY`,
//! or is gone. So a watcher task asks the sentinels again, every check interval and at once when
//! a reply suggests a failover (`READONLY`, a dropped or refused connection) or a call was given
//! up before its reply (the command timeout against a frozen master), and when
//! they name another master it connects to it and swaps it in. Calls in flight finish on the
//! connection they started on: during the switch a few calls fail with the usual typed errors
//! (`ReadOnly`, `Unavailable`, `Timeout`, all transient), and none is retried here.
//!
//! The watcher holds the backend weakly: it ends when the backend is closed or dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::Notify;

use super::error::{NAME, RedisConnectError, from_redis, invalid_setting, timeout};
use super::target::{SentinelTarget, Timeouts, node_connection};
use crate::backend::BackendError;

/// The least time between two lookups, however often errors wake the watcher.
const MIN_GAP: Duration = Duration::from_millis(100);

/// What a failed lookup was doing, in errors and logs.
const ASKING: &str = "ask the sentinels for the master";

/// The master the sentinels name; cheap to clone (clones share the connection and watcher).
#[derive(Clone)]
pub(super) struct SentinelConnection {
    shared: Arc<Shared>,
}

struct Shared {
    /// The master in use: its address and a connection to it.
    master: ArcSwap<Master>,
    /// Wakes the watcher: a reply suggested a failover, or the backend closed.
    wake: Arc<Notify>,
    stopped: AtomicBool,
}

struct Master {
    address: ConnectionAddr,
    connection: ConnectionManager,
}

/// What the watcher needs besides the connection it watches.
struct Watch {
    sentinels: SentinelClient,
    master: String,
    interval: Duration,
    timeouts: Timeouts,
}

impl SentinelConnection {
    /// Asks the sentinels for `target`'s master (bounded by the connect timeout), connects to it
    /// and starts the watcher.
    pub(super) async fn connect(
        target: &SentinelTarget,
        timeouts: Timeouts,
    ) -> Result<Self, RedisConnectError> {
        if target.sentinels.is_empty() {
            return Err(invalid_setting("Redis Sentinel needs at least one sentinel URL").into());
        }
        if target.master.is_empty() {
            return Err(invalid_setting("Redis Sentinel needs the master's name").into());
        }
        if target.check_interval.is_zero() {
            return Err(
                invalid_setting("the sentinel check interval must be longer than zero").into(),
            );
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(invalid_setting(
                "a backend on Redis Sentinel connects inside a Tokio runtime (it watches the sentinels from a task)",
            )
            .into());
        }
        let mut sentinels = SentinelClient::build(
            target.sentinels.clone(),
            target.master.clone(),
            Some(target.master_info.clone()),
            SentinelServerType::Master,
        )
        .map_err(|error| invalid_setting(format!("invalid sentinel URL: {error}")))?;
        let client = ask(&mut sentinels, timeouts).await?;
        let address = client.get_connection_info().addr().clone();
        let connection = node_connection(client, timeouts, "connect to the master").await?;
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            master: ArcSwap::from_pointee(Master {
                address,
                connection,
            }),
            wake: Arc::clone(&wake),
            stopped: AtomicBool::new(false),
        });
        let watch = Watch {
            sentinels,
            master: target.master.clone(),
            interval: target.check_interval,
            timeouts,
        };
        tokio::spawn(watch.run(Arc::downgrade(&shared), wake));
        Ok(SentinelConnection { shared })
    }

    /// Ends the watcher (the backend was closed).
    pub(super) fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    /// The connection to the master in use now (a clone shares it).
    fn current(&self) -> ConnectionManager {
        self.shared.master.load().connection.clone()
    }

    /// Wakes the watcher when `reply` suggests the master moved.
    fn observe<T>(&self, reply: &Result<T, RedisError>) {
        if let Err(error) = reply
            && suggests_failover(error)
        {
            self.shared.wake.notify_one();
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut connection = self.current();
            let unanswered = WakeIfUnanswered::new(&self.shared.wake);
            let reply = connection.req_packed_command(cmd).await;
            unanswered.answered();
            self.observe(&reply);
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut connection = self.current();
            let unanswered = WakeIfUnanswered::new(&self.shared.wake);
            let reply = connection
                .req_packed_commands(pipeline, offset, count)
                .await;
            unanswered.answered();
            self.observe(&reply);
            reply
        })
    }

    fn get_db(&self) -> i64 {
        self.shared.master.load().connection.get_db()
    }
}

/// Wakes the watcher if a call is dropped before its reply: the backend's command timeout
/// (or the caller) gave up on a master that did not answer, which may be a frozen or
/// partitioned master the sentinels have already replaced.
struct WakeIfUnanswered<'a> {
    wake: Option<&'a Notify>,
}

impl<'a> WakeIfUnanswered<'a> {
    fn new(wake: &'a Notify) -> Self {
        WakeIfUnanswered { wake: Some(wake) }
    }

    fn answered(mut self) {
        self.wake = None;
    }
}

impl Drop for WakeIfUnanswered<'_> {
    fn drop(&mut self) {
        if let Some(wake) = self.wake {
            wake.notify_one();
        }
    }
}

impl Watch {
    /// Asks the sentinels every interval, or sooner when woken (at most once per [`MIN_GAP`]),
    /// and swaps in a connection to the master they name when it moved. Ends when the backend
    /// is closed or dropped. A failed lookup is logged at WARN once, until one succeeds.
    async fn run(mut self, shared: Weak<Shared>, wake: Arc<Notify>) {
        let mut failing = false;
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
            let Some(current) = shared.upgrade() else {
                return;
            };
            if current.stopped.load(Ordering::Acquire) {
                return;
            }
            let address = current.master.load().address.clone();
            // The backend is not kept alive while the sentinels are asked.
            drop(current);
            match self.follow(&shared, &address).await {
                Ok(()) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(
                        target: "traffik",
                        backend = NAME,
                        master = %self.master,
                        %error,
                        "cannot find the Redis master through the sentinels; decisions stay on the last one"
                    );
                }
                Err(error) => tracing::debug!(
                    target: "traffik",
                    backend = NAME,
                    master = %self.master,
                    %error,
                    "still cannot find the Redis master through the sentinels"
                ),
            }
            tokio::time::sleep(MIN_GAP).await;
        }
    }

    /// One lookup: when the sentinels name a master other than `address`, connects to it and
    /// makes it the one in use.
    async fn follow(
        &mut self,
        shared: &Weak<Shared>,
        address: &ConnectionAddr,
    ) -> Result<(), BackendError> {
        let client = ask(&mut self.sentinels, self.timeouts).await?;
        let found = client.get_connection_info().addr().clone();
        if found == *address {
            return Ok(());
        }
        let connection = node_connection(client, self.timeouts, "connect to the new master")
            .await
            .map_err(|error| match error {
                RedisConnectError::Backend(error) => error,
                other => BackendError::Unavailable {
                    backend: NAME.to_owned(),
                    operation: "connect to the new master",
                    source: Box::new(other),
                },
            })?;
        if let Some(current) = shared.upgrade() {
            current.master.store(Arc::new(Master {
                address: found.clone(),
                connection,
            }));
            tracing::info!(
                target: "traffik",
                backend = NAME,
                master = %self.master,
                from = %address,
                to = %found,
                "the sentinels named a new Redis master; decisions now go to it"
            );
        }
        Ok(())
    }
}

/// The master the sentinels name now (a client for it, its role checked), within the connect
/// timeout.
async fn ask(
    sentinels: &mut SentinelClient,
    timeouts: Timeouts,
) -> Result<redis::Client, BackendError> {
    match tokio::time::timeout(timeouts.connect, sentinels.async_get_client()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(from_redis(ASKING, error, timeouts.connect)),
        Err(_) => Err(timeout(ASKING, timeouts.connect)),
    }
}

/// Whether a failed reply may mean the master moved: a replica's `READONLY`, or a connection
/// that dropped, was refused or timed out.
fn suggests_failover(error: &RedisError) -> bool {
    error.code() == Some("READONLY")
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_io_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_and_lost_connections_suggest_a_failover() {
        let readonly = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        assert!(suggests_failover(&readonly), "{readonly:?}");
        let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(suggests_failover(&reset));
        let no_script = RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
            "No matching script.",
        ));
        assert!(!suggests_failover(&no_script));
    }
}
