//! [`Lane`]: a throttle's way straight into the entries of its keys, for a backend that keeps
//! them in this process.

use std::fmt;

use crate::Decision;
use crate::backend::Mode;
use crate::key::KeyIdentity;
use crate::strategy::{DynStrategy, Hit};

/// A throttle's way straight into the entries of its keys, handed out by
/// [`Backend::lane`](super::Backend::lane) when the throttle's configuration is built: a hit goes
/// from the client's identity to its entry with no storage key written. Only the in-memory
/// backend makes them (for its built-in strategies); the entries are the ones its string-keyed
/// calls reach, so every path sees one state. Opaque: nothing outside traffik-core can use one.
#[doc(hidden)]
#[derive(Clone)]
pub struct Lane {
    #[cfg(feature = "memory")]
    inner: super::memory::MemoryLane,
    #[cfg(not(feature = "memory"))]
    never: std::convert::Infallible,
}

impl Lane {
    #[cfg(feature = "memory")]
    pub(crate) fn memory(inner: super::memory::MemoryLane) -> Self {
        Lane { inner }
    }

    /// Whether the backend still takes decisions (not closed).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        #[cfg(feature = "memory")]
        return self.inner.is_open();
        #[cfg(not(feature = "memory"))]
        match self.never {}
    }

    /// Decides `hit` for `identity` (and `scope`) under `strategy`, the strategy the lane was
    /// made for; `None` when the backend is closed (the string-keyed call then reports it).
    #[inline]
    pub(crate) fn decide(
        &self,
        identity: KeyIdentity<'_>,
        scope: Option<&str>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Option<Decision> {
        #[cfg(feature = "memory")]
        return self.inner.decide(identity, scope, strategy, hit, mode);
        #[cfg(not(feature = "memory"))]
        {
            let _ = (identity, scope, strategy, hit, mode);
            match self.never {}
        }
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "memory")]
        return self.inner.fmt(f);
        #[cfg(not(feature = "memory"))]
        {
            let _ = f;
            match self.never {}
        }
    }
}
