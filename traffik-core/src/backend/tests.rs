//! The default [`Backend::decide_all`] (`check_then_decide`): a charge refused after the check
//! refunds the charges made before it.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{Backend, BackendFuture, BackendSettings, KeyedHit, Mode};
use crate::strategy::{DynStrategy, FixedWindow, Hit, Refund};
use crate::{Context, Decision, MaybeReady, MemoryBackend, Millis, Rate};

/// Memory, with the default `decide_all`, and a concurrent request that charges key `b` once
/// between the batch's check and its charge.
#[derive(Debug)]
struct Racing {
    inner: MemoryBackend,
    raced: AtomicBool,
}

impl Backend for Racing {
    fn name(&self) -> &str {
        "racing"
    }

    fn settings(&self) -> &BackendSettings {
        self.inner.settings()
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
        mode: Mode,
    ) -> BackendFuture<'a, Decision> {
        MaybeReady::boxed(async move {
            if mode == Mode::Consume && key == "b" && !self.raced.swap(true, Ordering::SeqCst) {
                self.inner.decide(key, strategy, hit, Mode::Consume).await?;
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
    ) -> BackendFuture<'a, Refund> {
        self.inner.refund(key, strategy, charge, now)
    }

    fn stat<'a>(
        &'a self,
        key: &'a str,
        strategy: &'a dyn DynStrategy,
        hit: Hit<'a>,
    ) -> BackendFuture<'a, crate::StrategyStat> {
        self.inner.stat(key, strategy, hit)
    }

    fn reset(&self) -> BackendFuture<'_, ()> {
        self.inner.reset()
    }

    fn close(&self) -> BackendFuture<'_, ()> {
        self.inner.close()
    }
}

#[tokio::test]
async fn a_charge_refused_after_the_check_refunds_the_earlier_charges() {
    let backend = Racing {
        inner: MemoryBackend::new(),
        raced: AtomicBool::new(false),
    };
    let (strategy, context) = (FixedWindow::new(), Context::new());
    let hit = Hit::new(1_700_000_000_000, Rate::per_minute(1), 1, &context);
    let hits = [
        KeyedHit {
            key: "a",
            strategy: &strategy,
            hit,
        },
        KeyedHit {
            key: "b",
            strategy: &strategy,
            hit,
        },
    ];
    let decisions = backend.decide_all(&hits, Mode::Consume).await.unwrap();
    assert!(decisions[0].is_allowed(), "a passed its check");
    assert!(
        decisions[1].is_throttled(),
        "b was emptied by the other request"
    );
    assert_eq!(
        backend
            .stat("a", &strategy, hit)
            .await
            .unwrap()
            .hits_remaining,
        1,
        "a's charge was returned"
    );
    assert_eq!(
        backend
            .stat("b", &strategy, hit)
            .await
            .unwrap()
            .hits_remaining,
        0,
        "b holds only the other request's charge"
    );
}
