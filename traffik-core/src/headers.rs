//! The rate-limit headers model: which fields a response carries, when, and their values,
//! computed from the hit's own [`Decision`] (never a second backend read).
//!
//! Protocol crates turn these into real headers (`traffik-axum` attaches them to 200s and 429s).
//! `Retry-After` on a refusal is not part of the model: a refusal always carries it.
//!
//! ```
//! use std::time::Duration;
//! use traffik_core::headers::{Header, HeaderValue, Headers, When};
//! use traffik_core::{Decision, Rate};
//!
//! let headers = Headers::always()
//!     .with(Header::new("X-RateLimit-Wait-Ms", HeaderValue::WaitMilliseconds, When::Throttled))
//!     .ietf("default");
//! let decision = Decision::allowed(10, 7, Duration::from_millis(4_200));
//! let mut out = Vec::new();
//! headers.render(&decision, Some(Rate::per_minute(10)), |name, value| out.push(format!("{name}: {value}")));
//! assert_eq!(out, [
//!     "X-RateLimit-Limit: 10",
//!     "X-RateLimit-Remaining: 7",
//!     "X-RateLimit-Reset: 5",
//!     "RateLimit-Policy: \"default\";q=10;w=60",
//!     "RateLimit: \"default\";r=7;t=5",
//! ]);
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write};
use std::sync::Arc;

use crate::{Decision, Rate};

/// When a header is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// On every response the throttle decided (allowed or refused).
    Always,
    /// Only when the hit was refused.
    Throttled,
    /// Never: in a per-call override ([`Headers::merged_over`]), removes the throttle's
    /// header of the same name for that call. See [`Header::disabled`].
    Never,
}

/// What a header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderValue {
    /// The limit in force for the hit (units per period).
    Limit,
    /// Whole units left after the hit.
    Remaining,
    /// Seconds until the client's quota is fully restored, rounded up.
    ResetSeconds,
    /// Milliseconds until the client's quota is fully restored, rounded up.
    ResetMilliseconds,
    /// Seconds until the refused hit could succeed, rounded up (0 when allowed).
    WaitSeconds,
    /// Milliseconds until the refused hit could succeed, rounded up (0 when allowed).
    WaitMilliseconds,
    /// A fixed text.
    Static(Cow<'static, str>),
    /// A text computed by a function of the hit ([`HeaderValue::computed`]; the reference's
    /// `Header(v=callable)`).
    Computed(HeaderFn<String>),
}

impl HeaderValue {
    /// A value computed from the hit by `value` (a tier name, a remaining share, …).
    ///
    /// ```
    /// use std::time::Duration;
    /// use traffik_core::Decision;
    /// use traffik_core::headers::{Header, HeaderValue, Headers, When};
    ///
    /// let used = HeaderValue::computed(|hit| {
    ///     let d = hit.decision();
    ///     format!("{}%", (d.limit - d.remaining) * 100 / d.limit.max(1))
    /// });
    /// let headers = Headers::none()
    ///     .with(Header::new("X-Quota-Used", used, When::Always))
    ///     // The reference's `when=callable`: only when few units are left.
    ///     .with(Header::new("X-Slow-Down", HeaderValue::Static("1".into()), When::Always)
    ///         .only_if(|hit| hit.decision().remaining < 2));
    /// let mut out = Vec::new();
    /// let decision = Decision::allowed(10, 1, Duration::from_secs(3));
    /// headers.render(&decision, None, |name, value| out.push(format!("{name}: {value}")));
    /// assert_eq!(out, ["X-Quota-Used: 90%", "X-Slow-Down: 1"]);
    /// ```
    pub fn computed(value: impl Fn(&HeaderInput<'_>) -> String + Send + Sync + 'static) -> Self {
        HeaderValue::Computed(HeaderFn(Arc::new(value)))
    }
}

/// What a computed header value or condition sees: the hit's decision (limit, units left,
/// reset, wait) and the throttle's fixed rate. The reference passes its `StrategyStat`; the
/// decision carries the same figures for this hit, with no second backend read.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HeaderInput<'a> {
    decision: &'a Decision,
    rate: Option<Rate>,
}

