//! The rate grammar.
//!
//! ```text
//! rate      = ws ( "unlimited" | "0/0" | limit ws sep ws period ) ws     (case-insensitive)
//! sep       = "/" | "per"
//! limit     = digits
//! period    = [digits] ws unit
//! unit      = ms | millisecond(s) | s | sec(s) | second(s) | m | min(s) | minute(s)
//!           | h | hr(s) | hour(s) | d | day(s)
//! ```
//!
//! Pure `std`: `traffik-macros` runs this same parser at compile time.

use super::{MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, MS_PER_SECOND, ParseRateError, Rate};

pub(super) fn parse(input: &str) -> Result<Rate, ParseRateError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(ParseRateError::Empty);
    }
    let lowered = trimmed.to_ascii_lowercase();
    if lowered == "unlimited" {
        return Ok(Rate::UNLIMITED);
    }
    let input = trimmed.to_owned();
    let (left, right) = split(&lowered).ok_or_else(|| ParseRateError::Format {
        input: input.clone(),
    })?;
    let (left, right) = (left.trim(), right.trim());
    if left == "0" && right == "0" {
        return Ok(Rate::UNLIMITED);
    }
    let limit = parse_limit(left, &input)?;
    if right.is_empty() {
        return Err(ParseRateError::MissingPeriod { input });
    }
    let period_ms = parse_period(right, &input)?;
    if limit == 0 {
        return Err(ParseRateError::ZeroLimit { input });
    }
    Ok(Rate::from_parts(limit, period_ms))
}

/// Splits at the one separator (`/` or `per`); `None` unless there is exactly one.
fn split(lowered: &str) -> Option<(&str, &str)> {
    let slashes = lowered.matches('/').count();
    let pers = lowered.matches("per").count();
    match (slashes, pers) {
        (1, 0) => lowered.split_once('/'),
        (0, 1) => lowered.split_once("per"),
        _ => None,
    }
}

fn parse_limit(limit: &str, input: &str) -> Result<u64, ParseRateError> {
    let owned = || (limit.to_owned(), input.to_owned());
    if limit.is_empty() {
        return Err(ParseRateError::Format {
            input: input.to_owned(),
        });
    }
    if limit.bytes().all(|b| b.is_ascii_digit()) {
        return limit.parse().map_err(|_| {
            let (limit, input) = owned();
            ParseRateError::LimitTooLarge { limit, input }
        });
    }
    let (limit, input) = owned();
    Err(classify_number(&limit).map_or(
        ParseRateError::InvalidLimit {
            limit: limit.clone(),
            input: input.clone(),
        },
        |problem| match problem {
            NumberProblem::Negative => ParseRateError::NegativeLimit {
                limit: limit.clone(),
                input: input.clone(),
            },
            NumberProblem::Fractional => ParseRateError::FractionalLimit {
                limit: limit.clone(),
                input: input.clone(),
            },
        },
    ))
}

fn parse_period(period: &str, input: &str) -> Result<u64, ParseRateError> {
    let owned = || (period.to_owned(), input.to_owned());
    let digits_end = period
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(period.len());
    let (count, rest) = period.split_at(digits_end);
    let unit = rest.trim_start();
    let unit_is_letters = !unit.is_empty() && unit.bytes().all(|b| b.is_ascii_lowercase());
    if !unit_is_letters {
        let (period, input) = owned();
        return Err(match classify_number(&period) {
            Some(NumberProblem::Negative) => ParseRateError::NegativePeriod { period, input },
            Some(NumberProblem::Fractional) => ParseRateError::FractionalPeriod { period, input },
            None => ParseRateError::InvalidPeriod { period, input },
        });
    }
    let Some(unit_ms) = unit_millis(unit) else {
        return Err(ParseRateError::UnknownUnit {
            unit: unit.to_owned(),
            input: input.to_owned(),
        });
    };
    let count: u64 = if count.is_empty() {
        1
    } else {
        count.parse().map_err(|_| {
            let (period, input) = owned();
            ParseRateError::PeriodTooLong { period, input }
        })?
    };
    if count == 0 {
        let (period, input) = owned();
        return Err(ParseRateError::ZeroPeriod { period, input });
    }
    count.checked_mul(unit_ms).ok_or_else(|| {
        let (period, input) = owned();
        ParseRateError::PeriodTooLong { period, input }
    })
}

fn unit_millis(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => MS_PER_SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MS_PER_MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => MS_PER_HOUR,
        "d" | "day" | "days" => MS_PER_DAY,
        _ => return None,
    })
}

enum NumberProblem {
    Negative,
    Fractional,
}

