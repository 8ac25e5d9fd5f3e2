//! Names in quoted code, resolved as rustc resolved them in the module of the
//! `q!`. Generated code lives in another crate (the role binaries), where
//! that module's items and imports are not in scope: every path that starts
//! with a name of the module (an item, an import of any form, a child module)
//! is written out in full, `::flow::counter::Update` or
//! `::std::collections::BTreeMap`.
//!
//! A module is read with syn from the flow crate's sources ([`FlowSources`]).
//! Its items come first, then its `use` declarations (single, renamed,
//! braced), then its glob imports (of flow modules and enums, which are read
//! too, and of `weir`, whose shared items are known), then the crates it can
//! name. A name that could only come from a glob import of another crate
//! (`use std::collections::*`), which is not read, is a build error that asks
//! for a named import. A name found nowhere is left to rustc: a primitive
//! type, a prelude item, an item a macro makes.

use crate::error::Problem;
use crate::reach::FlowSources;
use crate::workspace::Dependency;
use proc_macro2::{Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use syn::{Item, UseTree, Visibility};
use weir::ir::QuotedExpr;
use weir_core::{SHARED_ITEMS, SHARED_TRAITS};

/// What a path in quoted code names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// In the flow crate: its segments from the crate root.
    Flow { path: Vec<String>, kind: Kind },
    /// In another crate, from the crate's name: `std::collections::BTreeMap`.
    Extern(Vec<String>),
}

/// What a flow-crate item is, as far as looking names up in it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Module,
    Trait,
    /// An enum, with its variants (a glob import of it brings them in).
    Enum(Vec<String>),
    Other,
}

/// Why a name was not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unresolved {
    /// Not found: left to rustc.
    Unknown,
    /// Not found, but the module glob-imports these paths of other crates.
    ForeignGlobs(Vec<String>),
}

/// One name a `use` declaration binds, or a glob it imports.
struct UseBinding {
    /// `None` for a glob; `_` for a trait imported for its methods only.
    name: Option<String>,
    /// The path imported (the glob's module).
    path: Vec<String>,
    leading_colon: bool,
    public: bool,
}

/// Deep enough for any real chain of re-exports; stops glob cycles.
const MAX_DEPTH: usize = 24;

/// Resolves the names of quoted code written in one flow crate.
pub struct Resolver<'s> {
    sources: &'s mut FlowSources,
    /// The crates each flow crate can name, by crate name.
    dependencies: &'s HashMap<String, Vec<Dependency>>,
    /// Those of the crate of the `q!` being resolved.
    flow_dependencies: &'s [Dependency],
    /// The crates the generated code can name.
    own_dependencies: &'s [Dependency],
    /// Where generated code is compiled, for messages (`bins`).
    own_package: &'s str,
    /// The lookups under way, `(module, name)`: one met again is a cycle of
    /// imports (`use std::x::*` asks what `std` is), not found that way.
    looking_up: Vec<(Vec<String>, String)>,
}

impl<'s> Resolver<'s> {
    pub fn new(
        sources: &'s mut FlowSources,
        dependencies: &'s HashMap<String, Vec<Dependency>>,
        own_dependencies: &'s [Dependency],
        own_package: &'s str,
    ) -> Self {
        Resolver {
            sources,
            dependencies,
            flow_dependencies: &[],
            own_dependencies,
            own_package,
            looking_up: Vec::new(),
        }
    }

    /// Rewrites `quoted.code` so that every path in it means in generated
    /// code what it meant at the `q!`; the problems found instead.
    pub fn resolve(&mut self, quoted: &mut QuotedExpr) -> Vec<Problem> {
        let mut module: Vec<String> = quoted.module.split("::").map(String::from).collect();
        let crate_name = module.remove(0);
        let Some(root) = self.sources.crate_root(&crate_name, &quoted.at.file) else {
            return Vec::new(); // not a crate we can read: paths stay as `q!` wrote them
        };
        let dependencies = self.dependencies;
        self.flow_dependencies = dependencies.get(&crate_name).map_or(&[], Vec::as_slice);
        let Ok(tokens) = TokenStream::from_str(&quoted.code) else {
            return Vec::new();
        };
        let mut scope = Scope {
            resolver: self,
            root,
            crate_name,
            module,
            problems: Vec::new(),
        };
        let code = scope.rewrite(tokens);
        quoted.traits_in_scope = scope.traits_in_scope();
        let problems = scope.problems;
        let at = quoted.at.to_string();
        if problems.is_empty() {
            quoted.code = code.to_string();
        }
        let mut seen = Vec::new();
        problems
            .into_iter()
            .filter(|m| {
                let new = !seen.contains(m);
                seen.push(m.clone());
                new
            })
            .map(|message| Problem {
                message,
                at: Some(at.clone()),
            })
            .collect()
    }
}

