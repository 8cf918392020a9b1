//! [`Reservation`]: a cost reserved on one or several throttles as one unit, then committed or
//! cancelled: deferred and aggregated consumption (the reference's `QuotaContext`), atomic on
//! every backend.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::all::{Batch, Prepared, decide_all_prepared};
use super::{Limit, Throttle, Verdict};
use crate::backend::Backend;
use crate::strategy::{DynStrategy, Hit, Refund};
use crate::{Clock, Context, Decision, Millis, Rate, ThrottleError};

/// Reserves `limits` as one unit: **either every limit admits and all are charged now, or
/// none is charged** (exactly [`hit_all`](super::hit_all)'s guarantee), and returns the
/// reservation. Then [`commit`](Reservation::commit) keeps the charges and
/// [`cancel`](Reservation::cancel) returns them; a reservation dropped without either is
/// cancelled.
///
/// This is the reference's `QuotaContext` done without its pitfalls: the units are taken when
/// the work starts, so a concurrent request cannot take them meanwhile (the reference checks,
/// runs the work, and charges at exit: a time-of-check to time-of-use race), there is no lock
/// held across your code (the reference serialises every client of a throttle on one lock),
/// and a failure returns what was taken (the reference has no rollback).
///
/// The guarantee, precisely:
/// - **Reserve** is [`hit_all`](super::hit_all): limits on one backend are decided atomically
///   by it (in memory under every key's shard at once; on Redis and Redis Cluster **one script
///   call, one round trip**; on a key-value store under every key's lock; Memcached checks, then
///   charges, returning earlier charges if a later one loses a race). Limits on several backends
///   are checked on each first, then charged. The same throttle twice counts once, with the
///   summed cost.
/// - **Commit** makes no backend call: the charges were already made.
/// - **Cancel** (or drop) returns each charge through its strategy's refund, one backend call
///   per limit ([`Throttle::refund_with`](crate::Throttle::refund_with)'s semantics: the units
///   come back if they still count, and nothing comes back once the window ended or the bucket
///   refilled past them). Between reserve and cancel the units are spent for everyone: that is
///   what reserving means. A dropped reservation returns synchronously when the backend answers
///   at once (in memory), otherwise on a spawned Tokio task; with no runtime the charges stay
///   and a WARN is logged. A refund that fails is logged at WARN and its units stay consumed.
/// - Limits with a key-value strategy (custom strategies on the key-value contract) have no
///   refund: their charges stay whatever happens.
///
/// A refused reservation ([`is_refused`](Reservation::is_refused)) holds nothing: on one backend
/// nothing was charged; across backends, the limits charged before another refused are returned
/// before `reserve` answers.
///
/// Limits: a charge decided by a [`Fallback`](crate::backend::Fallback)'s fallback side is
/// returned through the wrapper, which sends it to whichever side answers then; a reservation
/// dropped as its runtime shuts down may not get to return its charges.
///
/// ```
/// use traffik_core::{MemoryBackend, Throttle, ThrottleRegistry};
/// use traffik_core::throttle::{HitOptions, Limit, reserve};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = ThrottleRegistry::new();
/// registry.set_default_backend(MemoryBackend::new());
/// let exports = Throttle::builder("doc-reserve-exports", "10/h").registry(&registry).build()?;
/// let rows = Throttle::builder("doc-reserve-rows", "1000/h").registry(&registry).build()?;
///
/// // An export of 400 rows: one export and 400 rows, reserved together.
/// let reservation = reserve(&[
///     Limit::new(&exports, "acme", HitOptions::new()),
///     Limit::new(&rows, "acme", HitOptions::new().cost(400)),
/// ]).await?;
/// assert!(!reservation.is_refused());
/// let export_failed = true;
/// if export_failed {
///     reservation.cancel().await; // charge only on success
/// } else {
///     reservation.commit();
/// }
/// assert_eq!(rows.stat("acme").await?.unwrap().hits_remaining, 1000);
/// # Ok(()) }
/// ```
pub async fn reserve<C>(limits: &[Limit<'_, C>]) -> Result<Reservation<'static>, ThrottleError>
where
    C: ?Sized + Send + Sync + 'static,
{
    Reservation::make(limits, None).await
}

/// A cost reserved on one or several throttles: see [`reserve`].
#[must_use = "a reservation dropped at once is cancelled at once"]
pub struct Reservation<'p> {
    verdicts: Vec<Verdict>,
    held: Mutex<Vec<Held>>,
    parent: Option<&'p Reservation<'p>>,
}

/// One charge a reservation holds: enough to return it.
struct Held {
    backend: Arc<dyn Backend>,
    key: String,
    strategy: Arc<dyn DynStrategy>,
    rate: Rate,
    cost: u64,
    context: Context,
    at: Millis,
    clock: Arc<dyn Clock>,
}

impl Held {
    fn charge(&self) -> Hit<'_> {
        Hit::new(self.at, self.rate, self.cost, &self.context)
    }

    fn report(&self, result: Result<Refund, crate::backend::BackendError>) {
        if let Err(error) = result {
            tracing::warn!(
                target: "traffik",
                key = self.key,
                %error,
                "could not return a reserved charge; it stays consumed"
            );
        }
    }

    async fn refund(self) {
        let now = self.clock.now();
        let result = self
            .backend
            .refund(&self.key, self.strategy.as_ref(), self.charge(), now)
            .await;
        self.report(result);
    }
}

