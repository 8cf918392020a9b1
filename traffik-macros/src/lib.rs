//! The `#[throttled(...)]` attribute of [traffik-axum](https://docs.rs/traffik-axum). Use it as
//! `traffik_axum::throttled`; this crate is an implementation detail.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

#[doc = include_str!("throttled.md")]
#[proc_macro_attribute]
pub fn throttled(attribute: TokenStream, item: TokenStream) -> TokenStream {
    expand::throttled(attribute.into(), &item.into()).into()
}
