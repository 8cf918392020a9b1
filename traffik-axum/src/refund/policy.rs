//! [`RefundPolicy`]: which requests get their charges back after the handler.

use std::fmt;
use std::sync::Arc;

use axum::response::Response;

type ResponsePredicate = Arc<dyn Fn(&Response) -> bool + Send + Sync>;

/// Which requests get their charges back after the handler ran.
///
/// ```
/// use traffik_axum::RefundPolicy;
///
/// // Server errors and cancelled requests cost nothing.
/// let policy = RefundPolicy::server_errors().on_cancel(true);
/// // Or any test of the response.
/// let not_found = RefundPolicy::when(|response| response.status() == 404);
/// # let _ = (policy, not_found);
/// ```
#[derive(Clone, Default)]
pub struct RefundPolicy {
    when: Option<ResponsePredicate>,
    pub(super) on_cancel: bool,
}

impl RefundPolicy {
    /// No refunds (add a predicate or [`on_cancel`](Self::on_cancel)).
    #[must_use]
    pub fn new() -> Self {
        RefundPolicy::default()
    }

    /// Refunds responses with a 5xx status.
    #[must_use]
    pub fn server_errors() -> Self {
        RefundPolicy::when(|response| response.status().is_server_error())
    }

    /// Refunds responses for which `predicate` holds.
    #[must_use]
    pub fn when(predicate: impl Fn(&Response) -> bool + Send + Sync + 'static) -> Self {
        RefundPolicy {
            when: Some(Arc::new(predicate)),
            on_cancel: false,
        }
    }

    /// Whether a request cancelled before its response (its future dropped: the client
    /// disconnected, a timeout fired) gets its charges back.
    #[must_use]
    pub fn on_cancel(mut self, refund: bool) -> Self {
        self.on_cancel = refund;
        self
    }

    pub(super) fn refunds(&self, response: &Response) -> bool {
        self.when.as_ref().is_some_and(|when| when(response))
    }
}

impl fmt::Debug for RefundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefundPolicy")
            .field("when", &self.when.is_some())
            .field("on_cancel", &self.on_cancel)
            .finish()
    }
}
