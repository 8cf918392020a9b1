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
mod builder;
mod future;
mod options;
mod refund;
mod source;
mod update;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::backend::{Backend, KeyValueStrategy, Mode};
use crate::identity::AddressText;
use crate::key::{KeyIdentity, KeyTemplate, storage_key, write_key};
use crate::registry::{Control, ThrottleRegistry};
use crate::strategy::{DynStrategy, Hit};
use crate::{
    Clock, ConfigError, Context, Decision, Identity, Millis, Outcome, SkipReason, StatMetadata,
    StrategyStat, ThrottleError,
};
use all::Prepared;

pub use crate::on_error::{DEFAULT_ERROR_WAIT, ErrorHandler, ErrorInfo, OnError};
pub use all::{Limit, hit_all, try_hit_all_now};
pub use builder::ThrottleBuilder;
pub use future::HitFuture;
pub use options::HitOptions;
pub use source::{CostFn, Identifier, IntoRate, RateFn};
pub(crate) use source::{CostSource, RateSource};

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
    config: ArcSwap<Config<C>>,
    disabled: AtomicBool,
    registry: ThrottleRegistry,
    clock: Arc<dyn Clock>,
    last_error_log: AtomicU64,
}

pub(crate) struct Config<C: ?Sized> {
    pub(crate) rate: RateSource<C>,
    pub(crate) strategy: StrategyRef,
    pub(crate) backend: Option<Arc<dyn Backend>>,
    pub(crate) cost: CostSource<C>,
    pub(crate) identifier: Identifier<C>,
    pub(crate) context: Context,
    pub(crate) min_wait: Option<Duration>,
    pub(crate) on_error: Option<OnError>,
    /// The fixed parts of the keys on `backend`, when the throttle has its own.
    pub(crate) key_template: Option<KeyTemplate>,
}

/// The strategy of a throttle: a pure transition, or a key-value strategy.
#[derive(Debug, Clone)]
pub(crate) enum StrategyRef {
    Pure(Arc<dyn DynStrategy>),
    KeyValue(Arc<dyn KeyValueStrategy>),
}

impl StrategyRef {
    fn name(&self) -> &'static str {
        match self {
            StrategyRef::Pure(strategy) => strategy.name(),
            StrategyRef::KeyValue(strategy) => strategy.name(),
        }
    }

    fn pure(&self) -> Option<&dyn DynStrategy> {
        match self {
            StrategyRef::Pure(strategy) => Some(strategy.as_ref()),
            StrategyRef::KeyValue(_) => None,
        }
    }
}

impl<C: ?Sized> Config<C> {
    /// The merged context, rate and cost of a hit, when every function is synchronous (the
    /// cost is 1 at an unlimited rate, where it does not matter); `None` otherwise.
    #[inline]
    fn resolve_now<'a>(
        &'a self,
        connection: &C,
        options: &HitOptions<'a>,
    ) -> Option<(Cow<'a, Context>, crate::Rate, u64)> {
        let context = merged_context(options.context, &self.context);
        let rate = self.rate.resolve(connection, &context).into_ready().ok()?;
        let cost = match (options.cost, rate.is_unlimited()) {
            (_, true) => 1,
            (Some(cost), false) => cost,
            (None, false) => self.cost.resolve(connection, &context).into_ready().ok()?,
        };
        Some((context, rate, cost))
    }

    fn is_synchronous(&self) -> bool {
        self.identifier.is_synchronous()
            && self.rate.is_synchronous()
            && self.cost.is_synchronous()
            && matches!(self.strategy, StrategyRef::Pure(_))
    }

    /// Validates the configuration and refreshes what is derived from it.
    fn prepare(&mut self, uid: &str) -> Result<(), ConfigError> {
        self.validate(uid)?;
        self.key_template = self
            .backend
            .as_ref()
            .map(|backend| KeyTemplate::new(backend.namespace(), uid, self.strategy.name()));
        Ok(())
    }

    fn validate(&self, uid: &str) -> Result<(), ConfigError> {
        if let (Some(rate), StrategyRef::Pure(strategy)) = (self.rate.fixed(), &self.strategy)
            && !rate.is_unlimited()
        {
            strategy
                .validate(&rate)
                .map_err(|source| ConfigError::InvalidStrategy {
                    uid: uid.to_owned(),
                    source,
                })?;
            if let Some(backend) = &self.backend {
                self.check_rate_on(uid, backend.as_ref())?;
            }
        }
        Ok(())
    }

    /// Whether `backend` decides this throttle's fixed rate exactly ([`Backend::check_rate`]).
    fn check_rate_on(&self, uid: &str, backend: &dyn Backend) -> Result<(), ConfigError> {
        let (Some(rate), StrategyRef::Pure(strategy)) = (self.rate.fixed(), &self.strategy) else {
            return Ok(());
        };
        if rate.is_unlimited() {
            return Ok(());
        }
        backend
            .check_rate(strategy.as_ref(), &rate)
            .map_err(|reason| ConfigError::UnsupportedRate {
                uid: uid.to_owned(),
                backend: backend.name().to_owned(),
                strategy: strategy.name(),
                rate,
                reason,
            })
    }
}

