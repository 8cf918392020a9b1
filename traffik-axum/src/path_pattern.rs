//! [`PathPattern`]: which request paths a rule applies to.

use std::fmt;
use std::sync::Arc;

/// A request-path pattern, matched against the whole path (anchored at both ends, so `/api`
/// matches neither `/apixyz` nor `/api/users`).
///
/// A glob (from a `&str`) is split into `/`-separated segments: `*` matches exactly one
/// non-empty segment, `**` any number of segments (none included), and any other segment
/// matches itself literally. With the `regex` feature, `PathPattern::regex` takes a regular
/// expression instead (also anchored).
///
/// ```
/// use traffik_axum::PathPattern;
///
/// let users = PathPattern::glob("/api/*/users");
/// assert!(users.matches("/api/v1/users"));
/// assert!(!users.matches("/api/v1/admin/users"));
/// assert!(!users.matches("/api/v1/users/7"));
///
/// let api = PathPattern::glob("/api/**");
/// assert!(api.matches("/api") && api.matches("/api/v1/users/7"));
/// assert!(!api.matches("/apixyz"));
/// ```
#[derive(Clone)]
pub struct PathPattern(Kind);

#[derive(Clone)]
enum Kind {
    Glob {
        source: Arc<str>,
        segments: Arc<[Segment]>,
    },
    #[cfg(feature = "regex")]
    Regex(regex::Regex),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    One,
    Any,
}

impl PathPattern {
    /// A glob pattern.
    #[must_use]
    pub fn glob(pattern: &str) -> Self {
        let segments = pattern
            .split('/')
            .map(|segment| match segment {
                "*" => Segment::One,
                "**" => Segment::Any,
                literal => Segment::Literal(literal.into()),
            })
            .collect();
        PathPattern(Kind::Glob {
            source: pattern.into(),
            segments,
        })
    }

    /// A regular expression, anchored at both ends.
    ///
    /// # Errors
    /// When `pattern` is not a valid regular expression.
    #[cfg(feature = "regex")]
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(&format!("^(?:{pattern})$")).map(|re| PathPattern(Kind::Regex(re)))
    }

    /// Whether `path` matches.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        match &self.0 {
            Kind::Glob { segments, .. } => {
                let path: Vec<&str> = path.split('/').collect();
                glob_match(segments, &path)
            }
            #[cfg(feature = "regex")]
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// Segment matching with backtracking on the last `**` only (the classic wildcard algorithm),
/// so the time is at most the product of the two lengths.
fn glob_match(pattern: &[Segment], path: &[&str]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while s < path.len() {
        match pattern.get(p) {
            Some(Segment::Any) => {
                backtrack = Some((p, s));
                p += 1;
                continue;
            }
            Some(Segment::One) if !path[s].is_empty() => {
                p += 1;
                s += 1;
                continue;
            }
            Some(Segment::Literal(literal)) if **literal == *path[s] => {
                p += 1;
                s += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((star, matched)) => {
                p = star + 1;
                s = matched + 1;
                backtrack = Some((star, matched + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|segment| *segment == Segment::Any)
}

impl From<&str> for PathPattern {
    fn from(pattern: &str) -> Self {
        PathPattern::glob(pattern)
    }
}

impl From<String> for PathPattern {
    fn from(pattern: String) -> Self {
        PathPattern::glob(&pattern)
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Glob { source, .. } => f.debug_tuple("Glob").field(source).finish(),
            #[cfg(feature = "regex")]
            Kind::Regex(re) => f.debug_tuple("Regex").field(&re.as_str()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("/api", "/api", true),
            ("/api", "/apixyz", false),
            ("/api", "/api/", false),
            ("/api/*", "/api/x", true),
            ("/api/*", "/api/", false),
            ("/api/*", "/api/x/y", false),
            ("/api/**", "/api", true),
            ("/api/**", "/api/x/y/z", true),
            ("/**/admin", "/a/b/admin", true),
            ("/**/admin", "/admin", true),
            ("/**/admin", "/a/admin/b", false),
            ("/**/x/**/y", "/a/x/b/c/y", true),
            ("/**", "/", true),
            ("/items/*/parts/*", "/items/1/parts/2", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                PathPattern::glob(pattern).matches(path),
                expected,
                "{pattern} ~ {path}"
            );
        }
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let pattern = PathPattern::glob(&"/**".repeat(50));
        let path = "/a".repeat(2_000);
        assert!(pattern.matches(&path));
        assert!(!PathPattern::glob(&format!("{}/never", "/**".repeat(50))).matches(&path));
    }

    #[cfg(feature = "regex")]
    #[test]
    fn regexes_are_anchored() {
        let pattern = PathPattern::regex(r"/v\d+/.*").unwrap();
        assert!(pattern.matches("/v2/users"));
        assert!(!pattern.matches("/x/v2/users"));
        assert!(PathPattern::regex("(").is_err());
    }
}
