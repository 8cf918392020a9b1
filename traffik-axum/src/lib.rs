//! Rate limiting for [Axum](https://docs.rs/axum), on the [`traffik_core`] engine: every
//! strategy, every backend, exact decisions.
//!
//! | entry point | use it for |
//! |---|---|
//! | [`#[throttled("100/min")]`](macro@throttled) | a limit on a handler, written on it; rates checked at compile time |
//! | [`Throttled<T>`] extractor | a limit on a handler |
//! | [`ThrottledAll<(A, B)>`](ThrottledAll) extractor | several limits on a handler decided as one: all charged, or none |
//! | [`ThrottleLayer`] | a limit on a router or route; many throttles with path/method/predicate [`ThrottleRule`]s |
//! | [`HttpThrottle::enforce`] | inside a handler, with a per-call cost (`?` answers the 429) |
//! | [`HttpThrottle::check_request`] / [`stat_request`](HttpThrottle::stat_request) | look without consuming |
//!
//! Clients are identified by [`ClientIp`] (the TCP peer; behind proxies, the one
//! [`ProxyHeader`] they write, believed only from [`TrustedProxies`]; IPv6 by `/64`), or by
//! any [`Identifier`](traffik_core::throttle::Identifier) over the request's
//! [`Parts`](http::request::Parts) (an API-key header, an extension; return
//! [`EXEMPTED`](traffik_core::EXEMPTED) to skip). Refusals are `429 Too Many Requests` with
//! `Retry-After`, the throttle's [`Headers`](traffik_core::headers::Headers), or the response of
//! its [`ThrottledHandler`].
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `memory` | yes | the in-memory backend ([`MemoryBackend`](traffik_core::MemoryBackend)) |
//! | `redis` | no | the Redis backend, single node and cluster (`traffik_core::RedisBackend`) |
//! | `redis-tls` | no | `rediss://` URLs for the Redis backend |
//! | `redis-deadpool` | no | `RedisBackend::from_pool`, on the application's `deadpool-redis` pool |
//! | `memcached` | no | the Memcached backend, one or more servers (`traffik_core::MemcachedBackend`) |
//! | `resilience` | yes | backend wrappers for failures (`Retry`, `CircuitBreaker`, `Fallback`, `failover`, in the prelude) |
//! | `macros` | yes | the [`throttled`](macro@throttled) attribute |
//! | `ws` | no | WebSocket throttling: the handshake and every message (`traffik_axum::ws`) |
//! | `regex` | no | regular-expression path patterns (`PathPattern::regex`) |
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get};
//! use traffik_axum::{HttpThrottle, ThrottleLayer, Throttled, throttle_policy};
//! use traffik_axum::prelude::*;
//!
//! throttle_policy! {
//!     /// Five requests per ten seconds per client and route.
//!     pub PerClient = HttpThrottle::builder("crate-doc-per-client", "5/10s")
//!         .backend(MemoryBackend::new())
//!         .headers(Headers::always())
//!         .build();
//! }
//!
//! async fn index(_: Throttled<PerClient>) -> &'static str { "hello" }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let everything = HttpThrottle::builder("crate-doc-global", "1000/min")
//!     .backend(MemoryBackend::new())
//!     .build()?;
//! let app = Router::new()
//!     .route("/", get(index))
//!     .layer(ThrottleLayer::new(everything));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! // The peer address is the default identity: serve with connect info.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod backend;
mod call;
mod canonical_path;
mod charges;
mod client_ip;
mod declared;
mod enforce;
mod extract;
pub mod future;
mod handler;
mod headers_layer;
pub mod identify;
mod layer;
mod macro_support;
mod path_pattern;
mod policy;
mod refund;
mod rejection;
mod request_identities;
mod request_match;
mod rule;
mod scope;
mod throttle;
mod throttled_all;
#[cfg(feature = "ws")]
pub mod ws;

