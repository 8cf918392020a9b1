//! The asynchronous path: any identifier, rate or cost function, any backend, key-value
//! strategies, and the on-error policy.

use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;
use tracing::Instrument;

use super::all::{Prepared, Ready};
use super::config::{Config, StrategyRef};
use super::resolve::Cost;
use super::verdict::{Refusal, Report};
use super::{ErrorInfo, HitOptions, Throttle};
use crate::backend::{KeyValueStrategy, Mode};
use crate::strategy::{DynStrategy, Hit};
use crate::telemetry::{self, DecisionSpan};
use crate::{Decision, Outcome, StrategyStat, ThrottleError};

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// The asynchronous path inside the decision's span; the decision is counted in the
    /// throttle's metrics.
    pub(super) async fn run_async<R: Report>(
        &self,
        connection: &C,
        options: HitOptions<'_>,
        mode: Mode,
        span: DecisionSpan,
    ) -> Result<R, ThrottleError> {
        let result = self
            .decide_async::<R>(connection, options, mode, &span)
            .instrument(span.span())
            .await;
        if let Ok(report) = &result {
            self.count(mode, &report.decision());
        }
        span.finish(&result, R::decision);
        result
    }

    async fn decide_async<R: Report>(
        &self,
        connection: &C,
        options: HitOptions<'_>,
        mode: Mode,
        span: &DecisionSpan,
    ) -> Result<R, ThrottleError> {
        let config = self.inner.config.load_full();
        let ready = match self.prepare_with(&config, connection, &options).await? {
            Prepared::Ready(ready) => ready,
            Prepared::Skipped(decision) => return Ok(R::unrefused(decision)),
            Prepared::KeyValue(strategy) => {
                return self
                    .run_key_value(&config, strategy.as_ref(), connection, &options, mode)
                    .await;
            }
        };
        span.hit(ready.cost, ready.backend.as_ref());
        let started = Instant::now();
        let result = ready
            .backend
            .decide(&ready.key, ready.strategy.as_ref(), ready.hit(), mode)
            .await;
        self.inner
            .latency
            .record(ready.backend.name(), started.elapsed().as_secs_f64());
        let decision = match result {
            Ok(decision) => self.settle(decision, ready.min_wait),
            Err(error) => {
                telemetry::backend_error(ready.backend.name(), &error);
                self.on_backend_error(&ready, error, ready.cost).await?
            }
        };
        Ok(R::decided(decision, || ready.refusal()))
    }

    /// A hit with a key-value strategy: the strategy drives the store itself.
    async fn run_key_value<R: Report>(
        &self,
        config: &Config<C>,
        strategy: &dyn KeyValueStrategy,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
    ) -> Result<R, ThrottleError> {
        let resolved = match self
            .resolve(config, connection, options, Cost::Resolve)
            .await
        {
            Ok(resolved) => resolved,
            Err(skip) => return Ok(R::unrefused(Decision::skipped(skip))),
        };
        let (backend, key) = self.locate(config, options, resolved.client.key())?;
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
        let decision = match result {
            Ok(decision) => self.settle(decision, config.min_wait),
            Err(error) => {
                telemetry::backend_error(backend.name(), &error);
                let policy = config.on_error_on(backend.as_ref());
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
                self.apply_policy(&policy, info).await?
            }
        };
        Ok(R::decided(decision, || {
            Refusal::new(Arc::clone(&backend), resolved.context.into_owned())
        }))
    }

    /// Resolves a hit for its backend (the skip checks, the backend resolution and the key):
    /// what [`hit_all`](super::hit_all) batches and the asynchronous path decides.
    pub(super) async fn prepare(
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
        if let Some(skip) = self.skip_early(options) {
            return Ok(Prepared::Skipped(Decision::skipped(skip)));
        }
        if let Some(skip) = self.bypassed(connection, options).await {
            return Ok(Prepared::Skipped(Decision::skipped(skip)));
        }
        let strategy = match &config.strategy {
            StrategyRef::Pure(strategy) => strategy,
            StrategyRef::KeyValue(strategy) => return Ok(Prepared::KeyValue(Arc::clone(strategy))),
        };
        match self
            .resolve(config, connection, options, Cost::Resolve)
            .await
        {
            Ok(resolved) => self.ready(config, strategy, options, resolved),
            Err(skip) => Ok(Prepared::Skipped(Decision::skipped(skip))),
        }
    }

    /// The resolved hit made ready for its backend.
    pub(super) fn ready(
        &self,
        config: &Config<C>,
        strategy: &Arc<dyn DynStrategy>,
        options: &HitOptions<'_>,
        resolved: super::resolve::Resolved<'_>,
    ) -> Result<Prepared, ThrottleError> {
        let (backend, key) = self.locate(config, options, resolved.client.key())?;
        let on_error = config.on_error_on(backend.as_ref());
        Ok(Prepared::Ready(Ready {
            backend,
            key,
            strategy: Arc::clone(strategy),
            rate: resolved.rate,
            cost: resolved.cost,
            context: resolved.context.into_owned(),
            now: self.now_of(options),
            min_wait: config.min_wait,
            on_error,
            shadow_mode: self.is_shadow_mode(),
        }))
    }
}

/// Raises the wait of a throttled decision to `min_wait`.
#[inline]
pub(super) fn with_min_wait(mut decision: Decision, min_wait: Option<Duration>) -> Decision {
    if let (Outcome::Throttled { wait }, Some(floor)) = (decision.outcome, min_wait) {
        decision.outcome = Outcome::Throttled {
            wait: wait.max(floor),
        };
    }
    decision
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
