//! A serde serializer that writes exactly what bincode 2 writes (standard
//! configuration, little-endian, fixed-width or compact integers), straight
//! into a `Vec`.
//!
//! bincode reaches its writer through a call per integer and a slice copy per
//! byte written; a store's leader spent about 430 instructions encoding each
//! command that way (docs/BENCHMARKS.md, run 18). Here each integer is a
//! comparison and a push, inlined into the record's `Serialize`. Decoding
//! stays with bincode: the tests hold the two byte for byte.

use super::CodecError;
use serde::ser::{self, Serialize};

/// Writes into `out`; `COMPACT` picks bincode's variable-width integers.
pub(super) struct Writer<'a, const COMPACT: bool> {
    pub(super) out: &'a mut Vec<u8>,
}

/// Below this, a compact integer is its one byte; the bytes from here up
/// tag a wider one (bincode's `SINGLE_BYTE_MAX` and the tags after it).
const SINGLE_BYTE_MAX: u64 = 250;
const U16_TAG: u8 = 251;
const U32_TAG: u8 = 252;
const U64_TAG: u8 = 253;
const U128_TAG: u8 = 254;

impl<const COMPACT: bool> Writer<'_, COMPACT> {
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// An unsigned integer of `WIDTH` bytes (a length, a variant index).
    #[inline]
    fn unsigned<const WIDTH: usize>(&mut self, v: u64) {
        if !COMPACT {
            self.bytes(&v.to_le_bytes()[..WIDTH]);
        } else if v <= SINGLE_BYTE_MAX {
            self.out.push(v as u8);
        } else {
            self.wide(v);
        }
    }

    /// A compact integer above one byte: its tag, then its bytes.
    #[inline(never)]
    fn wide(&mut self, v: u64) {
        if v <= u64::from(u16::MAX) {
            self.out.push(U16_TAG);
            self.bytes(&(v as u16).to_le_bytes());
        } else if v <= u64::from(u32::MAX) {
            self.out.push(U32_TAG);
            self.bytes(&(v as u32).to_le_bytes());
        } else {
            self.out.push(U64_TAG);
            self.bytes(&v.to_le_bytes());
        }
    }

    /// A signed integer of `WIDTH` bytes: compact ones zigzagged (0, -1,
    /// 1, -2, ... as 0, 1, 2, 3, ...), so that small negatives stay small.
    #[inline]
    fn signed<const WIDTH: usize>(&mut self, v: i64) {
        if COMPACT {
            self.unsigned::<WIDTH>(((v << 1) ^ (v >> 63)) as u64);
        } else {
            self.bytes(&v.to_le_bytes()[..WIDTH]);
        }
    }

    fn unsigned_128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) if COMPACT => self.unsigned::<8>(v),
            _ => {
                if COMPACT {
                    self.out.push(U128_TAG);
                }
                self.bytes(&v.to_le_bytes());
            }
        }
    }

    #[inline]
    fn len(&mut self, len: usize) {
        self.unsigned::<8>(len as u64);
    }

    #[inline]
    fn variant(&mut self, index: u32) {
        self.unsigned::<4>(u64::from(index));
    }
}

impl ser::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> CodecError {
        CodecError(msg.to_string())
    }
}

impl serde::de::Error for CodecError {
    fn custom<T: std::fmt::Display>(msg: T) -> CodecError {
        CodecError(msg.to_string())
    }
}

fn needs_length() -> CodecError {
    CodecError("a sequence or map must know its length to be encoded".into())
}

