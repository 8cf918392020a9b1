//! Live updates: replacing a throttle's settings while it serves. Each update is validated like
//! the builder's settings (the strategy against the rate, the rate against the backend); a
//! failed update changes nothing and says why.

use std::sync::Arc;
use std::time::Duration;

use super::source::{CostSource, RateSource};
use super::{Config, StrategyRef, Throttle};
use crate::backend::{Backend, KeyValueStrategy};
use crate::headers::Headers;
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
        self.update(|config| {
            config.base_identifier = identifier.clone();
            config.explicit_identifier = true;
        })
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

    /// Replaces the rate-limit headers its responses carry (the reference's
    /// `update_headers`; [`Headers::none`] sends none but `Retry-After`).
    ///
    /// # Errors
    /// None today; the `Result` keeps every update reporting the same way.
    pub fn update_headers(&self, headers: Headers) -> Result<(), ConfigError> {
        self.update(|config| config.headers = headers.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Backend;
    use crate::headers::Headers;
    use crate::strategy::{Gcra, Tiered};
    use crate::throttle::{CostFn, HitOptions, Identifier, OnError, RateFn};
    use crate::{
        Context, Identity, ManualClock, MemoryBackend, Rate, SkipReason, Throttle, ThrottleRegistry,
    };

    fn throttle(uid: &str, rate: &str) -> (Throttle, ManualClock) {
        let clock = ManualClock::new(1_000_000);
        let backend = MemoryBackend::builder()
            .clock(clock.clone())
            .build()
            .unwrap();
        let throttle = Throttle::builder(uid, rate)
            .registry(&ThrottleRegistry::new())
            .clock(clock.clone())
            .backend(backend)
            .build()
            .unwrap();
        (throttle, clock)
    }

    async fn remaining(throttle: &Throttle, client: &str) -> u64 {
        throttle.hit(client).await.unwrap().remaining
    }

    #[tokio::test]
    async fn a_new_strategy_decides_at_once_and_the_old_state_is_there_when_it_returns() {
        let (t, _) = throttle("upd-strategy", "5/min");
        assert_eq!(remaining(&t, "a").await, 4);
        t.update_strategy(Gcra::new()).unwrap();
        let gcra = t.hit("a").await.unwrap();
        assert!(gcra.is_allowed(), "GCRA starts from its own fresh state");
        assert!(
            t.hit("a").await.unwrap().is_throttled(),
            "GCRA spaces hits 12 s apart"
        );
        t.update_strategy(crate::strategy::FixedWindow::new())
            .unwrap();
        assert_eq!(
            remaining(&t, "a").await,
            3,
            "the fixed window's count survived"
        );
    }

    #[tokio::test]
    async fn a_new_identifier_keys_hits_anew_and_old_keys_keep_their_state() {
        let (t, _) = throttle("upd-identifier", "5/min");
        assert_eq!(remaining(&t, "alice").await, 4);
        t.update_identifier(Identifier::new(|_: &str| Identity::from("everyone")))
            .unwrap();
        assert_eq!(remaining(&t, "alice").await, 4, "alice is now `everyone`");
        assert_eq!(remaining(&t, "bob").await, 3, "one shared budget");
        t.update_identifier(Identifier::new(|key: &str| Identity::from(key)))
            .unwrap();
        assert_eq!(
            remaining(&t, "alice").await,
            3,
            "alice's own count survived"
        );
    }

    #[tokio::test]
    async fn a_new_on_error_policy_answers_the_next_failure() {
        let clock = ManualClock::new(1_000_000);
        let backend = MemoryBackend::builder()
            .clock(clock.clone())
            .build()
            .unwrap();
        let _ = Backend::close(&backend).into_ready();
        let t = Throttle::builder("upd-on-error", "5/min")
            .registry(&ThrottleRegistry::new())
            .clock(clock)
            .backend(backend)
            .build()
            .unwrap();
        let open = t.hit("a").await.unwrap();
        assert_eq!(
            open.skip_reason(),
            Some(SkipReason::BackendFailure),
            "fail open"
        );
        t.update_on_error(Some(OnError::Throttle)).unwrap();
        assert!(t.hit("a").await.unwrap().is_throttled(), "fail closed now");
        t.update_on_error(Some(OnError::Raise)).unwrap();
        assert!(t.hit("a").await.is_err());
        t.update_on_error(None).unwrap();
        assert!(
            t.hit("a").await.unwrap().is_skipped(),
            "back to the default"
        );
    }

    #[tokio::test]
    async fn a_new_cost_function_charges_the_next_hits_against_the_same_budget() {
        let (t, _) = throttle("upd-cost-fn", "10/min");
        assert_eq!(remaining(&t, "a").await, 9);
        t.update_cost_fn(CostFn::new(|client: &str, _: &Context| client.len() as u64))
            .unwrap();
        assert_eq!(remaining(&t, "a").await, 8, "`a` costs 1");
        assert_eq!(remaining(&t, "abc").await, 7, "`abc` costs 3 of its own 10");
        assert_eq!(remaining(&t, "abc").await, 4);
        t.update_cost(1).unwrap();
        assert_eq!(
            remaining(&t, "abc").await,
            3,
            "back to a fixed cost, same count"
        );
    }

    #[tokio::test]
    async fn a_new_rate_function_reads_the_stored_state_under_each_hits_rate() {
        let (t, _) = throttle("upd-rate-fn", "3/min");
        assert_eq!(remaining(&t, "pro").await, 2);
        t.update_rate_fn(RateFn::new(|client: &str, _: &Context| {
            if client == "pro" {
                Rate::per_minute(10)
            } else {
                Rate::per_minute(3)
            }
        }))
        .unwrap();
        assert_eq!(t.rate(), None, "chosen per hit");
        let pro = t.hit("pro").await.unwrap();
        assert_eq!(
            (pro.limit, pro.remaining),
            (10, 8),
            "the first hit still counts"
        );
        assert_eq!(remaining(&t, "free").await, 2);
    }

    #[tokio::test]
    async fn new_static_context_reaches_the_strategy_and_state_survives() {
        let clock = ManualClock::new(1_000_000);
        let t = Throttle::builder("upd-context", "10/min")
            .registry(&ThrottleRegistry::new())
            .clock(clock.clone())
            .backend(MemoryBackend::builder().clock(clock).build().unwrap())
            .strategy(Tiered::new())
            .build()
            .unwrap();
        let free = t.hit("a").await.unwrap();
        t.update_context(Context::new().with("tier", "premium"))
            .unwrap();
        let premium = t.hit("a").await.unwrap();
        assert!(
            premium.limit > free.limit,
            "{} > {}",
            premium.limit,
            free.limit
        );
        // A call's context still wins over the static one.
        let call = Context::new().with("tier", "free");
        let back = t
            .hit_with("a", HitOptions::new().context(&call))
            .await
            .unwrap();
        assert_eq!(back.limit, free.limit);
    }

    #[tokio::test]
    async fn new_headers_are_read_by_every_handle() {
        let (t, _) = throttle("upd-headers", "10/min");
        let clone = t.clone();
        assert!(t.headers().is_empty());
        t.update_headers(Headers::always().ietf("api")).unwrap();
        assert!(!clone.headers().is_empty());
        let decision = clone.hit("a").await.unwrap();
        let mut names = Vec::new();
        clone.headers().render(&decision, clone.rate(), |name, _| {
            names.push(name.to_owned())
        });
        assert!(names.iter().any(|name| name == "RateLimit"), "{names:?}");
    }
}
