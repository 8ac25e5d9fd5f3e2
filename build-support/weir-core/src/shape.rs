//! The shape of a record type as serde sees it: field names and types, enum
//! variants, nested types. Two builds whose channels carry records of the same
//! shape read each other's bytes correctly; any other pair would misread them
//! in silence (bincode writes no names), so the handshake compares shapes.
//!
//! A shape is found at build time by *tracing*: the type's `Deserialize` is
//! driven by a deserializer that answers every request with a small value and
//! writes down what was asked. An enum gives one variant per run, so tracing
//! runs the type again, choosing each time a variant not seen yet (or one that
//! leads to such a variant), until every variant of every enum reached has been
//! seen. A type that contains itself (through `Box`, `Option`, `Vec`) is
//! described once by name; inside it, tracing takes the shortest way out.

mod diff;
mod trace;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub use trace::trace;

/// The shape of a value. Its variants up to `Tuple` are serde's data model's
/// types, by their names there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Shape {
    Unit,
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
    Option(Box<Shape>),
    Seq(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    Tuple(Vec<Shape>),
    /// A struct or enum, described once in [`WireShape::types`] under the name
    /// serde gives it (the type's own name, without its path).
    Named(String),
    /// `Encoded` as builds before its compact integers traced it: never
    /// traced now, kept in its place so that the shapes of such a build,
    /// whose `Encoded` bytes this one would misread, differ from this one's.
    FixedWidthEncoded(Box<Shape>),
    /// A value of this shape carried as the bytes it was encoded to
    /// ([`crate::encoded::Encoded`]). Last, so that the other shapes keep
    /// their encoding.
    Encoded(Box<Shape>),
}

/// What a struct, or one variant of an enum, holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fields {
    /// Nothing: `struct S;`, `E::A`.
    Unit,
    /// One unnamed field: `struct S(T);`.
    Newtype(Shape),
    /// Unnamed fields: `struct S(T, U);`.
    Tuple(Vec<Shape>),
    /// Named fields, in order: `struct S { a: T }`.
    Struct(Vec<(String, Shape)>),
}

/// A named type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TypeShape {
    /// A struct, and what it holds.
    Struct(Fields),
    /// The variants in the order serde numbers them (their number is what
    /// travels).
    Enum(Vec<(String, Fields)>),
}

/// The shape of a record type: its own, and those of the named types in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireShape {
    /// The record type's own shape.
    pub root: Shape,
    /// Every named type in it, by the name serde gives it.
    pub types: BTreeMap<String, TypeShape>,
}

impl WireShape {
    /// A compact, canonical encoding (the same shape always gives the same
    /// bytes): what generated code embeds and hellos carry.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode_value(self).expect("a shape always encodes")
    }

    /// A shape from its [`encode`](Self::encode)d bytes.
    pub fn decode(bytes: &[u8]) -> Result<WireShape, crate::codec::CodecError> {
        crate::codec::decode_value(bytes)
    }

    /// The first place where `self` and `there` differ, each side called
    /// as `names` says: with `("here", "there")`, `Rec.a: u32 here,
    /// (u16, u16) there`; `None` when they are the same.
    pub fn first_difference(&self, there: &WireShape, names: (&str, &str)) -> Option<String> {
        diff::first_difference(self, there, names)
    }
}

