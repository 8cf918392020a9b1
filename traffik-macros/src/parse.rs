//! Parsing: the attribute's tokens into [`Args`], before any meaning is checked.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

/// What the attribute says, as written.
pub(crate) struct Args {
    /// Positional items: rate strings and reused throttles, in order.
    pub(crate) limits: Vec<Limit>,
    /// `name = value` options, in order.
    pub(crate) options: Vec<Named>,
}

/// One positional item.
pub(crate) enum Limit {
    /// `"100/min"`.
    Rate(LitStr),
    /// `BURST` (a static throttle) or `Burst` (a policy type).
    Reuse(Path),
}

/// One `name = value` option.
pub(crate) struct Named {
    pub(crate) name: Ident,
    pub(crate) value: Expr,
}

enum Item {
    Limit(Limit),
    Named(Named),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return Ok(Item::Limit(Limit::Rate(input.parse()?)));
        }
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            return Ok(Item::Named(Named { name, value }));
        }
        if input.peek(Ident) || input.peek(Token![::]) || input.peek(Token![crate]) {
            return Ok(Item::Limit(Limit::Reuse(input.parse()?)));
        }
        Err(input.error(
            "expected a rate string (\"100/min\"), an existing throttle (`BURST`), or an option (`cost = 2`)",
        ))
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let items = Punctuated::<Item, Token![,]>::parse_terminated(input)?;
        let mut args = Args {
            limits: Vec::new(),
            options: Vec::new(),
        };
        for item in items {
            match item {
                Item::Limit(limit) => args.limits.push(limit),
                Item::Named(named) => args.options.push(named),
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_positional_items_from_options() {
        let args: Args = syn::parse_str(
            r#""10/min", "100/hour", BURST, crate::policies::Search, cost = 2, key = by_key"#,
        )
        .unwrap();
        assert_eq!(args.limits.len(), 4);
        assert!(matches!(&args.limits[0], Limit::Rate(rate) if rate.value() == "10/min"));
        assert!(matches!(&args.limits[2], Limit::Reuse(path) if path.is_ident("BURST")));
        let names: Vec<String> = args.options.iter().map(|o| o.name.to_string()).collect();
        assert_eq!(names, ["cost", "key"]);
    }

    #[test]
    fn an_empty_attribute_parses_to_nothing() {
        let args: Args = syn::parse_str("").unwrap();
        assert!(args.limits.is_empty() && args.options.is_empty());
    }

    #[test]
    fn other_tokens_are_an_error() {
        assert!(syn::parse_str::<Args>("42").is_err());
    }
}
