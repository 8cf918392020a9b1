//! [`SlidingWindowLog`]: a log of admitted cost, exact over any period-long interval.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// Records when each unit was admitted and admits a hit only if the cost admitted in the last
/// `period` plus its own is at most `limit`.
///
/// **Guarantees**: exact: over every interval of one period, at most `limit` units are
/// admitted (no boundary burst). The wait of a refused hit is the time until enough logged
/// cost has aged out for it, found by binary search over running totals: O(log n) per decision,
/// amortised O(1) pruning. Hits in the same millisecond share one entry, so the log holds at
/// most `min(limit, period in ms)` entries; [`max_entries`](Self::max_entries) bounds it
/// further by stamping hits on a coarser grid, rounding each time *up* (a unit then ages out
/// slightly later, never earlier: never more than `limit` per period). Refused hits are not
/// logged. A cost above `limit` is a permanent
/// [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity).
///
/// **Storage**: `{entries: [[time, running total], …], base}`; an entry's cost is its running
/// total minus the previous one (`base` for the first).
///
/// ```
/// use traffik_core::strategy::{Hit, SlidingWindowLog, Strategy};
/// use traffik_core::{Context, Rate};
///
/// let (log, context) = (SlidingWindowLog::new(), Context::new());
/// let mut state = None;
/// let rate = Rate::per_second(3);
/// for now in [0, 400, 800] {
///     assert!(log.apply(&mut state, &Hit::new(now, rate, 1, &context)).is_allowed());
/// }
/// // The hit at 0 ages out at 1000.
/// let refused = log.apply(&mut state, &Hit::new(900, rate, 1, &context));
/// assert_eq!(refused.wait(), Some(std::time::Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingWindowLog {
    max_entries: Option<u64>,
}

impl SlidingWindowLog {
    /// An exact log (one entry per millisecond with traffic, at most `limit`).
    #[must_use]
    pub const fn new() -> Self {
        SlidingWindowLog { max_entries: None }
    }

    /// Bounds the log to about `max_entries` entries per key by stamping hits on a grid of
    /// `period / max_entries` (rounded up, conservatively).
    #[must_use]
    pub const fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    pub(crate) fn grid(&self, period: u64) -> u64 {
        self.max_entries
            .map_or(1, |n| period.div_ceil(n.max(1)).max(1))
    }
}

/// The state of a [`SlidingWindowLog`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlidingWindowLogState {
    /// `(time, running total of admitted cost)`, oldest first.
    pub entries: VecDeque<(Millis, u64)>,
    /// The running total before the first entry.
    pub base: u64,
}

/// [`SlidingWindowLog`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindowLogStat {
    /// The start of the window now (`now − period`).
    pub window_start_ms: Millis,
    /// Entries in the window.
    pub entry_count: usize,
    /// Cost admitted in the window.
    pub current_cost_sum: u64,
    /// When the oldest entry in the window was admitted.
    pub oldest_entry_ms: Option<Millis>,
}

impl SlidingWindowLogState {
    /// Index of the first entry still inside the window ending at `now`.
    fn first_live(&self, now: Millis, period: u64) -> usize {
        self.entries
            .partition_point(|(at, _)| at.saturating_add(period) <= now)
    }

    /// The running total just before entry `index`.
    fn total_before(&self, index: usize) -> u64 {
        index
            .checked_sub(1)
            .map_or(self.base, |i| self.entries[i].1)
    }

    fn total(&self) -> u64 {
        self.entries.back().map_or(self.base, |(_, total)| *total)
    }

    /// Re-expresses the running totals from zero when adding `cost` would take them past
    /// [`REBASE_AT`]: totals only grow while the log never empties, and they must stay exact
    /// in a Redis script's doubles (and never overflow here). Decisions are unchanged.
    fn rebase_before(&mut self, cost: u64) {
        if self.base > 0
            && self
                .total()
                .checked_add(cost)
                .is_none_or(|total| total > REBASE_AT)
        {
            for (_, total) in &mut self.entries {
                *total -= self.base;
            }
            self.base = 0;
        }
    }
}

