//! WebSocket throttling (feature `ws`): the handshake like any request, then every message.
//!
//! - **Handshake.** Put a [`Throttled<T>`](crate::Throttled) argument (or a
//!   [`ThrottleLayer`](crate::ThrottleLayer)) before the upgrade: a refused client gets a real
//!   HTTP 429 with `Retry-After`, and no upgrade happens. [`ConnectionLimit`] caps the
//!   connections one client holds open at once.
//! - **Messages.** [`ClientUpgrade`] (in place of axum's `WebSocketUpgrade`) keeps the upgrade
//!   request, so each [`ThrottledSocket`] knows its client after the upgrade: the same
//!   identifiers as HTTP (peer address and trusted proxies, API keys, …) work unchanged. A
//!   [`MessageThrottle`] counts each received message with
//!   [`hit(&mut socket)`](MessageThrottle::hit). A refused message gets the text frame
//!   `{"type":"rate_limit","error":"Too many messages","retry_after":N}` and the connection stays
//!   open; [`is_throttled(&socket)`](is_throttled) tells the loop. A [`MessageHandler`] replaces
//!   that (send other JSON, close with 1008, or stop the loop with an error), per throttle or
//!   per backend.
//!
//! ```
//! use axum::extract::ws::Message;
//! use axum::{Router, response::Response, routing::get};
//! use traffik_axum::prelude::*;
//! use traffik_axum::ws::{ClientUpgrade, MessageThrottle, ThrottledSocket, is_throttled};
//!
//! async fn echo(mut socket: ThrottledSocket, messages: MessageThrottle) {
//!     while let Some(Ok(message)) = socket.recv().await {
//!         if messages.hit(&mut socket).await.is_err() {
//!             break; // the backend failed under `raise`, or a custom handler said stop
//!         }
//!         if is_throttled(&socket) {
//!             continue; // the client got a `rate_limit` frame instead of an echo
//!         }
//!         if socket.send(message).await.is_err() {
//!             break;
//!         }
//!     }
//! }
//!
//! let messages = MessageThrottle::new(
//!     HttpThrottle::builder("doc-ws-messages", "3/s").backend(MemoryBackend::new()).build()?,
//! );
//! let app: Router = Router::new().route(
//!     "/ws",
//!     get(move |upgrade: ClientUpgrade| async move {
//!         upgrade.on_upgrade(move |socket| echo(socket, messages))
//!     }),
//! );
//! # Ok::<(), ConfigError>(())
//! ```

mod connection_limit;
mod handler;
mod hit;
mod message_throttle;
mod socket;
mod upgrade;

pub use connection_limit::{ConnectionLimit, ConnectionPermit, TooManyConnections};
pub use handler::MessageHandler;
pub use hit::{MessageHit, MessageRejection};
pub use message_throttle::MessageThrottle;
pub use socket::{ThrottledSocket, is_throttled};
pub use upgrade::ClientUpgrade;