pub use backend::RequestBackend;
pub use client_ip::{
    ClientIp, DEFAULT_IPV6_PREFIX, InvalidProxyNetwork, ProxyHeader, TrustedProxies, UNKNOWN_PEER,
};
pub use declared::{DeclarationError, DeclarationErrors, build_declared_throttles};
pub use enforce::Enforce;
pub use extract::Throttled;
pub use handler::ThrottledHandler;
pub use headers_layer::{RateLimitHeadersLayer, RateLimitHeadersService};
pub use layer::{ThrottleLayer, ThrottleService};
pub use path_pattern::PathPattern;
pub use policy::{ThrottlePolicies, ThrottlePolicy};
pub use refund::{RefundLayer, RefundPolicy, RefundService};
pub use rejection::{
    BackendUnavailable, Misconfigured, NoBackend, ThrottleRejection, TooManyRequests,
};
pub use request_match::RequestMatch;
pub use rule::ThrottleRule;
pub use scope::{EntryPoint, Scope};
pub use throttle::{HttpThrottle, HttpThrottleBuilder, HttpThrottleBuilderExt};
pub use throttled_all::ThrottledAll;
pub use traffik_core;
#[cfg(feature = "macros")]
pub use traffik_macros::throttled;

#[doc(hidden)]
pub mod __private {
    pub use crate::HttpThrottleBuilderExt;
    pub use crate::declared::Declaration;
    pub use crate::macro_support::*;
    pub use inventory;

    /// Logs, once, that a declared throttle could not be built (each request it guards is then
    /// answered `500`, logged only at TRACE under `traffik::rejection`).
    pub fn built<T>(name: &str, built: Result<T, ConfigError>) -> Result<T, ConfigError> {
        if let Err(error) = &built {
            tracing::error!(target: "traffik", policy = name, %error, "a throttle policy cannot be built; every request it guards is answered 500");
        }
        built
    }
}

/// What most applications need, in one import.
pub mod prelude {
    #[cfg(feature = "memcached")]
    pub use traffik_core::MemcachedBackend;
    pub use traffik_core::backend::Backend;
    #[cfg(feature = "resilience")]
    pub use traffik_core::backend::{CircuitBreaker, Fallback, Retry, failover};
    pub use traffik_core::headers::{Header, Headers, When};
    pub use traffik_core::rule::Rule;
    pub use traffik_core::strategy::{
        FixedWindow, Gcra, LeakyBucket, LeakyBucketWithQueue, SlidingWindowCounter,
        SlidingWindowLog, TokenBucket, TokenBucketWithDebt,
    };
    pub use traffik_core::throttle::{CostFn, HitOptions, Identifier, OnError, RateFn};
    pub use traffik_core::{
        Clock, ConfigError, Context, Decision, EXEMPTED, Identity, ManualClock, Rate, StrategyStat,
        SystemClock, Throttle, ThrottleError, ThrottleRegistry,
    };
    #[cfg(feature = "memory")]
    pub use traffik_core::{MemoryBackend, MemoryBackendBuilder};
    #[cfg(feature = "redis")]
    pub use traffik_core::{RedisBackend, backend::redis::TimeSource};

    pub use crate::{
        ClientIp, HttpThrottle, HttpThrottleBuilderExt as _, ProxyHeader, RateLimitHeadersLayer,
        RequestBackend, RequestMatch, Scope, ThrottleLayer, ThrottleRejection, ThrottleRule,
        Throttled, ThrottledAll, ThrottledHandler, TrustedProxies,
    };
}

#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../../docs/redis.md")]
struct RedisGuideDoctests;

#[cfg(all(doctest, feature = "memcached"))]
#[doc = include_str!("../../docs/memcached.md")]
struct MemcachedGuideDoctests;

#[cfg(all(doctest, feature = "ws"))]
#[doc = include_str!("../../docs/websocket.md")]
struct WebSocketGuideDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
#[doc = include_str!("../../docs/http.md")]
struct GuideDoctests;
