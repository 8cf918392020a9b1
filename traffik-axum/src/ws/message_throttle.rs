//! [`MessageThrottle`]: an [`HttpThrottle`] that counts WebSocket messages.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{MessageHandler, MessageHit, ThrottledSocket};
use crate::HttpThrottle;

/// Counts the messages of a [`ThrottledSocket`] with an [`HttpThrottle`]: the same engine,
/// rate, strategy, backend, identifier and on-error policy as HTTP, applied to the client of
/// the upgrade request. Cheap to clone; clones are the same throttle.
///
/// Messages of one client share one budget per route of the upgrade (all of its connections
/// together), unless the throttle sets its own [`Scope`](crate::Scope) or a hit names a
/// [`scope`](MessageHit::scope), such as a chat channel. The throttle's HTTP settings (headers,
/// HTTP throttled handler) do not apply to messages.
#[derive(Debug, Clone)]
pub struct MessageThrottle {
    throttle: HttpThrottle,
    handler: Option<MessageHandler>,
    id: u64,
}

impl MessageThrottle {
    /// Counts messages with `throttle`.
    pub fn new(throttle: HttpThrottle) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        MessageThrottle {
            throttle,
            handler: None,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// What a refused message gets, instead of the backend's [`MessageHandler`] or the default
    /// `rate_limit` frame.
    #[must_use]
    pub fn on_throttled(mut self, handler: MessageHandler) -> Self {
        self.handler = Some(handler);
        self
    }

    /// The throttle.
    #[must_use]
    pub fn throttle(&self) -> &HttpThrottle {
        &self.throttle
    }

    /// Counts one message on `socket`; `.cost(n)`, `.context(&c)` or `.scope(s)` first if
    /// needed, then `.await`. A refused message gets the handler's answer and
    /// [`is_throttled(&socket)`](super::is_throttled) becomes true until this throttle's next
    /// pass.
    pub fn hit<'a>(&'a self, socket: &'a mut ThrottledSocket) -> MessageHit<'a> {
        MessageHit::new(self, socket)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn handler(&self) -> Option<&MessageHandler> {
        self.handler.as_ref()
    }
}