/// The running total past which the log is rebased (2^52, so that a total plus a cost within
/// an exact Redis rate stays below 2^53).
const REBASE_AT: u64 = 1 << 52;

impl Strategy for SlidingWindowLog {
    type State = SlidingWindowLogState;
    const NAME: &'static str = "sliding-window-log";

    fn apply(&self, state: &mut Option<SlidingWindowLogState>, hit: &Hit<'_>) -> Decision {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let log = state.get_or_insert_with(SlidingWindowLogState::default);
        while let Some(&(at, total)) = log.entries.front() {
            if at.saturating_add(period) > hit.now {
                break;
            }
            log.entries.pop_front();
            log.base = total;
        }
        if log.entries.is_empty() {
            log.base = 0;
        }
        let in_window = log.total() - log.base;
        let remaining = limit.saturating_sub(in_window);
        let reset = |log: &SlidingWindowLogState| {
            millis(log.entries.back().map_or(0, |(at, _)| {
                u128::from(at.saturating_add(period).saturating_sub(hit.now))
            }))
        };
        if hit.cost > limit {
            return Decision::exceeds_capacity(limit, limit, remaining, reset(log));
        }
        if hit.cost <= remaining {
            let grid = self.grid(period);
            let latest = log
                .entries
                .back()
                .map_or(hit.now, |(at, _)| hit.now.max(*at));
            let stamp = latest.div_ceil(grid).saturating_mul(grid);
            log.rebase_before(hit.cost);
            let total = log.total() + hit.cost;
            match log.entries.back_mut() {
                Some((at, running)) if *at == stamp => *running = total,
                _ => log.entries.push_back((stamp, total)),
            }
            return Decision::allowed(limit, remaining - hit.cost, reset(log));
        }
        // Find the entry whose ageing-out frees enough: running total − base ≥ excess.
        let excess = u128::from(in_window) + u128::from(hit.cost) - u128::from(limit);
        let index = log
            .entries
            .partition_point(|(_, total)| u128::from(total - log.base) < excess);
        let wait = log.entries.get(index).map_or(0, |(at, _)| {
            u128::from(at.saturating_add(period).saturating_sub(hit.now))
        });
        Decision::throttled(limit, remaining, millis(wait), reset(log))
    }

    /// Removes the charge from the log: from the entry at the charge's grid point if it holds
    /// at least its cost (the entry the charge joined), else from the latest earlier entry that
    /// does (a charge whose time is known only approximately); nothing when none does.
    fn refund(&self, state: &mut Option<SlidingWindowLogState>, hit: &Hit<'_>) -> Refund {
        let Some(log) = state else {
            return Refund::Lapsed;
        };
        let period = hit.rate.period_ms();
        let grid = self.grid(period);
        let stamp = hit.now.div_ceil(grid).saturating_mul(grid);
        let first = log.entries.partition_point(|(at, _)| *at < stamp);
        // The charge joined the entry at its stamp; a later one is another hit's (taking from it
        // would return units a pruned charge no longer holds).
        let last = log
            .entries
            .partition_point(|(at, _)| *at < stamp.saturating_add(grid));
        let holds = |index: &usize| log.entries[*index].1 - log.total_before(*index) >= hit.cost;
        // Else the latest earlier entry that holds it: a charge whose time is known only
        // approximately (a backend on its own clock) may sit a few milliseconds earlier.
        let found = (first..last)
            .find(holds)
            .or_else(|| (0..first).rev().find(holds));
        let Some(index) = found else {
            return Refund::Lapsed;
        };
        for (_, total) in log.entries.iter_mut().skip(index) {
            *total -= hit.cost;
        }
        if log.entries[index].1 == log.total_before(index) {
            log.entries.remove(index);
        }
        if log.entries.is_empty() {
            *state = None;
        }
        Refund::Returned
    }

