//! Properties every strategy must satisfy, driven by a manual clock.

use std::time::Duration;

use proptest::prelude::{ProptestConfig, prop, prop_assert, prop_assert_eq, proptest};

use super::*;
use crate::{Context, Decision, Millis, Outcome, Rate, StrategyStat};

/// Drives one strategy on one key at chosen times.
pub(crate) struct Sim<S: Strategy> {
    strategy: S,
    rate: Rate,
    state: Option<S::State>,
    now: Millis,
    context: Context,
}

impl<S: Strategy> Sim<S> {
    pub(crate) fn new(strategy: S, rate: Rate) -> Self {
        Sim {
            strategy,
            rate,
            state: None,
            now: 0,
            context: Context::new(),
        }
    }

    pub(crate) fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    pub(crate) fn at(&mut self, now: Millis) {
        self.now = now;
    }

    pub(crate) fn hit(&mut self, cost: u64) -> Decision {
        let hit = Hit::new(self.now, self.rate, cost, &self.context);
        self.strategy.apply(&mut self.state, &hit)
    }

    /// Returns a charge of `cost` made at `charged_at`.
    pub(crate) fn refund(&mut self, cost: u64, charged_at: Millis) -> Refund {
        let hit = Hit::new(charged_at, self.rate, cost, &self.context);
        self.strategy.refund(&mut self.state, &hit)
    }

    pub(crate) fn stat(&self) -> StrategyStat {
        let hit = Hit::new(self.now, self.rate, 1, &self.context);
        self.strategy.stat(self.state.as_ref(), &hit)
    }

    pub(crate) fn expires_at(&self) -> Option<Millis> {
        self.state
            .as_ref()
            .map(|s| self.strategy.expires_at(s, &self.rate))
    }
}

/// Every built-in strategy, configured so that its capacity is the rate's limit.
/// A named way to start a simulation of one strategy at a rate.
type Maker = (&'static str, Box<dyn Fn(Rate) -> Box<dyn Probe>>);

fn core_strategies() -> Vec<Maker> {
    fn probe<S: Strategy + Clone>(strategy: S) -> Box<dyn Fn(Rate) -> Box<dyn Probe>> {
        Box::new(move |rate| Box::new(Sim::new(strategy.clone(), rate)))
    }
    vec![
        ("fixed-window", probe(FixedWindow::new())),
        ("sliding-window-counter", probe(SlidingWindowCounter::new())),
        ("sliding-window-log", probe(SlidingWindowLog::new())),
        ("token-bucket", probe(TokenBucket::new())),
        ("token-bucket-debt(0)", probe(TokenBucketWithDebt::new(0))),
        ("leaky-bucket", probe(LeakyBucket::new())),
        ("leaky-bucket-queue", probe(LeakyBucketWithQueue::new())),
        ("gcra(burst=limit)", probe(GcraBurstOfLimit)),
        ("tiered", probe(Tiered::new())),
        ("priority(critical)", probe(CriticalPriority)),
        ("adaptive", probe(Adaptive::new())),
        ("quota-rollover(0)", probe(QuotaWithRollover::new(0.0, 0))),
        (
            "cost-bucket",
            probe(CostBasedTokenBucket::new().cost_window(3)),
        ),
        #[cfg(feature = "time-of-day")]
        (
            "time-of-day",
            probe(TimeOfDay::new("UTC").window("00:00", "24:00", 1.0)),
        ),
    ]
}

/// GCRA with a burst equal to the rate's limit.
#[derive(Debug, Clone, Copy)]
struct GcraBurstOfLimit;

impl Strategy for GcraBurstOfLimit {
    type State = GcraState;
    const NAME: &'static str = "gcra-test";
    fn apply(&self, state: &mut Option<GcraState>, hit: &Hit<'_>) -> Decision {
        Gcra::new().burst(hit.rate.limit()).apply(state, hit)
    }
    fn refund(&self, state: &mut Option<GcraState>, hit: &Hit<'_>) -> Refund {
        Gcra::new().burst(hit.rate.limit()).refund(state, hit)
    }
    fn stat(&self, state: Option<&GcraState>, hit: &Hit<'_>) -> StrategyStat {
        Gcra::new().burst(hit.rate.limit()).stat(state, hit)
    }
    fn expires_at(&self, state: &GcraState, rate: &Rate) -> Millis {
        Gcra::new().burst(rate.limit()).expires_at(state, rate)
    }
}

/// The priority strategy at the critical level (whole budget).
#[derive(Debug, Clone)]
struct CriticalPriority;

impl Strategy for CriticalPriority {
    type State = WindowState;
    const NAME: &'static str = "priority-test";
    fn apply(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Decision {
        Priority::new()
            .default_level(PriorityLevel::Critical)
            .apply(state, hit)
    }
    fn refund(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
        Priority::new()
            .default_level(PriorityLevel::Critical)
            .refund(state, hit)
    }
    fn stat(&self, state: Option<&WindowState>, hit: &Hit<'_>) -> StrategyStat {
        Priority::new()
            .default_level(PriorityLevel::Critical)
            .stat(state, hit)
    }
    fn expires_at(&self, state: &WindowState, rate: &Rate) -> Millis {
        Priority::new().expires_at(state, rate)
    }
}

/// Object-safe access to a `Sim` of any strategy.
trait Probe {
    fn validate(&self) -> Result<(), StrategyConfigError>;
    fn at(&mut self, now: Millis);
    fn hit(&mut self, cost: u64) -> Decision;
    fn refund(&mut self, cost: u64, charged_at: Millis) -> Refund;
    fn stat(&self) -> StrategyStat;
    fn expires_at(&self) -> Option<Millis>;
    fn snapshot(&self) -> Box<dyn Probe>;
}

impl<S: Strategy + Clone> Probe for Sim<S> {
    fn validate(&self) -> Result<(), StrategyConfigError> {
        self.strategy.validate(&self.rate)
    }
    fn at(&mut self, now: Millis) {
        Sim::at(self, now);
    }
    fn hit(&mut self, cost: u64) -> Decision {
        Sim::hit(self, cost)
    }
    fn refund(&mut self, cost: u64, charged_at: Millis) -> Refund {
        Sim::refund(self, cost, charged_at)
    }
    fn stat(&self) -> StrategyStat {
        Sim::stat(self)
    }
    fn expires_at(&self) -> Option<Millis> {
        Sim::expires_at(self)
    }
    fn snapshot(&self) -> Box<dyn Probe> {
        Box::new(Sim {
            strategy: self.strategy.clone(),
            rate: self.rate,
            state: self.state.clone(),
            now: self.now,
            context: self.context.clone(),
        })
    }
}

#[test]
fn reference_cost_sequence_for_every_strategy() {
    // 10/600ms: costs 3, 3, 4 allowed; then 5 and 1 refused.
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_millis(10, 600));
        sim.at(6_000);
        let allowed: Vec<bool> = [3, 3, 4, 5, 1]
            .into_iter()
            .map(|c| sim.hit(c).is_allowed())
            .collect();
        assert_eq!(allowed, [true, true, true, false, false], "{name}");
    }
}

