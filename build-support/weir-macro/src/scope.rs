//! Free-variable analysis of a quoted expression.
//!
//! Every identifier the expression uses but does not bind itself is either
//! * a **capture**: a local of the flow function (`snake_case`, used as a value),
//!   whose value is spliced into the generated code, or
//! * an **item** of the flow crate: a function being called, a type, unit struct
//!   or enum (`CamelCase`), or a `const`/`static` (`SCREAMING_CASE`), rewritten to
//!   a path from the flow module (`__weir_self`), which the build helper turns into
//!   `::flow::module`.
//!
//! `crate::`/`self::`/`super::` paths become `__weir_crate::`/`__weir_self::...`.
//! Paths starting with a lowercase segment (`std::`, `u32::MAX`, another crate) and
//! the names of the prelude are left as written.

use proc_macro2::{Ident, Span, TokenStream};
use quote::ToTokens;
use std::collections::HashSet;
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Pat, Path, Token};

pub struct Analysis {
    /// The expression with flow-crate paths rewritten to placeholders.
    pub code: TokenStream,
    /// Captured locals, in order of first use (with the span of that use).
    pub captures: Vec<Ident>,
}

pub fn analyse(expr: &Expr) -> Analysis {
    let mut scopes = Scopes::default();
    let mut code = expr.clone();
    scopes.visit_expr_mut(&mut code);
    Analysis {
        code: code.into_token_stream(),
        captures: scopes.captures,
    }
}

/// Names in scope from the prelude: never rewritten, never captured.
const PRELUDE: &[&str] = &[
    "Some",
    "None",
    "Ok",
    "Err",
    "Option",
    "Result",
    "Vec",
    "String",
    "Box",
    "ToString",
    "ToOwned",
    "Default",
    "Clone",
    "Copy",
    "Send",
    "Sync",
    "Sized",
    "Iterator",
    "IntoIterator",
    "Extend",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "FromIterator",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "TryFrom",
    "TryInto",
    "Fn",
    "FnMut",
    "FnOnce",
    "Drop",
    "Self",
];

/// Macros whose arguments are ordinary expressions (so free variables inside count).
const EXPR_MACROS: &[&str] = &[
    "println",
    "print",
    "eprintln",
    "eprint",
    "format",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "vec",
    "dbg",
    "unreachable",
    "todo",
    "format_args",
];

#[derive(Default)]
struct Scopes {
    bound: Vec<HashSet<String>>,
    captures: Vec<Ident>,
}

/// A name that, by Rust's conventions, names an item: `CamelCase` (a type, unit
/// struct or enum) or `SCREAMING_CASE` (a `const` or `static`).
fn is_item_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

fn placeholder(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

impl Scopes {
    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|scope| scope.contains(name))
    }

    fn bind(&mut self, ident: &Ident) {
        let name = ident.to_string();
        self.bound.last_mut().expect("a scope is open").insert(name);
    }

    fn capture(&mut self, ident: &Ident) {
        if !self.captures.iter().any(|c| c == ident) {
            self.captures.push(ident.clone());
        }
    }

    fn scoped<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        self.bound.push(HashSet::new());
        let result = f(self);
        self.bound.pop();
        result
    }

    /// Binds the names a pattern introduces, rewriting the paths it names.
    fn bind_pat(&mut self, pat: &mut Pat) {
        match pat {
            // `Even` in a pattern is a unit variant or a constant in scope, as
            // rustc reads it (a binding would be `even`): a path to rewrite.
            Pat::Ident(p)
                if p.subpat.is_none()
                    && p.by_ref.is_none()
                    && p.mutability.is_none()
                    && is_item_name(&p.ident.to_string())
                    && !PRELUDE.contains(&p.ident.to_string().as_str()) =>
            {
                let mut path = Path::from(p.ident.clone());
                self.rewrite_item_path(&mut path);
                *pat = Pat::Path(syn::ExprPath {
                    attrs: std::mem::take(&mut p.attrs),
                    qself: None,
                    path,
                });
            }
            Pat::Ident(p) => {
                if let Some((_, sub)) = &mut p.subpat {
                    self.bind_pat(sub);
                }
                if !PRELUDE.contains(&p.ident.to_string().as_str()) {
                    self.bind(&p.ident);
                }
            }
            Pat::Tuple(p) => p.elems.iter_mut().for_each(|e| self.bind_pat(e)),
            Pat::TupleStruct(p) => {
                self.rewrite_item_path(&mut p.path);
                p.elems.iter_mut().for_each(|e| self.bind_pat(e));
            }
            Pat::Struct(p) => {
                self.rewrite_item_path(&mut p.path);
                for field in &mut p.fields {
                    self.bind_pat(&mut field.pat);
                }
            }
            Pat::Path(p) => self.rewrite_item_path(&mut p.path),
            Pat::Reference(p) => self.bind_pat(&mut p.pat),
            Pat::Slice(p) => p.elems.iter_mut().for_each(|e| self.bind_pat(e)),
            Pat::Or(p) => p.cases.iter_mut().for_each(|e| self.bind_pat(e)),
            Pat::Paren(p) => self.bind_pat(&mut p.pat),
            Pat::Type(p) => {
                self.visit_type_mut(&mut p.ty);
                self.bind_pat(&mut p.pat);
            }
            Pat::Lit(_) | Pat::Range(_) | Pat::Rest(_) | Pat::Wild(_) | Pat::Macro(_) => {}
            Pat::Const(_) | Pat::Verbatim(_) => {}
            _ => {}
        }
    }

    /// Rewrites a path that names an item (type, struct, enum, function) so that
    /// generated code, which lives in another crate, reaches the same item.
    fn rewrite_item_path(&mut self, path: &mut Path) {
        if path.leading_colon.is_some() {
            return;
        }
        let first = &path.segments[0].ident;
        let name = first.to_string();
        let replacement = match name.as_str() {
            "crate" => Some("__weir_crate"),
            "self" => Some("__weir_self"),
            "super" => None, // handled below: keep `super` after `__weir_self`
            _ if PRELUDE.contains(&name.as_str()) => return,
            _ if is_item_name(&name) => None,
            _ => return,
        };
        match replacement {
            Some(ph) => path.segments[0].ident = placeholder(ph),
            None => {
                let seg = syn::PathSegment::from(placeholder("__weir_self"));
                path.segments.insert(0, seg);
            }
        }
    }

    /// Visits the arguments of an expression-like macro (`println!`, `format!`...),
    /// including identifiers named inside format strings (`"{total}"`).
    fn visit_macro_args(&mut self, mac: &mut syn::Macro) {
        let Some(name) = mac.path.segments.last().map(|s| s.ident.to_string()) else {
            return;
        };
        if !EXPR_MACROS.contains(&name.as_str()) {
            return;
        }
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        let Ok(mut args) = mac.parse_body_with(parser) else {
            return;
        };
        for arg in args.iter_mut() {
            if let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = arg
            {
                for name in format_string_names(&s.value()) {
                    let ident = Ident::new(&name, s.span());
                    if !self.is_bound(&name) {
                        self.capture(&ident);
                    }
                }
            } else {
                self.visit_expr_mut(arg);
            }
        }
        mac.tokens = args.into_token_stream();
    }
}

