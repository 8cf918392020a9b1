//! HTTP/1.1 keep-alive load: one hyper connection per worker, requests one after another on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::tally::{Answer, Tally};
use super::{REQUEST_TIMEOUT, sleep_to_next_window};
use crate::error::BenchError;
use crate::server::{CLIENT_HEADER, TEST_PATH};

/// One keep-alive connection.
pub(crate) struct Connection {
    address: SocketAddr,
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    pub(crate) async fn open(address: SocketAddr) -> Result<Connection, String> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| format!("connecting to {address} timed out"))?
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("TCP_NODELAY: {error}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("HTTP handshake with {address}: {error}"))?;
        tokio::spawn(connection);
        Ok(Connection { address, sender })
    }

    /// `GET path` as client `id`: the status, once the body has been read.
    pub(crate) async fn get(&mut self, path: &str, id: &str) -> Result<StatusCode, String> {
        let exchange = async {
            self.sender.ready().await.map_err(|e| e.to_string())?;
            let mut request = Request::get(path)
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            request
                .headers_mut()
                .insert(HOST, HeaderValue::from_static("127.0.0.1"));
            request.headers_mut().insert(
                CLIENT_HEADER,
                HeaderValue::from_str(id).map_err(|e| e.to_string())?,
            );
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(status)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// One request of a run: counted in `tally`. After an error the connection is replaced;
    /// `false` when that fails too (the worker stops).
    async fn hit(&mut self, id: &str, tally: &mut Tally) -> bool {
        let started = Instant::now();
        match self.get(TEST_PATH, id).await {
            Ok(StatusCode::OK) => tally.record(Answer::Allowed, started.elapsed()),
            Ok(StatusCode::TOO_MANY_REQUESTS) => {
                tally.record(Answer::Throttled, started.elapsed());
            }
            Ok(other) => tally.error(format!("unexpected status {other}")),
            Err(error) => {
                tally.error(error);
                match Connection::open(self.address).await {
                    Ok(fresh) => *self = fresh,
                    Err(_) => return false,
                }
            }
        }
        true
    }
}

async fn open(address: SocketAddr) -> Result<Connection, BenchError> {
    Connection::open(address).await.map_err(BenchError::Load)
}

/// `requests` requests from client `id`, one after another on one connection.
pub(crate) async fn sequential(
    address: SocketAddr,
    id: &str,
    requests: u64,
) -> Result<Tally, BenchError> {
    let mut connection = open(address).await?;
    let mut tally = Tally::default();
    let started = Instant::now();
    for _ in 0..requests {
        if !connection.hit(id, &mut tally).await {
            break;
        }
    }
    tally.wall = started.elapsed();
    tally.unsent(
        requests,
        "the connection was lost and could not be reopened",
    );
    Ok(tally)
}

/// One request per entry of `ids`, taken in order by `concurrency` connections at once.
pub(crate) async fn concurrent(
    address: SocketAddr,
    ids: Vec<String>,
    concurrency: usize,
) -> Result<Tally, BenchError> {
    let planned = ids.len() as u64;
    let workers = concurrency.clamp(1, ids.len().max(1));
    let mut connections = Vec::with_capacity(workers);
    for _ in 0..workers {
        connections.push(open(address).await?);
    }
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let ids = Arc::clone(&ids);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if !connection.hit(id, &mut tally).await {
                        break;
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::gather(tasks).await;
    tally.wall = started.elapsed();
    tally.unsent(planned, "connections were lost and could not be reopened");
    Ok(tally)
}

/// `waves` rounds of `per_wave` requests from client `id`, each just after a window boundary.
pub(crate) async fn waves(
    address: SocketAddr,
    id: &str,
    waves: u64,
    per_wave: u64,
    window_ms: u64,
) -> Result<Tally, BenchError> {
    let mut connection = open(address).await?;
    let mut tally = Tally::default();
    let mut busy = Duration::ZERO;
    for _ in 0..waves {
        sleep_to_next_window(window_ms).await;
        let started = Instant::now();
        for _ in 0..per_wave {
            if !connection.hit(id, &mut tally).await {
                break;
            }
        }
        busy += started.elapsed();
    }
    // The rate is of the time spent sending, not of the sleeps between waves.
    tally.wall = busy;
    tally.unsent(
        waves * per_wave,
        "the connection was lost and could not be reopened",
    );
    Ok(tally)
}

/// Requests for `duration` over `concurrency` connections, connection `n` as client
/// `{prefix}-{n}`.
pub(crate) async fn timed(
    address: SocketAddr,
    prefix: &str,
    concurrency: usize,
    duration: Duration,
) -> Result<Tally, BenchError> {
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        connections.push(open(address).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(n, mut connection)| {
            let id = format!("{prefix}-{n}");
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    if !connection.hit(&id, &mut tally).await {
                        break;
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::gather(tasks).await;
    tally.wall = started.elapsed();
    Ok(tally)
}
