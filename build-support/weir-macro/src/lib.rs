//! The `q!` macro: quote a Rust expression so that rustc type-checks it where the
//! flow is written, while its tokens are kept for the generated role binaries.
//!
//! `q!(expr)` expands to a block that
//! 1. records the expression's code (with flow-crate paths made absolute), where it
//!    was written, and the value of every local it captures, and then
//! 2. evaluates to a closure `|_: Hole| expr`. `Hole` is uninhabited, so that closure
//!    can never be called: `expr` is type-checked but never evaluated at build time.
//!
//! Operators take the closure through a trait whose supertrait is
//! `FnOnce(Hole) -> F`; rustc elaborates it and checks `expr` against the
//! operator's bound on `F`, which is how `.map(q!(|p| p.x))` infers `p`.

mod scope;

use proc_macro::TokenStream;
use quote::{quote, quote_spanned};

/// Makes a quoted closure `move` if it is not: the values it captures are
/// copies that live only as long as the quote (at build time) or the operator
/// (in the role binary), so it must own them, as `iter.map(|i| i * scale)`
/// never had to say. Whether anything changed.
fn imply_move(expr: &mut syn::Expr) -> bool {
    match expr {
        syn::Expr::Closure(closure) if closure.capture.is_none() => {
            closure.capture = Some(Default::default());
            true
        }
        _ => false,
    }
}

/// Quotes a Rust expression for a Weir operator.
///
/// Locals of the flow function that the expression uses are captured by value
/// (integers, floats, `bool`, `char`, strings, tuples, `Vec`s, arrays, `Option`s of
/// those, and any serde `Serialize + DeserializeOwned` type); a closure that
/// uses them owns its copies, with or without `move`. Functions, types and
/// constants of the flow crate must be reachable from the role binaries (`pub`).
#[proc_macro]
pub fn q(input: TokenStream) -> TokenStream {
    let mut expr = match syn::parse::<syn::Expr>(input) {
        Ok(expr) => expr,
        Err(err) => return err.to_compile_error().into(),
    };
    let mut analysis = scope::analyse(&expr);
    if !analysis.captures.is_empty() && imply_move(&mut expr) {
        analysis = scope::analyse(&expr);
    }
    let code = analysis.code.to_string();

    let captures = analysis.captures.iter().map(|ident| {
        let name = ident.to_string();
        // Spanned at the ident so an uncapturable value is reported where it is used.
        quote_spanned! {ident.span()=>
            ::weir::__private::Capture {
                name: #name,
                value: {
                    #[allow(unused_imports)]
                    use ::weir::__private::{ViaCluster as _, ViaLiteral as _, ViaSerde as _};
                    (&&::weir::__private::Probe(&#ident)).__weir_kind().capture(&#ident)
                },
            }
        }
    });
    let shadows = analysis.captures.iter().map(|ident| {
        quote_spanned! {ident.span()=>
            #[allow(unused_variables)]
            let #ident = ::weir::__private::hole_of(&#ident);
        }
    });
    quote! {
        {
            ::weir::__private::record_quote(::weir::__private::QuoteRecord {
                code: #code,
                file: ::core::file!(),
                line: ::core::line!(),
                column: ::core::column!(),
                module: ::core::module_path!(),
                captures: ::std::vec![#(#captures),*],
            });
            #[allow(unreachable_code, clippy::redundant_closure)]
            |_: ::weir::__private::Hole| {
                #(#shadows)*
                #expr
            }
        }
    }
    .into()
}
