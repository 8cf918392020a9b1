//! The few memcached commands the backend sends (meta protocol, memcached 1.6 or later), each
//! on a pooled connection of the key's server and bounded by the command timeout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{Client, Error, MetaProtocol, Status};

use super::error::{closed, foreign, from_client, from_pool, invalid_reply, timeout};
use super::{FLAGS, Inner};
use crate::backend::BackendError;
use crate::{BoxFuture, Millis};

/// Memcached reads a ttl over 30 days as an absolute Unix time.
const THIRTY_DAYS_SECS: u64 = 30 * 24 * 60 * 60;

/// A value read with its compare-and-swap token.
pub(super) struct Stored {
    pub(super) value: String,
    pub(super) cas: u64,
}

impl Stored {
    /// The strategy state in a value written by [`state_value`], if it is still live at `now`
    /// (ms, caller's clock): memcached expires in whole seconds of its own clock, so a state
    /// past its expiry on the caller's clock is treated as gone, exactly as the in-memory
    /// backend does.
    pub(super) fn live_state(&self, now: Millis) -> Option<&str> {
        let Some((expires_at, state)) = self
            .value
            .split_once(';')
            .and_then(|(expires_at, state)| Some((expires_at.parse::<Millis>().ok()?, state)))
        else {
            tracing::warn!(
                target: "traffik",
                backend = super::NAME,
                "an unreadable stored value (not `expiry;state`) treated as absent"
            );
            return None;
        };
        (expires_at > now).then_some(state)
    }

    /// The expiry (ms, caller's clock) written with the state.
    pub(super) fn expires_at(&self) -> Option<Millis> {
        self.value.split_once(';')?.0.parse().ok()
    }

    /// The strategy state, live or not (a refund: the state itself tells whether the charge
    /// still counts, as on the in-memory backend).
    pub(super) fn state(&self) -> Option<&str> {
        self.value.split_once(';').map(|(_, state)| state)
    }
}

/// What is stored for a strategy state: `{expires_at};{state}` (ms on the caller's clock).
pub(super) fn state_value(state: &str, expires_at: Millis) -> String {
    format!("{expires_at};{state}")
}

/// How a conditional write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Done,
    /// Another writer got there first (the value changed, appeared or vanished).
    Lost,
}

impl Inner {
    /// Runs `command` on a connection of server `server`, within the command timeout (the
    /// checkout included).
    async fn on_server<T>(
        &self,
        server: usize,
        operation: &'static str,
        command: impl for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, Result<T, Error>> + Send,
    ) -> Result<T, BackendError> {
        if self.is_closed() {
            return Err(closed());
        }
        let after = self.command_timeout;
        let pool = &self.servers[server].pool;
        let work = async {
            let mut client = pool
                .get()
                .await
                .map_err(|error| from_pool(operation, error, after))?;
            command(&mut client)
                .await
                .map_err(|error| from_client(operation, error, after))
        };
        match tokio::time::timeout(after, work).await {
            Ok(result) => result
                .map_err(|error| super::error::on_server(error, &self.servers[server].address)),
            Err(_) => Err(timeout(operation, after)),
        }
    }

    /// `mg <key> v c f`: the value at `key` and its token, if any. A value without traffik's
    /// flags, or not UTF-8, is someone else's: a `WrongType` error.
    pub(super) async fn get(
        &self,
        server: usize,
        key: &str,
        operation: &'static str,
    ) -> Result<Option<Stored>, BackendError> {
        let owned = key.to_owned();
        let found = self
            .on_server(server, operation, move |client| {
                Box::pin(async move {
                    client
                        .meta_get(owned.as_bytes(), false, None, Some(&["v", "c", "f"]))
                        .await
                })
            })
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        if found.flags != Some(FLAGS) {
            return Err(foreign(key, "a value traffik did not write", operation));
        }
        // A server started with `-C` (no CAS) answers `c0`, and `ms … C0` would then store
        // whatever is there: decisions would race silently. Refuse it.
        let cas = found.cas.filter(|&cas| cas != 0).ok_or_else(|| {
            invalid_reply(
                operation,
                "no compare-and-swap token (is memcached running with CAS disabled, `-C`?)"
                    .to_owned(),
            )
        })?;
        let value = String::from_utf8(found.data.unwrap_or_default())
            .map_err(|_| foreign(key, "a value that is not text", operation))?;
        Ok(Some(Stored { value, cas }))
    }

