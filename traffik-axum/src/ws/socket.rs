//! [`ThrottledSocket`]: a WebSocket that remembers its client and its throttles' verdicts.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use http::request::Parts;
use traffik_core::Decision;

/// axum's [`WebSocket`] plus the upgrade request's parts (who the client is) and the verdict of
/// each [`MessageThrottle`](super::MessageThrottle) that counted a message on it.
///
/// It derefs to the [`WebSocket`], so `recv`, `send` and the rest work as usual;
/// [`into_inner`](Self::into_inner) gives the socket back (for `split`, say).
#[derive(Debug)]
pub struct ThrottledSocket {
    socket: WebSocket,
    parts: Parts,
    /// The last verdict per throttle: (throttle id, refused, wait).
    verdicts: Vec<(u64, bool, Option<Duration>)>,
}

impl ThrottledSocket {
    /// A socket for the client of the upgrade request `parts`.
    #[must_use]
    pub fn new(socket: WebSocket, parts: Parts) -> Self {
        ThrottledSocket {
            socket,
            parts,
            verdicts: Vec::new(),
        }
    }

    /// The upgrade request's parts.
    #[must_use]
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Whether the last hit of any throttle on this connection was refused. One throttle's
    /// pass does not clear another's refusal: each throttle's verdict stays until that
    /// throttle's next hit.
    #[must_use]
    pub fn is_throttled(&self) -> bool {
        self.verdicts.iter().any(|(_, refused, _)| *refused)
    }

    /// Whether the last hit of `throttle` on this connection was refused.
    #[must_use]
    pub fn is_throttled_by(&self, throttle: &super::MessageThrottle) -> bool {
        self.verdicts
            .iter()
            .any(|(id, refused, _)| *id == throttle.id() && *refused)
    }

    /// The longest wait among the refusals in force (`None` when nothing is refused).
    #[must_use]
    pub fn wait(&self) -> Option<Duration> {
        self.verdicts
            .iter()
            .filter(|(_, refused, _)| *refused)
            .filter_map(|(_, _, wait)| *wait)
            .max()
    }

    /// Sends a close frame with `code` (1008 is "policy violation") and `reason`.
    ///
    /// # Errors
    ///
    /// The [`axum::Error`] of a send that fails (the connection is closed or broken).
    pub async fn close_with(&mut self, code: u16, reason: &str) -> Result<(), axum::Error> {
        self.socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await
    }

    /// The socket and the upgrade request's parts.
    #[must_use]
    pub fn into_inner(self) -> (WebSocket, Parts) {
        (self.socket, self.parts)
    }

    pub(crate) fn record(&mut self, throttle: u64, decision: &Decision) {
        let verdict = (throttle, decision.is_throttled(), decision.wait());
        match self.verdicts.iter_mut().find(|(id, _, _)| *id == throttle) {
            Some(slot) => *slot = verdict,
            None => self.verdicts.push(verdict),
        }
    }
}

/// Whether the last hit of any throttle on `socket` was refused (see
/// [`ThrottledSocket::is_throttled`]).
#[must_use]
pub fn is_throttled(socket: &ThrottledSocket) -> bool {
    socket.is_throttled()
}

impl Deref for ThrottledSocket {
    type Target = WebSocket;

    fn deref(&self) -> &WebSocket {
        &self.socket
    }
}

impl DerefMut for ThrottledSocket {
    fn deref_mut(&mut self) -> &mut WebSocket {
        &mut self.socket
    }
}
