//! Throttles declared in code ([`throttle_policy!`](crate::throttle_policy) and
//! [`#[throttled]`](macro@crate::throttled) rates) and [`build_declared_throttles`], which builds
//! them all at start-up.

use std::fmt;

use traffik_core::ConfigError;

use crate::HttpThrottle;

/// A throttle declared in code, built on first use or by [`build_declared_throttles`]. The
/// declaring macros create these; there is no reason to write one by hand.
#[doc(hidden)]
#[derive(Debug)]
pub struct Declaration {
    name: &'static str,
    build: fn() -> Result<&'static HttpThrottle, &'static ConfigError>,
}

impl Declaration {
    /// A declaration named `name` (the policy's path, or the handler's and the limit's).
    pub const fn new(
        name: &'static str,
        build: fn() -> Result<&'static HttpThrottle, &'static ConfigError>,
    ) -> Self {
        Declaration { name, build }
    }
}

inventory::collect!(Declaration);

/// A declared throttle that could not be built.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DeclarationError {
    /// Where it is declared: the policy type's path (`my_app::limits::Burst`), or the handler's
    /// path and the limit's index (`my_app::routes::search[1]`).
    pub declaration: &'static str,
    /// Why it could not be built.
    pub error: &'static ConfigError,
}

impl fmt::Display for DeclarationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.declaration, self.error)
    }
}

/// Every declared throttle that could not be built, from [`build_declared_throttles`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub struct DeclarationErrors {
    /// One entry per throttle that could not be built, in declaration-name order.
    pub errors: Vec<DeclarationError>,
}

impl fmt::Display for DeclarationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} declared throttle(s) could not be built:",
            self.errors.len()
        )?;
        for error in &self.errors {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

/// Builds every throttle declared in the program with
/// [`throttle_policy!`](crate::throttle_policy) or a [`#[throttled]`](macro@crate::throttled)
/// rate, now, and returns how many there are, or **every** configuration error at once (a
/// duplicate uid, an invalid uid, a strategy that cannot work at its rate, …).
///
/// Declared throttles are otherwise built on first use, so a mistake would surface as a `500`
/// on the first request that meets it. Call this once at start-up, after setting the default
/// backend, and stop if it fails. Calling it again is cheap (each throttle is built once).
///
/// ```standalone_crate
/// use traffik_axum::{HttpThrottle, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// throttle_policy! {
///     pub Search = HttpThrottle::builder("doc-declared-search", "10/min").backend(MemoryBackend::new()).build();
///     pub SearchAgain = HttpThrottle::builder("doc-declared-search", "20/min").backend(MemoryBackend::new()).build();
/// }
///
/// let errors = traffik_axum::build_declared_throttles().unwrap_err();
/// assert_eq!(errors.errors.len(), 1);
/// assert!(errors.to_string().contains("must be unique"), "{errors}");
/// ```
pub fn build_declared_throttles() -> Result<usize, DeclarationErrors> {
    let mut declarations: Vec<&Declaration> = inventory::iter::<Declaration>.into_iter().collect();
    declarations.sort_by_key(|declaration| declaration.name);
    let mut errors = Vec::new();
    for declaration in &declarations {
        if let Err(error) = (declaration.build)() {
            tracing::error!(target: "traffik", declaration = declaration.name, %error, "a declared throttle cannot be built");
            errors.push(DeclarationError {
                declaration: declaration.name,
                error,
            });
        }
    }
    if errors.is_empty() {
        Ok(declarations.len())
    } else {
        Err(DeclarationErrors { errors })
    }
}
