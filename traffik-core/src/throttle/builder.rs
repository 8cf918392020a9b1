//! [`ThrottleBuilder`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Config, CostFn, CostSource, Identifier, IntoRate, OnError, RateFn, RateSource, StrategyRef,
    Throttle,
};
use crate::backend::{Backend, Extensions, KeyValueStrategy};
use crate::headers::Headers;
use crate::key::validate_uid;
use crate::rule::Rule;
use crate::strategy::{FixedWindow, Strategy};
use crate::{Clock, ConfigError, Context, ParseRateError, SystemClock, ThrottleRegistry};

/// Configures a [`Throttle`]. Start with [`Throttle::builder`] (connection = the client's key)
/// or [`ThrottleBuilder::new`] plus [`identifier`](Self::identifier) for another connection type.
/// `P` is what [`build`](Self::build) returns: the throttle itself, or an adapter's throttle made
/// from it ([`FromThrottle`], chosen with [`builds`](Self::builds); traffik-axum's
/// `HttpThrottle::builder` starts one for `HttpThrottle`).
///
/// ```
/// use traffik_core::{Context, Identity, MemoryBackend, OnError};
/// use traffik_core::throttle::{Identifier, ThrottleBuilder};
/// use traffik_core::strategy::Gcra;
///
/// struct Request { user: String }
///
/// let throttle = ThrottleBuilder::<Request>::new("search", "20/min")
///     .identifier(Identifier::new(|request: &Request| Identity::from(request.user.as_str())))
///     .strategy(Gcra::new().burst(5))
///     .backend(MemoryBackend::new())
///     .on_error(OnError::Throttle)
///     .context(Context::new().with("route", "search"))
///     .build()?;
/// # Ok::<(), traffik_core::ConfigError>(())
/// ```
#[must_use]
pub struct ThrottleBuilder<C: ?Sized + 'static, P = Throttle<C>> {
    uid: String,
    rate: Result<RateSource<C>, ParseRateError>,
    strategy: StrategyRef,
    backend: Option<Arc<dyn Backend>>,
    cost: CostSource<C>,
    identifier: Option<Identifier<C>>,
    default_identifier: Option<Identifier<C>>,
    context: Context,
    min_wait: Option<Duration>,
    on_error: Option<OnError>,
    registry: Option<ThrottleRegistry>,
    clock: Option<Arc<dyn Clock>>,
    headers: Headers,
    extensions: Extensions,
    shadow_mode: bool,
    rules: Vec<Rule<C>>,
    product: PhantomData<fn() -> P>,
}

/// What a [`ThrottleBuilder`] builds: the core [`Throttle`] itself, or an adapter's throttle
/// made from it (traffik-axum's `HttpThrottle` reads its HTTP settings from the throttle's
/// [`extensions`](Throttle::extensions) once, here).
///
/// It runs once the throttle is built and registered; when it fails, the throttle it was given
/// is dropped, which releases the uid.
pub trait FromThrottle<C: ?Sized + 'static>: Sized {
    /// The product of a built throttle, or why the adapter's settings are wrong.
    ///
    /// # Errors
    ///
    /// Whatever configuration error the adapter finds in the throttle's settings.
    fn from_throttle(throttle: Throttle<C>) -> Result<Self, ConfigError>;
}

impl<C: ?Sized + 'static> FromThrottle<C> for Throttle<C> {
    fn from_throttle(throttle: Throttle<C>) -> Result<Self, ConfigError> {
        Ok(throttle)
    }
}

