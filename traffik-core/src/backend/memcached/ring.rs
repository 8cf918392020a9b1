//! [`Ring`]: which server holds a key, by rendezvous (highest random weight) hashing.
//!
//! Each server gets a score per key, and the key goes to the highest. Adding a server moves
//! only the keys it now wins (about 1/N of them); removing one moves only its own keys. The
//! hash is SHA-256 of the key, mixed with each server's seed by the SplitMix64 finalizer: the
//! same in every process, build and platform, so a fleet agrees on where each key lives.

use sha2::{Digest, Sha256};

/// The servers' seeds, in the order the servers were given.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    seeds: Vec<u64>,
}

impl Ring {
    /// A ring over servers named by `names` (their addresses): the name, not the position,
    /// seeds each server, so reordering the list moves no key.
    pub(super) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Ring {
        Ring {
            seeds: names.into_iter().map(hash).collect(),
        }
    }

    /// The index of the server holding `key`.
    pub(super) fn server_for(&self, key: &str) -> usize {
        if self.seeds.len() == 1 {
            return 0;
        }
        let key = hash(key);
        self.seeds
            .iter()
            .enumerate()
            .max_by_key(|&(_, &seed)| (mix(key ^ seed), seed))
            .map_or(0, |(index, _)| index)
    }
}

/// The first 8 bytes of SHA-256, as a number.
fn hash(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// SplitMix64's finalizer: spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        (0..10_000)
            .map(|i| format!("traffik:api:client-{i}"))
            .collect()
    }

    #[test]
    fn keys_spread_evenly() {
        let ring = Ring::new(["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]);
        let mut counts = [0; 3];
        for key in keys() {
            counts[ring.server_for(&key)] += 1;
        }
        for count in counts {
            assert!((3_000..3_700).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn adding_a_server_moves_only_the_keys_it_wins() {
        let three = Ring::new(["a:1", "b:1", "c:1"]);
        let four = Ring::new(["a:1", "b:1", "c:1", "d:1"]);
        let mut moved = 0;
        for key in keys() {
            let before = three.server_for(&key);
            let after = four.server_for(&key);
            if before != after {
                assert_eq!(after, 3, "a key moved between the old servers");
                moved += 1;
            }
        }
        // About a quarter of the keys go to the new server.
        assert!((2_100..2_900).contains(&moved), "{moved}");
    }

    #[test]
    fn the_order_of_the_servers_does_not_matter() {
        let one = Ring::new(["a:1", "b:1", "c:1"]);
        let other = Ring::new(["c:1", "a:1", "b:1"]);
        let names = ["a:1", "b:1", "c:1"];
        let reordered = ["c:1", "a:1", "b:1"];
        for key in keys().iter().take(1_000) {
            assert_eq!(names[one.server_for(key)], reordered[other.server_for(key)]);
        }
    }

    #[test]
    fn the_placement_is_stable_across_builds() {
        // Pinned: a change here would split a fleet running two versions of traffik.
        let ring = Ring::new(["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]);
        let placed: Vec<usize> = ["a", "b", "traffik:api:alice", "traffik:api:bob"]
            .iter()
            .map(|key| ring.server_for(key))
            .collect();
        assert_eq!(placed, PINNED);
    }

    const PINNED: [usize; 4] = [1, 0, 0, 1];
}
