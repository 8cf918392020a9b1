//! [`LeakyBucketWithQueue`]: a leaky bucket that keeps its admitted hits in FIFO order.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::scale::{EXACT_LIMIT, Scale};
use super::{Hit, Refund, Strategy, StrategyConfigError, millis};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

/// A leaky bucket whose contents are a FIFO queue of admitted hits: the drain serves the
/// oldest hit first (partially, if it runs out mid-hit), so the state knows how many hits are
/// still "in the queue", when the oldest arrived, and in what order they drain.
///
/// **Guarantees**: admission is exactly that of [`LeakyBucket`](super::LeakyBucket) with the
/// same capacity (a hit is admitted if the queued cost plus its cost fits `capacity`; default
/// the rate's limit), so the drain rate is strictly smooth. The queue holds at most `capacity`
/// entries (hits of equal arrival time are merged). Refused hits are not queued. A cost above
/// `capacity` is a permanent [`ExceedsCapacity`](crate::Outcome::ExceedsCapacity).
///
/// **Storage**: `{queue: [[arrived, scaled cost left], …], per_unit, updated}`, O(capacity)
/// at most.
///
/// ```
/// use traffik_core::strategy::{Hit, LeakyBucketWithQueue, Strategy};
/// use traffik_core::{Context, Rate, StatMetadata};
///
/// let (queue, context, rate) = (LeakyBucketWithQueue::new(), Context::new(), Rate::per_second(10));
/// let mut state = None;
/// queue.apply(&mut state, &Hit::new(0, rate, 4, &context));
/// queue.apply(&mut state, &Hit::new(100, rate, 4, &context));
/// let stat = queue.stat(state.as_ref(), &Hit::new(200, rate, 1, &context));
/// let StatMetadata::LeakyBucketWithQueue(meta) = stat.metadata else { unreachable!() };
/// assert_eq!((meta.queue_size, meta.queue_cost, meta.oldest_entry_ms), (2, 6.0, Some(0)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeakyBucketWithQueue {
    capacity: Option<u64>,
}

impl LeakyBucketWithQueue {
    /// A queue as large as the rate's limit.
    #[must_use]
    pub const fn new() -> Self {
        LeakyBucketWithQueue { capacity: None }
    }

    /// Sets the queue's size in units.
    #[must_use]
    pub const fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    pub(crate) fn size(&self, rate: &Rate) -> u64 {
        self.capacity.unwrap_or(rate.limit())
    }
}

/// The state of a [`LeakyBucketWithQueue`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeakyBucketQueueState {
    /// Queued hits, oldest first: `(arrived at, scaled cost still queued)`.
    pub queue: VecDeque<(Millis, u64)>,
    /// Scaled units per whole unit when written.
    pub per_unit: u64,
    /// When the queue last drained.
    pub updated: Millis,
}

/// [`LeakyBucketWithQueue`]'s typed stat metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyBucketWithQueueStat {
    /// Hits still (partly) queued.
    pub queue_size: usize,
    /// Cost still queued (fractional units).
    pub queue_cost: f64,
    /// The queue's size in units.
    pub bucket_capacity: u64,
    /// Units drained per millisecond.
    pub leak_rate_per_ms: f64,
    /// When the queue last drained.
    pub last_leak_ms: Millis,
    /// When the oldest queued hit arrived.
    pub oldest_entry_ms: Option<Millis>,
}

/// Drains the queue up to `now` (never backwards); returns the queued scaled cost.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 < take <= *cost, a u64
fn drain(state: &mut LeakyBucketQueueState, scale: &Scale, now: Millis) -> i128 {
    if state.per_unit != scale.per_unit {
        for (_, cost) in &mut state.queue {
            *cost = u64::try_from(scale.rescale(i128::from(*cost), state.per_unit, true))
                .unwrap_or(u64::MAX);
        }
        state.per_unit = scale.per_unit;
    }
    let now = now.max(state.updated);
    let mut budget = scale.gained(now - state.updated);
    while let Some((_, cost)) = state.queue.front_mut() {
        if budget <= 0 {
            break;
        }
        let take = budget.min(i128::from(*cost));
        *cost -= take as u64;
        budget -= take;
        if *cost == 0 {
            state.queue.pop_front();
        }
    }
    state.updated = now;
    state.queue.iter().map(|(_, cost)| i128::from(*cost)).sum()
}

impl Strategy for LeakyBucketWithQueue {
    type State = LeakyBucketQueueState;
    const NAME: &'static str = "leaky-bucket-queue";