impl<C: ?Sized + Send + Sync + 'static> ThrottleBuilder<C> {
    /// A throttle `uid` limited to `rate` (a [`Rate`](crate::Rate) or a string like `"100/min"`),
    /// with the fixed-window strategy, cost 1 and no identifier yet.
    pub fn new(uid: impl Into<String>, rate: impl IntoRate) -> Self {
        ThrottleBuilder {
            uid: uid.into(),
            rate: rate.into_rate().map(RateSource::Fixed),
            strategy: StrategyRef::Pure(Arc::new(FixedWindow::new())),
            backend: None,
            cost: CostSource::Fixed(1),
            identifier: None,
            default_identifier: None,
            context: Context::new(),
            min_wait: None,
            on_error: None,
            registry: None,
            clock: None,
            headers: Headers::none(),
            extensions: Extensions::new(),
            shadow_mode: false,
            rules: Vec::new(),
            product: PhantomData,
        }
    }

    /// Makes the builder build `Q` instead (an adapter's throttle, see [`FromThrottle`]).
    pub fn builds<Q: FromThrottle<C>>(self) -> ThrottleBuilder<C, Q> {
        ThrottleBuilder {
            uid: self.uid,
            rate: self.rate,
            strategy: self.strategy,
            backend: self.backend,
            cost: self.cost,
            identifier: self.identifier,
            default_identifier: self.default_identifier,
            context: self.context,
            min_wait: self.min_wait,
            on_error: self.on_error,
            registry: self.registry,
            clock: self.clock,
            headers: self.headers,
            extensions: self.extensions,
            shadow_mode: self.shadow_mode,
            rules: self.rules,
            product: PhantomData,
        }
    }
}

