//! A quoted expression as generated code: its captured values bound in front,
//! flow-crate paths made absolute.

use crate::error::Problem;
use crate::paths::{byte_string, nameable_type, resolve_placeholders};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use weir::ir::{CaptureValue, QuotedExpr};

/// The quoted expression as generated code: captured values first, then the code
/// with flow-crate paths made absolute. `role` is where the code runs.
pub(super) fn splice(quoted: &QuotedExpr, role: &str) -> Result<TokenStream, Problem> {
    let at = Some(quoted.at.to_string());
    let code = resolve_placeholders(&quoted.code, &quoted.module).map_err(|message| Problem {
        message,
        at: at.clone(),
    })?;
    let mut lets = Vec::new();
    for (name, value) in &quoted.captures {
        let name = Ident::new(name, Span::call_site());
        let parse_err = |e: syn::Error| Problem {
            message: format!("captured value `{name}` cannot be written as Rust ({e})"),
            at: at.clone(),
        };
        match value {
            CaptureValue::Literal { ty, expr } => {
                let ty: syn::Type = syn::parse_str(ty).map_err(parse_err)?;
                let expr: syn::Expr = syn::parse_str(expr).map_err(parse_err)?;
                lets.push(quote!(let #name: #ty = #expr;));
            }
            CaptureValue::Serde { ty, bytes } => {
                let ty = nameable_type(ty).map_err(|message| Problem {
                    message: format!("captured value `{name}`: {message}"),
                    at: at.clone(),
                })?;
                let bytes = byte_string(bytes);
                let label = name.to_string();
                lets.push(
                    quote!(let #name: #ty = ::weir_runtime::decode_capture(#bytes, #label)?;),
                );
            }
            CaptureValue::Cluster { role: cluster } => {
                let member_only = ["self_id", "incarnation"]
                    .into_iter()
                    .find(|method| calls(&quoted.code, &name.to_string(), method));
                if let Some(method) = member_only.filter(|_| cluster != role) {
                    return Err(Problem {
                        message: format!(
                            "`{name}.{method}()` is used in code that runs at `{role}`, which is not a member of cluster `{cluster}`"
                        ),
                        at,
                    });
                }
                lets.push(quote!(let #name = node.cluster(#cluster);));
            }
        }
    }
    if lets.is_empty() {
        Ok(code)
    } else {
        Ok(quote!({ #(#lets)* #code }))
    }
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
