//! WebSocket load: text messages on `/ws`, each answered by an echo or a `rate_limit` frame.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::tally::{Answer, Tally};
use super::{REQUEST_TIMEOUT, sleep_to_next_window};
use crate::error::BenchError;
use crate::server::{CLIENT_HEADER, WS_PATH};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PAYLOAD: &str = "m";

async fn connect(address: SocketAddr, id: &str) -> Result<Socket, BenchError> {
    let attempt = async {
        let mut request = format!("ws://{address}{WS_PATH}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            CLIENT_HEADER,
            HeaderValue::from_str(id).map_err(|e| e.to_string())?,
        );
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(socket)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("WebSocket handshake with {address} timed out"))
        .and_then(|result| result)
        .map_err(|error| BenchError::Load(format!("WebSocket to {address}: {error}")))
}

/// The next reply: an echo (allowed) or a `rate_limit` frame (throttled).
async fn reply(socket: &mut Socket) -> Result<Answer, String> {
    loop {
        let next = tokio::time::timeout(REQUEST_TIMEOUT, socket.next())
            .await
            .map_err(|_| format!("no reply within {REQUEST_TIMEOUT:?}"))?;
        match next {
            Some(Ok(Message::Text(text))) => {
                return Ok(if text.contains("\"rate_limit\"") {
                    Answer::Throttled
                } else {
                    Answer::Allowed
                });
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("the server closed the connection: {frame:?}"));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.to_string()),
            None => return Err("the connection ended".to_owned()),
        }
    }
}

/// Sends one message and waits for its reply, counting it. `false` when the connection is
/// gone.
async fn round_trip(socket: &mut Socket, tally: &mut Tally) -> bool {
    let started = Instant::now();
    if let Err(error) = socket.send(Message::text(PAYLOAD)).await {
        tally.error(error);
        return false;
    }
    match reply(socket).await {
        Ok(answer) => {
            tally.record(answer, started.elapsed());
            true
        }
        Err(error) => {
            tally.error(error);
            false
        }
    }
}

/// `connections` connections of client `id` at once, `messages` round trips each.
pub(crate) async fn sequential(
    address: SocketAddr,
    id: &str,
    connections: u64,
    messages: u64,
) -> Result<Tally, BenchError> {
    let mut sockets = Vec::new();
    for _ in 0..connections {
        sockets.push(connect(address, id).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for _ in 0..messages {
                    if !round_trip(&mut socket, &mut tally).await {
                        break;
                    }
                }
                let _ = socket.close(None).await;
                tally.unsent(messages, "the connection was lost");
                tally
            })
        })
        .collect();
    let mut tally = Tally::gather(tasks).await;
    tally.wall = started.elapsed();
    tally.unsent(connections * messages, "connections were lost");
    Ok(tally)
}

/// `messages` messages written back to back, then every reply read.
pub(crate) async fn burst(
    address: SocketAddr,
    id: &str,
    messages: u64,
) -> Result<Tally, BenchError> {
    let mut socket = connect(address, id).await?;
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut written = 0;
    for _ in 0..messages {
        if let Err(error) = socket.feed(Message::text(PAYLOAD)).await {
            tally.error(error);
            break;
        }
        written += 1;
    }
    if let Err(error) = socket.flush().await {
        tally.error(error);
    } else {
        for _ in 0..written {
            match reply(&mut socket).await {
                // Latency of a burst message: from the start of the burst to its reply.
                Ok(answer) => tally.record(answer, started.elapsed()),
                Err(error) => {
                    tally.error(error);
                    break;
                }
            }
        }
    }
    tally.wall = started.elapsed();
    let _ = socket.close(None).await;
    tally.unsent(messages, "the connection was lost");
    Ok(tally)
}

/// `waves` rounds of `per_wave` round trips on one connection, each just after a window
/// boundary.
pub(crate) async fn waves(
    address: SocketAddr,
    id: &str,
    waves: u64,
    per_wave: u64,
    window_ms: u64,
) -> Result<Tally, BenchError> {
    let mut socket = connect(address, id).await?;
    let mut tally = Tally::default();
    let mut busy = Duration::ZERO;
    'waves: for _ in 0..waves {
        sleep_to_next_window(window_ms).await;
        let started = Instant::now();
        for _ in 0..per_wave {
            if !round_trip(&mut socket, &mut tally).await {
                break 'waves;
            }
        }
        busy += started.elapsed();
    }
    tally.wall = busy;
    let _ = socket.close(None).await;
    tally.unsent(waves * per_wave, "the connection was lost");
    Ok(tally)
}

/// Round trips for `duration` on `connections` connections, connection `n` as client
/// `{prefix}-{n}`.
pub(crate) async fn timed(
    address: SocketAddr,
    prefix: &str,
    connections: u64,
    duration: Duration,
) -> Result<Tally, BenchError> {
    let mut sockets = Vec::new();
    for n in 0..connections {
        sockets.push(connect(address, &format!("{prefix}-{n}")).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    if !round_trip(&mut socket, &mut tally).await {
                        break;
                    }
                }
                let _ = socket.close(None).await;
                tally
            })
        })
        .collect();
    let mut tally = Tally::gather(tasks).await;
    tally.wall = started.elapsed();
    Ok(tally)
}
