//! WebSocket echo over loopback with a real client: round trips per second on 1 and on 10
//! connections, with and without per-message throttling (a limit too high ever to refuse),
//! in one run. Each case runs `ITERATIONS` times, alternating, and reports the median with
//! min–max; the throttled/unthrottled ratio is of the medians.
//!
//! ```text
//! cargo bench -p traffik-axum --features ws --bench ws_echo
//! ```

#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::{Router, routing::get};
use futures_util::{SinkExt, StreamExt};
use traffik_axum::prelude::*;
use traffik_axum::ws::{ClientUpgrade, MessageThrottle, ThrottledSocket, is_throttled};

const ITERATIONS: usize = 7;
const ROUND_TRIPS: usize = 20_000;

async fn bare(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn throttled(mut socket: ThrottledSocket, messages: MessageThrottle) {
    while let Some(Ok(message)) = socket.recv().await {
        if messages.hit(&mut socket).await.is_err() || is_throttled(&socket) {
            break;
        }
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn server() -> SocketAddr {
    let messages = MessageThrottle::new(
        HttpThrottle::builder("bench-ws-messages", "1000000000/s")
            .backend(MemoryBackend::new())
            .build()
            .unwrap(),
    );
    let app = Router::new()
        .route(
            "/bare",
            get(|upgrade: WebSocketUpgrade| async move { upgrade.on_upgrade(bare) }),
        )
        .route(
            "/throttled",
            get(move |upgrade: ClientUpgrade| async move {
                upgrade.on_upgrade(move |socket| throttled(socket, messages))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}

/// Round trips per second over `connections` connections, `ROUND_TRIPS` in all.
async fn run(address: SocketAddr, path: &str, connections: usize) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let url = format!("ws://{address}{path}");
        clients.push(tokio_tungstenite::connect_async(url).await.unwrap().0);
    }
    let per_connection = ROUND_TRIPS / connections;
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                for n in 0..per_connection {
                    let text = n.to_string();
                    client
                        .send(tokio_tungstenite::tungstenite::Message::text(text))
                        .await
                        .unwrap();
                    match client.next().await {
                        Some(Ok(_)) => {}
                        other => panic!("echo failed: {other:?}"),
                    }
                }
                let _ = client.close(None).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (per_connection * connections) as f64 / start.elapsed().as_secs_f64()
}

fn summary(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let address = server().await;
        // Warm up both paths.
        run(address, "/bare", 1).await;
        run(address, "/throttled", 1).await;
        println!("| connections | echo | round trips/s (median) | min–max | throttled / bare |");
        println!("|---:|---|---:|---:|---:|");
        for connections in [1, 10] {
            let (mut bare, mut limited) = (Vec::new(), Vec::new());
            for _ in 0..ITERATIONS {
                bare.push(run(address, "/bare", connections).await);
                limited.push(run(address, "/throttled", connections).await);
            }
            let bare = summary(&mut bare);
            let limited = summary(&mut limited);
            println!(
                "| {connections} | bare | {:.0} | {:.0}–{:.0} | |",
                bare.0, bare.1, bare.2
            );
            println!(
                "| {connections} | throttled | {:.0} | {:.0}–{:.0} | {:.1} % |",
                limited.0,
                limited.1,
                limited.2,
                limited.0 / bare.0 * 100.0
            );
        }
    });
}