/// Recognises what a user probably meant by a malformed number, for a precise message.
fn classify_number(text: &str) -> Option<NumberProblem> {
    let digits_or_dot = |s: &str| {
        s.chars()
            .take_while(|c| !c.is_ascii_alphabetic() && !c.is_whitespace())
            .all(|c| c.is_ascii_digit() || c == '.')
    };
    if let Some(rest) = text.strip_prefix('-')
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && digits_or_dot(rest)
    {
        return Some(NumberProblem::Negative);
    }
    let number: &str = text
        .split(|c: char| c.is_ascii_alphabetic() || c.is_whitespace())
        .next()
        .unwrap_or("");
    let mut parts = number.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(whole), Some(fraction), None)
            if !whole.is_empty()
                && !fraction.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(NumberProblem::Fractional)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Rate;
    use super::*;
    use proptest::prelude::*;

    fn rate(input: &str) -> Rate {
        input
            .parse()
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
    }

    fn err(input: &str) -> ParseRateError {
        input
            .parse::<Rate>()
            .expect_err(&format!("{input:?} should be rejected"))
    }

    #[test]
    fn parses_every_reference_format() {
        assert_eq!(rate("5/m"), Rate::per_millis(5, 60_000));
        assert_eq!(rate("2/5s"), Rate::per_millis(2, 5_000));
        assert_eq!(rate("10/30 seconds"), Rate::per_millis(10, 30_000));
        assert_eq!(rate("1000/500ms"), Rate::per_millis(1000, 500));
        assert_eq!(rate("20 per 2 mins"), Rate::per_millis(20, 120_000));
        assert_eq!(rate("2 per second"), Rate::per_second(2));
        assert_eq!(rate("2 persecond"), Rate::per_second(2));
        assert_eq!(rate("10000/d"), Rate::per_day(10_000));
        assert_eq!(rate("  10  /  5s  "), Rate::per_millis(10, 5_000));
        assert_eq!(rate("5/S"), Rate::per_second(5));
        assert_eq!(rate("5 PER 10 MINUTES"), Rate::per_millis(5, 600_000));
    }

    #[test]
    fn accepts_every_unit_alias() {
        for (unit, ms) in [
            ("ms", 1),
            ("millisecond", 1),
            ("milliseconds", 1),
            ("s", 1_000),
            ("sec", 1_000),
            ("secs", 1_000),
            ("second", 1_000),
            ("seconds", 1_000),
            ("m", 60_000),
            ("min", 60_000),
            ("mins", 60_000),
            ("minute", 60_000),
            ("minutes", 60_000),
            ("h", 3_600_000),
            ("hr", 3_600_000),
            ("hrs", 3_600_000),
            ("hour", 3_600_000),
            ("hours", 3_600_000),
            ("d", 86_400_000),
            ("day", 86_400_000),
            ("days", 86_400_000),
        ] {
            assert_eq!(rate(&format!("3/{unit}")).period_ms(), ms, "unit {unit}");
            assert_eq!(
                rate(&format!("3/2 {unit}")).period_ms(),
                2 * ms,
                "unit {unit}"
            );
        }
    }

    #[test]
    fn unlimited_is_spelled_two_ways() {
        assert_eq!(rate("unlimited"), Rate::UNLIMITED);
        assert_eq!(rate(" UNLIMITED "), Rate::UNLIMITED);
        assert_eq!(rate("0/0"), Rate::UNLIMITED);
        assert_eq!(rate("0 / 0"), Rate::UNLIMITED);
    }

    #[test]
    fn rejects_bad_input_with_a_message_naming_the_part() {
        assert_eq!(err(""), ParseRateError::Empty);
        assert_eq!(err("   "), ParseRateError::Empty);
        assert!(matches!(err("5s"), ParseRateError::Format { .. }));
        assert!(matches!(err("5/10/s"), ParseRateError::Format { .. }));
        assert!(matches!(err("/s"), ParseRateError::Format { .. }));
        assert!(
            matches!(err("abc/s"), ParseRateError::InvalidLimit { limit, .. } if limit == "abc")
        );
        assert!(
            matches!(err("-5/s"), ParseRateError::NegativeLimit { limit, .. } if limit == "-5")
        );
        assert!(
            matches!(err("5.5/s"), ParseRateError::FractionalLimit { limit, .. } if limit == "5.5")
        );
        assert!(matches!(err("5/"), ParseRateError::MissingPeriod { .. }));
        assert!(matches!(err("5/x"), ParseRateError::UnknownUnit { unit, .. } if unit == "x"));
        assert!(
            matches!(err("5/5.5s"), ParseRateError::FractionalPeriod { period, .. } if period == "5.5s")
        );
        assert!(matches!(err("5/0s"), ParseRateError::ZeroPeriod { period, .. } if period == "0s"));
        assert!(
            matches!(err("5/-5s"), ParseRateError::NegativePeriod { period, .. } if period == "-5s")
        );
        assert!(
            matches!(err("5/5s@"), ParseRateError::InvalidPeriod { period, .. } if period == "5s@")
        );
        assert!(matches!(err("0/s"), ParseRateError::ZeroLimit { .. }));
        assert!(matches!(
            err("99999999999999999999/s"),
            ParseRateError::LimitTooLarge { .. }
        ));
        assert!(matches!(
            err("5/99999999999999999999ms"),
            ParseRateError::PeriodTooLong { .. }
        ));
        assert!(matches!(
            err("5/9999999999999999d"),
            ParseRateError::PeriodTooLong { .. }
        ));
    }

    #[test]
    fn messages_quote_the_offending_part() {
        assert!(err("abc/s").to_string().contains("`abc`"));
        assert!(err("5/5s@").to_string().contains("`5s@`"));
        let unknown = err("5/x").to_string();
        assert!(
            unknown.contains("`x`") && unknown.contains("valid units: ms"),
            "{unknown}"
        );
        assert!(err("5/x").to_string().contains("`5/x`"));
    }

    fn any_rate() -> impl Strategy<Value = Rate> {
        prop_oneof![
            Just(Rate::UNLIMITED),
            (1u64..=u64::MAX, 1u64..=u64::MAX).prop_map(|(l, p)| Rate::per_millis(l, p)),
            (
                1u64..10_000,
                1u64..1_000,
                prop::sample::select(vec![1u64, 1_000, 60_000, 3_600_000, 86_400_000])
            )
                .prop_map(|(l, n, unit)| Rate::per_millis(l, n * unit)),
        ]
    }

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_rate(rate in any_rate()) {
            prop_assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate));
        }

        #[test]
        fn arbitrary_strings_never_panic(input in any::<String>()) {
            let _ = input.parse::<Rate>();
        }

        #[test]
        fn rate_shaped_strings_never_panic(input in "[ 0-9./a-zA-Z-]{0,24}") {
            let _ = input.parse::<Rate>();
        }
    }
}
