//! [`MessageHit`]: one counted message, with its per-call options, and why it can fail.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use traffik_core::throttle::Refusal;
use traffik_core::{Context, Decision, ThrottleError};

use super::handler::send_rate_limit_frame;
use super::{MessageHandler, MessageThrottle, ThrottledSocket};
use crate::scope::EntryPoint;

/// Why a message hit did not come back with a decision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageRejection {
    /// The backend failed and the throttle's on-error policy is `raise`, or no backend is
    /// configured anywhere.
    #[error(transparent)]
    Throttle(#[from] ThrottleError),
    /// The throttled handler closed the connection with `code`.
    #[error("the throttled handler closed the connection (code {code})")]
    Closed {
        /// The close code sent.
        code: u16,
    },
    /// The throttled handler asked the loop to stop.
    #[error("the throttled handler stopped the connection: {0}")]
    Handler(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One message counted by [`MessageThrottle::hit`]: set per-call options, then `.await` it.
///
/// `Ok(decision)` whether allowed or refused (a refusal has already been answered by the
/// handler; check [`is_throttled`](super::is_throttled) or the decision); `Err` when the
/// backend failed under `raise` or the handler closed the connection or stopped the loop.
#[derive(Debug)]
#[must_use = "a MessageHit does nothing until awaited"]
pub struct MessageHit<'a> {
    throttle: &'a MessageThrottle,
    socket: &'a mut ThrottledSocket,
    cost: Option<u64>,
    context: Option<&'a Context>,
    scope: Option<&'a str>,
}

impl<'a> MessageHit<'a> {
    pub(crate) fn new(throttle: &'a MessageThrottle, socket: &'a mut ThrottledSocket) -> Self {
        MessageHit {
            throttle,
            socket,
            cost: None,
            context: None,
            scope: None,
        }
    }

    /// The message's cost (by its size, say), instead of the throttle's.
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Call-time context, merged over the throttle's (its `extras` object is merged into the
    /// default `rate_limit` frame).
    pub fn context(mut self, context: &'a Context) -> Self {
        self.context = Some(context);
        self
    }

    /// A budget of its own for this scope (a chat channel, say), in place of the route's.
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    async fn run(self) -> Result<Decision, MessageRejection> {
        let MessageHit {
            throttle,
            socket,
            cost,
            context,
            scope,
        } = self;
        let http = throttle.throttle();
        let route;
        let scope = if let Some(scope) = scope {
            Some(scope)
        } else {
            route = http.scope_of(socket.parts(), EntryPoint::WebSocket);
            route.as_deref()
        };
        let options = http.options(socket.parts(), scope, cost, context, None);
        let (decision, refusal) = http
            .core()
            .hit_verdict(socket.parts(), options)
            .await?
            .into_parts();
        socket.record(throttle.id(), &decision);
        if let Some(refusal) = refusal {
            match handler_for(throttle, &refusal) {
                Some(handler) => {
                    handler
                        .call(socket, &decision, throttle, refusal.context())
                        .await?;
                }
                None => send_rate_limit_frame(socket, &decision, refusal.context()).await,
            }
        }
        Ok(decision)
    }
}

/// The throttle's own handler, else the default of the backend that refused.
fn handler_for(throttle: &MessageThrottle, refusal: &Refusal) -> Option<MessageHandler> {
    if let Some(handler) = throttle.handler() {
        return Some(handler.clone());
    }
    refusal
        .backend()
        .extensions()
        .get::<MessageHandler>()
        .cloned()
}

impl<'a> IntoFuture for MessageHit<'a> {
    type Output = Result<Decision, MessageRejection>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
