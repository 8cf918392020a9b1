//! One spelling per resource: a request path normalised so that the spellings a handler treats
//! alike (`/items/%31` and `/items/1`, `/items/%E2%82%AC` and `/items/€`, `/a//b/./c/` and
//! `/a/b/c`) key one budget.
//!
//! Every escape is decoded as axum's `Path` extractor decodes it, except `%2F` (a `/` inside a
//! segment) and `%25` (a `%`), which stay escaped in upper case so that no decoded text can pass
//! for another escape; then dot segments are removed (RFC 3986 §5.2.4) and empty segments
//! dropped, which folds repeated slashes and a trailing slash. Escapes that do not decode to
//! UTF-8 stay as they are, in upper case.

use std::borrow::Cow;

/// The canonical form of `path` (borrowed when it already is).
pub(crate) fn canonical_path(path: &str) -> Cow<'_, str> {
    if is_canonical(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_escapes(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut canonical = String::with_capacity(decoded.len());
    for segment in &segments {
        canonical.push('/');
        canonical.push_str(segment);
    }
    if canonical.is_empty() {
        canonical.push('/');
    }
    Cow::Owned(canonical)
}

/// Whether `path` needs no work: no escape, no empty or dot segment, no trailing slash.
fn is_canonical(path: &str) -> bool {
    let bytes = path.as_bytes();
    if path == "/" {
        return true;
    }
    if bytes.first() != Some(&b'/') || bytes.last() == Some(&b'/') || bytes.contains(&b'%') {
        return false;
    }
    path[1..]
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// Decodes every `%XX` escape but `%2F` and `%25` (upper-cased instead); a `%` not followed by
/// two hex digits stays as it is. If the decoded bytes are not UTF-8, only the escapes of
/// ASCII characters are decoded.
fn decode_escapes(path: &str) -> String {
    let decoded = decode(path, |byte| byte != b'/' && byte != b'%');
    match String::from_utf8(decoded) {
        Ok(text) => text,
        Err(_) => {
            let ascii = decode(path, |byte| byte.is_ascii() && byte != b'/' && byte != b'%');
            String::from_utf8(ascii).unwrap_or_else(|_| path.to_owned())
        }
    }
}

/// `path` with the escapes of the bytes `decodable` accepts decoded, the others upper-cased.
fn decode(path: &str, decodable: impl Fn(u8) -> bool) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match escape {
            Some((high, low)) => {
                let byte = high << 4 | low;
                if decodable(byte) {
                    out.push(byte);
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        bytes[i + 1].to_ascii_uppercase(),
                        bytes[i + 2].to_ascii_uppercase(),
                    ]);
                }
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        for path in ["/", "/items", "/items/7", "/a-b/c_d/~e", "/é"] {
            assert!(matches!(canonical_path(path), Cow::Borrowed(_)), "{path}");
        }
    }

    #[test]
    fn spellings_of_one_resource_become_one() {
        for (spelling, canonical) in [
            ("/items/%31", "/items/1"),
            ("/%69tems/1", "/items/1"),
            ("/items//1", "/items/1"),
            ("//items/1/", "/items/1"),
            ("/items/./1", "/items/1"),
            ("/items/x/../1", "/items/1"),
            ("/items/%2E%2E/items/1", "/items/1"),
            ("/../../items/1", "/items/1"),
            ("/items/a%2fb", "/items/a%2Fb"),
            ("/items/%e2%82%ac", "/items/€"),
            ("/items/%3A", "/items/:"),
            ("/items/a%20b", "/items/a b"),
            ("/items/%ff", "/items/%FF"),
            ("/items/%ff%41", "/items/%FFA"),
            ("/items/%25", "/items/%25"),
            ("/items/100%", "/items/100%"),
            ("/items/%zz", "/items/%zz"),
            ("/items/%4", "/items/%4"),
            ("", "/"),
            ("//", "/"),
            ("/./..", "/"),
        ] {
            assert_eq!(canonical_path(spelling), canonical, "{spelling}");
        }
    }

    #[test]
    fn distinct_resources_stay_distinct() {
        assert_ne!(canonical_path("/items/a%2Fb"), canonical_path("/items/a/b"));
        assert_ne!(canonical_path("/items/%25"), canonical_path("/items/%"));
        assert_ne!(canonical_path("/items/%2541"), canonical_path("/items/A"));
        assert_ne!(canonical_path("/Items"), canonical_path("/items"));
    }
}