    fn stat(&self, state: Option<&SlidingWindowLogState>, hit: &Hit<'_>) -> StrategyStat {
        let (period, limit) = (hit.rate.period_ms(), hit.rate.limit());
        let empty = SlidingWindowLogState::default();
        let log = state.unwrap_or(&empty);
        let first = log.first_live(hit.now, period);
        let base = log.total_before(first);
        let in_window = log.total() - base;
        let remaining = limit.saturating_sub(in_window);
        let wait = if remaining > 0 {
            0
        } else {
            let excess = u128::from(in_window) + 1 - u128::from(limit);
            let index = log
                .entries
                .partition_point(|(_, total)| u128::from(total.saturating_sub(base)) < excess);
            log.entries.get(index).map_or(0, |(at, _)| {
                u128::from(at.saturating_add(period).saturating_sub(hit.now))
            })
        };
        let metadata = StatMetadata::SlidingWindowLog(SlidingWindowLogStat {
            window_start_ms: hit.now.saturating_sub(period),
            entry_count: log.entries.len() - first,
            current_cost_sum: in_window,
            oldest_entry_ms: log.entries.get(first).map(|(at, _)| *at),
        });
        StrategyStat::new(hit.rate, remaining, millis(wait), metadata)
    }

    fn expires_at(&self, state: &SlidingWindowLogState, rate: &Rate) -> Millis {
        state
            .entries
            .back()
            .map_or(0, |(at, _)| at.saturating_add(rate.period_ms()))
    }

    fn validate(&self, _rate: &Rate) -> Result<(), StrategyConfigError> {
        if self.max_entries == Some(0) {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "max_entries",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::conformance::Sim;
    use std::time::Duration;

    #[test]
    fn is_exact_over_every_period_long_interval() {
        let mut sim = Sim::new(SlidingWindowLog::new(), Rate::per_second(5));
        sim.at(900);
        assert!(sim.hit(5).is_allowed());
        sim.at(1_100); // a fixed window would reset here
        assert_eq!(sim.hit(1).wait(), Some(Duration::from_millis(800)));
        sim.at(1_900);
        assert!(sim.hit(5).is_allowed());
    }

    #[test]
    fn the_wait_covers_the_whole_cost() {
        let mut sim = Sim::new(SlidingWindowLog::new(), Rate::per_second(10));
        for (now, cost) in [(0, 2), (100, 3), (200, 5)] {
            sim.at(now);
            assert!(sim.hit(cost).is_allowed());
        }
        sim.at(300);
        // Cost 4 needs the entries at 0 (2) and 100 (3) gone: at 1100.
        assert_eq!(sim.hit(4).wait(), Some(Duration::from_millis(800)));
        assert_eq!(sim.hit(2).wait(), Some(Duration::from_millis(700)));
    }

    #[test]
    fn hits_in_one_millisecond_share_an_entry() {
        let mut sim = Sim::new(SlidingWindowLog::new(), Rate::per_second(100));
        sim.at(0);
        for _ in 0..50 {
            sim.hit(1);
        }
        let StatMetadata::SlidingWindowLog(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!((meta.entry_count, meta.current_cost_sum), (1, 50));
    }

    #[test]
    fn max_entries_bounds_the_log_conservatively() {
        let mut sim = Sim::new(
            SlidingWindowLog::new().max_entries(10),
            Rate::per_second(1_000),
        );
        for now in 0..1_000 {
            sim.at(now);
            assert!(sim.hit(1).is_allowed());
        }
        let StatMetadata::SlidingWindowLog(meta) = sim.stat().metadata else {
            panic!()
        };
        assert!(meta.entry_count <= 11, "{} entries", meta.entry_count);
        sim.at(1_000);
        assert!(
            sim.hit(1).is_allowed(),
            "the hit at 0 (stamped 0) ages out on time"
        );
        sim.at(1_050);
        // An exact log would have freed the hits at 1..=50 by now; stamped at 100 they stay.
        assert!(
            sim.hit(1).is_throttled(),
            "rounding up never frees quota early"
        );
    }

    #[test]
    fn stat_matches_apply() {
        let mut sim = Sim::new(SlidingWindowLog::new(), Rate::per_second(3));
        for now in [0, 300, 600] {
            sim.at(now);
            sim.hit(1);
        }
        sim.at(700);
        let stat = sim.stat();
        assert_eq!(
            (stat.hits_remaining, stat.wait),
            (0, Duration::from_millis(300))
        );
        assert_eq!(sim.expires_at(), Some(1_600));
    }
}
