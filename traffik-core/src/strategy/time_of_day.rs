//! [`TimeOfDay`]: a fixed window whose limit is multiplied by the window of the day the hit
//! falls in, in a time zone (the reference's `TimeOfDay`, with real time zones).

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::fixed_window::{WindowState, refund_window, step, window_stat};
use super::tiered::{Tiered, check_multiplier};
use super::{Hit, Refund, Strategy, StrategyConfigError};
use crate::{Decision, Millis, Rate, StatMetadata, StrategyStat};

const MS_PER_MINUTE: u64 = 60_000;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// A fixed window whose limit is `floor(limit × multiplier)`, the multiplier being that of the
/// window of the day (local time in the strategy's time zone) the hit falls in: more at night,
/// less in business hours, say. A time outside every window uses the default multiplier (1).
///
/// Windows are `"HH:MM"` to `"HH:MM"` in local wall-clock time, start included, end excluded;
/// `"24:00"` is the end of the day, and a window whose end comes before its start wraps past
/// midnight (`"22:00"`–`"06:00"`). The first window that contains the time applies. Local time
/// follows the zone's rules, daylight saving time included: on the day clocks go forward an
/// 8:00 window starts one real hour after 7:00 did the day before, and in the hour that
/// repeats when clocks go back, both passes through it are in the same window. The time zone
/// comes from the system's database, else the copy bundled with `jiff`.
///
/// Differences from the reference, which uses a fixed whole-hour UTC offset (no DST) and whole
/// hours: any IANA zone, minute precision, windows past midnight, and parameters checked when
/// the throttle is built.
///
/// **Guarantees**: those of [`FixedWindow`](super::FixedWindow) at the effective limit. One
/// key per client whatever the time, so a window of the day that begins mid-period keeps the
/// period's count under its new limit.
///
/// **Storage**: the fixed window's `{window, count}`. On Redis the local time is resolved by
/// the caller (Lua has no time-zone database) and the fixed window's script decides.
///
/// ```
/// use traffik_core::strategy::{Hit, Strategy, TimeOfDay};
/// use traffik_core::{Context, Rate};
///
/// // Half the rate during New York business hours, double at night.
/// let strategy = TimeOfDay::new("America/New_York")
///     .window("09:00", "17:00", 0.5)
///     .window("22:00", "06:00", 2.0);
/// let context = Context::new();
/// // 2026-07-01 15:00 UTC is 11:00 in New York (EDT).
/// let noon_ish = 1_782_918_000_000;
/// let mut state = None;
/// let decision = strategy.apply(&mut state, &Hit::new(noon_ish, Rate::per_minute(100), 1, &context));
/// assert_eq!(decision.limit, 50);
/// ```
#[derive(Clone)]
pub struct TimeOfDay {
    zone: Result<TimeZone, String>,
    zone_name: Arc<str>,
    windows: Arc<[DayWindow]>,
    default_multiplier: f64,
    /// The first window that did not parse, reported by `validate`.
    invalid: Option<Arc<str>>,
}

/// One window of the day: `[start, end)` in minutes after local midnight (wrapping when
/// `end < start`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct DayWindow {
    start: u16,
    end: u16,
    multiplier: f64,
}

impl DayWindow {
    fn contains(&self, minute_ms: u64) -> bool {
        let (start, end) = (
            u64::from(self.start) * MS_PER_MINUTE,
            u64::from(self.end) * MS_PER_MINUTE,
        );
        if start <= end {
            start <= minute_ms && minute_ms < end
        } else {
            minute_ms >= start || minute_ms < end
        }
    }
}

impl TimeOfDay {
    /// No windows yet, in the IANA time zone `zone` (`"Europe/Paris"`, `"UTC"`); an unknown
    /// zone is reported when the throttle is built.
    #[must_use]
    pub fn new(zone: &str) -> Self {
        TimeOfDay {
            zone: TimeZone::get(zone).map_err(|error| error.to_string()),
            zone_name: zone.into(),
            windows: Arc::new([]),
            default_multiplier: 1.0,
            invalid: None,
        }
    }

