//! [`Tally`]: what a server answered during one run of a scenario.

use std::time::Duration;

/// Counts and latencies of one run.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests (messages) sent, or meant to be sent.
    pub sent: u64,
    /// Answered with success (HTTP 200, an echo).
    pub allowed: u64,
    /// Refused by the limiter (HTTP 429, a `rate_limit` frame).
    pub throttled: u64,
    /// Anything else: another status, a timeout, a dropped connection, a request never sent.
    pub errors: u64,
    /// The first error, to show why.
    pub first_error: Option<String>,
    /// Round-trip time of each answered request, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Wall time of the run.
    pub wall: Duration,
}

/// One answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Allowed,
    Throttled,
}

impl Tally {
    pub(crate) fn record(&mut self, answer: Answer, latency: Duration) {
        self.sent += 1;
        match answer {
            Answer::Allowed => self.allowed += 1,
            Answer::Throttled => self.throttled += 1,
        }
        self.latencies_ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(crate) fn error(&mut self, error: impl std::fmt::Display) {
        self.sent += 1;
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// Requests that were planned but never sent (a worker lost its connection for good).
    pub(crate) fn unsent(&mut self, planned: u64, why: &str) {
        let missing = planned.saturating_sub(self.sent);
        if missing > 0 {
            self.sent += missing;
            self.errors += missing;
            if self.first_error.is_none() {
                self.first_error = Some(why.to_owned());
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.allowed += other.allowed;
        self.throttled += other.throttled;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_ns.extend(other.latencies_ns);
    }

    /// The tallies of load tasks, merged; a task that panicked is recorded as the first error.
    pub(crate) async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
        let mut tally = Tally::default();
        for task in tasks {
            match task.await {
                Ok(part) => tally.merge(part),
                Err(error) => tally.first_error = Some(format!("a load task failed: {error}")),
            }
        }
        tally
    }

    /// Answers per second of wall time.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // a rate for the report: approximate above 2^53 is fine
    pub fn per_second(&self) -> f64 {
        let seconds = self.wall.as_secs_f64();
        if seconds > 0.0 {
            (self.allowed + self.throttled) as f64 / seconds
        } else {
            0.0
        }
    }
}
