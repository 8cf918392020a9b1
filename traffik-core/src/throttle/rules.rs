//! Whether a throttle applies to a hit: its own [`Rule`]s and its registry's, merged once per
//! change of the registry's rules and checked before any input is resolved.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::resolve::merged_context;
use super::{HitOptions, Throttle};
use crate::rule::Rule;
use crate::{Context, SkipReason};

/// What the rules say of a hit, decided at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleCheck {
    /// The throttle applies.
    Applies,
    /// A rule leaves the hit out ([`SkipReason::Bypassed`]).
    Bypassed,
    /// A condition is asynchronous: the asynchronous path checks the rules.
    Pending,
}

/// A throttle's own rules, and those merged with its registry's as of a generation of the
/// registry's rules.
pub(super) struct RuleCell<C: ?Sized + 'static> {
    own: Arc<[Rule<C>]>,
    merged: ArcSwap<Merged<C>>,
}

/// The rules that apply to a throttle, synchronous ones first.
pub(super) struct Merged<C: ?Sized + 'static> {
    /// The registry's rules generation these were merged at (`u64::MAX`: never merged).
    generation: u64,
    rules: Box<[Rule<C>]>,
    synchronous: bool,
}

impl<C: ?Sized + 'static> RuleCell<C> {
    pub(super) fn new(own: Vec<Rule<C>>) -> Self {
        RuleCell {
            own: own.into(),
            merged: ArcSwap::from_pointee(Merged {
                generation: u64::MAX,
                rules: Box::new([]),
                synchronous: true,
            }),
        }
    }
}

impl<C: ?Sized + 'static> Merged<C> {
    fn new(generation: u64, own: &[Rule<C>], registry: Vec<Rule<C>>) -> Self {
        let mut rules: Vec<Rule<C>> = own.iter().cloned().chain(registry).collect();
        // Synchronous conditions first: an asynchronous one runs only when they all leave the
        // throttle applying.
        rules.sort_by_key(|rule| !rule.is_synchronous());
        let synchronous = rules.iter().all(Rule::is_synchronous);
        Merged {
            generation,
            rules: rules.into_boxed_slice(),
            synchronous,
        }
    }

    /// Whether the throttle is bypassed, deciding at once: `None` when a condition is
    /// asynchronous.
    fn bypassed_now(&self, connection: &C, context: &Context) -> Option<bool> {
        if !self.synchronous {
            return None;
        }
        for rule in &self.rules {
            let holds = rule.holds(connection, context).into_ready().ok()?;
            if rule.skips(holds) {
                return Some(true);
            }
        }
        Some(false)
    }

    async fn bypassed(&self, connection: &C, context: &Context) -> bool {
        for rule in &self.rules {
            if rule.skips(rule.holds(connection, context).await) {
                return true;
            }
        }
        false
    }
}

