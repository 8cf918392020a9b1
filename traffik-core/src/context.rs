//! [`Context`]: free-form values that travel with a hit.

use serde_json::{Map, Value};

/// Values attached to a throttle (static) or to one call (call-time), merged with the call's
/// values on top.
///
/// Strategies read it ([`Tiered`](crate::strategy::Tiered) reads `"tier"`,
/// [`Priority`](crate::strategy::Priority) reads `"priority"`), and so do rate functions, cost
/// functions and on-error handlers.
///
/// ```
/// use traffik_core::Context;
///
/// let base = Context::new().with("tier", "free").with("region", "eu");
/// let call = Context::new().with("tier", "premium");
/// let merged = call.merged_over(&base);
/// assert_eq!(merged.get_str("tier"), Some("premium"));
/// assert_eq!(merged.get_str("region"), Some("eu"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    values: Map<String, Value>,
}

impl Context {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Context::default()
    }

    /// This context with `key` set to `value`.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.values.insert(key.into(), value.into())
    }

    /// The value at `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The value at `key` if it is a string.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(Value::as_str)
    }

    /// Whether the context holds no values.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A new context: `base` with this context's values on top.
    #[must_use]
    pub fn merged_over(&self, base: &Context) -> Context {
        let mut merged = base.clone();
        for (key, value) in &self.values {
            merged.values.insert(key.clone(), value.clone());
        }
        merged
    }

    /// Iterates over the values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(key, value)| (key.as_str(), value))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Context {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Context {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_time_values_win_over_static_values() {
        let base: Context = [("scope", "default"), ("tier", "free")]
            .into_iter()
            .collect();
        let merged = Context::new().with("scope", "search").merged_over(&base);
        assert_eq!(merged.get_str("scope"), Some("search"));
        assert_eq!(merged.get_str("tier"), Some("free"));
        assert_eq!(merged.iter().count(), 2);
    }

    #[test]
    fn non_string_values_are_not_strings() {
        let context = Context::new().with("priority", 3);
        assert_eq!(context.get_str("priority"), None);
        assert_eq!(context.get("priority").and_then(Value::as_u64), Some(3));
        assert!(!context.is_empty());
    }
}
