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
//!
//! `rewrite` walks the quoted tokens and writes each path out, `lookup`
//! says what a name means in a module, `items` reads what a module's syntax
//! defines and imports, and `type_name` makes a type's name reachable.

mod items;
mod lookup;
mod rewrite;
#[cfg(test)]
mod tests;
mod type_name;

use crate::error::Problem;
use crate::reach::FlowSources;
use crate::workspace::Dependency;
use proc_macro2::TokenStream;
use rewrite::Scope;
use std::collections::HashMap;
use std::str::FromStr;
use weir::ir::QuotedExpr;

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
