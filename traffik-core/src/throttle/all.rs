//! [`hit_all`]: the limits of one request decided as one: every limit admits and all are
//! charged, or none is charged.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

use super::verdict::{Refusal, Report, Verdict};
use super::{HitFuture, HitOptions, OnError, Throttle, with_min_wait};
use crate::backend::{Backend, BackendError, KeyValueStrategy, KeyedHit, Mode};
use crate::strategy::{DynStrategy, Hit};
use crate::telemetry;
use crate::{Context, Decision, Millis, Outcome, Rate, ThrottleError};

/// One limit among several decided as one by [`hit_all`]: a throttle, the connection it looks
/// at, and per-call options.
pub struct Limit<'a, C: ?Sized + 'static> {
    throttle: &'a Throttle<C>,
    connection: &'a C,
    options: HitOptions<'a>,
}

impl<'a, C: ?Sized + 'static> Limit<'a, C> {
    /// The limit's throttle.
    pub(super) fn throttle(&self) -> &'a Throttle<C> {
        self.throttle
    }

    /// `throttle` hit by `connection` with `options`.
    #[must_use]
    pub fn new(throttle: &'a Throttle<C>, connection: &'a C, options: HitOptions<'a>) -> Self {
        Limit {
            throttle,
            connection,
            options,
        }
    }
}

impl<C: ?Sized + Send + Sync + 'static> fmt::Debug for Limit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("throttle", &self.throttle.uid())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What one limit of a batch resolved to before any backend call.
pub(super) enum Prepared {
    /// Decided without the backend (exempted, disabled, unlimited, cost 0).
    Skipped(Decision),
    /// A pure strategy on a backend: ready for [`Backend::decide_all`].
    Ready(Ready),
    /// A key-value strategy: decided on its own (it has no transition to try first).
    KeyValue(Arc<dyn KeyValueStrategy>),
}

/// A limit resolved for its backend.
pub(super) struct Ready {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) key: String,
    pub(super) strategy: Arc<dyn DynStrategy>,
    pub(super) rate: Rate,
    pub(super) cost: u64,
    pub(super) context: Context,
    pub(super) now: Millis,
    pub(super) min_wait: Option<Duration>,
    pub(super) on_error: OnError,
    /// The throttle was in shadow mode: decided on its own after the batch (see [`hit_all`]).
    pub(super) shadow_mode: bool,
}

impl Ready {
    pub(super) fn hit(&self) -> Hit<'_> {
        Hit::new(self.now, self.rate, self.cost, &self.context)
    }

    /// What refused this limit: its backend and its context.
    pub(super) fn refusal(&self) -> Refusal {
        Refusal::new(Arc::clone(&self.backend), self.context.clone())
    }
}

