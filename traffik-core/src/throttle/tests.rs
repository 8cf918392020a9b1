//! Behaviour of the throttle engine, on real in-memory backends with a manual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::*;
use crate::backend::{Backend, BackendError, BackendFuture, LockOptions};
use crate::strategy::{DynStrategy, Tiered, TokenBucket};
use crate::{Context, EXEMPTED, ManualClock, MemoryBackend, Outcome, Rate, StatMetadata};

fn memory(clock: &ManualClock) -> MemoryBackend {
    MemoryBackend::builder()
        .clock(clock.clone())
        .lock_options(LockOptions::default())
        .build()
        .unwrap()
}

fn closed(clock: &ManualClock) -> MemoryBackend {
    let backend = memory(clock);
    let _ = Backend::close(&backend).into_ready();
    backend
}

struct Setup {
    clock: ManualClock,
    registry: ThrottleRegistry,
}

impl Setup {
    fn new() -> Self {
        Setup {
            clock: ManualClock::new(1_000_000),
            registry: ThrottleRegistry::new(),
        }
    }

    fn throttle(&self, uid: &str, rate: &str) -> ThrottleBuilder<str> {
        Throttle::builder(uid, rate)
            .registry(&self.registry)
            .clock(self.clock.clone())
    }
}

#[tokio::test]
async fn admits_the_limit_then_throttles_with_the_real_wait() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "2/s")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    let third = throttle.hit("a").await.unwrap();
    assert_eq!(third.wait(), Some(Duration::from_secs(1)));
    assert_eq!(third.retry_after_secs(), Some(1));
    assert!(
        throttle.hit("b").await.unwrap().is_allowed(),
        "clients have separate budgets"
    );
    setup.clock.advance(Duration::from_secs(1));
    assert!(throttle.hit("a").await.unwrap().is_allowed());
}

#[tokio::test]
async fn exempted_clients_skip_everything_even_without_a_backend() {
    let setup = Setup::new();
    let throttle = ThrottleBuilder::<str>::new("t", "1/s")
        .identifier(Identifier::new(|key: &str| {
            if key == "admin" {
                EXEMPTED
            } else {
                Identity::from(key)
            }
        }))
        .registry(&setup.registry)
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            throttle.hit("admin").await.unwrap().outcome,
            Outcome::Skipped(SkipReason::Exempted)
        );
    }
    assert!(throttle.stat("admin").await.unwrap().is_none());
    assert!(
        matches!(throttle.hit("user").await, Err(ThrottleError::NoBackend { uid }) if uid == "t")
    );
}

#[tokio::test]
async fn zero_cost_unlimited_and_disabled_hits_are_no_ops() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "1/s")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        throttle
            .hit_with("a", HitOptions::new().cost(0))
            .await
            .unwrap()
            .outcome,
        Outcome::Skipped(SkipReason::ZeroCost)
    );
    throttle.disable();
    assert_eq!(
        throttle.hit("a").await.unwrap().outcome,
        Outcome::Skipped(SkipReason::Disabled)
    );
    throttle.enable();
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "nothing was consumed while skipped"
    );
    assert!(throttle.hit("a").await.unwrap().is_throttled());

    let free = setup.throttle("free", "unlimited").build().unwrap();
    assert_eq!(
        free.hit("a").await.unwrap().outcome,
        Outcome::Skipped(SkipReason::Unlimited)
    );
    let zero = setup
        .throttle("zero", "1/s")
        .cost(0)
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        zero.hit("a").await.unwrap().outcome,
        Outcome::Skipped(SkipReason::ZeroCost)
    );
}