impl<'p> Reservation<'p> {
    async fn make<C>(
        limits: &[Limit<'_, C>],
        parent: Option<&'p Reservation<'p>>,
    ) -> Result<Reservation<'p>, ThrottleError>
    where
        C: ?Sized + Send + Sync + 'static,
    {
        let batch: Batch<Verdict> = decide_all_prepared(limits).await?;
        let mut held: Vec<Held> = Vec::new();
        for ((prepared, charged), limit) in
            batch.prepared.into_iter().zip(batch.charged).zip(limits)
        {
            let Prepared::Ready(ready) = prepared else {
                continue;
            };
            if !charged {
                continue;
            }
            // The same key twice was charged once with the summed cost: hold it (and return
            // it) the same way.
            if let Some(same) = held
                .iter_mut()
                .find(|h| Arc::ptr_eq(&h.backend, &ready.backend) && h.key == ready.key)
            {
                same.cost = same.cost.saturating_add(ready.cost);
                continue;
            }
            held.push(Held {
                backend: ready.backend,
                key: ready.key,
                strategy: ready.strategy,
                rate: ready.rate,
                cost: ready.cost,
                context: ready.context,
                at: ready.now,
                clock: clock_of(limit.throttle()),
            });
        }
        let verdicts = batch.reports;
        if verdicts.iter().any(|v| v.decision().is_throttled()) {
            // Refused: limits on another backend may have been charged before the refusal
            // (there is no cross-backend transaction). Return them now: a refused reservation
            // holds nothing.
            for charge in held {
                charge.refund().await;
            }
            held = Vec::new();
        }
        Ok(Reservation {
            verdicts,
            held: Mutex::new(held),
            parent,
        })
    }

    /// Reserves `limits` inside this reservation: a nested reservation. Committing it hands its
    /// charges to this one (cancelling this one then returns them too); cancelling or dropping
    /// it returns only its own.
    ///
    /// # Errors
    /// As [`reserve`].
    pub async fn nested<C>(&self, limits: &[Limit<'_, C>]) -> Result<Reservation<'_>, ThrottleError>
    where
        C: ?Sized + Send + Sync + 'static,
    {
        Reservation::make(limits, Some(self)).await
    }

    /// Whether a limit refused: then nothing was charged and nothing is held.
    #[must_use]
    pub fn is_refused(&self) -> bool {
        self.verdicts.iter().any(|v| v.decision().is_throttled())
    }

    /// The decisions, in the limits' order (for the rate-limit headers, or the refusal's wait).
    #[must_use]
    pub fn decisions(&self) -> Vec<Decision> {
        self.verdicts.iter().map(Verdict::decision).collect()
    }

    /// The verdicts, in the limits' order: a refused limit's carries what refused it.
    #[must_use]
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// How many charges it holds (a nested reservation's included once committed into it).
    #[must_use]
    pub fn held(&self) -> usize {
        self.charges().len()
    }

    fn charges(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the charges (no backend call); a nested reservation hands them to its parent.
    pub fn commit(self) {
        let held = std::mem::take(&mut *self.charges());
        if let Some(parent) = self.parent {
            parent.charges().extend(held);
        }
    }

    /// Returns every charge it holds, now.
    pub async fn cancel(self) {
        // One at a time: if this future is dropped meanwhile, the reservation's drop returns
        // what is left.
        loop {
            let next = self.charges().pop();
            let Some(charge) = next else { break };
            charge.refund().await;
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let held = std::mem::take(&mut *self.charges());
        let mut pending = Vec::new();
        for charge in held {
            let now = charge.clock.now();
            let answered = charge
                .backend
                .refund(&charge.key, charge.strategy.as_ref(), charge.charge(), now)
                .into_ready()
                .ok();
            match answered {
                Some(result) => charge.report(result),
                None => pending.push(charge),
            }
        }
        if pending.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    for charge in pending {
                        charge.refund().await;
                    }
                });
            }
            Err(_) => tracing::warn!(
                target: "traffik",
                charges = pending.len(),
                "a reservation dropped outside a Tokio runtime could not return its charges; \
                 they stay consumed"
            ),
        }
    }
}

impl fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("verdicts", &self.verdicts)
            .field("held", &self.held())
            .field("nested", &self.parent.is_some())
            .finish()
    }
}

