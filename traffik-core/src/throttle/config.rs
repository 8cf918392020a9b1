//! [`Config`]: what a throttle's handles share and `update_*` swap: rate, strategy, backend,
//! cost, identifier, context, minimum wait, on-error policy.

use std::sync::Arc;
use std::time::Duration;

use super::source::{CostSource, Identifier, RateSource};
use crate::backend::{Backend, KeyValueStrategy, Lane};
use crate::headers::Headers;
use crate::key::KeyTemplate;
use crate::strategy::DynStrategy;
use crate::{ConfigError, Context, OnError};

pub(crate) struct Config<C: ?Sized> {
    pub(crate) rate: RateSource<C>,
    pub(crate) strategy: StrategyRef,
    pub(crate) backend: Option<Arc<dyn Backend>>,
    pub(crate) cost: CostSource<C>,
    /// The identifier hits on the throttle's own backend use: `base_identifier`, unless that
    /// is not `explicit_identifier` and the backend names one (an `Identifier<C>` extension).
    pub(crate) identifier: Identifier<C>,
    /// The identifier the builder or `update_identifier` gave (explicit or the default).
    pub(crate) base_identifier: Identifier<C>,
    /// Whether `base_identifier` was set on the throttle itself (then no backend's applies).
    pub(crate) explicit_identifier: bool,
    pub(crate) context: Context,
    pub(crate) min_wait: Option<Duration>,
    pub(crate) on_error: Option<OnError>,
    /// The rate-limit headers its responses carry.
    pub(crate) headers: Headers,
    /// The fixed parts of the keys on `backend`, when the throttle has its own.
    pub(crate) key_template: Option<KeyTemplate>,
    /// The throttle's way into its own backend's entries, when that backend keeps them in
    /// process ([`Backend::lane`]).
    pub(crate) lane: Option<Lane>,
}

/// The strategy of a throttle: a pure transition, or a key-value strategy.
#[derive(Debug, Clone)]
pub(crate) enum StrategyRef {
    Pure(Arc<dyn DynStrategy>),
    KeyValue(Arc<dyn KeyValueStrategy>),
}

impl StrategyRef {
    #[inline]
    pub(super) fn name(&self) -> &'static str {
        match self {
            StrategyRef::Pure(strategy) => strategy.name(),
            StrategyRef::KeyValue(strategy) => strategy.name(),
        }
    }
}

impl<C: ?Sized + 'static> Config<C> {
    /// Whether every input is synchronous and the strategy a pure transition: what the
    /// synchronous path needs (the backend decides whether it can too).
    #[inline]
    pub(super) fn is_synchronous(&self) -> bool {
        self.identifier.is_synchronous()
            && self.rate.is_synchronous()
            && self.cost.is_synchronous()
            && matches!(self.strategy, StrategyRef::Pure(_))
    }

    /// The on-error policy of a hit on `backend`: the throttle's own, else the backend's, else
    /// the default (fail open).
    pub(super) fn on_error_on(&self, backend: &dyn Backend) -> OnError {
        self.on_error
            .as_ref()
            .or(backend.on_error())
            .cloned()
            .unwrap_or_default()
    }

    /// Validates the configuration and refreshes what is derived from it.
    pub(super) fn prepare(&mut self, uid: &str) -> Result<(), ConfigError> {
        self.validate(uid)?;
        self.identifier = self
            .backend
            .as_ref()
            .filter(|_| !self.explicit_identifier)
            .and_then(|backend| backend.extensions().get::<Identifier<C>>().cloned())
            .unwrap_or_else(|| self.base_identifier.clone());
        self.key_template = self
            .backend
            .as_ref()
            .map(|backend| KeyTemplate::new(backend.namespace(), uid, self.strategy.name()));
        self.lane = match (&self.backend, &self.key_template, &self.strategy) {
            (Some(backend), Some(template), StrategyRef::Pure(strategy)) => {
                backend.lane(template.prefix(), strategy.as_ref())
            }
            _ => None,
        };
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
    pub(super) fn check_rate_on(
        &self,
        uid: &str,
        backend: &dyn Backend,
    ) -> Result<(), ConfigError> {
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
            base_identifier: self.base_identifier.clone(),
            explicit_identifier: self.explicit_identifier,
            context: self.context.clone(),
            min_wait: self.min_wait,
            on_error: self.on_error.clone(),
            headers: self.headers.clone(),
            key_template: self.key_template.clone(),
            lane: self.lane.clone(),
        }
    }
}
