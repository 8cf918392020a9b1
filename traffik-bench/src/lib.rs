//! traffik-bench: whole servers measured side by side over loopback.
//!
//! The harness starts each target (bare axum, traffik's extractor and layer, `tower_governor`,
//! the Python library Traffik on `FastAPI` + uvicorn, and WebSocket echo servers) as its own
//! process on a loopback port, drives it with a keep-alive client through each scenario, and
//! reports throughput, latency percentiles, server CPU time per request and whether the
//! limiter admitted exactly what it should. See `docs/benchmarks.md` for results and the
//! command that produced them.
//!
//! The library half is what the binary and the harness's own tests share: [`server`] builds
//! the Rust targets, [`load`] drives a server through a [`Scenario`], [`report`] renders
//! results.

#![deny(missing_docs)]

pub mod cli;
pub mod error;
pub mod install;
pub mod load;
pub mod machine;
pub mod measure;
pub mod process;
pub mod python;
pub mod report;
pub mod run;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod target;

pub use error::BenchError;
pub use scenario::Scenario;
pub use target::Target;