#[tokio::test]
async fn min_wait_applies_only_to_throttled_hits() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "2/s")
        .min_wait(Duration::from_secs(5))
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        throttle.hit("a").await.unwrap().wait(),
        Some(Duration::ZERO)
    );
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert_eq!(
        throttle.hit("a").await.unwrap().wait(),
        Some(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn on_error_policies() {
    let setup = Setup::new();
    let allow = setup
        .throttle("allow", "1/s")
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        allow.hit("a").await.unwrap().outcome,
        Outcome::Skipped(SkipReason::BackendFailure),
        "the default fails open"
    );

    let fail_closed = setup
        .throttle("closed", "1/s")
        .on_error(OnError::Throttle)
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        fail_closed.hit("a").await.unwrap().wait(),
        Some(DEFAULT_ERROR_WAIT)
    );
    let with_min = setup
        .throttle("closed-min", "1/s")
        .on_error(OnError::Throttle)
        .min_wait(Duration::from_secs(3))
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        with_min.hit("a").await.unwrap().wait(),
        Some(Duration::from_secs(3))
    );

    let raise = setup
        .throttle("raise", "1/s")
        .on_error(OnError::Raise)
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    let error = raise.hit("a").await.unwrap_err();
    assert!(
        matches!(&error, ThrottleError::Backend { uid, source: BackendError::Closed { .. } } if uid == "raise")
    );
    assert!(
        error.to_string().contains("raise") && error.to_string().contains("closed"),
        "{error}"
    );

    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let handler = OnError::handler(move |info| {
        counter.store(info.cost, Ordering::SeqCst);
        Box::pin(async move { Ok(info.throttle(Duration::from_secs(7))) })
    });
    let custom = setup
        .throttle("custom", "1/s")
        .cost(3)
        .on_error(handler)
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(
        custom.hit("a").await.unwrap().wait(),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "the handler saw the hit's cost"
    );
}

#[tokio::test]
async fn the_backend_policy_applies_unless_the_throttle_sets_its_own() {
    let setup = Setup::new();
    let failing = || {
        let backend = MemoryBackend::builder()
            .clock(setup.clock.clone())
            .on_error(OnError::Raise)
            .lock_options(LockOptions::default())
            .build()
            .unwrap();
        let _ = Backend::close(&backend).into_ready();
        backend
    };
    let inherits = setup
        .throttle("inherits", "1/s")
        .backend(failing())
        .build()
        .unwrap();
    assert!(inherits.hit("a").await.is_err());
    let overrides = setup
        .throttle("overrides", "1/s")
        .on_error(OnError::Allow)
        .backend(failing())
        .build()
        .unwrap();
    assert!(overrides.hit("a").await.unwrap().is_allowed());
}

#[tokio::test]
async fn a_handler_can_fall_back_to_another_backend() {
    let setup = Setup::new();
    let fallback: Arc<dyn Backend> = Arc::new(memory(&setup.clock));
    let shared = Arc::clone(&fallback);
    let handler = OnError::handler(move |info| {
        let fallback = Arc::clone(&shared);
        Box::pin(async move { info.retry_on(fallback.as_ref()).await })
    });
    let throttle = setup
        .throttle("fallback", "2/min")
        .on_error(handler)
        .backend(closed(&setup.clock))
        .build()
        .unwrap();
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(
        throttle.hit("a").await.unwrap().is_throttled(),
        "the fallback enforces the limit"
    );
}

#[tokio::test]
async fn backends_resolve_from_the_throttle_then_the_hit_then_the_registry() {
    let setup = Setup::new();
    let throttle = setup.throttle("t", "1/min").build().unwrap();
    assert!(matches!(
        throttle.hit("a").await,
        Err(ThrottleError::NoBackend { .. })
    ));
    let tenant: Arc<dyn Backend> =
        Arc::new(memory(&setup.clock).with_namespace("tenant-a").unwrap());
    assert!(
        throttle
            .hit_with("a", HitOptions::new().backend(&tenant))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        throttle
            .hit_with("a", HitOptions::new().backend(&tenant))
            .await
            .unwrap()
            .is_throttled()
    );
    setup.registry.set_default_backend(memory(&setup.clock));
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "the default backend has its own state"
    );
    let own = setup
        .throttle("own", "1/min")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert!(
        own.hit_with("a", HitOptions::new().backend(&tenant))
            .await
            .unwrap()
            .is_allowed(),
        "the throttle's backend wins"
    );
}