    /// The reference's default windows, in UTC: ×2 from 00:00 to 08:00, ×1 to 17:00, ×1.5 to
    /// midnight.
    #[must_use]
    pub fn reference_default() -> Self {
        TimeOfDay::new("UTC")
            .window("00:00", "08:00", 2.0)
            .window("08:00", "17:00", 1.0)
            .window("17:00", "24:00", 1.5)
    }

    /// Adds a window: from `start` to `end` (`"HH:MM"`, local time; `"24:00"` is midnight at
    /// the end of the day), the limit is multiplied by `multiplier`.
    #[must_use]
    pub fn window(mut self, start: &str, end: &str, multiplier: f64) -> Self {
        match (parse_minute(start), parse_minute(end)) {
            (Some(start), Some(end)) if start < MINUTES_PER_DAY => {
                let mut windows = self.windows.to_vec();
                windows.push(DayWindow {
                    start,
                    end,
                    multiplier,
                });
                self.windows = windows.into();
            }
            _ => {
                self.invalid
                    .get_or_insert_with(|| format!("`{start}`–`{end}`").into());
            }
        }
        self
    }

    /// The multiplier outside every window (default 1).
    #[must_use]
    pub fn default_multiplier(mut self, multiplier: f64) -> Self {
        self.default_multiplier = multiplier;
        self
    }

    /// The multiplier in force at `now` (ms since the Unix epoch).
    #[must_use]
    pub fn multiplier_at(&self, now: Millis) -> f64 {
        let Some(minute_ms) = self.local_ms_of_day(now) else {
            return self.default_multiplier;
        };
        self.windows
            .iter()
            .find(|window| window.contains(minute_ms))
            .map_or(self.default_multiplier, |window| window.multiplier)
    }

    /// Milliseconds since local midnight at `now`.
    fn local_ms_of_day(&self, now: Millis) -> Option<u64> {
        let zone = self.zone.as_ref().ok()?;
        let now = i64::try_from(now).ok()?;
        let local = Timestamp::from_millisecond(now)
            .ok()?
            .to_zoned(zone.clone());
        let time = local.time();
        let ms = i64::from(time.hour()) * 3_600_000
            + i64::from(time.minute()) * 60_000
            + i64::from(time.second()) * 1_000
            + i64::from(time.millisecond());
        u64::try_from(ms).ok()
    }

    fn effective(&self, hit: &Hit<'_>) -> (f64, u64) {
        let multiplier = self.multiplier_at(hit.now);
        (multiplier, Tiered::effective(hit.rate.limit(), multiplier))
    }
}

/// `"HH:MM"` as minutes after midnight (`"24:00"` is 1440).
fn parse_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours.checked_mul(60)?.checked_add(minutes)?;
    (minutes < 60 && total <= MINUTES_PER_DAY).then_some(total)
}

impl fmt::Debug for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeOfDay")
            .field("zone", &self.zone_name)
            .field("windows", &self.windows)
            .field("default_multiplier", &self.default_multiplier)
            .finish()
    }
}

/// [`TimeOfDay`]'s typed stat metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeOfDayStat {
    /// The multiplier in force.
    pub multiplier: f64,
    /// The limit in force.
    pub effective_limit: u64,
    /// Cost admitted in the current window.
    pub current_count: u64,
    /// When the current window ends.
    pub window_end_ms: Millis,
}

impl Strategy for TimeOfDay {
    type State = WindowState;
    const NAME: &'static str = "time-of-day";

