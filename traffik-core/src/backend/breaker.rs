//! [`CircuitBreaker`]: a backend wrapper that stops calling a failing backend, so that decisions
//! fail fast (to a [`Fallback`](super::Fallback) or the on-error policy) instead of each waiting
//! on a timeout.

mod machine;
mod trip;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::Gauge;
use tokio::time::Instant;

use super::{
    Backend, BackendError, BackendFuture, BackendSettings, BreakerState, KeyValueStore, KeyedHit,
    Mode, StoreId,
};
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::telemetry::names;
use crate::{ConfigError, Decision, MaybeReady, Millis, Rate, StrategyStat};
use machine::{Health, Machine, Pass, Settings, Transition};
pub use trip::Trip;

/// Stops calling a backend that keeps failing: the circuit breaker of Nygard's *Release It!*,
/// with the reference library's `CircuitBreaker` states and defaults.
///
/// - **Closed** (the start): calls reach the backend. Failures are counted; when the [`Trip`]
///   condition is met (by default 5 failures in a row) the breaker opens.
/// - **Open**: calls fail at once with [`BackendError::CircuitOpen`], without touching the
///   backend. Nothing waits on a command timeout: a [`Fallback`](super::Fallback) decides
///   instead, or the throttle's on-error policy. After [`recovery_timeout`] (default 30 s) the
///   next call finds it half-open.
/// - **Half-open**: at most [`half_open_probes`] calls at a time (default 1) reach the backend
///   as probes; the others fail fast. [`success_threshold`] successful probes (default 2)
///   close the breaker; one failed probe opens it again for a whole recovery timeout.
///
/// **What counts as a failure:** by default the errors that mean the backend is down
/// ([`BackendError::is_outage`]: a timeout, a lost connection, a read-only replica, …). A
/// typed data error (`WrongType`), a denied permission, an unsupported rate or a busy lock
/// proves the backend answered: it counts as a success. [`failure_if`] chooses otherwise.
///
/// **Cancelled calls** (the caller's future dropped, say by an outer timeout) count as neither
/// success nor failure, and a cancelled probe frees its slot. So keep the backend's own
/// timeout (Redis's `command_timeout`) below any deadline around the request, or a hung
/// backend is never seen to fail.
///
/// **What passes through:** decisions ([`decide`](Backend::decide),
/// [`decide_all`](Backend::decide_all) and their synchronous forms), refunds and reads
/// ([`stat`](Backend::stat)). `reset` and `close` always reach the backend. The breaker does
/// not time calls itself: while it is closed, each call is bounded by the backend's own timeout
/// (Redis's `command_timeout`, 500 ms by default), so the calls that open it each wait that
/// long.
///
/// **Operators** read and drive it through [`handle`](Self::handle) ([`BreakerHandle`]:
/// `state`, `force_open`, `force_close`), which stays usable after the breaker is moved into a
/// throttle. Each change of state is logged once, at INFO, on the `traffik` target.
///
/// The breaker is per process: each instance of a fleet judges its own connection to the
/// backend.
///
/// [`recovery_timeout`]: Self::recovery_timeout
/// [`half_open_probes`]: Self::half_open_probes
/// [`success_threshold`]: Self::success_threshold
/// [`failure_if`]: Self::failure_if
///
/// ```
/// use std::time::Duration;
/// use traffik_core::backend::{BreakerState, CircuitBreaker, Trip};
/// use traffik_core::{MemoryBackend, Throttle};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let breaker = CircuitBreaker::new(MemoryBackend::new())
///     .trip(Trip::ConsecutiveFailures(5))
///     .recovery_timeout(Duration::from_secs(30))
///     .half_open_probes(1)
///     .success_threshold(2)
///     .build()?;
/// let handle = breaker.handle();
/// let throttle = Throttle::builder("breaker-doc", "2/min").backend(breaker).build()?;
///
/// assert!(throttle.hit("alice").await?.is_allowed());
/// assert_eq!(handle.state(), BreakerState::Closed);
/// handle.force_open(); // an operator takes the backend out
/// assert_eq!(handle.state(), BreakerState::Open);
/// // No fallback and the default on-error policy: the hit fails open, without a backend call.
/// assert!(throttle.hit("alice").await?.is_skipped());
/// # Ok(()) }
/// ```
pub struct CircuitBreaker<B> {
    inner: B,
    settings: Settings,
    failure_if: fn(&BackendError) -> bool,
    shared: Arc<Shared>,
}