fn clock_of<C: ?Sized>(throttle: &Throttle<C>) -> Arc<dyn Clock> {
    Arc::clone(&throttle.inner.clock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::HitOptions;
    use crate::{ManualClock, MemoryBackend, ThrottleRegistry};

    struct Two {
        hourly: Throttle,
        burst: Throttle,
    }

    fn two(prefix: &str) -> Two {
        let clock = ManualClock::new(1_000_000);
        let registry = ThrottleRegistry::new();
        registry.set_default_backend(
            MemoryBackend::builder()
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
        let build = |uid: String, rate: &str| {
            Throttle::builder(uid, rate)
                .registry(&registry)
                .clock(clock.clone())
                .build()
                .unwrap()
        };
        Two {
            hourly: build(format!("{prefix}-hourly"), "10/h"),
            burst: build(format!("{prefix}-burst"), "3/min"),
        }
    }

    impl Two {
        fn limits(&self, cost: u64) -> [Limit<'_, str>; 2] {
            [
                Limit::new(&self.hourly, "c", HitOptions::new().cost(cost)),
                Limit::new(&self.burst, "c", HitOptions::new().cost(cost)),
            ]
        }

        async fn left(&self) -> (u64, u64) {
            (
                self.hourly.stat("c").await.unwrap().unwrap().hits_remaining,
                self.burst.stat("c").await.unwrap().unwrap().hits_remaining,
            )
        }
    }

    #[tokio::test]
    async fn all_or_nothing_then_commit_keeps_and_cancel_and_drop_return() {
        let t = two("resv");
        let committed = reserve(&t.limits(2)).await.unwrap();
        assert!(!committed.is_refused());
        assert_eq!(committed.held(), 2);
        committed.commit();
        assert_eq!(t.left().await, (8, 1));

        let refused = reserve(&t.limits(2)).await.unwrap();
        assert!(refused.is_refused(), "the burst has 1 left");
        assert_eq!(refused.held(), 0);
        drop(refused);
        assert_eq!(t.left().await, (8, 1), "a refusal charged nothing");

        let cancelled = reserve(&t.limits(1)).await.unwrap();
        assert_eq!(t.left().await, (7, 0), "reserved: spent for everyone");
        cancelled.cancel().await;
        assert_eq!(t.left().await, (8, 1));

        let dropped = reserve(&t.limits(1)).await.unwrap();
        drop(dropped);
        assert_eq!(t.left().await, (8, 1), "in memory a drop returns at once");
    }

    #[tokio::test]
    async fn nested_reservations_commit_into_their_parent() {
        let t = two("resv-nested");
        let outer = reserve(&[Limit::new(&t.hourly, "c", HitOptions::new())])
            .await
            .unwrap();
        let inner = outer
            .nested(&[Limit::new(&t.burst, "c", HitOptions::new())])
            .await
            .unwrap();
        inner.commit();
        assert_eq!(outer.held(), 2);
        let discarded = outer
            .nested(&[Limit::new(&t.burst, "c", HitOptions::new())])
            .await
            .unwrap();
        assert_eq!(t.left().await, (9, 1));
        discarded.cancel().await;
        assert_eq!(
            t.left().await,
            (9, 2),
            "only the inner one's charge came back"
        );
        outer.cancel().await;
        assert_eq!(
            t.left().await,
            (10, 3),
            "the parent returned what was committed into it"
        );
    }

    /// Memory, where a concurrent request charges a key once between a batch's check and its
    /// charge (the first consuming decision only).
    #[derive(Debug)]
    struct Racing {
        inner: MemoryBackend,
        raced: std::sync::atomic::AtomicBool,
    }

    impl Backend for Racing {
        fn name(&self) -> &str {
            "racing"
        }
        fn settings(&self) -> &crate::backend::BackendSettings {
            self.inner.settings()
        }
        fn decide<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
            mode: crate::backend::Mode,
        ) -> crate::backend::BackendFuture<'a, Decision> {
            crate::MaybeReady::boxed(async move {
                let consume = mode == crate::backend::Mode::Consume;
                if consume && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    self.inner.decide(key, strategy, hit, mode).await?;
                }
                self.inner.decide(key, strategy, hit, mode).await
            })
        }
        fn refund<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            charge: Hit<'a>,
            now: Millis,
        ) -> crate::backend::BackendFuture<'a, Refund> {
            self.inner.refund(key, strategy, charge, now)
        }
        fn stat<'a>(
            &'a self,
            key: &'a str,
            strategy: &'a dyn DynStrategy,
            hit: Hit<'a>,
        ) -> crate::backend::BackendFuture<'a, crate::StrategyStat> {
            self.inner.stat(key, strategy, hit)
        }
        fn reset(&self) -> crate::backend::BackendFuture<'_, ()> {
            self.inner.reset()
        }
        fn close(&self) -> crate::backend::BackendFuture<'_, ()> {
            self.inner.close()
        }
    }

    #[tokio::test]
    async fn a_refusal_on_another_backend_after_a_charge_returns_the_charge() {
        let registry = ThrottleRegistry::new();
        let wide = Throttle::builder("resv-wide", "100/h")
            .registry(&registry)
            .backend(MemoryBackend::new())
            .build()
            .unwrap();
        let narrow = Throttle::builder("resv-narrow", "1/h")
            .registry(&registry)
            .backend(Racing {
                inner: MemoryBackend::new(),
                raced: std::sync::atomic::AtomicBool::new(false),
            })
            .build()
            .unwrap();
        let reservation = reserve(&[
            Limit::new(&wide, "c", HitOptions::new()),
            Limit::new(&narrow, "c", HitOptions::new()),
        ])
        .await
        .unwrap();
        assert!(
            reservation.is_refused(),
            "the race took the narrow limit's unit"
        );
        assert_eq!(reservation.held(), 0);
        assert_eq!(
            wide.stat("c").await.unwrap().unwrap().hits_remaining,
            100,
            "the wide limit's charge came back"
        );
    }

    #[tokio::test]
    async fn the_same_throttle_twice_reserves_the_summed_cost_and_returns_it_all() {
        let t = two("resv-same");
        let both = reserve(&[
            Limit::new(&t.burst, "c", HitOptions::new().cost(1)),
            Limit::new(&t.burst, "c", HitOptions::new().cost(2)),
        ])
        .await
        .unwrap();
        assert_eq!(t.left().await.1, 0);
        both.cancel().await;
        assert_eq!(t.left().await.1, 3);
    }
}
