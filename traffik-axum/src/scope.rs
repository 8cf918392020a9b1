//! [`Scope`]: which requests of one client share a budget, and [`EntryPoint`]: which scope
//! applies when a throttle sets none.

use std::cell::RefCell;

use axum::extract::MatchedPath;
use http::Method;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::request::Parts;

use crate::canonical_path::canonical_path;

/// Which requests of one client share a budget.
///
/// Whatever the scope, one resource has one budget however it is spelled: `HEAD` shares the
/// budget of `GET` (axum answers `HEAD` with the `GET` handler), route scopes key by the
/// template the router resolved, and [`Scope::Path`] keys by the canonical path
/// (`/items/%31`, `/items//1` and `/items/1/` are `/items/1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Scope {
    /// One budget per client for everything the throttle guards (a router-wide limit).
    Shared,
    /// One budget per client per route template and method: `GET /items/{id}` is one budget
    /// for every id (axum's [`MatchedPath`]). Requests no route matched (the fallback) share
    /// one budget per method: they are one resource, however many paths a scanner tries. A
    /// layer must sit on the `Router` (`Router::layer`, `route_layer`), where it runs after
    /// routing, to see the template; outside the router every request looks unmatched.
    #[default]
    Route,
    /// Per route template, all methods together.
    RouteAnyMethod,
    /// Per method and canonical path: `/items/1` and `/items/2` are separate budgets.
    Path,
}

/// The scope of requests no route matched (a route template always starts with `/`).
const FALLBACK_SCOPE: &str = "*";
/// The start of the scope of CORS preflights counted apart (no other scope starts so: a scope
/// starts with a method, a `/` or `*`).
pub(crate) const PREFLIGHT_SCOPE: &str = "preflight";

impl Scope {
    /// The scope string of a request (`None` for [`Scope::Shared`]).
    pub(crate) fn of(self, parts: &Parts) -> Option<String> {
        let mut scope = String::new();
        self.write(parts, &mut scope).then_some(scope)
    }

    /// Writes the scope string of a request into `out` (cleared first); `false` for
    /// [`Scope::Shared`], which has none.
    #[inline]
    fn write(self, parts: &Parts, out: &mut String) -> bool {
        out.clear();
        // `GET/items/{id}`: a path always starts with `/` and a method never holds one, so no
        // separator is needed (and none needs escaping in the key).
        match self {
            Scope::Shared => return false,
            Scope::Route | Scope::Path => out.push_str(budget_method(&parts.method).as_str()),
            Scope::RouteAnyMethod => {}
        }
        match self {
            Scope::Path => out.push_str(&canonical_path(parts.uri.path())),
            _ => out.push_str(
                parts
                    .extensions
                    .get::<MatchedPath>()
                    .map_or(FALLBACK_SCOPE, MatchedPath::as_str),
            ),
        }
        true
    }

    /// Runs `f` with the scope string of a request, built in a reusable per-thread buffer.
    pub(crate) fn with<R>(self, parts: &Parts, f: impl FnOnce(Option<&str>) -> R) -> R {
        thread_local! {
            static SCOPE_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
        }
        if self == Scope::Shared {
            return f(None);
        }
        SCOPE_BUFFER.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffer) => {
                self.write(parts, &mut buffer);
                f(Some(&buffer))
            }
            Err(_) => f(self.of(parts).as_deref()),
        })
    }
}

/// Where a throttle meets a request: each entry point has a default [`Scope`], used when the
/// throttle sets none ([`HttpThrottleBuilderExt::scope`](crate::HttpThrottleBuilderExt::scope)
/// overrides it everywhere). [`HttpThrottle::scope_for`](crate::HttpThrottle::scope_for) says
/// which scope applies; `docs/decisions/0008-scope-defaults.md` says why they differ.
///
/// | entry point | default scope | why |
/// |---|---|---|
/// | [`Throttled<T>`](crate::Throttled), `ThrottledAll`, `#[throttled]` | [`Scope::Route`] | a throttle on a handler limits that handler's route; the same throttle on two handlers keeps a budget for each |
/// | [`Enforce`](crate::Enforce) (`enforce`, `check_request`, `stat_request`) | [`Scope::Route`] | called from inside a handler, like the extractor |
/// | [`ThrottleLayer`](crate::ThrottleLayer) | [`Scope::Shared`] | a layer limits everything it wraps: "100/min for this API" |
/// | WebSocket messages ([`ws`](crate::ws)) | [`Scope::RouteAnyMethod`] | messages have no method; the route is the socket's |
///
/// ```
/// use traffik_axum::{EntryPoint, HttpThrottle, HttpThrottleBuilderExt, Scope};
///
/// let plain = HttpThrottle::builder("doc-entry-plain", "10/min").build()?;
/// assert_eq!(plain.scope_for(EntryPoint::Extractor), Scope::Route);
/// assert_eq!(plain.scope_for(EntryPoint::Layer), Scope::Shared);
/// let shared = HttpThrottle::builder("doc-entry-shared", "10/min").scope(Scope::Shared).build()?;
/// assert_eq!(shared.scope_for(EntryPoint::Extractor), Scope::Shared);
/// # Ok::<(), traffik_axum::traffik_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryPoint {
    /// The `Throttled<T>` and `ThrottledAll` extractors and the `#[throttled]` attribute.
    Extractor,
    /// `enforce`, `enforce_all`, `check_request` and `stat_request`, called from a handler.
    Enforce,
    /// A [`ThrottleLayer`](crate::ThrottleLayer)'s rules.
    Layer,
    /// A WebSocket message hit.
    WebSocket,
}

