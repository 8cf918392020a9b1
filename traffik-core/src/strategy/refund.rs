//! [`Refund`]: what returning an admitted charge did.

/// What [`Strategy::refund`](super::Strategy::refund) (and a backend's refund) did with a
/// charge it was asked to return.
///
/// A refund returns the units an admitted hit consumed, as if that hit had not been admitted:
/// the engine uses it when one limit of a request refuses after another limit of the same
/// request has already charged it (separate `Throttled<_>` extractors in axum), so a refused
/// request consumes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refund {
    /// The units were returned to the client's budget.
    Returned,
    /// The charge no longer counts, so there was nothing to return: its window has ended, its
    /// log entry aged out, the bucket has refilled (drained) past it, or the key expired.
    Lapsed,
    /// The strategy (a custom one that does not implement [`Strategy::refund`](super::Strategy::refund)),
    /// or the backend, cannot return a charge; the units stay consumed.
    Unsupported,
}

impl Refund {
    /// Whether units were returned.
    #[must_use]
    pub const fn is_returned(self) -> bool {
        matches!(self, Refund::Returned)
    }
}
