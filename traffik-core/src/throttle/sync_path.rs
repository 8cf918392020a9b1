//! The synchronous path: a hit decided inside `poll` (or `Service::call`) with no future, when
//! every input is synchronous and the backend decides at once (the in-memory backend).

use std::sync::Arc;

use super::all::Prepared;
use super::config::StrategyRef;
use super::rules::RuleCheck;
use super::verdict::{Refusal, Report};
use super::{HitOptions, Throttle};
use crate::backend::Mode;
use crate::key::with_key_buffer;
use crate::strategy::Hit;
use crate::telemetry::DecisionSpan;
use crate::{Decision, SkipReason, ThrottleError};

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// Decides at once if it can: a skip, or the synchronous path. `None` sends the hit down
    /// the asynchronous path, and nothing was consumed. A decision is counted in the
    /// throttle's metrics and recorded in `span`.
    #[inline]
    pub(super) fn decide_now<R: Report>(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
        span: &DecisionSpan,
    ) -> Option<Result<R, ThrottleError>> {
        // An asynchronous rule condition: the asynchronous path checks the rules.
        let skip = self.skip_now(connection, options).ok()?;
        let result = match skip {
            Some(skip) => Some(Ok(R::unrefused(Decision::skipped(skip)))),
            None => self
                .decide_lane(connection, options, mode, span)
                .or_else(|| self.run_now(connection, options, mode, span)),
        };
        if let Some(result) = &result {
            if let Ok(report) = result {
                self.count(mode, &report.decision());
            }
            span.finish(result, R::decision);
        }
        result
    }

    /// Every input is synchronous and the backend decides at once: no allocation, no reference
    /// count touched (a refusal reported as a [`Verdict`](super::Verdict) clones the backend's
    /// handle). `None` sends the hit down the asynchronous path, which also handles backend
    /// errors.
    #[inline]
    fn run_now<R: Report>(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
        mode: Mode,
        span: &DecisionSpan,
    ) -> Option<Result<R, ThrottleError>> {
        let config = self.inner.config.load();
        if !config.is_synchronous() {
            return None;
        }
        let StrategyRef::Pure(strategy) = &config.strategy else {
            return None;
        };
        self.resolve_now(
            &config,
            connection,
            options,
            |skip| Ok(R::unrefused(Decision::skipped(skip))),
            |resolved| {
                let hit = Hit::new(
                    self.now_of(options),
                    resolved.rate,
                    resolved.cost,
                    &resolved.context,
                );
                let mut default = None;
                let Some(selected) = self.select(&config, options, &mut default) else {
                    return Some(Err(self.no_backend()));
                };
                span.hit(resolved.cost, &**selected.backend);
                let decision = match selected.lane {
                    Some(lane) => lane
                        .decide(
                            resolved.client.key(),
                            options.scope,
                            strategy.as_ref(),
                            &hit,
                            mode,
                        )
                        .ok_or(()),
                    None => with_key_buffer(|key| {
                        selected.write_key(
                            key,
                            self,
                            &config,
                            resolved.client.key(),
                            options.scope,
                        );
                        selected
                            .backend
                            .decide_now(key, strategy.as_ref(), hit, mode)
                    })?
                    .map_err(drop),
                }
                .ok()?;
                Some(Ok(R::decided(
                    self.settle(decision, config.min_wait),
                    || Refusal::new(Arc::clone(selected.backend), resolved.context.into_owned()),
                )))
            },
        )
    }

    /// The skips decided before any input is resolved (disabled, a per-call cost of 0, a rule
    /// leaving the hit out); `Err` when a rule condition is asynchronous.
    #[inline]
    fn skip_now(&self, connection: &C, options: &HitOptions<'_>) -> Result<Option<SkipReason>, ()> {
        if let Some(skip) = self.skip_early(options) {
            return Ok(Some(skip));
        }
        match self.bypassed_now(connection, options) {
            RuleCheck::Applies => Ok(None),
            RuleCheck::Bypassed => Ok(Some(SkipReason::Bypassed)),
            RuleCheck::Pending => Err(()),
        }
    }

    /// [`prepare`](Self::prepare) without awaiting: `None` when an input is asynchronous.
    pub(super) fn prepare_now(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
    ) -> Option<Result<Prepared, ThrottleError>> {
        // An asynchronous rule condition: the asynchronous path checks the rules.
        let skip = self.skip_now(connection, options).ok()?;
        if let Some(skip) = skip {
            return Some(Ok(Prepared::Skipped(Decision::skipped(skip))));
        }
        let config = self.inner.config.load_full();
        let strategy = match &config.strategy {
            StrategyRef::Pure(strategy) => strategy,
            StrategyRef::KeyValue(strategy) => {
                return Some(Ok(Prepared::KeyValue(Arc::clone(strategy))));
            }
        };
        self.resolve_now(
            &config,
            connection,
            options,
            |skip| Ok(Prepared::Skipped(Decision::skipped(skip))),
            |resolved| Some(self.ready(&config, strategy, options, resolved)),
        )
    }
}
