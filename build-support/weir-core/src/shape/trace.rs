//! Tracing a type's shape by driving its `Deserialize` (see the module above).

use super::{Fields, Shape, TypeShape, WireShape};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Most runs of a type's `Deserialize` before tracing gives up.
const MAX_RUNS: usize = 10_000;
/// How deep a type may hold itself (or named types inside it) while traced.
const MAX_DEPTH: usize = 64;

/// Why a shape could not be traced.
#[derive(Debug)]
pub struct TraceError(String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TraceError(format!("its Deserialize refused a traced value: {msg}"))
    }
}

/// The shape of `T`, or why it cannot be traced (a `Deserialize` that needs
/// a self-describing format, one that refuses every simple value, a type that
/// holds itself with no way out, two types of one name with two shapes).
pub fn trace<T: DeserializeOwned>() -> Result<WireShape, String> {
    let mut tracer = Tracer::default();
    for _ in 0..MAX_RUNS {
        let traced_before = tracer.traced_variants();
        let mut root = Shape::Unit;
        let explorer = Explorer {
            tracer: &mut tracer,
            shape: &mut root,
            recursive: false,
        };
        T::deserialize(explorer).map_err(|e| e.0)?;
        let incomplete = tracer.incomplete();
        if incomplete.is_empty() {
            return Ok(tracer.finish(root));
        }
        if tracer.traced_variants() == traced_before {
            return Err(format!(
                "variants of {} could not be reached",
                incomplete.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Err(format!("its enums were not covered in {MAX_RUNS} runs"))
}

/// What tracing has found so far, across runs.
#[derive(Default)]
struct Tracer {
    types: BTreeMap<&'static str, Traced>,
    /// Named types being traced now, outermost first.
    open: Vec<&'static str>,
    /// Enum variants being traced now (the way in, not a way out).
    open_variants: Vec<(&'static str, u32)>,
    /// For each enum variant being traced now (innermost last): the enums met
    /// inside it.
    reach: Vec<BTreeSet<&'static str>>,
}

enum Traced {
    Struct(Fields),
    Enum(Vec<VariantState>),
}

struct VariantState {
    name: &'static str,
    /// `None` until the variant has been traced outside its own recursion.
    fields: Option<Fields>,
    /// The enums met inside it: where variants still untraced may be found.
    reaches: BTreeSet<&'static str>,
}

impl Tracer {
    fn traced_variants(&self) -> usize {
        self.types
            .values()
            .map(|t| match t {
                Traced::Struct(_) => 0,
                Traced::Enum(variants) => variants.iter().filter(|v| v.fields.is_some()).count(),
            })
            .sum()
    }

    /// Enums with a variant not traced yet.
    fn incomplete(&self) -> BTreeSet<&'static str> {
        self.types
            .iter()
            .filter(|(_, t)| {
                matches!(t, Traced::Enum(variants) if variants.iter().any(|v| v.fields.is_none()))
            })
            .map(|(name, _)| *name)
            .collect()
    }

    fn enter(&mut self, name: &'static str) -> Result<(), TraceError> {
        self.open.push(name);
        if self.open.len() > MAX_DEPTH {
            return Err(TraceError(format!(
                "`{name}` holds itself more than {MAX_DEPTH} levels deep with no way out (an Option, a Vec or a variant without it)"
            )));
        }
        Ok(())
    }

    fn conflict(name: &str) -> TraceError {
        TraceError(format!(
            "two types named `{name}` have different shapes (serde names a type without its path)"
        ))
    }

    fn record_struct(&mut self, name: &'static str, fields: Fields) -> Result<(), TraceError> {
        match self.types.get(name) {
            None => {
                self.types.insert(name, Traced::Struct(fields));
                Ok(())
            }
            Some(Traced::Struct(known)) if *known == fields => Ok(()),
            Some(_) => Err(Self::conflict(name)),
        }
    }

    /// Notes enum `name` (met now) and its variants.
    fn meet_enum(
        &mut self,
        name: &'static str,
        variants: &'static [&'static str],
    ) -> Result<(), TraceError> {
        if variants.is_empty() {
            return Err(TraceError(format!(
                "enum `{name}` has no variants: no value of it can travel"
            )));
        }
        if let Some(frame) = self.reach.last_mut() {
            frame.insert(name);
        }
        match self.types.get(name) {
            None => {
                let states = variants
                    .iter()
                    .map(|&v| VariantState {
                        name: v,
                        fields: None,
                        reaches: BTreeSet::new(),
                    })
                    .collect();
                self.types.insert(name, Traced::Enum(states));
                Ok(())
            }
            Some(Traced::Enum(known))
                if known.len() == variants.len()
                    && known.iter().zip(variants).all(|(k, v)| k.name == *v) =>
            {
                Ok(())
            }
            Some(_) => Err(Self::conflict(name)),
        }
    }

    /// The variant of enum `name` to take now. Outside its own recursion: one
    /// not traced yet, else one that leads to an enum with such a variant.
    /// Inside it: a way out (a variant that holds no named type, or one not
    /// traced yet, which may be one).
    fn choose(&self, name: &'static str, recursive: bool) -> u32 {
        let Some(Traced::Enum(variants)) = self.types.get(name) else {
            return 0;
        };
        let first = |take: &dyn Fn(&VariantState) -> bool| variants.iter().position(take);
        let untraced = |v: &VariantState| v.fields.is_none();
        let found = if recursive {
            let open = |v: &VariantState| {
                self.open_variants
                    .iter()
                    .any(|&(e, i)| e == name && variants[i as usize].name == v.name)
            };
            first(&|v| v.fields.as_ref().is_some_and(Fields::leads_nowhere))
                .or_else(|| first(&|v| untraced(v) && !open(v)))
        } else {
            let incomplete = self.incomplete();
            first(&untraced)
                .or_else(|| first(&|v| v.reaches.iter().any(|e| incomplete.contains(e))))
        };
        found.unwrap_or(0) as u32
    }

    fn record_variant(
        &mut self,
        name: &str,
        index: u32,
        fields: Fields,
        reached: BTreeSet<&'static str>,
    ) -> Result<(), TraceError> {
        let Some(Traced::Enum(variants)) = self.types.get_mut(name) else {
            return Err(Self::conflict(name));
        };
        let variant = &mut variants[index as usize];
        match &variant.fields {
            Some(known) if *known != fields => return Err(Self::conflict(name)),
            _ => variant.fields = Some(fields),
        }
        variant.reaches.extend(reached);
        Ok(())
    }

    fn finish(self, root: Shape) -> WireShape {
        let types = self
            .types
            .into_iter()
            .map(|(name, traced)| {
                let shape = match traced {
                    Traced::Struct(fields) => TypeShape::Struct(fields),
                    Traced::Enum(variants) => TypeShape::Enum(
                        variants
                            .into_iter()
                            .map(|v| (v.name.to_string(), v.fields.unwrap_or(Fields::Unit)))
                            .collect(),
                    ),
                };
                (name.to_string(), shape)
            })
            .collect();
        WireShape { root, types }
    }
}

impl Fields {
    /// Whether a value of these fields can be made without a named type
    /// (options, sequences and maps are made empty inside a recursion).
    fn leads_nowhere(&self) -> bool {
        fn plain(shape: &Shape) -> bool {
            match shape {
                Shape::Named(_) => false,
                Shape::Tuple(items) => items.iter().all(plain),
                _ => true,
            }
        }
        match self {
            Fields::Unit => true,
            Fields::Newtype(shape) => plain(shape),
            Fields::Tuple(items) => items.iter().all(plain),
            Fields::Struct(fields) => fields.iter().all(|(_, s)| plain(s)),
        }
    }
}

/// A deserializer that answers with small values and writes down, in `shape`,
/// what it was asked for. `recursive`: inside a named type already being
/// traced further out, where the shortest way out is taken and nothing found
/// is kept (the outer trace describes that type).
struct Explorer<'a> {
    tracer: &'a mut Tracer,
    shape: &'a mut Shape,
    recursive: bool,
}

impl Explorer<'_> {
    /// Traces struct `name`: `body` makes the value and says its fields.
    fn structure<R>(
        self,
        name: &'static str,
        body: impl FnOnce(&mut Tracer, bool) -> Result<(R, Fields), TraceError>,
    ) -> Result<R, TraceError> {
        *self.shape = Shape::Named(name.to_string());
        let tracer = self.tracer;
        let recursive = self.recursive || tracer.open.contains(&name);
        tracer.enter(name)?;
        let result = body(tracer, recursive);
        tracer.open.pop();
        let (value, fields) = result?;
        if !recursive {
            tracer.record_struct(name, fields)?;
        }
        Ok(value)
    }
}

fn unsupported(what: &str) -> TraceError {
    TraceError(format!(
        "its Deserialize asks for {what}, which needs a self-describing format (an untagged or internally tagged enum, #[serde(flatten)], or a value such as serde_json::Value): the wire codec, bincode, cannot carry it either"
    ))
}

macro_rules! primitives {
    ($($method:ident => $shape:ident, $visit:ident($($value:expr)?);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            *self.shape = Shape::$shape;
            visitor.$visit($($value)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Explorer<'_> {
    type Error = TraceError;

    // Numbers are 1, not 0: a type that refuses zero (NonZeroU32) still traces.
    primitives! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => I8, visit_i8(1);
        deserialize_i16 => I16, visit_i16(1);
        deserialize_i32 => I32, visit_i32(1);
        deserialize_i64 => I64, visit_i64(1);
        deserialize_i128 => I128, visit_i128(1);
        deserialize_u8 => U8, visit_u8(1);
        deserialize_u16 => U16, visit_u16(1);
        deserialize_u32 => U32, visit_u32(1);
        deserialize_u64 => U64, visit_u64(1);
        deserialize_u128 => U128, visit_u128(1);
        deserialize_f32 => F32, visit_f32(1.0);
        deserialize_f64 => F64, visit_f64(1.0);
        deserialize_char => Char, visit_char('a');
        deserialize_str => Str, visit_str("");
        deserialize_string => Str, visit_string(String::new());
        deserialize_bytes => Bytes, visit_bytes(&[]);
        deserialize_byte_buf => Bytes, visit_byte_buf(Vec::new());
        deserialize_unit => Unit, visit_unit();
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("any value (deserialize_any)"))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("an identifier"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, TraceError> {
        Err(unsupported("a value to skip"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut inner = Shape::Unit;
        let value = if self.recursive {
            visitor.visit_none()?
        } else {
            visitor.visit_some(Explorer {
                tracer: self.tracer,
                shape: &mut inner,
                recursive: false,
            })?
        };
        *self.shape = Shape::Option(Box::new(inner));
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let one = usize::from(!self.recursive);
        let (value, mut shapes) = elements(self.tracer, one, self.recursive, visitor)?;
        *self.shape = Shape::Seq(Box::new(shapes.pop().unwrap_or(Shape::Unit)));
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut shapes = vec![Shape::Unit; 2 * usize::from(!self.recursive)];
        let value = visitor.visit_map(Entries(Elements::new(
            self.tracer,
            &mut shapes,
            self.recursive,
        )))?;
        let value_shape = shapes.pop().unwrap_or(Shape::Unit);
        let key_shape = shapes.pop().unwrap_or(Shape::Unit);
        *self.shape = Shape::Map(Box::new(key_shape), Box::new(value_shape));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (value, shapes) = elements(self.tracer, len, self.recursive, visitor)?;
        *self.shape = Shape::Tuple(shapes);
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.structure(name, |_, _| Ok((visitor.visit_unit()?, Fields::Unit)))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if name == crate::encoded::NAME {
            // Bytes on the wire, but what they hold is what must match:
            // offered the value itself, `Encoded` traces its type.
            let (value, mut inner) = elements(self.tracer, 1, self.recursive, visitor)?;
            *self.shape = Shape::Encoded(Box::new(inner.remove(0)));
            return Ok(value);
        }
        self.structure(name, |tracer, recursive| {
            let mut inner = Shape::Unit;
            let value = visitor.visit_newtype_struct(Explorer {
                tracer,
                shape: &mut inner,
                recursive,
            })?;
            Ok((value, Fields::Newtype(inner)))
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.structure(name, |tracer, recursive| {
            let (value, shapes) = elements(tracer, len, recursive, visitor)?;
            Ok((value, Fields::Tuple(shapes)))
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.structure(name, |tracer, recursive| {
            named_fields(tracer, fields, recursive, visitor)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        *self.shape = Shape::Named(name.to_string());
        let tracer = self.tracer;
        let recursive = self.recursive || tracer.open.contains(&name);
        tracer.meet_enum(name, variants)?;
        let index = tracer.choose(name, recursive);
        tracer.enter(name)?;
        tracer.reach.push(BTreeSet::new());
        tracer.open_variants.push((name, index));
        let mut fields = Fields::Unit;
        let result = visitor.visit_enum(Variant {
            tracer: &mut *tracer,
            index,
            fields: &mut fields,
            recursive,
        });
        let reached = tracer.reach.pop().unwrap_or_default();
        tracer.open_variants.pop();
        tracer.open.pop();
        let value = result?;
        if let Some(outer) = tracer.reach.last_mut() {
            outer.extend(reached.iter().copied());
        }
        if !recursive {
            tracer.record_variant(name, index, fields, reached)?;
        }
        Ok(value)
    }

    fn is_human_readable(&self) -> bool {
        false // as bincode
    }
}

/// A sequence of `len` elements (of a tuple, a tuple struct or variant, a
/// struct's fields): the value `visitor` makes, and each element's shape.
fn elements<'de, V: Visitor<'de>>(
    tracer: &mut Tracer,
    len: usize,
    recursive: bool,
    visitor: V,
) -> Result<(V::Value, Vec<Shape>), TraceError> {
    let mut shapes = vec![Shape::Unit; len];
    let value = visitor.visit_seq(Elements::new(tracer, &mut shapes, recursive))?;
    Ok((value, shapes))
}

/// A struct's (or struct variant's) fields in order, as bincode gives them.
fn named_fields<'de, V: Visitor<'de>>(
    tracer: &mut Tracer,
    names: &'static [&'static str],
    recursive: bool,
    visitor: V,
) -> Result<(V::Value, Fields), TraceError> {
    let (value, shapes) = elements(tracer, names.len(), recursive, visitor)?;
    let fields = names.iter().map(|n| n.to_string()).zip(shapes).collect();
    Ok((value, Fields::Struct(fields)))
}

/// The elements of a sequence, tuple or struct: one per slot of `shapes`.
struct Elements<'a> {
    tracer: &'a mut Tracer,
    shapes: &'a mut [Shape],
    next: usize,
    recursive: bool,
}

impl<'a> Elements<'a> {
    fn new(tracer: &'a mut Tracer, shapes: &'a mut [Shape], recursive: bool) -> Self {
        Elements {
            tracer,
            shapes,
            next: 0,
            recursive,
        }
    }

    fn next_seed<'de, S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        let Some(shape) = self.shapes.get_mut(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(Explorer {
            tracer: self.tracer,
            shape,
            recursive: self.recursive,
        })
        .map(Some)
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = TraceError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        self.next_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.shapes.len() - self.next)
    }
}

/// A map's entries: keys and values in alternate slots.
struct Entries<'a>(Elements<'a>);

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        self.0.next_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        self.0
            .next_seed(seed)?
            .ok_or_else(|| TraceError("a map's value was asked for after its last key".into()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some((self.0.shapes.len() - self.0.next) / 2)
    }
}

/// The variant tracing chose, and what it holds.
struct Variant<'a> {
    tracer: &'a mut Tracer,
    index: u32,
    fields: &'a mut Fields,
    recursive: bool,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = TraceError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), TraceError> {
        let tag = seed.deserialize(IntoDeserializer::<TraceError>::into_deserializer(
            self.index,
        ))?;
        Ok((tag, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = TraceError;

    fn unit_variant(self) -> Result<(), TraceError> {
        *self.fields = Fields::Unit;
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let mut inner = Shape::Unit;
        let value = seed.deserialize(Explorer {
            tracer: self.tracer,
            shape: &mut inner,
            recursive: self.recursive,
        })?;
        *self.fields = Fields::Newtype(inner);
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (value, shapes) = elements(self.tracer, len, self.recursive, visitor)?;
        *self.fields = Fields::Tuple(shapes);
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        names: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let (value, fields) = named_fields(self.tracer, names, self.recursive, visitor)?;
        *self.fields = fields;
        Ok(value)
    }
}
