//! Live updates: replacing a throttle's settings while it serves. Each update is validated like
//! the builder's settings (the strategy against the rate, the rate against the backend); a
//! failed update changes nothing and says why.

use std::sync::Arc;
use std::time::Duration;

use super::source::{CostSource, RateSource};
use super::{Config, StrategyRef, Throttle};
use crate::backend::{Backend, KeyValueStrategy};
use crate::strategy::{DynStrategy, Strategy};
use crate::throttle::{CostFn, Identifier, IntoRate, OnError, RateFn};
use crate::{ConfigError, Context};

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// Applies `change` to a copy of the configuration and swaps it in if it is valid.
    fn update(&self, change: impl Fn(&mut Config<C>)) -> Result<(), ConfigError> {
        let mut failure = None;
        self.inner.config.rcu(|current| {
            let mut next = Config::clone(current);
            change(&mut next);
            match next.prepare(&self.inner.uid) {
                Ok(()) => Arc::new(next),
                Err(error) => {
                    failure = Some(error);
                    Arc::clone(current)
                }
            }
        });
        failure.map_or(Ok(()), Err)
    }

    /// Replaces the rate (stored state is kept and read under the new rate).
    ///
    /// # Errors
    /// A rate that does not parse, that the strategy refuses, or that the throttle's backend
    /// cannot decide exactly; the throttle keeps its rate.
    pub fn update_rate(&self, rate: impl IntoRate) -> Result<(), ConfigError> {
        let rate = rate
            .into_rate()
            .map_err(|source| ConfigError::InvalidRate {
                uid: self.inner.uid.to_string(),
                source,
            })?;
        self.update(|config| config.rate = RateSource::Fixed(rate))
    }

    /// Chooses the rate per hit from now on.
    ///
    /// # Errors
    /// None today (a rate chosen per hit is checked at each hit); the `Result` keeps every
    /// update reporting the same way.
    pub fn update_rate_fn(&self, rate: RateFn<C>) -> Result<(), ConfigError> {
        self.update(|config| config.rate = RateSource::Dynamic(rate.clone()))
    }

    /// Replaces the strategy (the new one starts from fresh state: keys differ per strategy).
    ///
    /// # Errors
    /// A strategy whose parameters cannot work at the throttle's rate, or that the backend
    /// cannot decide exactly; the throttle keeps its strategy.
    pub fn update_strategy(&self, strategy: impl Strategy) -> Result<(), ConfigError> {
        let strategy: Arc<dyn DynStrategy> = Arc::new(strategy);
        self.update(|config| config.strategy = StrategyRef::Pure(Arc::clone(&strategy)))
    }

    /// Replaces the strategy with a key-value strategy.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_key_value_strategy(
        &self,
        strategy: impl KeyValueStrategy,
    ) -> Result<(), ConfigError> {
        let strategy: Arc<dyn KeyValueStrategy> = Arc::new(strategy);
        self.update(|config| config.strategy = StrategyRef::KeyValue(Arc::clone(&strategy)))
    }

    /// Replaces the backend (`None`: per-hit or registry default).
    ///
    /// # Errors
    /// A backend that cannot decide the throttle's strategy at its rate exactly
    /// ([`ConfigError::UnsupportedRate`]); the throttle keeps its backend.
    pub fn update_backend(&self, backend: Option<Arc<dyn Backend>>) -> Result<(), ConfigError> {
        self.update(|config| config.backend = backend.clone())
    }

    /// Replaces the cost.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_cost(&self, cost: u64) -> Result<(), ConfigError> {
        self.update(|config| config.cost = CostSource::Fixed(cost))
    }

    /// Chooses the cost per hit from now on.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_cost_fn(&self, cost: CostFn<C>) -> Result<(), ConfigError> {
        self.update(|config| config.cost = CostSource::Dynamic(cost.clone()))
    }

    /// Replaces the identifier.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_identifier(&self, identifier: Identifier<C>) -> Result<(), ConfigError> {
        self.update(|config| config.identifier = identifier.clone())
    }

    /// Replaces the minimum wait of throttled hits.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_min_wait(&self, min_wait: Option<Duration>) -> Result<(), ConfigError> {
        self.update(|config| config.min_wait = min_wait)
    }

    /// Replaces the on-error policy (`None`: the backend's, else allow).
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_on_error(&self, on_error: Option<OnError>) -> Result<(), ConfigError> {
        self.update(|config| config.on_error = on_error.clone())
    }

    /// Replaces the static context.
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_context(&self, context: Context) -> Result<(), ConfigError> {
        self.update(|config| config.context = context.clone())
    }
}
