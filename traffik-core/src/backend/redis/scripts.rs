//! The Lua scripts, loaded once per process and run by SHA (`EVALSHA`, reloaded on `NOSCRIPT`).
//!
//! A decision script is `lua/clock.lua` (`now`), `lua/deadline.lua` (the caller's deadline), the
//! shared functions it calls (`lua/integer/…`, `lua/state/…`), one strategy's transition as a
//! function of the key's stored text (mirroring its Rust `apply`), then `lua/single.lua` (read,
//! decide, store, reply). A refund script is the clock, the deadline, the functions it calls,
//! `lua/refund.lua` and one strategy's `lua/refund/…`, mirroring its Rust `refund`. The
//! multi-limit script runs every transition under `lua/multi.lua`: all or nothing.
//!
//! Only the functions a script calls are in it: every function a script defines is a closure
//! made on each run, which costs Redis CPU on every decision.

use std::fmt::Write;
use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};

use crate::strategy::native::Native;

/// Every strategy's transition: its name in the multi-limit script, and its text.
const TRANSITIONS: [(&str, &str); 10] = [
    ("fixed_window", include_str!("lua/fixed_window.lua")),
    (
        "sliding_window_counter",
        include_str!("lua/sliding_window_counter.lua"),
    ),
    (
        "sliding_window_log",
        include_str!("lua/sliding_window_log.lua"),
    ),
    ("token_bucket", include_str!("lua/token_bucket.lua")),
    ("leaky_bucket", include_str!("lua/leaky_bucket.lua")),
    (
        "leaky_bucket_queue",
        include_str!("lua/leaky_bucket_queue.lua"),
    ),
    ("gcra", include_str!("lua/gcra.lua")),
    ("adaptive", include_str!("lua/adaptive.lua")),
    ("quota_rollover", include_str!("lua/quota_rollover.lua")),
    ("cost_bucket", include_str!("lua/cost_bucket.lua")),
];

/// Every strategy's refund, in [`TRANSITIONS`] order.
const REFUNDS: [&str; 10] = [
    include_str!("lua/refund/fixed_window.lua"),
    include_str!("lua/refund/sliding_window_counter.lua"),
    include_str!("lua/refund/sliding_window_log.lua"),
    include_str!("lua/refund/token_bucket.lua"),
    include_str!("lua/refund/leaky_bucket.lua"),
    include_str!("lua/refund/leaky_bucket_queue.lua"),
    include_str!("lua/refund/gcra.lua"),
    include_str!("lua/refund/adaptive.lua"),
    include_str!("lua/refund/quota_rollover.lua"),
    include_str!("lua/refund/cost_bucket.lua"),
];

const CLOCK: &str = include_str!("lua/clock.lua");
const DEADLINE: &str = include_str!("lua/deadline.lua");
/// The functions scripts share, by name, each in its own file; a function comes after those it
/// calls. A script holds only those it calls ([`with_functions`]).
const FUNCTIONS: [(&str, &str); 8] = [
    ("idiv", include_str!("lua/integer/idiv.lua")),
    ("ceil_div", include_str!("lua/integer/ceil_div.lua")),
    ("int", include_str!("lua/integer/int.lua")),
    ("rescale", include_str!("lua/integer/rescale.lua")),
    ("ms_to_gain", include_str!("lua/integer/ms_to_gain.lua")),
    (
        "refill_factor",
        include_str!("lua/integer/refill_factor.lua"),
    ),
    ("decode", include_str!("lua/state/decode.lua")),
    ("store", include_str!("lua/state/store.lua")),
];

/// `head`, then the [`FUNCTIONS`] that `body` calls (and those they call, in their order
/// there), then `body`.
fn with_functions(head: &[&str], body: &str) -> String {
    let mut calling = body.to_owned();
    let mut included = [false; FUNCTIONS.len()];
    for (index, (name, text)) in FUNCTIONS.iter().enumerate().rev() {
        if calls(&calling, name) {
            included[index] = true;
            calling.push_str(text);
        }
    }
    let mut script = head.concat();
    for ((_, text), _) in FUNCTIONS.iter().zip(included).filter(|(_, used)| *used) {
        script.push_str(text);
    }
    script.push_str(body);
    script
}

/// Whether `text` calls the function `name` (`name(` not inside a longer name).
fn calls(text: &str, name: &str) -> bool {
    let call = format!("{name}(");
    text.match_indices(&call).any(|(at, _)| {
        !text[..at]
            .chars()
            .next_back()
            .is_some_and(|before| before.is_alphanumeric() || before == '_' || before == '.')
    })
}

/// One refund script per strategy, in [`TRANSITIONS`] order.
static REFUND: LazyLock<[Script; 10]> = LazyLock::new(|| {
    REFUNDS.map(|refund| {
        Script::new(&with_functions(
            &[CLOCK, DEADLINE],
            &[include_str!("lua/refund.lua"), refund].concat(),
        ))
    })
});

/// One script per strategy, in [`TRANSITIONS`] order.
static SINGLE: LazyLock<[Script; 10]> =
    LazyLock::new(|| TRANSITIONS.map(|(_, transition)| Script::new(&single_source(transition))));