impl<C: ?Sized> Clone for Config<C> {
    fn clone(&self) -> Self {
        Config {
            rate: self.rate.clone(),
            strategy: self.strategy.clone(),
            backend: self.backend.clone(),
            cost: self.cost.clone(),
            identifier: self.identifier.clone(),
            context: self.context.clone(),
            min_wait: self.min_wait,
            on_error: self.on_error.clone(),
            key_template: self.key_template.clone(),
        }
    }
}

thread_local! {
    static KEY_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with a reusable per-thread key buffer (a fresh one if the buffer is in use).
fn with_key_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    KEY_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => f(&mut buffer),
        Err(_) => f(&mut String::new()),
    })
}

fn merged_context<'a>(call: Option<&'a Context>, base: &'a Context) -> Cow<'a, Context> {
    match call {
        Some(call) if base.is_empty() => Cow::Borrowed(call),
        Some(call) if !call.is_empty() => Cow::Owned(call.merged_over(base)),
        _ => Cow::Borrowed(base),
    }
}

/// Raises the wait of a throttled decision to `min_wait`.
fn with_min_wait(mut decision: Decision, min_wait: Option<Duration>) -> Decision {
    if let (Outcome::Throttled { wait }, Some(floor)) = (decision.outcome, min_wait) {
        decision.outcome = Outcome::Throttled {
            wait: wait.max(floor),
        };
    }
    decision
}