#[tokio::test]
async fn uids_are_unique_per_registry_and_released_on_drop() {
    let setup = Setup::new();
    let first = setup.throttle("same", "1/s").build().unwrap();
    let error = setup.throttle("same", "2/s").build().unwrap_err();
    assert!(matches!(&error, ConfigError::DuplicateUid { uid } if uid == "same"));
    assert!(error.to_string().contains("`same`"));
    let clone = first.clone();
    drop(first);
    assert!(setup.registry.contains("same"), "a clone keeps it alive");
    setup.registry.disable("same");
    assert!(clone.is_disabled());
    setup.registry.enable_all();
    assert!(!clone.is_disabled());
    drop(clone);
    assert!(!setup.registry.contains("same"));
    assert!(setup.throttle("same", "2/s").build().is_ok());
    let other = ThrottleRegistry::new();
    let _a = Throttle::builder("x", "1/s")
        .registry(&other)
        .build()
        .unwrap();
    let _b = setup.throttle("x", "1/s").build().unwrap();
    assert_eq!(other.uids(), ["x"]);
}

#[tokio::test]
async fn build_errors_name_the_problem() {
    let setup = Setup::new();
    let bad_rate = setup.throttle("t", "5/fortnight").build().unwrap_err();
    assert!(matches!(bad_rate, ConfigError::InvalidRate { .. }));
    assert!(bad_rate.to_string().contains("fortnight"), "{bad_rate}");
    assert!(matches!(
        setup.throttle("bad uid", "1/s").build(),
        Err(ConfigError::InvalidUid { .. })
    ));
    assert!(matches!(
        setup
            .throttle("t", "1/s")
            .strategy(TokenBucket::new().burst(0))
            .build(),
        Err(ConfigError::InvalidStrategy { .. })
    ));
    struct Request;
    let missing = ThrottleBuilder::<Request>::new("t", "1/s")
        .registry(&setup.registry)
        .build()
        .unwrap_err();
    assert!(matches!(missing, ConfigError::MissingIdentifier { .. }));
}

#[tokio::test]
async fn check_consumes_nothing_and_stat_reports_typed_metadata() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "3/s")
        .strategy(TokenBucket::new())
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert!(throttle.check("a").await.unwrap().is_allowed());
    }
    assert!(
        throttle
            .check_with("a", HitOptions::new().cost(4))
            .await
            .unwrap()
            .is_throttled()
    );
    throttle
        .hit_with("a", HitOptions::new().cost(2))
        .await
        .unwrap();
    let stat = throttle.stat("a").await.unwrap().unwrap();
    assert_eq!(stat.hits_remaining, 1);
    assert_eq!(stat.key, "traffik:t:{a}:token-bucket");
    let StatMetadata::TokenBucket(meta) = stat.metadata else {
        panic!("{stat:?}")
    };
    assert_eq!((meta.tokens, meta.capacity), (1.0, 3));
}

#[tokio::test]
async fn rate_and_cost_functions_may_be_async() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "1/s")
        .rate_fn(RateFn::from_async(|key: &str, _: &Context| {
            Box::pin(async move {
                if key.starts_with("vip") {
                    Rate::per_minute(10)
                } else {
                    Rate::per_minute(2)
                }
            })
        }))
        .cost_fn(CostFn::from_async(|_: &str, context: &Context| {
            Box::pin(async move {
                context
                    .get("cost")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(1)
            })
        }))
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(throttle.hit("vip-1").await.unwrap().remaining, 9);
    assert_eq!(throttle.hit("guest").await.unwrap().remaining, 1);
    let heavy = Context::new().with("cost", 8);
    assert_eq!(
        throttle
            .hit_with("vip-1", HitOptions::new().context(&heavy))
            .await
            .unwrap()
            .remaining,
        1
    );
    assert_eq!(
        throttle.stat("vip-1").await.unwrap().unwrap().rate,
        Rate::per_minute(10),
        "stat resolves the rate function"
    );
}

#[tokio::test]
async fn call_time_context_is_merged_over_static_context() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "10/min")
        .strategy(Tiered::new())
        .context(Context::new().with("tier", "free").with("region", "eu"))
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert_eq!(throttle.hit("a").await.unwrap().limit, 10);
    let premium = Context::new().with("tier", "premium");
    assert_eq!(
        throttle
            .hit_with("b", HitOptions::new().context(&premium))
            .await
            .unwrap()
            .limit,
        50
    );
}

