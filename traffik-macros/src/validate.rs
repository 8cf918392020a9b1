//! Validation: what the parsed attribute means, checked against the handler it annotates.
//! Every error points at the token at fault.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, FnArg, ItemFn, Lit, LitInt, LitStr, Path};
use traffik_core::{ParseRateError, Rate};

use crate::parse::{Args, Limit, Named};

/// The options the attribute accepts.
const OPTIONS: &[&str] = &[
    "rate",
    "uid",
    "strategy",
    "key",
    "cost",
    "backend",
    "on_error",
    "scope",
    "headers",
    "min_wait",
    "context",
    "on_throttled",
    "registry",
    "clock",
];

/// A checked attribute: the limits to enforce and the options of the ones written here.
pub(crate) struct Spec {
    pub(crate) limits: Vec<CheckedLimit>,
    pub(crate) options: Options,
}

pub(crate) enum CheckedLimit {
    /// A rate written in the attribute, parsed by traffik-core at expansion.
    Rate { limit: u64, period_ms: u64 },
    /// A static throttle (`BURST`: `LazyLock<HttpThrottle>` or a `LazyLock<Result<..>>`).
    Static(Path),
    /// A policy type (`Burst`), used as `Throttled<Burst>`.
    Policy(Path),
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) uid: Option<LitStr>,
    pub(crate) strategy: Option<Expr>,
    pub(crate) key: Option<Expr>,
    pub(crate) cost: Option<Cost>,
    pub(crate) backend: Option<Expr>,
    pub(crate) on_error: Option<OnErrorChoice>,
    pub(crate) scope: Option<ScopeChoice>,
    pub(crate) headers: Option<HeadersChoice>,
    pub(crate) min_wait: Option<MinWait>,
    pub(crate) context: Option<Expr>,
    pub(crate) on_throttled: Option<Expr>,
    pub(crate) registry: Option<Expr>,
    pub(crate) clock: Option<Expr>,
}

pub(crate) enum Cost {
    Fixed(u64),
    Function(Expr),
}

pub(crate) enum OnErrorChoice {
    Allow,
    Throttle,
    Raise,
    Custom(Expr),
}

#[derive(Clone, Copy)]
pub(crate) enum ScopeChoice {
    Shared,
    Route,
    RouteAnyMethod,
    Path,
}

pub(crate) enum HeadersChoice {
    None,
    Always,
    ThrottledOnly,
    Custom(Expr),
}

pub(crate) enum MinWait {
    Millis(u64),
    Custom(Expr),
}

/// Collects every error instead of stopping at the first.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }
}

/// The most limits one attribute may hold: `ThrottledAll` takes tuples of up to eight policies.
const MAX_LIMITS: usize = 8;

/// Checks the attribute against the function it is on.
pub(crate) fn validate(args: Args, function: &ItemFn) -> syn::Result<Spec> {
    let mut errors = Errors::default();
    check_function(function, &mut errors);

    let mut options = Options::default();
    let mut seen: Vec<String> = Vec::new();
    let mut rate_option: Option<LitStr> = None;
    let first_option = args.options.first().map(|named| named.name.span());
    for Named { name, value } in args.options {
        let key = name.to_string();
        if !OPTIONS.contains(&key.as_str()) {
            errors.at(name.span(), unknown_option(&key));
            continue;
        }
        if seen.contains(&key) {
            errors.at(name.span(), format!("duplicate option `{key}`"));
            continue;
        }
        seen.push(key.clone());
        if let Err(error) = apply_option(&key, value, &mut options, &mut rate_option) {
            errors.push(error);
        }
    }

    let mut positional = args.limits;
    let written_rates = positional
        .iter()
        .filter(|limit| matches!(limit, Limit::Rate(_)))
        .count();
    if let Some(rate) = rate_option {
        if written_rates > 0 {
            errors.at(
                rate.span(),
                "give the rates either as strings (`#[throttled(\"10/min\", \"100/hour\")]`) or as `rate = \"..\"`, not both",
            );
        } else {
            positional.push(Limit::Rate(rate));
        }
    }
    if positional.is_empty() {
        errors.at(
            Span::call_site(),
            "`#[throttled]` needs at least one limit, e.g. `#[throttled(\"100/min\")]`, or an existing throttle, e.g. `#[throttled(BURST)]`",
        );
    }

    if let Some(ninth) = positional.get(MAX_LIMITS) {
        let span = match ninth {
            Limit::Rate(text) => text.span(),
            Limit::Reuse(path) => path.span(),
        };
        errors.at(
            span,
            format!(
                "at most {MAX_LIMITS} limits per handler (they are decided as one, all or nothing)"
            ),
        );
    }

    let mut limits = Vec::new();
    for limit in positional {
        match limit {
            Limit::Rate(text) => match check_rate(&text) {
                Ok(rate) => limits.push(CheckedLimit::Rate {
                    limit: rate.limit(),
                    period_ms: rate.period_ms(),
                }),
                Err(error) => errors.push(error),
            },
            Limit::Reuse(path) => limits.push(reused(path)),
        }
    }

    let rates = limits
        .iter()
        .filter(|limit| matches!(limit, CheckedLimit::Rate { .. }))
        .count();
    if rates == 0 && !seen.is_empty() && !limits.is_empty() {
        errors.at(
            first_option.unwrap_or_else(Span::call_site),
            format!(
                "options (`{}`) configure the rates written in this attribute; an existing throttle is configured where it is defined",
                seen.join("`, `")
            ),
        );
    }
    if let Some(uid) = &options.uid
        && let Err(error) = check_uid(&uid.value(), rates)
    {
        errors.at(uid.span(), error);
    }

    match errors.0 {
        Some(error) => Err(error),
        None => Ok(Spec { limits, options }),
    }
}

