//! The key memcached stores a state under: the storage key behind the namespace's generation,
//! hashed when memcached could not take it.

/// The longest key memcached takes.
const MAX_KEY_LEN: usize = 250;

/// `g{generation}:{key}`, or, when that is longer than memcached takes or holds a byte its
/// protocol cannot carry (memcached keys are printable ASCII without spaces),
/// `h:{SHA-256 of it}` (the namespace and generation are inside what is hashed).
pub(super) fn stored_key(generation: u64, key: &str) -> String {
    let stored = format!("g{generation}:{key}");
    if stored.len() <= MAX_KEY_LEN && stored.bytes().all(|byte| (0x21..0x7f).contains(&byte)) {
        return stored;
    }
    let mut hashed = String::with_capacity(66);
    hashed.push_str("h:");
    crate::key::push_sha256_hex(&mut hashed, stored.as_bytes());
    hashed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_generation_and_long_or_odd_keys_are_hashed() {
        assert_eq!(stored_key(7, "shop:api:{a}:gcra"), "g7:shop:api:{a}:gcra");
        let long = format!("shop:api:{{{}}}:gcra", "x".repeat(300));
        let hashed = stored_key(7, &long);
        assert!(hashed.starts_with("h:") && hashed.len() == 66, "{hashed}");
        assert_ne!(hashed, stored_key(8, &long), "the generation is hashed too");
        assert!(
            stored_key(7, "a b").starts_with("h:"),
            "a space cannot be in a key"
        );
        assert!(
            stored_key(7, "é").starts_with("h:"),
            "nor a byte past ASCII"
        );
    }
}