#[test]
fn huge_costs_are_a_permanent_verdict_without_overflow() {
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_second(10));
        sim.at(1_000);
        for cost in [11, 1_000_000, u64::MAX / 2, u64::MAX] {
            let decision = sim.hit(cost);
            assert!(
                matches!(decision.outcome, Outcome::ExceedsCapacity { .. }),
                "{name} cost {cost}: {decision:?}"
            );
            assert_eq!(decision.wait(), None, "{name}");
        }
        assert!(
            sim.hit(10).is_allowed(),
            "{name}: the refused hits consumed nothing"
        );
    }
}

#[test]
fn time_going_backwards_never_grants_extra_quota() {
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_second(10));
        sim.at(100_000);
        assert!(sim.hit(10).is_allowed(), "{name}");
        for skewed in [99_999, 99_000, 50_000, 0] {
            sim.at(skewed);
            assert!(sim.hit(1).is_throttled(), "{name} at {skewed}");
        }
        sim.at(100_000);
        assert!(
            sim.hit(1).is_throttled(),
            "{name}: back at the present, still empty"
        );
    }
}

#[test]
fn refused_hits_consume_nothing() {
    // Hammering a closed limit must not push the reopening further away. (The adaptive strategy
    // records refused demand as its load signal by design, so it is left out here.)
    for (name, make) in exact_wait_strategies() {
        let mut sim = make(Rate::per_second(10));
        sim.at(50_000);
        assert!(sim.hit(10).is_allowed(), "{name}");
        let Outcome::Throttled { wait } = sim.hit(1).outcome else {
            panic!("{name}: expected a wait")
        };
        let reopens = 50_000 + Millis::try_from(wait.as_millis()).unwrap();
        for now in 50_000..reopens {
            sim.at(now);
            for _ in 0..5 {
                assert!(sim.hit(1).is_throttled(), "{name} at {now}");
            }
        }
        sim.at(reopens);
        assert!(
            sim.hit(1).is_allowed(),
            "{name}: refused hits moved the reopening"
        );
    }
}

#[test]
fn stat_consumes_nothing() {
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_second(5));
        sim.at(0);
        assert!(sim.hit(2).is_allowed());
        for _ in 0..10 {
            assert_eq!(sim.stat().hits_remaining, 3, "{name}");
        }
        assert!(sim.hit(3).is_allowed(), "{name}");
        let stat = sim.stat();
        assert_eq!(stat.hits_remaining, 0, "{name}");
        assert!(stat.wait > Duration::ZERO, "{name}: {stat:?}");
    }
}

