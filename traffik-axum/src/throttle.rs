//! [`HttpThrottle`]: a core [`Throttle`] over HTTP request parts, with what HTTP adds: the
//! scope, the throttled handler, the CORS preflight rule, and writing the throttle's rate-limit
//! headers into responses.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use traffik_core::headers::Headers;
use traffik_core::throttle::{
    FromThrottle, HitOptions, IntoRate, Limit, Refusal, Reservation, ThrottleBuilder, Verdict,
    hit_all_verdicts, reserve, try_hit_all_verdicts_now,
};
use traffik_core::{ConfigError, Context, Decision, Millis, StrategyStat, Throttle};

use crate::backend::RequestBackend;
use crate::call::CallOptions;
use crate::charges::Charge;
use crate::client_ip::ClientIp;
use crate::handler::ThrottledHandler;
use crate::rejection::{Look, ThrottleRejection, TooManyRequests, prefers_json};
use crate::request_identities::RequestIdentities;
use crate::scope::{EntryPoint, PREFLIGHT_SCOPE, Scope, is_cors_preflight};

/// The throttles of one request decided as one, with what their limits borrow.
struct Batch<'a> {
    parts: &'a Parts,
    members: Vec<Member<'a>>,
}

/// One throttle of a [`Batch`].
struct Member<'a> {
    charge: &'a Charge,
    scope: Option<String>,
}

impl<'a> Batch<'a> {
    fn new(charges: &'a [Charge], parts: &'a Parts) -> Self {
        let members = charges
            .iter()
            .map(|charge| Member {
                charge,
                scope: charge.throttle().scope_of(parts, charge.entry_point()),
            })
            .collect();
        Batch { parts, members }
    }

    fn options(&self, member: &'a Member<'a>) -> HitOptions<'a> {
        let charge = member.charge;
        charge.throttle().options(
            self.parts,
            member.scope.as_deref(),
            charge.cost(),
            None,
            Some(charge.at()),
        )
    }

    /// The core limits.
    fn limits(&'a self) -> Vec<Limit<'a, Parts>> {
        self.members
            .iter()
            .map(|member| {
                Limit::new(
                    &member.charge.throttle().throttle,
                    self.parts,
                    self.options(member),
                )
            })
            .collect()
    }

    /// Every member's decision, or the first refusal's 429.
    fn verdict(&'a self, decided: Vec<Verdict>) -> Result<Vec<Decision>, ThrottleRejection> {
        let mut decisions = Vec::with_capacity(self.members.len());
        for (member, verdict) in self.members.iter().zip(decided) {
            let charge = member.charge;
            // A refusal answers with its throttle's 429 (headers, handler).
            decisions.push(charge.throttle().verdict(
                self.parts,
                verdict,
                &CallOptions::cost(charge.cost()),
            )?);
        }
        Ok(decisions)
    }
}

/// The HTTP settings, read once from the core throttle's typed extensions when it is built
/// (no lookup per request).
struct HttpSettings {
    scope: Option<Scope>,
    /// Read on refusals only; replaced by [`HttpThrottle::update_on_throttled`].
    on_throttled: RwLock<Option<ThrottledHandler>>,
    count_preflights: bool,
}

/// Whether CORS preflights spend the budget of the requests they precede (a typed extension
/// of the core throttle; [`HttpThrottleBuilderExt::count_preflights`]).
#[derive(Debug, Clone, Copy)]
struct CountPreflights(bool);

/// A throttle for HTTP requests: a core [`Throttle`] whose connection is the request's
/// [`Parts`], plus the HTTP settings (scope, throttled handler, CORS preflights), read once from
/// the core throttle's typed extensions when built ([`FromThrottle`]). Cheap to clone (two
/// reference counts). Requests go through its entry points ([`Throttled<T>`](crate::Throttled),
/// [`Enforce`](crate::Enforce), [`ThrottleLayer`](crate::ThrottleLayer), WebSocket hits), which
/// add the scope, the per-request backend and the 429; [`core`](Self::core) reaches the core
/// throttle for `update_*`, `disable`, `stat` on a key of your own, ….
///
/// ```
/// use traffik_axum::{HttpThrottle, Scope};
/// use traffik_axum::prelude::*;
///
/// let search = HttpThrottle::builder("doc-search", "20/min")
///     .strategy(Gcra::new())
///     .backend(MemoryBackend::new())
///     .headers(Headers::always())
///     .scope(Scope::Shared)
///     .build()?;
/// assert_eq!(search.uid(), "doc-search");
/// assert_eq!(search.core().rate().map(|rate| rate.limit()), Some(20));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone)]
pub struct HttpThrottle {
    throttle: Throttle<Parts>,
    http: Arc<HttpSettings>,
}

