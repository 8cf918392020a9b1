//! Exact integer arithmetic for rates whose per-millisecond refill is a fraction.
//!
//! A rate of `L` units per `W` ms refills `L / W` units per ms. With `g = gcd(L, W)`, one unit
//! is `W / g` *scaled* units and each millisecond adds `L / g` of them, so every quantity is an
//! integer and no rounding ever happens: Rust and a Lua script compute identical results.

use crate::Rate;

/// A rate expressed in scaled integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scale {
    /// Scaled units in one whole unit (token, request, cell).
    pub(crate) per_unit: u64,
    /// Scaled units gained (refilled, leaked) per millisecond.
    pub(crate) per_ms: u64,
}

impl Scale {
    #[inline]
    pub(crate) fn of(rate: &Rate) -> Scale {
        let (per_unit, per_ms) = rate.reduced();
        Scale { per_unit, per_ms }
    }

    /// `units` whole units in scaled units (saturating at `i128::MAX`, far beyond any exact
    /// rate: the strategies refuse rates past [`EXACT_LIMIT`] at build).
    #[inline]
    pub(crate) fn scaled(&self, units: u64) -> i128 {
        i128::from(units).saturating_mul(i128::from(self.per_unit))
    }

    /// Scaled units gained over `elapsed_ms` (saturating).
    #[inline]
    pub(crate) fn gained(&self, elapsed_ms: u64) -> i128 {
        i128::from(elapsed_ms).saturating_mul(i128::from(self.per_ms))
    }

    /// Whole milliseconds needed to gain `scaled` units (rounded up; 0 for `scaled <= 0`).
    #[inline]
    pub(crate) fn ms_to_gain(&self, scaled: i128) -> u128 {
        if scaled <= 0 {
            0
        } else {
            scaled.cast_unsigned().div_ceil(u128::from(self.per_ms))
        }
    }

    /// Whole units in `scaled` (rounded down; 0 for negatives).
    #[inline]
    pub(crate) fn whole_units(&self, scaled: i128) -> u64 {
        if scaled <= 0 {
            0
        } else {
            u64::try_from(scaled / i128::from(self.per_unit)).unwrap_or(u64::MAX)
        }
    }

    /// Fractional units in `scaled`, for reporting.
    #[allow(clippy::cast_precision_loss)] // reporting only: approximate above 2^53 is fine
    pub(crate) fn units_f64(&self, scaled: i128) -> f64 {
        scaled as f64 / self.per_unit as f64
    }

    /// Units gained per millisecond, for reporting.
    #[allow(clippy::cast_precision_loss)] // reporting only: approximate above 2^53 is fine
    pub(crate) fn rate_per_ms(&self) -> f64 {
        self.per_ms as f64 / self.per_unit as f64
    }

    /// Re-expresses `scaled` (stored under `from_per_unit`) in this scale, rounding towards
    /// the client's disadvantage (`round_up` for amounts owed, down for amounts available).
    pub(crate) fn rescale(&self, scaled: i128, from_per_unit: u64, round_up: bool) -> i128 {
        if from_per_unit == self.per_unit || from_per_unit == 0 {
            return scaled;
        }
        let num = scaled * i128::from(self.per_unit);
        let den = i128::from(from_per_unit);
        if round_up {
            div_ceil_i128(num, den)
        } else {
            num.div_euclid(den)
        }
    }
}

fn div_ceil_i128(num: i128, den: i128) -> i128 {
    -((-num).div_euclid(den))
}

/// Largest scaled magnitude a Lua script (IEEE doubles) represents exactly: 2^53.
pub(crate) const EXACT_LIMIT: i128 = 1 << 53;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rate::gcd;

    #[test]
    fn binary_gcd_matches_euclid() {
        fn euclid(mut a: u64, mut b: u64) -> u64 {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        }
        for (a, b) in [
            (0, 0),
            (0, 7),
            (7, 0),
            (12, 18),
            (1_000, 60_000),
            (999_983, 1_000),
            (u64::MAX, 3),
            (1 << 40, 1 << 20),
        ] {
            assert_eq!(gcd(a, b), euclid(a, b), "gcd({a}, {b})");
        }
    }

    #[test]
    fn reduces_by_the_gcd() {
        assert_eq!(
            Scale::of(&Rate::per_minute(100)),
            Scale {
                per_unit: 600,
                per_ms: 1
            }
        );
        assert_eq!(
            Scale::of(&Rate::per_second(3)),
            Scale {
                per_unit: 1000,
                per_ms: 3
            }
        );
        assert_eq!(
            Scale::of(&Rate::per_millis(1000, 500)),
            Scale {
                per_unit: 1,
                per_ms: 2
            }
        );
    }

    #[test]
    fn waits_round_up_and_units_round_down() {
        let scale = Scale::of(&Rate::per_second(3)); // 1 unit = 1000 scaled, 3 per ms
        assert_eq!(scale.ms_to_gain(1000), 334);
        assert_eq!(scale.whole_units(2999), 2);
        assert_eq!(scale.ms_to_gain(-5), 0);
    }

    #[test]
    fn rescaling_never_favours_the_client() {
        let scale = Scale::of(&Rate::per_second(3)); // per_unit 1000
        // 1.5 units stored with per_unit 2 is 3 scaled; in per_unit 1000 it is 1500.
        assert_eq!(scale.rescale(3, 2, false), 1500);
        // 1 scaled unit of 3 per-unit is a third: down to 333 when available, up to 334 when owed.
        assert_eq!(scale.rescale(1, 3, false), 333);
        assert_eq!(scale.rescale(1, 3, true), 334);
        assert_eq!(scale.rescale(-1, 3, false), -334);
    }
}
