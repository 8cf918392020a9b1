//! Expansion: a checked [`Spec`] and the handler into the handler with one extractor in front
//! (`Throttled<..>` for one limit, `ThrottledAll<(..)>` deciding several as one), plus one
//! policy type per limit written in the attribute.
//!
//! Generated code names only absolute paths (`::traffik_axum::__private::…`, `::core::…`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{Expr, ItemFn, parse_quote};

use crate::parse::Args;
use crate::validate::{
    CheckedLimit, Cost, HeadersChoice, MinWait, OnErrorChoice, Options, ScopeChoice, Spec, validate,
};

/// parse → validate → expand; on error, the handler as written plus the errors, so the rest of
/// the crate (and the IDE) still sees it.
pub(crate) fn throttled(attribute: TokenStream, item: &TokenStream) -> TokenStream {
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        let error = syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[throttled]` goes on an `async fn` handler",
        )
        .to_compile_error();
        return quote!(#error #item);
    };
    let result = syn::parse2::<Args>(attribute)
        .and_then(|args| validate(args, &function))
        .map(|spec| expand(&spec, function));
    match result {
        Ok(expanded) => expanded,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
    }
}

fn expand(spec: &Spec, mut function: ItemFn) -> TokenStream {
    let function_name = function.sig.ident.unraw().to_string();
    let visibility = function.vis.clone();
    let rates = spec
        .limits
        .iter()
        .filter(|limit| matches!(limit, CheckedLimit::Rate { .. }))
        .count();
    let mut items = Vec::new();
    let mut arguments = Vec::new();
    let mut rate_index = 0;
    for (index, limit) in spec.limits.iter().enumerate() {
        let marker = format_ident!("__traffik_{}_{}", function_name, index);
        let marker_item = quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            #[derive(Debug, Clone, Copy)]
            #visibility struct #marker;
        };
        match limit {
            CheckedLimit::Policy(path) => {
                arguments.push(quote!(#path));
                continue;
            }
            CheckedLimit::Static(path) => {
                let policy = policy_impl(
                    &marker,
                    &quote!(::traffik_axum::__private::StaticThrottle::get(&*#path)),
                );
                items.push(quote! {
                    #marker_item
                    #policy
                });
            }
            CheckedLimit::Rate { limit, period_ms } => {
                let uid = uid(&spec.options, &function_name, rate_index, rates);
                rate_index += 1;
                let settings = settings(&spec.options);
                let declaration = format!("::{function_name}[{index}]");
                let policy = policy_impl(&marker, &quote!(build()));
                items.push(quote! {
                    #marker_item

                    const _: () = {
                        fn build() -> ::core::result::Result<
                            &'static ::traffik_axum::__private::HttpThrottle,
                            &'static ::traffik_axum::__private::ConfigError,
                        > {
                            static THROTTLE: ::traffik_axum::__private::LazyLock<
                                ::core::result::Result<
                                    ::traffik_axum::__private::HttpThrottle,
                                    ::traffik_axum::__private::ConfigError,
                                >,
                            > = ::traffik_axum::__private::LazyLock::new(|| {
                                #[allow(unused_imports)]
                                use ::traffik_axum::__private::HttpThrottleBuilderExt as _;
                                ::traffik_axum::__private::HttpThrottle::builder(
                                    #uid,
                                    ::traffik_axum::__private::Rate::per_millis(#limit, #period_ms),
                                )
                                #settings
                                .build()
                            });
                            THROTTLE.as_ref()
                        }

                        ::traffik_axum::__private::inventory::submit! {
                            ::traffik_axum::__private::Declaration::new(
                                ::core::concat!(::core::module_path!(), #declaration),
                                build,
                            )
                        }

                        #policy
                    };
                });
            }
        }
        arguments.push(quote!(#marker));
    }
    // One limit: its extractor. Several: one extractor deciding them as one (all or nothing,
    // one round trip per backend).
    let argument = match arguments.as_slice() {
        [single] => quote!(::traffik_axum::__private::Throttled<#single>),
        several => quote!(::traffik_axum::__private::ThrottledAll<(#(#several,)*)>),
    };
    function.sig.inputs.insert(0, parse_quote!(_: #argument));
    quote! {
        #(#items)*
        #function
    }
}

/// `impl ThrottlePolicy<S> for marker`, the throttle being `throttle` (an expression of type
/// `Result<&HttpThrottle, &ConfigError>`).
fn policy_impl(marker: &syn::Ident, throttle: &TokenStream) -> TokenStream {
    quote! {
        impl<S> ::traffik_axum::__private::ThrottlePolicy<S> for #marker {
            fn throttle(
                _: &S,
            ) -> ::core::result::Result<
                &::traffik_axum::__private::HttpThrottle,
                &::traffik_axum::__private::ConfigError,
            > {
                #throttle
            }
        }
    }
}

/// The uid of the `index`-th of `rates` rates: the `uid` option (`{uid}.{index}` when there are
/// several), else `{module path with '.'}.{function}[.{index}]`.
fn uid(options: &Options, function: &str, index: usize, rates: usize) -> TokenStream {
    let index = (rates > 1).then_some(index);
    match (&options.uid, index) {
        (Some(uid), None) => quote!(#uid),
        (Some(uid), Some(index)) => {
            let uid = format!("{}.{index}", uid.value());
            quote!(#uid)
        }
        (None, index) => {
            let index = if let Some(index) = index {
                quote!(::core::option::Option::Some(#index))
            } else {
                quote!(::core::option::Option::None)
            };
            quote!(::traffik_axum::__private::handler_uid(::core::module_path!(), #function, #index))
        }
    }
}

/// The builder calls for the options.
fn settings(options: &Options) -> TokenStream {
    let mut calls = Vec::new();
    if let Some(strategy) = &options.strategy {
        calls.push(quote!(.strategy(#strategy)));
    }
    if let Some(key) = &options.key {
        calls.push(quote!(.identifier(::traffik_axum::__private::key(#key))));
    }
    match &options.cost {
        Some(Cost::Fixed(cost)) => calls.push(quote!(.cost(#cost))),
        Some(Cost::Function(cost)) => {
            calls.push(quote!(.cost_fn(::traffik_axum::__private::cost(#cost))));
        }
        None => {}
    }
    if let Some(backend) = &options.backend {
        calls.push(quote! {
            .shared_backend(::traffik_axum::__private::IntoBackend::into_backend((#backend).clone()))
        });
    }
    if let Some(on_error) = &options.on_error {
        let policy = match on_error {
            OnErrorChoice::Allow => quote!(::traffik_axum::__private::OnError::Allow),
            OnErrorChoice::Throttle => quote!(::traffik_axum::__private::OnError::Throttle),
            OnErrorChoice::Raise => quote!(::traffik_axum::__private::OnError::Raise),
            OnErrorChoice::Custom(expr) => quote!(#expr),
        };
        calls.push(quote!(.on_error(#policy)));
    }
    if let Some(scope) = options.scope {
        let scope = match scope {
            ScopeChoice::Shared => quote!(Shared),
            ScopeChoice::Route => quote!(Route),
            ScopeChoice::RouteAnyMethod => quote!(RouteAnyMethod),
            ScopeChoice::Path => quote!(Path),
        };
        calls.push(quote!(.scope(::traffik_axum::__private::Scope::#scope)));
    }
    if let Some(headers) = &options.headers {
        let headers = match headers {
            HeadersChoice::None => quote!(::traffik_axum::__private::Headers::none()),
            HeadersChoice::Always => quote!(::traffik_axum::__private::Headers::always()),
            HeadersChoice::ThrottledOnly => {
                quote!(::traffik_axum::__private::Headers::throttled_only())
            }
            HeadersChoice::Custom(expr) => quote!(#expr),
        };
        calls.push(quote!(.headers(#headers)));
    }
    match &options.min_wait {
        Some(MinWait::Millis(ms)) => {
            calls.push(quote!(.min_wait(::core::time::Duration::from_millis(#ms))));
        }
        Some(MinWait::Custom(expr)) => calls.push(quote!(.min_wait(#expr))),
        None => {}
    }
    let mut expression = |name: &str, value: &Option<Expr>, borrow: bool| {
        if let Some(value) = value {
            let method = format_ident!("{}", name);
            calls.push(if borrow {
                quote!(.#method(&#value))
            } else {
                quote!(.#method(#value))
            });
        }
    };
    expression("context", &options.context, false);
    expression("on_throttled", &options.on_throttled, false);
    expression("registry", &options.registry, true);
    if let Some(clock) = &options.clock {
        calls.push(quote!(.clock((#clock).clone())));
    }
    quote!(#(#calls)*)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(attribute: &str, item: &str) -> String {
        throttled(attribute.parse().unwrap(), &item.parse().unwrap()).to_string()
    }

    #[test]
    fn prepends_one_extractor_per_limit_and_keeps_the_handler_arguments() {
        let output = expanded(
            r#""1/s", "5/min""#,
            "pub async fn handler(body: String) -> String { body }",
        );
        let signature = output.split("pub async fn handler").nth(1).unwrap();
        let both = signature
            .find("ThrottledAll < (__traffik_handler_0 , __traffik_handler_1 ,) >")
            .unwrap_or_else(|| panic!("one extractor for both limits: {output}"));
        let body = signature.find("body : String").unwrap();
        assert!(both < body, "{output}");
        assert!(
            output.contains("pub struct __traffik_handler_0"),
            "{output}"
        );
        assert!(
            output.contains("Rate :: per_millis (1u64 , 1000u64)"),
            "{output}"
        );
        assert!(
            output.contains("Rate :: per_millis (5u64 , 60000u64)"),
            "{output}"
        );
        assert!(
            output.contains("Some (1usize)"),
            "the second limit's uid index: {output}"
        );
    }

    #[test]
    fn generated_code_names_only_absolute_paths() {
        let output = expanded(
            r#""1/s", key = by_key, cost = 2, on_error = raise, scope = shared, headers = always, min_wait = "1s""#,
            "async fn handler() {}",
        );
        for path in [
            "Throttled",
            "ThrottledAll",
            "HttpThrottle",
            "ThrottlePolicy",
            "Scope",
            "OnError",
            "Headers",
            "LazyLock",
            "Rate",
            "Declaration",
            "inventory",
        ] {
            for (index, _) in output.match_indices(&format!(":: {path}")) {
                let before = &output[..index];
                assert!(
                    before.ends_with("__private ") || before.ends_with("__private :: Scope "),
                    "`{path}` not under `::traffik_axum::__private` in {output}"
                );
            }
        }
    }

    #[test]
    fn a_policy_type_is_used_as_is_and_a_static_through_a_marker() {
        let output = expanded("BURST, Sustained", "async fn handler() {}");
        assert!(
            output.contains("StaticThrottle :: get (& * BURST)"),
            "{output}"
        );
        assert!(
            output.contains("ThrottledAll < (__traffik_handler_0 , Sustained ,) >"),
            "{output}"
        );
        assert!(!output.contains("__traffik_handler_1"), "{output}");
        let single = expanded("Sustained", "async fn handler() {}");
        assert!(single.contains("Throttled < Sustained >"), "{single}");
    }

    #[test]
    fn errors_keep_the_handler_as_written() {
        let output = expanded(r#""5/fortnight""#, "async fn handler(x: u8) {}");
        assert!(output.contains("compile_error"), "{output}");
        assert!(output.contains("async fn handler (x : u8) { }"), "{output}");
        let output = expanded(r#""1/s""#, "struct NotAFunction;");
        assert!(output.contains("compile_error") && output.contains("struct NotAFunction"));
    }
}