#[tokio::test]
async fn scopes_split_a_clients_budget() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "1/min")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert!(
        throttle
            .hit_with("a", HitOptions::new().scope("GET /a"))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        throttle
            .hit_with("a", HitOptions::new().scope("GET /b"))
            .await
            .unwrap()
            .is_allowed()
    );
    assert!(
        throttle
            .hit_with("a", HitOptions::new().scope("GET /a"))
            .await
            .unwrap()
            .is_throttled()
    );
}

#[tokio::test]
async fn updates_swap_configuration_without_losing_state() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "5/min")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    throttle
        .hit_with("a", HitOptions::new().cost(2))
        .await
        .unwrap();
    throttle.update_rate("3/min").unwrap();
    assert_eq!(throttle.rate(), Some(Rate::per_minute(3)));
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(
        throttle.hit("a").await.unwrap().is_throttled(),
        "the 2 already used still count"
    );
    assert!(throttle.update_rate("3/lightyear").is_err());
    assert!(
        throttle
            .update_strategy(TokenBucket::new().burst(0))
            .is_err()
    );
    assert_eq!(
        throttle.rate(),
        Some(Rate::per_minute(3)),
        "a failed update changes nothing"
    );
    throttle.update_cost(0).unwrap();
    assert!(throttle.hit("a").await.unwrap().is_skipped());
    throttle.update_cost(1).unwrap();
    throttle
        .update_min_wait(Some(Duration::from_secs(90)))
        .unwrap();
    assert_eq!(
        throttle.hit("a").await.unwrap().wait(),
        Some(Duration::from_secs(90))
    );
    throttle
        .update_backend(Some(Arc::new(memory(&setup.clock))))
        .unwrap();
    assert!(
        throttle.hit("a").await.unwrap().is_allowed(),
        "a new backend has new state"
    );
}

#[tokio::test]
async fn connection_types_other_than_str_use_their_identifier() {
    struct Request {
        ip: &'static str,
        path: &'static str,
    }
    let setup = Setup::new();
    let throttle = ThrottleBuilder::<Request>::new("by-ip", "1/min")
        .identifier(Identifier::new(|request: &Request| {
            Identity::from(request.ip)
        }))
        .cost_fn(CostFn::new(
            |request: &Request, _: &Context| if request.path == "/upload" { 2 } else { 1 },
        ))
        .backend(memory(&setup.clock))
        .registry(&setup.registry)
        .clock(setup.clock.clone())
        .build()
        .unwrap();
    let upload = Request {
        ip: "10.0.0.1",
        path: "/upload",
    };
    assert!(matches!(
        throttle.hit(&upload).await.unwrap().outcome,
        Outcome::ExceedsCapacity { capacity: 1 }
    ));
    assert!(
        throttle
            .hit(&Request {
                ip: "10.0.0.1",
                path: "/"
            })
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn key_value_strategies_run_on_backends_with_the_contract() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("t", "2/min")
        .key_value_strategy(crate::testing::Counter)
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.check("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_allowed());
    assert!(throttle.hit("a").await.unwrap().is_throttled());
    assert_eq!(throttle.stat("a").await.unwrap().unwrap().hits_remaining, 0);

    #[derive(Debug)]
    struct NoContract(MemoryBackend);
    impl Backend for NoContract {
        fn name(&self) -> &str {
            "no-contract"
        }
        fn settings(&self) -> &crate::backend::BackendSettings {
            self.0.settings()
        }
        fn decide<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
            mode: Mode,
        ) -> BackendFuture<'a, Decision> {
            self.0.decide(key, strategy, hit, mode)
        }
        fn stat<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
        ) -> BackendFuture<'a, StrategyStat> {
            Backend::stat(&self.0, key, strategy, hit)
        }
        fn reset(&self) -> BackendFuture<'_, ()> {
            Backend::reset(&self.0)
        }
        fn close(&self) -> BackendFuture<'_, ()> {
            Backend::close(&self.0)
        }
    }
    let unsupported = setup
        .throttle("u", "2/min")
        .key_value_strategy(crate::testing::Counter)
        .backend(NoContract(memory(&setup.clock)))
        .build()
        .unwrap();
    assert!(matches!(
        unsupported.hit("a").await,
        Err(ThrottleError::UnsupportedStrategy {
            strategy: "counter",
            ..
        })
    ));
    let pure = setup
        .throttle("p", "1/min")
        .backend(NoContract(memory(&setup.clock)))
        .build()
        .unwrap();
    assert!(
        pure.hit("a").await.unwrap().is_allowed(),
        "an async-only backend goes down the async path"
    );
    assert!(pure.hit("a").await.unwrap().is_throttled());
}

