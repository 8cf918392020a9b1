//! Storage keys: `{namespace}:{uid}:{{identity}}[:{scope}]:{strategy}`.
//!
//! The identity is the Redis Cluster hash tag (`{…}`), so every key of one client lands in one
//! slot. Identities and scopes are percent-escaped (only `A–Z a–z 0–9 . _ ~ - /` pass through),
//! so no input can inject a `:` or a brace and collide with another key; one longer than
//! [`MAX_ESCAPED_LEN`] bytes once escaped is replaced by `#` + its SHA-256 (64 hex digits),
//! which bounds every key. Namespaces and uids are validated (letters, digits, `.`, `_`, `-`,
//! `/` and `:`) and written with `:` as `%3A`, so a separator can only ever be one: namespace
//! `a:b` with uid `c` and namespace `a` with uid `b:c` are different keys, and a namespace's
//! [`namespace_prefix`] never covers another namespace's keys.

use std::cell::RefCell;
use std::fmt::Write;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::ConfigError;

/// The longest escaped identity or scope kept as is; longer ones are hashed.
pub const MAX_ESCAPED_LEN: usize = 128;
/// The longest namespace or uid.
pub const MAX_NAME_LEN: usize = 64;

/// Writes the storage key into `out` (cleared first); see [`storage_key`].
pub fn write_storage_key(
    out: &mut String,
    namespace: &str,
    uid: &str,
    identity: &str,
    scope: Option<&str>,
    strategy: &str,
) {
    write_key(
        out,
        namespace,
        uid,
        KeyIdentity::Text(identity),
        scope,
        strategy,
    );
}

/// The identity part of a key, as the throttle holds it: text, or an address written into the
/// key directly (the same bytes as its text, without formatting it first).
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyIdentity<'a> {
    Text(&'a str),
    Address(IpAddr),
}

/// [`write_storage_key`] for a [`KeyIdentity`].
pub(crate) fn write_key(
    out: &mut String,
    namespace: &str,
    uid: &str,
    identity: KeyIdentity<'_>,
    scope: Option<&str>,
    strategy: &str,
) {
    out.clear();
    push_name(out, namespace);
    out.push(':');
    push_name(out, uid);
    out.push_str(":{");
    push_tail(out, identity, scope);
    out.push(':');
    out.push_str(strategy);
}

/// The storage key of a client's state: where a backend keeps it.
///
/// ```
/// use traffik_core::key::storage_key;
///
/// assert_eq!(storage_key("traffik", "api", "10.0.0.1", None, "gcra"), "traffik:api:{10.0.0.1}:gcra");
/// assert_eq!(storage_key("traffik", "api", "2001:db8::1", Some("GET /items"), "gcra"), "traffik:api:{2001%3Adb8%3A%3A1}:GET%20/items:gcra");
/// ```
#[must_use]
pub fn storage_key(
    namespace: &str,
    uid: &str,
    identity: &str,
    scope: Option<&str>,
    strategy: &str,
) -> String {
    let mut key =
        String::with_capacity(namespace.len() + uid.len() + identity.len() + strategy.len() + 8);
    write_storage_key(&mut key, namespace, uid, identity, scope, strategy);
    key
}

thread_local! {
    static KEY_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with a reusable per-thread buffer to write a key in (a fresh one if the buffer is in
/// use): no allocation per key once the buffer has grown.
#[inline]
pub(crate) fn with_key_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    KEY_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => f(&mut buffer),
        Err(_) => f(&mut String::new()),
    })
}

/// Which bytes pass through unescaped: `A–Z a–z 0–9 . _ ~ - /` (nothing that separates key
/// parts, nothing a Redis hash tag forbids, and no space or control character, which keyed
/// stores such as Memcached refuse).
const PASSES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let byte = i as u8;
        table[i] = byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'~' | b'-' | b'/');
        i += 1;
    }
    table
};

#[inline]
fn passes(byte: u8) -> bool {
    PASSES[byte as usize]
}

/// The parts of a throttle's keys that do not change from hit to hit on one backend:
/// `{namespace}:{uid}:{` and `:{strategy}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyTemplate {
    prefix: String,
    suffix: String,
}

