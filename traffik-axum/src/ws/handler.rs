//! [`MessageHandler`]: what a refused message gets, per throttle or per backend.

use std::fmt;
use std::sync::Arc;

use axum::extract::ws::Message;
use serde_json::{Value, json};
use traffik_core::{BoxFuture, Context, Decision};

use super::{MessageRejection, MessageThrottle, ThrottledSocket};

type HandlerFn = dyn for<'a> Fn(
        &'a mut ThrottledSocket,
        &'a Decision,
        &'a MessageThrottle,
        &'a Context,
    ) -> BoxFuture<'a, Result<(), MessageRejection>>
    + Send
    + Sync;

/// Answers a refused message, in place of the default `rate_limit` frame.
///
/// It sees the socket, the refused [`Decision`], the throttle and the hit's context (static
/// context with the call's merged over it), as an HTTP [`ThrottledHandler`](crate::ThrottledHandler)
/// does. It may send its own frame, close the connection ([`MessageHandler::close`]), or return
/// an error, which [`MessageThrottle::hit`] returns so the loop can stop. Set it per throttle with
/// [`MessageThrottle::on_throttled`], or for every throttle on a backend as a backend extension
/// (`MemoryBackend::builder().extension(handler)`); the throttle's own wins.
///
/// ```
/// use axum::extract::ws::Message;
/// use traffik_axum::ws::MessageHandler;
///
/// let slow_down = MessageHandler::new(|socket, decision, throttle, _context| Box::pin(async move {
///     let text = format!("{} refused; wait {:?}", throttle.throttle().uid(), decision.wait());
///     let _ = socket.send(Message::Text(text.into())).await;
///     Ok(())
/// }));
/// let strict = MessageHandler::close(1008, "message rate exceeded");
/// # let _ = (slow_down, strict);
/// ```
#[derive(Clone)]
pub struct MessageHandler(Arc<HandlerFn>);

impl MessageHandler {
    /// A handler from an async function of the socket, the refused decision, the throttle and
    /// the hit's context.
    pub fn new<F>(handler: F) -> Self
    where
        F: for<'a> Fn(
                &'a mut ThrottledSocket,
                &'a Decision,
                &'a MessageThrottle,
                &'a Context,
            ) -> BoxFuture<'a, Result<(), MessageRejection>>
            + Send
            + Sync
            + 'static,
    {
        MessageHandler(Arc::new(handler))
    }

    /// Closes the connection with `code` (1008: policy violation) and `reason`; the hit then
    /// returns [`MessageRejection::Closed`].
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        let reason: Arc<str> = reason.into().into();
        MessageHandler::new(move |socket, _, _, _| {
            let reason = Arc::clone(&reason);
            Box::pin(async move {
                if let Err(error) = socket.close_with(code, &reason).await {
                    tracing::debug!(target: "traffik", %error, "could not send the close frame");
                }
                Err(MessageRejection::Closed { code })
            })
        })
    }

    pub(crate) async fn call(
        &self,
        socket: &mut ThrottledSocket,
        decision: &Decision,
        throttle: &MessageThrottle,
        context: &Context,
    ) -> Result<(), MessageRejection> {
        (self.0)(socket, decision, throttle, context).await
    }
}

impl fmt::Debug for MessageHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageHandler")
    }
}

/// The default answer: `{"type":"rate_limit","error":"Too many messages","retry_after":N}` with
/// the context's `extras` object merged in; the connection stays open. `N` is the wait in whole
/// seconds, rounded up, at least 1 (`null` when waiting can never help: a message costing more
/// than the limit). A failed send is logged, never an error.
pub(crate) async fn send_rate_limit_frame(
    socket: &mut ThrottledSocket,
    decision: &Decision,
    context: &Context,
) {
    let frame = rate_limit_frame(decision, context);
    if let Err(error) = socket.send(Message::Text(frame.to_string().into())).await {
        tracing::warn!(target: "traffik", %error, "could not send the rate_limit frame");
    }
}

fn rate_limit_frame(decision: &Decision, context: &Context) -> Value {
    let mut frame = json!({
        "type": "rate_limit",
        "error": "Too many messages",
        "retry_after": decision.retry_after_secs(),
    });
    if let (Some(Value::Object(extras)), Value::Object(fields)) =
        (context.get("extras"), &mut frame)
    {
        for (name, value) in extras {
            fields.insert(name.clone(), value.clone());
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_frame_rounds_the_wait_up_and_merges_extras() {
        let refused =
            Decision::throttled(3, 0, Duration::from_millis(1_001), Duration::from_secs(2));
        let context = Context::new().with("extras", json!({"channel": "lobby", "type": "kept"}));
        assert_eq!(
            rate_limit_frame(&refused, &context),
            json!({"type": "kept", "error": "Too many messages", "retry_after": 2, "channel": "lobby"})
        );
        let brief = Decision::throttled(3, 0, Duration::from_millis(5), Duration::from_secs(1));
        assert_eq!(rate_limit_frame(&brief, &Context::new())["retry_after"], 1);
    }
}
