//! Checks that the flow-crate items named in `q!` code are reachable from the role
//! binaries, which live in another crate: every module on the path and the item
//! itself must be `pub`. Without this, a private helper would surface as a rustc
//! error inside a generated file instead of at the user's `q!`.
//!
//! The flow crate's module tree is read with syn from its sources (found from the
//! `file!()` of the `q!`). What cannot be resolved with certainty (glob imports,
//! macro-generated items, custom `#[path]`s) is left to rustc.

use crate::error::Problem;
use proc_macro2::{Group, Ident, Punct, Spacing, TokenStream, TokenTree};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use syn::{Item, Visibility};
use weir::ir::QuotedExpr;

/// A parsed module: its items, and the directory its `mod x;` children live in.
struct Module {
    items: Vec<Item>,
    child_dir: PathBuf,
}

/// Reads flow-crate sources on demand, each file once.
pub struct FlowSources {
    /// What relative `file!()` paths are relative to: the workspace root.
    root: PathBuf,
    /// Each library's root file, by crate name, as cargo reports them.
    crate_roots: HashMap<String, PathBuf>,
    files: HashMap<PathBuf, Option<syn::File>>,
}

impl FlowSources {
    /// Sources under workspace `root`, whose libraries' root files are
    /// `crate_roots` (by crate name).
    pub fn new(root: PathBuf, crate_roots: HashMap<String, PathBuf>) -> Self {
        FlowSources {
            root,
            crate_roots,
            files: HashMap::new(),
        }
    }

    /// Problems with the items `quoted` names (none if all are reachable).
    pub fn check(&mut self, quoted: &QuotedExpr) -> Vec<Problem> {
        let crate_name = quoted.module.split("::").next().unwrap_or_default();
        let Some(root) = self.crate_root(crate_name, &quoted.at.file) else {
            return Vec::new();
        };
        let module: Vec<String> = quoted
            .module
            .split("::")
            .skip(1)
            .map(str::to_string)
            .collect();
        let Ok(tokens) = TokenStream::from_str(&quoted.code) else {
            return Vec::new();
        };
        let mut paths = Vec::new();
        item_paths(tokens, &module, &mut paths);
        paths.sort();
        paths.dedup();
        let mut problems = Vec::new();
        for path in paths {
            if let Some(message) = self.unreachable(&root, &path, &quoted.module) {
                problems.push(Problem {
                    message,
                    at: Some(quoted.at.to_string()),
                });
            }
        }
        problems
    }

    /// Makes the relative module paths in `quoted` absolute: `proposer::Input`,
    /// written in a module with a child `mod proposer`, becomes
    /// `__weir_self :: proposer :: Input`, which is what rustc resolved it to
    /// there (generated code lives in another crate, where it would not be).
    pub fn anchor_child_modules(&mut self, quoted: &mut QuotedExpr) {
        let crate_name = quoted.module.split("::").next().unwrap_or_default();
        let Some(root) = self.crate_root(crate_name, &quoted.at.file) else {
            return;
        };
        let Some(children) = self.child_modules(&root, &quoted.module) else {
            return;
        };
        if children.is_empty() {
            return;
        }
        if let Ok(tokens) = TokenStream::from_str(&quoted.code) {
            quoted.code = anchor(tokens, &children).to_string();
        }
    }