impl KeyTemplate {
    pub(crate) fn new(namespace: &str, uid: &str, strategy: &str) -> Self {
        let mut prefix = String::with_capacity(namespace.len() + uid.len() + 3);
        push_name(&mut prefix, namespace);
        prefix.push(':');
        push_name(&mut prefix, uid);
        prefix.push_str(":{");
        KeyTemplate {
            prefix,
            suffix: format!(":{strategy}"),
        }
    }

    /// `{namespace}:{uid}:{`: the part of every key before the identity.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Writes the key of `identity` (and `scope`) into `out` (cleared first).
    #[inline]
    pub(crate) fn write(&self, out: &mut String, identity: KeyIdentity<'_>, scope: Option<&str>) {
        out.clear();
        out.push_str(&self.prefix);
        push_tail(out, identity, scope);
        out.push_str(&self.suffix);
    }
}

/// A validated namespace or uid, with `:` written as `%3A` (no other byte of a valid name needs
/// escaping, and `%` is not allowed in one, so the escape cannot be forged).
fn push_name(out: &mut String, name: &str) {
    let mut parts = name.split(':');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        out.push_str("%3A");
        out.push_str(part);
    }
}

/// The prefix of every key stored under `namespace` (`{namespace}:`, with `:` inside the
/// namespace escaped): what a namespace-wide `reset` deletes, and nothing of another namespace.
///
/// ```
/// use traffik_core::key::{namespace_prefix, storage_key};
///
/// assert_eq!(namespace_prefix("myapp:prod"), "myapp%3Aprod:");
/// assert!(storage_key("myapp:prod", "api", "1.2.3.4", None, "gcra").starts_with(&namespace_prefix("myapp:prod")));
/// assert!(!storage_key("myapp:prod", "api", "1.2.3.4", None, "gcra").starts_with(&namespace_prefix("myapp")));
/// ```
#[must_use]
pub fn namespace_prefix(namespace: &str) -> String {
    let mut prefix = String::with_capacity(namespace.len() + 4);
    push_name(&mut prefix, namespace);
    prefix.push(':');
    prefix
}

/// `{identity}` closed, then `:{scope}` when there is one.
#[inline]
fn push_tail(out: &mut String, identity: KeyIdentity<'_>, scope: Option<&str>) {
    push_identity(out, identity);
    out.push('}');
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        out.push(':');
        push_component(out, scope);
    }
}

/// The identity, escaped.
#[inline]
fn push_identity(out: &mut String, identity: KeyIdentity<'_>) {
    match identity {
        KeyIdentity::Text(text) => push_component(out, text),
        // Digits and dots all pass through unescaped.
        KeyIdentity::Address(IpAddr::V4(ip)) => push_ipv4(out, ip.octets()),
        KeyIdentity::Address(ip @ IpAddr::V6(_)) => {
            push_component(out, crate::identity::AddressText::of(ip).as_str());
        }
    }
}

/// The part of a storage key after `{namespace}:{uid}:{` and before `:{strategy}`, as the
/// in-memory backend's typed tables key their entries: the escaped identity alone, or followed
/// by `}:{scope}` when there is a scope (an escaped identity holds no `}`, so the forms cannot
/// meet). Written into `out` (cleared first).
#[cfg_attr(not(feature = "memory"), allow(dead_code))]
pub(crate) fn write_tail(out: &mut String, identity: KeyIdentity<'_>, scope: Option<&str>) {
    out.clear();
    push_identity(out, identity);
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        out.push_str("}:");
        push_component(out, scope);
    }
}

/// Whether `text` goes into a key as it is (nothing to escape, not too long to keep).
#[inline]
pub(crate) fn is_unescaped(text: &str) -> bool {
    text.len() <= MAX_ESCAPED_LEN && text.bytes().all(passes)
}