    // 0 <= pour <= scaled(capacity), which `validate` keeps below 2^53.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn apply(&self, state: &mut Option<LeakyBucketQueueState>, hit: &Hit<'_>) -> Decision {
        let scale = Scale::of(&hit.rate);
        let (limit, capacity) = (hit.rate.limit(), self.size(&hit.rate));
        let queue = state.get_or_insert_with(|| LeakyBucketQueueState {
            queue: VecDeque::new(),
            per_unit: scale.per_unit,
            updated: hit.now,
        });
        let queued = drain(queue, &scale, hit.now);
        let room = scale.scaled(capacity) - queued;
        let remaining = scale.whole_units(room);
        let reset = millis(scale.ms_to_gain(queued));
        if hit.cost > capacity {
            return Decision::exceeds_capacity(limit, capacity, remaining, reset);
        }
        let pour = scale.scaled(hit.cost);
        if pour > room {
            return Decision::throttled(
                limit,
                remaining,
                millis(scale.ms_to_gain(pour - room)),
                reset,
            );
        }
        let arrived = queue.updated;
        match queue.queue.back_mut() {
            Some((at, cost)) if *at == arrived => *cost += pour as u64,
            _ => queue.queue.push_back((arrived, pour as u64)),
        }
        Decision::allowed(
            limit,
            scale.whole_units(room - pour),
            millis(scale.ms_to_gain(queued + pour)),
        )
    }

    /// Takes the charge back out of the queue, newest entries first (decisions depend only on
    /// the queued total); nothing once the queue has drained, or was last touched a whole drain
    /// time after the charge.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 < take <= *cost, a u64
    fn refund(&self, state: &mut Option<LeakyBucketQueueState>, hit: &Hit<'_>) -> Refund {
        let Some(queue) = state else {
            return Refund::Lapsed;
        };
        let scale = Scale::of(&hit.rate);
        let whole = scale.ms_to_gain(scale.scaled(self.size(&hit.rate)));
        if drain(queue, &scale, hit.now) == 0 {
            *state = None;
            return Refund::Lapsed;
        }
        // A queue last drained a whole drain time after the charge has forgotten it.
        if u128::from(queue.updated) >= u128::from(hit.now) + whole {
            return Refund::Lapsed;
        }
        let mut owed = scale.scaled(hit.cost);
        while owed > 0 {
            let Some((_, cost)) = queue.queue.back_mut() else {
                break;
            };
            let take = owed.min(i128::from(*cost));
            *cost -= take as u64;
            owed -= take;
            if *cost == 0 {
                queue.queue.pop_back();
            }
        }
        if queue.queue.is_empty() {
            *state = None;
        }
        Refund::Returned
    }

    fn stat(&self, state: Option<&LeakyBucketQueueState>, hit: &Hit<'_>) -> StrategyStat {
        let scale = Scale::of(&hit.rate);
        let capacity = self.size(&hit.rate);
        let mut view = state.cloned().unwrap_or(LeakyBucketQueueState {
            queue: VecDeque::new(),
            per_unit: scale.per_unit,
            updated: hit.now,
        });
        let queued = drain(&mut view, &scale, hit.now);
        let room = scale.scaled(capacity) - queued;
        let metadata = StatMetadata::LeakyBucketWithQueue(LeakyBucketWithQueueStat {
            queue_size: view.queue.len(),
            queue_cost: scale.units_f64(queued),
            bucket_capacity: capacity,
            leak_rate_per_ms: scale.rate_per_ms(),
            last_leak_ms: view.updated,
            oldest_entry_ms: view.queue.front().map(|(at, _)| *at),
        });
        let wait = millis(scale.ms_to_gain(scale.scaled(1) - room));
        StrategyStat::new(hit.rate, scale.whole_units(room), wait, metadata)
    }

    fn expires_at(&self, state: &LeakyBucketQueueState, rate: &Rate) -> Millis {
        let scale = Scale::of(rate);
        let queued: i128 = state
            .queue
            .iter()
            .map(|(_, cost)| scale.rescale(i128::from(*cost), state.per_unit, true))
            .sum();
        state
            .updated
            .saturating_add(u64::try_from(scale.ms_to_gain(queued)).unwrap_or(u64::MAX))
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let capacity = self.size(rate);
        if capacity == 0 {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "capacity",
                "must be at least 1",
            ));
        }
        if Scale::of(rate).scaled(capacity) >= EXACT_LIMIT {
            return Err(StrategyConfigError::new(
                Self::NAME,
                "capacity",
                "is too large for exact arithmetic at this rate",
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
    #[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
    fn drains_the_oldest_hit_first() {
        let mut sim = Sim::new(LeakyBucketWithQueue::new(), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(3).is_allowed());
        sim.at(50);
        assert!(sim.hit(2).is_allowed());
        sim.at(250); // 2.5 units drained: the first hit has 0.5 left
        let StatMetadata::LeakyBucketWithQueue(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(meta.queue_size, 2);
        assert_eq!(meta.queue_cost, 2.5);
        assert_eq!(meta.oldest_entry_ms, Some(0));
        sim.at(300);
        let StatMetadata::LeakyBucketWithQueue(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!((meta.queue_size, meta.oldest_entry_ms), (1, Some(50)));
    }

    #[test]
    fn refuses_what_does_not_fit_and_says_when_it_will() {
        let mut sim = Sim::new(LeakyBucketWithQueue::new(), Rate::per_second(10));
        sim.at(0);
        assert!(sim.hit(8).is_allowed());
        assert_eq!(sim.hit(4).wait(), Some(Duration::from_millis(200)));
        sim.at(200);
        assert!(sim.hit(4).is_allowed());
    }

    #[test]
    fn merges_hits_arriving_together() {
        let mut sim = Sim::new(LeakyBucketWithQueue::new(), Rate::per_second(10));
        sim.at(0);
        for _ in 0..10 {
            assert!(sim.hit(1).is_allowed());
        }
        let StatMetadata::LeakyBucketWithQueue(meta) = sim.stat().metadata else {
            panic!()
        };
        assert_eq!(meta.queue_size, 1);
        assert_eq!(sim.expires_at(), Some(1_000));
    }
}
