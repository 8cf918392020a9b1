//! The response futures of traffik's tower middleware, as tower and tower-http keep theirs in
//! a `future` module.

pub use crate::headers_layer::RateLimitHeadersFuture;
pub use crate::layer::future::ResponseFuture;
