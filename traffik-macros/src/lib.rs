//! The `#[throttled(...)]` attribute of [traffik-axum](https://docs.rs/traffik-axum). Use it as
//! `traffik_axum::throttled`; this crate is an implementation detail.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

#[doc = include_str!("throttled.md")]
#[proc_macro_attribute]
pub fn throttled(attribute: TokenStream, item: TokenStream) -> TokenStream {
    entry(attribute.into(), item.into()).into()
}

/// parse → validate → expand; on error, the handler as written plus the errors, so the rest of
/// the crate (and the IDE) still sees it.
fn entry(
    attribute: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[throttled]` goes on an `async fn` handler",
            );
            let error = error.to_compile_error();
            return quote::quote!(#error #item);
        }
    };
    let result = syn::parse2::<parse::Args>(attribute)
        .and_then(|args| validate::validate(args, &function))
        .map(|spec| expand::expand(spec, function));
    match result {
        Ok(expanded) => expanded,
        Err(error) => {
            let error = error.to_compile_error();
            quote::quote!(#error #item)
        }
    }
}
