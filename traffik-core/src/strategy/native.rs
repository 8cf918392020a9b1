//! Built-in strategies reduced to an algorithm and its integer parameters for one hit: what a
//! backend that runs strategies natively (the Redis backend's Lua scripts) needs to mirror
//! [`Strategy::apply`](super::Strategy::apply) exactly. Context-dependent limits (tier,
//! priority) are resolved here, so the native side only ever sees numbers.

use super::scale::Scale;
use super::{
    Adaptive, CostBasedTokenBucket, DynStrategy, FixedWindow, Gcra, Hit, LeakyBucket,
    LeakyBucketWithQueue, Priority, QuotaWithRollover, SlidingWindowCounter, SlidingWindowLog,
    Tiered, TokenBucket, TokenBucketWithDebt,
};

/// One hit of a built-in strategy, as numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Native {
    /// Fixed window with an effective limit (also tiered and priority).
    FixedWindow { period: u64, limit: u64 },
    /// Sliding window counter.
    SlidingWindowCounter { period: u64, limit: u64 },
    /// Sliding window log stamping hits on a `grid` of milliseconds.
    SlidingWindowLog { period: u64, limit: u64, grid: u64 },
    /// Token bucket; `max_debt` 0 without debt.
    TokenBucket {
        per_unit: u64,
        per_ms: u64,
        capacity: u64,
        max_debt: u64,
    },
    /// Leaky bucket as a meter.
    LeakyBucket {
        per_unit: u64,
        per_ms: u64,
        capacity: u64,
    },
    /// Leaky bucket with a FIFO queue.
    LeakyBucketQueue {
        per_unit: u64,
        per_ms: u64,
        capacity: u64,
    },
    /// GCRA with tolerance `tau` in scaled units.
    Gcra {
        per_unit: u64,
        per_ms: u64,
        tau: u64,
    },
    /// Cost-based token bucket: its average's window (hits) and lowest refill factor (ppm).
    CostBucket {
        per_unit: u64,
        per_ms: u64,
        capacity: u64,
        window: u64,
        min_refill_ppm: u64,
    },
    /// Quota with rollover: the rollover fraction in parts per million, and its cap.
    QuotaWithRollover {
        period: u64,
        limit: u64,
        fraction_ppm: u64,
        max_rollover: u64,
    },
    /// Adaptive.
    Adaptive {
        period: u64,
        limit: u64,
        floor: u64,
        step: u64,
        threshold: f64,
        reduction: f64,
        unsettled_windows: u64,
    },
}

/// The largest value the scripts keep their integers within: 2^52, so that adding a period or
/// a cost of at most as much stays below 2^53, where IEEE doubles (Lua numbers) stop being
/// exact.
pub(crate) const LUA_EXACT: u64 = 1 << 52;

impl Native {
    /// Whether the script computes this hit exactly (every intermediate value below 2^53), or
    /// which bound it passes. The bucket strategies and GCRA keep their scaled quantities below
    /// 2^53 on every backend (their `validate`), so only the window strategies are bounded here.
    pub(crate) fn exact_in_lua(&self) -> Result<(), String> {
        let too_large = |what: &str, value: u128, bound: u64| {
            (value > u128::from(bound)).then(|| {
                format!(
                    "its script keeps {what} ({value}) at most {bound} (2^{}), the range Lua's doubles hold exactly; use a smaller limit, a shorter period, or the in-memory backend",
                    bound.ilog2()
                )
            })
        };
        let failure = match *self {
            Native::FixedWindow { period, limit } | Native::Adaptive { period, limit, .. } => {
                too_large("the limit", u128::from(limit), LUA_EXACT)
                    .or_else(|| too_large("the period in ms", u128::from(period), LUA_EXACT))
            }
            Native::SlidingWindowCounter { period, limit } => too_large(
                "the limit times the period in ms",
                u128::from(limit) * u128::from(period),
                LUA_EXACT,
            ),
            Native::SlidingWindowLog { period, limit, .. } => {
                too_large("the limit", u128::from(limit), LUA_EXACT / 2)
                    .or_else(|| too_large("the period in ms", u128::from(period), LUA_EXACT))
            }
            Native::QuotaWithRollover {
                period,
                limit,
                max_rollover,
                ..
            } => too_large(
                "the limit times a million (the rollover fraction's scale)",
                u128::from(limit) * 1_000_000,
                LUA_EXACT,
            )
            .or_else(|| {
                too_large(
                    "the limit plus the rollover cap",
                    u128::from(limit) + u128::from(max_rollover),
                    LUA_EXACT,
                )
            })
            .or_else(|| too_large("the period in ms", u128::from(period), LUA_EXACT / 2)),
            // `validate` keeps its fine tokens below 2^52 on every backend; the average's
            // update stays below 2^53 with a window of at most 1,000 hits.
            Native::CostBucket { .. } => None,
            Native::TokenBucket { .. }
            | Native::LeakyBucket { .. }
            | Native::LeakyBucketQueue { .. }
            | Native::Gcra { .. } => None,
        };
        failure.map_or(Ok(()), Err)
    }