impl HttpThrottle {
    /// Starts a throttle `uid` at `rate` (a [`Rate`](traffik_core::Rate) or a string like
    /// `"100/min"`), identifying clients by [`ClientIp`] (the TCP peer).
    pub fn builder(uid: impl Into<String>, rate: impl IntoRate) -> HttpThrottleBuilder {
        ThrottleBuilder::new(uid, rate)
            .default_identifier(ClientIp::new().identifier())
            .builds::<HttpThrottle>()
    }

    /// The core throttle.
    #[must_use]
    #[inline]
    pub fn core(&self) -> &Throttle<Parts> {
        &self.throttle
    }

    /// The throttle's uid.
    #[must_use]
    pub fn uid(&self) -> &str {
        self.throttle.uid()
    }

    /// The rate-limit headers it sends.
    #[must_use]
    pub fn headers(&self) -> impl std::ops::Deref<Target = Headers> + '_ {
        self.throttle.headers()
    }

    /// Replaces its throttled handler, the one that answers its refusals (`None`: the
    /// backend's, else the default 429), for every clone of this throttle, while it serves
    /// (the reference's `update_handle_throttled`). Its rate-limit headers are replaced through
    /// the core throttle: `core().update_headers(..)`.
    pub fn update_on_throttled(&self, handler: Option<ThrottledHandler>) {
        *self
            .http
            .on_throttled
            .write()
            .unwrap_or_else(PoisonError::into_inner) = handler;
    }

    /// Its own throttled handler, if set.
    #[must_use]
    pub fn on_throttled(&self) -> Option<ThrottledHandler> {
        self.http
            .on_throttled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Its scope, if set; [`scope_for`](Self::scope_for) says which scope applies.
    #[must_use]
    pub fn scope(&self) -> Option<Scope> {
        self.http.scope
    }

    /// The scope that applies when the throttle meets a request through `entry`: its own, else
    /// the entry point's default ([`EntryPoint::default_scope`]).
    #[must_use]
    #[inline]
    pub fn scope_for(&self, entry: EntryPoint) -> Scope {
        self.http.scope.unwrap_or(entry.default_scope())
    }

    /// What a hit would get now, consuming nothing (the pre-check of "check, then consume
    /// after success").
    pub async fn check_request(&self, parts: &Parts) -> Result<Decision, ThrottleRejection> {
        let scope = self.scope_of(parts, EntryPoint::Enforce);
        let options = self.options(parts, scope.as_deref(), None, None, None);
        self.throttle
            .check_with(parts, options)
            .await
            .map_err(ThrottleRejection::from_error)
    }

    /// The client's state (`None` if exempted), consuming nothing.
    pub async fn stat_request(
        &self,
        parts: &Parts,
    ) -> Result<Option<StrategyStat>, ThrottleRejection> {
        let scope = self.scope_of(parts, EntryPoint::Enforce);
        let options = self.options(parts, scope.as_deref(), None, None, None);
        self.throttle
            .stat_with(parts, options)
            .await
            .map_err(ThrottleRejection::from_error)
    }

    pub(crate) async fn enforce_scoped(
        &self,
        parts: &Parts,
        entry: EntryPoint,
        call: CallOptions<'_>,
    ) -> Result<Decision, ThrottleRejection> {
        let scope = match call.scope {
            Some(_) => None,
            None => self.scope_of(parts, entry),
        };
        let options = self.options(
            parts,
            call.scope.or(scope.as_deref()),
            call.cost,
            call.context,
            call.now,
        );
        let verdict = self
            .throttle
            .hit_verdict(parts, options)
            .await
            .map_err(ThrottleRejection::from_error)?;
        self.verdict(parts, verdict, &call)
    }

    /// Decides without awaiting when it can (see [`Throttle::try_hit_now`]).
    pub(crate) fn try_enforce_now(
        &self,
        parts: &Parts,
        entry: EntryPoint,
        cost: Option<u64>,
        now: Option<Millis>,
    ) -> Option<Result<Decision, ThrottleRejection>> {
        let decide = |scope: Option<&str>| {
            let options = self.options(parts, scope, cost, None, now);
            Some(match self.throttle.try_hit_verdict_now(parts, options)? {
                Ok(verdict) => self.verdict(parts, verdict, &CallOptions::cost(cost)),
                Err(error) => Err(ThrottleRejection::from_error(error)),
            })
        };
        if self.is_separate_preflight(parts) {
            return decide(self.scope_of(parts, entry).as_deref());
        }
        self.scope_for(entry).with(parts, decide)
    }

    /// Whether `parts` is a CORS preflight this throttle counts apart from the requests it
    /// precedes.
    fn is_separate_preflight(&self, parts: &Parts) -> bool {
        !self.http.count_preflights && is_cors_preflight(parts)
    }

    /// Enforces several throttles on one request **as one**: every limit admits and all are
    /// charged, or none is charged (see [`hit_all`](traffik_core::throttle::hit_all) for the
    /// guarantee on each backend). The decisions come back in order; a refusal is the first
    /// refusing throttle's 429. Each throttle uses its own scope (default [`Scope::Route`]).
    ///
    /// ```
    /// use axum::{Router, extract::State, http::request::Parts, routing::get};
    /// use traffik_axum::{HttpThrottle, ThrottleRejection};
    /// use traffik_axum::prelude::*;
    ///
    /// #[derive(Clone)]
    /// struct Limits { burst: HttpThrottle, hourly: HttpThrottle }
    ///
    /// async fn search(State(limits): State<Limits>, parts: Parts) -> Result<&'static str, ThrottleRejection> {
    ///     HttpThrottle::enforce_all(&[&limits.burst, &limits.hourly], &parts).await?;
    ///     Ok("results")
    /// }
    ///
    /// // One backend for both: they are decided atomically there.
    /// let backend = std::sync::Arc::new(MemoryBackend::new());
    /// let limits = Limits {
    ///     burst: HttpThrottle::builder("doc-all-burst", "2/s").shared_backend(backend.clone()).build()?,
    ///     hourly: HttpThrottle::builder("doc-all-hourly", "100/h").shared_backend(backend).build()?,
    /// };
    /// let app: Router = Router::new().route("/search", get(search)).with_state(limits);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub async fn enforce_all(
        throttles: &[&HttpThrottle],
        parts: &Parts,
    ) -> Result<Vec<Decision>, ThrottleRejection> {
        let charges: Vec<Charge> = throttles
            .iter()
            .map(|throttle| Charge::new(throttle, EntryPoint::Enforce, None))
            .collect();
        Self::enforce_all_scoped(&charges, parts).await
    }

    /// Reserves a cost on several throttles for this request as one unit: every limit admits
    /// and all are charged now, or none is and the first refusing throttle's 429 comes back.
    /// Then [`commit`](Reservation::commit) keeps the charges and
    /// [`cancel`](Reservation::cancel) (or dropping the reservation) returns them: "charge
    /// only on success" across limits, with the guarantee of
    /// [`reserve`](traffik_core::throttle::reserve) (one round trip on Redis). Each throttle
    /// uses its own scope, as [`enforce_all`](Self::enforce_all) does.
    ///
    /// ```
    /// use axum::{extract::State, http::request::Parts};
    /// use traffik_axum::{HttpThrottle, ThrottleRejection};
    /// use traffik_axum::prelude::*;
    ///
    /// #[derive(Clone)]
    /// struct Limits { exports: HttpThrottle, rows: HttpThrottle }
    ///
    /// async fn export(State(limits): State<Limits>, parts: Parts) -> Result<String, ThrottleRejection> {
    ///     let rows = 400; // counted from the request
    ///     let reservation =
    ///         HttpThrottle::reserve_all(&[(&limits.exports, 1), (&limits.rows, rows)], &parts).await?;
    ///     match run_export(rows).await {
    ///         Ok(file) => { reservation.commit(); Ok(file) }
    ///         Err(_) => Ok("failed: nothing charged".into()), // the reservation drops: returned
    ///     }
    /// }
    /// # async fn run_export(_: u64) -> Result<String, ()> { Err(()) }
    /// ```
    pub async fn reserve_all(
        throttles: &[(&HttpThrottle, u64)],
        parts: &Parts,
    ) -> Result<Reservation<'static>, ThrottleRejection> {
        let charges: Vec<Charge> = throttles
            .iter()
            .map(|(throttle, cost)| Charge::new(throttle, EntryPoint::Enforce, Some(*cost)))
            .collect();
        let batch = Batch::new(&charges, parts);
        let reservation = reserve(&batch.limits())
            .await
            .map_err(ThrottleRejection::from_error)?;
        if reservation.is_refused() {
            batch.verdict(reservation.verdicts().to_vec())?;
        }
        Ok(reservation)
    }

    /// [`enforce_all`](Self::enforce_all) with per-throttle costs, default scopes and times.
    pub(crate) async fn enforce_all_scoped(
        charges: &[Charge],
        parts: &Parts,
    ) -> Result<Vec<Decision>, ThrottleRejection> {
        let batch = Batch::new(charges, parts);
        let decisions = hit_all_verdicts(&batch.limits())
            .await
            .map_err(ThrottleRejection::from_error)?;
        batch.verdict(decisions)
    }

    /// [`enforce_all_scoped`](Self::enforce_all_scoped) without awaiting, when it can.
    pub(crate) fn try_enforce_all_now(
        charges: &[Charge],
        parts: &Parts,
    ) -> Option<Result<Vec<Decision>, ThrottleRejection>> {
        let batch = Batch::new(charges, parts);
        Some(match try_hit_all_verdicts_now(&batch.limits())? {
            Ok(decisions) => batch.verdict(decisions),
            Err(error) => Err(ThrottleRejection::from_error(error)),
        })
    }

    /// The scope string of a request: the scope for `entry` ([`Self::scope_for`]), and for a
    /// CORS preflight counted apart, that scope in a budget of its own (`preflight…`).
    pub(crate) fn scope_of(&self, parts: &Parts, entry: EntryPoint) -> Option<String> {
        let scope = self.scope_for(entry).of(parts);
        if self.is_separate_preflight(parts) {
            return Some(format!("{PREFLIGHT_SCOPE}{}", scope.unwrap_or_default()));
        }
        scope
    }

    #[inline]
    pub(crate) fn options<'a>(
        &self,
        parts: &'a Parts,
        scope: Option<&'a str>,
        cost: Option<u64>,
        context: Option<&'a Context>,
        now: Option<Millis>,
    ) -> HitOptions<'a> {
        let mut options = HitOptions::new();
        options.scope = scope;
        options.cost = cost;
        options.context = context;
        options.now = now;
        // The request's memo, only for a memoized identifier (no lookup per hit otherwise).
        if self
            .throttle
            .memoizes_identity(|| RequestBackend::of(&parts.extensions))
        {
            options.identities = RequestIdentities::of(&parts.extensions);
        }
        options.backend = parts
            .extensions
            .get::<RequestBackend>()
            .map(RequestBackend::backend);
        options
    }

    /// A refused decision as the 429 rejection (answered from the refusal: the backend that
    /// refused and the hit's context); any other as itself.
    #[inline]
    fn verdict(
        &self,
        parts: &Parts,
        verdict: Verdict,
        call: &CallOptions<'_>,
    ) -> Result<Decision, ThrottleRejection> {
        let decision = verdict.decision();
        if decision.is_allowed() {
            return Ok(decision);
        }
        Err(self.refused(parts, decision, verdict.refusal(), call))
    }

    /// The 429 of a refused decision, answered from its refusal (kept out of line: the admitted
    /// path stays small).
    #[cold]
    #[inline(never)]
    fn refused(
        &self,
        parts: &Parts,
        decision: Decision,
        refusal: Option<&Refusal>,
        call: &CallOptions<'_>,
    ) -> ThrottleRejection {
        debug_assert!(refusal.is_some(), "a refused verdict carries its refusal");
        let mut headers = HeaderMap::new();
        self.write_headers_with(&decision, call.headers, &mut headers);
        let context = refusal.map(Refusal::context);
        let custom = self.throttled_handler(refusal).map(|handler| {
            handler.call(parts, &decision, self, context.unwrap_or(&Context::new()))
        });
        let look = match (&custom, context) {
            (None, Some(context)) if !context.is_empty() => Look::from_context(context),
            _ => Look::default(),
        };
        ThrottleRejection::TooManyRequests(TooManyRequests::new(
            decision,
            headers,
            prefers_json(&parts.headers),
            custom,
            look,
        ))
    }

    /// The throttle's own throttled handler, else the default of the backend that refused.
    fn throttled_handler(&self, refusal: Option<&Refusal>) -> Option<ThrottledHandler> {
        if let Some(handler) = self.on_throttled() {
            return Some(handler);
        }
        refusal?
            .backend()
            .extensions()
            .get::<ThrottledHandler>()
            .cloned()
    }

    /// Adds every throttle's headers for its decision to `out`. The throttle with the fewest
    /// units left is written last, so its values stand where two throttles write the same
    /// header.
    pub(crate) fn write_all_headers(
        throttles: &[&HttpThrottle],
        decisions: &[Decision],
        out: &mut HeaderMap,
    ) {
        let mut order: Vec<usize> = (0..decisions.len().min(throttles.len())).collect();
        order.sort_by_key(|&index| std::cmp::Reverse(decisions[index].remaining));
        for index in order {
            throttles[index].write_headers(&decisions[index], out);
        }
    }

    /// Adds the rate-limit headers due for `decision` to `out`.
    pub fn write_headers(&self, decision: &Decision, out: &mut HeaderMap) {
        self.write_headers_with(decision, None, out);
    }

    /// Adds the rate-limit headers due for `decision` to `out`, with `overrides` (if any)
    /// merged over the throttle's headers for this call ([`Headers::merged_over`]; a
    /// [`Header::disabled`](traffik_core::headers::Header::disabled) entry suppresses one).
    pub fn write_headers_with(
        &self,
        decision: &Decision,
        overrides: Option<&Headers>,
        out: &mut HeaderMap,
    ) {
        if decision.is_skipped() {
            return;
        }
        let base = self.throttle.headers();
        let merged;
        let headers: &Headers = match overrides {
            Some(overrides) => {
                merged = overrides.merged_over(&base);
                &merged
            }
            None => &base,
        };
        if headers.is_empty() {
            return;
        }
        headers.render(decision, self.throttle.rate(), |name, value| {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                out.insert(name, value);
            }
        });
    }
}

