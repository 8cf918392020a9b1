//! [`Tail`]: the part of a storage key that differs between a throttle's clients, as a typed
//! table keys its entries by it.
//!
//! A storage key is `{namespace}:{uid}:{{identity}}[:{scope}]:{strategy}`
//! ([`key`](crate::key)). Everything but the identity and the scope is the same for every client
//! of one throttle, so a table holds it once and keys its entries by the tail: the escaped
//! identity alone, or `identity}:scope` when there is a scope. An escaped identity never holds a
//! `}`, so the two forms cannot meet.

use std::hash::BuildHasher;

/// Tails up to this many bytes are stored inline: an IPv4 address of up to 14 characters
/// (`10.255.255.255`; `255.255.255.255` is 15 and goes out of line), a short user id or key.
const INLINE: usize = 14;

/// A tail as an entry stores it: 16 bytes, inline up to [`INLINE`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Tail {
    /// The length, then the bytes, zero-padded: the low 15 bytes of [`Words::packed`].
    Short([u8; INLINE + 1]),
    Long(Box<Box<[u8]>>),
}

const _: () = assert!(size_of::<Tail>() == 16);

/// A short tail as two overlapping little-endian words of its stored form: bytes 0–7 and
/// 7–14. Built from the input with a few wide loads (no byte-by-byte copy that a wide read
/// would then stall on), compared with two word comparisons.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Words {
    low: u64,
    high: u64,
}

impl Words {
    /// The stored form of `bytes` (at most [`INLINE`]) as one number: the length in the low
    /// byte, the bytes above it, zeros beyond.
    #[inline]
    fn packed(bytes: &[u8]) -> u128 {
        let len = bytes.len();
        let padded: u128 = if len >= 8 {
            let first = u64::from_le_bytes(word(bytes, 0));
            let last = u64::from_le_bytes(word(bytes, len - 8));
            u128::from(first) | (u128::from(last) << (8 * (len - 8)))
        } else if len >= 4 {
            let first = u32::from_le_bytes(half(bytes, 0));
            let last = u32::from_le_bytes(half(bytes, len - 4));
            u128::from(first) | (u128::from(last) << (8 * (len - 4)))
        } else {
            bytes.iter().enumerate().fold(0, |packed, (i, &byte)| {
                packed | (u128::from(byte) << (8 * i))
            })
        };
        (padded << 8) | len as u128
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation)] // the two words are cut out of the 128 bits
    fn of_packed(packed: u128) -> Self {
        Words {
            low: packed as u64,
            high: (packed >> 56) as u64,
        }
    }

    #[inline]
    fn of_stored(stored: &[u8; INLINE + 1]) -> Self {
        Words {
            low: u64::from_le_bytes(word(stored, 0)),
            high: u64::from_le_bytes(word(stored, 7)),
        }
    }
}

/// Eight bytes of `bytes` from `at` (the caller checked the length).
#[inline]
fn word(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[at..at + 8]);
    out
}

/// Four bytes of `bytes` from `at` (the caller checked the length).
#[inline]
fn half(bytes: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(&bytes[at..at + 4]);
    out
}

/// A tail looked up: the words of a short one, or the bytes of a long one.
#[derive(Clone, Copy)]
pub(super) enum TailRef<'a> {
    Short(Words),
    Long(&'a [u8]),
}

impl<'a> TailRef<'a> {
    #[inline]
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        if bytes.len() <= INLINE {
            TailRef::Short(Words::of_packed(Words::packed(bytes)))
        } else {
            TailRef::Long(bytes)
        }
    }

    /// The tail's hash under `hasher`.
    #[inline]
    pub(super) fn hash(&self, hasher: &impl BuildHasher) -> u64 {
        match self {
            TailRef::Short(words) => hasher.hash_one((words.low, words.high)),
            TailRef::Long(bytes) => hasher.hash_one(bytes),
        }
    }

    /// Whether `stored` is this tail.
    #[inline]
    pub(super) fn matches(&self, stored: &Tail) -> bool {
        match (self, stored) {
            (TailRef::Short(query), Tail::Short(stored)) => *query == Words::of_stored(stored),
            (TailRef::Long(query), Tail::Long(stored)) => **query == ***stored,
            _ => false,
        }
    }

    /// The stored form.
    pub(super) fn to_tail(self) -> Tail {
        match self {
            TailRef::Short(words) => {
                let mut stored = [0; INLINE + 1];
                stored[..8].copy_from_slice(&words.low.to_le_bytes());
                stored[7..].copy_from_slice(&words.high.to_le_bytes());
                Tail::Short(stored)
            }
            TailRef::Long(bytes) => Tail::Long(Box::new(Box::from(bytes))),
        }
    }
}

