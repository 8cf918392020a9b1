//! The circuit breaker's state machine, on an instant passed in (so it is tested without
//! waiting): which calls may reach the backend, and how their results move the state.

use std::time::Duration;

use tokio::time::Instant;

use super::BreakerState;
use super::trip::{FailureWindow, Trip};

/// The settings the machine runs on (checked by `CircuitBreaker::build`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Settings {
    pub(super) trip: Trip,
    pub(super) recovery_timeout: Duration,
    pub(super) half_open_probes: u32,
    pub(super) success_threshold: u32,
}

/// What a call's result says about the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// The backend answered (an answer the caller cannot use still proves it is up).
    Up,
    /// The call failed in a way the breaker counts ([`CircuitBreaker::failure_if`]).
    ///
    /// [`CircuitBreaker::failure_if`]: super::CircuitBreaker::failure_if
    Down,
    /// The call did not finish (its future was dropped): it says nothing.
    Unknown,
}

/// Leave to call the backend: which state it was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pass {
    /// The machine's generation when the call was let through: a result that arrives after a
    /// state change is not counted.
    generation: u64,
    /// Whether the call is a half-open probe.
    probe: bool,
}

/// A change of state, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Transition {
    pub(super) from: BreakerState,
    pub(super) to: BreakerState,
    pub(super) forced: bool,
}

#[derive(Debug)]
pub(super) struct Machine {
    state: BreakerState,
    /// Opened by an operator: stays open until closed by one.
    forced_open: bool,
    generation: u64,
    consecutive_failures: u32,
    window: FailureWindow,
    opened_at: Option<Instant>,
    probes_in_flight: u32,
    probe_successes: u32,
}