impl<C: ?Sized + Send + Sync + 'static, P: FromThrottle<C>> ThrottleBuilder<C, P> {
    /// Chooses the rate per hit instead.
    pub fn rate_fn(mut self, rate: RateFn<C>) -> Self {
        self.rate = Ok(RateSource::Dynamic(rate));
        self
    }

    /// The strategy (default [`FixedWindow`]).
    pub fn strategy(mut self, strategy: impl Strategy) -> Self {
        self.strategy = StrategyRef::Pure(Arc::new(strategy));
        self
    }

    /// A custom strategy written against the key-value contract.
    pub fn key_value_strategy(mut self, strategy: impl KeyValueStrategy) -> Self {
        self.strategy = StrategyRef::KeyValue(Arc::new(strategy));
        self
    }

    /// The throttle's own backend.
    pub fn backend(self, backend: impl Backend) -> Self {
        self.shared_backend(Arc::new(backend))
    }

    /// The throttle's own backend, shared with others.
    pub fn shared_backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The cost of each hit (default 1; 0 makes hits no-ops).
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = CostSource::Fixed(cost);
        self
    }

    /// Chooses the cost per hit.
    pub fn cost_fn(mut self, cost: CostFn<C>) -> Self {
        self.cost = CostSource::Dynamic(cost);
        self
    }

    /// Who a hit belongs to.
    pub fn identifier(mut self, identifier: Identifier<C>) -> Self {
        self.identifier = Some(identifier);
        self
    }

    /// The identifier used when neither [`identifier`](Self::identifier) nor the backend
    /// deciding a hit names one: what adapters set (traffik-axum: the client's address). A
    /// backend names one for the throttles on it that set none with a typed extension,
    /// `.extension(identifier)` on its builder (the reference's backend-level `identifier`);
    /// the throttle's own backend is read when the throttle is built or updated, a per-hit or
    /// registry default backend at each hit.
    ///
    /// ```
    /// use traffik_core::{Identity, MemoryBackend, Throttle};
    /// use traffik_core::throttle::Identifier;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Every throttle on this backend counts per tenant (the part before `/`).
    /// let per_tenant = Identifier::new(|key: &str| Identity::from(key.split('/').next().unwrap_or(key)));
    /// let backend = MemoryBackend::builder().extension(per_tenant).build()?;
    /// let api = Throttle::builder("doc-backend-identifier", "1/min").backend(backend).build()?;
    /// assert!(api.hit("acme/alice").await?.is_allowed());
    /// assert!(api.hit("acme/bob").await?.is_throttled(), "one budget for acme");
    /// # Ok(()) }
    /// ```
    pub fn default_identifier(mut self, identifier: Identifier<C>) -> Self {
        self.default_identifier = Some(identifier);
        self
    }

    /// Static context, under each hit's call-time context.
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Starts the throttle in shadow mode (a dry run, default off): every hit is decided and
    /// stored as usual, but one the strategy refuses passes, as an
    /// [`Outcome::ShadowThrottled`](crate::Outcome::ShadowThrottled) decision. Switch it at
    /// run time with [`Throttle::set_shadow_mode`], or for every throttle of a registry with
    /// [`ThrottleRegistry::set_shadow_mode`].
    pub fn shadow_mode(mut self, shadow: bool) -> Self {
        self.shadow_mode = shadow;
        self
    }

    /// The least wait of a throttled hit (applied only when a hit is throttled).
    pub fn min_wait(mut self, min_wait: Duration) -> Self {
        self.min_wait = Some(min_wait);
        self
    }

    /// What to do when the backend fails (default: the backend's policy, else allow).
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = Some(on_error);
        self
    }

    /// The registry (default [`ThrottleRegistry::global`]).
    pub fn registry(mut self, registry: &ThrottleRegistry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// The clock (default [`SystemClock`]); tests use a [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The rate-limit headers an adapter writes for this throttle's decisions (default
    /// [`Headers::none`]: only `Retry-After` on a refusal); see [`Throttle::headers`].
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Adds a typed setting for an adapter, one per type (a later one of the same type
    /// replaces it); see [`Throttle::extensions`]. traffik-axum keeps its HTTP settings here
    /// and reads its own types only (`Scope`, `ThrottledHandler`, and its preflight setting,
    /// through `HttpThrottleBuilderExt`); a value of a type no adapter reads is kept and
    /// ignored.
    pub fn extension<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Adds rules deciding which hits the throttle applies to (see [`Rule`]): it applies when
    /// every `throttle_if` rule holds and no `bypass_if` rule does; otherwise the hit is
    /// skipped ([`SkipReason::Bypassed`](crate::SkipReason::Bypassed)). The registry's rules
    /// for this uid ([`ThrottleRegistry::add_rules`]) are checked too.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule<C>>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Checks everything and registers the throttle.
    pub fn build(self) -> Result<P, ConfigError> {
        validate_uid(&self.uid)?;
        let rate = self.rate.map_err(|source| ConfigError::InvalidRate {
            uid: self.uid.clone(),
            source,
        })?;
        let explicit_identifier = self.identifier.is_some();
        let own_backend_identifier = self
            .backend
            .as_ref()
            .and_then(|backend| backend.extensions().get::<Identifier<C>>().cloned());
        let identifier = self
            .identifier
            .or(self.default_identifier)
            .or(own_backend_identifier)
            .ok_or_else(|| ConfigError::MissingIdentifier {
                uid: self.uid.clone(),
            })?;
        let config = Config {
            rate,
            strategy: self.strategy,
            backend: self.backend,
            cost: self.cost,
            identifier: identifier.clone(),
            base_identifier: identifier,
            explicit_identifier,
            context: self.context,
            min_wait: self.min_wait,
            on_error: self.on_error,
            headers: Headers::none(),
            key_template: None,
            lane: None,
        };
        let registry = self
            .registry
            .unwrap_or_else(|| ThrottleRegistry::global().clone());
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let throttle = Throttle::from_config(
            self.uid,
            config,
            super::Extras {
                registry,
                clock,
                headers: self.headers,
                extensions: self.extensions,
                shadow_mode: self.shadow_mode,
                rules: self.rules,
            },
        )?;
        P::from_throttle(throttle)
    }
}

impl<C: ?Sized + 'static, P> fmt::Debug for ThrottleBuilder<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleBuilder")
            .field("uid", &self.uid)
            .field("rate", &self.rate)
            .field("strategy", &self.strategy.name())
            .field("cost", &self.cost)
            .field("headers", &self.headers)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}
