//! [`Rate`]: how many units a client may spend per period.

mod error;
mod parse;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use error::{InvalidRate, ParseRateError};

const MS_PER_SECOND: u64 = 1_000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;

/// A rate limit: `limit` units per `period`.
///
/// Periods are whole milliseconds. [`Rate::UNLIMITED`] (`"unlimited"` or `"0/0"`) admits
/// everything and never touches a backend.
///
/// ```
/// use std::time::Duration;
/// use traffik_core::Rate;
///
/// let rate: Rate = "100/min".parse()?;
/// assert_eq!(rate, Rate::per_minute(100));
/// assert_eq!(rate.limit(), 100);
/// assert_eq!(rate.period(), Duration::from_secs(60));
///
/// // Every format of the reference is accepted.
/// assert_eq!("20 per 2 mins".parse::<Rate>()?, Rate::new(20, Duration::from_secs(120)));
/// assert_eq!("1000/500ms".parse::<Rate>()?, Rate::new(1000, Duration::from_millis(500)));
///
/// // `Display` round-trips through `FromStr`.
/// let odd = Rate::new(7, Duration::from_secs(5 * 60 + 30));
/// assert_eq!(odd.to_string(), "7/330s");
/// assert_eq!(odd.to_string().parse::<Rate>()?, odd);
/// # Ok::<(), traffik_core::ParseRateError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rate {
    limit: u64,
    period_ms: u64,
    /// `period_ms / gcd(limit, period_ms)`: scaled units in one unit (see `strategy::scale`).
    per_unit: u64,
    /// `limit / gcd(limit, period_ms)`: scaled units gained per millisecond.
    per_ms: u64,
}

impl Rate {
    /// No limit at all: every hit is allowed without a backend call.
    pub const UNLIMITED: Rate = Rate {
        limit: 0,
        period_ms: 0,
        per_unit: 1,
        per_ms: 1,
    };

    /// `limit` units per `period`.
    ///
    /// # Panics
    /// When the rate is invalid (see [`Rate::try_new`]); in a `const` this is a compile error.
    /// Use [`Rate::try_new`] for values that come from outside the program.
    #[must_use]
    pub const fn new(limit: u64, period: Duration) -> Rate {
        match Rate::try_new(limit, period) {
            Ok(rate) => rate,
            Err(InvalidRate::ZeroLimit) => {
                panic!("a rate needs a limit above 0 (use Rate::UNLIMITED for no limit)")
            }
            Err(InvalidRate::ZeroPeriod) => panic!("a rate needs a period of at least 1 ms"),
            Err(InvalidRate::FractionalMillisecond) => {
                panic!("a rate's period must be a whole number of milliseconds")
            }
            Err(InvalidRate::PeriodTooLong) => {
                panic!("a rate's period must fit in u64 milliseconds")
            }
        }
    }