impl Machine {
    pub(super) fn new() -> Self {
        Machine {
            state: BreakerState::Closed,
            forced_open: false,
            generation: 0,
            consecutive_failures: 0,
            window: FailureWindow::default(),
            opened_at: None,
            probes_in_flight: 0,
            probe_successes: 0,
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        self.state
    }

    pub(super) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub(super) fn probes_in_flight(&self) -> u32 {
        self.probes_in_flight
    }

    pub(super) fn forced_open(&self) -> bool {
        self.forced_open
    }

    /// How long the breaker has been open (or half-open since it opened).
    pub(super) fn opened_for(&self, now: Instant) -> Option<Duration> {
        self.opened_at.map(|at| now.saturating_duration_since(at))
    }

    /// Whether a call may reach the backend now: `Ok` with its pass, or `Err` with the state
    /// that refuses it. An open breaker whose recovery timeout has passed turns half-open here.
    pub(super) fn admit(
        &mut self,
        settings: &Settings,
        now: Instant,
        log: &mut Option<Transition>,
    ) -> Result<Pass, BreakerState> {
        if self.state == BreakerState::Open {
            let recovered = !self.forced_open
                && self
                    .opened_for(now)
                    .is_some_and(|open| open >= settings.recovery_timeout);
            if !recovered {
                return Err(BreakerState::Open);
            }
            *log = self.enter(BreakerState::HalfOpen, now, false);
        }
        match self.state {
            BreakerState::Closed => Ok(Pass {
                generation: self.generation,
                probe: false,
            }),
            BreakerState::HalfOpen if self.probes_in_flight < settings.half_open_probes.max(1) => {
                self.probes_in_flight += 1;
                Ok(Pass {
                    generation: self.generation,
                    probe: true,
                })
            }
            state => Err(state),
        }
    }

    /// Counts the result of a call let through with `pass`.
    pub(super) fn record(
        &mut self,
        settings: &Settings,
        now: Instant,
        pass: Pass,
        health: Health,
    ) -> Option<Transition> {
        if pass.generation != self.generation {
            // Let through before the last change of state: its result is about a backend the
            // breaker has already judged.
            return None;
        }
        if pass.probe {
            self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
            return match health {
                Health::Up => {
                    self.probe_successes += 1;
                    (self.probe_successes >= settings.success_threshold.max(1))
                        .then(|| self.enter(BreakerState::Closed, now, false))
                        .flatten()
                }
                Health::Down => self.enter(BreakerState::Open, now, false),
                Health::Unknown => None,
            };
        }
        if self.state != BreakerState::Closed || health == Health::Unknown {
            return None;
        }
        let failed = health == Health::Down;
        let trips = match settings.trip {
            Trip::ConsecutiveFailures(threshold) => {
                self.consecutive_failures = if failed {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                };
                // A threshold of 0 (a breaker used without `build`) opens on a failure, never
                // on a success.
                failed && self.consecutive_failures >= threshold.max(1)
            }
            Trip::FailureRatio {
                ratio,
                window,
                min_calls,
            } => {
                self.consecutive_failures = if failed {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                };
                let (calls, failure_ratio) = self.window.record(now, window, failed);
                failed && calls >= f64::from(min_calls.max(1)) && failure_ratio >= ratio
            }
        };
        if trips {
            self.enter(BreakerState::Open, now, false)
        } else {
            None
        }
    }

    /// An operator opens the breaker: it stays open until [`force_close`](Self::force_close).
    pub(super) fn force_open(&mut self, now: Instant) -> Option<Transition> {
        self.forced_open = true;
        self.enter(BreakerState::Open, now, true)
    }

    /// An operator closes the breaker; its counts start again, also when it was closed.
    pub(super) fn force_close(&mut self, now: Instant) -> Option<Transition> {
        self.forced_open = false;
        let transition = self.enter(BreakerState::Closed, now, true);
        self.consecutive_failures = 0;
        self.window.clear();
        transition
    }

    fn enter(&mut self, to: BreakerState, now: Instant, forced: bool) -> Option<Transition> {
        let from = self.state;
        if from == to {
            return None;
        }
        self.state = to;
        self.generation = self.generation.wrapping_add(1);
        self.probes_in_flight = 0;
        self.probe_successes = 0;
        match to {
            BreakerState::Open => self.opened_at = Some(now),
            BreakerState::Closed => {
                self.opened_at = None;
                self.consecutive_failures = 0;
                self.window.clear();
            }
            BreakerState::HalfOpen => {}
        }
        Some(Transition { from, to, forced })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trip: Trip) -> Settings {
        Settings {
            trip,
            recovery_timeout: Duration::from_secs(30),
            half_open_probes: 1,
            success_threshold: 2,
        }
    }

    fn call(
        machine: &mut Machine,
        settings: &Settings,
        now: Instant,
        health: Health,
    ) -> Option<Transition> {
        let mut log = None;
        let pass = machine.admit(settings, now, &mut log).expect("admitted");
        machine.record(settings, now, pass, health).or(log)
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let settings = settings(Trip::ConsecutiveFailures(3));
        let now = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &settings, now, Health::Down);
        call(&mut machine, &settings, now, Health::Down);
        call(&mut machine, &settings, now, Health::Up);
        call(&mut machine, &settings, now, Health::Down);
        call(&mut machine, &settings, now, Health::Down);
        assert_eq!(machine.state(), BreakerState::Closed);
        let opened = call(&mut machine, &settings, now, Health::Down).unwrap();
        assert_eq!(
            (opened.from, opened.to),
            (BreakerState::Closed, BreakerState::Open)
        );
        assert_eq!(
            machine.admit(&settings, now, &mut None),
            Err(BreakerState::Open)
        );
    }

    #[test]
    fn after_the_recovery_timeout_bounded_probes_close_it() {
        let settings = settings(Trip::ConsecutiveFailures(1));
        let start = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &settings, start, Health::Down);
        let later = start + Duration::from_secs(29);
        assert_eq!(
            machine.admit(&settings, later, &mut None),
            Err(BreakerState::Open)
        );