    fn apply(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Decision {
        let (_, limit) = self.effective(hit);
        step(state, hit, limit, limit)
    }

    fn refund(&self, state: &mut Option<WindowState>, hit: &Hit<'_>) -> Refund {
        refund_window(state, hit)
    }

    fn stat(&self, state: Option<&WindowState>, hit: &Hit<'_>) -> StrategyStat {
        let (multiplier, limit) = self.effective(hit);
        let (remaining, wait, window) = window_stat(state, hit.now, hit.rate.period_ms(), limit);
        let metadata = StatMetadata::TimeOfDay(TimeOfDayStat {
            multiplier,
            effective_limit: limit,
            current_count: window.current_count,
            window_end_ms: window.window_end_ms,
        });
        StrategyStat::new(hit.rate, remaining, wait, metadata)
    }

    fn expires_at(&self, state: &WindowState, rate: &Rate) -> Millis {
        state.ends_at(rate)
    }

    fn validate(&self, rate: &Rate) -> Result<(), StrategyConfigError> {
        let error = |parameter, reason: String| {
            Err(StrategyConfigError::new(Self::NAME, parameter, reason))
        };
        if let Err(reason) = &self.zone {
            return error("zone", format!("`{}`: {reason}", self.zone_name));
        }
        if let Some(window) = &self.invalid {
            return error(
                "windows",
                format!("{window} is not `HH:MM` to `HH:MM` within the day"),
            );
        }
        let multipliers = self
            .windows
            .iter()
            .map(|w| (format!("{:02}:{:02}", w.start / 60, w.start % 60), w))
            .collect::<Vec<_>>();
        for (start, window) in &multipliers {
            if window.start == window.end {
                return error("windows", format!("the window from {start} is empty"));
            }
        }
        let all = multipliers
            .iter()
            .map(|(start, w)| (format!("the window from {start}"), w.multiplier))
            .chain([("the default".to_owned(), self.default_multiplier)]);
        for (what, multiplier) in all {
            check_multiplier(Self::NAME, "multiplier", &what, multiplier, rate)?;
        }
        Ok(())
    }

    fn pack(state: &WindowState) -> Option<[u64; 3]> {
        Some(state.pack())
    }

    fn unpack(words: [u64; 3]) -> Option<WindowState> {
        Some(WindowState::unpack(words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    /// Milliseconds of a UTC instant written `YYYY-MM-DDTHH:MM:SSZ`.
    fn at(utc: &str) -> Millis {
        let ts: Timestamp = utc.parse().unwrap();
        u64::try_from(ts.as_millisecond()).unwrap()
    }

    fn limit_at(strategy: &TimeOfDay, now: Millis) -> u64 {
        let context = Context::new();
        let mut state = None;
        strategy
            .apply(
                &mut state,
                &Hit::new(now, Rate::per_minute(100), 1, &context),
            )
            .limit
    }

    #[test]
    fn windows_are_local_time_start_included_end_excluded_and_may_wrap_midnight() {
        let strategy = TimeOfDay::new("Europe/Paris")
            .window("09:00", "17:30", 0.5)
            .window("22:00", "06:00", 2.0);
        // Paris is UTC+1 in January.
        assert_eq!(
            limit_at(&strategy, at("2026-01-15T07:59:59Z")),
            100,
            "08:59 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-15T08:00:00Z")),
            50,
            "09:00 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-15T16:29:59Z")),
            50,
            "17:29 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-15T16:30:00Z")),
            100,
            "17:30 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-15T21:00:00Z")),
            200,
            "22:00 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-16T04:59:00Z")),
            200,
            "05:59 local"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-01-16T05:00:00Z")),
            100,
            "06:00 local"
        );
    }

    #[test]
    fn daylight_saving_time_moves_the_windows_with_the_wall_clock() {
        let strategy = TimeOfDay::new("America/New_York").window("03:00", "04:00", 3.0);
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT at 07:00 UTC.
        assert_eq!(
            limit_at(&strategy, at("2026-03-07T08:00:00Z")),
            300,
            "03:00 EST"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-03-08T06:59:59Z")),
            100,
            "01:59 EST"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-03-08T07:00:00Z")),
            300,
            "03:00 EDT"
        );
        assert_eq!(
            limit_at(&strategy, at("2026-03-08T08:00:00Z")),
            100,
            "04:00 EDT"
        );
        // 2026-11-01: 01:00–02:00 happens twice (EDT, then EST).
        let repeated = TimeOfDay::new("America/New_York").window("01:00", "02:00", 2.0);
        assert_eq!(
            limit_at(&repeated, at("2026-11-01T05:30:00Z")),
            200,
            "01:30 EDT"
        );
        assert_eq!(
            limit_at(&repeated, at("2026-11-01T06:30:00Z")),
            200,
            "01:30 EST"
        );
        assert_eq!(
            limit_at(&repeated, at("2026-11-01T07:30:00Z")),
            100,
            "02:30 EST"
        );
    }

    #[test]
    fn the_reference_default_and_the_first_matching_window() {
        let default = TimeOfDay::reference_default();
        assert_eq!(limit_at(&default, at("2026-05-01T03:00:00Z")), 200);
        assert_eq!(limit_at(&default, at("2026-05-01T12:00:00Z")), 100);
        assert_eq!(limit_at(&default, at("2026-05-01T23:59:59Z")), 150);
        let overlapping = TimeOfDay::new("UTC")
            .window("00:00", "24:00", 3.0)
            .window("12:00", "13:00", 0.5);
        assert_eq!(limit_at(&overlapping, at("2026-05-01T12:30:00Z")), 300);
    }

    #[test]
    fn bad_parameters_are_reported_when_the_throttle_is_built() {
        let rate = Rate::per_minute(10);
        for (strategy, parameter) in [
            (TimeOfDay::new("Mars/Olympus_Mons"), "zone"),
            (
                TimeOfDay::new("UTC").window("9:00", "17:00", 1.0),
                "windows",
            ),
            (
                TimeOfDay::new("UTC").window("09:00", "24:01", 1.0),
                "windows",
            ),
            (
                TimeOfDay::new("UTC").window("24:00", "01:00", 1.0),
                "windows",
            ),
            (
                TimeOfDay::new("UTC").window("09:00", "09:00", 1.0),
                "windows",
            ),
            (
                TimeOfDay::new("UTC").window("09:00", "10:00", 0.0),
                "multiplier",
            ),
            (
                TimeOfDay::new("UTC").window("09:00", "10:00", f64::NAN),
                "multiplier",
            ),
            (
                TimeOfDay::new("UTC").window("09:00", "10:00", 0.01),
                "multiplier",
            ),
            (TimeOfDay::new("UTC").default_multiplier(-1.0), "multiplier"),
        ] {
            let error = strategy.validate(&rate).unwrap_err();
            assert_eq!(error.parameter, parameter, "{strategy:?}: {error}");
        }
        assert!(TimeOfDay::reference_default().validate(&rate).is_ok());
    }

    #[test]
    fn the_count_carries_over_when_a_window_of_the_day_begins_mid_period() {
        let strategy = TimeOfDay::new("UTC").window("12:00", "13:00", 2.0);
        let context = Context::new();
        let rate = Rate::per_hour(10);
        let mut state = None;
        let before = at("2026-05-01T11:59:00Z");
        for _ in 0..10 {
            assert!(
                strategy
                    .apply(&mut state, &Hit::new(before, rate, 1, &context))
                    .is_allowed()
            );
        }
        assert!(
            strategy
                .apply(&mut state, &Hit::new(before, rate, 1, &context))
                .is_throttled()
        );
        // 12:00 begins a new hour window anyway: here check the limit doubled mid-hour instead.
        let rate = Rate::per_day(10);
        let mut state = None;
        for _ in 0..10 {
            assert!(
                strategy
                    .apply(&mut state, &Hit::new(before, rate, 1, &context))
                    .is_allowed()
            );
        }
        let noon = at("2026-05-01T12:00:00Z");
        let decision = strategy.apply(&mut state, &Hit::new(noon, rate, 1, &context));
        assert_eq!(
            (decision.limit, decision.remaining),
            (20, 9),
            "same day, same count"
        );
    }
}
