//! Where two shapes first differ, said as a person would: `Rec.a: u32 at
//! leader, (u16, u16) at sink` (each side named by the caller).

use super::{Fields, Shape, TypeShape, WireShape};
use std::collections::BTreeSet;

pub(super) fn first_difference(
    here: &WireShape,
    there: &WireShape,
    names: (&str, &str),
) -> Option<String> {
    let label = match &here.root {
        Shape::Named(name) => name.clone(),
        _ => "the record".to_string(),
    };
    let mut walk = Walk {
        here,
        there,
        names,
        compared: BTreeSet::new(),
    };
    walk.shapes(&label, &here.root, &there.root)
}

struct Walk<'s> {
    here: &'s WireShape,
    there: &'s WireShape,
    /// How each side is named in messages: `here`, `at leader`.
    names: (&'s str, &'s str),
    /// Named types already compared (a type may hold itself).
    compared: BTreeSet<&'s str>,
}

impl<'s> Walk<'s> {
    fn differ(
        &self,
        path: &str,
        here: impl std::fmt::Display,
        there: impl std::fmt::Display,
    ) -> Option<String> {
        let (a, b) = self.names;
        Some(format!("{path}: {here} {a}, {there} {b}"))
    }

    fn shapes(&mut self, path: &str, a: &'s Shape, b: &'s Shape) -> Option<String> {
        match (a, b) {
            (Shape::Named(x), Shape::Named(y)) if x == y => self.named(x),
            (Shape::Option(x), Shape::Option(y)) => self.shapes(path, x, y),
            (Shape::Encoded(x), Shape::Encoded(y)) => self.shapes(path, x, y),
            (Shape::Seq(x), Shape::Seq(y)) => self.shapes(&format!("{path}[]"), x, y),
            (Shape::Map(k1, v1), Shape::Map(k2, v2)) => self
                .shapes(&format!("{path}.key"), k1, k2)
                .or_else(|| self.shapes(&format!("{path}.value"), v1, v2)),
            (Shape::Tuple(x), Shape::Tuple(y)) if x.len() == y.len() => self.list(path, x, y),
            (a, b) if a == b => None,
            (a, b) => self.differ(path, a, b),
        }
    }

    fn list(&mut self, path: &str, a: &'s [Shape], b: &'s [Shape]) -> Option<String> {
        a.iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| self.shapes(&format!("{path}.{i}"), x, y))
    }

    fn named(&mut self, name: &'s str) -> Option<String> {
        if !self.compared.insert(name) {
            return None;
        }
        let (Some(a), Some(b)) = (self.here.types.get(name), self.there.types.get(name)) else {
            return None;
        };
        match (a, b) {
            (TypeShape::Struct(x), TypeShape::Struct(y)) => self.fields(name, x, y),
            (TypeShape::Enum(x), TypeShape::Enum(y)) => {
                for i in 0..x.len().max(y.len()) {
                    let at = format!("{name}, variant {i}");
                    match (x.get(i), y.get(i)) {
                        (Some((v, _)), None) => return self.differ(&at, format!("`{v}`"), "none"),
                        (None, Some((v, _))) => return self.differ(&at, "none", format!("`{v}`")),
                        (Some((v, _)), Some((w, _))) if v != w => {
                            return self.differ(&at, format!("`{v}`"), format!("`{w}`"))
                        }
                        (Some((v, f)), Some((_, g))) => {
                            if let Some(found) = self.fields(&format!("{name}::{v}"), f, g) {
                                return Some(found);
                            }
                        }
                        (None, None) => {}
                    }
                }
                None
            }
            (TypeShape::Struct(_), TypeShape::Enum(_)) => self.differ(name, "a struct", "an enum"),
            (TypeShape::Enum(_), TypeShape::Struct(_)) => self.differ(name, "an enum", "a struct"),
        }
    }

    fn fields(&mut self, path: &str, a: &'s Fields, b: &'s Fields) -> Option<String> {
        match (a, b) {
            (Fields::Newtype(x), Fields::Newtype(y)) => self.shapes(&format!("{path}.0"), x, y),
            (Fields::Tuple(x), Fields::Tuple(y)) if x.len() == y.len() => self.list(path, x, y),
            (Fields::Struct(x), Fields::Struct(y)) => {
                for i in 0..x.len().max(y.len()) {
                    match (x.get(i), y.get(i)) {
                        (Some((f, _)), None) => {
                            return self.differ(path, format!("field `{f}`"), "no such field")
                        }
                        (None, Some((f, _))) => {
                            return self.differ(path, "no such field", format!("field `{f}`"))
                        }
                        (Some((f, _)), Some((g, _))) if f != g => {
                            return self.differ(
                                &format!("{path}, field {i}"),
                                format!("`{f}`"),
                                format!("`{g}`"),
                            )
                        }
                        (Some((f, s)), Some((_, t))) => {
                            if let Some(found) = self.shapes(&format!("{path}.{f}"), s, t) {
                                return Some(found);
                            }
                        }
                        (None, None) => {}
                    }
                }
                None
            }
            (a, b) if a == b => None,
            (a, b) => self.differ(path, describe(a), describe(b)),
        }
    }
}

fn describe(fields: &Fields) -> String {
    match fields {
        Fields::Unit => "no fields".to_string(),
        other => format!("`{}`", other.to_string().trim()),
    }
}