    /// The built-in `strategy` for `hit`, or `None` for any other strategy.
    pub(crate) fn of(strategy: &dyn DynStrategy, hit: &Hit<'_>) -> Option<Native> {
        let any = strategy.as_any();
        let (rate, period, limit) = (&hit.rate, hit.rate.period_ms(), hit.rate.limit());
        let scale = Scale::of(rate);
        if any.is::<FixedWindow>() {
            return Some(Native::FixedWindow { period, limit });
        }
        if let Some(tiered) = any.downcast_ref::<Tiered>() {
            let (_, multiplier) = tiered.resolve(hit);
            let limit = Tiered::effective(limit, multiplier);
            return Some(Native::FixedWindow { period, limit });
        }
        #[cfg(feature = "time-of-day")]
        if let Some(time_of_day) = any.downcast_ref::<super::TimeOfDay>() {
            let limit = Tiered::effective(limit, time_of_day.multiplier_at(hit.now));
            return Some(Native::FixedWindow { period, limit });
        }
        if let Some(priority) = any.downcast_ref::<Priority>() {
            let limit = priority.ceiling(limit, priority.level(hit));
            return Some(Native::FixedWindow { period, limit });
        }
        if any.is::<SlidingWindowCounter>() {
            return Some(Native::SlidingWindowCounter { period, limit });
        }
        if let Some(log) = any.downcast_ref::<SlidingWindowLog>() {
            let grid = log.grid(period);
            return Some(Native::SlidingWindowLog {
                period,
                limit,
                grid,
            });
        }
        let bucket = if let Some(bucket) = any.downcast_ref::<TokenBucket>() {
            Some((bucket.capacity(rate), 0))
        } else {
            any.downcast_ref::<TokenBucketWithDebt>().map(|bucket| {
                let bucket = bucket.bucket(rate);
                (bucket.capacity, bucket.max_debt)
            })
        };
        if let Some((capacity, max_debt)) = bucket {
            return Some(Native::TokenBucket {
                per_unit: scale.per_unit,
                per_ms: scale.per_ms,
                capacity,
                max_debt,
            });
        }
        if let Some(bucket) = any.downcast_ref::<LeakyBucket>() {
            return Some(Native::LeakyBucket {
                per_unit: scale.per_unit,
                per_ms: scale.per_ms,
                capacity: bucket.size(rate),
            });
        }
        if let Some(queue) = any.downcast_ref::<LeakyBucketWithQueue>() {
            return Some(Native::LeakyBucketQueue {
                per_unit: scale.per_unit,
                per_ms: scale.per_ms,
                capacity: queue.size(rate),
            });
        }
        if let Some(gcra) = any.downcast_ref::<Gcra>() {
            return Some(Native::Gcra {
                per_unit: scale.per_unit,
                per_ms: scale.per_ms,
                tau: gcra.tau(&scale),
            });
        }
        if let Some(bucket) = any.downcast_ref::<CostBasedTokenBucket>() {
            return Some(Native::CostBucket {
                per_unit: scale.per_unit,
                per_ms: scale.per_ms,
                capacity: bucket.capacity(rate),
                window: bucket.window(),
                min_refill_ppm: bucket.min_refill_ppm(),
            });
        }
        if let Some(quota) = any.downcast_ref::<QuotaWithRollover>() {
            return Some(Native::QuotaWithRollover {
                period,
                limit,
                fraction_ppm: quota.fraction_ppm(),
                max_rollover: quota.max_rollover(),
            });
        }
        if let Some(adaptive) = any.downcast_ref::<Adaptive>() {
            let (floor, step, threshold, reduction) = adaptive.parameters(limit);
            return Some(Native::Adaptive {
                period,
                limit,
                floor,
                step,
                threshold,
                reduction,
                unsettled_windows: adaptive.unsettled_windows(limit),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{PriorityLevel, Strategy};
    use crate::{Context, Rate};

    #[test]
    fn context_dependent_limits_are_resolved_to_numbers() {
        let rate = Rate::per_minute(100);
        let mut premium = Context::new();
        premium.insert("tier", "premium");
        let hit = Hit::new(0, rate, 1, &premium);
        assert_eq!(
            Native::of(&Tiered::new(), &hit),
            Some(Native::FixedWindow {
                period: 60_000,
                limit: 500
            })
        );
        let mut low = Context::new();
        low.insert("priority", "low");
        let hit = Hit::new(0, rate, 1, &low);
        let limit = Priority::new().ceiling(100, PriorityLevel::Low);
        assert_eq!(
            Native::of(&Priority::new(), &hit),
            Some(Native::FixedWindow {
                period: 60_000,
                limit
            })
        );
    }

    #[test]
    fn scaled_parameters_come_from_the_reduced_rate() {
        let context = Context::new();
        let hit = Hit::new(0, Rate::per_second(3), 1, &context);
        assert_eq!(
            Native::of(&TokenBucketWithDebt::new(2), &hit),
            Some(Native::TokenBucket {
                per_unit: 1_000,
                per_ms: 3,
                capacity: 3,
                max_debt: 2
            })
        );
        assert_eq!(
            Native::of(&Gcra::new().burst(3), &hit),
            Some(Native::Gcra {
                per_unit: 1_000,
                per_ms: 3,
                tau: 2_000
            })
        );
    }

    #[test]
    fn scripts_refuse_what_their_doubles_cannot_hold_exactly() {
        let context = Context::new();
        let native = |strategy: &dyn DynStrategy, limit, period| {
            Native::of(
                strategy,
                &Hit::new(0, Rate::per_millis(limit, period), 1, &context),
            )
            .unwrap()
        };
        let counter = SlidingWindowCounter::new();
        assert!(native(&counter, 1 << 42, 1 << 10).exact_in_lua().is_ok());
        let error = native(&counter, (1 << 42) + 1, 1 << 10)
            .exact_in_lua()
            .unwrap_err();
        assert!(error.contains("the limit times the period"), "{error}");
        assert!(
            native(&counter, 1_000_000_000, 86_400_000)
                .exact_in_lua()
                .is_err()
        );
        assert!(
            native(&FixedWindow::new(), LUA_EXACT, 1_000)
                .exact_in_lua()
                .is_ok()
        );
        assert!(
            native(&FixedWindow::new(), LUA_EXACT + 1, 1_000)
                .exact_in_lua()
                .is_err()
        );
        assert!(
            native(&FixedWindow::new(), 1, LUA_EXACT + 1)
                .exact_in_lua()
                .is_err()
        );
        let log = SlidingWindowLog::new();
        assert!(native(&log, LUA_EXACT / 2, 1_000).exact_in_lua().is_ok());
        assert!(
            native(&log, LUA_EXACT / 2 + 1, 1_000)
                .exact_in_lua()
                .is_err()
        );
        assert!(
            native(&TokenBucket::new(), 1 << 60, 1)
                .exact_in_lua()
                .is_ok()
        );
    }

    #[test]
    fn other_strategies_have_no_native_form() {
        #[derive(Debug)]
        struct Custom;
        impl Strategy for Custom {
            type State = u64;
            const NAME: &'static str = "custom";
            fn apply(&self, _: &mut Option<u64>, hit: &Hit<'_>) -> crate::Decision {
                crate::Decision::allowed(hit.rate.limit(), 0, std::time::Duration::ZERO)
            }
            fn stat(&self, _: Option<&u64>, hit: &Hit<'_>) -> crate::StrategyStat {
                crate::StrategyStat::new(
                    hit.rate,
                    0,
                    std::time::Duration::ZERO,
                    crate::StatMetadata::None,
                )
            }
            fn expires_at(&self, _: &u64, _: &Rate) -> crate::Millis {
                0
            }
        }
        let context = Context::new();
        let hit = Hit::new(0, Rate::per_second(3), 1, &context);
        assert_eq!(Native::of(&Custom, &hit), None);
    }
}
