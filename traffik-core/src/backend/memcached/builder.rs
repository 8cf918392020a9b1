//! [`MemcachedBackendBuilder`]: the servers and settings of a
//! [`MemcachedBackend`](super::MemcachedBackend).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use super::error::invalid;
use super::generation::Generation;
use super::pool::pool;
use super::ring::Ring;
use super::{Inner, MemcachedBackend, Server};
use crate::backend::BackendSettings;
use crate::{ConfigError, OnError};

/// Builds a [`MemcachedBackend`] ([`MemcachedBackend::builder`]).
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MemcachedBackendBuilder {
    urls: Vec<String>,
    settings: BackendSettings,
    connections: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    cas_attempts: u32,
    generation_refresh: Duration,
}

impl MemcachedBackendBuilder {
    pub(super) fn new(urls: Vec<String>) -> Self {
        MemcachedBackendBuilder {
            urls,
            settings: BackendSettings::new(),
            connections: 16,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
            cas_attempts: 32,
            generation_refresh: Duration::from_secs(1),
        }
    }

    /// The prefix of every key (default `traffik`; letters, digits, `.`, `_`, `-`, `/`, `:`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings = self.settings.with_namespace(namespace);
        self
    }

    /// The most connections per server (default 16). Each command (a decision's read, then
    /// its write) checks one out for its round trip, so this bounds the commands in flight per
    /// server; a command waiting for a free one counts that wait in its `command_timeout`.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// How long opening a connection may take (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may take, waiting for a free connection included (default
    /// 500 ms). A decision is two or three commands (read, conditional write, and again after
    /// a lost race). Keep it below any deadline around the request.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How many times a decision reads and tries to write before giving up with
    /// [`BackendError::Contention`](crate::backend::BackendError::Contention) (default 32).
    /// Each lost attempt means another writer changed the key in between; the next one waits
    /// a random 0–16 ms first. 32 is enough for 64 concurrent writers on one key in the tests.
    pub fn cas_attempts(mut self, attempts: u32) -> Self {
        self.cas_attempts = attempts;
        self
    }

    /// How long a backend uses the namespace's generation it read before reading it again
    /// (default 1 s): another instance's [`reset`](crate::backend::Backend::reset) reaches
    /// this one within that time. `Duration::ZERO` reads it before every decision (one more
    /// round trip each).
    pub fn generation_refresh(mut self, refresh: Duration) -> Self {
        self.generation_refresh = refresh;
        self
    }

    /// The on-error policy for throttles on this backend that set none.
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings = self.settings.with_on_error(policy);
        self
    }

    /// Attaches a typed value for the protocol crates (see
    /// [`Extensions`](crate::backend::Extensions)).
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.settings = self.settings.with_extension(value);
        self
    }

    /// Checks the settings and makes the connection pools (connections open at the first
    /// command: a server that is down is a [`BackendError`](crate::backend::BackendError) of
    /// the decisions on its keys, not of the build). Call it inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBackend`] for no server, a URL that is not
    /// `memcache://host:port`, the same server twice, no connection, a zero timeout or no
    /// compare-and-swap attempt; [`ConfigError::InvalidNamespace`] for a bad namespace.
    pub fn build(self) -> Result<MemcachedBackend, ConfigError> {
        if self.urls.is_empty() {
            return Err(invalid(
                "no server: give at least one `memcache://host:port`",
            ));
        }
        if self.connections == 0 {
            return Err(invalid("at least one connection per server is needed"));
        }
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return Err(invalid(
                "the connect and command timeouts must be above zero",
            ));
        }
        if self.cas_attempts == 0 {
            return Err(invalid("at least one compare-and-swap attempt is needed"));
        }
        let settings = self.settings.resolve()?;
        let mut addresses: Vec<String> = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let address = address_of(url)?;
            if addresses.contains(&address) {
                return Err(invalid(format!("the server `{address}` is listed twice")));
            }
            addresses.push(address);
        }
        let servers = addresses
            .iter()
            .map(|address| {
                pool(
                    address,
                    self.connections,
                    self.connect_timeout,
                    self.command_timeout,
                )
                .map(|pool| Server {
                    address: address.clone(),
                    pool,
                })
                .map_err(invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MemcachedBackend {
            inner: Arc::new(Inner {
                ring: Ring::new(addresses.iter().map(String::as_str)),
                generation: Generation::new(settings.namespace(), self.generation_refresh),
                settings,
                servers,
                command_timeout: self.command_timeout,
                cas_attempts: self.cas_attempts,
                closed: AtomicBool::new(false),
                lost_races: AtomicU64::new(0),
            }),
        })
    }
}

/// `host:port` from `memcache://host:port` (the scheme `memcached://` and a bare `host:port`
/// are taken too; the port defaults to 11211).
fn address_of(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("memcache://")
        .or_else(|| url.strip_prefix("memcached://"))
        .unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) || rest.contains("://") {
        return Err(invalid(format!(
            "`{url}` is not a memcached URL: write `memcache://host:port`"
        )));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.ends_with(':') => {
            let port: u16 = port.parse().map_err(|_| {
                invalid(format!(
                    "`{url}`: the port `{port}` is not a number from 1 to 65535"
                ))
            })?;
            if port == 0 {
                return Err(invalid(format!("`{url}`: port 0")));
            }
            (host, port)
        }
        Some(_) => return Err(invalid(format!("`{url}` has no host"))),
        None => (rest, 11211),
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            address_of("memcache://127.0.0.1:11211").unwrap(),
            "127.0.0.1:11211"
        );
        assert_eq!(
            address_of("memcached://cache.internal").unwrap(),
            "cache.internal:11211"
        );
        assert_eq!(address_of("10.0.0.1:22122").unwrap(), "10.0.0.1:22122");
        assert_eq!(
            address_of("memcache://10.0.0.1:22122/").unwrap(),
            "10.0.0.1:22122"
        );
        for bad in [
            "",
            "memcache://",
            "redis://127.0.0.1:6379",
            "memcache://h:port",
            "memcache://h:0",
            "memcache://h:70000",
            "memcache://:11211",
            "memcache://user:pw@h:1",
            "memcache://h:1/db",
        ] {
            let error = address_of(bad).unwrap_err().to_string();
            assert!(error.contains("memcache"), "{bad}: {error}");
        }
    }
}
