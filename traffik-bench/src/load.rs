//! The load client: drives a server through a [`Scenario`] and counts what it answered.
//!
//! Every loop is bounded: fixed counts, or `--duration` for the timed scenarios, and every
//! request or message has a timeout. Traffic goes only to the loopback address it is given.

pub(crate) mod http;
mod tally;
mod ws;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use tally::Tally;

use crate::error::BenchError;
use crate::scenario::{Scenario, Shape};

/// How long one request or message may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How the client sends a scenario's load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Connections at once, for the concurrent and timed HTTP scenarios.
    pub concurrency: usize,
    /// How long the timed scenarios run.
    pub duration: Duration,
    /// Put before every client id, so that no two runs share a budget.
    pub identity_prefix: String,
}

/// Runs `scenario` against the server at `address` (which must be a loopback address).
///
/// # Errors
/// When `address` is not loopback, or the server cannot be reached at all. Failures of single
/// requests are counted in the [`Tally`], not returned.
pub async fn run(
    scenario: Scenario,
    address: SocketAddr,
    options: &LoadOptions,
) -> Result<Tally, BenchError> {
    if !address.ip().is_loopback() {
        return Err(BenchError::Usage(format!(
            "the load client sends only to loopback addresses, not {address}"
        )));
    }
    let prefix = &options.identity_prefix;
    let counted = matches!(
        scenario.shape(),
        Shape::Sequential { .. }
            | Shape::Concurrent { .. }
            | Shape::WsSequential { .. }
            | Shape::WsBurst { .. }
    );
    if counted {
        start_inside_one_window(scenario.window_ms()).await;
    }
    match scenario.shape() {
        Shape::Sequential { requests } => {
            http::sequential(address, &format!("{prefix}-one"), requests).await
        }
        Shape::Concurrent {
            clients,
            per_client,
        } => {
            // Interleaved: each client's requests are spread over the whole run.
            let ids: Vec<String> = (0..per_client)
                .flat_map(|_| (0..clients).map(|client| format!("{prefix}-{client}")))
                .collect();
            http::concurrent(address, ids, options.concurrency).await
        }
        Shape::Waves { waves, per_wave } => {
            http::waves(
                address,
                &format!("{prefix}-one"),
                waves,
                per_wave,
                scenario.window_ms(),
            )
            .await
        }
        Shape::Timed => http::timed(address, prefix, options.concurrency, options.duration).await,
        Shape::WsSequential {
            connections,
            messages,
        } => ws::sequential(address, &format!("{prefix}-one"), connections, messages).await,
        Shape::WsBurst { messages } => ws::burst(address, &format!("{prefix}-one"), messages).await,
        Shape::WsWaves { waves, per_wave } => {
            ws::waves(
                address,
                &format!("{prefix}-one"),
                waves,
                per_wave,
                scenario.window_ms(),
            )
            .await
        }
        Shape::WsTimed { connections } => {
            ws::timed(address, prefix, connections, options.duration).await
        }
    }
}

/// How much of the current window a counted scenario needs left to start in it: its counts are
/// exact only within one fixed window (a run across a boundary gets a second window's budget),
/// and a counted run takes well under this, even against the slowest peer.
const COUNTED_RUN_MS: u64 = 15_000;

/// Waits for the next window (of the epoch-aligned fixed windows the limiters use) when less
/// than [`COUNTED_RUN_MS`] of the current one is left, so a counted run falls in one window.
async fn start_inside_one_window(window_ms: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    if window_ms - now % window_ms < COUNTED_RUN_MS.min(window_ms / 2) {
        sleep_to_next_window(window_ms).await;
    }
}

/// Sleeps until 100 ms after the next multiple of `window_ms` on the wall clock (the windows
/// of both libraries are aligned to the Unix epoch), so a wave falls in one window.
async fn sleep_to_next_window(window_ms: u64) {
    const MARGIN_MS: u64 = 100;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let next = (now / window_ms + 1) * window_ms + MARGIN_MS;
    tokio::time::sleep(Duration::from_millis(next - now)).await;
}