    /// `limit` units per `period`, or why that is not a rate.
    ///
    /// `(0, 0)` is [`Rate::UNLIMITED`]. Otherwise the limit must be at least 1 and the period a
    /// whole number of milliseconds, at least 1 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use traffik_core::{InvalidRate, Rate};
    ///
    /// assert_eq!(Rate::try_new(0, Duration::ZERO), Ok(Rate::UNLIMITED));
    /// assert_eq!(Rate::try_new(0, Duration::from_secs(1)), Err(InvalidRate::ZeroLimit));
    /// assert_eq!(Rate::try_new(5, Duration::from_micros(1500)), Err(InvalidRate::FractionalMillisecond));
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidRate::FractionalMillisecond`] for a sub-millisecond part,
    /// [`InvalidRate::PeriodTooLong`] past `u64::MAX` ms, [`InvalidRate::ZeroLimit`] for a
    /// limit of 0 with a period, [`InvalidRate::ZeroPeriod`] for a period of 0 with a limit.
    #[allow(clippy::cast_possible_truncation)] // const fn; `millis` is checked to fit just before
    pub const fn try_new(limit: u64, period: Duration) -> Result<Rate, InvalidRate> {
        if !period.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(InvalidRate::FractionalMillisecond);
        }
        let millis = period.as_millis();
        if millis > u64::MAX as u128 {
            return Err(InvalidRate::PeriodTooLong);
        }
        let period_ms = millis as u64;
        match (limit, period_ms) {
            (0, 0) => Ok(Rate::UNLIMITED),
            (0, _) => Err(InvalidRate::ZeroLimit),
            (_, 0) => Err(InvalidRate::ZeroPeriod),
            _ => Ok(Rate::from_parts(limit, period_ms)),
        }
    }

    /// A limited rate from its parts (both non-zero), with its reduced form computed once.
    pub(crate) const fn from_parts(limit: u64, period_ms: u64) -> Rate {
        let g = gcd(limit, period_ms);
        Rate {
            limit,
            period_ms,
            per_unit: period_ms / g,
            per_ms: limit / g,
        }
    }

    /// The reduced form `(period / g, limit / g)` with `g = gcd(limit, period)`.
    pub(crate) const fn reduced(&self) -> (u64, u64) {
        (self.per_unit, self.per_ms)
    }

    /// `limit` units per `period_ms` milliseconds (panics like [`Rate::new`]).
    #[must_use]
    pub const fn per_millis(limit: u64, period_ms: u64) -> Rate {
        Rate::new(limit, Duration::from_millis(period_ms))
    }

    /// `limit` units per second.
    #[must_use]
    pub const fn per_second(limit: u64) -> Rate {
        Rate::per_millis(limit, MS_PER_SECOND)
    }

    /// `limit` units per minute.
    #[must_use]
    pub const fn per_minute(limit: u64) -> Rate {
        Rate::per_millis(limit, MS_PER_MINUTE)
    }

    /// `limit` units per hour.
    #[must_use]
    pub const fn per_hour(limit: u64) -> Rate {
        Rate::per_millis(limit, MS_PER_HOUR)
    }

    /// `limit` units per day (24 hours).
    #[must_use]
    pub const fn per_day(limit: u64) -> Rate {
        Rate::per_millis(limit, MS_PER_DAY)
    }

    /// The number of units allowed per period (0 when unlimited).
    #[must_use]
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The period (zero when unlimited).
    #[must_use]
    pub const fn period(&self) -> Duration {
        Duration::from_millis(self.period_ms)
    }

    /// The period in milliseconds (0 when unlimited).
    #[must_use]
    pub const fn period_ms(&self) -> u64 {
        self.period_ms
    }

    /// Whether this is [`Rate::UNLIMITED`].
    #[must_use]
    pub const fn is_unlimited(&self) -> bool {
        self.limit == 0
    }

    /// Whether the period is shorter than one second (never true for an unlimited rate).
    #[must_use]
    pub const fn is_subsecond(&self) -> bool {
        !self.is_unlimited() && self.period_ms < MS_PER_SECOND
    }

    /// Requests per second (`f64::INFINITY` when unlimited).
    #[must_use]
    pub fn rps(&self) -> f64 {
        self.per_unit(MS_PER_SECOND)
    }

    /// Requests per minute (`f64::INFINITY` when unlimited).
    #[must_use]
    pub fn rpm(&self) -> f64 {
        self.per_unit(MS_PER_MINUTE)
    }

    /// Requests per hour (`f64::INFINITY` when unlimited).
    #[must_use]
    pub fn rph(&self) -> f64 {
        self.per_unit(MS_PER_HOUR)
    }

    /// Requests per day (`f64::INFINITY` when unlimited).
    #[must_use]
    pub fn rpd(&self) -> f64 {
        self.per_unit(MS_PER_DAY)
    }

    #[allow(clippy::cast_precision_loss)] // a rate for display: approximate above 2^53 is fine
    fn per_unit(&self, unit_ms: u64) -> f64 {
        if self.is_unlimited() {
            f64::INFINITY
        } else {
            self.limit as f64 * unit_ms as f64 / self.period_ms as f64
        }
    }
}

/// Binary (Stein's) gcd: shifts and subtractions only.
pub(crate) const fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 || b == 0 {
        return a | b;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            let t = a;
            a = b;
            b = t;
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

impl Default for Rate {
    /// [`Rate::UNLIMITED`].
    fn default() -> Self {
        Rate::UNLIMITED
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rate({self})")
    }
}

impl fmt::Display for Rate {
    /// The shortest canonical form: `100/min`, `5/10s`, `10/100ms`, `7/330s`, `unlimited`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unlimited() {
            return f.write_str("unlimited");
        }
        let units = [
            (MS_PER_DAY, "d"),
            (MS_PER_HOUR, "h"),
            (MS_PER_MINUTE, "min"),
            (MS_PER_SECOND, "s"),
            (1, "ms"),
        ];
        let (unit_ms, unit) = units
            .into_iter()
            .find(|(unit_ms, _)| self.period_ms.is_multiple_of(*unit_ms))
            .unwrap_or((1, "ms"));
        match self.period_ms / unit_ms {
            1 => write!(f, "{}/{unit}", self.limit),
            count => write!(f, "{}/{count}{unit}", self.limit),
        }
    }
}

impl FromStr for Rate {
    type Err = ParseRateError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse::parse(input)
    }
}

impl TryFrom<&str> for Rate {
    type Error = ParseRateError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        input.parse()
    }
}

impl TryFrom<String> for Rate {
    type Error = ParseRateError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        input.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_agree_with_each_other() {
        const COMPOSITE: Rate = Rate::new(100, Duration::from_secs(5 * 60 + 30));
        assert_eq!(Rate::per_second(5), Rate::new(5, Duration::from_secs(1)));
        assert_eq!(Rate::per_minute(5).period_ms(), 60_000);
        assert_eq!(Rate::per_hour(5).period_ms(), 3_600_000);
        assert_eq!(Rate::per_day(5).period_ms(), 86_400_000);
        assert_eq!(COMPOSITE.period_ms(), 330_000);
    }

    #[test]
    fn try_new_names_each_invalid_combination() {
        assert_eq!(
            Rate::try_new(1, Duration::ZERO),
            Err(InvalidRate::ZeroPeriod)
        );
        assert_eq!(
            Rate::try_new(0, Duration::from_millis(1)),
            Err(InvalidRate::ZeroLimit)
        );
        assert_eq!(
            Rate::try_new(1, Duration::from_secs(u64::MAX)),
            Err(InvalidRate::PeriodTooLong)
        );
    }

    #[test]
    #[should_panic(expected = "limit above 0")]
    fn new_panics_on_zero_limit_with_a_period() {
        let _ = Rate::new(0, Duration::from_secs(1));
    }

    #[test]
    #[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
    fn unlimited_has_infinite_throughput_and_is_not_subsecond() {
        assert!(Rate::UNLIMITED.is_unlimited());
        assert!(!Rate::UNLIMITED.is_subsecond());
        assert_eq!(Rate::UNLIMITED.rps(), f64::INFINITY);
        assert_eq!(Rate::default(), Rate::UNLIMITED);
    }

    #[test]
    #[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
    fn throughput_accessors_scale_the_limit() {
        let rate = Rate::per_minute(120);
        assert_eq!(rate.rps(), 2.0);
        assert_eq!(rate.rpm(), 120.0);
        assert_eq!(rate.rph(), 7_200.0);
        assert_eq!(rate.rpd(), 172_800.0);
        assert!(Rate::per_millis(10, 100).is_subsecond());
        assert!(!Rate::per_second(10).is_subsecond());
    }

    #[test]
    fn display_picks_the_largest_exact_unit() {
        assert_eq!(Rate::per_minute(100).to_string(), "100/min");
        assert_eq!(Rate::per_millis(5, 10_000).to_string(), "5/10s");
        assert_eq!(Rate::per_millis(10, 100).to_string(), "10/100ms");
        assert_eq!(Rate::per_day(10_000).to_string(), "10000/d");
        assert_eq!(Rate::per_millis(3, 7_200_000).to_string(), "3/2h");
        assert_eq!(Rate::UNLIMITED.to_string(), "unlimited");
        assert_eq!(format!("{:?}", Rate::per_second(2)), "Rate(2/s)");
    }
}