impl<C: ?Sized + Send + Sync + 'static> Throttle<C> {
    /// The rules that apply to this throttle now, `None` when there are none (one atomic load
    /// when neither the throttle nor its registry has any).
    #[inline]
    fn rules(&self) -> Option<arc_swap::Guard<Arc<Merged<C>>>> {
        let generation = self.inner.registry.rules_generation();
        let cell = &self.inner.rules;
        if generation == 0 && cell.own.is_empty() {
            return None;
        }
        // A guard, not a clone: no shared reference count written per hit.
        let mut merged = cell.merged.load();
        if merged.generation != generation {
            cell.merged.store(Arc::new(Merged::new(
                generation,
                &cell.own,
                self.inner.registry.get_rules::<C>(&self.inner.uid),
            )));
            merged = cell.merged.load();
        }
        (!merged.rules.is_empty()).then_some(merged)
    }

    /// Whether a rule leaves this hit out, deciding at once when every condition is
    /// synchronous.
    #[inline]
    pub(super) fn bypassed_now(&self, connection: &C, options: &HitOptions<'_>) -> RuleCheck {
        let Some(rules) = self.rules() else {
            return RuleCheck::Applies;
        };
        let config = self.inner.config.load();
        let context = merged_context(options.context, &config.context);
        match rules.bypassed_now(connection, &context) {
            Some(true) => RuleCheck::Bypassed,
            Some(false) => RuleCheck::Applies,
            None => RuleCheck::Pending,
        }
    }

    /// [`SkipReason::Bypassed`] when a rule leaves this hit out.
    pub(super) async fn bypassed(
        &self,
        connection: &C,
        options: &HitOptions<'_>,
    ) -> Option<SkipReason> {
        let rules = self.rules()?;
        let config = self.inner.config.load_full();
        let context = merged_context(options.context, &config.context);
        if let Some(bypassed) = rules.bypassed_now(connection, &context) {
            return bypassed.then_some(SkipReason::Bypassed);
        }
        rules
            .bypassed(connection, &context)
            .await
            .then_some(SkipReason::Bypassed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::throttle::{Limit, hit_all};
    use crate::{BoxFuture, ManualClock, MemoryBackend, ThrottleRegistry};

    fn throttle(registry: &ThrottleRegistry, uid: &str, rules: Vec<Rule<str>>) -> Throttle {
        Throttle::builder(uid, "1/min")
            .registry(registry)
            .clock(ManualClock::new(1_000_000))
            .backend(MemoryBackend::new())
            .rules(rules)
            .build()
            .unwrap()
    }

    fn bypassed(decision: crate::Decision) -> bool {
        decision.skip_reason() == Some(SkipReason::Bypassed)
    }

    #[tokio::test]
    async fn a_throttle_applies_where_every_throttle_if_holds_and_no_bypass_if_does() {
        let registry = ThrottleRegistry::new();
        let t = throttle(
            &registry,
            "rules-own",
            vec![
                Rule::throttle_if(|client: &str, _: &Context| client.starts_with("user-")),
                Rule::bypass_if(|client: &str, _: &Context| client.ends_with("-admin")),
            ],
        );
        assert!(
            bypassed(t.hit("bot").await.unwrap()),
            "no throttle_if holds"
        );
        assert!(
            bypassed(t.hit("user-admin").await.unwrap()),
            "a bypass holds"
        );
        assert!(bypassed(
            t.try_hit_now("user-admin", HitOptions::new())
                .unwrap()
                .unwrap()
        ));
        assert!(t.hit("user-1").await.unwrap().is_allowed());
        assert!(t.hit("user-1").await.unwrap().is_throttled());
        // Bypassed hits consumed nothing: a bypassed client still has its whole budget once
        // the rules stop covering it.
        assert!(t.check("user-admin").await.unwrap().is_skipped());
    }

    #[tokio::test]
    async fn registry_rules_reach_throttles_by_uid_and_glob_including_later_ones() {
        let registry = ThrottleRegistry::new();
        let search = throttle(&registry, "api-search", vec![]);
        assert!(search.hit("probe").await.unwrap().is_allowed());
        registry
            .add_rules(
                "api-*",
                [Rule::bypass_if(|c: &str, _: &Context| c == "probe")],
            )
            .unwrap();
        assert!(
            bypassed(search.hit("probe").await.unwrap()),
            "added after a hit"
        );
        let later = throttle(&registry, "api-orders", vec![]);
        assert!(
            bypassed(later.hit("probe").await.unwrap()),
            "built after the rule"
        );
        let other = throttle(&registry, "web", vec![]);
        assert!(
            other.hit("probe").await.unwrap().is_allowed(),
            "glob does not match"
        );
        registry
            .add_rules(
                "web",
                [Rule::throttle_if(|c: &str, _: &Context| c != "probe")],
            )
            .unwrap();
        assert!(bypassed(other.hit("probe").await.unwrap()), "exact uid");
        assert_eq!(registry.get_rules::<str>("api-search").len(), 1);
        assert_eq!(
            registry.get_rules::<[u8]>("api-search").len(),
            0,
            "other connection type"
        );
        assert!(registry.remove_rules("api-*"));
        assert!(!registry.remove_rules("api-*"));
        assert!(
            search.hit("probe").await.unwrap().is_throttled(),
            "removed: applies again"
        );
        assert!(matches!(
            registry.add_rules("missing", [Rule::<str>::bypass_if(|_, _| true)]),
            Err(crate::ConfigError::UnknownThrottle { .. })
        ));
    }

    #[tokio::test]
    async fn asynchronous_conditions_run_after_synchronous_ones_on_the_asynchronous_path() {
        let registry = ThrottleRegistry::new();
        let lookups = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&lookups);
        let t = throttle(
            &registry,
            "rules-async",
            vec![
                Rule::bypass_if_async(move |client: &str, _: &Context| -> BoxFuture<'_, bool> {
                    counted.fetch_add(1, Ordering::Relaxed);
                    let internal = client == "internal";
                    Box::pin(async move { internal })
                }),
                Rule::bypass_if(|client: &str, _: &Context| client == "cheap"),
            ],
        );
        assert!(
            t.try_hit_now("anyone", HitOptions::new()).is_none(),
            "an async condition needs a future"
        );
        assert!(bypassed(t.hit("internal").await.unwrap()));
        assert!(t.hit("alice").await.unwrap().is_allowed());
        assert!(t.hit("alice").await.unwrap().is_throttled());
        let before = lookups.load(Ordering::Relaxed);
        assert!(bypassed(t.hit("cheap").await.unwrap()));
        assert_eq!(
            lookups.load(Ordering::Relaxed),
            before,
            "the sync rule decided first"
        );
    }

    #[tokio::test]
    async fn rules_see_the_merged_context_and_apply_in_batches() {
        let registry = ThrottleRegistry::new();
        let t = throttle(
            &registry,
            "rules-context",
            vec![Rule::bypass_if(move |_: &str, c: &Context| {
                c.get("tenant").and_then(|v| v.as_str()) == Some("internal")
            })],
        );
        let internal = Context::new().with("tenant", "internal");
        let options = HitOptions::new().context(&internal);
        assert!(bypassed(t.hit_with("a", options).await.unwrap()));
        let other = throttle(&registry, "rules-context-2", vec![]);
        let decisions = hit_all(&[
            Limit::new(&t, "a", options),
            Limit::new(&other, "a", HitOptions::new()),
        ])
        .await
        .unwrap();
        assert!(bypassed(decisions[0]));
        assert!(decisions[1].is_allowed());
    }

    #[tokio::test]
    async fn the_registry_finds_live_throttles_by_uid_and_clear_forgets_them() {
        let registry = ThrottleRegistry::new();
        let t = throttle(&registry, "findable", vec![]);
        registry
            .add_rules("*", [Rule::<str>::bypass_if(|c, _| c == "x")])
            .unwrap();
        let found = registry.get_throttle::<str>("findable").unwrap();
        assert!(found.hit("a").await.unwrap().is_allowed());
        assert!(
            t.hit("a").await.unwrap().is_throttled(),
            "the same throttle"
        );
        assert!(registry.get_throttle::<str>("missing").is_none());
        assert!(bypassed(t.hit("x").await.unwrap()));
        registry.clear();
        assert!(registry.get_throttle::<str>("findable").is_none());
        assert!(registry.get_rules::<str>("findable").is_empty());
        assert!(
            t.hit("x").await.unwrap().is_allowed(),
            "rules gone, the throttle works"
        );
        let again = throttle(&registry, "findable", vec![]);
        assert_eq!(again.uid(), "findable", "the uid is free again");
    }
}

#[cfg(test)]
mod registry_switches {
    use crate::{MemoryBackend, SkipReason, Throttle, ThrottleRegistry};

    #[tokio::test]
    async fn disable_all_and_enable_all_switch_every_throttle_of_the_registry() {
        let registry = ThrottleRegistry::new();
        let build = |uid: &str| {
            Throttle::builder(uid, "1/min")
                .registry(&registry)
                .backend(MemoryBackend::new())
                .build()
                .unwrap()
        };
        let (a, b) = (build("switch-a"), build("switch-b"));
        registry.disable_all();
        for throttle in [&a, &b] {
            assert!(throttle.is_disabled());
            let decision = throttle.hit("c").await.unwrap();
            assert_eq!(decision.skip_reason(), Some(SkipReason::Disabled));
        }
        registry.enable_all();
        assert!(a.hit("c").await.unwrap().is_allowed());
        assert!(!b.is_disabled());
    }
}
