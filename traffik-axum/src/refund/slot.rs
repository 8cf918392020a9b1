//! [`RefundSlot`]: the charges of one request a refund policy may return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::request::Parts;

use crate::charges::Charge;

/// The charges of one request that a refund policy may return, with the request as each entry
/// point saw it (to reach the same key). In the request's extensions while a refunding layer is
/// around it; a refunding layer inside another links to the outer one's slot, so each layer
/// sees every charge made inside it.
#[derive(Clone, Default)]
pub(crate) struct RefundSlot {
    kept: Arc<Mutex<Vec<Kept>>>,
    outer: Option<Box<RefundSlot>>,
}

/// A kept charge: the charge, the request it was made on (without its slot: no cycle), and
/// whether it was returned already (shared by every slot and the request's refusal record, so
/// no charge is returned twice).
pub(crate) struct Kept {
    charge: Charge,
    parts: Parts,
    returned: Arc<AtomicBool>,
}

impl Kept {
    /// The request the charge was made on.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> &Parts {
        &self.parts
    }

    /// Returns the charge unless it was already.
    pub(crate) async fn refund(self) {
        if !self.returned.swap(true, Ordering::AcqRel) {
            self.charge.return_now(&self.parts).await;
        }
    }
}

impl RefundSlot {
    /// A slot for a refunding layer, inside the one `parts` may already have.
    pub(crate) fn enter(extensions: &mut http::Extensions) -> RefundSlot {
        let outer = extensions.get::<RefundSlot>().cloned().map(Box::new);
        let slot = RefundSlot {
            kept: Arc::default(),
            outer,
        };
        extensions.insert(slot.clone());
        slot
    }

    /// Keeps `charge`, made on `parts`, in every slot of the request, marking it with the
    /// flag its refusal record shares (`None` when the request has no slot).
    pub(crate) fn keep(parts: &Parts, charge: &Charge) -> Option<Arc<AtomicBool>> {
        let slot = parts.extensions.get::<RefundSlot>()?;
        let returned = Arc::new(AtomicBool::new(false));
        let mut snapshot = parts.clone();
        snapshot.extensions.remove::<RefundSlot>();
        let mut next = Some(slot);
        while let Some(slot) = next {
            slot.kept().push(Kept {
                charge: charge.clone(),
                parts: snapshot.clone(),
                returned: Arc::clone(&returned),
            });
            next = slot.outer.as_deref();
        }
        Some(returned)
    }

    fn kept(&self) -> MutexGuard<'_, Vec<Kept>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next kept charge, taken out.
    pub(crate) fn pop(&self) -> Option<Kept> {
        self.kept().pop()
    }

    /// Every kept charge, taken out.
    pub(crate) fn take(&self) -> Vec<Kept> {
        std::mem::take(&mut *self.kept())
    }
}
