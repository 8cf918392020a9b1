//! [`Identity`]: who a hit is counted against, or [`EXEMPTED`].

use std::borrow::Cow;

/// The result of an identifier: the client's key, or an exemption.
///
/// ```
/// use traffik_core::{EXEMPTED, Identity};
///
/// let alice = Identity::from("user:alice");
/// assert_eq!(alice.key(), Some("user:alice"));
/// assert!(EXEMPTED.is_exempted());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity<'a> {
    /// Count the hit against this key (an IP address, a user id, an API key, …).
    Key(Cow<'a, str>),
    /// Skip the throttle entirely: no backend call, nothing consumed.
    Exempted,
}

/// The identity that skips a throttle entirely.
pub const EXEMPTED: Identity<'static> = Identity::Exempted;

impl Identity<'_> {
    /// The key, unless exempted.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Identity::Key(key) => Some(key),
            Identity::Exempted => None,
        }
    }

    /// Whether this is [`EXEMPTED`].
    #[must_use]
    pub fn is_exempted(&self) -> bool {
        matches!(self, Identity::Exempted)
    }

    /// An owned copy that outlives the borrowed input.
    #[must_use]
    pub fn into_owned(self) -> Identity<'static> {
        match self {
            Identity::Key(key) => Identity::Key(Cow::Owned(key.into_owned())),
            Identity::Exempted => Identity::Exempted,
        }
    }
}

impl<'a> From<&'a str> for Identity<'a> {
    fn from(key: &'a str) -> Self {
        Identity::Key(Cow::Borrowed(key))
    }
}

impl From<String> for Identity<'static> {
    fn from(key: String) -> Self {
        Identity::Key(Cow::Owned(key))
    }
}

impl<'a> From<Cow<'a, str>> for Identity<'a> {
    fn from(key: Cow<'a, str>) -> Self {
        Identity::Key(key)
    }
}