/// Dotted decimal, without the formatting machinery.
fn push_ipv4(out: &mut String, octets: [u8; 4]) {
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

/// `%XX`, upper-case hex.
fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

#[inline]
fn push_component(out: &mut String, text: &str) {
    let start = out.len();
    let bytes = text.as_bytes();
    if is_unescaped(text) {
        out.push_str(text);
        return;
    }
    // Copy runs of bytes that pass through in bulk; escape the others. A non-empty run holds
    // only ASCII, so its ends are character boundaries (an empty one may sit inside a
    // multi-byte character, so it is never sliced).
    let mut run = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if passes(byte) {
            continue;
        }
        if i > run {
            out.push_str(&text[run..i]);
        }
        push_escaped(out, byte);
        run = i + 1;
        if out.len() - start > MAX_ESCAPED_LEN {
            break;
        }
    }
    if out.len() - start + (bytes.len() - run.min(bytes.len())) > MAX_ESCAPED_LEN {
        out.truncate(start);
        out.push('#');
        push_sha256_hex(out, bytes);
        return;
    }
    out.push_str(&text[run..]);
}

/// Appends the SHA-256 of `bytes` to `out`, as 64 lowercase hex digits: how a key part too long
/// (or, for a store with narrow keys, a whole key) is replaced.
pub(crate) fn push_sha256_hex(out: &mut String, bytes: &[u8]) {
    for byte in Sha256::digest(bytes) {
        let _ = write!(out, "{byte:02x}");
    }
}

fn validate_name(kind: &'static str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("a {kind} cannot be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("a {kind} is at most {MAX_NAME_LEN} bytes"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')))
    {
        Some(bad) => Err(format!(
            "{bad:?} is not allowed in a {kind} (use letters, digits, `.`, `_`, `-`, `/`, `:`)"
        )),
        None => Ok(()),
    }
}

/// Checks a throttle uid: 1 to 64 bytes of letters, digits, `.`, `_`, `-`, `/` and `:` (the
/// reference's `"api:items"` convention).
///
/// # Errors
///
/// [`ConfigError::InvalidUid`] when `uid` is empty, longer than 64 bytes, or holds a
/// character other than those above.
pub fn validate_uid(uid: &str) -> Result<(), ConfigError> {
    validate_name("uid", uid).map_err(|reason| ConfigError::InvalidUid {
        uid: uid.to_owned(),
        reason,
    })
}

