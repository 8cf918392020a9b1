//! [`RequestMatch`]: which requests a rule covers (path pattern, methods, client networks,
//! predicates); the criteria of a layer's [`ThrottleRule`](crate::ThrottleRule) and a
//! [`Condition`] for the engine's [`Rule`](traffik_core::rule::Rule)s on any throttle.

use std::fmt;
use std::sync::Arc;

use http::Method;
use http::request::Parts;
use ipnet::IpNet;
use traffik_core::rule::Condition;
use traffik_core::{BoxFuture, Context, MaybeReady};

use crate::canonical_path::canonical_path;
use crate::client_ip::ClientIp;
use crate::path_pattern::PathPattern;
use crate::scope::budget_method;

type AsyncPredicate = Arc<dyn for<'a> Fn(&'a Parts) -> BoxFuture<'a, bool> + Send + Sync>;
type SyncPredicate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;

/// The requests that match every given criterion; with none, every request.
///
/// Criteria are checked cheapest first: the method set (case-insensitive; `GET` covers `HEAD`,
/// which axum answers with the `GET` handler), then the path pattern (anchored at both ends,
/// matched against the raw path and its canonical spelling, so `/items/%31` and `/items//1`
/// are covered by a pattern `/items/1`, and `/items/%2e%2e` still by `/items/*`), then the
/// client's networks, then the synchronous predicate, then the asynchronous one. Unlike the
/// reference's rules, paths are globs anchored at both ends (`"/api"` does not cover `/apix`);
/// regular expressions are opt-in ([`PathPattern`]). In a bypass rule the path must match both
/// as written and in canonical form, so an exemption never covers another spelling that the
/// router may send to a different route (`/api/../health`).
///
/// As an engine [`Rule`](traffik_core::rule::Rule), a bypass on every throttle at once:
///
/// ```
/// use traffik_axum::{ClientIp, RequestMatch};
/// use traffik_axum::prelude::*;
///
/// let registry = ThrottleRegistry::new();
/// registry.add_rules("*", [
///     Rule::bypass_when(RequestMatch::new().path("/health")),
///     Rule::bypass_when(RequestMatch::new().client_in(ClientIp::new(), ["10.0.0.0/8".parse().unwrap()])),
/// ])?;
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct RequestMatch {
    methods: Option<Arc<[Method]>>,
    path: Option<PathPattern>,
    networks: Option<(ClientIp, Arc<[IpNet]>)>,
    predicate: Option<SyncPredicate>,
    async_predicate: Option<AsyncPredicate>,
}

impl RequestMatch {
    /// Every request (add criteria to narrow it).
    #[must_use]
    pub fn new() -> Self {
        RequestMatch::default()
    }

    /// Only requests whose path matches `pattern`: a glob (`*` one segment, `**` any number
    /// of segments), or a [`PathPattern`] (regular expressions with the `regex` feature).
    #[must_use]
    pub fn path(mut self, pattern: impl Into<PathPattern>) -> Self {
        self.path = Some(pattern.into());
        self
    }

