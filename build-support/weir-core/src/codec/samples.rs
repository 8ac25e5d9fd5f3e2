//! Values of every serde shape and integer magnitude, for the tests that hold
//! the codec's serializer and deserializer to bincode.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Numbers {
    pub u: (u8, u16, u32, u64, u128, usize),
    pub i: (i8, i16, i32, i64, i128, isize),
    pub f: (f32, f64),
    pub bool: bool,
    pub char: Option<char>,
}

impl Numbers {
    /// Every number type holding `v` (cut to its width), negated if `negative`.
    pub fn of(v: u128, negative: bool) -> Numbers {
        let i = |n: i128| if negative { n.wrapping_neg() } else { n };
        Numbers {
            u: (v as u8, v as u16, v as u32, v as u64, v, v as usize),
            i: (
                i(v as i8 as i128) as i8,
                i(v as i16 as i128) as i16,
                i(v as i32 as i128) as i32,
                i(v as i64 as i128) as i64,
                i(v as i128),
                i(v as isize as i128) as isize,
            ),
            f: (v as f32, -(v as f64)),
            bool: negative,
            char: char::from_u32(v as u32),
        }
    }
}

/// A value of any magnitude: each width's boundaries (250, 251, 65 535,
/// ...) are as likely as anything.
pub fn magnitude() -> impl Strategy<Value = u128> {
    (0u32..=128, any::<u128>()).prop_map(|(bits, v)| v.checked_shr(128 - bits).unwrap_or(0))
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    Unit,
    Newtype(String),
    Tuple(u8, Vec<String>),
    Struct { name: String, far: u32 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub shapes: Vec<Shape>,
    pub wrapper: Option<Box<str>>,
    pub tree: BTreeMap<u32, Option<String>>,
    pub address: std::net::SocketAddr,
    pub duration: std::time::Duration,
    pub unit: (),
}

/// Every shape: unit, newtype, tuple and struct variants, options, maps,
/// and types with a compact form apart from their human one.
pub fn record(far: u32) -> Record {
    Record {
        shapes: vec![
            Shape::Unit,
            Shape::Newtype("é".into()),
            Shape::Tuple(7, vec!["a".into(), String::new()]),
            Shape::Struct {
                name: "s".into(),
                far,
            },
        ],
        wrapper: Some("boxed".into()),
        tree: BTreeMap::from([(1, None), (far, Some("two".to_string()))]),
        address: std::net::SocketAddr::from(([127, 0, 0, 1], 6379)),
        duration: std::time::Duration::from_millis(1500),
        unit: (),
    }
}
