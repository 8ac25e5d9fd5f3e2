//! Quoted code's tokens, rewritten path by path: each path that starts
//! with a name of the `q!`'s module is written out in full.

use super::items::{traits_defined, use_bindings};
use super::{Kind, Resolver, Target, Unresolved};
use proc_macro2::{Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use std::path::PathBuf;
use weir_core::SHARED_TRAITS;

/// The module of one `q!`, while its code is rewritten.
pub(super) struct Scope<'r, 's> {
    pub(super) resolver: &'r mut Resolver<'s>,
    pub(super) root: PathBuf,
    pub(super) crate_name: String,
    /// The module's path from the crate root.
    pub(super) module: Vec<String>,
    pub(super) problems: Vec<String>,
}

fn is_colon(token: Option<&TokenTree>) -> bool {
    matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ':')
}

/// Whether `tokens[i..]` starts with `:: ident`; the ident if so.
fn path_step(tokens: &[TokenTree], i: usize) -> Option<&Ident> {
    match (
        &tokens.get(i),
        is_colon(tokens.get(i + 1)),
        tokens.get(i + 2),
    ) {
        (Some(TokenTree::Punct(p)), true, Some(TokenTree::Ident(id)))
            if p.as_char() == ':' && p.spacing() == Spacing::Joint =>
        {
            Some(id)
        }
        _ => None,
    }
}

fn path_tokens(segments: &[String], leading: bool) -> Vec<TokenTree> {
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if leading || i > 0 {
            out.push(TokenTree::Punct(Punct::new(':', Spacing::Joint)));
            out.push(TokenTree::Punct(Punct::new(':', Spacing::Alone)));
        }
        out.push(TokenTree::Ident(Ident::new(seg, Span::call_site())));
    }
    out
}

impl Scope<'_, '_> {
    pub(super) fn rewrite(&mut self, tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while i < tokens.len() {
            let after_path = i >= 2
                && is_colon(tokens.get(i - 1))
                && matches!(&tokens[i - 2], TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint);
            let after_dot =
                i >= 1 && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
            match &tokens[i] {
                TokenTree::Group(g) => {
                    let mut group = Group::new(g.delimiter(), self.rewrite(g.stream()));
                    group.set_span(g.span());
                    out.push(TokenTree::Group(group));
                    i += 1;
                }
                TokenTree::Ident(head) if !after_path && !after_dot => {
                    let head = head.to_string();
                    let mut segments = Vec::new();
                    let mut j = i + 1;
                    while let Some(seg) = path_step(&tokens, j) {
                        segments.push(seg.to_string());
                        j += 3;
                    }
                    match self.path(&head, segments) {
                        Some(replacement) => {
                            out.extend(replacement);
                            i = j;
                        }
                        None => {
                            out.push(tokens[i].clone());
                            i += 1;
                        }
                    }
                }
                other => {
                    out.push(other.clone());
                    i += 1;
                }
            }
        }
        out.into_iter().collect()
    }

    /// The tokens of path `head :: segments`, resolved; `None` to leave it.
    fn path(&mut self, head: &str, mut names: Vec<String>) -> Option<Vec<TokenTree>> {
        let placeholder = matches!(head, "__weir_self" | "__weir_crate");
        if names.is_empty() || (!placeholder && is_keyword(head)) {
            return None;
        }
        // The module to look the first name up in: `crate::a`, `super::a`
        // and `self::a` say which; any other path starts in the `q!`'s.
        let mut module = self.module.clone();
        match head {
            "__weir_crate" => module.clear(),
            "__weir_self" => {
                while names.len() > 1 && names[0] == "super" {
                    names.remove(0);
                    module.pop();
                }
            }
            _ => names.insert(0, head.to_string()),
        }
        let name = names.remove(0);
        let target = match self.resolver.lookup(&self.root, &module, &name, 0) {
            Ok(found) => self.resolver.walk(&self.root, found, &names, 0),
            Err(Unresolved::ForeignGlobs(globs)) if placeholder => {
                self.problems.push(format!(
                    "cannot tell where `{name}` comes from: `{}` imports from another crate with a glob (`use {}::*;`), which the build helper does not read; import the name itself (`use {}::{name};`)",
                    self.module_name(),
                    globs[0],
                    globs[0],
                ));
                return None;
            }
            // The placeholder means "in this module": keep that meaning and
            // let rustc judge (an item a macro makes, say).
            Err(_) if placeholder => {
                module.push(name);
                module.extend(names);
                Ok(Target::Flow {
                    path: module,
                    kind: Kind::Other,
                })
            }
            Err(_) => return None,
        };
        match target {
            Ok(target) => self.emit(target),
            Err(message) => {
                self.problems.push(message);
                None
            }
        }
    }

