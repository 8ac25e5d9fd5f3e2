//! How a captured local of the flow function becomes a value in generated code.
//!
//! `q!` writes `(&&Probe(&x)).__weir_kind().capture(&x)` for every capture `x`.
//! Method resolution picks [`ViaLiteral`] when `x`'s type is a [`Literal`] (it is
//! spliced as Rust source, readable in the generated file) and falls back to
//! [`ViaSerde`] otherwise (spliced as bytes decoded once at start-up). A type that
//! is neither fails to compile at the capture, with the message on [`Capturable`].

use crate::ir::CaptureValue;
use crate::location::Cluster;
use serde::{de::DeserializeOwned, Serialize};

/// A captured local: its name and its value, or why it has none.
#[derive(Debug)]
pub struct Capture {
    /// The local's name in the flow function.
    pub name: &'static str,
    /// Its value for generated code, or why it cannot be carried there.
    pub value: Result<CaptureValue, String>,
}

/// Wraps a reference to a captured value for the method-resolution dispatch.
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// Chosen for values that can be written as Rust source.
pub struct CaptureKindLiteral;
/// Chosen for every other value: serialised with the wire codec.
pub struct CaptureKindSerde;

/// Picks [`CaptureKindLiteral`] for a [`Literal`] (the more specific receiver).
pub trait ViaLiteral {
    /// The capture's kind.
    fn __weir_kind(&self) -> CaptureKindLiteral {
        CaptureKindLiteral
    }
}
impl<T: Literal + ?Sized> ViaLiteral for &Probe<'_, T> {}

/// Picks [`CaptureKindSerde`] for any other value (the fallback receiver).
pub trait ViaSerde {
    /// The capture's kind.
    fn __weir_kind(&self) -> CaptureKindSerde {
        CaptureKindSerde
    }
}
impl<T: ?Sized> ViaSerde for Probe<'_, T> {}

/// Chosen for a cluster: quoted code reads its member ids.
pub struct CaptureKindCluster;

/// Picks [`CaptureKindCluster`] for a [`Cluster`] (the most specific receiver).
pub trait ViaCluster {
    /// The capture's kind.
    fn __weir_kind(&self) -> CaptureKindCluster {
        CaptureKindCluster
    }
}
impl<Tag> ViaCluster for &&Probe<'_, Cluster<'_, Tag>> {}

impl CaptureKindCluster {
    /// The cluster, by role name.
    pub fn capture<Tag>(self, cluster: &Cluster<'_, Tag>) -> Result<CaptureValue, String> {
        Ok(CaptureValue::Cluster {
            role: cluster.flow.location_name(cluster.id),
        })
    }
}

impl CaptureKindLiteral {
    /// The value as Rust source.
    pub fn capture<T: Literal + ?Sized>(self, value: &T) -> Result<CaptureValue, String> {
        Ok(CaptureValue::Literal {
            ty: T::rust_type(),
            expr: value.rust_expr(),
        })
    }
}

impl CaptureKindSerde {
    /// The value encoded with the wire codec.
    pub fn capture<T: Capturable>(self, value: &T) -> Result<CaptureValue, String> {
        let bytes = weir_core::codec::encode_value(value).map_err(|e| e.to_string())?;
        Ok(CaptureValue::Serde {
            ty: std::any::type_name::<T>().to_string(),
            bytes,
        })
    }
}

/// A value `q!` can copy into a role binary through serde.
#[diagnostic::on_unimplemented(
    message = "`q!` cannot capture a value of type `{Self}`",
    label = "captured here: its value would have to be copied into the generated role binaries",
    note = "captured locals must be integers, floats, bool, char, strings, or tuples, `Vec`s, arrays or `Option`s of those, or implement serde's `Serialize` and `DeserializeOwned`",
    note = "a function named without a call (`.map(helper)`) is read as a captured local: call it in a closure instead (`|x| helper(x)`), and make it `pub`"
)]
pub trait Capturable: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Capturable for T {}