/// A stable 64-bit hash (FNV-1a): the same on every platform and Rust version.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, shapes: &[Shape]| -> fmt::Result {
            for (i, shape) in shapes.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{shape}")?;
            }
            Ok(())
        };
        match self {
            Shape::Unit => f.write_str("()"),
            Shape::Bool => f.write_str("bool"),
            Shape::I8 => f.write_str("i8"),
            Shape::I16 => f.write_str("i16"),
            Shape::I32 => f.write_str("i32"),
            Shape::I64 => f.write_str("i64"),
            Shape::I128 => f.write_str("i128"),
            Shape::U8 => f.write_str("u8"),
            Shape::U16 => f.write_str("u16"),
            Shape::U32 => f.write_str("u32"),
            Shape::U64 => f.write_str("u64"),
            Shape::U128 => f.write_str("u128"),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::Str => f.write_str("string"),
            Shape::Bytes => f.write_str("bytes"),
            Shape::Option(inner) => write!(f, "Option<{inner}>"),
            Shape::Seq(inner) => write!(f, "[{inner}]"),
            Shape::Map(key, value) => write!(f, "Map<{key}, {value}>"),
            Shape::Tuple(items) if items.len() == 1 => write!(f, "({},)", items[0]),
            Shape::Tuple(items) => {
                f.write_str("(")?;
                list(f, items)?;
                f.write_str(")")
            }
            Shape::Named(name) => f.write_str(name),
            Shape::FixedWidthEncoded(inner) => {
                write!(f, "encoded with fixed-width integers<{inner}>")
            }
            Shape::Encoded(inner) => write!(f, "encoded<{inner}>"),
        }
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fields::Unit => Ok(()),
            Fields::Newtype(inner) => write!(f, "({inner})"),
            Fields::Tuple(items) => write!(f, "{}", Shape::Tuple(items.clone())),
            Fields::Struct(fields) => {
                f.write_str(" { ")?;
                for (i, (name, shape)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {shape}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

impl fmt::Display for WireShape {
    /// The record's shape, then each named type in it: `Rec; Rec { a: u32 }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)?;
        for (name, shape) in &self.types {
            match shape {
                TypeShape::Struct(fields) => write!(f, "; struct {name}{fields}")?,
                TypeShape::Enum(variants) => {
                    write!(f, "; enum {name} {{ ")?;
                    for (i, (variant, fields)) in variants.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{variant}{fields}")?;
                    }
                    f.write_str(" }")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(dead_code)] // the types below are only traced, never read
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    const HERE: (&str, &str) = ("here", "there");

    mod old {
        #[derive(serde::Deserialize)]
        pub struct Rec {
            pub a: u32,
        }
    }

    mod new {
        #[derive(serde::Deserialize)]
        pub struct Rec {
            pub a: (u16, u16),
        }
    }

    #[test]
    fn a_changed_field_type_is_the_first_difference() {
        let (old, new) = (trace::<old::Rec>().unwrap(), trace::<new::Rec>().unwrap());
        assert_eq!(
            old.first_difference(&new, HERE).as_deref(),
            Some("Rec.a: u32 here, (u16, u16) there")
        );
        assert_eq!(old.first_difference(&old, HERE), None);
        assert_ne!(stable_hash(&old.encode()), stable_hash(&new.encode()));
    }

    #[derive(Serialize, Deserialize)]
    struct Command {
        key: String,
        op: Op,
    }

    #[derive(Serialize, Deserialize)]
    enum Op {
        Get,
        Set(Vec<u8>),
        Del { keys: Vec<String>, quiet: bool },
        Many(std::collections::BTreeMap<String, Op>),
    }

    #[derive(Serialize, Deserialize)]
    enum Message {
        Ping,
        Run(Command),
        Forward(Option<Box<Message>>),
        Pair(u8, Result<Op, String>),
    }

    fn variants(shape: &WireShape, name: &str) -> Vec<String> {
        match &shape.types[name] {
            TypeShape::Enum(variants) => variants.iter().map(|(v, _)| v.clone()).collect(),
            TypeShape::Struct(_) => panic!("{name} is a struct"),
        }
    }

    #[test]
    fn every_variant_of_every_nested_enum_is_traced() {
        let shape = trace::<Message>().unwrap();
        assert_eq!(shape.root, Shape::Named("Message".into()));
        assert_eq!(
            variants(&shape, "Message"),
            ["Ping", "Run", "Forward", "Pair"]
        );
        assert_eq!(variants(&shape, "Op"), ["Get", "Set", "Del", "Many"]);
        assert_eq!(variants(&shape, "Result"), ["Ok", "Err"]);
        let TypeShape::Enum(ops) = &shape.types["Op"] else {
            unreachable!()
        };
        assert_eq!(
            ops[2].1,
            Fields::Struct(vec![
                ("keys".into(), Shape::Seq(Box::new(Shape::Str))),
                ("quiet".into(), Shape::Bool)
            ])
        );
        assert_eq!(
            ops[3].1,
            Fields::Newtype(Shape::Map(
                Box::new(Shape::Str),
                Box::new(Shape::Named("Op".into()))
            ))
        );
        // Tracing is deterministic: the same type, the same bytes.
        assert_eq!(trace::<Message>().unwrap().encode(), shape.encode());
        assert_eq!(WireShape::decode(&shape.encode()).unwrap(), shape);
    }

    #[derive(Deserialize)]
    enum List {
        Cons(u64, Box<List>),
        Nil,
    }

    #[derive(Deserialize)]
    struct Tree {
        label: std::num::NonZeroU32,
        children: Vec<Tree>,
    }

    #[test]
    fn types_that_hold_themselves_are_traced_by_name() {
        let list = trace::<List>().unwrap();
        assert_eq!(variants(&list, "List"), ["Cons", "Nil"]);
        let tree = trace::<Tree>().unwrap();
        assert_eq!(
            tree.types["Tree"],
            TypeShape::Struct(Fields::Struct(vec![
                ("label".into(), Shape::U32),
                (
                    "children".into(),
                    Shape::Seq(Box::new(Shape::Named("Tree".into())))
                )
            ]))
        );
    }

    mod v1 {
        #[derive(serde::Deserialize)]
        pub enum Op {
            Get,
            Set(u8),
        }
        #[derive(serde::Deserialize)]
        pub struct Rec {
            pub a: u8,
            pub op: Op,
        }
    }

    mod v2 {
        #[derive(serde::Deserialize)]
        pub enum Op {
            Get,
            Set(u8),
            Del,
        }
        #[derive(serde::Deserialize)]
        pub struct Rec {
            pub a: u8,
            pub op: Op,
        }
        #[derive(serde::Deserialize)]
        pub struct Wider {
            pub a: u8,
            pub op: super::v1::Op,
            pub b: u8,
        }
    }

    #[test]
    fn added_variants_and_fields_are_named() {
        let v1 = trace::<v1::Rec>().unwrap();
        assert_eq!(
            v1.first_difference(&trace::<v2::Rec>().unwrap(), HERE)
                .as_deref(),
            Some("Op, variant 2: none here, `Del` there")
        );
        let wider = trace::<v2::Wider>().unwrap();
        assert_eq!(
            wider.first_difference(&v1, HERE).as_deref(),
            Some("Wider: Wider here, Rec there"),
            "another name is another type"
        );
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        A(u8),
        B(String),
    }

    mod a {
        #[derive(serde::Deserialize)]
        pub struct Point {
            pub x: u8,
        }
    }

    mod b {
        #[derive(serde::Deserialize)]
        pub struct Point {
            pub y: u16,
        }
    }

    #[derive(Deserialize)]
    struct Both {
        a: a::Point,
        b: b::Point,
    }

    #[test]
    fn what_cannot_be_traced_says_why() {
        let untagged = trace::<Untagged>().unwrap_err();
        assert!(untagged.contains("self-describing"), "{untagged}");
        let both = trace::<Both>().unwrap_err();
        assert!(both.contains("two types named `Point`"), "{both}");
    }
}