    /// The traits in scope in the module, as generated code names them:
    /// defined there, imported by name (or `as _`), or by a glob of a flow
    /// module or of `weir`. Paths into other crates whose last name could be
    /// a trait's are kept too (which is a trait cannot be told without
    /// reading that crate). What generated code cannot reach is left out.
    pub(super) fn traits_in_scope(&mut self) -> Vec<String> {
        let root = self.root.clone();
        let module = self.module.clone();
        let Some(items) = self.resolver.sources.module_items(&root, &module) else {
            return Vec::new();
        };
        let in_module = |module: &[String], name: String| {
            let mut path = module.to_vec();
            path.push(name);
            Target::Flow {
                path,
                kind: Kind::Trait,
            }
        };
        let mut found: Vec<Target> = traits_defined(&items)
            .map(|name| in_module(&module, name))
            .collect();
        for binding in use_bindings(&items) {
            let resolver = &mut *self.resolver;
            let Ok(target) =
                resolver.use_target(&root, &module, &binding.path, binding.leading_colon, 0)
            else {
                continue;
            };
            match (binding.name.is_some(), target) {
                (
                    true,
                    target @ Target::Flow {
                        kind: Kind::Trait, ..
                    },
                ) => found.push(target),
                (true, Target::Extern(path))
                    if path
                        .last()
                        .is_some_and(|n| n.starts_with(char::is_uppercase)) =>
                {
                    found.push(Target::Extern(path));
                }
                (
                    false,
                    Target::Flow {
                        path,
                        kind: Kind::Module,
                    },
                ) => {
                    if let Some(items) = resolver.sources.module_items(&root, &path) {
                        found.extend(traits_defined(&items).map(|name| in_module(&path, name)));
                    }
                }
                (false, Target::Extern(path))
                    if matches!(path[0].as_str(), "weir" | "weir_core") =>
                {
                    found.extend(
                        SHARED_TRAITS
                            .iter()
                            .map(|name| Target::Extern(vec!["weir".into(), name.to_string()])),
                    );
                }
                _ => {}
            }
        }
        let quoted_in = self.module_name();
        let mut paths = Vec::new();
        for target in found {
            let path = match target {
                Target::Flow { path, .. } => {
                    if self
                        .resolver
                        .sources
                        .unreachable(&root, &path, &quoted_in)
                        .is_some()
                    {
                        continue;
                    }
                    std::iter::once(self.crate_name.clone())
                        .chain(path)
                        .collect()
                }
                Target::Extern(path) => match self.resolver.extern_path(path) {
                    Ok(path) => path,
                    Err(_) => continue,
                },
            };
            let path = format!("::{}", path.join("::"));
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        paths
    }

    fn module_name(&self) -> String {
        std::iter::once(self.crate_name.as_str())
            .chain(self.module.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::")
    }

    /// Generated code's tokens for `target`, or `None` (with a problem).
    fn emit(&mut self, target: Target) -> Option<Vec<TokenTree>> {
        match target {
            Target::Flow { path, .. } => {
                let quoted_in = self.module_name();
                if let Some(problem) = self
                    .resolver
                    .sources
                    .unreachable(&self.root, &path, &quoted_in)
                {
                    self.problems.push(problem);
                    return None;
                }
                let mut full = vec![self.crate_name.clone()];
                full.extend(path);
                Some(path_tokens(&full, true))
            }
            Target::Extern(path) => match self.resolver.extern_path(path) {
                Ok(path) => Some(path_tokens(&path, true)),
                Err(problem) => {
                    self.problems.push(problem);
                    None
                }
            },
        }
    }
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "self" | "Self" | "super" | "crate" | "as" | "dyn" | "impl" | "where" | "in" | "mut"
    )
}
