//! A serde deserializer that reads what [`super::serializer`] writes (bincode
//! 2's format with compact integers) from a slice, borrowing what it can.
//!
//! A store's replica spent about 360 instructions decoding each command of a
//! slot through bincode's reader and the adapter that bounds its allocations
//! (docs/BENCHMARKS.md, run 18). Here each integer is a tag test in place.
//! Nothing is allocated on a claim alone: strings and buffers are checked to
//! be there before they are handed out (owned ones are copied from there),
//! and a sequence's size hint is at most the bytes left. The tests hold it to
//! bincode: the same values from the same bytes, and an error where bincode
//! gives one.

use super::CodecError;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// Reads from `bytes`, which shrinks to what is left.
pub(super) struct Reader<'de> {
    pub(super) bytes: &'de [u8],
}

/// Tags of compact integers wider than one byte (see `serializer.rs`).
const U16_TAG: u8 = 251;
const U32_TAG: u8 = 252;
const U64_TAG: u8 = 253;
const U128_TAG: u8 = 254;

fn error(message: impl std::fmt::Display) -> CodecError {
    CodecError(message.to_string())
}

impl<'de> Reader<'de> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'de [u8], CodecError> {
        if n > self.bytes.len() {
            return Err(self.short(n));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    #[cold]
    fn short(&self, n: usize) -> CodecError {
        error(format_args!("{n} bytes needed, {} left", self.bytes.len()))
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8, CodecError> {
        let [b] = self.array()?;
        Ok(b)
    }

    /// A compact unsigned integer no wider than `max_tag` allows: in place
    /// when it is one byte, as most are.
    #[inline(always)]
    fn unsigned(&mut self, max_tag: u8) -> Result<u64, CodecError> {
        match self.byte()? {
            small @ 0..=250 => Ok(small.into()),
            tag => self.wide(tag, max_tag),
        }
    }

    /// The rest of a compact integer tagged `tag`.
    #[inline(never)]
    fn wide(&mut self, tag: u8, max_tag: u8) -> Result<u64, CodecError> {
        match tag {
            tag if tag > max_tag => Err(error(format_args!(
                "an integer tagged {tag}, wider than its type"
            ))),
            U16_TAG => Ok(u16::from_le_bytes(self.array()?).into()),
            U32_TAG => Ok(u32::from_le_bytes(self.array()?).into()),
            _ => Ok(u64::from_le_bytes(self.array()?)),
        }
    }

    fn unsigned_128(&mut self) -> Result<u128, CodecError> {
        if self.bytes.first() == Some(&U128_TAG) {
            self.byte()?;
            return Ok(u128::from_le_bytes(self.array()?));
        }
        self.unsigned(U64_TAG).map(u128::from)
    }

    #[inline(always)]
    fn len(&mut self) -> Result<usize, CodecError> {
        let len = self.unsigned(U64_TAG)?;
        usize::try_from(len).map_err(|_| error(format_args!("a length of {len}")))
    }

    #[inline(always)]
    fn slice(&mut self) -> Result<&'de [u8], CodecError> {
        let len = self.len()?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'de str, CodecError> {
        std::str::from_utf8(self.slice()?).map_err(error)
    }

    /// `len` values one after the other (a sequence, a tuple, a struct).
    #[inline]
    fn values(&mut self, len: usize) -> Values<'_, 'de> {
        Values {
            reader: self,
            left: len,
        }
    }
}

/// Zigzag back: 0, 1, 2, 3, ... are 0, -1, 1, -2, ...
#[inline]
fn signed(n: u64) -> i64 {
    (n >> 1) as i64 ^ -((n & 1) as i64)
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(error(
            "the encoding does not say its types: a type must ask for what it holds",
        ))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(error(format_args!("a bool of {other}"))),
        }
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_i8(self.byte()? as i8)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_i16(signed(self.unsigned(U16_TAG)?) as i16)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_i32(signed(self.unsigned(U32_TAG)?) as i32)
    }
    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_i64(signed(self.unsigned(U64_TAG)?))
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let n = self.unsigned_128()?;
        visitor.visit_i128((n >> 1) as i128 ^ -((n & 1) as i128))
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u8(self.byte()?)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u16(self.unsigned(U16_TAG)? as u16)
    }
    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u32(self.unsigned(U32_TAG)? as u32)
    }
    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u64(self.unsigned(U64_TAG)?)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_u128(self.unsigned_128()?)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_f32(f32::from_le_bytes(self.array()?))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_f64(f64::from_le_bytes(self.array()?))
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        // UTF-8: the first byte says how many follow.
        let first = *self
            .bytes
            .first()
            .ok_or_else(|| error("a char needed, 0 bytes left"))?;
        let width = match first.leading_ones() {
            0 => 1,
            n @ 2..=4 => n as usize,
            _ => return Err(error(format_args!("a char starting {first:#04x}"))),
        };
        let text = std::str::from_utf8(self.take(width)?).map_err(error)?;
        visitor.visit_char(text.chars().next().expect("one char of `width` bytes"))
    }
    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_borrowed_str(self.str()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_borrowed_str(self.str()?)
    }
    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_borrowed_bytes(self.slice()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_borrowed_bytes(self.slice()?)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            other => Err(error(format_args!("an option tagged {other}"))),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_newtype_struct(self)
    }
    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let len = self.len()?;
        visitor.visit_seq(self.values(len))
    }
    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(self.values(len))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(self.values(len))
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, CodecError> {
        let len = self.len()?;
        visitor.visit_map(self.values(len))
    }
    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(self.values(fields.len()))
    }
    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_enum(self)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(error(
            "the encoding has no names: fields and variants go by position",
        ))
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, CodecError> {
        Err(error(
            "the encoding does not say its types: nothing can be skipped",
        ))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The values of a sequence, tuple, struct or map, one after the other.
struct Values<'a, 'de> {
    reader: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Values<'_, 'de> {
    type Error = CodecError;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    /// No more than bytes are left: a claim alone allocates nothing.
    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.reader.bytes.len()))
    }
}

