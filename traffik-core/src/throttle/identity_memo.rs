//! [`IdentityMemo`]: the identities of one request (or one WebSocket connection), computed
//! once per identifier however many throttles use it (the reference's `cache_ids`).

use std::any::Any;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::Identity;

/// The identities computed for one connection, by identifier.
///
/// An adapter keeps one per request (traffik-axum puts one in the request's extensions) or per
/// WebSocket connection and passes it with each hit ([`HitOptions::identities`](super::HitOptions::identities)); then a
/// memoized [`Identifier`](super::Identifier) (every asynchronous one, by default) runs once
/// for the connection instead of once per throttle or message. Identifiers are told apart by
/// their function: throttles built with clones of one `Identifier` share its entry.
///
/// Two hits resolving the same identifier *at the same time* may both run it (the memo keeps
/// the first answer); hits one after the other, as a request's throttles run, never do.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use traffik_core::{Identity, MemoryBackend, Throttle};
/// use traffik_core::throttle::{HitOptions, Identifier, IdentityMemo};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let calls = Arc::new(AtomicUsize::new(0));
/// let counted = Arc::clone(&calls);
/// let by_token = Identifier::from_async(move |token: &str| {
///     counted.fetch_add(1, Ordering::Relaxed); // a JWT decode, say
///     Box::pin(async move { Identity::from(token) })
/// });
/// let backend = MemoryBackend::new();
/// let burst = Throttle::builder("memo-doc-burst", "10/s").backend(backend.clone()).identifier(by_token.clone()).build()?;
/// let daily = Throttle::builder("memo-doc-daily", "1000/day").backend(backend).identifier(by_token).build()?;
///
/// let memo = IdentityMemo::new(); // one per request
/// let options = HitOptions::new().identities(&memo);
/// burst.hit_with("token-1", options).await?;
/// daily.hit_with("token-1", options).await?;
/// assert_eq!(calls.load(Ordering::Relaxed), 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct IdentityMemo {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    /// The identifier's function, by address.
    key: usize,
    identity: Identity<'static>,
    /// A handle on the identifier's function: kept alive, its address cannot be reused for
    /// another identifier while the memo lives.
    _function: Box<dyn Any + Send + Sync>,
}

impl IdentityMemo {
    /// An empty memo.
    #[must_use]
    pub fn new() -> Self {
        IdentityMemo::default()
    }

    /// How many identities it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn get(&self, key: usize) -> Option<Identity<'static>> {
        self.entries()
            .iter()
            .find(|entry| entry.key == key)
            .map(|entry| entry.identity.clone())
    }

    pub(super) fn put(
        &self,
        key: usize,
        identity: Identity<'static>,
        function: Box<dyn Any + Send + Sync>,
    ) {
        let mut entries = self.entries();
        if entries.iter().all(|entry| entry.key != key) {
            entries.push(Entry {
                key,
                identity,
                _function: function,
            });
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for IdentityMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityMemo")
            .field("identities", &self.len())
            .finish()
    }
}
