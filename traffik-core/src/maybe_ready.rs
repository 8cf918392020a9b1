//! [`MaybeReady`]: a future that is either already resolved or boxed.
//!
//! Backends that decide synchronously (the in-memory one) return `Ready` and cost no
//! allocation; network backends return a boxed future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A boxed, sendable future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A future that is either a value already computed or a boxed future.
///
/// ```
/// use traffik_core::MaybeReady;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(MaybeReady::ready(1).await, 1);
/// assert_eq!(MaybeReady::boxed(async { 2 }).await, 2);
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct MaybeReady<'a, T>(Inner<'a, T>);

enum Inner<'a, T> {
    Ready(Option<T>),
    Boxed(BoxFuture<'a, T>),
}

impl<'a, T> MaybeReady<'a, T> {
    /// Already resolved to `value`.
    pub fn ready(value: T) -> Self {
        MaybeReady(Inner::Ready(Some(value)))
    }

    /// Resolves when `future` does.
    pub fn boxed(future: impl Future<Output = T> + Send + 'a) -> Self {
        MaybeReady(Inner::Boxed(Box::pin(future)))
    }

    /// Resolves when `future`, already boxed, does (no second box).
    pub fn from_boxed(future: BoxFuture<'a, T>) -> Self {
        MaybeReady(Inner::Boxed(future))
    }

    /// The value, by reference, if it is already resolved (without polling or moving it).
    #[must_use]
    #[inline]
    pub fn as_ready(&self) -> Option<&T> {
        match &self.0 {
            Inner::Ready(value) => value.as_ref(),
            Inner::Boxed(_) => None,
        }
    }

    /// The value, if it is already resolved (without polling).
    pub fn into_ready(self) -> Result<T, Self> {
        match self.0 {
            Inner::Ready(Some(value)) => Ok(value),
            other => Err(MaybeReady(other)),
        }
    }
}

impl<T> Unpin for MaybeReady<'_, T> {}

impl<T> Future for MaybeReady<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.get_mut().0 {
            Inner::Ready(value) => {
                Poll::Ready(value.take().expect("MaybeReady polled after completion"))
            }
            Inner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for MaybeReady<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Inner::Ready(_) => "MaybeReady::Ready",
            Inner::Boxed(_) => "MaybeReady::Boxed",
        })
    }
}