impl<'de> de::MapAccess<'de> for Values<'_, 'de> {
    type Error = CodecError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, CodecError> {
        seed.deserialize(&mut *self.reader)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.reader.bytes.len()))
    }
}

impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = CodecError;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), CodecError> {
        let index = self.unsigned(U32_TAG)? as u32;
        let variant = seed.deserialize(index.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = CodecError;

    fn unit_variant(self) -> Result<(), CodecError> {
        Ok(())
    }
    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, CodecError> {
        seed.deserialize(self)
    }
    #[inline]
    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(self.values(len))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, CodecError> {
        visitor.visit_seq(self.values(fields.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::{magnitude, record, Numbers, Record};
    use super::super::{compact_config, decode_compact, decode_whole, encode_compact_into};
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    /// What bincode decodes from `bytes`, whole (through the adapter that
    /// keeps it from allocating what a length claims): the value, or none.
    fn bincode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
        decode_whole(bytes, compact_config()).ok()
    }

    /// `value` comes back from its bytes, and every shorter prefix of them
    /// fails, as with bincode.
    fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
        let mut bytes = Vec::new();
        encode_compact_into(value, &mut bytes).unwrap();
        assert_eq!(&decode_compact::<T>(&bytes).unwrap(), value);
        for n in 0..bytes.len() {
            assert!(
                decode_compact::<T>(&bytes[..n]).is_err(),
                "{n} bytes of {value:?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let e = decode_compact::<T>(&longer).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    proptest! {
        #[test]
        fn numbers_come_back(v in magnitude(), negative: bool) {
            round_trips(&Numbers::of(v, negative));
        }

        /// A value's bytes with one changed: what bincode makes of them, we
        /// make of them (a tag, a length or a char broken).
        #[test]
        fn damaged_bytes_decode_as_bincode_decodes_them(
            v in magnitude(),
            negative: bool,
            at in any::<prop::sample::Index>(),
            byte: u8,
        ) {
            let record = (Numbers::of(v, negative), record(v as u32));
            let mut bytes = Vec::new();
            encode_compact_into(&record, &mut bytes).unwrap();
            let at = at.index(bytes.len());
            bytes[at] = byte;
            // Compared as bytes again: a damaged float may be NaN, unequal to itself.
            let again = |both: (Numbers, Record)| {
                let mut bytes = Vec::new();
                encode_compact_into(&both, &mut bytes).unwrap();
                bytes
            };
            prop_assert_eq!(
                decode_compact(&bytes).ok().map(again),
                bincode(&bytes).map(again)
            );
        }

        /// Any bytes at all: what bincode makes of them, we make of them.
        #[test]
        fn any_bytes_decode_as_bincode_decodes_them(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode_compact::<Numbers>(&bytes).ok(), bincode::<Numbers>(&bytes));
            prop_assert_eq!(decode_compact::<Record>(&bytes).ok(), bincode::<Record>(&bytes));
            prop_assert_eq!(decode_compact::<(String, Vec<u64>)>(&bytes).ok(), bincode(&bytes));
        }
    }

    #[test]
    fn every_shape_comes_back() {
        round_trips(&record(70_000));
    }

    #[test]
    fn strings_and_bytes_are_borrowed_from_the_input() {
        #[derive(Serialize, Deserialize)]
        struct Borrowed<'a> {
            text: &'a str,
            #[serde(with = "bytes")]
            bytes: &'a [u8],
        }
        mod bytes {
            pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(b)
            }
            pub fn deserialize<'a, D: serde::Deserializer<'a>>(d: D) -> Result<&'a [u8], D::Error> {
                serde::Deserialize::deserialize(d)
            }
        }
        let mut encoded = Vec::new();
        encode_compact_into(
            &Borrowed {
                text: "hé",
                bytes: &[1, 2, 3],
            },
            &mut encoded,
        )
        .unwrap();
        let read: Borrowed = decode_compact(&encoded).unwrap();
        assert_eq!((read.text, read.bytes), ("hé", &[1u8, 2, 3][..]));
        let within = encoded.as_ptr_range();
        assert!(within.contains(&read.text.as_ptr()) && within.contains(&read.bytes.as_ptr()));
    }

    /// A claimed length is checked against the bytes left before anything
    /// is allocated for it.
    #[test]
    fn a_claimed_length_allocates_nothing_beyond_the_input() {
        // A string, then a sequence, each claiming 2^60 with three bytes behind.
        let mut claim = vec![253];
        claim.extend((1u64 << 60).to_le_bytes());
        claim.extend(b"abc");
        let e = decode_compact::<String>(&claim).unwrap_err();
        assert!(e.to_string().contains("bytes needed"), "{e}");
        assert!(decode_compact::<Vec<u64>>(&claim).is_err());
        assert!(decode_compact::<BTreeMap<u8, u8>>(&claim).is_err());
    }

    #[test]
    fn an_integer_wider_than_its_type_is_refused() {
        let mut wide = Vec::new();
        encode_compact_into(&70_000u32, &mut wide).unwrap();
        let e = decode_compact::<u16>(&wide).unwrap_err();
        assert!(e.to_string().contains("wider than its type"), "{e}");
        assert_eq!(bincode::<u16>(&wide), None);
    }
}
