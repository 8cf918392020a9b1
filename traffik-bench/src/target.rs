//! [`Target`]: the servers the harness measures, and what each of them can be asked to do.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::scenario::{Protocol, Scenario};

/// A server under test. Every target serves `GET /test` (HTTP targets) or `/ws` (WebSocket
/// targets) and an unthrottled `GET /__bench__/health`; clients are told apart by the
/// `X-Client-ID` header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// axum with no limiter: the ceiling.
    Axum,
    /// traffik's `Throttled<T>` extractor on the in-memory backend.
    TraffikExtractor,
    /// traffik's `ThrottleLayer` on the in-memory backend.
    TraffikLayer,
    /// traffik's extractor on Redis (a `redis-server` the harness starts).
    TraffikRedis,
    /// `tower_governor`'s `GovernorLayer` (GCRA, keyed by `X-Client-ID`).
    TowerGovernor,
    /// `tower-rate-limit-redis`'s `RateLimitLayer`: GCRA in one Lua script on Redis (the same
    /// `redis-server`), keyed by `X-Client-ID`.
    TowerRateLimitRedis,
    /// The Python library Traffik: FastAPI + uvicorn, `Depends(HTTPThrottle)`, in-memory.
    #[allow(clippy::doc_markdown)] // clap's `--help` text for the value, shown as written
    Python,
    /// The Python library's `ThrottleMiddleware`, in-memory.
    PythonMiddleware,
    /// The Python library on Redis (the same `redis-server`).
    PythonRedis,
    /// axum WebSocket echo with no limiter.
    WsAxum,
    /// axum WebSocket echo with traffik's per-message `MessageThrottle`, in-memory.
    WsTraffik,
    /// FastAPI WebSocket echo with the Python library's `WebSocketThrottle` per message.
    #[allow(clippy::doc_markdown)] // clap's `--help` text for the value, shown as written
    WsPython,
}

/// What a target limits with, which decides the scenarios it takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    /// No limiter: only the never-refusing (pure overhead) scenarios.
    None,
    /// A fixed window with exact counts (traffik, the Python library): every scenario.
    FixedWindow,
    /// GCRA refilling continuously (`tower_governor`, `tower-rate-limit-redis`): only the
    /// never-refusing scenarios,
    /// since the correctness scenarios' expected counts are those of a fixed window.
    Gcra,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 12] = [
        Target::Axum,
        Target::TraffikExtractor,
        Target::TraffikLayer,
        Target::TraffikRedis,
        Target::TowerGovernor,
        Target::TowerRateLimitRedis,
        Target::Python,
        Target::PythonMiddleware,
        Target::PythonRedis,
        Target::WsAxum,
        Target::WsTraffik,
        Target::WsPython,
    ];

    /// The name on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Target::Axum => "axum",
            Target::TraffikExtractor => "traffik-extractor",
            Target::TraffikLayer => "traffik-layer",
            Target::TraffikRedis => "traffik-redis",
            Target::TowerGovernor => "tower-governor",
            Target::TowerRateLimitRedis => "tower-rate-limit-redis",
            Target::Python => "python",
            Target::PythonMiddleware => "python-middleware",
            Target::PythonRedis => "python-redis",
            Target::WsAxum => "ws-axum",
            Target::WsTraffik => "ws-traffik",
            Target::WsPython => "ws-python",
        }
    }

    /// HTTP or WebSocket.
    #[must_use]
    pub fn protocol(self) -> Protocol {
        match self {
            Target::WsAxum | Target::WsTraffik | Target::WsPython => Protocol::WebSocket,
            _ => Protocol::Http,
        }
    }

    /// How the target limits.
    #[must_use]
    pub fn limiter(self) -> Limiter {
        match self {
            Target::Axum | Target::WsAxum => Limiter::None,
            Target::TowerGovernor | Target::TowerRateLimitRedis => Limiter::Gcra,
            _ => Limiter::FixedWindow,
        }
    }

    /// Served by the Python library (needs `--with-python`).
    #[must_use]
    pub fn is_python(self) -> bool {
        matches!(
            self,
            Target::Python | Target::PythonMiddleware | Target::PythonRedis | Target::WsPython
        )
    }

    /// Keeps its state in Redis (the harness starts a `redis-server`).
    #[must_use]
    pub fn uses_redis(self) -> bool {
        matches!(
            self,
            Target::TraffikRedis | Target::TowerRateLimitRedis | Target::PythonRedis
        )
    }

    /// Whether this target takes part in `scenario`: same protocol, and a limiter that the
    /// scenario's expected counts apply to.
    #[must_use]
    pub fn runs(self, scenario: Scenario) -> bool {
        self.protocol() == scenario.protocol()
            && (scenario.never_refuses() || self.limiter() == Limiter::FixedWindow)
    }

    /// The target throughput is compared with in `scenario`, if it is not itself: the
    /// unlimited server for pure-overhead scenarios, the Python library for the others.
    #[must_use]
    pub fn baselines(self) -> Baselines {
        match self.protocol() {
            Protocol::Http => Baselines {
                unlimited: Target::Axum,
                python: if self.uses_redis() {
                    Target::PythonRedis
                } else {
                    Target::Python
                },
            },
            Protocol::WebSocket => Baselines {
                unlimited: Target::WsAxum,
                python: Target::WsPython,
            },
        }
    }
}

/// The targets a target's figures are divided by in the report.
#[derive(Debug, Clone, Copy)]
pub struct Baselines {
    /// The server without a limiter, for the pure-overhead scenarios.
    pub unlimited: Target,
    /// The Python library on the same backend.
    pub python: Target,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_names_match_report_names() {
        for target in Target::ALL {
            let value = target
                .to_possible_value()
                .expect("every target is selectable");
            assert_eq!(value.get_name(), target.name());
        }
    }

    #[test]
    fn unlimited_and_gcra_targets_run_only_never_refusing_scenarios() {
        for scenario in Scenario::ALL {
            assert_eq!(Target::Axum.runs(scenario), scenario == Scenario::Sustained);
            assert_eq!(
                Target::TowerGovernor.runs(scenario),
                scenario == Scenario::Sustained
            );
            assert_eq!(
                Target::TowerRateLimitRedis.runs(scenario),
                scenario == Scenario::Sustained
            );
            assert_eq!(
                Target::TraffikExtractor.runs(scenario),
                scenario.protocol() == Protocol::Http
            );
            assert_eq!(
                Target::WsTraffik.runs(scenario),
                scenario.protocol() == Protocol::WebSocket
            );
        }
    }
}
