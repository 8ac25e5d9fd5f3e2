//! What a name means in a flow module, as rustc would say: its items, then
//! its imports by name, then its globs, then the crates it can name; and a
//! path into another crate as generated code writes it.

use super::items::{defines, use_bindings, Defined};
use super::{Kind, Resolver, Target, Unresolved, MAX_DEPTH};
use std::path::PathBuf;
use weir_core::SHARED_ITEMS;

impl Resolver<'_> {
    /// What `name` means in flow module `module` (a path from the crate root).
    pub(super) fn lookup(
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
    pub(super) fn use_target(
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
    pub(super) fn walk(
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
    pub(super) fn extern_path(&self, mut path: Vec<String>) -> Result<Vec<String>, String> {
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

pub(super) fn is_std(name: &str) -> bool {
    matches!(name, "std" | "core" | "alloc")
}
