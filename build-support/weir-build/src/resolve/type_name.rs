//! A type's name (from `std::any::type_name`) made nameable from generated
//! code: through a public re-export where its own module is private.

use super::items::use_bindings;
use super::lookup::is_std;
use super::{Resolver, Target, MAX_DEPTH};
use proc_macro2::{Ident, Span};
use std::path::PathBuf;
use syn::{Item, Visibility};

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
