//! [`Extensions`]: typed values attached to a backend or a throttle for the protocol crates,
//! such as the default throttled handler of every throttle on a backend, or a throttle's HTTP
//! scope.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A map from type to one value of that type, attached to a backend
/// ([`BackendSettings`](super::BackendSettings)) or a throttle
/// ([`ThrottleBuilder::extension`](crate::throttle::ThrottleBuilder::extension)).
///
/// Core knows nothing of HTTP or WebSocket; `traffik-axum` looks up its own types here (its
/// `ThrottledHandler` is the backend-level default response to a refusal, used by every
/// throttle on the backend that sets none of its own).
///
/// ```
/// use traffik_core::backend::Extensions;
///
/// #[derive(Debug, PartialEq)]
/// struct Tenant(&'static str);
///
/// let extensions = Extensions::new().with(Tenant("acme"));
/// assert_eq!(extensions.get::<Tenant>(), Some(&Tenant("acme")));
/// assert_eq!(extensions.get::<u32>(), None);
/// ```
#[derive(Clone, Default)]
pub struct Extensions {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Extensions::default()
    }

    /// This map with `value` stored, replacing a previous value of its type.
    #[must_use]
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// Stores `value`, replacing a previous value of its type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one is stored.
    #[must_use]
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref())
    }

    /// Whether nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.values.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_the_last_wins() {
        let mut extensions = Extensions::new().with(1_u8).with("first");
        extensions.insert("second");
        assert_eq!(extensions.get::<u8>(), Some(&1));
        assert_eq!(extensions.get::<&str>(), Some(&"second"));
        assert!(!extensions.is_empty());
        assert!(Extensions::new().is_empty());
        assert_eq!(format!("{extensions:?}"), "Extensions { len: 2 }");
    }
}
