//! [`Verdict`]: a decision together with what an adapter needs to answer a refusal.

use std::fmt;
use std::sync::Arc;

use crate::backend::Backend;
use crate::{Context, Decision};

/// A hit's [`Decision`] and, when the hit was refused, the [`Refusal`]: the backend that refused
/// it and the hit's merged context. An adapter answers a refusal from these (a backend's
/// default handler, a handler that reads the context) without asking the throttle again, so
/// the answer always matches the decision, even if the throttle's configuration or the
/// registry's default backend changed in between.
///
/// ```
/// use traffik_core::{MemoryBackend, Throttle, throttle::HitOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let throttle = Throttle::builder("verdict-doc", "1/min").backend(MemoryBackend::new()).build()?;
/// assert!(throttle.hit_verdict("alice", HitOptions::new()).await?.refusal().is_none());
/// let refused = throttle.hit_verdict("alice", HitOptions::new()).await?;
/// assert!(refused.decision().is_throttled());
/// assert_eq!(refused.refusal().expect("refused").backend().name(), "memory");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verdict {
    decision: Decision,
    /// Boxed: an admitted hit moves one word for it (a refusal allocates, as its 429 does).
    refusal: Option<Box<Refusal>>,
}

impl Verdict {
    /// The decision.
    #[must_use]
    #[inline]
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// What refused the hit: `Some` exactly when the decision is not allowed.
    #[must_use]
    #[inline]
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.as_deref()
    }

    /// The decision and the refusal.
    #[must_use]
    #[inline]
    pub fn into_parts(self) -> (Decision, Option<Refusal>) {
        (self.decision, self.refusal.map(|refusal| *refusal))
    }
}

impl fmt::Debug for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verdict")
            .field("decision", &self.decision)
            .field("refusal", &self.refusal)
            .finish()
    }
}

/// What refused a hit: the backend that decided it (the throttle's own, the per-call one or the
/// registry's default, whichever the hit went to) and the context the hit saw (the call's
/// context merged over the throttle's). When that backend failed and the on-error policy
/// decided (failed closed, or a handler that retried elsewhere), it is still the backend the
/// hit went to: the one whose failure the policy answered.
#[derive(Clone)]
pub struct Refusal {
    backend: Arc<dyn Backend>,
    context: Context,
}

impl Refusal {
    pub(super) fn new(backend: Arc<dyn Backend>, context: Context) -> Self {
        Refusal { backend, context }
    }

    /// The backend that refused the hit.
    #[must_use]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The hit's merged context.
    #[must_use]
    pub fn context(&self) -> &Context {
        &self.context
    }
}

impl fmt::Debug for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refusal")
            .field("backend", &self.backend.name())
            .field("context", &self.context)
            .finish()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Decision {}
    impl Sealed for super::Verdict {}
}

/// What a hit reports: a plain [`Decision`] (`hit`, `check`) or a [`Verdict`] (`hit_verdict`,
/// `check_verdict`). Sealed. A plain decision never builds the refusal, so `hit` pays nothing
/// for it.
pub trait Report: sealed::Sealed + Send + Sized + 'static {
    /// A decision made without a backend (skipped): never a refusal.
    #[doc(hidden)]
    fn unrefused(decision: Decision) -> Self;

    /// A decision; `refusal` is called only when the hit was refused and only by a
    /// [`Verdict`].
    #[doc(hidden)]
    fn decided(decision: Decision, refusal: impl FnOnce() -> Refusal) -> Self;

    /// The decision reported.
    #[doc(hidden)]
    fn decision(&self) -> Decision;
}

impl Report for Decision {
    #[inline]
    fn unrefused(decision: Decision) -> Self {
        decision
    }

    #[inline]
    fn decided(decision: Decision, _refusal: impl FnOnce() -> Refusal) -> Self {
        decision
    }

    #[inline]
    fn decision(&self) -> Decision {
        *self
    }
}

impl Report for Verdict {
    #[inline]
    fn unrefused(decision: Decision) -> Self {
        Verdict {
            decision,
            refusal: None,
        }
    }

    #[inline]
    fn decided(decision: Decision, refusal: impl FnOnce() -> Refusal) -> Self {
        let refusal = (!decision.is_allowed()).then(|| Box::new(refusal()));
        Verdict { decision, refusal }
    }

    #[inline]
    fn decision(&self) -> Decision {
        self.decision
    }
}