/// The inputs of one hit once resolved.
struct Resolved<'a> {
    identity: Cow<'a, str>,
    context: Cow<'a, Context>,
    rate: crate::Rate,
    cost: u64,
}

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    pub(crate) fn from_config(
        uid: String,
        config: Config<C>,
        registry: ThrottleRegistry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let mut config = config;
        config.prepare(&uid)?;
        if config.backend.is_none()
            && let Some(default) = registry.default_backend().as_ref()
        {
            // The registry's default backend decides this throttle's hits: check it now too.
            config.check_rate_on(&uid, default.0.as_ref())?;
        }
        let inner = Arc::new(Inner {
            uid: uid.into_boxed_str(),
            config: ArcSwap::from_pointee(config),
            disabled: AtomicBool::new(false),
            registry,
            clock,
            last_error_log: AtomicU64::new(0),
        });
        let control: Arc<dyn Control> = inner.clone();
        inner
            .registry
            .register(&inner.uid, Arc::downgrade(&control))?;
        Ok(Throttle { inner })
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
    fn now_of(&self, options: &HitOptions<'_>) -> Millis {
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
    pub fn rate(&self) -> Option<crate::Rate> {
        self.inner.config.load().rate.fixed()
    }

    /// The registry the throttle belongs to.
    #[must_use]
    pub fn registry(&self) -> &ThrottleRegistry {
        &self.inner.registry
    }

    /// The backend a hit with `options` goes to: the throttle's own, else the one in the
    /// options, else the registry's default (`None` when there is none anywhere).
    #[must_use]
    pub fn backend_for(&self, options: &HitOptions<'_>) -> Option<Arc<dyn Backend>> {
        self.backend(&self.inner.config.load(), options).ok()
    }

    /// The context a hit with call-time context `call` sees: `call` merged over the
    /// throttle's static context.
    #[must_use]
    pub fn context_for(&self, call: Option<&Context>) -> Context {
        merged_context(call, &self.inner.config.load().context).into_owned()
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
        self.decide_now(connection, &options, Mode::Consume)
    }

    /// [`try_hit_now`](Self::try_hit_now) without consuming (what [`check`](Self::check) gets).
    pub fn try_check_now(
        &self,
        connection: &C,
        options: HitOptions<'_>,
    ) -> Option<Result<Decision, ThrottleError>> {
        self.decide_now(connection, &options, Mode::Peek)
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
        let Some(resolved) = self.resolve(&config, connection, &options, true).await else {
            return Ok(None);
        };
        if resolved.rate.is_unlimited() {
            return Ok(Some(StrategyStat::new(
                resolved.rate,
                u64::MAX,
                Duration::ZERO,
                StatMetadata::None,
            )));
        }
        let (backend, key) = self.locate(&config, &options, &resolved.identity)?;
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

    /// Decides at once if it can: disabled, cost 0, or the synchronous path.
    fn decide_now(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, ThrottleError>> {
        if self.is_disabled() {
            return Some(Ok(Decision::skipped(SkipReason::Disabled)));
        }
        if options.cost == Some(0) {
            return Some(Ok(Decision::skipped(SkipReason::ZeroCost)));
        }
        self.run_now(connection, options, mode)
    }

    /// The synchronous path: every input is synchronous and the backend decides at once. No
    /// allocation, no reference count touched. `None` sends the hit down the async path (which
    /// also handles backend errors).
    #[inline]
    fn run_now(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
    ) -> Option<Result<Decision, ThrottleError>> {
        let config = self.inner.config.load();
        if !config.is_synchronous() {
            return None;
        }
        let called = config.identifier.call(connection).into_ready().ok()?;
        let identity = match &called {
            Identity::Key(key) => KeyIdentity::Text(key),
            Identity::Address(ip) => KeyIdentity::Address(*ip),
            Identity::Exempted => return Some(Ok(Decision::skipped(SkipReason::Exempted))),
        };
        let (context, rate, cost) = config.resolve_now(connection, options)?;
        if rate.is_unlimited() {
            return Some(Ok(Decision::skipped(SkipReason::Unlimited)));
        }
        if cost == 0 {
            return Some(Ok(Decision::skipped(SkipReason::ZeroCost)));
        }
        let strategy = config.strategy.pure()?;
        let hit = Hit::new(self.now_of(options), rate, cost, &context);
        let decide = |backend: &dyn Backend, template: Option<&KeyTemplate>| {
            with_key_buffer(|key| {
                match template {
                    Some(template) => template.write(key, identity, options.scope),
                    None => write_key(
                        key,
                        backend.namespace(),
                        &self.inner.uid,
                        identity,
                        options.scope,
                        strategy.name(),
                    ),
                }
                backend.decide_now(key, strategy, hit, mode)
            })
        };
        let result = if let Some(backend) = &config.backend {
            decide(backend.as_ref(), config.key_template.as_ref())
        } else if let Some(backend) = options.backend {
            decide(backend.as_ref(), None)
        } else {
            let default = self.inner.registry.default_backend();
            match default.as_ref() {
                Some(slot) => decide(slot.0.as_ref(), None),
                None => {
                    return Some(Err(ThrottleError::NoBackend {
                        uid: self.inner.uid.to_string(),
                    }));
                }
            }
        };
        match result? {
            Ok(decision) => Some(Ok(with_min_wait(decision, config.min_wait))),
            Err(_) => None,
        }
    }

    async fn run_async(
        &self,
        connection: &C,
        options: HitOptions<'_>,
        mode: Mode,
    ) -> Result<Decision, ThrottleError> {
        let config = self.inner.config.load_full();
        if let StrategyRef::KeyValue(strategy) = &config.strategy {
            return self
                .run_key_value(&config, strategy.as_ref(), connection, &options, mode)
                .await;
        }
        let ready = match self.prepare_with(&config, connection, &options).await? {
            Prepared::Ready(ready) => ready,
            Prepared::Skipped(decision) => return Ok(decision),
            Prepared::KeyValue => unreachable!("key-value strategies were handled above"),
        };
        let result = ready
            .backend
            .decide(&ready.key, ready.strategy.as_ref(), ready.hit(), mode)
            .await;
        match result {
            Ok(decision) => Ok(with_min_wait(decision, ready.min_wait)),
            Err(error) => self.on_backend_error(&ready, error, ready.cost).await,
        }
    }

    /// Applies the limit's on-error policy to a failure of its backend.
    async fn on_backend_error(
        &self,
        ready: &all::Ready,
        error: crate::backend::BackendError,
        cost: u64,
    ) -> Result<Decision, ThrottleError> {
        let info = ErrorInfo {
            error,
            uid: &self.inner.uid,
            key: &ready.key,
            cost,
            rate: ready.rate,
            context: &ready.context,
            backend: ready.backend.as_ref(),
            strategy: Some(ready.strategy.as_ref()),
            now: ready.now,
            min_wait: ready.min_wait,
        };
        self.apply_policy(&ready.on_error, info).await
    }

    /// Logs a backend failure (rate-limited) and lets `policy` decide the hit.
    async fn apply_policy(
        &self,
        policy: &OnError,
        info: ErrorInfo<'_>,
    ) -> Result<Decision, ThrottleError> {
        self.log_backend_error(&info.error, info.backend.name());
        if matches!(info.error, crate::backend::BackendError::Unsupported { .. }) {
            // A configuration mistake (a rate the backend cannot decide exactly), not an
            // outage: never failed open, whatever the policy.
            return Err(ThrottleError::Backend {
                uid: self.inner.uid.to_string(),
                source: info.error,
            });
        }
        let min_wait = info.min_wait;
        policy
            .apply(info)
            .await
            .map(|decision| with_min_wait(decision, min_wait))
            .map_err(|source| ThrottleError::Backend {
                uid: self.inner.uid.to_string(),
                source,
            })
    }

    /// A hit with a key-value strategy: the strategy drives the store itself.
    async fn run_key_value(
        &self,
        config: &Config<C>,
        strategy: &dyn KeyValueStrategy,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
    ) -> Result<Decision, ThrottleError> {
        if self.is_disabled() {
            return Ok(Decision::skipped(SkipReason::Disabled));
        }
        let resolved = match self.resolve(config, connection, options, false).await {
            Some(resolved) if resolved.rate.is_unlimited() => {
                return Ok(Decision::skipped(SkipReason::Unlimited));
            }
            Some(resolved) if resolved.cost == 0 => {
                return Ok(Decision::skipped(SkipReason::ZeroCost));
            }
            Some(resolved) => resolved,
            None => return Ok(Decision::skipped(SkipReason::Exempted)),
        };
        let (backend, key) = self.locate(config, options, &resolved.identity)?;
        let now = self.now_of(options);
        let hit = Hit::new(now, resolved.rate, resolved.cost, &resolved.context);
        let store = self.key_value_store(backend.as_ref(), strategy.name())?;
        let result = match mode {
            Mode::Consume => strategy.hit(store, &key, hit).await,
            Mode::Peek => strategy
                .stat(store, &key, hit)
                .await
                .map(|stat| decision_from_stat(&stat, resolved.cost)),
        };
        match result {
            Ok(decision) => Ok(with_min_wait(decision, config.min_wait)),
            Err(error) => {
                let policy = config
                    .on_error
                    .as_ref()
                    .or(backend.on_error())
                    .cloned()
                    .unwrap_or_default();
                let info = ErrorInfo {
                    error,
                    uid: &self.inner.uid,
                    key: &key,
                    cost: resolved.cost,
                    rate: resolved.rate,
                    context: &resolved.context,
                    backend: backend.as_ref(),
                    strategy: None,
                    now,
                    min_wait: config.min_wait,
                };
                self.apply_policy(&policy, info).await
            }
        }
    }

    /// Resolves a hit for its backend (one place for the skip checks, the backend resolution
    /// and the key): what [`hit_all`] batches and the asynchronous path decides.
    async fn prepare(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
    ) -> Result<Prepared, ThrottleError> {
        let config = self.inner.config.load_full();
        self.prepare_with(&config, connection, options).await
    }

    async fn prepare_with(
        &self,
        config: &Config<C>,
        connection: &C,
        options: &HitOptions<'_>,
    ) -> Result<Prepared, ThrottleError> {
        if self.is_disabled() {
            return Ok(Prepared::Skipped(Decision::skipped(SkipReason::Disabled)));
        }
        if options.cost == Some(0) {
            return Ok(Prepared::Skipped(Decision::skipped(SkipReason::ZeroCost)));
        }
        let StrategyRef::Pure(strategy) = &config.strategy else {
            return Ok(Prepared::KeyValue);
        };
        let Some(resolved) = self.resolve(config, connection, options, false).await else {
            return Ok(Prepared::Skipped(Decision::skipped(SkipReason::Exempted)));
        };
        self.ready(config, strategy, options, resolved)
    }

    /// [`prepare`](Self::prepare) without awaiting: `None` when an input is asynchronous.
    fn prepare_now(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
    ) -> Option<Result<Prepared, ThrottleError>> {
        if self.is_disabled() {
            return Some(Ok(Prepared::Skipped(Decision::skipped(
                SkipReason::Disabled,
            ))));
        }
        if options.cost == Some(0) {
            return Some(Ok(Prepared::Skipped(Decision::skipped(
                SkipReason::ZeroCost,
            ))));
        }
        let config = self.inner.config.load_full();
        let StrategyRef::Pure(strategy) = &config.strategy else {
            return Some(Ok(Prepared::KeyValue));
        };
        let identity = match config.identifier.call(connection).into_ready().ok()? {
            Identity::Key(key) => Cow::Owned(key.into_owned()),
            Identity::Address(ip) => Cow::Owned(AddressText::of(ip).as_str().to_owned()),
            Identity::Exempted => {
                return Some(Ok(Prepared::Skipped(Decision::skipped(
                    SkipReason::Exempted,
                ))));
            }
        };
        let (context, rate, cost) = config.resolve_now(connection, options)?;
        let resolved = Resolved {
            identity,
            context,
            rate,
            cost,
        };
        Some(self.ready(&config, strategy, options, resolved))
    }

    /// The resolved hit made ready for its backend, or its skip.
    fn ready(
        &self,
        config: &Config<C>,
        strategy: &Arc<dyn DynStrategy>,
        options: &HitOptions<'_>,
        resolved: Resolved<'_>,
    ) -> Result<Prepared, ThrottleError> {
        if resolved.rate.is_unlimited() {
            return Ok(Prepared::Skipped(Decision::skipped(SkipReason::Unlimited)));
        }
        if resolved.cost == 0 {
            return Ok(Prepared::Skipped(Decision::skipped(SkipReason::ZeroCost)));
        }
        let (backend, key) = self.locate(config, options, &resolved.identity)?;
        let on_error = config
            .on_error
            .as_ref()
            .or(backend.on_error())
            .cloned()
            .unwrap_or_default();
        Ok(Prepared::Ready(all::Ready {
            backend,
            key,
            strategy: Arc::clone(strategy),
            rate: resolved.rate,
            cost: resolved.cost,
            context: resolved.context.into_owned(),
            now: self.now_of(options),
            min_wait: config.min_wait,
            on_error,
        }))
    }

    /// Identity, context, rate and cost of a hit; `None` when exempted.
    async fn resolve<'a>(
        &self,
        config: &'a Config<C>,
        connection: &'a C,
        options: &HitOptions<'a>,
        for_stat: bool,
    ) -> Option<Resolved<'a>> {
        let identity = match config.identifier.call(connection).await {
            Identity::Key(key) => key,
            Identity::Address(ip) => Cow::Owned(AddressText::of(ip).as_str().to_owned()),
            Identity::Exempted => return None,
        };
        let context = merged_context(options.context, &config.context);
        let rate = config.rate.resolve(connection, &context).await;
        let cost = match (options.cost, for_stat || rate.is_unlimited()) {
            (_, true) => 1,
            (Some(cost), false) => cost,
            (None, false) => config.cost.resolve(connection, &context).await,
        };
        Some(Resolved {
            identity,
            context,
            rate,
            cost,
        })
    }

    /// The backend of a hit and the client's key in it.
    fn locate(
        &self,
        config: &Config<C>,
        options: &HitOptions<'_>,
        identity: &str,
    ) -> Result<(Arc<dyn Backend>, String), ThrottleError> {
        let backend = self.backend(config, options)?;
        let key = storage_key(
            backend.namespace(),
            &self.inner.uid,
            identity,
            options.scope,
            config.strategy.name(),
        );
        Ok((backend, key))
    }

    fn backend(
        &self,
        config: &Config<C>,
        options: &HitOptions<'_>,
    ) -> Result<Arc<dyn Backend>, ThrottleError> {
        if let Some(backend) = config.backend.as_ref().or(options.backend) {
            return Ok(Arc::clone(backend));
        }
        match self.inner.registry.default_backend().as_ref() {
            Some(slot) => Ok(Arc::clone(&slot.0)),
            None => Err(ThrottleError::NoBackend {
                uid: self.inner.uid.to_string(),
            }),
        }
    }

    fn key_value_store<'b>(
        &self,
        backend: &'b dyn Backend,
        strategy: &'static str,
    ) -> Result<&'b dyn crate::backend::KeyValueStore, ThrottleError> {
        backend
            .key_value()
            .ok_or_else(|| ThrottleError::UnsupportedStrategy {
                uid: self.inner.uid.to_string(),
                strategy,
                backend: backend.name().to_owned(),
            })
    }

    /// Logs a backend failure at most once a second per throttle.
    fn log_backend_error(&self, error: &crate::backend::BackendError, backend: &str) {
        let now = self.inner.clock.now();
        let last = self.inner.last_error_log.load(Ordering::Relaxed);
        if now >= last.saturating_add(1_000)
            && self
                .inner
                .last_error_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(target: "traffik", uid = %self.inner.uid, backend, %error, "backend failed; applying the on-error policy");
        }
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
}

impl Throttle<str> {
    /// Starts a throttle whose connection is the client's key itself (`throttle.hit("alice")`).
    ///
    /// For another connection type, use [`ThrottleBuilder::new`] and give an identifier.
    pub fn builder(uid: impl Into<String>, rate: impl IntoRate) -> ThrottleBuilder<str> {
        ThrottleBuilder::new(uid, rate).identifier(Identifier::new(|key: &str| Identity::from(key)))
    }
}

/// A decision from a key-value strategy's stat (for `check`).
fn decision_from_stat(stat: &StrategyStat, cost: u64) -> Decision {
    if stat.hits_remaining >= cost {
        Decision::allowed(stat.rate.limit(), stat.hits_remaining - cost, stat.wait)
    } else {
        Decision::throttled(
            stat.rate.limit(),
            stat.hits_remaining,
            stat.wait.max(Duration::from_millis(1)),
            stat.wait,
        )
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
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
