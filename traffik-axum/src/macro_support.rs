//! What `#[throttled(...)]` expansions call (reached as `traffik_axum::__private`; not a public
//! API). Turns the attribute's `key`, `cost`, `backend` and reused-throttle values into the
//! builder's types, whichever shape the user wrote.

use std::future::Future;

use http::request::Parts;
use traffik_core::throttle::{CostFn, Identifier};
use traffik_core::{Context, Identity};

pub use std::sync::LazyLock;
pub use traffik_core::backend::IntoBackend;
pub use traffik_core::headers::Headers;
pub use traffik_core::{ConfigError, OnError, Rate};

pub use crate::{HttpThrottle, Scope, ThrottlePolicy, Throttled, ThrottledAll};

/// The default uid of a handler's throttle: its module path with `.` for `::`, then the
/// function's name, then the limit's index when the attribute has several. Longer than the
/// 64 bytes a uid may hold, it keeps its end and gains a hash of the whole, so it stays unique
/// and stable.
pub fn handler_uid(module: &str, function: &str, index: Option<usize>) -> String {
    let mut uid = module.replace("::", ".");
    uid.push('.');
    uid.push_str(function);
    if let Some(index) = index {
        uid.push('.');
        uid.push_str(&index.to_string());
    }
    const MAX: usize = traffik_core::key::MAX_NAME_LEN;
    // What a uid may hold (`traffik_core::key::validate_uid`); Rust identifiers may be
    // non-ASCII.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':');
    if uid.len() <= MAX && uid.chars().all(allowed) {
        return uid;
    }
    // FNV-1a of the full path: stable across builds and platforms (unlike `DefaultHasher`),
    // so two paths that read alike once cut or sanitized still get distinct uids.
    let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("-{hash:016x}");
    let sanitized: String = uid
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    // ASCII now, so any cut is a character boundary.
    let keep = (MAX - suffix.len()).min(sanitized.len());
    let tail = &sanitized[sanitized.len() - keep..];
    format!("{}{suffix}", tail.trim_start_matches('.'))
}

/// A static throttle named in `#[throttled(BURST)]`.
pub trait StaticThrottle {
    /// The throttle, or why it could not be built.
    fn get(&self) -> Result<&HttpThrottle, &ConfigError>;
}

impl StaticThrottle for HttpThrottle {
    fn get(&self) -> Result<&HttpThrottle, &ConfigError> {
        Ok(self)
    }
}

impl StaticThrottle for Result<HttpThrottle, ConfigError> {
    fn get(&self) -> Result<&HttpThrottle, &ConfigError> {
        self.as_ref()
    }
}

/// Marks a synchronous function.
#[derive(Debug)]
pub enum Sync {}
/// Marks an asynchronous function.
#[derive(Debug)]
pub enum Async {}
/// Marks a value that already has the builder's type.
#[derive(Debug)]
pub enum Ready {}

/// The future of an async key function (`async fn(&Parts) -> Identity<'_>`), which borrows the
/// request.
pub trait KeyFuture<'a> {
    /// The function's future.
    type Future: Future<Output = Identity<'a>> + Send + 'a;
    /// Calls the function.
    fn call(&self, parts: &'a Parts) -> Self::Future;
}

impl<'a, F, Fut> KeyFuture<'a> for F
where
    F: Fn(&'a Parts) -> Fut,
    Fut: Future<Output = Identity<'a>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, parts: &'a Parts) -> Fut {
        self(parts)
    }
}

/// The `key = ...` of the attribute: a function of the request parts (sync or async) returning
/// an [`Identity`], or an [`Identifier`].
pub trait IntoKey<M> {
    /// The identifier.
    fn into_identifier(self) -> Identifier<Parts>;
}

impl<F> IntoKey<Sync> for F
where
    F: for<'a> Fn(&'a Parts) -> Identity<'a> + Send + std::marker::Sync + 'static,
{
    fn into_identifier(self) -> Identifier<Parts> {
        Identifier::new(self)
    }
}

impl<F> IntoKey<Async> for F
where
    F: for<'a> KeyFuture<'a> + Send + std::marker::Sync + 'static,
{
    fn into_identifier(self) -> Identifier<Parts> {
        Identifier::from_async(move |parts| Box::pin(self.call(parts)))
    }
}

impl IntoKey<Ready> for Identifier<Parts> {
    fn into_identifier(self) -> Identifier<Parts> {
        self
    }
}

/// `key = ...`.
pub fn key<M>(key: impl IntoKey<M>) -> Identifier<Parts> {
    key.into_identifier()
}

/// The future of an async cost function (`async fn(&Parts) -> u64`).
pub trait CostFuture<'a> {
    /// The function's future.
    type Future: Future<Output = u64> + Send + 'a;
    /// Calls the function.
    fn call(&self, parts: &'a Parts) -> Self::Future;
}

impl<'a, F, Fut> CostFuture<'a> for F
where
    F: Fn(&'a Parts) -> Fut,
    Fut: Future<Output = u64> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, parts: &'a Parts) -> Fut {
        self(parts)
    }
}

/// The `cost = ...` of the attribute when it is not a number: a function of the request parts
/// (sync or async) returning the cost, or a [`CostFn`].
pub trait IntoCost<M> {
    /// The cost function.
    fn into_cost_fn(self) -> CostFn<Parts>;
}

impl<F> IntoCost<Sync> for F
where
    F: Fn(&Parts) -> u64 + Send + std::marker::Sync + 'static,
{
    fn into_cost_fn(self) -> CostFn<Parts> {
        CostFn::new(move |parts: &Parts, _: &Context| self(parts))
    }
}

impl<F> IntoCost<Async> for F
where
    F: for<'a> CostFuture<'a> + Send + std::marker::Sync + 'static,
{
    fn into_cost_fn(self) -> CostFn<Parts> {
        CostFn::from_async(move |parts: &Parts, _: &Context| Box::pin(self.call(parts)))
    }
}

impl IntoCost<Ready> for CostFn<Parts> {
    fn into_cost_fn(self) -> CostFn<Parts> {
        self
    }
}

/// `cost = ...`.
pub fn cost<M>(cost: impl IntoCost<M>) -> CostFn<Parts> {
    cost.into_cost_fn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_uids_follow_the_module_path_and_stay_bounded() {
        assert_eq!(handler_uid("app::routes", "list", None), "app.routes.list");
        assert_eq!(handler_uid("app", "search", Some(1)), "app.search.1");
        let long_module = "a_very_long_crate_name::with::deeply::nested::modules::of_handlers";
        let one = handler_uid(long_module, "list_items", None);
        let two = handler_uid(long_module, "list_users", None);
        assert!(one.len() <= 64 && two.len() <= 64, "{one} {two}");
        assert_ne!(one, two);
        assert_eq!(one, handler_uid(long_module, "list_items", None));
        assert!(traffik_core::key::validate_uid(&one).is_ok(), "{one}");
        // Non-ASCII identifiers give valid uids (no panic cutting inside a character).
        for pad in 0..8 {
            let module = format!("{}::ñandú::über::émigré::naïve::façade", "m".repeat(pad));
            let uid = handler_uid(&module, "größe_prüfen_und_zählen", None);
            assert!(traffik_core::key::validate_uid(&uid).is_ok(), "{uid}");
        }
        let short = handler_uid("app", "prüfen", None);
        assert!(traffik_core::key::validate_uid(&short).is_ok(), "{short}");
        assert_ne!(short, handler_uid("app", "prüfan", None));
    }
}