#[tokio::test]
async fn a_refusal_carries_the_backend_that_refused_and_the_merged_context() {
    let setup = Setup::new();
    let registry_default: Arc<dyn Backend> =
        Arc::new(memory(&setup.clock).with_namespace("default").unwrap());
    setup
        .registry
        .set_default_backend_shared(Arc::clone(&registry_default));
    let per_call: Arc<dyn Backend> =
        Arc::new(memory(&setup.clock).with_namespace("per-call").unwrap());
    let throttle = setup
        .throttle("verdicts", "1/min")
        .context(Context::new().with("plan", "free").with("region", "eu"))
        .build()
        .unwrap();
    let call = Context::new().with("plan", "pro");
    for (backend, namespace) in [(Some(&per_call), "per-call"), (None, "default")] {
        let options = |options: HitOptions<'static>| match backend {
            Some(backend) => options.backend(backend),
            None => options,
        };
        let first = throttle
            .try_hit_verdict_now("a", options(HitOptions::new()))
            .expect("in memory")
            .unwrap();
        assert!(first.decision().is_allowed() && first.refusal().is_none());
        let refused = throttle
            .hit_verdict("a", options(HitOptions::new()).context(&call))
            .await
            .unwrap();
        assert!(refused.decision().is_throttled());
        let refusal = refused.refusal().expect("refused");
        assert_eq!(refusal.backend().namespace(), namespace);
        assert_eq!(refusal.context().get_str("plan"), Some("pro"));
        assert_eq!(refusal.context().get_str("region"), Some("eu"));
        let peeked = throttle
            .check_verdict("a", options(HitOptions::new()))
            .await
            .unwrap();
        assert_eq!(peeked.refusal().unwrap().backend().namespace(), namespace);
    }
    // Skipped hits are never refusals.
    let skipped = throttle
        .hit_verdict("a", HitOptions::new().cost(0))
        .await
        .unwrap();
    assert!(skipped.decision().is_skipped() && skipped.refusal().is_none());
}