        let recovered = start + Duration::from_secs(30);
        let mut log = None;
        let probe = machine.admit(&settings, recovered, &mut log).unwrap();
        assert_eq!(log.map(|t| t.to), Some(BreakerState::HalfOpen));
        // One probe at a time: the next call fails fast.
        assert_eq!(
            machine.admit(&settings, recovered, &mut None),
            Err(BreakerState::HalfOpen)
        );
        assert_eq!(
            machine.record(&settings, recovered, probe, Health::Up),
            None
        );
        let probe = machine.admit(&settings, recovered, &mut None).unwrap();
        let closed = machine
            .record(&settings, recovered, probe, Health::Up)
            .unwrap();
        assert_eq!(
            (closed.from, closed.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert!(machine.admit(&settings, recovered, &mut None).is_ok());
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_a_whole_recovery_timeout() {
        let settings = settings(Trip::ConsecutiveFailures(1));
        let start = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &settings, start, Health::Down);
        let recovered = start + Duration::from_secs(30);
        let probe = machine.admit(&settings, recovered, &mut None).unwrap();
        let reopened = machine
            .record(&settings, recovered, probe, Health::Down)
            .unwrap();
        assert_eq!(reopened.to, BreakerState::Open);
        let soon = recovered + Duration::from_secs(10);
        assert_eq!(
            machine.admit(&settings, soon, &mut None),
            Err(BreakerState::Open)
        );
    }

    #[test]
    fn a_dropped_probe_frees_its_slot_and_stale_results_are_ignored() {
        let settings = settings(Trip::ConsecutiveFailures(1));
        let start = Instant::now();
        let mut machine = Machine::new();
        let stale = machine.admit(&settings, start, &mut None).unwrap();
        call(&mut machine, &settings, start, Health::Down);
        // A call let through while closed reports after the breaker opened: not counted.
        assert_eq!(machine.record(&settings, start, stale, Health::Up), None);
        assert_eq!(machine.state(), BreakerState::Open);

        let recovered = start + Duration::from_secs(30);
        let probe = machine.admit(&settings, recovered, &mut None).unwrap();
        assert_eq!(
            machine.record(&settings, recovered, probe, Health::Unknown),
            None
        );
        assert_eq!(machine.probes_in_flight(), 0);
        assert!(machine.admit(&settings, recovered, &mut None).is_ok());
    }

    #[test]
    fn the_failure_ratio_needs_enough_calls() {
        let settings = settings(Trip::FailureRatio {
            ratio: 0.5,
            window: Duration::from_secs(10),
            min_calls: 4,
        });
        let now = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &settings, now, Health::Down);
        call(&mut machine, &settings, now, Health::Down);
        assert_eq!(machine.state(), BreakerState::Closed, "2 calls are too few");
        call(&mut machine, &settings, now, Health::Up);
        let opened = call(&mut machine, &settings, now, Health::Down).unwrap();
        assert_eq!(opened.to, BreakerState::Open, "3 failures in 4 calls");
    }

    #[test]
    fn forced_open_stays_open_until_forced_closed() {
        let settings = settings(Trip::ConsecutiveFailures(1));
        let start = Instant::now();
        let mut machine = Machine::new();
        let forced = machine.force_open(start).unwrap();
        assert!(forced.forced);
        let much_later = start + Duration::from_secs(3_600);
        assert_eq!(
            machine.admit(&settings, much_later, &mut None),
            Err(BreakerState::Open)
        );
        assert_eq!(
            machine.force_close(much_later).map(|t| t.to),
            Some(BreakerState::Closed)
        );
        assert_eq!(
            machine.force_close(much_later),
            None,
            "no change, nothing to log"
        );
        assert!(machine.admit(&settings, much_later, &mut None).is_ok());
    }

    #[test]
    fn force_close_forgets_the_counts_also_when_closed() {
        let settings = settings(Trip::ConsecutiveFailures(3));
        let now = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &settings, now, Health::Down);
        call(&mut machine, &settings, now, Health::Down);
        assert_eq!(machine.consecutive_failures(), 2);
        assert_eq!(
            machine.force_close(now),
            None,
            "already closed: nothing to log"
        );
        assert_eq!(machine.consecutive_failures(), 0);
        call(&mut machine, &settings, now, Health::Down);
        assert_eq!(
            machine.state(),
            BreakerState::Closed,
            "the count started again"
        );
    }

    #[test]
    fn zero_settings_of_an_unbuilt_breaker_count_as_the_least_that_works() {
        let zero = Settings {
            trip: Trip::ConsecutiveFailures(0),
            recovery_timeout: Duration::from_secs(1),
            half_open_probes: 0,
            success_threshold: 0,
        };
        let start = Instant::now();
        let mut machine = Machine::new();
        call(&mut machine, &zero, start, Health::Up);
        assert_eq!(
            machine.state(),
            BreakerState::Closed,
            "a success never opens it"
        );
        call(&mut machine, &zero, start, Health::Down);
        assert_eq!(machine.state(), BreakerState::Open);
        // After the recovery timeout one probe passes and its success closes the breaker.
        let later = start + Duration::from_secs(2);
        call(&mut machine, &zero, later, Health::Up);
        assert_eq!(machine.state(), BreakerState::Closed);

        let ratio = Settings {
            trip: Trip::FailureRatio {
                ratio: 0.5,
                window: Duration::ZERO,
                min_calls: 0,
            },
            ..zero
        };
        let mut machine = Machine::new();
        call(&mut machine, &ratio, start, Health::Up);
        call(&mut machine, &ratio, start, Health::Down);
        assert_eq!(
            machine.state(),
            BreakerState::Open,
            "no division by a zero window"
        );
    }
}
