//! [`Throttle`]: a named limit (rate + strategy + backend + cost + identity) and its `hit`,
//! `check` and `stat`.
//!
//! ```
//! use traffik_core::{MemoryBackend, Throttle, throttle::HitOptions};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let throttle = Throttle::builder("throttle-module-doc", "3/min").backend(MemoryBackend::new()).build()?;
//! let future = throttle.hit_with("alice", HitOptions::new().cost(2)); // a HitFuture: lazy
//! assert_eq!(future.await?.remaining, 1);
//! # Ok(()) }
//! ```

mod all;
mod async_path;
mod builder;
mod config;
mod config_cell;
mod failure;
mod future;
mod identity_memo;
mod lane_path;
mod options;
mod refund;
mod reservation;
mod resolve;
mod rules;
mod select;
mod source;
mod sync_path;
mod update;
mod verdict;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::backend::{Extensions, Mode};
use crate::headers::Headers;
use crate::registry::{Control, ThrottleRegistry};
use crate::rule::Rule;
use crate::strategy::Hit;
use crate::telemetry::{DecisionMetrics, DecisionSpan, LatencyHistograms};
use crate::{
    Clock, ConfigError, Decision, Identity, Millis, Rate, SkipReason, StatMetadata, StrategyStat,
    ThrottleError,
};
use async_path::with_min_wait;
use config::StrategyRef;
use config_cell::ConfigCell;
use resolve::Cost;
use rules::RuleCell;

pub use crate::on_error::{DEFAULT_ERROR_WAIT, ErrorHandler, ErrorInfo, OnError};
pub use all::{Limit, hit_all, hit_all_verdicts, try_hit_all_now, try_hit_all_verdicts_now};
pub use builder::{FromThrottle, ThrottleBuilder};
pub(crate) use config::Config;
pub use future::HitFuture;
pub use identity_memo::IdentityMemo;
pub use options::HitOptions;
pub use reservation::{Reservation, reserve};
pub use source::{CostFn, Identifier, IntoRate, RateFn};
pub(crate) use source::{CostSource, RateSource};
pub use verdict::{Refusal, Report, Verdict};

/// A named rate limit.
///
/// A throttle is a uid (unique in its [`ThrottleRegistry`]), a rate (fixed or per hit), a
/// strategy, a backend (its own, one passed per hit, or the registry's default), a cost (fixed
/// or per hit), an identifier (who a hit belongs to), static context, a minimum wait and an
/// on-error policy. `C` is the connection type the identifier and functions look at; for
/// `Throttle<str>` the connection *is* the client's key.
///
/// Handles are cheap to clone and share one configuration; `update_*` swap it atomically
/// without losing stored state.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::{Context, MemoryBackend, Throttle, throttle::HitOptions};
/// use traffik_core::strategy::SlidingWindowLog;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let uploads = Throttle::builder("uploads", "10/min")
///     .strategy(SlidingWindowLog::new())
///     .backend(MemoryBackend::new())
///     .min_wait(Duration::from_secs(5))
///     .build()?;
///
/// // A 6 MB upload costs 6 units.
/// let decision = uploads.hit_with("alice", HitOptions::new().cost(6)).await?;
/// assert_eq!(decision.remaining, 4);
///
/// // Pre-check without consuming, then read the state.
/// assert!(uploads.check_with("alice", HitOptions::new().cost(5)).await?.is_throttled());
/// let stat = uploads.stat("alice").await?.expect("not exempted");
/// assert_eq!(stat.hits_remaining, 4);
/// # Ok(()) }
/// ```
pub struct Throttle<C: ?Sized + 'static = str> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: ?Sized + 'static> {
    uid: Box<str>,
    extensions: Extensions,
    config: ConfigCell<C>,
    disabled: AtomicBool,
    shadow_mode: AtomicBool,
    registry: ThrottleRegistry,
    clock: Arc<dyn Clock>,
    last_error_log: AtomicU64,
    /// The decision counters, registered at the first decision.
    metrics: DecisionMetrics,
    /// Backend latency, by backend name.
    latency: LatencyHistograms,
    /// The throttle's rules and its registry's.
    rules: RuleCell<C>,
}

