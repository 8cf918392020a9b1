//! Refunds after the handler: [`RefundPolicy`] (which responses return the request's charges,
//! and whether a cancelled request does), applied by [`RefundLayer`] or
//! [`ThrottleLayer::refund`](crate::ThrottleLayer::refund).
//!
//! Every entry point inside the layer (its own throttles, `Throttled<T>`, `ThrottledAll`,
//! `#[throttled]`) records what it charged in the request's [`RefundSlot`]. When the response
//! matches the policy (a 5xx, say: the client should not pay for the server's failure), every
//! recorded charge is returned before the response leaves the layer; when the request is
//! cancelled before its response (the client went away, a timeout dropped the handler's
//! future), the charges are returned on a spawned task. A refund that fails is logged at WARN
//! and the units stay consumed, as for every refund.

mod layer;
mod policy;
mod slot;

pub(crate) use layer::refunding;
pub use layer::{RefundLayer, RefundService};
pub use policy::RefundPolicy;
pub(crate) use slot::RefundSlot;
