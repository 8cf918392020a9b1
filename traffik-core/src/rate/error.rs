//! Why a string or a pair of numbers is not a [`Rate`](super::Rate).

/// Why `(limit, period)` is not a valid [`Rate`](super::Rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRate {
    /// A period was given with a limit of 0. Use `Rate::UNLIMITED` for "no limit".
    #[error("a rate needs a limit above 0 (use `unlimited` or `0/0` for no limit)")]
    ZeroLimit,
    /// A limit was given with a period of 0.
    #[error("a rate needs a period of at least 1 ms")]
    ZeroPeriod,
    /// The period has a sub-millisecond part.
    #[error("a rate's period must be a whole number of milliseconds")]
    FractionalMillisecond,
    /// The period does not fit in `u64` milliseconds.
    #[error("a rate's period must fit in u64 milliseconds")]
    PeriodTooLong,
}

/// Why a string could not be parsed as a [`Rate`](super::Rate).
///
/// Every message names the offending part of the input.
///
/// ```
/// use traffik_core::{ParseRateError, Rate};
///
/// let err = "5/fortnight".parse::<Rate>().unwrap_err();
/// assert!(matches!(err, ParseRateError::UnknownUnit { .. }));
/// assert!(err.to_string().contains("`fortnight`"));
/// assert!(err.to_string().contains("valid units"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseRateError {
    /// The input was empty or only whitespace.
    #[error("rate string is empty; expected e.g. \"100/min\" or \"5 per 10s\"")]
    Empty,
    /// The input is not `<limit>/<period>` or `<limit> per <period>`.
    #[error(
        "invalid rate `{input}`: expected `<limit>/<period>` or `<limit> per <period>`, e.g. \"100/min\", \"5/10s\", \"20 per 2 mins\""
    )]
    Format {
        /// The whole input.
        input: String,
    },
    /// The limit is not a whole number.
    #[error("invalid limit `{limit}` in rate `{input}`: expected a whole number such as 100")]
    InvalidLimit {
        /// The limit as written.
        limit: String,
        /// The whole input.
        input: String,
    },
    /// The limit is negative.
    #[error("invalid limit `{limit}` in rate `{input}`: a limit cannot be negative")]
    NegativeLimit {
        /// The limit as written.
        limit: String,
        /// The whole input.
        input: String,
    },
    /// The limit has a fractional part.
    #[error("invalid limit `{limit}` in rate `{input}`: a limit must be a whole number")]
    FractionalLimit {
        /// The limit as written.
        limit: String,
        /// The whole input.
        input: String,
    },
    /// The limit does not fit in `u64`.
    #[error("limit `{limit}` in rate `{input}` is too large (at most {max})", max = u64::MAX)]
    LimitTooLarge {
        /// The limit as written.
        limit: String,
        /// The whole input.
        input: String,
    },
    /// A limit of 0 with a non-zero period.
    #[error(
        "limit 0 in rate `{input}` would block everything; write `unlimited` or `0/0` for no limit"
    )]
    ZeroLimit {
        /// The whole input.
        input: String,
    },
    /// Nothing after the separator.
    #[error("rate `{input}` has no period after the separator; expected e.g. `/s` or `/10min`")]
    MissingPeriod {
        /// The whole input.
        input: String,
    },
    /// The period's unit is not known.
    #[error(
        "unknown time unit `{unit}` in rate `{input}`; valid units: ms, millisecond(s), s, sec(s), second(s), m, min(s), minute(s), h, hr(s), hour(s), d, day(s)"
    )]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The period is not `[<count>]<unit>`.
    #[error(
        "invalid period `{period}` in rate `{input}`: expected `[<count>]<unit>`, e.g. `10s` or `min`"
    )]
    InvalidPeriod {
        /// The period as written.
        period: String,
        /// The whole input.
        input: String,
    },
    /// The period count has a fractional part.
    #[error(
        "invalid period `{period}` in rate `{input}`: the count must be a whole number (write `1500ms` for 1.5 s)"
    )]
    FractionalPeriod {
        /// The period as written.
        period: String,
        /// The whole input.
        input: String,
    },
    /// The period count is negative.
    #[error("invalid period `{period}` in rate `{input}`: a period cannot be negative")]
    NegativePeriod {
        /// The period as written.
        period: String,
        /// The whole input.
        input: String,
    },
    /// The period count is 0.
    #[error("invalid period `{period}` in rate `{input}`: a period must be at least 1 ms")]
    ZeroPeriod {
        /// The period as written.
        period: String,
        /// The whole input.
        input: String,
    },
    /// The period does not fit in `u64` milliseconds.
    #[error("period `{period}` in rate `{input}` is too long (it must fit in u64 milliseconds)")]
    PeriodTooLong {
        /// The period as written.
        period: String,
        /// The whole input.
        input: String,
    },
}
