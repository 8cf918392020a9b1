//! One spelling per resource: a request path normalised so that the spellings a router or a
//! handler treats alike (`/items/%31` and `/items/1`, `/a//b/./c/` and `/a/b/c`) key one
//! budget.
//!
//! The normalisation is RFC 3986 §6.2.2 (percent-encoded unreserved characters decoded, the
//! remaining escapes in upper case, dot segments removed), plus empty segments dropped, which
//! folds repeated slashes and a trailing slash. It only ever merges spellings, never splits one:
//! two paths that differ after it differ as resources.

use std::borrow::Cow;

/// The canonical form of `path` (borrowed when it already is).
pub(crate) fn canonical_path(path: &str) -> Cow<'_, str> {
    if is_canonical(path) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
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

/// Decodes `%XX` escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`) and upper-cases the
/// hex digits of the others; a `%` not followed by two hex digits stays as it is.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let escape = (byte == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match escape {
            Some((high, low)) => {
                let decoded = high << 4 | low;
                if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(decoded));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
            }
            None => {
                // Copy up to the next `%` in one go (ASCII, or whole UTF-8 sequences).
                let next = bytes[i + 1..]
                    .iter()
                    .position(|&b| b == b'%')
                    .map_or(bytes.len(), |at| i + 1 + at);
                out.push_str(&path[i..next]);
                i = next;
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
            ("/items/%e2%82%ac", "/items/%E2%82%AC"),
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
        assert_ne!(canonical_path("/Items"), canonical_path("/items"));
    }
}