impl<'a> HeaderInput<'a> {
    /// The hit's decision.
    #[must_use]
    pub fn decision(&self) -> &'a Decision {
        self.decision
    }

    /// The throttle's fixed rate (`None` when chosen per hit).
    #[must_use]
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }
}

/// A user function over a [`HeaderInput`], returning `T`: a computed value (`String`) or a
/// condition (`bool`). Compared by identity.
pub struct HeaderFn<T>(Arc<dyn Fn(&HeaderInput<'_>) -> T + Send + Sync>);

impl<T> Clone for HeaderFn<T> {
    fn clone(&self) -> Self {
        HeaderFn(Arc::clone(&self.0))
    }
}

impl<T> PartialEq for HeaderFn<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for HeaderFn<T> {}

impl<T> fmt::Debug for HeaderFn<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeaderFn(..)")
    }
}

/// One header: its name, its value and when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    name: Cow<'static, str>,
    value: HeaderValue,
    when: When,
    condition: Option<HeaderFn<bool>>,
}

impl Header {
    /// A header `name` carrying `value`, sent `when`.
    pub fn new(name: impl Into<Cow<'static, str>>, value: HeaderValue, when: When) -> Self {
        Header {
            name: name.into(),
            value,
            when,
            condition: None,
        }
    }

    /// Sent only when `condition` also holds for the hit (the reference's
    /// `Header(when=callable)`; with [`When::Always`] the condition alone decides).
    #[must_use]
    pub fn only_if(
        mut self,
        condition: impl Fn(&HeaderInput<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.condition = Some(HeaderFn(Arc::new(condition)));
        self
    }

    /// A header that is never sent: in a per-call override it suppresses the throttle's
    /// header `name` (including the IETF fields `RateLimit` and `RateLimit-Policy`).
    pub fn disabled(name: impl Into<Cow<'static, str>>) -> Self {
        Header::new(name, HeaderValue::Static(Cow::Borrowed("")), When::Never)
    }

    /// The header's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it carries.
    #[must_use]
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// When it is sent.
    #[must_use]
    pub fn when(&self) -> When {
        self.when
    }
}

/// The set of rate-limit headers a throttle sends.
///
/// Presets: [`Headers::none`] (the default: nothing but `Retry-After` on refusals),
/// [`Headers::always`] and [`Headers::throttled_only`] (`X-RateLimit-Limit`,
/// `X-RateLimit-Remaining`, `X-RateLimit-Reset` in seconds). [`with`](Self::with) adds or
/// replaces a header by name (case-insensitively), [`without`](Self::without) removes one, and
/// [`ietf`](Self::ietf) adds the IETF draft fields `RateLimit-Policy` and `RateLimit`, and
/// [`merged_over`](Self::merged_over) applies a per-call override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    headers: Vec<Header>,
    policy: Option<Cow<'static, str>>,
    /// Whether a refusal in shadow mode gets the headers of a refusal (`None`: not set, which
    /// is no; a per-call set overrides the throttle's).
    on_shadow_refusals: Option<bool>,
}