/// What a throttle holds beside its swappable configuration.
pub(crate) struct Extras<C: ?Sized + 'static> {
    pub(crate) registry: ThrottleRegistry,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) headers: Headers,
    pub(crate) extensions: Extensions,
    pub(crate) shadow_mode: bool,
    pub(crate) rules: Vec<Rule<C>>,
}

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    pub(crate) fn from_config(
        uid: String,
        config: Config<C>,
        extras: Extras<C>,
    ) -> Result<Self, ConfigError> {
        let Extras {
            registry,
            clock,
            headers,
            extensions,
            shadow_mode,
            rules,
        } = extras;
        let mut config = config;
        config.headers = headers;
        config.prepare(&uid)?;
        if config.backend.is_none()
            && let Some(default) = registry.default_backend().as_ref()
        {
            // The registry's default backend decides this throttle's hits: check it now too.
            config.check_rate_on(&uid, default.0.as_ref())?;
        }
        let inner = Arc::new(Inner {
            uid: uid.into_boxed_str(),
            extensions,
            config: ConfigCell::new(config),
            disabled: AtomicBool::new(false),
            shadow_mode: AtomicBool::new(shadow_mode),
            registry,
            clock,
            last_error_log: AtomicU64::new(0),
            metrics: DecisionMetrics::default(),
            latency: LatencyHistograms::default(),
            rules: RuleCell::new(rules),
        });
        let control: Arc<dyn Control> = inner.clone();
        inner
            .registry
            .register(&inner.uid, Arc::downgrade(&control))?;
        Ok(Throttle { inner })
    }

    /// Whether the identifier of its hits is [memoized](Identifier::memoized) when they go to
    /// the backend `backend` returns (a per-hit backend, as [`HitOptions::backend`]; `None`:
    /// the throttle's own, else the registry's default), a backend's named identifier
    /// included: an adapter gives the hits an [`IdentityMemo`] per connection only then.
    ///
    /// `backend` is only called when the answer depends on it (the throttle has no backend and
    /// no identifier of its own), so a lookup behind it costs nothing on the common path.
    #[must_use]
    #[inline]
    pub fn memoizes_identity<'b>(
        &self,
        backend: impl FnOnce() -> Option<&'b Arc<dyn crate::backend::Backend>>,
    ) -> bool {
        let config = self.inner.config.load();
        if config.identifier.is_memoized() {
            return true;
        }
        if config.explicit_identifier || config.backend.is_some() {
            return false;
        }
        let mut options = HitOptions::new();
        options.backend = backend();
        self.identifier_of(&config, &options).is_memoized()
    }

    /// The throttle whose shared state `any` is, if its connection type is `C`.
    pub(crate) fn from_any(any: Arc<dyn std::any::Any + Send + Sync>) -> Option<Self> {
        any.downcast::<Inner<C>>()
            .ok()
            .map(|inner| Throttle { inner })
    }

    /// The time on the throttle's clock (ms since the Unix epoch): what a hit uses unless its
    /// options set [`now`](HitOptions::now). An adapter that may refund a charge reads it, hits
    /// with it, and refunds with the same time ([`refund_with`](Self::refund_with)).
    #[must_use]
    pub fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// The time of a hit: the options' own, else the throttle's clock.
    #[inline]
    pub(super) fn now_of(&self, options: &HitOptions<'_>) -> Millis {
        match options.now {
            Some(now) => now,
            None => self.inner.clock.now(),
        }
    }

    /// The throttle's uid.
    #[must_use]
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The fixed rate (`None` when chosen per hit).
    #[must_use]
    pub fn rate(&self) -> Option<Rate> {
        self.inner.config.load().rate.fixed()
    }

    /// The rate-limit headers adapters write for this throttle's decisions
    /// ([`ThrottleBuilder::headers`]).
    #[must_use]
    pub fn headers(&self) -> impl std::ops::Deref<Target = Headers> + '_ {
        config_cell::HeadersRef(self.inner.config.load())
    }

    /// The adapters' typed settings ([`ThrottleBuilder::extension`]).
    #[must_use]
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// The registry the throttle belongs to.
    #[must_use]
    pub fn registry(&self) -> &ThrottleRegistry {
        &self.inner.registry
    }

    /// Counts one hit of `connection` (at the throttle's cost).
    pub fn hit<'a>(&'a self, connection: &'a C) -> HitFuture<'a, C> {
        self.hit_with(connection, HitOptions::new())
    }

    /// Counts one hit with per-call options (cost, context, scope, backend).
    pub fn hit_with<'a>(&'a self, connection: &'a C, options: HitOptions<'a>) -> HitFuture<'a, C> {
        HitFuture::new(self, connection, options, Mode::Consume)
    }

    /// What a hit would get now, consuming nothing.
    pub fn check<'a>(&'a self, connection: &'a C) -> HitFuture<'a, C> {
        self.check_with(connection, HitOptions::new())
    }

    /// [`check`](Self::check) with per-call options.
    pub fn check_with<'a>(
        &'a self,
        connection: &'a C,
        options: HitOptions<'a>,
    ) -> HitFuture<'a, C> {
        HitFuture::new(self, connection, options, Mode::Peek)
    }

    /// [`hit_with`](Self::hit_with), reporting a [`Verdict`]: the decision and, when the hit is
    /// refused, the backend that refused it and the hit's merged context. What an adapter
    /// answers a refusal from.
    pub fn hit_verdict<'a>(
        &'a self,
        connection: &'a C,
        options: HitOptions<'a>,
    ) -> HitFuture<'a, C, Verdict> {
        HitFuture::new(self, connection, options, Mode::Consume)
    }

    /// [`check_with`](Self::check_with), reporting a [`Verdict`].
    pub fn check_verdict<'a>(
        &'a self,
        connection: &'a C,
        options: HitOptions<'a>,
    ) -> HitFuture<'a, C, Verdict> {
        HitFuture::new(self, connection, options, Mode::Peek)
    }

    /// Decides this hit without awaiting, if it can: every input (identifier, rate, cost) is
    /// synchronous and the backend decides synchronously (the in-memory backend), or the hit is
    /// skipped. `None` means the hit needs the asynchronous path ([`hit_with`](Self::hit_with)),
    /// and nothing was consumed. Middleware uses it to decide inside `Service::call` with no
    /// future at all.
    ///
    /// ```
    /// use traffik_core::{MemoryBackend, Throttle, throttle::HitOptions};
    ///
    /// let throttle = Throttle::builder("try-hit-now-doc", "1/min").backend(MemoryBackend::new()).build()?;
    /// let first = throttle.try_hit_now("alice", HitOptions::new()).expect("in-memory is synchronous")?;
    /// assert!(first.is_allowed());
    /// assert!(throttle.try_hit_now("alice", HitOptions::new()).unwrap()?.is_throttled());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_hit_now(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Option<Result<Decision, ThrottleError>> {
        self.decide_now(
            connection,
            &options,
            Mode::Consume,
            &DecisionSpan::start(&self.inner.uid),
        )
    }

    /// [`try_hit_now`](Self::try_hit_now) without consuming (what [`check`](Self::check) gets).
    pub fn try_check_now(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Option<Result<Decision, ThrottleError>> {
        self.decide_now(
            connection,
            &options,
            Mode::Peek,
            &DecisionSpan::start(&self.inner.uid),
        )
    }

    /// [`try_hit_now`](Self::try_hit_now), reporting a [`Verdict`].
    pub fn try_hit_verdict_now(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Option<Result<Verdict, ThrottleError>> {
        self.decide_now(
            connection,
            &options,
            Mode::Consume,
            &DecisionSpan::start(&self.inner.uid),
        )
    }

    /// [`try_check_now`](Self::try_check_now), reporting a [`Verdict`].
    pub fn try_check_verdict_now(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Option<Result<Verdict, ThrottleError>> {
        self.decide_now(
            connection,
            &options,
            Mode::Peek,
            &DecisionSpan::start(&self.inner.uid),
        )
    }

    /// The client's state, without consuming (`None` if the client is exempted).
    pub async fn stat(&self, connection: &C) -> Result<Option<StrategyStat>, ThrottleError> {
        self.stat_with(connection, HitOptions::new()).await
    }

    /// [`stat`](Self::stat) with per-call options (context and scope matter; cost does not).
    pub async fn stat_with(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Result<Option<StrategyStat>, ThrottleError> {
        let config = self.inner.config.load_full();
        let resolved = match self.resolve(&config, connection, &options, Cost::One).await {
            Ok(resolved) => resolved,
            Err(SkipReason::Unlimited) => {
                return Ok(Some(StrategyStat::new(
                    Rate::UNLIMITED,
                    u64::MAX,
                    Duration::ZERO,
                    StatMetadata::None,
                )));
            }
            Err(_) => return Ok(None),
        };
        let (backend, key) = self.locate(&config, &options, resolved.client.key())?;
        let hit = Hit::new(self.now_of(&options), resolved.rate, 1, &resolved.context);
        let stat = match &config.strategy {
            StrategyRef::Pure(strategy) => backend.stat(&key, strategy.as_ref(), hit).await,
            StrategyRef::KeyValue(strategy) => {
                let store = self.key_value_store(backend.as_ref(), strategy.name())?;
                strategy.stat(store, &key, hit).await
            }
        };
        stat.map(Some).map_err(|source| ThrottleError::Backend {
            uid: self.inner.uid.to_string(),
            source,
        })
    }

    /// Skips every hit until [`enable`](Self::enable)d; stored state is kept.
    pub fn disable(&self) {
        self.inner.disabled.store(true, Ordering::Release);
    }

    /// Applies the throttle again.
    pub fn enable(&self) {
        self.inner.disabled.store(false, Ordering::Release);
    }

    /// Whether the throttle is disabled.
    #[must_use]
    pub fn is_disabled(&self) -> bool {
        self.inner.disabled.load(Ordering::Acquire)
    }

    /// Turns this throttle's shadow mode (a dry run) on or off at run time: while on, every hit
    /// is decided and stored as usual, but one the strategy (or a fail-closed on-error policy)
    /// refuses passes as an [`Outcome::ShadowThrottled`](crate::Outcome::ShadowThrottled)
    /// decision. Envoy's `shadow_mode` and nginx's `limit_req_dry_run` do the same.
    ///
    /// ```
    /// use traffik_core::{MemoryBackend, Throttle};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let throttle = Throttle::builder("shadow-doc", "1/min").backend(MemoryBackend::new()).build()?;
    /// throttle.set_shadow_mode(true);
    /// assert!(throttle.hit("alice").await?.is_allowed());
    /// let second = throttle.hit("alice").await?;
    /// assert!(second.is_allowed() && second.is_shadow_throttled());
    /// throttle.set_shadow_mode(false);
    /// assert!(throttle.hit("alice").await?.is_throttled());
    /// # Ok(()) }
    /// ```
    pub fn set_shadow_mode(&self, shadow: bool) {
        self.inner.shadow_mode.store(shadow, Ordering::Release);
    }

    /// Whether hits are decided in shadow mode: the throttle's own switch, or its registry's
    /// ([`ThrottleRegistry::set_shadow_mode`]).
    #[must_use]
    pub fn is_shadow_mode(&self) -> bool {
        self.inner.shadow_mode.load(Ordering::Acquire) || self.inner.registry.is_shadow_mode()
    }

    /// A decision made final: the minimum wait of a refusal, and shadow mode.
    #[inline]
    pub(crate) fn settle(&self, decision: Decision, min_wait: Option<Duration>) -> Decision {
        let decision = with_min_wait(decision, min_wait);
        if decision.is_throttled() && self.is_shadow_mode() {
            decision.shadowed()
        } else {
            decision
        }
    }

    /// Records that `backend` took `seconds` to decide a hit (or a batch) of this throttle.
    pub(crate) fn record_latency(&self, backend: &str, seconds: f64) {
        self.inner.latency.record(backend, seconds);
    }

    /// Counts a decision in the throttle's metrics: hits only (a check consumes nothing).
    #[inline]
    pub(crate) fn count(&self, mode: Mode, decision: &Decision) {
        if matches!(mode, Mode::Consume) {
            self.inner.metrics.record(&self.inner.uid, decision);
        }
    }
}

impl Throttle<str> {
    /// Starts a throttle whose connection is the client's key itself (`throttle.hit("alice")`).
    ///
    /// For another connection type, use [`ThrottleBuilder::new`] and give an identifier.
    pub fn builder(uid: impl Into<String>, rate: impl IntoRate) -> ThrottleBuilder<str> {
        ThrottleBuilder::new(uid, rate)
            .default_identifier(Identifier::new(|key: &str| Identity::from(key)))
    }
}

impl<C: ?Sized + 'static> Control for Inner<C>
where
    Inner<C>: Send + Sync,
{
    fn set_disabled(&self, disabled: bool) {
        self.disabled.store(disabled, Ordering::Release);
    }

    fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Acquire)
    }

    fn set_shadow_mode(&self, shadow: bool) {
        self.shadow_mode.store(shadow, Ordering::Release);
    }

    fn is_shadow_mode(&self) -> bool {
        self.shadow_mode.load(Ordering::Acquire)
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

impl<C: ?Sized + 'static> Drop for Inner<C> {
    fn drop(&mut self) {
        self.registry.forget_dropped(&self.uid);
    }
}

impl<C: ?Sized + 'static> Clone for Throttle<C> {
    fn clone(&self) -> Self {
        Throttle {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: ?Sized + 'static> fmt::Debug for Throttle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.inner.config.load();
        f.debug_struct("Throttle")
            .field("uid", &self.inner.uid)
            .field("rate", &config.rate)
            .field("strategy", &config.strategy.name())
            .field("backend", &config.backend)
            .field("cost", &config.cost)
            .field("min_wait", &config.min_wait)
            .field("on_error", &config.on_error)
            .field("disabled", &self.inner.disabled.load(Ordering::Relaxed))
            .field(
                "shadow_mode",
                &self.inner.shadow_mode.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
