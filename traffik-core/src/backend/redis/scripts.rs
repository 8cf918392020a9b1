//! The Lua scripts, loaded once per process and run by SHA (`EVALSHA`, reloaded on `NOSCRIPT`).
//!
//! Each decision script is the shared prelude (`lua/prelude.lua`: clock, state decoding, save)
//! followed by one strategy's transition, mirroring its Rust `apply`.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use crate::strategy::native::Native;

macro_rules! decision_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                include_str!(concat!("lua/", $file))
            ))
        })
    };
}

static FIXED_WINDOW: LazyLock<Script> = decision_script!("fixed_window.lua");
static SLIDING_WINDOW_COUNTER: LazyLock<Script> = decision_script!("sliding_window_counter.lua");
static SLIDING_WINDOW_LOG: LazyLock<Script> = decision_script!("sliding_window_log.lua");
static TOKEN_BUCKET: LazyLock<Script> = decision_script!("token_bucket.lua");
static LEAKY_BUCKET: LazyLock<Script> = decision_script!("leaky_bucket.lua");
static LEAKY_BUCKET_QUEUE: LazyLock<Script> = decision_script!("leaky_bucket_queue.lua");
static GCRA: LazyLock<Script> = decision_script!("gcra.lua");
static ADAPTIVE: LazyLock<Script> = decision_script!("adaptive.lua");

/// Reads a key and the clock (read-only: `stat`, `check`).
pub(super) static READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/read.lua")));
/// `INCRBY` setting the ttl when it creates the key.
pub(super) static INCREMENT_WITH_TTL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/increment_with_ttl.lua")));
/// Deletes a lock only while it still holds the owner's token.
pub(super) static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unlock.lua")));

/// The `now` argument: the caller's time, or empty for Redis `TIME`.
pub(super) fn now_arg(now: Option<u64>) -> String {
    now.map_or_else(String::new, |now| now.to_string())
}

/// The invocation of `native`'s script on `key`.
pub(super) fn decision(
    native: &Native,
    key: &str,
    now: Option<u64>,
    cost: u64,
    version: u32,
) -> ScriptInvocation<'static> {
    let script: &'static Script = match native {
        Native::FixedWindow { .. } => &FIXED_WINDOW,
        Native::SlidingWindowCounter { .. } => &SLIDING_WINDOW_COUNTER,
        Native::SlidingWindowLog { .. } => &SLIDING_WINDOW_LOG,
        Native::TokenBucket { .. } => &TOKEN_BUCKET,
        Native::LeakyBucket { .. } => &LEAKY_BUCKET,
        Native::LeakyBucketQueue { .. } => &LEAKY_BUCKET_QUEUE,
        Native::Gcra { .. } => &GCRA,
        Native::Adaptive { .. } => &ADAPTIVE,
    };
    let mut invocation = script.key(key);
    invocation.arg(now_arg(now)).arg(cost).arg(version);
    match *native {
        Native::FixedWindow { period, limit } | Native::SlidingWindowCounter { period, limit } => {
            invocation.arg(period).arg(limit);
        }
        Native::SlidingWindowLog {
            period,
            limit,
            grid,
        } => {
            invocation.arg(period).arg(limit).arg(grid);
        }
        Native::TokenBucket {
            per_unit,
            per_ms,
            capacity,
            max_debt,
        } => {
            invocation
                .arg(per_unit)
                .arg(per_ms)
                .arg(capacity)
                .arg(max_debt);
        }
        Native::LeakyBucket {
            per_unit,
            per_ms,
            capacity,
        }
        | Native::LeakyBucketQueue {
            per_unit,
            per_ms,
            capacity,
        } => {
            invocation.arg(per_unit).arg(per_ms).arg(capacity);
        }
        Native::Gcra {
            per_unit,
            per_ms,
            tau,
        } => {
            invocation.arg(per_unit).arg(per_ms).arg(tau);
        }
        Native::Adaptive {
            period,
            limit,
            floor,
            step,
            threshold,
            reduction,
            unsettled_windows,
        } => {
            // `{}` on f64 is the shortest text that parses back to the same double, which is
            // what Lua's `tonumber` reads.
            invocation
                .arg(period)
                .arg(limit)
                .arg(floor)
                .arg(step)
                .arg(threshold.to_string())
                .arg(reduction.to_string())
                .arg(unsettled_windows);
        }
    }
    invocation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_distinct_sha() {
        let mut hashes: Vec<&str> = [
            &FIXED_WINDOW,
            &SLIDING_WINDOW_COUNTER,
            &SLIDING_WINDOW_LOG,
            &TOKEN_BUCKET,
            &LEAKY_BUCKET,
            &LEAKY_BUCKET_QUEUE,
            &GCRA,
            &ADAPTIVE,
            &READ,
            &INCREMENT_WITH_TTL,
            &UNLOCK,
        ]
        .iter()
        .map(|script| script.get_hash())
        .collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 11);
    }

    #[test]
    fn the_read_script_is_flagged_read_only() {
        assert!(include_str!("lua/read.lua").starts_with("#!lua flags=no-writes\n"));
    }
}