/// Identifiers named inline in a format string: `"{x} {y:?} {{z}}"` → `x`, `y`.
fn format_string_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(stripped) = rest.strip_prefix('{') {
            rest = stripped; // `{{` is an escaped brace
            continue;
        }
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        let arg = rest[..end].trim();
        let is_ident = arg
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && arg.chars().all(|c| c.is_alphanumeric() || c == '_');
        if is_ident {
            names.push(arg.to_string());
        }
        rest = &rest[end..];
    }
    names
}

impl VisitMut for Scopes {
    fn visit_expr_closure_mut(&mut self, closure: &mut syn::ExprClosure) {
        self.scoped(|this| {
            for input in &mut closure.inputs {
                this.bind_pat(input);
            }
            if let syn::ReturnType::Type(_, ty) = &mut closure.output {
                this.visit_type_mut(ty);
            }
            this.visit_expr_mut(&mut closure.body);
        });
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        self.scoped(|this| {
            for stmt in &mut block.stmts {
                match stmt {
                    syn::Stmt::Local(local) => {
                        // The initialiser sees the scope before the new bindings.
                        if let Some(init) = &mut local.init {
                            this.visit_expr_mut(&mut init.expr);
                            if let Some((_, diverge)) = &mut init.diverge {
                                this.visit_expr_mut(diverge);
                            }
                        }
                        this.bind_pat(&mut local.pat);
                    }
                    syn::Stmt::Item(_) => {} // nested items do not see our locals
                    syn::Stmt::Expr(expr, _) => this.visit_expr_mut(expr),
                    syn::Stmt::Macro(m) => this.visit_macro_args(&mut m.mac),
                }
            }
        });
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        self.scoped(|this| {
            this.bind_pat(&mut arm.pat);
            if let Some((_, guard)) = &mut arm.guard {
                this.visit_expr_mut(guard);
            }
            this.visit_expr_mut(&mut arm.body);
        });
    }

    fn visit_expr_for_loop_mut(&mut self, expr: &mut syn::ExprForLoop) {
        self.visit_expr_mut(&mut expr.expr);
        self.scoped(|this| {
            this.bind_pat(&mut expr.pat);
            this.visit_block_mut(&mut expr.body);
        });
    }

    fn visit_expr_if_mut(&mut self, expr: &mut syn::ExprIf) {
        // `if let` bindings are visible in the then-branch only.
        self.scoped(|this| {
            this.visit_expr_mut(&mut expr.cond);
            this.visit_block_mut(&mut expr.then_branch);
        });
        if let Some((_, else_branch)) = &mut expr.else_branch {
            self.visit_expr_mut(else_branch);
        }
    }

    fn visit_expr_while_mut(&mut self, expr: &mut syn::ExprWhile) {
        self.scoped(|this| {
            this.visit_expr_mut(&mut expr.cond);
            this.visit_block_mut(&mut expr.body);
        });
    }

