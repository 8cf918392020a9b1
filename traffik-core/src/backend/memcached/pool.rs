//! One server's connection pool: `deadpool`'s managed pool of `async-memcached` clients.
//!
//! A client is one connection and one operation at a time, so concurrent decisions each check
//! one out. A client whose operation was cut short (a command timeout dropped it mid-reply)
//! closes its connection; the pool discards it when it comes back.

use std::time::Duration;

use async_memcached::{Client, Error};
use deadpool::Runtime;
use deadpool::managed::{self, Manager, Metrics, RecycleError, RecycleResult, Timeouts};

/// Opens connections to one server.
#[derive(Debug)]
pub(super) struct Connector {
    /// `host:port`.
    address: String,
}

impl Manager for Connector {
    type Type = Client;
    type Error = Error;

    async fn create(&self) -> Result<Client, Error> {
        Client::new(format!("tcp://{}", self.address)).await
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<Error> {
        if client.is_closed() {
            return Err(RecycleError::message(
                "the connection closed after an incomplete operation",
            ));
        }
        Ok(())
    }
}

/// A pool of connections to one server.
pub(super) type Pool = managed::Pool<Connector>;

/// A pool of at most `size` connections to `address`: a connection is opened within
/// `connect_timeout`, and a checkout waits at most `wait` for a free one.
pub(super) fn pool(
    address: &str,
    size: usize,
    connect_timeout: Duration,
    wait: Duration,
) -> Result<Pool, String> {
    Pool::builder(Connector {
        address: address.to_owned(),
    })
    .max_size(size)
    .timeouts(Timeouts {
        wait: Some(wait),
        create: Some(connect_timeout),
        recycle: Some(connect_timeout),
    })
    .runtime(Runtime::Tokio1)
    .build()
    .map_err(|error| error.to_string())
}