/// The module of one `q!`, while its code is rewritten.
struct Scope<'r, 's> {
    resolver: &'r mut Resolver<'s>,
    root: PathBuf,
    crate_name: String,
    /// The module's path from the crate root.
    module: Vec<String>,
    problems: Vec<String>,
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
    fn rewrite(&mut self, tokens: TokenStream) -> TokenStream {
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
    fn traits_in_scope(&mut self) -> Vec<String> {
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

impl Resolver<'_> {
    /// A `std::any::type_name` made nameable from generated code: a
    /// flow-crate type whose own module is private is named through a
    /// public re-export (`flow::corpus::Stats` for
    /// `flow::corpus::model::Stats`); a type of another crate needs that
    /// crate among the generated code's dependencies.
    pub fn type_name(&mut self, type_name: &str) -> Result<String, String> {
        let Ok(mut ty) = syn::parse_str::<syn::Type>(type_name) else {
            return Ok(type_name.to_string()); // reported where it is used
        };
        let mut visit = TypePaths {
            resolver: self,
            problem: None,
        };
        syn::visit_mut::VisitMut::visit_type_mut(&mut visit, &mut ty);
        match visit.problem {
            Some(problem) => Err(problem),
            None => Ok(quote::quote!(#ty).to_string()),
        }
    }

    /// A path by which other crates reach flow item `item` (a path from
    /// the crate root), looked for through the public modules' `pub use`s.
    fn public_path(&mut self, root: &PathBuf, item: &[String]) -> Option<Vec<String>> {
        let (name, parent) = item.split_last()?;
        let mut queue = std::collections::VecDeque::from([Vec::<String>::new()]);
        while let Some(module) = queue.pop_front() {
            let items = self.sources.module_items(root, &module)?;
            for binding in use_bindings(&items).into_iter().filter(|b| b.public) {
                let Ok(Target::Flow { path, .. }) =
                    self.use_target(root, &module, &binding.path, binding.leading_colon, 0)
                else {
                    continue;
                };
                let found = match &binding.name {
                    Some(bound) if path == item => Some(bound.clone()),
                    None if path == parent => Some(name.clone()),
                    _ => None,
                };
                if let Some(bound) = found {
                    let mut public = module.clone();
                    public.push(bound);
                    return Some(public);
                }
            }
            if module.len() < MAX_DEPTH {
                for item in items.iter() {
                    if let Item::Mod(m) = item {
                        if matches!(m.vis, Visibility::Public(_)) {
                            let mut child = module.clone();
                            child.push(m.ident.to_string());
                            queue.push_back(child);
                        }
                    }
                }
            }
        }
        None
    }

    /// What `name` means in flow module `module` (a path from the crate root).
    fn lookup(
        &mut self,
        root: &PathBuf,
        module: &[String],
        name: &str,
        depth: usize,
    ) -> Result<Target, Unresolved> {
        let key = (module.to_vec(), name.to_string());
        if depth > MAX_DEPTH || self.looking_up.contains(&key) {
            return Err(Unresolved::Unknown);
        }
        self.looking_up.push(key);
        let found = self.lookup_once(root, module, name, depth);
        self.looking_up.pop();
        found
    }

    fn lookup_once(
        &mut self,
        root: &PathBuf,
        module: &[String],
        name: &str,
        depth: usize,
    ) -> Result<Target, Unresolved> {
        let Some(items) = self.sources.module_items(root, module) else {
            return Err(Unresolved::Unknown);
        };
        let mut here = module.to_vec();
        here.push(name.to_string());
        // Items defined here.
        for item in items.iter() {
            if let Some(kind) = defines(item, name) {
                return Ok(match kind {
                    Defined::Flow(kind) => Target::Flow { path: here, kind },
                    Defined::Crate(krate) => Target::Extern(vec![krate]),
                });
            }
        }
        let bindings = use_bindings(&items);
        // Names imported one by one.
        if let Some(binding) = bindings.iter().find(|b| b.name.as_deref() == Some(name)) {
            let target = self.use_target(
                root,
                module,
                &binding.path,
                binding.leading_colon,
                depth + 1,
            )?;
            // A public re-export from a public module is a path generated code
            // can use as it is, even where the item's own module is private.
            if binding.public && self.sources.module_is_public(root, module) {
                if let Target::Flow { kind, .. } = target {
                    return Ok(Target::Flow { path: here, kind });
                }
            }
            return Ok(target);
        }
        // Names imported with globs.
        let mut foreign = Vec::new();
        for binding in bindings.iter().filter(|b| b.name.is_none()) {
            let Ok(target) = self.use_target(
                root,
                module,
                &binding.path,
                binding.leading_colon,
                depth + 1,
            ) else {
                continue;
            };
            match target {
                Target::Flow {
                    path,
                    kind: Kind::Module,
                } => match self.lookup(root, &path, name, depth + 1) {
                    Ok(found) => return Ok(found),
                    Err(Unresolved::ForeignGlobs(more)) => foreign.extend(more),
                    Err(Unresolved::Unknown) => {}
                },
                Target::Flow {
                    mut path,
                    kind: Kind::Enum(variants),
                } => {
                    if variants.iter().any(|v| v == name) {
                        path.push(name.to_string());
                        return Ok(Target::Flow {
                            path,
                            kind: Kind::Other,
                        });
                    }
                }
                Target::Flow { .. } => {}
                Target::Extern(path) => {
                    let weir = matches!(path[0].as_str(), "weir" | "weir_core");
                    if weir && SHARED_ITEMS.contains(&name) {
                        return Ok(Target::Extern(vec!["weir".into(), name.into()]));
                    }
                    if !weir {
                        foreign.push(path.join("::"));
                    }
                }
            }
        }
        // Crates.
        if is_std(name) || self.flow_dependencies.iter().any(|d| d.name == name) {
            return Ok(Target::Extern(vec![name.to_string()]));
        }
        if foreign.is_empty() {
            Err(Unresolved::Unknown)
        } else {
            Err(Unresolved::ForeignGlobs(foreign))
        }
    }

    /// What the path of a `use` in `module` names.
    fn use_target(
        &mut self,
        root: &PathBuf,
        module: &[String],
        path: &[String],
        leading_colon: bool,
        depth: usize,
    ) -> Result<Target, Unresolved> {
        let Some(first) = path.first() else {
            return Err(Unresolved::Unknown);
        };
        if leading_colon {
            return Ok(Target::Extern(path.to_vec()));
        }
        let mut base = module.to_vec();
        let rest = match first.as_str() {
            "crate" => {
                base.clear();
                &path[1..]
            }
            "self" => &path[1..],
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                base.truncate(base.len().saturating_sub(supers));
                &path[supers..]
            }
            _ => {
                let start = self.lookup(root, module, first, depth)?;
                return self
                    .walk(root, start, &path[1..], depth)
                    .map_err(|_| Unresolved::Unknown);
            }
        };
        let start = Target::Flow {
            path: base,
            kind: Kind::Module,
        };
        self.walk(root, start, rest, depth)
            .map_err(|_| Unresolved::Unknown)
    }

    /// `start` followed by `segments`: through flow modules name by name,
    /// then whatever lies below an item or in another crate as it is.
    fn walk(
        &mut self,
        root: &PathBuf,
        start: Target,
        segments: &[String],
        depth: usize,
    ) -> Result<Target, String> {
        let mut target = start;
        for (i, seg) in segments.iter().enumerate() {
            target = match target {
                Target::Flow {
                    path,
                    kind: Kind::Module,
                } => match self.lookup(root, &path, seg, depth + 1) {
                    Ok(found) => found,
                    // Left to rustc (and to the reachability check).
                    Err(_) => {
                        let mut path = path;
                        path.extend(segments[i..].iter().cloned());
                        return Ok(Target::Flow {
                            path,
                            kind: Kind::Other,
                        });
                    }
                },
                Target::Flow { mut path, .. } => {
                    path.extend(segments[i..].iter().cloned());
                    return Ok(Target::Flow {
                        path,
                        kind: Kind::Other,
                    });
                }
                Target::Extern(mut path) => {
                    path.extend(segments[i..].iter().cloned());
                    return Ok(Target::Extern(path));
                }
            };
        }
        Ok(target)
    }

    /// A path into another crate as generated code writes it: Weir's shared
    /// items from `weir_runtime`, `alloc` as `std`, any other crate only if
    /// the package of the generated code depends on it.
    fn extern_path(&self, mut path: Vec<String>) -> Result<Vec<String>, String> {
        let krate = path[0].clone();
        match krate.as_str() {
            "std" | "core" => Ok(path),
            "alloc" => {
                path[0] = "std".into();
                Ok(path)
            }
            "weir" | "weir_core" => {
                let Some(at) = path.iter().position(|s| SHARED_ITEMS.contains(&s.as_str())) else {
                    return Err(format!(
                        "`{}` is part of Weir's flow API, which runs at build time: role binaries do not have it. Quoted code can use {}",
                        path.join("::"),
                        SHARED_ITEMS
                            .iter()
                            .map(|s| format!("`weir::{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                let mut out = vec!["weir_runtime".to_string()];
                out.extend(path.drain(at..));
                Ok(out)
            }
            _ if self.own_dependencies.iter().any(|d| d.name == krate) => Ok(path),
            _ => {
                let declared = self
                    .flow_dependencies
                    .iter()
                    .find(|d| d.name == krate)
                    .map(|d| format!("`{} = {}`", d.name, d.declared))
                    .unwrap_or_else(|| format!("`{krate}`"));
                Err(format!(
                    "quoted code uses the crate `{krate}`, but the role binaries' package `{}` does not depend on it: add {declared} to its [dependencies]",
                    self.own_package
                ))
            }
        }
    }
}

/// Rewrites the paths of a type for [`Resolver::type_name`].
struct TypePaths<'r, 's> {
    resolver: &'r mut Resolver<'s>,
    problem: Option<String>,
}

impl syn::visit_mut::VisitMut for TypePaths<'_, '_> {
    fn visit_type_path_mut(&mut self, ty: &mut syn::TypePath) {
        syn::visit_mut::visit_type_path_mut(self, ty);
        if ty.qself.is_some() || ty.path.segments.len() < 2 || self.problem.is_some() {
            return;
        }
        let names: Vec<String> = ty
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        let krate = names[0].as_str();
        if is_std(krate) || matches!(krate, "weir" | "weir_core") {
            return; // made public by `nameable_type`
        }
        let Some(root) = self.resolver.sources.member_crate_root(krate) else {
            // Another crate's type: generated code must be able to name it.
            if let Err(problem) = self.resolver.extern_path(names) {
                self.problem = Some(problem);
            }
            return;
        };
        let item = &names[1..];
        let quoted_in = names[0].clone();
        if self
            .resolver
            .sources
            .unreachable(&root, item, &quoted_in)
            .is_none()
        {
            return;
        }
        let Some(public) = self.resolver.public_path(&root, item) else {
            self.problem = self.resolver.sources.unreachable(&root, item, &quoted_in);
            return;
        };
        // The type's own generic arguments stay on its last segment.
        let last = ty
            .path
            .segments
            .last()
            .cloned()
            .expect("two segments or more");
        let mut segments: syn::punctuated::Punctuated<syn::PathSegment, syn::Token![::]> =
            std::iter::once(krate)
                .chain(public.iter().map(String::as_str))
                .map(|s| syn::PathSegment::from(Ident::new(s, Span::call_site())))
                .collect();
        if let Some(end) = segments.last_mut() {
            end.arguments = last.arguments;
        }
        ty.path.segments = segments;
    }
}

fn is_std(name: &str) -> bool {
    matches!(name, "std" | "core" | "alloc")
}

/// What an item defines under `name`, if it does.
enum Defined {
    Flow(Kind),
    /// `extern crate serde as s;`
    Crate(String),
}

fn defines(item: &Item, name: &str) -> Option<Defined> {
    let (ident, kind) = match item {
        Item::Mod(i) => (&i.ident, Kind::Module),
        Item::Enum(i) => (
            &i.ident,
            Kind::Enum(i.variants.iter().map(|v| v.ident.to_string()).collect()),
        ),
        Item::Fn(i) => (&i.sig.ident, Kind::Other),
        Item::Const(i) => (&i.ident, Kind::Other),
        Item::Static(i) => (&i.ident, Kind::Other),
        Item::Struct(i) => (&i.ident, Kind::Other),
        Item::Union(i) => (&i.ident, Kind::Other),
        Item::Type(i) => (&i.ident, Kind::Other),
        Item::Trait(i) => (&i.ident, Kind::Trait),
        Item::TraitAlias(i) => (&i.ident, Kind::Trait),
        Item::Macro(i) => (i.ident.as_ref()?, Kind::Other),
        Item::ExternCrate(i) => {
            let bound = i.rename.as_ref().map(|(_, r)| r).unwrap_or(&i.ident);
            return (bound == name && i.ident != "self")
                .then(|| Defined::Crate(i.ident.to_string()));
        }
        _ => return None,
    };
    (ident == name).then_some(Defined::Flow(kind))
}

/// Every name (and glob) the `use` declarations among `items` bind.
fn use_bindings(items: &[Item]) -> Vec<UseBinding> {
    let mut out = Vec::new();
    for item in items {
        if let Item::Use(u) = item {
            let public = matches!(u.vis, Visibility::Public(_));
            flatten_use(
                &u.tree,
                Vec::new(),
                u.leading_colon.is_some(),
                public,
                &mut out,
            );
        }
    }
    out
}

/// The traits an item list defines, by name.
fn traits_defined(items: &[Item]) -> impl Iterator<Item = String> + '_ {
    items.iter().filter_map(|item| match item {
        Item::Trait(t) => Some(t.ident.to_string()),
        _ => None,
    })
}

/// Every name (and glob) a use tree binds, with the path it imports.
fn flatten_use(
    tree: &UseTree,
    mut prefix: Vec<String>,
    leading_colon: bool,
    public: bool,
    out: &mut Vec<UseBinding>,
) {
    let mut bind = |name: Option<String>, path: Vec<String>| {
        out.push(UseBinding {
            name,
            path,
            leading_colon,
            public,
        })
    };
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, leading_colon, public, out);
        }
        UseTree::Name(n) if n.ident == "self" => {
            if let Some(last) = prefix.last().cloned() {
                bind(Some(last), prefix);
            }
        }
        UseTree::Name(n) => {
            prefix.push(n.ident.to_string());
            bind(Some(n.ident.to_string()), prefix);
        }
        UseTree::Rename(r) => {
            if r.ident != "self" {
                prefix.push(r.ident.to_string());
            }
            bind(Some(r.rename.to_string()), prefix);
        }
        UseTree::Glob(_) => bind(None, prefix),
        UseTree::Group(g) => {
            for tree in &g.items {
                flatten_use(tree, prefix.clone(), leading_colon, public, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::ir::SourceLoc;

    /// A flow crate `fx`, written the ways users write modules.
    fn fixture() -> tempfile::TempDir {
        let fixture = tempfile::Builder::new()
            .prefix("weir-resolve-")
            .tempdir()
            .unwrap();
        let dir = fixture.path();
        std::fs::create_dir_all(dir.join("src/nested")).unwrap();
        let files = [
            (
                "lib.rs",
                "pub mod util;\npub mod nested;\nmod hidden { pub fn f() {} pub struct Shape; }\n\
                 pub use hidden::Shape;\n\
                 pub enum Msg { Ping(u32), Pong }\n\
                 pub mod inner {\n\
                     use crate::util::helper;\n\
                     use crate::util::{Point, secret_twice as twice};\n\
                     use std::collections::BTreeMap;\n\
                     use weir::*;\n\
                     use super::Msg::*;\n\
                     pub use crate::util::helper as exported;\n\
                     fn private() {}\n\
                     pub fn public() {}\n\
                 }\n\
                 pub mod foreign { use std::collections::*; use std::fmt::*; use std::io::*; use std::ops::*; use crate::util::*; }\n",
            ),
            (
                "util.rs",
                "pub fn helper() {}\nfn secret() {}\npub fn secret_twice() {}\npub struct Point;\npub const LIMIT: u32 = 3;\n",
            ),
            (
                "nested/mod.rs",
                "pub mod deep;\nuse crate::util;\npub(crate) fn local() {}\n",
            ),
            ("nested/deep.rs", "use super::super::util::Point as P;\nuse super::*;\n"),
        ];
        for (file, text) in files {
            std::fs::write(dir.join("src").join(file), text).unwrap();
        }
        fixture
    }

    fn deps(names: &[&str]) -> Vec<Dependency> {
        names
            .iter()
            .map(|n| Dependency {
                name: n.to_string(),
                declared: "{ version = \"1\" }".into(),
            })
            .collect()
    }

    /// `code` quoted in `module` of the fixture: the code generated code
    /// gets, or the problems.
    fn resolve(code: &str, module: &str) -> Result<String, Vec<String>> {
        let fixture = fixture();
        let dir = fixture.path();
        let mut quoted = QuotedExpr {
            code: code.into(),
            at: SourceLoc {
                file: dir.join("src/lib.rs").display().to_string(),
                line: 3,
                column: 9,
            },
            module: module.into(),
            captures: Vec::new(),
            traits_in_scope: Vec::new(),
        };
        let mut sources = FlowSources::new(dir.to_path_buf(), HashMap::new());
        let crate_deps = HashMap::from([("fx".to_string(), deps(&["weir", "serde", "rand"]))]);
        let own = deps(&["weir_runtime", "fx", "serde"]);
        let problems = Resolver::new(&mut sources, &crate_deps, &own, "bins").resolve(&mut quoted);
        if problems.is_empty() {
            Ok(quoted.code.replace(' ', ""))
        } else {
            Err(problems.into_iter().map(|p| p.message).collect())
        }
    }

    /// `code` quoted in `module` resolves to `expected`.
    #[track_caller]
    fn assert_resolves(code: &str, module: &str, expected: &str) {
        assert_eq!(
            resolve(code, module).as_deref(),
            Ok(expected),
            "`{code}` in `{module}`"
        );
    }

    #[test]
    fn items_of_the_module_and_of_others_by_path() {
        assert_resolves(
            "__weir_self :: public ()",
            "fx::inner",
            "::fx::inner::public()",
        );
        assert_resolves(
            "__weir_crate :: util :: helper ()",
            "fx::inner",
            "::fx::util::helper()",
        );
        assert_resolves(
            "__weir_self :: super :: util :: Point",
            "fx::inner",
            "::fx::util::Point",
        );
        // A child module named without `self::`.
        assert_resolves(
            "|p| util :: helper (p . util) . max (u32 :: MAX)",
            "fx",
            "|p|::fx::util::helper(p.util).max(u32::MAX)",
        );
        assert_resolves("[inner :: public ()]", "fx", "[::fx::inner::public()]");
    }

    #[test]
    fn imported_names_resolve_to_what_they_import() {
        // `use a::b;`, braced and renamed, a std type, an enum's variants by glob.
        assert_resolves(
            "__weir_self :: helper ()",
            "fx::inner",
            "::fx::util::helper()",
        );
        assert_resolves("__weir_self :: Point", "fx::inner", "::fx::util::Point");
        assert_resolves(
            "__weir_self :: twice ()",
            "fx::inner",
            "::fx::util::secret_twice()",
        );
        assert_resolves(
            "__weir_self :: BTreeMap :: < u32 , u32 > :: new ()",
            "fx::inner",
            "::std::collections::BTreeMap::<u32,u32>::new()",
        );
        assert_resolves(
            "| m | matches ! (m , __weir_self :: Ping (_))",
            "fx::inner",
            "|m|matches!(m,::fx::Msg::Ping(_))",
        );
        // Glob of a flow module, `super::*`, a renamed import two levels up.
        assert_resolves("__weir_self :: LIMIT", "fx::foreign", "::fx::util::LIMIT");
        assert_resolves("__weir_self :: P", "fx::nested::deep", "::fx::util::Point");
        // A module imported by name.
        assert_resolves("util :: helper ()", "fx::nested", "::fx::util::helper()");
        // A public re-export keeps its own path: the item's module is private.
        assert_resolves("__weir_crate :: Shape", "fx::inner", "::fx::Shape");
    }

    #[test]
    fn weir_names_are_the_runtimes() {
        assert_resolves(
            "| x : (__weir_self :: ClusterId , u64) | x",
            "fx::inner",
            "|x:(::weir_runtime::ClusterId,u64)|x",
        );
        assert_resolves(
            "weir :: ClientEvent :: Request (u)",
            "fx",
            "::weir_runtime::ClientEvent::Request(u)",
        );
        let err = resolve("weir :: FlowBuilder :: new ()", "fx").unwrap_err();
        assert!(
            err[0].starts_with("`weir::FlowBuilder::new` is part of Weir's flow API"),
            "{err:?}"
        );
        assert!(err[0].contains("`weir::ClusterId`"), "{err:?}");
    }

    #[test]
    fn other_crates_must_be_dependencies_of_the_generated_code() {
        assert_resolves("serde :: de :: IgnoredAny", "fx", "::serde::de::IgnoredAny");
        let err = resolve("rand :: random :: < u8 > ()", "fx").unwrap_err();
        assert_eq!(
            err,
            ["quoted code uses the crate `rand`, but the role binaries' package `bins` does not depend on it: add `rand = { version = \"1\" }` to its [dependencies]"]
        );
    }

    #[test]
    fn globs_of_other_crates_side_by_side_resolve_at_once() {
        // Each glob's path asks what `std` is, whose lookup reads the globs.
        // (Without the guard against cycles this lookup branches 4^24 ways.)
        let err = resolve("__weir_self :: BTreeSet :: new ()", "fx::foreign").unwrap_err();
        assert!(
            err[0].starts_with("cannot tell where `BTreeSet` comes from"),
            "{err:?}"
        );
    }

    #[test]
    fn a_name_from_another_crates_glob_asks_for_a_named_import() {
        let err = resolve("__weir_self :: BTreeMap :: new ()", "fx::foreign").unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].starts_with("cannot tell where `BTreeMap` comes from: `fx::foreign` imports from another crate with a glob (`use std::collections::*;`)"), "{err:?}");
        assert!(
            err[0].ends_with("(`use std::collections::BTreeMap;`)"),
            "{err:?}"
        );
    }

    #[test]
    fn private_items_are_named_with_the_fix() {
        let p = resolve("| x | __weir_self :: private (x)", "fx::inner").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("`private` in `fx::inner` is private"),
            "{}",
            p[0]
        );
        assert!(p[0].ends_with("make it `pub`"), "{}", p[0]);
        let p = resolve("__weir_crate :: util :: secret ()", "fx").unwrap_err();
        assert!(
            p[0].starts_with("`secret` in `fx::util` is private"),
            "{p:?}"
        );
        let p = resolve("__weir_crate :: hidden :: f ()", "fx").unwrap_err();
        assert!(p[0].starts_with("module `fx::hidden` is private"), "{p:?}");
        let p = resolve("__weir_self :: local ()", "fx::nested").unwrap_err();
        assert!(
            p[0].starts_with("`local` in `fx::nested` is private"),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_names_are_left_to_rustc() {
        assert_resolves(
            "__weir_self :: generated_by_a_macro ()",
            "fx::inner",
            "::fx::inner::generated_by_a_macro()",
        );
        assert_resolves("Vec :: < u8 > :: new ()", "fx", "Vec::<u8>::new()");
    }

    #[test]
    fn a_crate_root_cargo_names_is_used_whatever_its_file_is_called() {
        // `[lib] path = "src/flows.rs"`: no `lib.rs` to find by walking up.
        let fixture = fixture();
        let dir = fixture.path();
        std::fs::rename(dir.join("src/lib.rs"), dir.join("src/flows.rs")).unwrap();
        let mut quoted = QuotedExpr {
            code: "| x | __weir_self :: private (x)".into(),
            at: SourceLoc {
                file: "fx/src/flows.rs".into(),
                line: 3,
                column: 9,
            },
            module: "fx::inner".into(),
            captures: Vec::new(),
            traits_in_scope: Vec::new(),
        };
        let roots = HashMap::from([("fx".to_string(), dir.join("src/flows.rs"))]);
        let mut sources = FlowSources::new(dir.parent().unwrap().to_path_buf(), roots);
        let none = HashMap::new();
        let p = Resolver::new(&mut sources, &none, &[], "bins").resolve(&mut quoted);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message
                .starts_with("`private` in `fx::inner` is private"),
            "{p:?}"
        );
        assert_eq!(p[0].at.as_deref(), Some("fx/src/flows.rs:3:9"));
    }
}