fn check_function(function: &ItemFn, errors: &mut Errors) {
    if function.sig.asyncness.is_none() {
        errors.at(
            function.sig.fn_token.span(),
            "`#[throttled]` goes on an `async fn` handler: add `async`",
        );
    }
    if let Some(FnArg::Receiver(receiver)) = function.sig.inputs.first() {
        errors.at(
            receiver.span(),
            "`#[throttled]` handlers are free functions: `self` is not an axum extractor",
        );
    }
}

fn unknown_option(name: &str) -> String {
    let closest = OPTIONS
        .iter()
        .map(|option| (strsim::jaro_winkler(name, option), option))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, option)) => format!("unknown option `{name}`; did you mean `{option}`?"),
        None => format!(
            "unknown option `{name}`; expected one of `{}`",
            OPTIONS.join("`, `")
        ),
    }
}

/// Parses a rate with traffik-core's own parser; `unlimited` is refused (it never throttles).
fn check_rate(text: &LitStr) -> syn::Result<Rate> {
    let rate: Rate = text.value().parse().map_err(|error| match error {
        ParseRateError::ZeroLimit { input } => syn::Error::new(
            text.span(),
            format!(
                "limit 0 in rate `{input}` would refuse every request: give a limit of at least 1"
            ),
        ),
        error => syn::Error::new(text.span(), error),
    })?;
    if rate.is_unlimited() {
        return Err(syn::Error::new(
            text.span(),
            "an unlimited rate never throttles: remove the attribute, or give a limit such as \"100/min\"",
        ));
    }
    Ok(rate)
}

/// `SCREAMING_CASE` names a static throttle, anything else a policy type (Rust's naming rules,
/// which rustc's lints enforce).
fn reused(path: Path) -> CheckedLimit {
    let is_static = path.segments.last().is_some_and(|segment| {
        let name = segment.ident.to_string();
        segment.arguments.is_empty()
            && name.chars().any(|c| c.is_ascii_uppercase())
            && !name.chars().any(|c| c.is_ascii_lowercase())
    });
    if is_static {
        CheckedLimit::Static(path)
    } else {
        CheckedLimit::Policy(path)
    }
}

fn check_uid(uid: &str, rates: usize) -> Result<(), String> {
    // With several rates each throttle gets `{uid}.{index}`; check the longest.
    let longest = if rates > 1 {
        format!("{uid}.{}", rates - 1)
    } else {
        uid.to_owned()
    };
    traffik_core::key::validate_uid(&longest).map_err(|error| error.to_string())
}

fn apply_option(
    name: &str,
    value: Expr,
    options: &mut Options,
    rate: &mut Option<LitStr>,
) -> syn::Result<()> {
    match name {
        "rate" => *rate = Some(string(&value, "a rate string such as \"100/min\"")?),
        "uid" => {
            options.uid = Some(string(&value, "a uid string such as \"search\"")?);
        }
        "strategy" => options.strategy = Some(value),
        "key" => options.key = Some(value),
        "cost" => options.cost = Some(cost(value)?),
        "backend" => options.backend = Some(value),
        "on_error" => {
            options.on_error = Some(match word(&value).as_deref() {
                Some("allow") => OnErrorChoice::Allow,
                Some("throttle") => OnErrorChoice::Throttle,
                Some("raise") => OnErrorChoice::Raise,
                _ => OnErrorChoice::Custom(value),
            });
        }
        "scope" => {
            options.scope = Some(match word(&value).as_deref() {
                Some("shared") => ScopeChoice::Shared,
                Some("route") => ScopeChoice::Route,
                Some("route_any_method") => ScopeChoice::RouteAnyMethod,
                Some("path") => ScopeChoice::Path,
                _ => {
                    return Err(syn::Error::new(
                        value.span(),
                        "expected a scope: `shared`, `route`, `route_any_method` or `path`",
                    ));
                }
            });
        }
        "headers" => {
            options.headers = Some(match word(&value).as_deref() {
                Some("none") => HeadersChoice::None,
                Some("always") => HeadersChoice::Always,
                Some("throttled_only") => HeadersChoice::ThrottledOnly,
                _ => HeadersChoice::Custom(value),
            });
        }
        "min_wait" => options.min_wait = Some(min_wait(value)?),
        "context" => options.context = Some(value),
        "on_throttled" => options.on_throttled = Some(value),
        "registry" => options.registry = Some(value),
        "clock" => options.clock = Some(value),
        _ => unreachable!("options are checked against OPTIONS first"),
    }
    Ok(())
}

