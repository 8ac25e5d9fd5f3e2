//! The flow crate's modules, read with syn from its sources (found from the
//! `file!()` of each `q!`), and whether an item in them is reachable from the
//! role binaries, which live in another crate: every module on the path and
//! the item itself must be `pub`. Without this check, a private helper would
//! surface as a rustc error inside a generated file instead of at the
//! user's `q!`. What cannot be read with certainty (macro-generated items,
//! custom `#[path]`s) is left to rustc.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use syn::{Item, Visibility};

/// A parsed module: its items, and the directory its `mod x;` children live in.
struct Module {
    items: Vec<Item>,
    child_dir: PathBuf,
}

/// A module's items, shared while its names are looked up.
pub type Items = Rc<Vec<Item>>;

/// Reads flow-crate sources on demand, each file once.
pub struct FlowSources {
    /// What relative `file!()` paths are relative to: the workspace root.
    root: PathBuf,
    /// Each library's root file, by crate name, as cargo reports them.
    crate_roots: HashMap<String, PathBuf>,
    files: HashMap<PathBuf, Option<syn::File>>,
    /// Each module's items, by crate root and path, once read.
    modules: HashMap<(PathBuf, Vec<String>), Option<Items>>,
}

impl FlowSources {
    /// Sources under workspace `root`, whose libraries' root files are
    /// `crate_roots` (by crate name).
    pub fn new(root: PathBuf, crate_roots: HashMap<String, PathBuf>) -> Self {
        FlowSources {
            root,
            crate_roots,
            files: HashMap::new(),
            modules: HashMap::new(),
        }
    }

    /// The items of flow module `module` (a path from the crate root whose
    /// root file is `root`), or `None` if it cannot be read.
    pub fn module_items(&mut self, root: &Path, module: &[String]) -> Option<Items> {
        let key = (root.to_path_buf(), module.to_vec());
        if let Some(items) = self.modules.get(&key) {
            return items.clone();
        }
        let found = self.module(root, module).map(|m| Rc::new(m.items));
        self.modules.insert(key, found.clone());
        found
    }

    /// Whether every module on the way to `module` is `pub`, so that an item
    /// it re-exports with `pub use` is reachable there from other crates.
    pub fn module_is_public(&mut self, root: &Path, module: &[String]) -> bool {
        (0..module.len()).all(|depth| {
            let Some(items) = self.module_items(root, &module[..depth]) else {
                return false;
            };
            items.iter().any(|item| {
                matches!(item, Item::Mod(m) if m.ident == module[depth] && matches!(m.vis, Visibility::Public(_)))
            })
        })
    }

    fn module(&mut self, root: &Path, path: &[String]) -> Option<Module> {
        let mut here = Module {
            items: self.parse(root)?.items.clone(),
            child_dir: root.parent()?.to_path_buf(),
        };
        for name in path {
            let m = here.items.iter().find_map(|item| match item {
                Item::Mod(m) if m.ident == name => Some(m.clone()),
                _ => None,
            })?;
            here = self.child(&here, &m)?;
        }
        Some(here)
    }

    /// The root file of workspace member crate `name`.
    pub fn member_crate_root(&self, name: &str) -> Option<PathBuf> {
        self.crate_roots.get(name).cloned()
    }

    /// The root file of crate `name`, which holds `file`: as cargo reports it
    /// for a member of the workspace, else (a crate from elsewhere, whose
    /// `file!()` is absolute) the nearest `lib.rs` enclosing `file`.
    pub fn crate_root(&self, name: &str, file: &str) -> Option<PathBuf> {
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
    pub fn unreachable(&mut self, root: &Path, path: &[String], quoted_in: &str) -> Option<String> {
        let crate_name = quoted_in.split("::").next().unwrap_or("crate");
        let mut module = Module {
            items: self.parse(root)?.items.clone(),
            child_dir: root.parent()?.to_path_buf(),
        };
        let mut here = crate_name.to_string();
        for (i, name) in path.iter().enumerate() {
            let (item, private) = module.items.iter().find_map(|item| {
                let vis = visibility_of(item, name)?;
                Some((item.clone(), !matches!(vis, Visibility::Public(_))))
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

/// The visibility of `item` if it defines or imports `name`.
fn visibility_of<'i>(item: &'i Item, name: &str) -> Option<&'i Visibility> {
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
        Item::Use(u) => return imports(&u.tree, name).then_some(&u.vis),
        _ => return None,
    };
    (ident == name).then_some(vis)
}

/// Whether a use tree imports `name` by name (globs are not followed).
fn imports(tree: &syn::UseTree, name: &str) -> bool {
    match tree {
        syn::UseTree::Path(p) => imports(&p.tree, name),
        syn::UseTree::Name(n) => n.ident == name,
        syn::UseTree::Rename(r) => r.rename == name,
        syn::UseTree::Glob(_) => false,
        syn::UseTree::Group(g) => g.items.iter().any(|t| imports(t, name)),
    }
}
