//! [`ConnectionLimit`]: how many WebSocket connections one client may hold open at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use traffik_core::Identity;
use traffik_core::throttle::Identifier;

use crate::ClientIp;

/// At most `max` open connections per client. [`acquire`](Self::acquire) on the upgrade request
/// gives a [`ConnectionPermit`] to move into the socket's task; the connection counts until
/// the permit is dropped: when the task ends, also by a panic or because the client vanished.
/// Clients are told apart by an identifier over the upgrade request (default [`ClientIp`]);
/// `EXEMPTED` clients are not counted. Counts live in this process.
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::ws::{ClientUpgrade, ConnectionLimit, TooManyConnections};
///
/// let limit = ConnectionLimit::new(5);
/// let app: Router = Router::new().route(
///     "/ws",
///     get(move |upgrade: ClientUpgrade| async move {
///         let permit = limit.acquire(upgrade.parts()).await?;
///         Ok::<_, TooManyConnections>(upgrade.on_upgrade(move |socket| async move {
///             let _permit = permit; // released when this task ends
///             drop(socket);
///         }))
///     }),
/// );
/// ```
#[derive(Clone)]
pub struct ConnectionLimit {
    inner: Arc<Inner>,
}

struct Inner {
    max: usize,
    identifier: Identifier<Parts>,
    open: Mutex<HashMap<String, usize>>,
}

impl ConnectionLimit {
    /// At most `max` connections per client address.
    #[must_use]
    pub fn new(max: usize) -> Self {
        ConnectionLimit::with_identifier(max, ClientIp::new().identifier())
    }

    /// At most `max` connections per client as `identifier` tells them apart.
    #[must_use]
    pub fn with_identifier(max: usize, identifier: Identifier<Parts>) -> Self {
        ConnectionLimit {
            inner: Arc::new(Inner {
                max,
                identifier,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts one more connection for the client of `parts`, or refuses it.
    ///
    /// # Errors
    ///
    /// [`TooManyConnections`] when the client already holds the most connections allowed.
    pub async fn acquire(&self, parts: &Parts) -> Result<ConnectionPermit, TooManyConnections> {
        let key = match self.inner.identifier.call(parts).await {
            Identity::Exempted => None,
            identity => identity.key().map(std::borrow::Cow::into_owned),
        };
        let Some(key) = key else {
            return Ok(ConnectionPermit {
                inner: Arc::clone(&self.inner),
                key: None,
            });
        };
        let mut open = self.inner.lock();
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.inner.max {
            return Err(TooManyConnections {
                max: self.inner.max,
            });
        }
        *count += 1;
        Ok(ConnectionPermit {
            inner: Arc::clone(&self.inner),
            key: Some(key),
        })
    }

    /// The connections open now, over all clients.
    #[must_use]
    pub fn open(&self) -> usize {
        self.inner.lock().values().sum()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // A count is one integer: a panic elsewhere cannot leave it half-written.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ConnectionLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLimit")
            .field("max", &self.inner.max)
            .field("open", &self.open())
            .finish_non_exhaustive()
    }
}

/// One open connection, counted until dropped.
#[must_use = "the connection stops counting when the permit is dropped"]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    key: Option<String>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut open = self.inner.lock();
        if let Some(count) = open.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

// The shared map behind `inner` and the client's key are left out on purpose: whether the
// permit counts is what a reader needs.
#[allow(clippy::missing_fields_in_debug)]
impl fmt::Debug for ConnectionPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPermit")
            .field("counted", &self.key.is_some())
            .finish()
    }
}

/// The client already holds the most connections allowed: `429 Too Many Requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Too many connections: at most {max} at once.")]
pub struct TooManyConnections {
    /// The limit.
    pub max: usize,
}

impl TooManyConnections {
    /// `429 Too Many Requests`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    /// The body of the response.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }
}

impl IntoResponse for TooManyConnections {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use http::Request;

    use super::*;

    fn from(ip: [u8; 4]) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
        parts
    }

    #[tokio::test]
    async fn counts_per_client_until_each_permit_drops() {
        let limit = ConnectionLimit::new(2);
        let a = from([192, 0, 2, 1]);
        let first = limit.acquire(&a).await.unwrap();
        let second = limit.acquire(&a).await.unwrap();
        assert_eq!(
            limit.acquire(&a).await.unwrap_err(),
            TooManyConnections { max: 2 }
        );
        let other = limit.acquire(&from([192, 0, 2, 2])).await.unwrap();
        assert_eq!(limit.open(), 3);
        drop(first);
        let third = limit.acquire(&a).await.unwrap();
        drop((second, third, other));
        assert_eq!(limit.open(), 0);
        assert!(
            limit.inner.lock().is_empty(),
            "no empty entries are left behind"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_releases_its_permit() {
        let limit = ConnectionLimit::new(1);
        let permit = limit.acquire(&from([192, 0, 2, 9])).await.unwrap();
        let task = tokio::spawn(async move {
            let _permit = permit;
            panic!("the handler failed");
        });
        assert!(task.await.is_err());
        assert_eq!(limit.open(), 0);
    }

    #[tokio::test]
    async fn exempted_clients_are_not_counted() {
        let limit =
            ConnectionLimit::with_identifier(1, Identifier::new(|_| traffik_core::EXEMPTED));
        let parts = from([192, 0, 2, 3]);
        let permits = [
            limit.acquire(&parts).await.unwrap(),
            limit.acquire(&parts).await.unwrap(),
        ];
        assert_eq!(limit.open(), 0);
        drop(permits);
    }
}