    /// Only requests with one of these methods (compared case-insensitively; `GET` also covers
    /// `HEAD`).
    #[must_use]
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = Some(methods.into_iter().collect());
        self
    }

    /// Only requests whose client address, as `client_ip` resolves it (trusted proxies
    /// included), is in one of `networks`. A request with no client address does not match.
    #[must_use]
    pub fn client_in(
        mut self,
        client_ip: ClientIp,
        networks: impl IntoIterator<Item = IpNet>,
    ) -> Self {
        self.networks = Some((client_ip, networks.into_iter().collect()));
        self
    }

    /// Only requests for which `predicate` holds.
    #[must_use]
    pub fn predicate(mut self, predicate: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Only requests for which the asynchronous `predicate` holds (a lookup, say).
    #[must_use]
    pub fn predicate_async(
        mut self,
        predicate: impl for<'a> Fn(&'a Parts) -> BoxFuture<'a, bool> + Send + Sync + 'static,
    ) -> Self {
        self.async_predicate = Some(Arc::new(predicate));
        self
    }

    /// Whether every criterion but the asynchronous predicate holds, the path matching either
    /// spelling (raw or canonical): a throttle covers every spelling of what it names.
    pub(crate) fn matches_cheap(&self, parts: &Parts) -> bool {
        self.matches_cheap_as(parts, Spellings::Either)
    }

    fn matches_cheap_as(&self, parts: &Parts, spellings: Spellings) -> bool {
        let method = budget_method(&parts.method);
        if let Some(methods) = &self.methods
            && !methods.iter().any(|m| {
                m.as_str().eq_ignore_ascii_case(method.as_str())
                    || m.as_str().eq_ignore_ascii_case(parts.method.as_str())
            })
        {
            return false;
        }
        // The raw path (what the router matched) or its canonical spelling: a request another
        // spelling of a covered path is covered, and normalising never uncovers one.
        self.path.as_ref().is_none_or(|pattern| {
            let raw = parts.uri.path();
            match spellings {
                Spellings::Either => pattern.matches(raw) || pattern.matches(&canonical_path(raw)),
                Spellings::Both => pattern.matches(raw) && pattern.matches(&canonical_path(raw)),
            }
        }) && self.networks.as_ref().is_none_or(|(client_ip, networks)| {
            client_ip
                .resolve(parts)
                .is_some_and(|ip| networks.iter().any(|net| net.contains(&ip)))
        }) && self
            .predicate
            .as_ref()
            .is_none_or(|predicate| predicate(parts))
    }

    /// The asynchronous predicate, if any (checked after [`matches_cheap`](Self::matches_cheap)).
    pub(crate) fn async_predicate(&self) -> Option<&AsyncPredicate> {
        self.async_predicate.as_ref()
    }

    /// Whether every criterion holds.
    pub async fn matches(&self, parts: &Parts) -> bool {
        match self.holds_on(parts, Spellings::Either).into_ready() {
            Ok(holds) => holds,
            Err(pending) => pending.await,
        }
    }

    fn holds_on<'a>(&'a self, parts: &'a Parts, spellings: Spellings) -> MaybeReady<'a, bool> {
        if !self.matches_cheap_as(parts, spellings) {
            return MaybeReady::ready(false);
        }
        match &self.async_predicate {
            Some(predicate) => MaybeReady::from_boxed(predicate(parts)),
            None => MaybeReady::ready(true),
        }
    }
}

impl Condition<Parts> for RequestMatch {
    fn holds<'a>(&'a self, parts: &'a Parts, _context: &'a Context) -> MaybeReady<'a, bool> {
        self.holds_on(parts, Spellings::Either)
    }

    /// For an exemption the path must match as the request spells it **and** in its canonical
    /// form: `/api/../health` or `/health/.` (which the router may send elsewhere) is not
    /// exempted by a bypass on `/health`.
    fn holds_strictly<'a>(
        &'a self,
        parts: &'a Parts,
        _context: &'a Context,
    ) -> MaybeReady<'a, bool> {
        self.holds_on(parts, Spellings::Both)
    }

    fn is_synchronous(&self) -> bool {
        self.async_predicate.is_none()
    }
}

/// Which spellings of a request's path a pattern must match.
#[derive(Debug, Clone, Copy)]
enum Spellings {
    /// The raw path or its canonical form (a throttle covers both).
    Either,
    /// The raw path and its canonical form (an exemption names exactly what it exempts).
    Both,
}

impl fmt::Debug for RequestMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMatch")
            .field("methods", &self.methods)
            .field("path", &self.path)
            .field("networks", &self.networks.as_ref().map(|(_, nets)| nets))
            .field("predicate", &self.predicate.is_some())
            .field("async_predicate", &self.async_predicate.is_some())
            .finish()
    }
}