#[test]
fn fresh_keys_have_the_full_limit_and_expire() {
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_millis(10, 100));
        sim.at(5_000);
        assert_eq!(sim.stat().hits_remaining, 10, "{name}");
        let first = sim.hit(1);
        assert_eq!((first.limit, first.remaining), (10, 9), "{name}");
        let expiry = sim.expires_at().expect("state after a hit");
        assert!(
            expiry > 5_000 && expiry <= 5_000 + 1_000,
            "{name}: expires at {expiry}"
        );
    }
}

/// Strategies whose wait is exact (adaptive's next-window limit may differ, so it is left out).
fn exact_wait_strategies() -> Vec<Maker> {
    core_strategies()
        .into_iter()
        .filter(|(name, _)| *name != "adaptive")
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After a refused hit waits exactly its `wait`, the same hit is admitted, and one
    /// millisecond earlier it is not: `Retry-After` is truthful and tight.
    #[test]
    fn waits_are_truthful_and_tight(
        limit in 1u64..20,
        period in prop::sample::select(vec![100u64, 600, 1_000, 3_500, 60_000]),
        steps in prop::collection::vec((0u64..400, 1u64..6), 1..40),
    ) {
        let rate = Rate::per_millis(limit, period);
        for (name, make) in exact_wait_strategies() {
            let mut sim = make(rate);
            let mut now = 1_000_000;
            for &(gap, cost) in &steps {
                now += gap;
                sim.at(now);
                let cost = cost.min(limit);
                let decision = sim.hit(cost);
                if let Outcome::Throttled { wait } = decision.outcome {
                    let wait = u64::try_from(wait.as_millis()).unwrap();
                    prop_assert!(wait > 0, "{} refused with no wait", name);
                    let mut early = sim.snapshot();
                    early.at(now + wait - 1);
                    prop_assert!(early.hit(cost).is_throttled(), "{}: admitted before the wait ended", name);
                    let mut on_time = sim.snapshot();
                    on_time.at(now + wait);
                    prop_assert!(on_time.hit(cost).is_allowed(), "{}: refused after waiting {} ms", name, wait);
                }
            }
        }
    }

    /// Over any interval of one period, no strategy admits more than its documented bound.
    #[test]
    fn admissions_stay_within_each_strategys_bound(
        limit in 1u64..15,
        steps in prop::collection::vec((0u64..300, 1u64..4), 1..80),
    ) {
        let period = 1_000;
        let rate = Rate::per_millis(limit, period);
        for (name, make) in core_strategies() {
            // Each family's bound is named, even where it is the default.
            #[allow(clippy::match_same_arms)]
            let bound = match name {
                "sliding-window-log" => limit,
                "sliding-window-counter" => 2 * limit,
                "fixed-window" | "tiered" | "priority(critical)" | "adaptive" => 2 * limit,
                _ => 2 * limit, // buckets: burst + one period of refill
            };
            let mut sim = make(rate);
            let mut now = 10_000;
            let mut admitted: Vec<(Millis, u64)> = Vec::new();
            for &(gap, cost) in &steps {
                now += gap;
                sim.at(now);
                if sim.hit(cost).is_allowed() {
                    admitted.push((now, cost));
                }
            }
            for &(start, _) in &admitted {
                let in_period: u64 = admitted.iter().filter(|(at, _)| *at >= start && *at < start + period).map(|(_, c)| c).sum();
                prop_assert!(in_period <= bound, "{}: {} admitted within one period from {}", name, in_period, start);
            }
        }
    }
}

/// Every built-in strategy as configured by users, including the configurations whose
/// parameters scale with the rate (bursts, debt, capacities).
fn every_configuration() -> Vec<Maker> {
    fn probe<S: Strategy + Clone>(strategy: S) -> Box<dyn Fn(Rate) -> Box<dyn Probe>> {
        Box::new(move |rate| Box::new(Sim::new(strategy.clone(), rate)))
    }
    let mut all = core_strategies();
    all.extend([
        ("gcra", probe(Gcra::new())),
        ("gcra(burst=u64::MAX)", probe(Gcra::new().burst(u64::MAX))),
        (
            "token-bucket(burst=u64::MAX)",
            probe(TokenBucket::new().burst(u64::MAX)),
        ),
        (
            "token-bucket-debt(u64::MAX)",
            probe(TokenBucketWithDebt::new(u64::MAX)),
        ),
        (
            "leaky-bucket(capacity=u64::MAX)",
            probe(LeakyBucket::new().capacity(u64::MAX)),
        ),
        (
            "sliding-window-log(max_entries=3)",
            probe(SlidingWindowLog::new().max_entries(3)),
        ),
        ("priority", probe(Priority::new())),
    ]);
    all
}

