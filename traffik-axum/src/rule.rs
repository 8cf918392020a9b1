//! [`ThrottleRule`]: a throttle and the requests it applies to (path pattern, methods,
//! predicate), for one [`ThrottleLayer`](crate::ThrottleLayer) carrying many throttles.

use std::fmt;

use http::Method;
use http::request::Parts;
use traffik_core::BoxFuture;

use crate::HttpThrottle;
use crate::path_pattern::PathPattern;
use crate::request_match::RequestMatch;

/// A throttle applied to the requests that match every given criterion (a [`RequestMatch`]).
///
/// Criteria are checked cheapest first: the method set (case-insensitive; `GET` covers `HEAD`,
/// which axum answers with the `GET` handler), then the path pattern (anchored at both ends,
/// matched against the raw path and its canonical spelling, so `/items/%31` and `/items//1`
/// are covered by a rule on `/items/1`, and `/items/%2e%2e` still by one on `/items/*`), then
/// the asynchronous predicate. A rule with no criteria applies to every request.
///
/// A layer rule picks which of the layer's throttles meet a request; the engine's
/// [`Rule`](traffik_core::rule::Rule)s, on the throttle itself or in its registry, are checked
/// after that, on every entry point.
///
/// ```
/// use http::Method;
/// use traffik_axum::{HttpThrottle, ThrottleLayer, ThrottleRule};
/// use traffik_axum::prelude::*;
///
/// let writes = HttpThrottle::builder("doc-rule-writes", "10/min").backend(MemoryBackend::new()).build()?;
/// let layer = ThrottleLayer::from_rules([ThrottleRule::new(writes)
///     .path("/api/**")
///     .methods([Method::POST, Method::PUT, Method::DELETE])
///     .predicate(|parts| !parts.headers.contains_key("x-internal"))]);
/// # let _ = layer;
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ThrottleRule {
    pub(crate) throttle: HttpThrottle,
    pub(crate) criteria: RequestMatch,
    pub(crate) cost: Option<u64>,
}

impl ThrottleRule {
    /// `throttle` on every request.
    #[must_use]
    pub fn new(throttle: HttpThrottle) -> Self {
        ThrottleRule {
            throttle,
            criteria: RequestMatch::new(),
            cost: None,
        }
    }

    /// `throttle` on the requests `criteria` matches.
    #[must_use]
    pub fn matching(throttle: HttpThrottle, criteria: RequestMatch) -> Self {
        ThrottleRule {
            throttle,
            criteria,
            cost: None,
        }
    }

    /// Only requests whose path matches `pattern`: a glob (`*` one segment, `**` any number
    /// of segments), or a [`PathPattern`] (regular expressions with the `regex` feature).
    #[must_use]
    pub fn path(mut self, pattern: impl Into<PathPattern>) -> Self {
        self.criteria = self.criteria.path(pattern);
        self
    }

    /// Only requests with one of these methods (compared case-insensitively; `GET` also covers
    /// `HEAD`).
    #[must_use]
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.criteria = self.criteria.methods(methods);
        self
    }

    /// Only requests for which `predicate` holds.
    #[must_use]
    pub fn predicate(mut self, predicate: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.criteria = self.criteria.predicate(predicate);
        self
    }

    /// Only requests for which the asynchronous `predicate` holds (a lookup, say).
    #[must_use]
    pub fn predicate_async(
        mut self,
        predicate: impl for<'a> Fn(&'a Parts) -> BoxFuture<'a, bool> + Send + Sync + 'static,
    ) -> Self {
        self.criteria = self.criteria.predicate_async(predicate);
        self
    }

    /// The cost of a matching request (default: the throttle's).
    #[must_use]
    pub fn cost(mut self, cost: u64) -> Self {
        self.cost = Some(cost);
        self
    }

    /// The throttle.
    #[must_use]
    pub fn throttle(&self) -> &HttpThrottle {
        &self.throttle
    }

    /// The requests the rule covers.
    #[must_use]
    pub fn criteria(&self) -> &RequestMatch {
        &self.criteria
    }

    /// Whether the method, path and synchronous predicate criteria hold (an asynchronous
    /// predicate is checked after).
    pub(crate) fn matches_cheap(&self, parts: &Parts) -> bool {
        self.criteria.matches_cheap(parts)
    }
}

impl fmt::Debug for ThrottleRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleRule")
            .field("throttle", &self.throttle.uid())
            .field("criteria", &self.criteria)
            .field("cost", &self.cost)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use http::Request;
    use traffik_core::MemoryBackend;

    use super::*;

    fn parts(method: &str, path: &str) -> Parts {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn rule() -> ThrottleRule {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let uid = format!("rule-test-{}", N.fetch_add(1, Ordering::Relaxed));
        ThrottleRule::new(
            HttpThrottle::builder(uid, "1/s")
                .backend(MemoryBackend::new())
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn methods_compare_case_insensitively_and_paths_are_anchored() {
        let posts = rule().methods([Method::POST]).path("/api");
        assert!(posts.matches_cheap(&parts("POST", "/api")));
        assert!(posts.matches_cheap(&parts("post", "/api")));
        assert!(!posts.matches_cheap(&parts("GET", "/api")));
        assert!(!posts.matches_cheap(&parts("POST", "/apixyz")));
        assert!(!posts.matches_cheap(&parts("POST", "/api/x")));
        let any = rule();
        assert!(any.matches_cheap(&parts("PATCH", "/whatever")));
        let internal = rule().predicate(|parts| parts.headers.contains_key("x-internal"));
        assert!(!internal.matches_cheap(&parts("GET", "/")));
    }

    #[test]
    fn other_spellings_of_a_covered_request_are_covered() {
        let reads = rule().methods([Method::GET]).path("/items/1");
        for (method, path) in [
            ("GET", "/items/1"),
            ("HEAD", "/items/1"),
            ("GET", "/items/%31"),
            ("GET", "//items/./1/"),
            ("HEAD", "/%69tems/1"),
        ] {
            assert!(reads.matches_cheap(&parts(method, path)), "{method} {path}");
        }
        assert!(!reads.matches_cheap(&parts("POST", "/items/1")));
        // Dot segments the router does not resolve: the raw path still matches.
        let items = rule().path("/api/items/*");
        assert!(items.matches_cheap(&parts("GET", "/api/items/%2e%2e")));
        assert!(items.matches_cheap(&parts("GET", "/api/items/..")));
        // A rule written for HEAD alone does not cover GET.
        let heads = rule().methods([Method::HEAD]);
        assert!(heads.matches_cheap(&parts("HEAD", "/")));
        assert!(!heads.matches_cheap(&parts("GET", "/")));
    }
}
