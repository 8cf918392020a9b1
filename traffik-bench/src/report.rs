//! [`Report`]: the results of a run, as JSON ([`serde`]), a Markdown table
//! ([`Report::markdown`]) and an SVG chart ([`chart::draw`]).

pub mod chart;
mod markdown;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::Tally;
use crate::machine::Machine;
use crate::scenario::{Expected, Scenario};
use crate::stats::{Spread, percentile};
use crate::target::Target;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// What it ran on.
    pub machine: Machine,
    /// The command that produced it.
    pub command: String,
    /// Iterations, warm-up, concurrency, duration.
    pub settings: Settings,
    /// One row per scenario and target, in scenario order.
    pub rows: Vec<Row>,
}

/// The run's settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Settings {
    /// Measured iterations per scenario and target.
    pub iterations: u32,
    /// Warm-up iterations before them, not reported.
    pub warmup: u32,
    /// Connections at once in the concurrent and timed HTTP scenarios.
    pub concurrency: u32,
    /// Seconds each timed scenario runs.
    pub duration_s: f64,
}

/// One iteration of one scenario against one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// Requests (messages) sent.
    pub sent: u64,
    /// Admitted.
    pub allowed: u64,
    /// Refused by the limiter.
    pub throttled: u64,
    /// Anything else (other statuses, timeouts, lost connections).
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// Wall time, in milliseconds (for waves: the time spent sending, not the sleeps).
    pub wall_ms: f64,
    /// Answers per second.
    pub per_second: f64,
    /// Latency percentiles, in microseconds.
    pub p50_us: f64,
    /// 95th percentile.
    pub p95_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Server CPU time per answered request, in microseconds (with `redis-server`'s for
    /// Redis targets).
    pub server_cpu_us: f64,
}

impl Measurement {
    /// Summarises a run; `server_cpu` is the CPU time the server processes used during it.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // figures for the report: approximate above 2^53 is fine
    pub fn new(mut tally: Tally, server_cpu: Duration) -> Measurement {
        tally.latencies_ns.sort_unstable();
        let micros = |p: f64| percentile(&tally.latencies_ns, p).map_or(0.0, |ns| ns as f64 / 1e3);
        let answered = tally.allowed + tally.throttled;
        Measurement {
            sent: tally.sent,
            allowed: tally.allowed,
            throttled: tally.throttled,
            errors: tally.errors,
            first_error: tally.first_error.clone(),
            wall_ms: tally.wall.as_secs_f64() * 1e3,
            per_second: tally.per_second(),
            p50_us: micros(50.0),
            p95_us: micros(95.0),
            p99_us: micros(99.0),
            server_cpu_us: if answered > 0 {
                server_cpu.as_secs_f64() * 1e6 / answered as f64
            } else {
                0.0
            },
        }
    }

    /// Whether the limiter answered exactly as it should have.
    #[must_use]
    pub fn is_exact(&self, expected: Expected) -> bool {
        self.errors == 0 && self.allowed == expected.allowed && self.throttled == expected.throttled
    }
}

/// One scenario against one target, over the iterations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// The scenario.
    pub scenario: Scenario,
    /// The target.
    pub target: Target,
    /// Each measured iteration.
    pub measurements: Vec<Measurement>,
    /// Medians with min–max, and ratios.
    pub summary: Summary,
}

/// A row's figures over its iterations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Answers per second.
    pub per_second: Option<Spread>,
    /// Latency percentiles, in microseconds.
    pub p50_us: Option<Spread>,
    /// 95th percentile.
    pub p95_us: Option<Spread>,
    /// 99th percentile.
    pub p99_us: Option<Spread>,
    /// Server CPU time per request, in microseconds.
    pub server_cpu_us: Option<Spread>,
    /// Whether every iteration admitted and refused exactly what it should have, with no
    /// errors.
    pub exact: bool,
    /// Median throughput divided by the unlimited server's in the same run (pure-overhead
    /// scenarios).
    pub vs_unlimited: Option<f64>,
    /// Median throughput divided by the Python library's on the same backend, same run.
    pub vs_python: Option<f64>,
}

impl Row {
    /// A row from its measurements (ratios are filled in by [`Report::new`]).
    #[must_use]
    pub fn new(scenario: Scenario, target: Target, measurements: Vec<Measurement>) -> Row {
        let spread = |f: fn(&Measurement) -> f64| Spread::of(measurements.iter().map(f));
        let exact = !measurements.is_empty()
            && measurements
                .iter()
                .all(|m| m.is_exact(scenario.expected(m.sent)));
        let summary = Summary {
            per_second: spread(|m| m.per_second),
            p50_us: spread(|m| m.p50_us),
            p95_us: spread(|m| m.p95_us),
            p99_us: spread(|m| m.p99_us),
            server_cpu_us: spread(|m| m.server_cpu_us),
            exact,
            vs_unlimited: None,
            vs_python: None,
        };
        Row {
            scenario,
            target,
            measurements,
            summary,
        }
    }

    fn median_rate(&self) -> Option<f64> {
        self.summary.per_second.map(|s| s.median)
    }
}

impl Report {
    /// A report of `rows`, with each row's ratios to its baselines from the same run.
    #[must_use]
    pub fn new(
        machine: Machine,
        command: String,
        settings: Settings,
        mut rows: Vec<Row>,
    ) -> Report {
        let rates: Vec<(Scenario, Target, Option<f64>)> = rows
            .iter()
            .map(|row| (row.scenario, row.target, row.median_rate()))
            .collect();
        let rate_of = |scenario: Scenario, target: Target| {
            rates
                .iter()
                .find(|(s, t, _)| *s == scenario && *t == target)
                .and_then(|(_, _, rate)| *rate)
                .filter(|rate| *rate > 0.0)
        };
        for row in &mut rows {
            let baselines = row.target.baselines();
            let (scenario, target, own) = (row.scenario, row.target, row.median_rate());
            let ratio = |baseline: Target| {
                (baseline != target)
                    .then(|| Some(own? / rate_of(scenario, baseline)?))
                    .flatten()
            };
            row.summary.vs_unlimited = scenario
                .never_refuses()
                .then(|| ratio(baselines.unlimited))
                .flatten();
            row.summary.vs_python = if target.is_python() {
                None
            } else {
                ratio(baselines.python)
            };
        }
        Report {
            machine,
            command,
            settings,
            rows,
        }
    }

    /// Every row's verdict: `true` when every limiter answered exactly in every scenario.
    #[must_use]
    pub fn all_exact(&self) -> bool {
        self.rows.iter().all(|row| row.summary.exact)
    }

    /// The report as Markdown: the machine, the command, and one table.
    #[must_use]
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }
}