fn single_source(transition: &str) -> String {
    with_functions(
        &[CLOCK, DEADLINE],
        &format!(
            "local function transition(stored, cost, ARGV)\n{transition}end\n{}",
            include_str!("lua/single.lua")
        ),
    )
}

/// Several limits as one: every transition as a function of its key's state.
static MULTI: LazyLock<Script> = LazyLock::new(|| Script::new(&multi_source()));

fn multi_source() -> String {
    let mut body = String::from("local run = {}\n");
    for (name, transition) in TRANSITIONS {
        let _ = write!(
            body,
            "run['{name}'] = function(stored, cost, ARGV)\n{transition}end\n"
        );
    }
    body.push_str(include_str!("lua/multi.lua"));
    with_functions(&[CLOCK, DEADLINE], &body)
}

/// Reads a key and the clock in one read-only call (`stat`, `check`): `{now, the state}`.
pub(super) static READ: LazyLock<Script> = LazyLock::new(|| Script::new(&read_source()));

fn read_source() -> String {
    [
        READ_ONLY,
        CLOCK,
        "return {now, redis.call('GET', KEYS[1])}\n",
    ]
    .concat()
}

/// The first line of a script that writes nothing, so Redis may run it on a replica and
/// during `OOM` (`#!lua flags=no-writes`).
const READ_ONLY: &str = "#!lua flags=no-writes\n";
/// `INCRBY` setting the ttl when it creates the key.
pub(super) static INCREMENT_WITH_TTL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/increment_with_ttl.lua")));
/// Puts back what the Rust transition leaves after a script disagreed with it, only while the
/// key still holds what the client read.
pub(super) static REPAIR: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/repair.lua")));
/// Deletes a lock only while it still holds the owner's token.
pub(super) static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unlock.lua")));

/// The `now` argument (ms), empty for none: `now` is then read from Redis `TIME`.
pub(super) fn now_arg(now: Option<u64>) -> String {
    now.map_or_else(String::new, |now| now.to_string())
}

/// The last argument of a script that writes (`lua/deadline.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deadline {
    /// Past this moment (ms, Redis's clock) the script changes nothing.
    At(u64),
    /// No deadline; every key written is kept this many ms past its state's meaning, for calls
    /// that run later than the `now` they carry.
    Keep(u64),
}

impl Deadline {
    fn arg(self) -> String {
        match self {
            Deadline::At(deadline) => deadline.to_string(),
            Deadline::Keep(ms) => format!("+{ms}"),
        }
    }
}

/// The position of `native`'s transition in [`TRANSITIONS`].
fn transition_of(native: &Native) -> usize {
    match native {
        Native::FixedWindow { .. } => 0,
        Native::SlidingWindowCounter { .. } => 1,
        Native::SlidingWindowLog { .. } => 2,
        Native::TokenBucket { .. } => 3,
        Native::LeakyBucket { .. } => 4,
        Native::LeakyBucketQueue { .. } => 5,
        Native::Gcra { .. } => 6,
        Native::Adaptive { .. } => 7,
        Native::QuotaWithRollover { .. } => 8,
        Native::CostBucket { .. } => 9,
    }
}

/// The transition's parameters (`ARGV[4…]`), in the order its script reads them.
fn parameters(native: &Native) -> Vec<String> {
    match *native {
        Native::FixedWindow { period, limit } | Native::SlidingWindowCounter { period, limit } => {
            vec![period.to_string(), limit.to_string()]
        }
        Native::SlidingWindowLog {
            period,
            limit,
            grid,
        } => vec![period.to_string(), limit.to_string(), grid.to_string()],
        Native::TokenBucket {
            per_unit,
            per_ms,
            capacity,
            max_debt,
        } => vec![
            per_unit.to_string(),
            per_ms.to_string(),
            capacity.to_string(),
            max_debt.to_string(),
        ],
        Native::LeakyBucket {
            per_unit,
            per_ms,
            capacity,
        }
        | Native::LeakyBucketQueue {
            per_unit,
            per_ms,
            capacity,
        } => vec![
            per_unit.to_string(),
            per_ms.to_string(),
            capacity.to_string(),
        ],
        Native::Gcra {
            per_unit,
            per_ms,
            tau,
        } => vec![per_unit.to_string(), per_ms.to_string(), tau.to_string()],
        Native::CostBucket {
            per_unit,
            per_ms,
            capacity,
            window,
            min_refill_ppm,
        } => vec![
            per_unit.to_string(),
            per_ms.to_string(),
            capacity.to_string(),
            window.to_string(),
            min_refill_ppm.to_string(),
        ],
        Native::QuotaWithRollover {
            period,
            limit,
            fraction_ppm,
            max_rollover,
        } => vec![
            period.to_string(),
            limit.to_string(),
            fraction_ppm.to_string(),
            max_rollover.to_string(),
        ],
        // `{}` on f64 is the shortest text that parses back to the same double, which is what
        // Lua's `tonumber` reads.
        Native::Adaptive {
            period,
            limit,
            floor,
            step,
            threshold,
            reduction,
            unsettled_windows,
        } => vec![
            period.to_string(),
            limit.to_string(),
            floor.to_string(),
            step.to_string(),
            threshold.to_string(),
            reduction.to_string(),
            unsettled_windows.to_string(),
        ],
    }
}