impl Tail {
    /// The tail looked up as itself (to rehash it, or to remove it).
    #[inline]
    pub(super) fn as_ref(&self) -> TailRef<'_> {
        match self {
            Tail::Short(stored) => TailRef::Short(Words::of_stored(stored)),
            Tail::Long(bytes) => TailRef::Long(bytes),
        }
    }

    /// The tail's bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Tail::Short(stored) => &stored[1..=usize::from(stored[0])],
            Tail::Long(bytes) => bytes,
        }
    }
}

/// The parts of a storage key: the part before the identity (`{namespace}:{uid}:{`) and the
/// tail; `None` for a key of another form (which the general map keeps).
///
/// Read from the end, where the parts are short: the strategy's name, then the last `}` (the
/// identity's, since a scope is escaped), then the `{` before it. A namespace and a uid hold no
/// brace, nor does an escaped identity, so a key a throttle writes always splits where the
/// throttle's own [`Lane`](super::lane::Lane) cuts it.
#[inline]
pub(super) fn split_key<'k>(key: &'k str, strategy: &str) -> Option<(&'k str, &'k [u8])> {
    let body = key.strip_suffix(strategy)?.strip_suffix(':')?.as_bytes();
    let close = body.iter().rposition(|&byte| byte == b'}')?;
    let open = body[..close].iter().rposition(|&byte| byte == b'{')?;
    // A `}` inside the braces would let two keys split alike (`a}:s` is also identity `a` with
    // scope `s`): such a key is not one a throttle writes, and stays in the general map.
    if body[open + 1..close].contains(&b'}') {
        return None;
    }
    let tail = match &body[close + 1..] {
        [] => &body[open + 1..close],
        [b':', ..] => &body[open + 1..],
        _ => return None,
    };
    Some((&key[..=open], tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::storage_key;

    #[test]
    fn splits_storage_keys_into_outer_part_and_tail() {
        let key = storage_key("ns", "api", "10.0.0.1", None, "gcra");
        assert_eq!(
            split_key(&key, "gcra"),
            Some(("ns:api:{", &b"10.0.0.1"[..]))
        );
        let key = storage_key("ns", "api", "::1", Some("GET /x"), "gcra");
        assert_eq!(
            split_key(&key, "gcra"),
            Some(("ns:api:{", &b"%3A%3A1}:GET%20/x"[..]))
        );
        assert_eq!(split_key(&key, "fixed-window"), None);
        assert_eq!(split_key("plain-key", "gcra"), None);
        assert_eq!(split_key("a:{b}x:gcra", "gcra"), None);
        assert_eq!(split_key("a:b}:gcra", "gcra"), None);
        // Two strings never share a split: this one is not identity `a` with scope `s`.
        assert_eq!(
            split_key("ns:api:{a}:s}:fixed-window", "fixed-window"),
            None
        );
        // Whatever the form, a key splits one way only.
        assert_eq!(
            split_key("a:{b}:{c}:gcra", "gcra"),
            Some(("a:{b}:{", &b"c"[..]))
        );
    }

    #[test]
    fn short_and_long_tails_compare_and_hash_by_their_bytes() {
        let hasher = foldhash::fast::RandomState::default();
        for bytes in [&b"10.0.0.1"[..], b"", b"12345678901234", b"123456789012345"] {
            let query = TailRef::new(bytes);
            let stored = query.to_tail();
            assert!(query.matches(&stored));
            assert_eq!(stored.bytes(), bytes);
            assert_eq!(query.hash(&hasher), stored.as_ref().hash(&hasher));
        }
        // Every length, every position of a differing byte.
        let source: Vec<u8> = (1..=20).collect();
        for len in 0..=20 {
            let tail = TailRef::new(&source[..len]).to_tail();
            assert_eq!(tail.bytes(), &source[..len]);
            for at in 0..len {
                let mut other = source[..len].to_vec();
                other[at] = 0;
                assert!(!TailRef::new(&other).matches(&tail), "{len} {at}");
            }
            assert!(len == 0 || !TailRef::new(&source[..len - 1]).matches(&tail));
        }
        assert!(!TailRef::new(b"10.0.0.1").matches(&TailRef::new(b"10.0.0.2").to_tail()));
        assert!(!TailRef::new(b"10.0.0.1").matches(&TailRef::new(b"10.0.0.1\0").to_tail()));
    }
}