impl fmt::Debug for HttpThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpThrottle")
            .field("throttle", &self.throttle)
            .field("scope", &self.http.scope)
            .field("headers", &*self.throttle.headers())
            .field("count_preflights", &self.http.count_preflights)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpThrottle`]: the core [`ThrottleBuilder`] over request [`Parts`] (every core
/// setting, the rate-limit [`headers`](ThrottleBuilder::headers) and typed
/// [`extension`](ThrottleBuilder::extension)s), plus the HTTP settings of
/// [`HttpThrottleBuilderExt`]: scope, throttled handler, CORS preflights. Start with
/// [`HttpThrottle::builder`], which sets what HTTP needs:
///
/// - the identifier defaults to [`ClientIp::new`] (the TCP peer; behind a proxy, configure
///   [`ClientIp::behind`]); an identifier returning `EXEMPTED` skips the throttle;
/// - a hit goes to the throttle's own backend, else the request's
///   [`RequestBackend`](crate::RequestBackend), else the registry's default;
/// - `.headers(..)` chooses the rate-limit headers (default none: only `Retry-After` on a
///   429).
pub type HttpThrottleBuilder = ThrottleBuilder<Parts, HttpThrottle>;

/// The HTTP settings of an [`HttpThrottleBuilder`], kept as typed extensions of the core
/// throttle (in the prelude).
///
/// ```
/// use traffik_axum::prelude::*;
/// use traffik_axum::{EntryPoint, HttpThrottle, Scope};
///
/// let api = HttpThrottle::builder("doc-builder-ext", "100/min")
///     .backend(MemoryBackend::new())
///     .scope(Scope::Shared)
///     .count_preflights(true)
///     .build()?;
/// assert_eq!(api.scope_for(EntryPoint::Extractor), Scope::Shared);
/// # Ok::<(), ConfigError>(())
/// ```
pub trait HttpThrottleBuilderExt: sealed::Sealed + Sized {
    /// Which requests share a budget, at every entry point (default: the entry point's own,
    /// see [`EntryPoint`]).
    #[must_use]
    fn scope(self, scope: Scope) -> Self;