#[tokio::test]
async fn every_path_reports_the_refusal_it_decided() {
    let setup = Setup::new();
    let backend: Arc<dyn Backend> = Arc::new(memory(&setup.clock).with_namespace("own").unwrap());
    let context = Context::new().with("plan", "free");
    let assert_refused = |verdict: &Verdict, namespace: &str| {
        assert!(verdict.decision().is_throttled(), "{verdict:?}");
        let refusal = verdict.refusal().expect("a refusal");
        assert_eq!(refusal.backend().namespace(), namespace);
        assert_eq!(refusal.context().get_str("plan"), Some("free"));
    };

    // The asynchronous path: an asynchronous cost function.
    let asynchronous = setup
        .throttle("verdict-async", "1/min")
        .cost_fn(CostFn::from_async(|_: &str, _: &Context| {
            Box::pin(async { 1 })
        }))
        .context(context.clone())
        .shared_backend(Arc::clone(&backend))
        .build()
        .unwrap();
    assert!(
        asynchronous
            .try_hit_verdict_now("a", HitOptions::new())
            .is_none()
    );
    let first = asynchronous
        .hit_verdict("a", HitOptions::new())
        .await
        .unwrap();
    assert!(first.refusal().is_none());
    assert_refused(
        &asynchronous
            .hit_verdict("a", HitOptions::new())
            .await
            .unwrap(),
        "own",
    );

    // A key-value strategy.
    let key_value = setup
        .throttle("verdict-kv", "1/min")
        .key_value_strategy(crate::testing::Counter)
        .context(context.clone())
        .shared_backend(Arc::clone(&backend))
        .build()
        .unwrap();
    assert!(
        key_value
            .hit_verdict("a", HitOptions::new())
            .await
            .unwrap()
            .refusal()
            .is_none()
    );
    assert_refused(
        &key_value.hit_verdict("a", HitOptions::new()).await.unwrap(),
        "own",
    );

    // A failing backend whose policy fails closed: the refusal names that backend.
    let down: Arc<dyn Backend> = Arc::new(closed(&setup.clock).with_namespace("down").unwrap());
    let fail_closed = setup
        .throttle("verdict-closed", "5/min")
        .on_error(OnError::Throttle)
        .context(context.clone())
        .shared_backend(Arc::clone(&down))
        .build()
        .unwrap();
    assert_refused(
        &fail_closed
            .hit_verdict("a", HitOptions::new())
            .await
            .unwrap(),
        "down",
    );

    // A batch: the refusing limit carries its refusal, the other none; both paths agree.
    let wide = setup
        .throttle("verdict-wide", "10/min")
        .context(context.clone())
        .shared_backend(Arc::clone(&backend))
        .build()
        .unwrap();
    let narrow = setup
        .throttle("verdict-narrow", "1/min")
        .context(context.clone())
        .shared_backend(Arc::clone(&backend))
        .build()
        .unwrap();
    let limits = [
        Limit::new(&wide, "b", HitOptions::new()),
        Limit::new(&narrow, "b", HitOptions::new()),
    ];
    let admitted = try_hit_all_verdicts_now(&limits)
        .expect("in memory")
        .unwrap();
    assert!(admitted.iter().all(|verdict| verdict.refusal().is_none()));
    let refused = hit_all_verdicts(&limits).await.unwrap();
    assert!(refused[0].refusal().is_none());
    assert_refused(&refused[1], "own");
    let refused_now = try_hit_all_verdicts_now(&limits)
        .expect("in memory")
        .unwrap();
    assert_refused(&refused_now[1], "own");
}

#[tokio::test]
async fn the_builder_keeps_headers_and_extensions_for_adapters() {
    use crate::headers::Headers;

    /// An adapter's throttle: reads its setting from the extensions once.
    struct Tagged {
        throttle: Throttle,
        tag: &'static str,
    }
    impl FromThrottle<str> for Tagged {
        fn from_throttle(throttle: Throttle) -> Result<Self, ConfigError> {
            let tag = *throttle.extensions().get::<&'static str>().ok_or_else(|| {
                ConfigError::InvalidBackend {
                    backend: "tagged",
                    reason: "no tag".to_owned(),
                }
            })?;
            Ok(Tagged { throttle, tag })
        }
    }

    let setup = Setup::new();
    let tagged = setup
        .throttle("adapter-tagged", "1/min")
        .backend(memory(&setup.clock))
        .headers(Headers::always())
        .extension("gold")
        .extension(7_u32)
        .builds::<Tagged>()
        .build()
        .unwrap();
    assert_eq!(tagged.tag, "gold");
    assert!(!tagged.throttle.headers().is_empty());
    assert_eq!(tagged.throttle.extensions().get::<u32>(), Some(&7));
    assert!(tagged.throttle.hit("a").await.unwrap().is_allowed());
    let peeked = tagged
        .throttle
        .try_check_verdict_now("a", HitOptions::new())
        .expect("in memory")
        .unwrap();
    assert_eq!(peeked.refusal().unwrap().backend().name(), "memory");

    // The adapter's own check runs when it is built.
    assert!(
        setup
            .throttle("adapter-untagged", "1/min")
            .backend(memory(&setup.clock))
            .builds::<Tagged>()
            .build()
            .is_err()
    );
    // A plain throttle has no headers and no extensions unless given.
    let plain = setup
        .throttle("adapter-plain", "1/min")
        .backend(memory(&setup.clock))
        .build()
        .unwrap();
    assert!(plain.headers().is_empty() && plain.extensions().is_empty());
}