/// A value that can be written as a Rust expression of a nameable type.
pub trait Literal {
    /// The type, as generated code names it.
    fn rust_type() -> String;
    /// An expression of that type with this value.
    fn rust_expr(&self) -> String;
}

macro_rules! int_literals {
    ($($t:ident)*) => {$(
        impl Literal for $t {
            fn rust_type() -> String { stringify!($t).to_string() }
            fn rust_expr(&self) -> String { format!("{}{}", self, stringify!($t)) }
        }
    )*};
}
int_literals!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

macro_rules! float_literals {
    ($($t:ident)*) => {$(
        impl Literal for $t {
            fn rust_type() -> String { stringify!($t).to_string() }
            fn rust_expr(&self) -> String {
                if self.is_nan() {
                    concat!("::core::", stringify!($t), "::NAN").to_string()
                } else if self.is_infinite() {
                    let name = if *self > 0.0 { "INFINITY" } else { "NEG_INFINITY" };
                    format!("::core::{}::{}", stringify!($t), name)
                } else {
                    // `{:?}` is the shortest text that reads back as the same value.
                    format!("{:?}{}", self, stringify!($t))
                }
            }
        }
    )*};
}
float_literals!(f32 f64);

impl Literal for bool {
    fn rust_type() -> String {
        "bool".into()
    }
    fn rust_expr(&self) -> String {
        self.to_string()
    }
}

impl Literal for char {
    fn rust_type() -> String {
        "char".into()
    }
    fn rust_expr(&self) -> String {
        format!("{self:?}")
    }
}

impl Literal for &str {
    fn rust_type() -> String {
        "&'static str".into()
    }
    fn rust_expr(&self) -> String {
        format!("{self:?}")
    }
}

impl Literal for String {
    fn rust_type() -> String {
        "::std::string::String".into()
    }
    fn rust_expr(&self) -> String {
        format!("::std::string::String::from({self:?})")
    }
}

impl<T: Literal> Literal for Vec<T> {
    fn rust_type() -> String {
        format!("::std::vec::Vec<{}>", T::rust_type())
    }
    fn rust_expr(&self) -> String {
        let items: Vec<String> = self.iter().map(Literal::rust_expr).collect();
        format!("::std::vec![{}]", items.join(", "))
    }
}

impl<T: Literal, const N: usize> Literal for [T; N] {
    fn rust_type() -> String {
        format!("[{}; {}]", T::rust_type(), N)
    }
    fn rust_expr(&self) -> String {
        let items: Vec<String> = self.iter().map(Literal::rust_expr).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Literal> Literal for Option<T> {
    fn rust_type() -> String {
        format!("::std::option::Option<{}>", T::rust_type())
    }
    fn rust_expr(&self) -> String {
        match self {
            Some(v) => format!("::std::option::Option::Some({})", v.rust_expr()),
            None => "::std::option::Option::None".into(),
        }
    }
}

macro_rules! tuple_literals {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: Literal),+> Literal for ($($t,)+) {
            fn rust_type() -> String {
                let parts: Vec<String> = vec![$($t::rust_type()),+];
                format!("({},)", parts.join(", "))
            }
            fn rust_expr(&self) -> String {
                let parts: Vec<String> = vec![$(self.$i.rust_expr()),+];
                format!("({},)", parts.join(", "))
            }
        }
    )*};
}
tuple_literals! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_rust_source() {
        assert_eq!((-5i32).rust_expr(), "-5i32");
        assert_eq!(0.1f64.rust_expr(), "0.1f64");
        assert_eq!(f64::NEG_INFINITY.rust_expr(), "::core::f64::NEG_INFINITY");
        assert_eq!('\''.rust_expr(), r"'\''");
        assert_eq!("a\"b".rust_expr(), r#""a\"b""#);
        assert_eq!(
            <(u8, Vec<bool>)>::rust_type(),
            "(u8, ::std::vec::Vec<bool>,)"
        );
        assert_eq!((1u8, vec![true]).rust_expr(), "(1u8, ::std::vec![true],)");
    }
}
