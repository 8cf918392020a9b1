//! [`HitFuture`]: the future of `Throttle::hit` and `check`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::verdict::Report;
use super::{HitOptions, Throttle};
use crate::backend::Mode;
use crate::telemetry::DecisionSpan;
use crate::{BoxFuture, Decision, ThrottleError};

/// The future returned by [`Throttle::hit`] and [`Throttle::check`] (and their `_with` forms),
/// reporting a [`Decision`], and by [`Throttle::hit_verdict`] and [`Throttle::check_verdict`],
/// reporting a [`Verdict`](super::Verdict).
///
/// Lazy like any future: nothing happens until it is polled. On its first poll it decides at
/// once when every input is synchronous and the backend decides synchronously (the in-memory
/// backend): no allocation, no suspension. Otherwise it boxes the asynchronous path once and
/// drives it.
#[must_use = "futures do nothing unless awaited"]
pub struct HitFuture<'a, C: ?Sized + 'static, R = Decision> {
    throttle: &'a Throttle<C>,
    connection: &'a C,
    options: HitOptions<'a>,
    mode: Mode,
    pending: Option<BoxFuture<'a, Result<R, ThrottleError>>>,
}

impl<'a, C: ?Sized + Send + Sync + 'static, R: Report> HitFuture<'a, C, R> {
    pub(super) fn new(
        throttle: &'a Throttle<C>,
        connection: &'a C,
        options: HitOptions<'a>,
        mode: Mode,
    ) -> Self {
        HitFuture {
            throttle,
            connection,
            options,
            mode,
            pending: None,
        }
    }
}

impl<C: ?Sized + Send + Sync + 'static, R: Report> Future for HitFuture<'_, C, R> {
    type Output = Result<R, ThrottleError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.pending.is_none() {
            let span = DecisionSpan::start(this.throttle.uid());
            if let Some(result) =
                this.throttle
                    .decide_now(this.connection, &this.options, this.mode, &span)
            {
                return Poll::Ready(result);
            }
            this.pending = Some(Box::pin(this.throttle.run_async(
                this.connection,
                this.options,
                this.mode,
                span,
            )));
        }
        match &mut this.pending {
            Some(pending) => pending.as_mut().poll(cx),
            None => unreachable!("set just above"),
        }
    }
}

impl<C: ?Sized + 'static, R> fmt::Debug for HitFuture<'_, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HitFuture")
            .field("throttle", &self.throttle.inner.uid)
            .field("mode", &self.mode)
            .field("started", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}
