//! [`ThrottlePolicy`]: what a [`Throttled<T>`](crate::Throttled) type parameter names, and the
//! [`throttle_policy!`](crate::throttle_policy) macro that declares one.

use traffik_core::ConfigError;

use crate::HttpThrottle;

/// Names the throttle a [`Throttled<T>`](crate::Throttled) argument enforces.
///
/// Two shapes:
/// - a **static** policy, declared with [`throttle_policy!`](crate::throttle_policy): the
///   throttle is built on first use and lives for the program;
/// - a policy that reads the throttle from the router's **state**: implement the trait for
///   your state type.
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::{HttpThrottle, ThrottlePolicy, Throttled};
/// use traffik_axum::prelude::*;
///
/// #[derive(Clone)]
/// struct AppState { search: HttpThrottle }
///
/// struct Search;
/// impl ThrottlePolicy<AppState> for Search {
///     fn throttle(state: &AppState) -> Result<&HttpThrottle, &ConfigError> {
///         Ok(&state.search)
///     }
/// }
///
/// async fn search(_: Throttled<Search>) -> &'static str { "results" }
///
/// let state = AppState {
///     search: HttpThrottle::builder("doc-policy-search", "20/min").backend(MemoryBackend::new()).build()?,
/// };
/// let app: Router = Router::new().route("/search", get(search)).with_state(state);
/// # Ok::<(), ConfigError>(())
/// ```
pub trait ThrottlePolicy<S>: Send + Sync + 'static {
    /// The throttle, or the error that kept a static policy's throttle from being built.
    fn throttle(state: &S) -> Result<&HttpThrottle, &ConfigError>;
}

/// Declares static throttle policies: marker types for [`Throttled<T>`](crate::Throttled),
/// each tied to a throttle built (once, on first use) by the expression after `=`. The policy
/// works with any router state.
///
/// A throttle that cannot be built (a duplicate uid, say) does not panic: every request it
/// guards is answered `500` with the error, which is logged once at ERROR when the build fails
/// (and each refused request at TRACE, under `traffik::rejection`). Call
/// [`build_declared_throttles`](crate::build_declared_throttles) at start-up to build every
/// declared throttle at once and stop on any such error before serving.
///
/// ```
/// use axum::{Router, routing::get};
/// use traffik_axum::{HttpThrottle, Throttled, throttle_policy};
/// use traffik_axum::prelude::*;
///
/// throttle_policy! {
///     /// Short bursts: two a second.
///     pub Burst = HttpThrottle::builder("doc-burst", "2/s").backend(MemoryBackend::new()).build();
///     /// The sustained limit.
///     pub Sustained = HttpThrottle::builder("doc-sustained", "20/min").backend(MemoryBackend::new()).build();
/// }
///
/// // Both limits apply: the burst and the sustained one.
/// async fn search(_: Throttled<Burst>, _: Throttled<Sustained>) -> &'static str { "results" }
///
/// let app: Router = Router::new().route("/search", get(search));
/// ```
#[macro_export]
macro_rules! throttle_policy {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $build:expr;)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;

        const _: () = {
            fn build() -> ::core::result::Result<
                &'static $crate::HttpThrottle,
                &'static $crate::prelude::ConfigError,
            > {
                static THROTTLE: ::std::sync::LazyLock<
                    ::core::result::Result<$crate::HttpThrottle, $crate::prelude::ConfigError>,
                > = ::std::sync::LazyLock::new(|| {
                    $crate::__private::built(
                        ::core::concat!(::core::module_path!(), "::", ::core::stringify!($name)),
                        $build,
                    )
                });
                THROTTLE.as_ref()
            }

            $crate::__private::inventory::submit! {
                $crate::__private::Declaration::new(
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!($name)),
                    build,
                )
            }

            impl<S> $crate::ThrottlePolicy<S> for $name {
                fn throttle(_: &S) -> ::core::result::Result<&$crate::HttpThrottle, &$crate::prelude::ConfigError> {
                    build()
                }
            }
        };
    )+};
}

/// Names several throttles decided as one by a [`ThrottledAll<T>`](crate::ThrottledAll): a
/// tuple of [`ThrottlePolicy`] types, `(A, B)` up to eight.
pub trait ThrottlePolicies<S>: Send + Sync + 'static {
    /// The throttles, in order, or the first error that kept a static policy's throttle from
    /// being built.
    fn throttles(state: &S) -> Result<Vec<&HttpThrottle>, &ConfigError>;
}

macro_rules! policies_for_tuples {
    ($(($($policy:ident),+))+) => {$(
        impl<S, $($policy: ThrottlePolicy<S>),+> ThrottlePolicies<S> for ($($policy,)+) {
            fn throttles(state: &S) -> Result<Vec<&HttpThrottle>, &ConfigError> {
                Ok(vec![$($policy::throttle(state)?),+])
            }
        }
    )+};
}

policies_for_tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}