/// What the breaker and its handles share.
struct Shared {
    /// The wrapped backend's name (in [`BackendError::CircuitOpen`]).
    backend: String,
    /// The breaker's name in logs and metrics (default: the backend's name).
    name: ArcSwap<String>,
    machine: Mutex<Machine>,
    /// `traffik_circuit_breaker_state`, registered at the first call or transition.
    state_gauge: OnceLock<Gauge>,
}

impl Shared {
    fn machine(&self) -> MutexGuard<'_, Machine> {
        // The machine is left consistent at every step: recover it from a poisoned lock.
        self.machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs a transition once at INFO, counts it and sets the state gauge.
    fn log(&self, transition: Option<Transition>) {
        let Some(Transition { from, to, forced }) = transition else {
            return;
        };
        let name = self.name.load();
        metrics::counter!(
            names::BREAKER_TRANSITIONS,
            names::BREAKER => String::clone(&name),
            names::FROM => from.as_str(),
            names::TO => to.as_str()
        )
        .increment(1);
        self.state_gauge().set(gauge_value(to));
        let (from, to) = (from.as_str(), to.as_str());
        if forced {
            tracing::info!(target: "traffik", breaker = %name, backend = %self.backend, from, to, "circuit breaker forced {to} by an operator");
        } else {
            tracing::info!(target: "traffik", breaker = %name, backend = %self.backend, from, to, "circuit breaker {to}");
        }
    }

    /// The state gauge, registered (and set to the current state) on first use.
    fn state_gauge(&self) -> &Gauge {
        self.state_gauge.get_or_init(|| {
            let gauge = metrics::gauge!(names::BREAKER_STATE, names::BREAKER => String::clone(&self.name.load()));
            gauge.set(gauge_value(self.machine().state()));
            gauge
        })
    }
}

impl<B: Backend> CircuitBreaker<B> {
    /// Wraps `inner` with the defaults: opens after 5 failures in a row, recovers after 30 s,
    /// one probe at a time, closes after 2 successful probes.
    ///
    /// The reference opens after 5 failures and closes after 2 probes too; its recovery
    /// timeout is 60 s. It is 30 s here because a rate limiter on its fallback runs
    /// per-instance limits (looser across a fleet), so coming back soon matters, while each
    /// probe of a down backend costs one call a timeout.
    #[must_use]
    pub fn new(inner: B) -> Self {
        let backend = inner.name().to_owned();
        CircuitBreaker {
            inner,
            settings: Settings {
                trip: Trip::ConsecutiveFailures(5),
                recovery_timeout: Duration::from_secs(30),
                half_open_probes: 1,
                success_threshold: 2,
            },
            failure_if: BackendError::is_outage,
            shared: Arc::new(Shared {
                name: ArcSwap::from_pointee(backend.clone()),
                backend,
                machine: Mutex::new(Machine::new()),
                state_gauge: OnceLock::new(),
            }),
        }
    }