/// Values at and around the edges of `u64`, and ordinary ones.
fn edge_u64() -> impl proptest::strategy::Strategy<Value = u64> {
    use proptest::prelude::Just;
    proptest::prop_oneof![
        Just(1u64),
        Just(2),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        Just(u64::MAX / 2 + 1),
        Just(1 << 53),
        Just((1 << 53) + 1),
        Just(u64::from(u32::MAX)),
        1u64..1_000,
        1u64..=u64::MAX,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any limit, period, cost and clock (backwards included): every strategy decides and
    /// reports without overflowing, in debug builds too (where overflow panics).
    #[test]
    fn extreme_inputs_never_panic(
        limit in edge_u64(),
        period in edge_u64(),
        steps in prop::collection::vec((edge_u64(), edge_u64()), 1..12),
    ) {
        let rate = Rate::per_millis(limit, period);
        for (name, make) in every_configuration() {
            if make(rate).validate().is_err() {
                continue; // refused at build: never reaches a decision
            }
            let mut sim = make(rate);
            for &(now, cost) in &steps {
                sim.at(now);
                let decision = sim.hit(cost);
                prop_assert!(decision.remaining <= decision.limit.max(limit), "{}: {:?}", name, decision);
                if decision.is_allowed() {
                    let _ = sim.refund(cost, now);
                }
                let _ = sim.stat();
                let _ = sim.expires_at();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A charge refunded right after it was admitted leaves the client exactly where it would
    /// be had the hit never been admitted: the same decisions for every later hit.
    #[test]
    fn a_refund_undoes_its_charge(
        limit in 1u64..20,
        period in prop::sample::select(vec![100u64, 600, 1_000, 3_500, 60_000]),
        before in prop::collection::vec((0u64..400, 1u64..6), 0..20),
        charge in (0u64..400, 1u64..6),
        after in prop::collection::vec((0u64..400, 1u64..6), 1..20),
    ) {
        let rate = Rate::per_millis(limit, period);
        for (name, make) in core_strategies() {
            let mut refunded = make(rate);
            let mut now = 1_000_000;
            for &(gap, cost) in &before {
                now += gap;
                refunded.at(now);
                refunded.hit(cost.min(limit));
            }
            let mut untouched = refunded.snapshot();
            now += charge.0;
            refunded.at(now);
            untouched.at(now);
            let cost = charge.1.min(limit);
            if refunded.hit(cost).is_allowed() {
                prop_assert_eq!(refunded.refund(cost, now), Refund::Returned, "{}", name);
            } else {
                // Refused: nothing to refund, and both saw it (the adaptive strategy records
                // refused demand as load).
                untouched.hit(cost);
            }
            for &(gap, cost) in &after {
                now += gap;
                refunded.at(now);
                untouched.at(now);
                let cost = cost.min(limit);
                let (a, b) = (refunded.hit(cost), untouched.hit(cost));
                prop_assert_eq!(a.is_allowed(), b.is_allowed(), "{} at {}", name, now);
                prop_assert_eq!(a.remaining, b.remaining, "{} at {}", name, now);
            }
        }
    }
}

#[test]
fn a_refund_after_the_charge_stopped_counting_returns_nothing() {
    for (name, make) in core_strategies() {
        let mut sim = make(Rate::per_second(10));
        sim.at(10_000);
        assert!(sim.hit(4).is_allowed(), "{name}");
        // Long after: every strategy has forgotten the charge (windows ended, buckets
        // refilled or drained, log entries aged out).
        sim.at(100_000);
        assert!(sim.hit(10).is_allowed(), "{name}");
        assert_eq!(sim.refund(4, 10_000), Refund::Lapsed, "{name}");
        assert!(
            sim.hit(1).is_throttled(),
            "{name}: a lapsed refund returned units"
        );
    }
}

#[test]
fn a_custom_strategy_keeps_its_charges() {
    #[derive(Debug, Clone, Copy)]
    struct Custom;
    impl Strategy for Custom {
        type State = u64;
        const NAME: &'static str = "custom-no-refund";
        fn apply(&self, state: &mut Option<u64>, hit: &Hit<'_>) -> Decision {
            *state = Some(1);
            FixedWindow::new().apply(&mut None, hit)
        }
        fn stat(&self, _: Option<&u64>, hit: &Hit<'_>) -> StrategyStat {
            FixedWindow::new().stat(None, hit)
        }
        fn expires_at(&self, _: &u64, _: &Rate) -> Millis {
            1
        }
    }
    let mut sim = Sim::new(Custom, Rate::per_second(1));
    assert!(sim.hit(1).is_allowed());
    assert_eq!(sim.refund(1, 0), Refund::Unsupported);
    assert_eq!(sim.state, Some(1));
}