impl<'a, const COMPACT: bool> ser::Serializer for &mut Writer<'a, COMPACT> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), CodecError> {
        self.out.push(u8::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), CodecError> {
        self.out.push(v as u8);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), CodecError> {
        self.signed::<2>(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), CodecError> {
        self.signed::<4>(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), CodecError> {
        self.signed::<8>(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), CodecError> {
        if COMPACT {
            self.unsigned_128(((v << 1) ^ (v >> 127)) as u128);
        } else {
            self.bytes(&v.to_le_bytes());
        }
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), CodecError> {
        self.out.push(v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), CodecError> {
        self.unsigned::<2>(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), CodecError> {
        self.unsigned::<4>(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), CodecError> {
        self.unsigned::<8>(v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), CodecError> {
        self.unsigned_128(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), CodecError> {
        self.bytes(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CodecError> {
        self.bytes(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), CodecError> {
        self.serialize_bytes(v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CodecError> {
        self.len(v.len());
        self.bytes(v);
        Ok(())
    }
    #[inline]
    fn serialize_none(self) -> Result<(), CodecError> {
        self.out.push(0);
        Ok(())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CodecError> {
        self.out.push(1);
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), CodecError> {
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CodecError> {
        Ok(())
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), CodecError> {
        self.variant(index);
        Ok(())
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), CodecError> {
        self.variant(index);
        value.serialize(self)
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, CodecError> {
        self.len(len.ok_or_else(needs_length)?);
        Ok(self)
    }
    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    #[inline]
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.variant(index);
        Ok(self)
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self, CodecError> {
        self.len(len.ok_or_else(needs_length)?);
        Ok(self)
    }
    #[inline]
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, CodecError> {
        Ok(self)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, CodecError> {
        self.variant(index);
        Ok(self)
    }
    /// Types that serialize differently for people (addresses, times) take
    /// their compact form, as with bincode.
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Compound values are their parts one after the other: every kind is the same.
macro_rules! parts {
    ($($trait:ident :: $method:ident $(($key:ty))?),* $(,)?) => {$(
        impl<'a, const COMPACT: bool> ser::$trait for &mut Writer<'a, COMPACT> {
            type Ok = ();
            type Error = CodecError;
            #[inline]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $(_: $key,)?
                value: &T,
            ) -> Result<(), CodecError> {
                value.serialize(&mut **self)
            }
            #[inline]
            fn end(self) -> Result<(), CodecError> {
                Ok(())
            }
        }
    )*};
}

parts!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl<'a, const COMPACT: bool> ser::SerializeMap for &mut Writer<'a, COMPACT> {
    type Ok = ();
    type Error = CodecError;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CodecError> {
        key.serialize(&mut **self)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        value.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), CodecError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{magnitude, record, Numbers};
    use super::super::{compact_config, config, encode_compact_into, encode_value};
    use proptest::prelude::*;
    use serde::{Serialize, Serializer};
    use std::fmt::Debug;

    /// Both encodings of `value`, ours and bincode's, must be the same bytes.
    fn same_as_bincode<T: Serialize + Debug>(value: &T) {
        let fixed = bincode::serde::encode_to_vec(value, config()).unwrap();
        assert_eq!(
            encode_value(value).unwrap(),
            fixed,
            "fixed-width: {value:?}"
        );
        let compact = bincode::serde::encode_to_vec(value, compact_config()).unwrap();
        let mut ours = Vec::new();
        encode_compact_into(value, &mut ours).unwrap();
        assert_eq!(ours, compact, "compact: {value:?}");
    }

    proptest! {
        #[test]
        fn numbers_are_written_as_bincode_writes_them(v in magnitude(), negative: bool) {
            same_as_bincode(&Numbers::of(v, negative));
        }

        #[test]
        fn strings_and_bytes_are_written_as_bincode_writes_them(s in ".{0,300}") {
            same_as_bincode(&(Bytes(s.as_bytes()), s.clone(), s.chars().collect::<Vec<_>>()));
        }
    }

    /// Serialized as bytes, not as a sequence of `u8`s.
    #[derive(Debug)]
    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[derive(Debug, Serialize)]
    struct Empty;

    #[test]
    fn every_shape_is_written_as_bincode_writes_it() {
        same_as_bincode(&(record(70_000), None::<Box<str>>, Empty));
    }

    /// A value written through `Display` is its text, as with bincode.
    #[test]
    fn a_value_written_with_display_is_its_text() {
        #[derive(Debug)]
        struct Shown;
        impl Serialize for Shown {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&70_000)
            }
        }
        same_as_bincode(&Shown);
    }

    /// What bincode cannot encode, neither can we: a sequence that does not
    /// know its length.
    #[test]
    fn a_sequence_without_a_length_is_refused_with_a_message() {
        #[derive(Debug)]
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq((0..3).filter(|_| true))
            }
        }
        assert!(bincode::serde::encode_to_vec(Unsized, config()).is_err());
        let e = encode_value(&Unsized).unwrap_err();
        assert!(e.to_string().contains("must know its length"), "{e}");
        let e = encode_compact_into(&Unsized, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("must know its length"), "{e}");
    }
}
