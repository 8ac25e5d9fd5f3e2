//! Turning what the flow crate recorded into paths that generated code can use.

use proc_macro2::{Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use std::str::FromStr;

/// Resolves the `q!` placeholders in quoted code: `__weir_crate` becomes the flow
/// crate's root and `__weir_self` (optionally followed by `::super`s) the module the
/// `q!` was written in, both as absolute paths.
pub fn resolve_placeholders(code: &str, module: &str) -> Result<TokenStream, String> {
    let tokens =
        TokenStream::from_str(code).map_err(|e| format!("quoted code does not lex: {e}"))?;
    let module: Vec<&str> = module.split("::").collect();
    Ok(rewrite(tokens, &module))
}

fn absolute(segments: &[&str]) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for seg in segments {
        out.push(TokenTree::Punct(Punct::new(':', Spacing::Joint)));
        out.push(TokenTree::Punct(Punct::new(':', Spacing::Alone)));
        out.push(TokenTree::Ident(Ident::new(seg, Span::call_site())));
    }
    out
}

fn rewrite(tokens: TokenStream, module: &[&str]) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(id) if id == "__weir_crate" => {
                out.extend(absolute(&module[..1]));
                i += 1;
            }
            TokenTree::Ident(id) if id == "__weir_self" => {
                // Each following `:: super` climbs one module.
                let mut depth = module.len();
                i += 1;
                while i + 2 < tokens.len()
                    && matches!(&tokens[i], TokenTree::Punct(p) if p.as_char() == ':')
                    && matches!(&tokens[i + 1], TokenTree::Punct(p) if p.as_char() == ':')
                    && matches!(&tokens[i + 2], TokenTree::Ident(s) if s == "super")
                {
                    depth = depth.saturating_sub(1).max(1);
                    i += 3;
                }
                out.extend(absolute(&module[..depth]));
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), rewrite(g.stream(), module));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
                i += 1;
            }
            other => {
                out.push(other.clone());
                i += 1;
            }
        }
    }
    out.into_iter().collect()
}

/// Types whose `type_name` is not a path generated code can use, and the one it can.
const PUBLIC_PATHS: &[(&str, &str)] = &[
    (
        "std::collections::hash::map::HashMap",
        "std::collections::HashMap",
    ),
    (
        "std::collections::hash::set::HashSet",
        "std::collections::HashSet",
    ),
    (
        "alloc::collections::btree::map::BTreeMap",
        "std::collections::BTreeMap",
    ),
    (
        "alloc::collections::btree::set::BTreeSet",
        "std::collections::BTreeSet",
    ),
    (
        "alloc::collections::vec_deque::VecDeque",
        "std::collections::VecDeque",
    ),
    ("core::ops::range::Range", "core::ops::Range"),
    (
        "core::ops::range::RangeInclusive",
        "core::ops::RangeInclusive",
    ),
    ("alloc::boxed::Box", "std::boxed::Box"),
];

/// Makes a `std::any::type_name` usable as a type in generated code: known private
/// paths become public ones, `alloc::` becomes `std::`, and every path is made
/// absolute.
pub fn nameable_type(type_name: &str) -> Result<syn::Type, String> {
    let mut text = type_name.to_string();
    for (private, public) in PUBLIC_PATHS {
        text = text.replace(private, public);
    }
    let mut ty: syn::Type = syn::parse_str(&text)
        .map_err(|e| format!("type `{type_name}` cannot be named in generated code ({e})"))?;
    struct Absolute;
    impl syn::visit_mut::VisitMut for Absolute {
        fn visit_type_path_mut(&mut self, ty: &mut syn::TypePath) {
            let first = ty.path.segments[0].ident.to_string();
            let is_path = ty.path.segments.len() > 1;
            if ty.qself.is_none() && is_path {
                if first == "alloc" {
                    ty.path.segments[0].ident = Ident::new("std", Span::call_site());
                }
                // Generated code links weir-runtime, which re-exports Weir's
                // shared types at its root.
                let shared =
                    ty.path.segments.iter().position(|s| {
                        weir_core::SHARED_ITEMS.contains(&s.ident.to_string().as_str())
                    });
                if let (true, Some(at)) = (first == "weir_core", shared) {
                    let rest: Vec<_> = ty.path.segments.iter().skip(at).cloned().collect();
                    ty.path.segments = std::iter::once(syn::PathSegment::from(Ident::new(
                        "weir_runtime",
                        Span::call_site(),
                    )))
                    .chain(rest)
                    .collect();
                }
                ty.path.leading_colon = Some(Default::default());
            }
            syn::visit_mut::visit_type_path_mut(self, ty);
        }
    }
    syn::visit_mut::VisitMut::visit_type_mut(&mut Absolute, &mut ty);
    Ok(ty)
}

/// A byte-string literal holding `bytes`.
pub fn byte_string(bytes: &[u8]) -> TokenStream {
    let lit = syn::LitByteStr::new(bytes, Span::call_site());
    quote::quote!(#lit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_absolute_paths() {
        let code =
            "| p : __weir_self :: Point | __weir_crate :: util :: f (__weir_self :: super :: g ())";
        let out = resolve_placeholders(code, "flow::net::peers")
            .unwrap()
            .to_string();
        assert_eq!(
            out,
            "| p : :: flow :: net :: peers :: Point | :: flow :: util :: f (:: flow :: net :: g ())"
        );
    }

    #[test]
    fn std_type_names_become_public_paths() {
        let ty = nameable_type("(alloc::string::String, std::collections::hash::map::HashMap<u32, alloc::vec::Vec<flow::Reading>>)").unwrap();
        let text = quote::quote!(#ty).to_string().replace(' ', "");
        assert_eq!(
            text,
            "(::std::string::String,::std::collections::HashMap<u32,::std::vec::Vec<::flow::Reading>>)"
        );
        let ty = nameable_type("(weir_core::external::ConnectionId, weir_core::external::ClientEvent<weir_core::cluster::ClusterId>)").unwrap();
        let text = quote::quote!(#ty).to_string().replace(' ', "");
        assert_eq!(
            text,
            "(::weir_runtime::ConnectionId,::weir_runtime::ClientEvent<::weir_runtime::ClusterId>)"
        );
    }
}