#[tokio::test]
async fn shadow_mode_decides_and_records_but_lets_refusals_pass() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("shadow", "3/min")
        .backend(memory(&setup.clock))
        .shadow_mode(true)
        .build()
        .unwrap();
    let mut shadowed = 0;
    for _ in 0..10 {
        let decision = throttle.hit("a").await.unwrap();
        assert!(decision.is_allowed(), "every hit passes");
        shadowed += usize::from(decision.is_shadow_throttled());
    }
    assert_eq!(shadowed, 7);
    // Recorded as usual: the client's window is full.
    assert_eq!(throttle.stat("a").await.unwrap().unwrap().hits_remaining, 0);
    // The synchronous path and a verdict agree; a shadow refusal carries no refusal.
    let now = throttle
        .try_hit_verdict_now("a", HitOptions::new())
        .unwrap()
        .unwrap();
    assert!(now.decision().is_shadow_throttled() && now.refusal().is_none());

    throttle.set_shadow_mode(false);
    assert!(throttle.hit("a").await.unwrap().is_throttled());
    setup.registry.set_shadow_mode(true);
    assert!(throttle.is_shadow_mode(), "the registry-wide switch");
    assert!(throttle.hit("a").await.unwrap().is_shadow_throttled());
    setup.registry.set_shadow_mode(false);
    assert!(setup.registry.set_throttle_shadow_mode("shadow", true));
    assert_eq!(setup.registry.is_throttle_shadow_mode("shadow"), Some(true));
    assert!(throttle.hit("a").await.unwrap().is_shadow_throttled());
    assert!(!setup.registry.set_throttle_shadow_mode("missing", true));
}

#[tokio::test]
async fn shadow_mode_lets_a_fail_closed_refusal_pass_too() {
    let setup = Setup::new();
    let throttle = setup
        .throttle("shadow-closed", "3/min")
        .backend(closed(&setup.clock))
        .on_error(OnError::Throttle)
        .shadow_mode(true)
        .build()
        .unwrap();
    assert!(throttle.hit("a").await.unwrap().is_shadow_throttled());
}

#[tokio::test]
async fn a_shadow_limit_in_a_batch_never_undoes_the_other_charges() {
    let setup = Setup::new();
    // One backend for both (the registry's): one atomic group, were the shadow limit in it.
    setup.registry.set_default_backend(memory(&setup.clock));
    let real = setup.throttle("batch-real", "10/min").build().unwrap();
    let shadow = setup
        .throttle("batch-shadow", "1/min")
        .shadow_mode(true)
        .build()
        .unwrap();
    let limits = || {
        [
            Limit::new(&real, "a", HitOptions::new()),
            Limit::new(&shadow, "a", HitOptions::new()),
        ]
    };
    for round in 0..3 {
        let decisions = hit_all(&limits()).await.unwrap();
        assert!(decisions.iter().all(Decision::is_allowed), "round {round}");
        assert_eq!(decisions[1].is_shadow_throttled(), round > 0);
        assert!(
            try_hit_all_now(&limits()).is_none(),
            "shadow limits take the async path"
        );
    }
    assert_eq!(real.stat("a").await.unwrap().unwrap().hits_remaining, 7);
}

#[tokio::test]
async fn a_shadow_limit_is_decided_after_a_key_value_limit_that_refuses_the_batch() {
    let setup = Setup::new();
    setup.registry.set_default_backend(memory(&setup.clock));
    // Written first, but decided last: the key-value limit's refusal comes before it.
    let shadow = setup
        .throttle("batch-shadow-first", "10/min")
        .shadow_mode(true)
        .build()
        .unwrap();
    let counted = setup
        .throttle("batch-key-value", "1/min")
        .key_value_strategy(crate::testing::Counter)
        .build()
        .unwrap();
    let limits = || {
        [
            Limit::new(&shadow, "a", HitOptions::new()),
            Limit::new(&counted, "a", HitOptions::new()),
        ]
    };
    let first = hit_all(&limits()).await.unwrap();
    assert!(first.iter().all(Decision::is_allowed));
    let second = hit_all(&limits()).await.unwrap();
    assert!(second[1].is_throttled());
    assert!(
        second[0].is_allowed(),
        "checked, not charged: {:?}",
        second[0]
    );
    assert_eq!(
        shadow.stat("a").await.unwrap().unwrap().hits_remaining,
        9,
        "the refused request charged the shadow limit"
    );
}