    /// `ms <key> <len> T<ttl> F<flags> C<cas>`, or with `ME` (add) when `cas` is `None`: writes
    /// `value` only if the key still holds the value read (or still holds none).
    pub(super) async fn write(
        &self,
        server: usize,
        key: &str,
        value: &str,
        ttl: &str,
        cas: Option<u64>,
        operation: &'static str,
    ) -> Result<Written, BackendError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        let condition = cas.map_or_else(|| "ME".to_owned(), |cas| format!("C{cas}"));
        let flags = [ttl.to_owned(), format!("F{FLAGS}"), condition];
        self.on_server(server, operation, move |client| {
            Box::pin(async move {
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                match client
                    .meta_set(key.as_bytes(), value.as_str(), false, None, Some(&flags))
                    .await
                {
                    Ok(_) => Ok(Written::Done),
                    Err(Error::Protocol(Status::Exists | Status::NotStored | Status::NotFound)) => {
                        Ok(Written::Lost)
                    }
                    Err(error) => Err(error),
                }
            })
        })
        .await
    }

    /// `md <key> C<cas>`: deletes the value read, if it is still there.
    pub(super) async fn delete(
        &self,
        server: usize,
        key: &str,
        cas: u64,
        operation: &'static str,
    ) -> Result<Written, BackendError> {
        let key = key.to_owned();
        let condition = format!("C{cas}");
        self.on_server(server, operation, move |client| {
            Box::pin(async move {
                match client
                    .meta_delete(key.as_bytes(), false, None, Some(&[condition.as_str()]))
                    .await
                {
                    Ok(_) => Ok(Written::Done),
                    Err(Error::Protocol(Status::Exists | Status::NotFound)) => Ok(Written::Lost),
                    Err(error) => Err(error),
                }
            })
        })
        .await
    }

    /// `md <key>`: deletes whatever is at `key` (a value that is not traffik's, where the
    /// backend must write its own).
    pub(super) async fn delete_any(
        &self,
        server: usize,
        key: &str,
        operation: &'static str,
    ) -> Result<(), BackendError> {
        let key = key.to_owned();
        self.on_server(server, operation, move |client| {
            Box::pin(async move {
                match client.meta_delete(key.as_bytes(), false, None, None).await {
                    Ok(_) | Err(Error::Protocol(Status::NotFound)) => Ok(()),
                    Err(error) => Err(error),
                }
            })
        })
        .await
    }

    /// `ma <key> v`: adds 1 to the number at `key` and returns it; `None` when there is no
    /// number there (the key is not created: see `bump_generation`).
    pub(super) async fn increment(
        &self,
        server: usize,
        key: &str,
        operation: &'static str,
    ) -> Result<Option<u64>, BackendError> {
        let owned = key.to_owned();
        let found = self
            .on_server(server, operation, move |client| {
                Box::pin(async move {
                    match client
                        .meta_increment(owned.as_bytes(), false, None, None, Some(&["v"]))
                        .await
                    {
                        Ok(found) => Ok(Some(found)),
                        Err(Error::Protocol(Status::NotFound)) => Ok(None),
                        Err(error) => Err(error),
                    }
                })
            })
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        found
            .and_then(|found| found.data)
            .and_then(|data| String::from_utf8(data).ok())
            .and_then(|text| text.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| invalid_reply(operation, "the increment returned no number".to_owned()))
    }
}

/// The `T` flag for a state that expires at `expires_at` (ms, caller's clock) when it is `now`
/// (same clock): whole seconds, rounded up, **plus one**. Memcached's clock ticks once a second
/// and an item expires when that clock reaches its set time plus the TTL, so an item written
/// late in a tick with `T1` can vanish a moment later; one second more keeps every item at
/// least as long as its state lives (the value carries its exact expiry in ms, so living longer
/// changes nothing). Over 30 days, memcached's absolute form (a Unix time, from this machine's
/// clock), at most 2038-01-19 (memcached reads the flag as a signed 32-bit number; a later time
/// would expire the item at once).
pub(super) fn ttl_flag(expires_at: Millis, now: Millis) -> String {
    let seconds = expires_at
        .saturating_sub(now)
        .div_ceil(1_000)
        .saturating_add(1);
    if seconds <= THIRTY_DAYS_SECS {
        return format!("T{seconds}");
    }
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    format!(
        "T{}",
        unix.saturating_add(seconds).min(LATEST_ABSOLUTE_SECS)
    )
}

/// The latest absolute expiry memcached accepts (`i32::MAX` seconds after the Unix epoch).
const LATEST_ABSOLUTE_SECS: u64 = i32::MAX as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_add_a_second_and_turn_absolute_past_30_days() {
        assert_eq!(ttl_flag(1_000, 1_000), "T1", "at least one second");
        assert_eq!(
            ttl_flag(1_001, 1_000),
            "T2",
            "a part of a second, and one more"
        );
        assert_eq!(ttl_flag(2_001, 1_000), "T3");
        assert_eq!(ttl_flag(61_000, 1_000), "T61");
        let thirty_days_ms = THIRTY_DAYS_SECS * 1_000;
        assert_eq!(
            ttl_flag(thirty_days_ms - 1_000, 0),
            format!("T{THIRTY_DAYS_SECS}"),
            "30 days is still relative"
        );
        let absolute: u64 = ttl_flag(thirty_days_ms, 0)[1..].parse().unwrap();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(absolute > unix + THIRTY_DAYS_SECS, "{absolute}");
        assert!(absolute <= unix + THIRTY_DAYS_SECS + 5, "{absolute}");
        assert_eq!(
            ttl_flag(u64::MAX, 0),
            format!("T{}", i32::MAX),
            "far expiries stop at the latest memcached accepts"
        );
    }
}