/// Checks a backend namespace.
pub(crate) fn validate_namespace(namespace: &str) -> Result<(), ConfigError> {
    validate_name("namespace", namespace).map_err(|reason| ConfigError::InvalidNamespace {
        namespace: namespace.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lays_out_the_parts_with_the_identity_as_hash_tag() {
        assert_eq!(
            storage_key("ns", "api", "127.0.0.1", None, "gcra"),
            "ns:api:{127.0.0.1}:gcra"
        );
        assert_eq!(
            storage_key("ns", "api", "::1", Some("GET /items/{id}"), "gcra"),
            "ns:api:{%3A%3A1}:GET%20/items/%7Bid%7D:gcra"
        );
        assert_eq!(
            storage_key("ns", "api", "a", Some(""), "fixed-window"),
            "ns:api:{a}:fixed-window"
        );
    }

    #[test]
    fn escapes_anything_that_could_forge_another_key() {
        let forged = storage_key("ns", "api", "x}:other:{y", None, "gcra");
        assert_eq!(forged.matches('{').count(), 1);
        assert_eq!(forged.matches('}').count(), 1);
        assert_ne!(
            storage_key("ns", "api", "a:b", None, "s"),
            storage_key("ns", "api", "a%3Ab", None, "s")
        );
    }

    #[test]
    fn escapes_multi_byte_characters_byte_by_byte() {
        assert_eq!(storage_key("n", "u", "é", None, "s"), "n:u:{%C3%A9}:s");
        assert_eq!(
            storage_key("n", "u", "aé-b€", None, "s"),
            "n:u:{a%C3%A9-b%E2%82%AC}:s"
        );
    }

    #[test]
    fn hashes_long_identities_to_a_bounded_key() {
        let long = "x".repeat(10_000);
        let key = storage_key("ns", "api", &long, None, "gcra");
        assert!(key.len() < 100, "{key}");
        assert!(key.contains("{#"));
        assert_ne!(
            key,
            storage_key("ns", "api", &"x".repeat(9_999), None, "gcra")
        );
        assert_eq!(
            storage_key("ns", "api", &"x".repeat(128), None, "s").len(),
            "ns:api:{}:s".len() + 128
        );
    }

    #[test]
    fn templates_write_the_same_keys() {
        let template = KeyTemplate::new("ns", "api", "gcra");
        let mut key = String::from("leftover");
        for (identity, scope) in [
            ("10.0.0.1", None),
            ("::1", Some("GET /x")),
            ("é", Some("")),
            (&*"y".repeat(300), None),
        ] {
            template.write(&mut key, KeyIdentity::Text(identity), scope);
            assert_eq!(key, storage_key("ns", "api", identity, scope, "gcra"));
        }
    }

    #[test]
    fn addresses_write_the_same_keys_as_their_text() {
        let template = KeyTemplate::new("ns", "api", "fixed");
        let mut key = String::new();
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "192.0.2.7",
            "::1",
            "2001:db8::ff00:42:8329",
        ] {
            let address: IpAddr = ip.parse().unwrap();
            template.write(&mut key, KeyIdentity::Address(address), Some("GET /"));
            assert_eq!(key, storage_key("ns", "api", ip, Some("GET /"), "fixed"));
            write_key(
                &mut key,
                "ns",
                "api",
                KeyIdentity::Address(address),
                None,
                "fixed",
            );
            assert_eq!(key, storage_key("ns", "api", ip, None, "fixed"));
        }
    }

    #[test]
    fn validates_names() {
        assert!(validate_uid("api/v1.search_2-x").is_ok());
        assert!(validate_uid("api:items").is_ok());
        assert!(validate_namespace("myapp:prod").is_ok());
        for bad in ["", "has space", "a%3Ab", "a{b}", "é", &"x".repeat(65)] {
            assert!(validate_uid(bad).is_err(), "{bad:?}");
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn colons_in_names_cannot_forge_another_key() {
        // Namespace `a:b` + uid `c` against namespace `a` + uid `b:c`, and a uid that tries to
        // swallow the hash tag's separator.
        let key = |namespace, uid, identity| storage_key(namespace, uid, identity, None, "s");
        assert_eq!(key("a:b", "c", "x"), "a%3Ab:c:{x}:s");
        assert_eq!(key("a", "b:c", "x"), "a:b%3Ac:{x}:s");
        assert_ne!(key("a:b", "c", "x"), key("a", "b:c", "x"));
        assert_ne!(key("a", "b:", "x"), key("a:b", "", "x"));
        assert_eq!(
            KeyTemplate::new("myapp:prod", "api:items", "s").prefix,
            "myapp%3Aprod:api%3Aitems:{"
        );
        assert!(!key("a:b", "c", "x").starts_with(&namespace_prefix("a")));
        assert!(key("a:b", "c", "x").starts_with(&namespace_prefix("a:b")));
    }

    /// A valid namespace or uid: 1 to 8 of the characters a name may hold.
    fn name() -> impl Strategy<Value = String> {
        "[a-c:./_-]{1,8}"
    }

    proptest! {
        #[test]
        fn distinct_names_and_identities_never_share_a_key(
            a in (name(), name(), any::<String>()),
            b in (name(), name(), any::<String>()),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(
                storage_key(&a.0, &a.1, &a.2, None, "s"),
                storage_key(&b.0, &b.1, &b.2, None, "s")
            );
            // A namespace's reset never reaches another namespace's keys.
            if a.0 != b.0 {
                prop_assert!(!storage_key(&b.0, &b.1, &b.2, None, "s").starts_with(&namespace_prefix(&a.0)));
            }
        }

        #[test]
        fn distinct_identities_never_share_a_key(a in any::<String>(), b in any::<String>()) {
            prop_assume!(a != b);
            prop_assert_ne!(storage_key("n", "u", &a, None, "s"), storage_key("n", "u", &b, None, "s"));
        }

        #[test]
        fn keys_are_bounded_and_have_one_hash_tag(identity in any::<String>(), scope in any::<String>()) {
            let key = storage_key("n", "u", &identity, Some(&scope), "s");
            prop_assert!(key.len() <= 2 * MAX_ESCAPED_LEN + 16);
            prop_assert_eq!(key.matches('{').count(), 1);
            prop_assert!(key.is_ascii());
        }
    }
}
