//! What a module's syntax defines and imports, read from its items.

use super::Kind;
use syn::{Item, UseTree, Visibility};

/// One name a `use` declaration binds, or a glob it imports.
pub(super) struct UseBinding {
    /// `None` for a glob; `_` for a trait imported for its methods only.
    pub(super) name: Option<String>,
    /// The path imported (the glob's module).
    pub(super) path: Vec<String>,
    pub(super) leading_colon: bool,
    pub(super) public: bool,
}

/// What an item defines under `name`, if it does.
pub(super) enum Defined {
    Flow(Kind),
    /// `extern crate serde as s;`
    Crate(String),
}

pub(super) fn defines(item: &Item, name: &str) -> Option<Defined> {
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
pub(super) fn use_bindings(items: &[Item]) -> Vec<UseBinding> {
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
pub(super) fn traits_defined(items: &[Item]) -> impl Iterator<Item = String> + '_ {
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