/// The invocation of `native`'s script on `key`, bounded by `deadline`.
pub(super) fn decision(
    native: &Native,
    key: &str,
    now: Option<u64>,
    cost: u64,
    version: u32,
    deadline: Deadline,
) -> ScriptInvocation<'static> {
    let mut invocation = SINGLE[transition_of(native)].key(key);
    invocation.arg(now_arg(now)).arg(cost).arg(version);
    for parameter in parameters(native) {
        invocation.arg(parameter);
    }
    invocation.arg(deadline.arg());
    invocation
}

/// When and how precisely a refunded charge was made: `elapsed` ms before the refund on the
/// caller's clock, the script's placing of it good to within `slack` ms.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChargeTime {
    pub(super) elapsed: u64,
    pub(super) slack: u64,
}

/// The invocation of `native`'s refund script on `key`: a charge of `cost` made at `charged`.
pub(super) fn refund(
    native: &Native,
    key: &str,
    now: Option<u64>,
    cost: u64,
    version: u32,
    charged: ChargeTime,
    deadline: Deadline,
) -> ScriptInvocation<'static> {
    let mut invocation = REFUND[transition_of(native)].key(key);
    invocation
        .arg(now_arg(now))
        .arg(cost)
        .arg(version)
        .arg(charged.elapsed)
        .arg(charged.slack);
    for parameter in parameters(native) {
        invocation.arg(parameter);
    }
    invocation.arg(deadline.arg());
    invocation
}

/// One limit of a multi-limit decision: its key, transition, cost and state version.
pub(super) struct Member<'a> {
    pub(super) key: &'a str,
    pub(super) native: Native,
    pub(super) cost: u64,
    pub(super) version: u32,
}

/// The invocation of the multi-limit script on `members` (distinct keys).
pub(super) fn decisions(
    members: &[Member<'_>],
    now: Option<u64>,
    deadline: Deadline,
) -> ScriptInvocation<'static> {
    let mut invocation = MULTI.prepare_invoke();
    invocation.arg(now_arg(now)).arg(members.len());
    for member in members {
        let parameters = parameters(&member.native);
        invocation
            .key(member.key)
            .arg(TRANSITIONS[transition_of(&member.native)].0)
            .arg(member.cost)
            .arg(member.version)
            .arg(parameters.len());
        for parameter in parameters {
            invocation.arg(parameter);
        }
    }
    invocation.arg(deadline.arg());
    invocation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_has_a_distinct_sha() {
        let mut hashes: Vec<&str> = SINGLE
            .iter()
            .chain([&*MULTI, &*READ, &*INCREMENT_WITH_TTL, &*UNLOCK])
            .map(Script::get_hash)
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), SINGLE.len() + 4);
    }

    /// The names of the shared functions a script defines (before its transition).
    fn functions_in(script: &str) -> Vec<&str> {
        let helpers = script
            .split("local function transition")
            .next()
            .unwrap_or(script);
        helpers
            .split("local function ")
            .skip(1)
            .filter_map(|rest| rest.split('(').next())
            .filter(|name| *name != "transition")
            .collect()
    }

    #[test]
    fn a_script_holds_only_the_functions_it_calls() {
        let gcra = single_source(TRANSITIONS[6].1);
        assert_eq!(functions_in(&gcra), ["idiv"]);
        let fixed_window = single_source(TRANSITIONS[0].1);
        assert_eq!(functions_in(&fixed_window), ["idiv"]);
        // `rescale` calls `ceil_div`, which calls `idiv`: both come first.
        let token_bucket = single_source(TRANSITIONS[3].1);
        assert_eq!(
            functions_in(&token_bucket),
            ["idiv", "ceil_div", "rescale", "ms_to_gain"]
        );
        let log = single_source(TRANSITIONS[2].1);
        assert_eq!(functions_in(&log), ["idiv", "ceil_div", "int", "decode"]);
        assert!(functions_in(&multi_source()).contains(&"store"));
        let refund = REFUNDS[3];
        let refund = with_functions(
            &[CLOCK, DEADLINE],
            &[include_str!("lua/refund.lua"), refund].concat(),
        );
        assert!(functions_in(&refund).contains(&"store"));
        assert!(
            !gcra.contains("cjson"),
            "GCRA reads its state without cjson"
        );
    }

    #[test]
    fn a_call_is_a_whole_name() {
        assert!(calls("x = idiv(a, b)", "idiv"));
        assert!(!calls("x = my_idiv(a, b)", "idiv"));
        assert!(!calls("x = string.int(a)", "int"));
        assert!(!calls("x = idiv", "idiv"));
    }

    #[test]
    fn the_read_script_is_flagged_read_only() {
        // Redis reads the flags from the first line only.
        assert_eq!(read_source().lines().next(), Some("#!lua flags=no-writes"));
    }
}