    /// The breaker's name in logs and in the `breaker` label of its metrics (default: the
    /// wrapped backend's name, such as `redis`). Give each breaker its own name when an
    /// application has several on backends of one kind.
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        self.shared.name.store(Arc::new(name.into()));
        self
    }

    /// When the closed breaker opens (default `Trip::ConsecutiveFailures(5)`).
    #[must_use]
    pub fn trip(mut self, trip: Trip) -> Self {
        self.settings.trip = trip;
        self
    }

    /// Opens after this many failures in a row: `trip(Trip::ConsecutiveFailures(failures))`.
    #[must_use]
    pub fn failure_threshold(self, failures: u32) -> Self {
        self.trip(Trip::ConsecutiveFailures(failures))
    }

    /// How long the breaker stays open before probing the backend (default 30 s).
    #[must_use]
    pub fn recovery_timeout(mut self, timeout: Duration) -> Self {
        self.settings.recovery_timeout = timeout;
        self
    }

    /// The most probe calls in flight at once while half-open (default 1).
    #[must_use]
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.settings.half_open_probes = probes;
        self
    }

    /// Successful probes that close the half-open breaker (default 2).
    #[must_use]
    pub fn success_threshold(mut self, successes: u32) -> Self {
        self.settings.success_threshold = successes;
        self
    }

    /// Which errors count as failures (default [`BackendError::is_outage`]); the others
    /// count as successes, since the backend answered.
    #[must_use]
    pub fn failure_if(mut self, failure: fn(&BackendError) -> bool) -> Self {
        self.failure_if = failure;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidBackend`] for a failure threshold of 0, a failure ratio outside
    /// (0, 1], a zero ratio window or minimum number of calls, a recovery timeout of 0, no
    /// half-open probe, or a success threshold of 0.
    pub fn build(self) -> Result<Self, ConfigError> {
        let problem = self.settings.trip.problem().or_else(|| {
            if self.settings.recovery_timeout.is_zero() {
                Some("the recovery timeout must be above zero")
            } else if self.settings.half_open_probes == 0 {
                Some("at least one half-open probe is needed to ever close again")
            } else if self.settings.success_threshold == 0 {
                Some("the success threshold must be at least 1")
            } else {
                None
            }
        });
        match problem {
            Some(reason) => Err(ConfigError::InvalidBackend {
                backend: "circuit-breaker",
                reason: reason.to_owned(),
            }),
            None => Ok(self),
        }
    }

    /// A handle for operators and health checks: the state, and forcing it open or closed.
    #[must_use]
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The breaker's state.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.shared.machine().state()
    }

    /// The wrapped backend.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The same breaker around `f(inner)` (for [`failover`](super::failover)).
    pub(super) fn map_inner(self, f: impl FnOnce(B) -> B) -> Self {
        CircuitBreaker {
            inner: f(self.inner),
            ..self
        }
    }

    /// [`map_inner`](Self::map_inner) with a fallible `f`.
    pub(super) fn try_map_inner<E>(self, f: impl FnOnce(B) -> Result<B, E>) -> Result<Self, E> {
        Ok(CircuitBreaker {
            inner: f(self.inner)?,
            ..self
        })
    }

    /// Whether a call may reach the backend now.
    fn admit(&self) -> Result<Permit<'_, B>, BackendError> {
        let mut log = None;
        let admitted = self
            .shared
            .machine()
            .admit(&self.settings, Instant::now(), &mut log);
        if log.is_none() {
            // Registers the gauge at the first call, so a breaker that never moved reports
            // `closed` (a load afterwards).
            self.shared.state_gauge();
        }
        self.shared.log(log);
        match admitted {
            Ok(pass) => Ok(Permit {
                breaker: self,
                pass: Some(pass),
            }),
            Err(state) => Err(BackendError::CircuitOpen {
                backend: self.shared.backend.clone(),
                state,
            }),
        }
    }

    /// Runs `call` through the breaker (called only when admitted: a backend may start work as
    /// soon as its future is made).
    async fn guard<'a, T, F>(&'a self, call: impl FnOnce() -> F) -> Result<T, BackendError>
    where
        F: Future<Output = Result<T, BackendError>> + 'a,
    {
        let permit = self.admit()?;
        let result = call().await;
        permit.settle(&result);
        result
    }
}

/// Leave to call the backend. Dropped without a result (the call's future was dropped), it
/// frees its half-open probe slot.
struct Permit<'a, B: Backend> {
    breaker: &'a CircuitBreaker<B>,
    pass: Option<Pass>,
}

impl<B: Backend> Permit<'_, B> {
    fn settle<T>(mut self, result: &Result<T, BackendError>) {
        let health = match result {
            Err(error) if (self.breaker.failure_if)(error) => Health::Down,
            _ => Health::Up,
        };
        self.report(health);
    }

    fn report(&mut self, health: Health) {
        let Some(pass) = self.pass.take() else {
            return;
        };
        let shared = &self.breaker.shared;
        let transition =
            shared
                .machine()
                .record(&self.breaker.settings, Instant::now(), pass, health);
        shared.log(transition);
    }
}

impl<B: Backend> Drop for Permit<'_, B> {
    fn drop(&mut self) {
        self.report(Health::Unknown);
    }
}

impl<B: Backend> Backend for CircuitBreaker<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn settings(&self) -> &BackendSettings {
        self.inner.settings()
    }

    fn store_id(&self) -> StoreId {
        self.inner.store_id()
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(self.guard(move || self.inner.decide(key, strategy, hit, mode)))
    }

    fn decide_now(
        &self,
        key: &str,
        strategy: &dyn DynStrategy,
        hit: Hit<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, BackendError>> {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(open) => return Some(Err(open)),
        };
        // `None` (the backend cannot decide at once) drops the permit unsettled: the
        // asynchronous path asks again. A failure counts (a fallback above may answer it
        // synchronously); without one, the throttle also tries the asynchronous path, so a
        // synchronous backend that fails counts twice per hit.
        let result = self.inner.decide_now(key, strategy, hit, mode)?;
        permit.settle(&result);
        Some(result)
    }

    fn decide_all<'a>(
        &'a self,
        hits: &'a [KeyedHit<'a>],
        mode: Mode,
    ) -> BackendFuture<'a, Vec<Decision>> {
        MaybeReady::boxed(self.guard(move || self.inner.decide_all(hits, mode)))
    }

    fn decide_all_now(
        &self,
        hits: &[KeyedHit<'_>],
        mode: Mode,
    ) -> Option<Result<Vec<Decision>, BackendError>> {
        let permit = match self.admit() {
            Ok(permit) => permit,
            Err(open) => return Some(Err(open)),
        };
        let result = self.inner.decide_all_now(hits, mode)?;
        permit.settle(&result);
        Some(result)
    }

    fn check_rate(&self, strategy: &dyn DynStrategy, rate: &Rate) -> Result<(), String> {
        self.inner.check_rate(strategy, rate)
    }

    fn refund<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        charge: Hit<'a>,
        now: Millis,
    ) -> BackendFuture<'a, Refund> {
        MaybeReady::boxed(self.guard(move || self.inner.refund(key, strategy, charge, now)))
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, StrategyStat> {
        MaybeReady::boxed(self.guard(move || self.inner.stat(key, strategy, hit)))
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        self.inner.reset()
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        self.inner.close()
    }

    fn key_value(&self) -> Option<&dyn KeyValueStore> {
        self.inner.key_value()
    }
}

impl<B: Backend> fmt::Debug for CircuitBreaker<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// A handle on a [`CircuitBreaker`] for operators and health checks, cheap to clone; it stays
/// valid after the breaker is moved into a throttle.
#[derive(Clone)]
pub struct BreakerHandle {
    shared: Arc<Shared>,
}

impl BreakerHandle {
    /// The breaker's state. An open breaker whose recovery timeout has passed still reads
    /// `Open` until the next call finds it and turns it half-open.
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.shared.machine().state()
    }

    /// A snapshot of the breaker, for a health endpoint or a log line.
    #[must_use]
    pub fn info(&self) -> BreakerInfo {
        let machine = self.shared.machine();
        BreakerInfo {
            state: machine.state(),
            consecutive_failures: machine.consecutive_failures(),
            probes_in_flight: machine.probes_in_flight(),
            opened_for: machine.opened_for(Instant::now()),
            forced_open: machine.forced_open(),
        }
    }

    /// Opens the breaker and keeps it open (no probes) until [`force_close`](Self::force_close):
    /// to take a backend out by hand, say before maintenance.
    pub fn force_open(&self) {
        let transition = self.shared.machine().force_open(Instant::now());
        self.shared.log(transition);
    }

    /// Closes the breaker and forgets its counts; failures can open it again as usual.
    pub fn force_close(&self) {
        let transition = self.shared.machine().force_close(Instant::now());
        self.shared.log(transition);
    }
}

/// `traffik_circuit_breaker_state`'s value: 0 closed, 1 half-open, 2 open (by severity).
fn gauge_value(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("breaker", &*self.shared.name.load_full())
            .field("backend", &self.shared.backend)
            .field("state", &self.state())
            .finish()
    }
}

/// A snapshot of a [`CircuitBreaker`] ([`BreakerHandle::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerInfo {
    /// The state.
    pub state: BreakerState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Half-open probes in flight.
    pub probes_in_flight: u32,
    /// How long since the breaker last opened (`None` while closed).
    pub opened_for: Option<Duration>,
    /// Whether an operator forced it open.
    pub forced_open: bool,
}

#[cfg(test)]
mod tests;
