//! `#[weir_guest::filter]` and `#[weir_guest::map]`: a row-level plugin from one
//! function. Use them through `weir-guest` (feature `row`), not directly.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, ItemFn, ReturnType, Type, parse_macro_input};

/// Turns `fn keep(row: &Row) -> bool` (optionally `fn keep(row: &Row, config: &C)`
/// with `C: serde::de::DeserializeOwned`) into a row plugin that keeps the rows for
/// which it returns true. The function stays callable, so `cargo test` can test it.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Filter)
}

/// Turns `fn f(row: Row) -> Row` (or `-> Option<Row>`, where `None` drops the row;
/// optionally with a second parameter `config: &C`) into a row plugin that rewrites
/// every row.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr, item, Kind::Map)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Filter,
    Map,
}

fn expand(attr: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    if !attr.is_empty() {
        let error = syn::Error::new(
            proc_macro2::TokenStream::from(attr)
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
            "this attribute takes no arguments",
        );
        return error.to_compile_error().into();
    }
    let function = parse_macro_input!(item as ItemFn);
    match generate(&function, kind) {
        // Natively only tests call the function; in the component the glue does.
        Ok(glue) => quote! {
            #[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
            #function
            #glue
        }
        .into(),
        Err(error) => {
            let error = error.to_compile_error();
            quote! { #function #error }.into()
        }
    }
}

fn generate(function: &ItemFn, kind: Kind) -> syn::Result<proc_macro2::TokenStream> {
    let name = &function.sig.ident;
    let inputs: Vec<&FnArg> = function.sig.inputs.iter().collect();
    let config_type = match inputs.as_slice() {
        [_] => None,
        [_, FnArg::Typed(config)] => match &*config.ty {
            Type::Reference(reference) => Some((*reference.elem).clone()),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "the config parameter must be a reference, `&Config`",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new_spanned(
                &function.sig,
                "expected one parameter (the row) or two (the row, then `&Config`)",
            ));
        }
    };
    let returns_option = match &function.sig.output {
        ReturnType::Type(_, ty) => matches!(&**ty, Type::Path(path)
            if path.path.segments.last().is_some_and(|s| s.ident == "Option")),
        ReturnType::Default => false,
    };
    let config = config_type
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::weir_guest::row::NoConfig));
    let call = match (&config_type, kind) {
        (Some(_), _) => quote! { #name(row, config) },
        (None, _) => quote! { #name(row) },
    };
    let body = match kind {
        Kind::Filter => quote! {
            fn keep(row: &::weir_guest::row::Row, config: &#config) -> bool {
                let _ = config;
                #call
            }
        },
        Kind::Map if returns_option => quote! {
            fn map(row: ::weir_guest::row::Row, config: &#config) -> ::core::option::Option<::weir_guest::row::Row> {
                let _ = config;
                #call
            }
        },
        Kind::Map => quote! {
            fn map(row: ::weir_guest::row::Row, config: &#config) -> ::core::option::Option<::weir_guest::row::Row> {
                let _ = config;
                ::core::option::Option::Some(#call)
            }
        },
    };
    let (trait_name, export) = match kind {
        Kind::Filter => (
            quote! { RowFilter },
            quote! { ::weir_guest::export_row_filter! },
        ),
        Kind::Map => (quote! { RowMap }, quote! { ::weir_guest::export_row_map! }),
    };
    let adapter = format_ident!("__WeirRowPlugin_{}", name);
    Ok(quote! {
        #[allow(non_camel_case_types)]
        #[doc(hidden)]
        struct #adapter;

        impl ::weir_guest::row::#trait_name for #adapter {
            type Config = #config;
            #body
        }

        #export(#adapter);
    })
}