    fn visit_expr_let_mut(&mut self, expr: &mut syn::ExprLet) {
        self.visit_expr_mut(&mut expr.expr);
        self.bind_pat(&mut expr.pat);
    }

    fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
        // `helper(x)`: an unbound lowercase name being called is a flow-crate function.
        if let Expr::Path(func) = &mut *call.func {
            if func.qself.is_none() && func.path.segments.len() == 1 {
                let ident = &func.path.segments[0].ident;
                let name = ident.to_string();
                if !self.is_bound(&name)
                    && !is_item_name(&name)
                    && !PRELUDE.contains(&name.as_str())
                {
                    let seg = syn::PathSegment::from(placeholder("__weir_self"));
                    func.path.segments.insert(0, seg);
                    for arg in &mut call.args {
                        self.visit_expr_mut(arg);
                    }
                    return;
                }
            }
        }
        visit_mut::visit_expr_call_mut(self, call);
    }

    fn visit_expr_path_mut(&mut self, expr: &mut syn::ExprPath) {
        if expr.qself.is_some() {
            return visit_mut::visit_expr_path_mut(self, expr);
        }
        if let Some(ident) = expr.path.get_ident() {
            let name = ident.to_string();
            if self.is_bound(&name) || PRELUDE.contains(&name.as_str()) {
                return;
            }
            if !is_item_name(&name) {
                let ident = ident.clone();
                return self.capture(&ident);
            }
        }
        self.rewrite_item_path(&mut expr.path);
        for seg in &mut expr.path.segments {
            self.visit_path_arguments_mut(&mut seg.arguments);
        }
    }

    fn visit_type_path_mut(&mut self, ty: &mut syn::TypePath) {
        if ty.qself.is_none() {
            self.rewrite_item_path(&mut ty.path);
        }
        visit_mut::visit_type_path_mut(self, ty);
    }

    fn visit_expr_struct_mut(&mut self, expr: &mut syn::ExprStruct) {
        if expr.qself.is_none() {
            self.rewrite_item_path(&mut expr.path);
        }
        for field in &mut expr.fields {
            self.visit_expr_mut(&mut field.expr);
        }
        if let Some(rest) = &mut expr.rest {
            self.visit_expr_mut(rest);
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        self.visit_macro_args(mac);
    }

    // Items nested in the expression are out of our scope analysis.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> (String, Vec<String>) {
        let expr: Expr = syn::parse_str(src).unwrap();
        let a = analyse(&expr);
        (
            a.code.to_string(),
            a.captures.iter().map(|i| i.to_string()).collect(),
        )
    }

    #[test]
    fn closure_parameters_are_not_captures() {
        let (_, caps) = run("|n| println!(\"{}\", n)");
        assert!(caps.is_empty(), "{caps:?}");
    }

    #[test]
    fn free_locals_are_captured_once_in_order() {
        let (_, caps) = run("move |x| x * factor + offset + factor");
        assert_eq!(caps, ["factor", "offset"]);
    }

    #[test]
    fn let_bindings_shadow_but_initialisers_see_outer_scope() {
        let (_, caps) = run("{ let a = a + 1; let b = a; b + c }");
        assert_eq!(caps, ["a", "c"]);
    }

    #[test]
    fn match_arms_and_if_let_bind() {
        let (_, caps) = run("|v| match v { Some(x) => x, None => d }");
        assert_eq!(caps, ["d"]);
        let (_, caps) = run("|v| if let Some(x) = v { x } else { y }");
        assert_eq!(caps, ["y"]);
    }

    #[test]
    fn format_string_inline_names_are_captured() {
        let (_, caps) = run("|n| println!(\"{prefix}: {n} {{literal}}\")");
        assert_eq!(caps, ["prefix"]);
    }

    #[test]
    fn flow_items_are_rewritten_and_std_left_alone() {
        let (code, caps) = run("|p: Point| helper(p.x) + crate::util::f(1) + std::cmp::max(1, u32::MAX) + Vec::<u8>::new().len()");
        assert!(caps.is_empty(), "{caps:?}");
        assert!(code.contains("__weir_self :: Point"), "{code}");
        assert!(code.contains("__weir_self :: helper"), "{code}");
        assert!(code.contains("__weir_crate :: util :: f"), "{code}");
        assert!(code.contains("std :: cmp :: max"), "{code}");
        assert!(!code.contains("__weir_self :: Vec"), "{code}");
    }

    #[test]
    fn unit_variants_and_constants_in_patterns_are_paths_not_bindings() {
        let (code, caps) = run("|p| match p { Even => LIMIT, Odd | None => 0, other => other }");
        assert!(caps.is_empty(), "{caps:?}");
        assert!(code.contains("__weir_self :: Even =>"), "{code}");
        assert!(code.contains("__weir_self :: Odd | None"), "{code}");
        assert!(code.contains("other => other"), "{code}");
    }

    #[test]
    fn struct_literals_and_patterns_name_items() {
        let (code, _) = run("|Msg::Ping(n)| Reply { n }");
        assert!(code.contains("__weir_self :: Msg :: Ping"), "{code}");
        assert!(code.contains("__weir_self :: Reply"), "{code}");
    }
}
