//! [`ClientUpgrade`]: axum's `WebSocketUpgrade` that keeps the upgrade request, so the socket
//! knows its client.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::response::Response;
use http::request::Parts;

use super::ThrottledSocket;
use crate::request_identities::RequestIdentities;

/// An extractor in place of axum's [`WebSocketUpgrade`]: it keeps the upgrade request's parts
/// (headers, peer address, route, extensions), so [`on_upgrade`](Self::on_upgrade) hands over
/// a [`ThrottledSocket`] that a [`MessageThrottle`](super::MessageThrottle) can identify.
///
/// The upgrade's own settings stay reachable through [`map`](Self::map).
#[derive(Debug)]
#[must_use]
pub struct ClientUpgrade {
    upgrade: WebSocketUpgrade,
    parts: Parts,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let upgrade = WebSocketUpgrade::from_request_parts(parts, state).await?;
        // One memo for the connection: a memoized identifier runs once for all its messages
        // (and not again if the handshake's throttles already ran it).
        RequestIdentities::ensure(&mut parts.extensions);
        Ok(ClientUpgrade {
            upgrade,
            parts: parts.clone(),
        })
    }
}

impl ClientUpgrade {
    /// The upgrade request's parts.
    #[must_use]
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Changes the upgrade's settings (`protocols`, `max_message_size`, …).
    pub fn map(mut self, f: impl FnOnce(WebSocketUpgrade) -> WebSocketUpgrade) -> Self {
        self.upgrade = f(self.upgrade);
        self
    }

    /// Finishes the handshake and runs `callback` with the socket.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(ThrottledSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let parts = self.parts;
        self.upgrade
            .on_upgrade(move |socket| callback(ThrottledSocket::new(socket, parts)))
    }
}