impl Headers {
    /// No rate-limit headers.
    #[must_use]
    pub fn none() -> Self {
        Headers::default()
    }

    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` on every response.
    #[must_use]
    pub fn always() -> Self {
        Self::preset(When::Always)
    }

    /// The same three headers, on refusals only.
    #[must_use]
    pub fn throttled_only() -> Self {
        Self::preset(When::Throttled)
    }

    fn preset(when: When) -> Self {
        Headers::none()
            .with(Header::new("X-RateLimit-Limit", HeaderValue::Limit, when))
            .with(Header::new(
                "X-RateLimit-Remaining",
                HeaderValue::Remaining,
                when,
            ))
            .with(Header::new(
                "X-RateLimit-Reset",
                HeaderValue::ResetSeconds,
                when,
            ))
    }

    /// Adds `header`, replacing one of the same name.
    #[must_use]
    pub fn with(mut self, header: Header) -> Self {
        match self
            .headers
            .iter_mut()
            .find(|h| h.name.eq_ignore_ascii_case(&header.name))
        {
            Some(existing) => *existing = header,
            None => self.headers.push(header),
        }
        self
    }

    /// Removes the header `name` (case-insensitively), if present.
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self
    }

    /// Adds the IETF draft fields (draft-ietf-httpapi-ratelimit-headers) on every response:
    /// `RateLimit-Policy: "{policy}";q={limit};w={window seconds}` and
    /// `RateLimit: "{policy}";r={remaining};t={reset seconds}`. `w` is left out when the rate is
    /// chosen per hit.
    #[must_use]
    pub fn ietf(mut self, policy: impl Into<Cow<'static, str>>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// Whether a hit refused in shadow mode
    /// ([`Outcome::ShadowThrottled`](crate::Outcome::ShadowThrottled)) gets the headers a
    /// refusal would get: its remaining 0, its wait (`Retry-After` itself is only ever sent on
    /// a 429). Default `false`: such a response carries no rate-limit header at all, so that a
    /// dry run changes nothing a client sees; turn it on to watch the would-be refusals from
    /// the client side.
    ///
    /// ```
    /// use std::time::Duration;
    /// use traffik_core::headers::Headers;
    /// use traffik_core::Decision;
    ///
    /// let shadow = Decision::throttled(10, 0, Duration::from_secs(3), Duration::from_secs(3)).shadowed();
    /// let count = |headers: &Headers| { let mut n = 0; headers.render(&shadow, None, |_, _| n += 1); n };
    /// assert_eq!(count(&Headers::always()), 0);
    /// assert_eq!(count(&Headers::always().on_shadow_refusals(true)), 3);
    /// // A per-call override decides either way.
    /// let throttle = Headers::always().on_shadow_refusals(true);
    /// assert_eq!(count(&Headers::none().on_shadow_refusals(false).merged_over(&throttle)), 0);
    /// assert_eq!(count(&Headers::none().merged_over(&throttle)), 3);
    /// ```
    #[must_use]
    pub fn on_shadow_refusals(mut self, send: bool) -> Self {
        self.on_shadow_refusals = Some(send);
        self
    }

    /// These headers as a per-call override of `base`: each header here replaces `base`'s
    /// header of the same name (a [`Header::disabled`] one removes it), new names are added
    /// after `base`'s, and an IETF policy here replaces `base`'s.
    ///
    /// ```
    /// use traffik_core::headers::{Header, HeaderValue, Headers, When};
    ///
    /// let base = Headers::always();
    /// let call = Headers::none()
    ///     .with(Header::disabled("X-RateLimit-Remaining"))
    ///     .with(Header::new("X-Plan", HeaderValue::Static("free".into()), When::Always));
    /// let merged = call.merged_over(&base);
    /// let names: Vec<_> = merged.iter().filter(|h| h.when() != When::Never).map(|h| h.name()).collect();
    /// assert_eq!(names, ["X-RateLimit-Limit", "X-RateLimit-Reset", "X-Plan"]);
    /// ```
    #[must_use]
    pub fn merged_over(&self, base: &Headers) -> Headers {
        let mut merged = base.clone();
        for header in &self.headers {
            merged = merged.with(header.clone());
        }
        if self.policy.is_some() {
            merged.policy.clone_from(&self.policy);
        }
        if self.on_shadow_refusals.is_some() {
            merged.on_shadow_refusals = self.on_shadow_refusals;
        }
        merged
    }

