//! [`Scenario`]: what the load client does to a target, at which rate limit, and what a
//! correct limiter must answer. Modelled on the Python library's own benchmark suite.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// HTTP requests or WebSocket messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// `GET /test` over keep-alive HTTP/1.1 connections.
    Http,
    /// Text messages on `/ws`, each answered by an echo or a `rate_limit` frame.
    WebSocket,
}

/// One scenario. Rates are the limit the target is started with; counts are fixed, except in
/// the timed (pure overhead) scenarios, which run for `--duration` under a limit that never
/// refuses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 80 sequential requests under 200/min: all admitted.
    BelowLimit,
    /// 100 sequential requests under 100/min: all admitted.
    AtLimit,
    /// 200 sequential requests under 50/min: 50 admitted, 150 refused.
    OverLimit,
    /// 500 requests from one client over `--concurrency` connections under 100/min: 100 admitted.
    HotKey,
    /// 200 clients × 5 requests, interleaved, concurrent, under 3/min each: 600 admitted.
    ManyKeys,
    /// 3 waves of 21 requests under 20/s, each starting just after a window boundary: 20 of
    /// each wave admitted, the 21st refused.
    WindowBoundary,
    /// `--duration` at `--concurrency` connections, each its own client, under a limit that
    /// never refuses: the limiter's pure overhead.
    Sustained,
    /// 50 messages on one connection under 100/min: all admitted.
    WsBelowLimit,
    /// 150 messages on one connection under 50/min: 50 admitted.
    WsOverLimit,
    /// 100 messages sent at once, then 100 replies read, under 20/min: 20 admitted.
    WsBurst,
    /// 10 connections of one client × 20 messages each, concurrently, under 100/min: 100 admitted.
    WsConcurrent,
    /// 3 waves of 11 messages under 10/s, each just after a window boundary: 10 of each admitted.
    WsWindowBoundary,
    /// Echo round trips for `--duration` on one connection, never refused: messages/s.
    WsSustained,
    /// The same on 10 connections, each its own client.
    #[value(name = "ws-sustained-10")]
    #[serde(rename = "ws-sustained-10")]
    WsSustained10,
}

/// How the load is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Shape {
    /// `requests` one after another on one connection, from one client.
    Sequential {
        /// Requests sent.
        requests: u64,
    },
    /// `clients × per_client` requests, interleaved client by client, over `--concurrency`
    /// connections at once.
    Concurrent {
        /// Distinct clients (`X-Client-ID`).
        clients: u64,
        /// Requests per client.
        per_client: u64,
    },
    /// `waves` rounds of `per_wave` sequential requests from one client, each starting just
    /// after a boundary of the rate's window.
    Waves {
        /// Rounds.
        waves: u64,
        /// Requests per round.
        per_wave: u64,
    },
    /// Requests for `--duration` over `--concurrency` connections, each its own client.
    Timed,
    /// `connections` connections of one client at once, each sending `messages` messages and
    /// waiting for each reply.
    WsSequential {
        /// Connections, all of the same client.
        connections: u64,
        /// Messages per connection.
        messages: u64,
    },
    /// `messages` messages written back to back on one connection, then every reply read.
    WsBurst {
        /// Messages.
        messages: u64,
    },
    /// Like [`Shape::Waves`], messages on one connection.
    WsWaves {
        /// Rounds.
        waves: u64,
        /// Messages per round.
        per_wave: u64,
    },
    /// Round trips for `--duration` on `connections` connections, each its own client.
    WsTimed {
        /// Connections.
        connections: u64,
    },
}

/// What a correct limiter answers: admitted and refused counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Requests (messages) that must be admitted.
    pub allowed: u64,
    /// Requests (messages) that must be refused.
    pub throttled: u64,
}