    /// Whether CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// spend the budget of the requests they precede. Default `false`: they get a budget of
    /// their own, so a browser's preflight never halves the budget of the request it precedes,
    /// and a flood of preflights is still limited.
    #[must_use]
    fn count_preflights(self, count: bool) -> Self;

    /// The response of a refusal, replacing the default 429 (headers and `Retry-After` are still
    /// added unless it sets them). A backend can carry a default for its throttles.
    #[must_use]
    fn on_throttled(self, handler: ThrottledHandler) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::HttpThrottleBuilder {}
}

impl HttpThrottleBuilderExt for HttpThrottleBuilder {
    fn scope(self, scope: Scope) -> Self {
        self.extension(scope)
    }

    fn count_preflights(self, count: bool) -> Self {
        self.extension(CountPreflights(count))
    }

    fn on_throttled(self, handler: ThrottledHandler) -> Self {
        self.extension(handler)
    }
}

impl FromThrottle<Parts> for HttpThrottle {
    fn from_throttle(throttle: Throttle<Parts>) -> Result<Self, ConfigError> {
        let extensions = throttle.extensions();
        let http = HttpSettings {
            scope: extensions.get::<Scope>().copied(),
            on_throttled: RwLock::new(extensions.get::<ThrottledHandler>().cloned()),
            count_preflights: extensions
                .get::<CountPreflights>()
                .is_some_and(|count| count.0),
        };
        Ok(HttpThrottle {
            throttle,
            http: Arc::new(http),
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use http::{Method, StatusCode};
    use traffik_core::MemoryBackend;
    use traffik_core::headers::{Header, HeaderValue, When};

    use traffik_core::ThrottleRegistry;
    use traffik_core::backend::Backend;

    use super::*;
    use crate::scope::tests::{matched, parts};

    #[tokio::test]
    async fn enforce_refuses_with_a_429_carrying_the_configured_headers() {
        let throttle = HttpThrottle::builder("http-throttle-enforce", "1/min")
            .backend(MemoryBackend::new())
            .headers(Headers::throttled_only())
            .build()
            .unwrap();
        let mut request = parts(Method::GET, "/");
        request.extensions.insert(matched("/"));
        assert_eq!(throttle.enforce(&request).await.unwrap().remaining, 0);
        assert!(
            throttle
                .check_request(&request)
                .await
                .unwrap()
                .is_throttled()
        );
        assert_eq!(
            throttle
                .stat_request(&request)
                .await
                .unwrap()
                .unwrap()
                .hits_remaining,
            0
        );
        let rejection = throttle.enforce(&request).await.unwrap_err();
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-ratelimit-limit"], "1");
        assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
        // Another route has its own budget (the default scope is per route).
        let mut other = parts(Method::GET, "/other");
        other.extensions.insert(matched("/other"));
        assert!(throttle.enforce(&other).await.is_ok());
        // So do requests no route matched: one budget for all of them.
        assert!(
            throttle
                .enforce(&parts(Method::GET, "/nowhere"))
                .await
                .is_ok()
        );
        assert!(
            throttle
                .enforce(&parts(Method::GET, "/elsewhere"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_custom_handler_answers_refusals() {
        let throttle = HttpThrottle::builder("http-throttle-custom", "1/min")
            .backend(MemoryBackend::new())
            .clock(traffik_core::ManualClock::new(0))
            .context(Context::new().with("plan", "free"))
            .on_throttled(ThrottledHandler::new(|_, _, throttle, context| {
                let plan = context.get_str("plan").unwrap_or_default();
                (
                    StatusCode::IM_A_TEAPOT,
                    format!("{} {plan}", throttle.uid()),
                )
                    .into_response()
            }))
            .build()
            .unwrap();
        let request = parts(Method::POST, "/");
        let response = refusal(&throttle, &request).await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(response.headers()["retry-after"], "60");
        assert_eq!(body(response).await, "http-throttle-custom free");
        // Call-time context reaches the handler, merged over the static context.
        let call = Context::new().with("plan", "pro");
        let response = throttle
            .enforce(&request)
            .context(&call)
            .await
            .unwrap_err()
            .into_response();
        assert_eq!(body(response).await, "http-throttle-custom pro");
    }

    /// Spends the one unit of a `1/min` throttle, then returns the refusal of the next hit.
    async fn refusal(throttle: &HttpThrottle, request: &Parts) -> axum::response::Response {
        throttle.enforce(request).await.unwrap();
        throttle.enforce(request).await.unwrap_err().into_response()
    }

    async fn body(response: axum::response::Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn teapot(text: &'static str) -> ThrottledHandler {
        ThrottledHandler::new(move |_, _, _, _| (StatusCode::IM_A_TEAPOT, text).into_response())
    }

    #[tokio::test]
    async fn the_backend_handler_answers_unless_the_throttle_has_one() {
        let backend: Arc<dyn Backend> = Arc::new(
            MemoryBackend::builder()
                .extension(teapot("backend"))
                .build()
                .unwrap(),
        );
        let plain = HttpThrottle::builder("http-throttle-backend-handler", "1/min")
            .shared_backend(Arc::clone(&backend))
            .build()
            .unwrap();
        let own = HttpThrottle::builder("http-throttle-own-handler", "1/min")
            .shared_backend(Arc::clone(&backend))
            .on_throttled(teapot("throttle"))
            .build()
            .unwrap();
        let request = parts(Method::GET, "/");
        for (throttle, expected) in [(&plain, "backend"), (&own, "throttle")] {
            let response = refusal(throttle, &request).await;
            assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
            assert_eq!(body(response).await, expected);
        }
        // A backend that arrives with the request (multi-tenant) brings its handler too.
        let dynamic = HttpThrottle::builder("http-throttle-dynamic-handler", "1/min")
            .registry(&ThrottleRegistry::new())
            .build()
            .unwrap();
        let mut request = parts(Method::GET, "/");
        request.extensions.insert(RequestBackend::new(backend));
        assert_eq!(body(refusal(&dynamic, &request).await).await, "backend");
    }

    #[tokio::test]
    async fn the_handler_and_headers_can_be_replaced_while_serving() {
        let throttle = HttpThrottle::builder("http-throttle-live-updates", "1/min")
            .backend(MemoryBackend::new())
            .clock(traffik_core::ManualClock::new(0))
            .build()
            .unwrap();
        let clone = throttle.clone();
        let request = parts(Method::GET, "/");
        let response = refusal(&throttle, &request).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
        throttle.update_on_throttled(Some(teapot("updated")));
        throttle
            .core()
            .update_headers(
                Headers::throttled_only().with(
                    Header::new(
                        "X-Used",
                        HeaderValue::computed(|hit| {
                            let d = hit.decision();
                            (d.limit - d.remaining).to_string()
                        }),
                        When::Always,
                    )
                    .only_if(|hit| hit.decision().limit > 0),
                ),
            )
            .unwrap();
        let response = clone.enforce(&request).await.unwrap_err().into_response();
        assert_eq!(
            response.status(),
            StatusCode::IM_A_TEAPOT,
            "every clone sees it"
        );
        assert_eq!(response.headers()["x-ratelimit-limit"], "1");
        assert_eq!(response.headers()["x-used"], "1");
        assert_eq!(body(response).await, "updated");
        throttle.update_on_throttled(None);
        let response = clone.enforce(&request).await.unwrap_err().into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn per_call_header_overrides_replace_add_and_disable() {
        let throttle = HttpThrottle::builder("http-throttle-header-overrides", "1/min")
            .backend(MemoryBackend::new())
            .clock(traffik_core::ManualClock::new(0))
            .headers(Headers::always())
            .build()
            .unwrap();
        let overrides = Headers::none()
            .with(Header::disabled("X-RateLimit-Remaining"))
            .with(Header::new(
                "X-RateLimit-Limit",
                HeaderValue::Static("hidden".into()),
                When::Always,
            ))
            .with(Header::new(
                "X-Wait-Ms",
                HeaderValue::WaitMilliseconds,
                When::Throttled,
            ));
        let request = parts(Method::GET, "/");
        let decision = throttle
            .enforce(&request)
            .headers(&overrides)
            .await
            .unwrap();
        let mut success = HeaderMap::new();
        throttle.write_headers_with(&decision, Some(&overrides), &mut success);
        assert_eq!(success["x-ratelimit-limit"], "hidden");
        assert!(!success.contains_key("x-ratelimit-remaining"));
        assert!(!success.contains_key("x-wait-ms"));
        assert_eq!(success["x-ratelimit-reset"], "60");

        let response = throttle
            .enforce(&request)
            .headers(&overrides)
            .await
            .unwrap_err()
            .into_response();
        let headers = response.headers();
        assert_eq!(headers["x-ratelimit-limit"], "hidden");
        assert!(!headers.contains_key("x-ratelimit-remaining"));
        assert_eq!(headers["x-wait-ms"], "60000");
        assert_eq!(headers["retry-after"], "60");
        // Without overrides the throttle's own headers are back.
        let mut plain = HeaderMap::new();
        throttle.write_headers(&decision, &mut plain);
        assert_eq!(plain["x-ratelimit-remaining"], "0");
        assert_eq!(plain["x-ratelimit-limit"], "1");
    }

    #[tokio::test]
    async fn no_backend_is_a_500_naming_the_throttle() {
        let registry = ThrottleRegistry::new();
        let throttle = HttpThrottle::builder("http-throttle-nobackend", "1/min")
            .registry(&registry)
            .build()
            .unwrap();
        let rejection = throttle
            .enforce(&parts(Method::GET, "/"))
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            rejection.to_string().contains("http-throttle-nobackend"),
            "{rejection}"
        );
    }

    #[test]
    fn http_settings_are_typed_extensions_read_once() {
        use crate::HttpThrottleBuilderExt;

        let by_method = HttpThrottle::builder("http-settings-method", "1/min")
            .scope(Scope::Shared)
            .count_preflights(true)
            .build()
            .unwrap();
        let by_extension = HttpThrottle::builder("http-settings-extension", "1/min")
            .extension(Scope::Shared)
            .extension(CountPreflights(true))
            .build()
            .unwrap();
        for throttle in [&by_method, &by_extension] {
            assert_eq!(throttle.scope(), Some(Scope::Shared));
            assert_eq!(throttle.scope_for(EntryPoint::Extractor), Scope::Shared);
            assert!(throttle.http.count_preflights);
        }
        // Any core throttle over request parts becomes an HttpThrottle the same way.
        let core = ThrottleBuilder::<Parts>::new("http-settings-core", "1/min")
            .identifier(ClientIp::new().identifier())
            .extension(Scope::Path)
            .build()
            .unwrap();
        let wrapped = HttpThrottle::from_throttle(core).unwrap();
        assert_eq!(wrapped.scope_for(EntryPoint::Layer), Scope::Path);
        assert!(!wrapped.http.count_preflights);
    }
}