    /// Whether no header would ever be sent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.policy.is_none() && self.headers.iter().all(|h| h.when == When::Never)
    }

    /// The headers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.headers.iter()
    }

    /// Calls `emit(name, value)` for each header due on a response to `decision`. `rate` is
    /// the throttle's fixed rate, if it has one (for the IETF `w` parameter).
    pub fn render(
        &self,
        decision: &Decision,
        rate: Option<Rate>,
        mut emit: impl FnMut(&str, &str),
    ) {
        let shadow = decision.is_shadow_throttled();
        if shadow && self.on_shadow_refusals != Some(true) {
            return;
        }
        let throttled = shadow || decision.is_throttled();
        let input = HeaderInput { decision, rate };
        let mut value = String::new();
        for header in &self.headers {
            let due = match header.when {
                When::Always => true,
                When::Throttled => throttled,
                When::Never => false,
            };
            if !due
                || header
                    .condition
                    .as_ref()
                    .is_some_and(|condition| !(condition.0)(&input))
            {
                continue;
            }
            value.clear();
            write_value(&mut value, &header.value, &input);
            emit(&header.name, &value);
        }
        if let Some(policy) = &self.policy {
            if !self.is_disabled(IETF_POLICY) {
                value.clear();
                let _ = write!(value, "\"{}\";q={}", sf_string(policy), decision.limit);
                if let Some(rate) = rate.filter(|rate| !rate.is_unlimited()) {
                    let _ = write!(value, ";w={}", rate.period().as_millis().div_ceil(1000));
                }
                emit(IETF_POLICY, &value);
            }
            if self.is_disabled(IETF_LIMIT) {
                return;
            }
            value.clear();
            let _ = write!(
                value,
                "\"{}\";r={};t={}",
                sf_string(policy),
                decision.remaining,
                ceil_secs(decision.reset.as_millis())
            );
            emit(IETF_LIMIT, &value);
        }
    }

    fn is_disabled(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|h| h.when == When::Never && h.name.eq_ignore_ascii_case(name))
    }
}

const IETF_POLICY: &str = "RateLimit-Policy";
const IETF_LIMIT: &str = "RateLimit";

fn write_value(out: &mut String, value: &HeaderValue, input: &HeaderInput<'_>) {
    let decision = input.decision;
    let wait = match decision.outcome {
        crate::Outcome::ShadowThrottled { wait } => wait,
        _ => decision.wait(),
    };
    let wait_ms = wait.map_or(0, |wait| wait.as_nanos().div_ceil(1_000_000));
    let reset_ms = decision.reset.as_nanos().div_ceil(1_000_000);
    let _ = match value {
        HeaderValue::Limit => write!(out, "{}", decision.limit),
        HeaderValue::Remaining => write!(out, "{}", decision.remaining),
        HeaderValue::ResetSeconds => write!(out, "{}", ceil_secs(reset_ms)),
        HeaderValue::ResetMilliseconds => write!(out, "{reset_ms}"),
        HeaderValue::WaitSeconds => write!(out, "{}", ceil_secs(wait_ms)),
        HeaderValue::WaitMilliseconds => write!(out, "{wait_ms}"),
        HeaderValue::Static(text) => {
            out.push_str(text);
            Ok(())
        }
        HeaderValue::Computed(value) => {
            out.push_str(&(value.0)(input));
            Ok(())
        }
    };
}

fn ceil_secs(ms: u128) -> u128 {
    ms.div_ceil(1000)
}