    /// The names of the modules declared in `module` (a path from the crate
    /// root, crate name first).
    fn child_modules(&mut self, root: &Path, module: &str) -> Option<Vec<String>> {
        let mut here = Module {
            items: self.parse(root)?.items.clone(),
            child_dir: root.parent()?.to_path_buf(),
        };
        for name in module.split("::").skip(1) {
            let m = here.items.iter().find_map(|item| match item {
                Item::Mod(m) if m.ident == name => Some(m.clone()),
                _ => None,
            })?;
            here = self.child(&here, &m)?;
        }
        Some(
            here.items
                .iter()
                .filter_map(|item| match item {
                    Item::Mod(m) => Some(m.ident.to_string()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The root file of crate `name`, which holds `file`: as cargo reports it
    /// for a member of the workspace, else (a crate from elsewhere, whose
    /// `file!()` is absolute) the nearest `lib.rs` enclosing `file`.
    fn crate_root(&self, name: &str, file: &str) -> Option<PathBuf> {
        if let Some(root) = self.crate_roots.get(name) {
            return Some(root.clone());
        }
        let file = self.root.join(file);
        file.ancestors()
            .skip(1)
            .map(|dir| dir.join("lib.rs"))
            .find(|p| p.exists())
    }

    fn parse(&mut self, path: &Path) -> Option<&syn::File> {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|text| syn::parse_file(&text).ok())
            })
            .as_ref()
    }

    /// Why the item at `path` (segments from the crate root) cannot be reached, if so.
    fn unreachable(&mut self, root: &Path, path: &[String], quoted_in: &str) -> Option<String> {
        let crate_name = quoted_in.split("::").next().unwrap_or("crate");
        let mut module = Module {
            items: self.parse(root)?.items.clone(),
            child_dir: root.parent()?.to_path_buf(),
        };
        let mut here = crate_name.to_string();
        for (i, name) in path.iter().enumerate() {
            let (item, private) = module.items.iter().find_map(|item| {
                let (defined, vis) = name_and_visibility(item)?;
                (defined == *name).then(|| (item.clone(), !matches!(vis, Visibility::Public(_))))
            })?;
            if let Item::Mod(m) = &item {
                if i + 1 < path.len() {
                    if private {
                        return Some(format!(
                            "module `{here}::{name}` is private, but `q!` code runs in the generated role binaries, outside the flow crate: make it `pub mod {name}`"
                        ));
                    }
                    module = self.child(&module, m)?;
                    here = format!("{here}::{name}");
                    continue;
                }
            }
            if private {
                let what = if matches!(item, Item::Use(_)) {
                    "is imported with a private `use`"
                } else {
                    "is private"
                };
                return Some(format!(
                    "`{name}` in `{here}` {what}, but `q!` code runs in the generated role binaries, outside the flow crate: make it `pub`"
                ));
            }
            return None; // reachable; what lies below a type or function is rustc's to check
        }
        None
    }

    /// The module a `mod` item declares: inline, or `name.rs` / `name/mod.rs`.
    fn child(&mut self, parent: &Module, m: &syn::ItemMod) -> Option<Module> {
        let name = m.ident.to_string();
        if let Some((_, items)) = &m.content {
            return Some(Module {
                items: items.clone(),
                child_dir: parent.child_dir.join(&name),
            });
        }
        if m.attrs.iter().any(|a| a.path().is_ident("path")) {
            return None;
        }
        let flat = parent.child_dir.join(format!("{name}.rs"));
        let nested = parent.child_dir.join(&name).join("mod.rs");
        let file = if flat.exists() { flat } else { nested };
        let items = self.parse(&file)?.items.clone();
        Some(Module {
            items,
            child_dir: parent.child_dir.join(&name),
        })
    }
}

/// `tokens` with each path that starts with one of `children` (`m :: x`,
/// not `a :: m :: x` or `v . m`) put under `__weir_self`.
fn anchor(tokens: TokenStream, children: &[String]) -> TokenStream {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let is_colon =
        |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let mut out = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), anchor(g.stream(), children));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            TokenTree::Ident(id)
                if children.iter().any(|c| id == c)
                    && is_colon(tokens.get(i + 1))
                    && is_colon(tokens.get(i + 2))
                    && !(i > 0
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if matches!(p.as_char(), ':' | '.'))) =>
            {
                out.push(TokenTree::Ident(Ident::new("__weir_self", id.span())));
                out.push(TokenTree::Punct(Punct::new(':', Spacing::Joint)));
                out.push(TokenTree::Punct(Punct::new(':', Spacing::Alone)));
                out.push(token.clone());
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

/// The name an item defines in its module, and its visibility.
fn name_and_visibility(item: &Item) -> Option<(String, &Visibility)> {
    let (ident, vis) = match item {
        Item::Fn(i) => (&i.sig.ident, &i.vis),
        Item::Const(i) => (&i.ident, &i.vis),
        Item::Static(i) => (&i.ident, &i.vis),
        Item::Struct(i) => (&i.ident, &i.vis),
        Item::Enum(i) => (&i.ident, &i.vis),
        Item::Union(i) => (&i.ident, &i.vis),
        Item::Type(i) => (&i.ident, &i.vis),
        Item::Trait(i) => (&i.ident, &i.vis),
        Item::Mod(i) => (&i.ident, &i.vis),
        Item::Use(u) => return use_name(&u.tree).map(|name| (name, &u.vis)),
        _ => return None,
    };
    Some((ident.to_string(), vis))
}

/// The single name a `use` brings in (`use a::b;`, `use a::c as b;`); groups and
/// globs are not resolved.
fn use_name(tree: &syn::UseTree) -> Option<String> {
    match tree {
        syn::UseTree::Path(p) => use_name(&p.tree),
        syn::UseTree::Name(n) => Some(n.ident.to_string()),
        syn::UseTree::Rename(r) => Some(r.rename.to_string()),
        syn::UseTree::Glob(_) | syn::UseTree::Group(_) => None,
    }
}

/// Paths (from the crate root) that quoted code names through the `q!`
/// placeholders: `__weir_self :: a :: b` in module `m` is `m::a::b`.
fn item_paths(tokens: TokenStream, module: &[String], out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => item_paths(g.stream(), module, out),
            TokenTree::Ident(id) if id == "__weir_self" || id == "__weir_crate" => {
                let mut path: Vec<String> = if id == "__weir_self" {
                    module.to_vec()
                } else {
                    Vec::new()
                };
                let mut j = i + 1;
                while j + 1 < tokens.len()
                    && matches!(&tokens[j], TokenTree::Punct(p) if p.as_char() == ':')
                    && matches!(tokens.get(j + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':')
                {
                    match tokens.get(j + 2) {
                        Some(TokenTree::Ident(s)) if s == "super" => {
                            path.pop();
                        }
                        Some(TokenTree::Ident(s)) => path.push(s.to_string()),
                        _ => break,
                    }
                    j += 3;
                }
                out.push(path);
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::ir::SourceLoc;

    /// A flow crate `fx` with a `util` module file and an inline `inner` module.
    fn fixture() -> PathBuf {
        // One directory per call: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-reach-{}-{n}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("src/lib.rs"),
            "pub mod util;\nmod hidden { pub fn f() {} }\npub mod inner {\n    use crate::util::helper;\n    pub use crate::util::helper as exported;\n    fn private() {}\n    pub fn public() {}\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("src/util.rs"),
            "pub fn helper() {}\nfn secret() {}\npub struct Point;\n",
        )
        .unwrap();
        dir
    }

    /// `code`, quoted in module `module`, at line 3 of `file`.
    fn quoted(code: &str, module: &str, file: String) -> QuotedExpr {
        QuotedExpr {
            code: code.into(),
            at: SourceLoc {
                file,
                line: 3,
                column: 9,
            },
            module: module.into(),
            captures: Vec::new(),
        }
    }

    fn problems(code: &str, module: &str) -> Vec<String> {
        let dir = fixture();
        let quoted = quoted(code, module, dir.join("src/lib.rs").display().to_string());
        FlowSources::new(dir, HashMap::new())
            .check(&quoted)
            .into_iter()
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn public_items_pass() {
        assert!(problems("__weir_self :: public ()", "fx::inner").is_empty());
        assert!(problems("__weir_crate :: util :: helper ()", "fx::inner").is_empty());
        assert!(problems("__weir_self :: super :: util :: Point", "fx::inner").is_empty());
        assert!(problems("__weir_self :: exported ()", "fx::inner").is_empty());
    }

    #[test]
    fn private_items_are_named_with_the_fix() {
        let p = problems("| x | __weir_self :: private (x)", "fx::inner");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("`private` in `fx::inner` is private"),
            "{}",
            p[0]
        );
        assert!(p[0].ends_with("make it `pub`"), "{}", p[0]);
        let p = problems("__weir_crate :: util :: secret ()", "fx");
        assert!(
            p[0].starts_with("`secret` in `fx::util` is private"),
            "{p:?}"
        );
    }

    #[test]
    fn private_modules_and_private_imports_are_named() {
        let p = problems("__weir_crate :: hidden :: f ()", "fx");
        assert!(p[0].starts_with("module `fx::hidden` is private"), "{p:?}");
        let p = problems("__weir_self :: helper ()", "fx::inner");
        assert!(p[0].contains("is imported with a private `use`"), "{p:?}");
    }

    #[test]
    fn unknown_names_are_left_to_rustc() {
        assert!(problems("__weir_self :: generated_by_a_macro ()", "fx::inner").is_empty());
    }

    #[test]
    fn a_crate_root_cargo_names_is_used_whatever_its_file_is_called() {
        // `[lib] path = "src/flows.rs"`: no `lib.rs` to find by walking up.
        let dir = fixture();
        std::fs::rename(dir.join("src/lib.rs"), dir.join("src/flows.rs")).unwrap();
        let quoted = quoted(
            "| x | __weir_self :: private (x)",
            "fx::inner",
            "fx/src/flows.rs".into(),
        );
        let roots = HashMap::from([("fx".to_string(), dir.join("src/flows.rs"))]);
        let p = FlowSources::new(dir.parent().unwrap().to_path_buf(), roots).check(&quoted);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message
                .starts_with("`private` in `fx::inner` is private"),
            "{p:?}"
        );
        assert_eq!(p[0].at.as_deref(), Some("fx/src/flows.rs:3:9"));
    }

    /// `code` quoted in module `module` of the fixture, with its child
    /// modules anchored.
    fn anchored(code: &str, module: &str) -> String {
        let dir = fixture();
        let mut quoted = quoted(code, module, dir.join("src/lib.rs").display().to_string());
        FlowSources::new(dir, HashMap::new()).anchor_child_modules(&mut quoted);
        quoted.code
    }

    #[test]
    fn relative_paths_into_child_modules_are_made_absolute() {
        assert_eq!(
            anchored(
                "| p | util :: helper (p . util) . max (std :: u32 :: MAX)",
                "fx"
            ),
            "| p | __weir_self :: util :: helper (p . util) . max (std :: u32 :: MAX)"
        );
        // Inside a group, and only where a path starts.
        assert_eq!(
            anchored(
                "[inner :: public () , __weir_crate :: inner :: public ()]",
                "fx"
            ),
            "[__weir_self :: inner :: public () , __weir_crate :: inner :: public ()]"
        );
        // `util` is no child of `fx::inner`.
        assert_eq!(
            anchored("util :: helper ()", "fx::inner"),
            "util :: helper ()"
        );
    }
}
