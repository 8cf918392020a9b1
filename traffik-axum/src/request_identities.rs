//! [`RequestIdentities`]: the request's (or WebSocket connection's) [`IdentityMemo`], kept in
//! its extensions, so a memoized identifier runs once per request whatever the number of
//! throttles, and once per connection whatever the number of messages.

use std::sync::Arc;

use http::Extensions;
use traffik_core::throttle::IdentityMemo;

/// The identities computed for one request, shared by the copies of its extensions (a
/// WebSocket's upgrade request keeps it for the connection's messages).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestIdentities(Arc<IdentityMemo>);

impl RequestIdentities {
    /// Puts a memo into `extensions` unless one is there.
    pub(crate) fn ensure(extensions: &mut Extensions) {
        if extensions.get::<RequestIdentities>().is_none() {
            extensions.insert(RequestIdentities::default());
        }
    }

    /// The request's memo, if it has one.
    #[inline]
    pub(crate) fn of(extensions: &Extensions) -> Option<&IdentityMemo> {
        extensions.get::<RequestIdentities>().map(|memo| &*memo.0)
    }
}