/// `text` as the inside of a structured-field string: only printable ASCII, with `"` and `\`
/// escaped (anything else becomes `_`).
fn sf_string(text: &str) -> Cow<'_, str> {
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rendered(
        headers: &Headers,
        decision: &Decision,
        rate: Option<Rate>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        headers.render(decision, rate, |name, value| {
            out.push((name.to_owned(), value.to_owned()));
        });
        out
    }

    #[test]
    fn throttled_only_headers_appear_on_refusals_only() {
        let headers = Headers::throttled_only();
        let allowed = Decision::allowed(5, 4, Duration::from_secs(10));
        assert!(rendered(&headers, &allowed, None).is_empty());
        let refused = Decision::throttled(
            5,
            0,
            Duration::from_millis(1_001),
            Duration::from_millis(1_001),
        );
        assert_eq!(
            rendered(&headers, &refused, None),
            [
                ("X-RateLimit-Limit".to_owned(), "5".to_owned()),
                ("X-RateLimit-Remaining".to_owned(), "0".to_owned()),
                ("X-RateLimit-Reset".to_owned(), "2".to_owned()),
            ]
        );
    }

    #[test]
    fn with_replaces_by_name_and_without_removes() {
        let headers = Headers::always()
            .with(Header::new(
                "x-ratelimit-limit",
                HeaderValue::Static("custom".into()),
                When::Always,
            ))
            .without("X-RATELIMIT-RESET")
            .with(Header::new(
                "X-Wait",
                HeaderValue::WaitMilliseconds,
                When::Always,
            ));
        let refused =
            Decision::throttled(5, 0, Duration::from_micros(1_500), Duration::from_secs(3));
        assert_eq!(
            rendered(&headers, &refused, None),
            [
                ("x-ratelimit-limit".to_owned(), "custom".to_owned()),
                ("X-RateLimit-Remaining".to_owned(), "0".to_owned()),
                ("X-Wait".to_owned(), "2".to_owned()),
            ]
        );
        assert!(Headers::none().is_empty());
    }

    #[test]
    fn a_per_call_override_replaces_adds_and_disables_by_name() {
        let base = Headers::throttled_only().ietf("api");
        let call = Headers::none()
            .with(Header::new(
                "x-ratelimit-limit",
                HeaderValue::Static("per-call".into()),
                When::Always,
            ))
            .with(Header::disabled("X-RateLimit-Reset"))
            .with(Header::disabled("ratelimit-policy"))
            .with(Header::new(
                "X-Wait-Ms",
                HeaderValue::WaitMilliseconds,
                When::Throttled,
            ));
        let merged = call.merged_over(&base);
        let allowed = Decision::allowed(5, 4, Duration::from_secs(2));
        assert_eq!(
            rendered(&merged, &allowed, Some(Rate::per_second(5))),
            [
                ("x-ratelimit-limit".to_owned(), "per-call".to_owned()),
                ("RateLimit".to_owned(), "\"api\";r=4;t=2".to_owned()),
            ]
        );
        let refused = Decision::throttled(5, 0, Duration::from_millis(700), Duration::from_secs(1));
        let names: Vec<String> = rendered(&merged, &refused, None)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "x-ratelimit-limit",
                "X-RateLimit-Remaining",
                "X-Wait-Ms",
                "RateLimit"
            ]
        );
        // Disabling every header leaves nothing to send.
        let silent = Headers::none()
            .with(Header::disabled("X-RateLimit-Limit"))
            .with(Header::disabled("X-RateLimit-Remaining"))
            .with(Header::disabled("X-RateLimit-Reset"))
            .merged_over(&Headers::always());
        assert!(silent.is_empty());
        assert!(rendered(&silent, &refused, None).is_empty());
    }

    #[test]
    fn ietf_fields_use_structured_field_syntax() {
        let headers = Headers::none().ietf("burst \"x\"\u{e9}");
        let decision = Decision::allowed(2, 1, Duration::from_millis(500));
        assert_eq!(
            rendered(&headers, &decision, Some(Rate::per_second(2))),
            [
                (
                    "RateLimit-Policy".to_owned(),
                    "\"burst \\\"x\\\"_\";q=2;w=1".to_owned()
                ),
                (
                    "RateLimit".to_owned(),
                    "\"burst \\\"x\\\"_\";r=1;t=1".to_owned()
                ),
            ]
        );
        // A rate chosen per hit has no fixed window to announce.
        assert_eq!(
            rendered(&headers, &decision, None)[0].1,
            "\"burst \\\"x\\\"_\";q=2"
        );
    }
}