impl EntryPoint {
    /// The scope this entry point uses when the throttle sets none.
    #[must_use]
    #[inline]
    pub const fn default_scope(self) -> Scope {
        match self {
            EntryPoint::Extractor | EntryPoint::Enforce => Scope::Route,
            EntryPoint::Layer => Scope::Shared,
            EntryPoint::WebSocket => Scope::RouteAnyMethod,
        }
    }
}

/// The method whose budget a request spends: `HEAD` is answered by the `GET` handler, so it
/// spends `GET`'s.
#[inline]
pub(crate) fn budget_method(method: &Method) -> &Method {
    if method == Method::HEAD {
        &Method::GET
    } else {
        method
    }
}

/// Whether the request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method` (the Fetch standard's definition).
#[inline]
pub(crate) fn is_cors_preflight(parts: &Parts) -> bool {
    parts.method == Method::OPTIONS
        && parts.headers.contains_key(ORIGIN)
        && parts.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::extract::ConnectInfo;
    use http::Request;

    use super::*;

    /// The parts of a request from 192.0.2.1.
    pub(crate) fn parts(method: Method, path: &str) -> Parts {
        let (mut parts, ()) = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
            .into_parts();
        parts
            .extensions
            .insert(ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 9))));
        parts
    }

    #[test]
    fn entry_points_default_as_documented() {
        assert_eq!(EntryPoint::Extractor.default_scope(), Scope::Route);
        assert_eq!(EntryPoint::Enforce.default_scope(), Scope::Route);
        assert_eq!(EntryPoint::Layer.default_scope(), Scope::Shared);
        assert_eq!(EntryPoint::WebSocket.default_scope(), Scope::RouteAnyMethod);
    }

    #[test]
    fn scopes() {
        let mut get = parts(Method::GET, "/items/%37/?x=1");
        assert_eq!(Scope::Shared.of(&get), None);
        // No route matched: the fallback's one budget.
        assert_eq!(Scope::Route.of(&get).unwrap(), "GET*");
        assert_eq!(Scope::RouteAnyMethod.of(&get).unwrap(), "*");
        assert_eq!(Scope::Path.of(&get).unwrap(), "GET/items/7");
        get.extensions.insert(matched("/items/{id}"));
        assert_eq!(Scope::Route.of(&get).unwrap(), "GET/items/{id}");
        assert_eq!(Scope::RouteAnyMethod.of(&get).unwrap(), "/items/{id}");
    }

    #[test]
    fn head_spends_the_budget_of_get_in_every_scope() {
        for scope in [Scope::Route, Scope::RouteAnyMethod, Scope::Path] {
            let mut get = parts(Method::GET, "/items/7");
            let mut head = parts(Method::HEAD, "/items/7");
            assert_eq!(scope.of(&get), scope.of(&head), "{scope:?}");
            get.extensions.insert(matched("/items/{id}"));
            head.extensions.insert(matched("/items/{id}"));
            assert_eq!(scope.of(&get), scope.of(&head), "{scope:?}");
        }
        assert_ne!(
            Scope::Route.of(&parts(Method::POST, "/items/7")),
            Scope::Route.of(&parts(Method::GET, "/items/7"))
        );
    }

    /// The `MatchedPath` axum's router inserts for `template`.
    pub(crate) fn matched(template: &'static str) -> MatchedPath {
        use axum::extract::FromRequestParts;
        use axum::routing::get;
        use tower::ServiceExt;
        let (sender, receiver) = std::sync::mpsc::channel();
        let router = axum::Router::new().route(
            template,
            get(move |parts: Parts| {
                let sender = sender.clone();
                async move {
                    let mut parts = parts;
                    let matched = MatchedPath::from_request_parts(&mut parts, &())
                        .await
                        .unwrap();
                    sender.send(matched).unwrap();
                }
            }),
        );
        let path = template.replace("{id}", "1");
        let request = Request::builder()
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        futures_util::FutureExt::now_or_never(router.oneshot(request))
            .expect("the handler is ready at once")
            .unwrap();
        receiver.recv().unwrap()
    }
}
