//! The engine of traffik: rates, strategies, backends and the throttle, with no web framework
//! attached. Most users reach it through `traffik-axum`, which re-exports it.
//!
//! ```
//! use traffik_core::{MemoryBackend, Throttle};
//! use traffik_core::strategy::TokenBucket;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let throttle = Throttle::builder("api", "5/10s")
//!     .strategy(TokenBucket::new())
//!     .backend(MemoryBackend::new())
//!     .build()?;
//!
//! for _ in 0..5 {
//!     assert!(throttle.hit("client-1").await?.is_allowed());
//! }
//! let sixth = throttle.hit("client-1").await?;
//! assert!(sixth.is_throttled());
//! assert_eq!(sixth.retry_after_secs(), Some(2)); // one token every 2 s
//! assert!(throttle.hit("client-2").await?.is_allowed()); // every client has its own budget
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `memory` | yes | [`MemoryBackend`]: the in-process backend on a sharded `hashbrown` map, with a tokio sweeper |
//! | `redis` | no | `RedisBackend`: single node, Redis Cluster or Redis Sentinel (or the application's own client or connection), one Lua script per decision |
//! | `redis-tls` | no | `rediss://` URLs for the Redis backend (rustls) |
//! | `redis-deadpool` | no | `RedisBackend::from_pool`: the Redis backend on the application's own `deadpool-redis` pool |
//! | `memcached` | no | `MemcachedBackend`: one or more memcached servers on a consistent hash, every strategy by compare-and-swap |
//! | `resilience` | yes | backend wrappers for failures: `backend::Retry` (backoff and jitter), `CircuitBreaker`, `Fallback`, `failover` |
//!
//! Without features the crate still holds [`Rate`] and its parser, every strategy, the
//! [`Throttle`] engine and the [`Backend`](backend::Backend) and
//! [`KeyValueStore`](backend::KeyValueStore) contracts.
//!
//! # Where things are
//!
//! - [`Rate`]: `"100/min"`, `"5/10s"`, `"20 per 2 mins"`, `Rate::per_second(10)`.
//! - [`strategy`]: every algorithm as a pure state transition, and the [`Strategy`](strategy::Strategy) trait for your own.
//! - [`backend`]: where state lives, the in-memory backend, the key-value contract for custom stores.
//! - [`Throttle`]: uid + rate + strategy + backend + cost + identifier + on-error policy: `hit`, `check`, `stat`.
//! - [`Decision`]: allowed or throttled, with `wait`, `remaining`, `limit`, `reset`.

pub mod backend;
mod clock;
mod context;
mod decision;
mod error;
pub mod headers;
mod identity;
pub mod key;
mod maybe_ready;
pub mod on_error;
mod rate;
mod registry;
pub mod rule;
mod stat;
pub mod strategy;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod throttle;

#[cfg(feature = "memcached")]
pub use backend::memcached::{MemcachedBackend, MemcachedBackendBuilder};
#[cfg(feature = "memory")]
pub use backend::memory::{MemoryBackend, MemoryBackendBuilder};
#[cfg(feature = "redis")]
pub use backend::redis::RedisBackend;
pub use clock::{Clock, ManualClock, Millis, SystemClock};
pub use context::Context;
pub use decision::{Decision, Outcome, SkipReason};
pub use error::{ConfigError, ThrottleError};
pub use identity::{EXEMPTED, Identity};
pub use maybe_ready::{BoxFuture, MaybeReady};
pub use on_error::OnError;
pub use rate::{InvalidRate, ParseRateError, Rate};
pub use registry::ThrottleRegistry;
pub use stat::{StatMetadata, StrategyStat};
pub use throttle::Throttle;

/// The README's and the guide's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
struct GuideDoctests;

/// The resilience chapter's code blocks, compiled and run as doc tests.
#[cfg(all(doctest, feature = "resilience", feature = "memory"))]
#[doc = include_str!("../../docs/resilience.md")]
struct ResilienceDoctests;
