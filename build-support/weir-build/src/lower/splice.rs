//! A quoted expression as generated code: its captured values bound in
//! `let`s, and its code with flow-crate paths made absolute.

use crate::error::Problem;
use crate::paths::{byte_string, nameable_type, resolve_placeholders};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use weir::ir::{CaptureValue, QuotedExpr};

/// A quoted expression ready for generated code.
pub(super) struct Spliced {
    /// One `let` per captured value, with the name it binds. Clusters come
    /// first: they are read from `node`, which a capture may shadow.
    pub lets: Vec<(String, TokenStream)>,
    /// The quoted code, which uses those names.
    pub code: TokenStream,
}

impl Spliced {
    /// The code in a block that binds its captures first. A closure with
    /// untyped parameters must not be passed this way: rustc infers a
    /// closure's parameters from the callee's bound only when the closure is
    /// the argument itself, not a block's value.
    pub fn block(&self) -> TokenStream {
        let code = &self.code;
        if self.lets.is_empty() {
            return code.clone();
        }
        let lets = self.lets.iter().map(|(_, stmt)| stmt);
        quote!({ #(#lets)* #code })
    }
}

/// The quoted expression as generated code. `role` is where the code runs.
pub(super) fn splice(quoted: &QuotedExpr, role: &str) -> Result<Spliced, Problem> {
    let at = Some(quoted.at.to_string());
    let code = resolve_placeholders(&quoted.code, &quoted.module).map_err(|message| Problem {
        message,
        at: at.clone(),
    })?;
    let mut clusters = Vec::new();
    let mut values = Vec::new();
    for (name, value) in &quoted.captures {
        let ident = Ident::new(name, Span::call_site());
        let parse_err = |e: syn::Error| Problem {
            message: format!("captured value `{name}` cannot be written as Rust ({e})"),
            at: at.clone(),
        };
        match value {
            CaptureValue::Literal { ty, expr } => {
                let ty: syn::Type = syn::parse_str(ty).map_err(parse_err)?;
                let expr: syn::Expr = syn::parse_str(expr).map_err(parse_err)?;
                values.push((name.clone(), quote!(let #ident: #ty = #expr;)));
            }
            CaptureValue::Serde { ty, bytes } => {
                let ty = nameable_type(ty).map_err(|message| Problem {
                    message: format!("captured value `{name}`: {message}"),
                    at: at.clone(),
                })?;
                let bytes = byte_string(bytes);
                values.push((
                    name.clone(),
                    quote!(let #ident: #ty = ::weir_runtime::decode_capture(#bytes, #name)?;),
                ));
            }
            CaptureValue::Cluster { role: cluster } => {
                let member_only = ["self_id", "incarnation", "durable"]
                    .into_iter()
                    .find(|method| calls(&quoted.code, name, method));
                if let Some(method) = member_only.filter(|_| cluster != role) {
                    return Err(Problem {
                        message: format!(
                            "`{name}.{method}()` is used in code that runs at `{role}`, which is not a member of cluster `{cluster}`"
                        ),
                        at,
                    });
                }
                clusters.push((name.clone(), quote!(let #ident = node.cluster(#cluster);)));
            }
        }
    }
    clusters.extend(values);
    Ok(Spliced {
        lets: clusters,
        code,
    })
}

/// Whether quoted `code` calls `<name>.<method>`.
fn calls(code: &str, name: &str, method: &str) -> bool {
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let call = format!("{name}.{method}");
    compact.match_indices(&call).any(|(at, _)| {
        !compact[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}