/// Decides the limits of one request as one: **either every limit admits and all are charged,
/// or none is charged**. The decisions come back in the limits' order; the request is refused
/// when any of them is ([`Decision::is_throttled`]), and then no limit was charged.
///
/// - Limits on one backend are decided atomically by it ([`Backend::decide_all`]): the
///   in-memory backend holds every key's shard at once, Redis runs one script over every key
///   (one round trip; a client's keys share their hash tag, so they are in one cluster slot),
///   a key-value store takes every key's lock. No concurrent request can slip between the
///   check of one limit and the charge of another, whatever order the limits are written in.
///   Memcached has no multi-key transaction: it checks every limit, then charges them one by
///   one, and refunds the earlier charges if a concurrent request made a later one refuse.
/// - Limits on several backends are first checked on each, then charged backend by backend: a
///   refusal found by the check charges nothing. A concurrent request that empties a limit
///   between the check and the charge can still refuse after another backend was charged
///   (there is no cross-backend transaction).
/// - The same throttle twice (the same key) counts once, with the summed cost.
/// - Exempted, disabled, unlimited and zero-cost limits are skipped as ever; a limit whose
///   backend fails follows its on-error policy (a refusal from `OnError::Throttle` refuses the
///   request, `OnError::Raise` returns the error).
/// - Key-value strategies (custom strategies written against the key-value contract) have no
///   transition to try first: they are decided after the others, one by one, and do not take
///   part in the guarantee.
/// - A limit in shadow mode is decided after the others too, on its own: charged when the
///   request is admitted and it admits, only checked when another limit refused. Its refusal
///   passes ([`Outcome::ShadowThrottled`](crate::Outcome::ShadowThrottled)) and never undoes
///   the other limits' charges, so they count as if it were not there.
///
/// ```
/// use traffik_core::{MemoryBackend, Throttle, ThrottleRegistry};
/// use traffik_core::throttle::{HitOptions, Limit, hit_all};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = ThrottleRegistry::new();
/// registry.set_default_backend(MemoryBackend::new());
/// let hourly = Throttle::builder("doc-all-hourly", "30/h").registry(&registry).build()?;
/// let burst = Throttle::builder("doc-all-burst", "2/min").registry(&registry).build()?;
/// let both = |client| [Limit::new(&hourly, client, HitOptions::new()), Limit::new(&burst, client, HitOptions::new())];
///
/// assert!(hit_all(&both("alice")).await?.iter().all(|d| d.is_allowed()));
/// assert!(hit_all(&both("alice")).await?.iter().all(|d| d.is_allowed()));
/// // The burst refuses the third: the hourly limit is not charged for it.
/// assert!(hit_all(&both("alice")).await?[1].is_throttled());
/// assert_eq!(hourly.stat("alice").await?.unwrap().hits_remaining, 28);
/// # Ok(()) }
/// ```
pub async fn hit_all<C>(limits: &[Limit<'_, C>]) -> Result<Vec<Decision>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
{
    decide_all(limits).await
}

/// [`hit_all`], reporting a [`Verdict`] per limit: a refused limit carries the backend that
/// refused it and its merged context.
pub async fn hit_all_verdicts<C>(limits: &[Limit<'_, C>]) -> Result<Vec<Verdict>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
{
    decide_all(limits).await
}

/// [`hit_all`] without awaiting, when every limit's inputs are synchronous and every backend
/// decides synchronously (the in-memory backend). `None` means the batch needs [`hit_all`],
/// and nothing was consumed.
pub fn try_hit_all_now<C>(limits: &[Limit<'_, C>]) -> Option<Result<Vec<Decision>, ThrottleError>>
where
    C: ?Sized + Send + Sync + 'static,
{
    decide_all_now(limits)
}

/// [`try_hit_all_now`], reporting a [`Verdict`] per limit.
pub fn try_hit_all_verdicts_now<C>(
    limits: &[Limit<'_, C>],
) -> Option<Result<Vec<Verdict>, ThrottleError>>
where
    C: ?Sized + Send + Sync + 'static,
{
    decide_all_now(limits)
}

async fn decide_all<C, R>(limits: &[Limit<'_, C>]) -> Result<Vec<R>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
    R: Report,
{
    Ok(decide_all_prepared(limits).await?.reports)
}

/// A decided batch: the reports, what each limit was resolved to, and which limits were
/// charged (a refused batch on several backends may have charged some before the refusal).
pub(super) struct Batch<R> {
    pub(super) reports: Vec<R>,
    pub(super) prepared: Vec<Prepared>,
    pub(super) charged: Vec<bool>,
}

/// [`decide_all`], also returning what each limit was resolved to (a reservation keeps the
/// charged ones, to return them on cancel).
pub(super) async fn decide_all_prepared<C, R>(
    limits: &[Limit<'_, C>],
) -> Result<Batch<R>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
    R: Report,
{
    let mut prepared = Vec::with_capacity(limits.len());
    for limit in limits {
        prepared.push(
            limit
                .throttle
                .prepare(limit.connection, &limit.options)
                .await?,
        );
    }
    let mut decisions = vec![None; limits.len()];
    let mut charged = vec![false; limits.len()];
    let groups = Groups::of(&prepared, &mut decisions);
    if groups.backends.len() > 1 {
        // Check every backend first: a refusal found now charges nothing anywhere.
        let mut refused = false;
        for group in &groups.backends {
            let hits = group.hits(&prepared);
            if let Ok(peeked) = group.timed(limits, Mode::Peek, &hits).await {
                refused |= peeked.iter().any(Decision::is_throttled);
                group.record(&prepared, &peeked, &mut decisions);
            }
        }
        if refused {
            let reports = finish(limits, &prepared, decisions, true, &mut charged).await?;
            return Ok(Batch {
                reports,
                prepared,
                charged,
            });
        }
    }
    for group in &groups.backends {
        let hits = group.hits(&prepared);
        let (decided, consumed) = match group.timed(limits, Mode::Consume, &hits).await {
            Ok(decided) => (decided, true),
            // Decided by each limit's on-error policy: nothing was stored.
            Err(error) => (group.on_error(&prepared, error, limits).await?, false),
        };
        group.record(&prepared, &decided, &mut decisions);
        if decided.iter().any(Decision::is_throttled) {
            // One backend decides its group atomically: nothing of this group was charged.
            let reports = finish(limits, &prepared, decisions, true, &mut charged).await?;
            return Ok(Batch {
                reports,
                prepared,
                charged,
            });
        }
        if consumed {
            group.mark_charged(&decisions, &mut charged);
        }
    }
    let reports = finish(limits, &prepared, decisions, false, &mut charged).await?;
    Ok(Batch {
        reports,
        prepared,
        charged,
    })
}

/// The reports of a batch in the limits' order. The limits not decided yet (key-value
/// strategies, shadow limits, and after a refusal whatever was not reached) are decided one by
/// one: charged while nothing has refused, only checked once something has. Shadow limits go
/// last, so a later refusal cannot leave them charged for a refused request.
async fn finish<C, R>(
    limits: &[Limit<'_, C>],
    prepared: &[Prepared],
    decisions: Vec<Option<Decision>>,
    mut refused: bool,
    charged: &mut [bool],
) -> Result<Vec<R>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
    R: Report,
{
    let mut reports: Vec<Option<R>> = Vec::with_capacity(limits.len());
    let mut shadows = Vec::new();
    for (index, (decision, prepared)) in decisions.into_iter().zip(prepared).enumerate() {
        let limit = &limits[index];
        let report = match decision {
            Some(decision) => {
                limit.throttle.count(Mode::Consume, &decision);
                Some(report(prepared, decision))
            }
            None if limit.throttle.is_shadow_mode() => {
                shadows.push(index);
                None
            }
            None => {
                let report: R = decide_one(limit, refused).await?;
                charged[index] = !refused && report.decision().outcome == Outcome::Allowed;
                refused |= report.decision().is_throttled();
                Some(report)
            }
        };
        reports.push(report);
    }
    for index in shadows {
        let report: R = decide_one(&limits[index], refused).await?;
        charged[index] = !refused && report.decision().outcome == Outcome::Allowed;
        reports[index] = Some(report);
    }
    Ok(reports.into_iter().flatten().collect())
}

/// One limit of a batch decided on its own: charged, or only checked once the batch refused
/// (and then counted in the metrics as the check it is not: it stands for a hit).
async fn decide_one<C, R>(limit: &Limit<'_, C>, refused: bool) -> Result<R, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
    R: Report,
{
    let mode = if refused { Mode::Peek } else { Mode::Consume };
    let report: R = HitFuture::new(limit.throttle, limit.connection, limit.options, mode).await?;
    if refused {
        limit.throttle.count(Mode::Consume, &report.decision());
    }
    Ok(report)
}

/// A decided limit's report.
fn report<R: Report>(prepared: &Prepared, decision: Decision) -> R {
    match prepared {
        Prepared::Ready(ready) => R::decided(decision, || ready.refusal()),
        _ => R::unrefused(decision),
    }
}

fn decide_all_now<C, R>(limits: &[Limit<'_, C>]) -> Option<Result<Vec<R>, ThrottleError>>
where
    C: ?Sized + Send + Sync + 'static,
    R: Report,
{
    let mut prepared = Vec::with_capacity(limits.len());
    for limit in limits {
        match limit
            .throttle
            .prepare_now(limit.connection, &limit.options)?
        {
            Ok(Prepared::KeyValue(_)) => return None,
            Ok(Prepared::Ready(ready)) if ready.shadow_mode => return None,
            Ok(ready) => prepared.push(ready),
            Err(error) => return Some(Err(error)),
        }
    }
    let mut decisions = vec![None; limits.len()];
    let groups = Groups::of(&prepared, &mut decisions);
    let reports = |decisions: Vec<Option<Decision>>| -> Vec<R> {
        decisions
            .into_iter()
            .zip(&prepared)
            .zip(limits)
            .filter_map(|((decision, prepared), limit)| {
                let decision = decision?;
                limit.throttle.count(Mode::Consume, &decision);
                Some(report(prepared, decision))
            })
            .collect()
    };
    let [group] = groups.backends.as_slice() else {
        // Several backends check first and charge after: the asynchronous path does that.
        return (groups.backends.is_empty()).then(|| Ok(reports(decisions)));
    };
    let hits = group.hits(&prepared);
    match group.backend.decide_all_now(&hits, Mode::Consume)? {
        Ok(decided) => {
            group.record(&prepared, &decided, &mut decisions);
            Some(Ok(reports(decisions)))
        }
        // The asynchronous path applies the on-error policies.
        Err(_) => None,
    }
}

/// The ready limits grouped by backend, each distinct key once.
struct Groups {
    backends: Vec<Group>,
}

struct Group {
    backend: Arc<dyn Backend>,
    /// Distinct keys: the index (into the prepared limits) of the first limit with the key,
    /// and the summed cost of every limit with it.
    keys: Vec<(usize, u64)>,
    /// Every limit of the group: its index, and which distinct key it has.
    members: Vec<(usize, usize)>,
}

impl Groups {
    /// Groups `prepared`, writing the skipped decisions into `decisions` right away.
    fn of(prepared: &[Prepared], decisions: &mut [Option<Decision>]) -> Groups {
        let mut backends: Vec<Group> = Vec::new();
        for (index, limit) in prepared.iter().enumerate() {
            let ready = match limit {
                Prepared::Skipped(decision) => {
                    decisions[index] = Some(*decision);
                    continue;
                }
                Prepared::KeyValue(_) => continue,
                // Decided on its own after the batch: its refusal must not undo the others.
                Prepared::Ready(ready) if ready.shadow_mode => continue,
                Prepared::Ready(ready) => ready,
            };
            let group = match backends
                .iter_mut()
                .position(|group| Arc::ptr_eq(&group.backend, &ready.backend))
            {
                Some(at) => &mut backends[at],
                None => {
                    backends.push(Group {
                        backend: Arc::clone(&ready.backend),
                        keys: Vec::new(),
                        members: Vec::new(),
                    });
                    backends
                        .last_mut()
                        .unwrap_or_else(|| unreachable!("just pushed"))
                }
            };
            let same_key = group.keys.iter().position(|&(first, _)| {
                matches!(&prepared[first], Prepared::Ready(other) if other.key == ready.key)
            });
            let slot = match same_key {
                Some(slot) => {
                    group.keys[slot].1 = group.keys[slot].1.saturating_add(ready.cost);
                    slot
                }
                None => {
                    group.keys.push((index, ready.cost));
                    group.keys.len() - 1
                }
            };
            group.members.push((index, slot));
        }
        Groups { backends }
    }
}

impl Group {
    fn ready(prepared: &[Prepared], index: usize) -> &Ready {
        match &prepared[index] {
            Prepared::Ready(ready) => ready,
            _ => unreachable!("groups hold ready limits only"),
        }
    }

    /// The backend's hits: one per distinct key, with the summed cost.
    fn hits<'p>(&self, prepared: &'p [Prepared]) -> Vec<KeyedHit<'p>> {
        self.keys
            .iter()
            .map(|&(index, cost)| {
                let ready = Self::ready(prepared, index);
                KeyedHit {
                    key: &ready.key,
                    strategy: ready.strategy.as_ref(),
                    hit: Hit {
                        cost,
                        ..ready.hit()
                    },
                }
            })
            .collect()
    }

    /// The group's batch decided by its backend, its latency recorded by the group's first
    /// throttle.
    async fn timed<C>(
        &self,
        limits: &[Limit<'_, C>],
        mode: Mode,
        hits: &[KeyedHit<'_>],
    ) -> Result<Vec<Decision>, BackendError>
    where
        C: ?Sized + Send + Sync + 'static,
    {
        let started = Instant::now();
        let result = self.backend.decide_all(hits, mode).await;
        if let Some(&(index, _)) = self.members.first() {
            limits[index]
                .throttle
                .record_latency(self.backend.name(), started.elapsed().as_secs_f64());
        }
        result
    }

    /// Writes the group's decisions (one per distinct key) into `decisions`, with each limit's
    /// minimum wait.
    fn record(
        &self,
        prepared: &[Prepared],
        decided: &[Decision],
        decisions: &mut [Option<Decision>],
    ) {
        for &(index, slot) in &self.members {
            let ready = Self::ready(prepared, index);
            decisions[index] = decided
                .get(slot)
                .map(|decision| with_min_wait(*decision, ready.min_wait));
        }
    }

    /// Marks the group's limits admitted by its (consuming) decision as charged.
    fn mark_charged(&self, decisions: &[Option<Decision>], charged: &mut [bool]) {
        for &(index, _) in &self.members {
            charged[index] = decisions[index].is_some_and(|d| d.outcome == Outcome::Allowed);
        }
    }

    /// The group's backend failed: each limit's own on-error policy decides it.
    async fn on_error<C>(
        &self,
        prepared: &[Prepared],
        error: BackendError,
        limits: &[Limit<'_, C>],
    ) -> Result<Vec<Decision>, ThrottleError>
    where
        C: ?Sized + Send + Sync + 'static,
    {
        telemetry::backend_error(self.backend.name(), &error);
        let mut decided = Vec::with_capacity(self.keys.len());
        for &(index, cost) in &self.keys {
            let ready = Self::ready(prepared, index);
            decided.push(
                limits[index]
                    .throttle
                    .on_backend_error(ready, error.duplicate(), cost)
                    .await?,
            );
        }
        Ok(decided)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::Backend;
    use crate::strategy::{Gcra, SlidingWindowLog, TokenBucket};
    use crate::{ManualClock, MemoryBackend, ThrottleRegistry};

    fn memory(clock: &ManualClock) -> Arc<dyn Backend> {
        Arc::new(
            MemoryBackend::builder()
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
    }

    fn on(backend: &Arc<dyn Backend>, clock: &ManualClock, uid: &str, rate: &str) -> Throttle {
        Throttle::builder(uid, rate)
            .shared_backend(Arc::clone(backend))
            .clock(clock.clone())
            .registry(&ThrottleRegistry::new())
            .build()
            .unwrap()
    }

    async fn admitted(limits: &[&Throttle], client: &str, requests: usize) -> usize {
        let mut admitted = 0;
        for _ in 0..requests {
            let batch: Vec<Limit<'_, str>> = limits
                .iter()
                .map(|throttle| Limit::new(throttle, client, HitOptions::new()))
                .collect();
            let decisions = hit_all(&batch).await.unwrap();
            assert_eq!(decisions.len(), limits.len());
            admitted += usize::from(decisions.iter().all(Decision::is_allowed));
        }
        admitted
    }

    #[tokio::test]
    async fn a_refusal_charges_no_other_limit_whatever_the_order() {
        for reversed in [false, true] {
            let clock = ManualClock::new(1_000_000);
            let backend = memory(&clock);
            let half_hour = on(&backend, &clock, "all-half-hour", "30/30min");
            let minute = on(&backend, &clock, "all-minute", "10/min");
            let mut limits = vec![&half_hour, &minute];
            if reversed {
                limits.reverse();
            }
            assert_eq!(
                admitted(&limits, "alice", 31).await,
                10,
                "reversed: {reversed}"
            );
            clock.advance(Duration::from_secs(60));
            assert_eq!(
                admitted(&limits, "alice", 10).await,
                10,
                "reversed: {reversed}"
            );
            let left = half_hour.stat("alice").await.unwrap().unwrap();
            assert_eq!(left.hits_remaining, 10, "reversed: {reversed}");
        }
    }

    #[tokio::test]
    async fn limits_on_several_backends_are_checked_before_any_is_charged() {
        let clock = ManualClock::new(1_000_000);
        let (first, second) = (memory(&clock), memory(&clock));
        let wide = on(&first, &clock, "all-wide", "100/min");
        let narrow = on(&second, &clock, "all-narrow", "2/min");
        assert_eq!(admitted(&[&wide, &narrow], "bob", 5).await, 2);
        assert_eq!(wide.stat("bob").await.unwrap().unwrap().hits_remaining, 98);
    }

    #[tokio::test]
    async fn one_throttle_twice_counts_once_with_the_summed_cost() {
        let clock = ManualClock::new(1_000_000);
        let backend = memory(&clock);
        let throttle = on(&backend, &clock, "all-twice", "5/min");
        let batch = [
            Limit::new(&throttle, "carol", HitOptions::new().cost(2)),
            Limit::new(&throttle, "carol", HitOptions::new().cost(2)),
        ];
        let decisions = hit_all(&batch).await.unwrap();
        assert!(decisions.iter().all(|d| d.remaining == 1), "{decisions:?}");
        assert!(
            hit_all(&batch)
                .await
                .unwrap()
                .iter()
                .all(Decision::is_throttled)
        );
        assert_eq!(
            throttle
                .stat("carol")
                .await
                .unwrap()
                .unwrap()
                .hits_remaining,
            1
        );
    }

    #[tokio::test]
    async fn skipped_limits_are_skipped_and_every_strategy_takes_part() {
        let clock = ManualClock::new(1_000_000);
        let backend = memory(&clock);
        let strategies: Vec<Throttle> = vec![
            on(&backend, &clock, "all-fixed", "3/min"),
            Throttle::builder("all-log", "3/min")
                .strategy(SlidingWindowLog::new())
                .shared_backend(Arc::clone(&backend))
                .clock(clock.clone())
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap(),
            Throttle::builder("all-bucket", "2/min")
                .strategy(TokenBucket::new())
                .shared_backend(Arc::clone(&backend))
                .clock(clock.clone())
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap(),
            Throttle::builder("all-gcra", "3/min")
                .strategy(Gcra::new().burst(3))
                .shared_backend(Arc::clone(&backend))
                .clock(clock.clone())
                .registry(&ThrottleRegistry::new())
                .build()
                .unwrap(),
        ];
        let disabled = on(&backend, &clock, "all-disabled", "1/min");
        disabled.disable();
        let mut limits: Vec<&Throttle> = strategies.iter().collect();
        limits.push(&disabled);
        assert_eq!(
            admitted(&limits, "dave", 5).await,
            2,
            "the token bucket's 2"
        );
        for throttle in &strategies[..1] {
            assert_eq!(
                throttle.stat("dave").await.unwrap().unwrap().hits_remaining,
                1
            );
        }
    }

    #[tokio::test]
    async fn the_synchronous_path_decides_the_same() {
        let clock = ManualClock::new(1_000_000);
        let backend = memory(&clock);
        let long = on(&backend, &clock, "all-now-long", "30/30min");
        let short = on(&backend, &clock, "all-now-short", "2/min");
        for expected in [true, true, false, false] {
            let batch = [
                Limit::new(&long, "erin", HitOptions::new()),
                Limit::new(&short, "erin", HitOptions::new()),
            ];
            let decisions = try_hit_all_now(&batch).expect("in memory").unwrap();
            assert_eq!(decisions.iter().all(Decision::is_allowed), expected);
        }
        assert_eq!(long.stat("erin").await.unwrap().unwrap().hits_remaining, 28);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_batches_admit_exactly_and_charge_only_what_they_admit() {
        let clock = ManualClock::new(1_000_000);
        let backend = memory(&clock);
        let hourly = Arc::new(on(&backend, &clock, "all-race-hourly", "30/h"));
        let minute = Arc::new(on(&backend, &clock, "all-race-minute", "10/min"));
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..64 {
            let (hourly, minute) = (Arc::clone(&hourly), Arc::clone(&minute));
            tasks.spawn(async move {
                // Half the tasks write the limits in each order.
                let (a, b) = if task % 2 == 0 {
                    (&hourly, &minute)
                } else {
                    (&minute, &hourly)
                };
                let batch = [
                    Limit::new(a.as_ref(), "frank", HitOptions::new()),
                    Limit::new(b.as_ref(), "frank", HitOptions::new()),
                ];
                hit_all(&batch)
                    .await
                    .unwrap()
                    .iter()
                    .all(Decision::is_allowed)
            });
        }
        let mut admitted = 0;
        while let Some(allowed) = tasks.join_next().await {
            admitted += usize::from(allowed.unwrap());
        }
        assert_eq!(admitted, 10);
        assert_eq!(
            hourly.stat("frank").await.unwrap().unwrap().hits_remaining,
            20
        );
    }
}