/// A limit that never refuses in any run: for pure overhead.
pub const UNLIMITED_RATE: &str = "1000000000/min";

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 14] = [
        Scenario::BelowLimit,
        Scenario::AtLimit,
        Scenario::OverLimit,
        Scenario::HotKey,
        Scenario::ManyKeys,
        Scenario::WindowBoundary,
        Scenario::Sustained,
        Scenario::WsBelowLimit,
        Scenario::WsOverLimit,
        Scenario::WsBurst,
        Scenario::WsConcurrent,
        Scenario::WsWindowBoundary,
        Scenario::WsSustained,
        Scenario::WsSustained10,
    ];

    /// The name on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scenario::BelowLimit => "below-limit",
            Scenario::AtLimit => "at-limit",
            Scenario::OverLimit => "over-limit",
            Scenario::HotKey => "hot-key",
            Scenario::ManyKeys => "many-keys",
            Scenario::WindowBoundary => "window-boundary",
            Scenario::Sustained => "sustained",
            Scenario::WsBelowLimit => "ws-below-limit",
            Scenario::WsOverLimit => "ws-over-limit",
            Scenario::WsBurst => "ws-burst",
            Scenario::WsConcurrent => "ws-concurrent",
            Scenario::WsWindowBoundary => "ws-window-boundary",
            Scenario::WsSustained => "ws-sustained",
            Scenario::WsSustained10 => "ws-sustained-10",
        }
    }

    /// The rate limit the targets are started with (the Python library's grammar and
    /// traffik's agree on these).
    #[must_use]
    pub fn rate(self) -> &'static str {
        match self {
            Scenario::BelowLimit => "200/min",
            Scenario::AtLimit
            | Scenario::HotKey
            | Scenario::WsBelowLimit
            | Scenario::WsConcurrent => "100/min",
            Scenario::OverLimit | Scenario::WsOverLimit => "50/min",
            Scenario::ManyKeys => "3/min",
            Scenario::WindowBoundary => "20/s",
            Scenario::WsBurst => "20/min",
            Scenario::WsWindowBoundary => "10/s",
            Scenario::Sustained | Scenario::WsSustained | Scenario::WsSustained10 => UNLIMITED_RATE,
        }
    }

    /// The window of [`Scenario::rate`], in milliseconds (for aligning waves).
    #[must_use]
    pub fn window_ms(self) -> u64 {
        match self {
            Scenario::WindowBoundary | Scenario::WsWindowBoundary => 1_000,
            _ => 60_000,
        }
    }

    /// How the load is sent.
    #[must_use]
    pub fn shape(self) -> Shape {
        match self {
            Scenario::BelowLimit => Shape::Sequential { requests: 80 },
            Scenario::AtLimit => Shape::Sequential { requests: 100 },
            Scenario::OverLimit => Shape::Sequential { requests: 200 },
            Scenario::HotKey => Shape::Concurrent {
                clients: 1,
                per_client: 500,
            },
            Scenario::ManyKeys => Shape::Concurrent {
                clients: 200,
                per_client: 5,
            },
            Scenario::WindowBoundary => Shape::Waves {
                waves: 3,
                per_wave: 21,
            },
            Scenario::Sustained => Shape::Timed,
            Scenario::WsBelowLimit => Shape::WsSequential {
                connections: 1,
                messages: 50,
            },
            Scenario::WsOverLimit => Shape::WsSequential {
                connections: 1,
                messages: 150,
            },
            Scenario::WsBurst => Shape::WsBurst { messages: 100 },
            Scenario::WsConcurrent => Shape::WsSequential {
                connections: 10,
                messages: 20,
            },
            Scenario::WsWindowBoundary => Shape::WsWaves {
                waves: 3,
                per_wave: 11,
            },
            Scenario::WsSustained => Shape::WsTimed { connections: 1 },
            Scenario::WsSustained10 => Shape::WsTimed { connections: 10 },
        }
    }

    /// HTTP or WebSocket.
    #[must_use]
    pub fn protocol(self) -> Protocol {
        match self.shape() {
            Shape::Sequential { .. }
            | Shape::Concurrent { .. }
            | Shape::Waves { .. }
            | Shape::Timed => Protocol::Http,
            _ => Protocol::WebSocket,
        }
    }

    /// The limit is never reached: every request must be admitted, however many were sent.
    #[must_use]
    pub fn never_refuses(self) -> bool {
        matches!(self.shape(), Shape::Timed | Shape::WsTimed { .. })
    }

    /// What a correct limiter answers when `sent` requests (messages) were sent.
    #[must_use]
    pub fn expected(self, sent: u64) -> Expected {
        let limit = self
            .rate()
            .parse::<traffik_axum::prelude::Rate>()
            .map_or(u64::MAX, |rate| rate.limit());
        let allowed = match self.shape() {
            Shape::Timed | Shape::WsTimed { .. } => sent,
            Shape::Sequential { .. } | Shape::WsBurst { .. } => sent.min(limit),
            Shape::Concurrent {
                clients,
                per_client,
            } => clients * per_client.min(limit),
            Shape::WsSequential {
                connections,
                messages,
            } => (connections * messages).min(limit),
            Shape::Waves { waves, per_wave } | Shape::WsWaves { waves, per_wave } => {
                waves * per_wave.min(limit)
            }
        };
        Expected {
            allowed: allowed.min(sent),
            throttled: sent.saturating_sub(allowed),
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_names_match_report_names() {
        for scenario in Scenario::ALL {
            let value = scenario.to_possible_value().expect("selectable");
            assert_eq!(value.get_name(), scenario.name());
        }
    }

    #[test]
    fn every_rate_parses_in_traffik() {
        for scenario in Scenario::ALL {
            let rate: traffik_axum::prelude::Rate =
                scenario.rate().parse().expect("every scenario rate parses");
            assert!(rate.limit() > 0);
            assert_eq!(rate.period_ms(), scenario.window_ms(), "{scenario}");
        }
    }

    #[test]
    fn expected_counts_follow_the_python_suite() {
        let cases = [
            (Scenario::BelowLimit, 80, 80, 0),
            (Scenario::AtLimit, 100, 100, 0),
            (Scenario::OverLimit, 200, 50, 150),
            (Scenario::HotKey, 500, 100, 400),
            (Scenario::ManyKeys, 1000, 600, 400),
            (Scenario::WindowBoundary, 63, 60, 3),
            (Scenario::Sustained, 123_456, 123_456, 0),
            (Scenario::WsBelowLimit, 50, 50, 0),
            (Scenario::WsOverLimit, 150, 50, 100),
            (Scenario::WsBurst, 100, 20, 80),
            (Scenario::WsConcurrent, 200, 100, 100),
            (Scenario::WsWindowBoundary, 33, 30, 3),
            (Scenario::WsSustained10, 999, 999, 0),
        ];
        for (scenario, sent, allowed, throttled) in cases {
            assert_eq!(
                scenario.expected(sent),
                Expected { allowed, throttled },
                "{scenario}"
            );
        }
    }
}
