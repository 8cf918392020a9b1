//! WebSocket throttling: an echo server at `/ws` with a limit on open connections per client
//! (checked at the handshake, a real HTTP 429) and a message limit of 3 per second per client
//! (a refused message gets a `rate_limit` frame; the connection stays open).
//!
//! ```text
//! cargo run -p traffik-examples --example websocket              # the server
//! cargo run -p traffik-examples --example websocket -- client    # sends 5 messages at once
//! ```
//!
//! The client prints:
//!
//! ```text
//! > message 1   < message 1
//! > message 2   < message 2
//! > message 3   < message 3
//! > message 4   < {"error":"Too many messages","retry_after":1,"type":"rate_limit","window":"3/s"}
//! > message 5   < {"error":"Too many messages","retry_after":1,"type":"rate_limit","window":"3/s"}
//! ```
//!
//! The address comes from `TRAFFIK_ADDR` (default `127.0.0.1:3000`).

use axum::extract::State;
use axum::extract::ws::Message;
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use futures_util::{SinkExt, StreamExt};
use traffik_axum::prelude::*;
use traffik_axum::ws::{
    ClientUpgrade, ConnectionLimit, MessageThrottle, ThrottledSocket, is_throttled,
};

#[derive(Clone)]
struct Chat {
    connections: ConnectionLimit,
    messages: MessageThrottle,
    extras: Context,
}

async fn upgrade(State(chat): State<Chat>, upgrade: ClientUpgrade) -> Response {
    let permit = match chat.connections.acquire(upgrade.parts()).await {
        Ok(permit) => permit,
        Err(too_many) => return too_many.into_response(),
    };
    upgrade.on_upgrade(move |socket| async move {
        let _permit = permit; // the connection counts until this task ends
        echo(socket, chat).await;
    })
}

async fn echo(mut socket: ThrottledSocket, chat: Chat) {
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(_) = &message else { continue };
        if chat
            .messages
            .hit(&mut socket)
            .context(&chat.extras)
            .await
            .is_err()
        {
            break;
        }
        if is_throttled(&socket) {
            continue; // the client has its rate_limit frame
        }
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn client() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::var("TRAFFIK_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await?;
    for n in 1..=5 {
        let text = format!("message {n}");
        socket
            .send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
            .await?;
        match socket.next().await {
            Some(Ok(reply)) => println!("> {text}   < {reply}"),
            other => return Err(format!("the server went away: {other:?}").into()),
        }
    }
    socket.close(None).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("client") {
        return client().await;
    }
    let chat = Chat {
        connections: ConnectionLimit::new(3),
        messages: MessageThrottle::new(
            HttpThrottle::builder("websocket-example-messages", "3/s")
                .backend(MemoryBackend::new())
                .build()?,
        ),
        // Merged into every rate_limit frame.
        extras: Context::new().with("extras", serde_json::json!({ "window": "3/s" })),
    };
    let app = Router::new().route("/ws", get(upgrade)).with_state(chat);
    traffik_examples::serve("websocket", app).await?;
    Ok(())
}