fn string(value: &Expr, expected: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("expected {expected}"),
        )),
    }
}

/// A bare lower-case word (`allow`, `shared`), if the value is one.
fn word(value: &Expr) -> Option<String> {
    match value {
        Expr::Path(ExprPath {
            path, qself: None, ..
        }) => path
            .get_ident()
            .map(ToString::to_string)
            .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_')),
        _ => None,
    }
}

fn cost(value: Expr) -> syn::Result<Cost> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = &value
    else {
        return Ok(Cost::Function(value));
    };
    let cost: u64 = int.base10_parse()?;
    if cost == 0 {
        return Err(syn::Error::new(
            int.span(),
            "a cost of 0 never consumes anything: use a cost of at least 1",
        ));
    }
    Ok(Cost::Fixed(cost))
}

/// `min_wait = "500ms"` (checked now, with the rate grammar's units) or a `Duration` expression.
fn min_wait(value: Expr) -> syn::Result<MinWait> {
    let Expr::Lit(ExprLit {
        lit: Lit::Str(text),
        ..
    }) = &value
    else {
        if let Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) = &value
        {
            return Err(bare_number(int));
        }
        return Ok(MinWait::Custom(value));
    };
    let rate: Rate = format!("1/{}", text.value()).parse().map_err(|_| {
        syn::Error::new(
            text.span(),
            format!(
                "invalid duration `{}`: expected a number and a unit, e.g. \"500ms\", \"2s\", \"1min\"",
                text.value()
            ),
        )
    })?;
    Ok(MinWait::Millis(rate.period_ms()))
}

fn bare_number(int: &LitInt) -> syn::Error {
    syn::Error::new(
        int.span(),
        "a wait needs a unit: write e.g. \"500ms\", or a `Duration`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(attribute: &str, function: &str) -> Result<Spec, String> {
        let args: Args = syn::parse_str(attribute).map_err(|e| e.to_string())?;
        let function: ItemFn = syn::parse_str(function).unwrap();
        validate(args, &function).map_err(|error| {
            error
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }

    const HANDLER: &str = "async fn handler() {}";

    #[test]
    fn rates_are_parsed_by_the_core_parser() {
        let spec = check(r#""5/10s", "20 per 2 mins""#, HANDLER).unwrap();
        let rates: Vec<(u64, u64)> = spec
            .limits
            .iter()
            .map(|limit| match limit {
                CheckedLimit::Rate { limit, period_ms } => (*limit, *period_ms),
                _ => panic!("not a rate"),
            })
            .collect();
        assert_eq!(rates, [(5, 10_000), (20, 120_000)]);
        let bad = check(r#""5/fortnight""#, HANDLER).err().unwrap();
        assert!(bad.contains("`fortnight`"), "{bad}");
    }

    #[test]
    fn statics_and_policy_types_are_told_apart_by_their_case() {
        let spec = check("BURST, Sustained, policies::API_V2, policies::Api", HANDLER).unwrap();
        let kinds: Vec<&str> = spec
            .limits
            .iter()
            .map(|limit| match limit {
                CheckedLimit::Static(_) => "static",
                CheckedLimit::Policy(_) => "policy",
                CheckedLimit::Rate { .. } => "rate",
            })
            .collect();
        assert_eq!(kinds, ["static", "policy", "static", "policy"]);
    }

    #[test]
    fn misspelt_options_get_a_suggestion() {
        let error = check(r#""1/s", coast = 2"#, HANDLER).err().unwrap();
        assert_eq!(error, "unknown option `coast`; did you mean `cost`?");
        let error = check(r#""1/s", zzz = 2"#, HANDLER).err().unwrap();
        assert!(
            error.starts_with("unknown option `zzz`; expected one of `rate`"),
            "{error}"
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let error = check(r#""0/min", cost = 0, cost = 1"#, "fn handler() {}")
            .err()
            .unwrap();
        assert_eq!(error.matches(" | ").count(), 3, "{error}");
    }

    #[test]
    fn option_values_are_checked() {
        let spec = check(
            r#"rate = "3/s", uid = "search", cost = 2, on_error = raise, scope = shared, headers = always, min_wait = "250ms""#,
            HANDLER,
        )
        .unwrap();
        assert_eq!(spec.limits.len(), 1);
        assert_eq!(
            spec.options.uid.map(|uid| uid.value()).as_deref(),
            Some("search")
        );
        assert!(matches!(spec.options.cost, Some(Cost::Fixed(2))));
        assert!(matches!(spec.options.min_wait, Some(MinWait::Millis(250))));
        assert!(check(r#""1/s", scope = everywhere"#, HANDLER).is_err());
        assert!(check(r#""1/s", min_wait = 5"#, HANDLER).is_err());
        assert!(check(r#""1/s", uid = "has space""#, HANDLER).is_err());
        assert!(check(r#""1/s", "2/s", rate = "3/s""#, HANDLER).is_err());
        assert!(check("BURST, cost = 2", HANDLER).is_err());
        assert!(check(r#""unlimited""#, HANDLER).is_err());
    }
}
