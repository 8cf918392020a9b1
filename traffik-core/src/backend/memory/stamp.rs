//! [`Stamp`]: when a typed table's entry expires and the latest time a decision on it used,
//! in one word.

use crate::Millis;

/// An entry's expiry, in whole seconds rounded up (never early), and how many milliseconds
/// before it the entry's latest decision ran: 8 bytes where the general map spends 16.
///
/// The latest time is exact when it lies less than 2³² − 1 ms (49 days) before the expiry, as
/// every decision's does unless the window or period is longer; beyond that it reads as 0 (the
/// entry then gets no clamp against a clock read a moment earlier, never a time moved forward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    expires_s: u32,
    back_ms: u32,
}

impl Stamp {
    /// An entry whose state expires at `expires_at` (ms), last decided at `seen` (ms).
    #[inline]
    pub(super) fn new(expires_at: Millis, seen: Millis) -> Self {
        let expires_s = u32::try_from(expires_at.div_ceil(1_000)).unwrap_or(u32::MAX);
        let back = (u64::from(expires_s) * 1_000).saturating_sub(seen);
        Stamp {
            expires_s,
            back_ms: u32::try_from(back).unwrap_or(u32::MAX),
        }
    }

    /// When the entry expires (ms, at most 999 ms after its state's true expiry).
    #[inline]
    pub(super) fn expires_at(self) -> Millis {
        u64::from(self.expires_s) * 1_000
    }

    /// The latest time a decision on the entry used (ms).
    #[inline]
    pub(super) fn seen(self) -> Millis {
        if self.back_ms == u32::MAX {
            return 0;
        }
        self.expires_at().saturating_sub(u64::from(self.back_ms))
    }

    /// Whether the entry still matters at `now`. An expiry past 2³² s (the year 2106, or a
    /// window that never ends) is kept as "never".
    #[inline]
    pub(super) fn is_live(self, now: Millis) -> bool {
        self.expires_s == u32::MAX || self.expires_at() > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_time_exactly_and_rounds_the_expiry_up() {
        let stamp = Stamp::new(1_700_000_000_001, 1_699_999_999_000);
        assert_eq!(stamp.expires_at(), 1_700_000_001_000);
        assert_eq!(stamp.seen(), 1_699_999_999_000);
        assert!(stamp.is_live(1_700_000_000_999));
        assert!(!stamp.is_live(1_700_000_001_000));
    }

    #[test]
    fn a_far_expiry_never_moves_the_latest_time_forward() {
        let seen = 1_000;
        let stamp = Stamp::new(seen + 100 * 86_400_000, seen);
        assert!(stamp.seen() <= seen);
        let never = Stamp::new(Millis::MAX, 5);
        assert_eq!(never.seen(), 0);
        assert!(never.is_live(4_000_000_000_000));
    }
}
