//! [`CallOptions`]: the per-call settings every entry point passes down to one hit.

use traffik_core::headers::Headers;
use traffik_core::{Context, Millis};

/// The per-call settings of one enforced hit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallOptions<'a> {
    pub(crate) cost: Option<u64>,
    pub(crate) context: Option<&'a Context>,
    pub(crate) headers: Option<&'a Headers>,
    /// A budget of its own for this call, in place of the throttle's scope.
    pub(crate) scope: Option<&'a str>,
    /// The time of the hit (ms), when the entry point read it to record the charge.
    pub(crate) now: Option<Millis>,
}

impl CallOptions<'_> {
    pub(crate) fn cost(cost: Option<u64>) -> Self {
        CallOptions {
            cost,
            ..CallOptions::default()
        }
    }
}
