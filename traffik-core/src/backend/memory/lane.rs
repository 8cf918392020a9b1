//! [`MemoryLane`]: a throttle's own way into its typed table in an in-memory backend.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::store::Store;
use super::table::AnyTable;
use super::tail::TailRef;
use crate::Decision;
use crate::backend::Mode;
use crate::identity::AddressText;
use crate::key::{KeyIdentity, is_unescaped, with_key_buffer, write_tail};
use crate::strategy::{DynStrategy, Hit};

/// A throttle's handle on the typed table that holds its keys in an in-memory backend (the
/// in-memory form of [`Lane`](crate::backend::Lane)): a hit goes from the client's identity
/// straight to its entry, with no storage key built, no table looked up, no dynamic dispatch to
/// the strategy. The same entries as the string-keyed calls reach (`stat`, refunds, batches, the
/// asynchronous path), so every path sees one state.
#[derive(Clone)]
pub(crate) struct MemoryLane {
    store: Arc<Store>,
    table: Arc<dyn AnyTable>,
}

impl MemoryLane {
    pub(super) fn new(store: Arc<Store>, table: Arc<dyn AnyTable>) -> Self {
        MemoryLane { store, table }
    }

    /// Whether the backend is not closed.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        !self.store.is_closed()
    }

    /// Decides `hit` for `identity` (and `scope`) under `strategy`, the strategy the table was
    /// made for; `None` when the backend is closed.
    #[inline]
    pub(crate) fn decide(
        &self,
        identity: KeyIdentity<'_>,
        scope: Option<&str>,
        strategy: &dyn DynStrategy,
        hit: &Hit<'_>,
        mode: Mode,
    ) -> Option<Decision> {
        if self.store.is_closed() {
            return None;
        }
        let decide = |tail: &[u8]| {
            self.table
                .decide(&self.store, &TailRef::new(tail), strategy, hit, mode)
        };
        match (identity, scope.filter(|scope| !scope.is_empty())) {
            (KeyIdentity::Text(text), None) if is_unescaped(text) => Some(decide(text.as_bytes())),
            (KeyIdentity::Address(ip @ IpAddr::V4(_)), None) => {
                Some(decide(AddressText::of(ip).as_str().as_bytes()))
            }
            (identity, scope) => Some(with_key_buffer(|buffer| {
                write_tail(buffer, identity, scope);
                decide(buffer.as_bytes())
            })),
        }
    }
}

impl fmt::Debug for MemoryLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLane")
            .field("prefix", &self.table.prefix())
            .field("strategy", &self.table.strategy_name())
            .finish()
    }
}
