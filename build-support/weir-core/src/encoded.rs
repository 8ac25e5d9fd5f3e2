//! [`Encoded`]: a value that travels as the bytes it was encoded to.
//!
//! A node that only passes a value on (stores it, forwards it, sends it to
//! several peers) pays for decoding and encoding it again at every hop, one
//! allocation per string or buffer inside it. Encoded once where it is made,
//! the value is copied as one block of bytes wherever it goes, and decoded
//! only where it is used.
//!
//! Its integers take as few bytes as their values need (bincode's varint),
//! not the fixed widths of Weir's records: an `Encoded` value is encoded
//! once and then copied, sent and logged at every hop, so its bytes cost more
//! than packing its integers once does. (A key-value store's `SET`: 67 bytes
//! of fixed-width command, 36 compact.)
//!
//! It keeps the value's type in the wire's shape: a channel that carries
//! `Encoded<T>` has the shape `encoded<shape of T>`, so two builds whose `T`
//! differ are still refused at the handshake, though no hop between them
//! decodes it.

use crate::codec::{self, CodecError};
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The name `Encoded` gives serde, by which the shape tracer knows it.
pub(crate) const NAME: &str = "weir::Encoded";

/// A `T` as the bytes it encodes to (with compact integers). Cloning shares
/// the bytes.
pub struct Encoded<T> {
    bytes: Arc<[u8]>,
    of: PhantomData<fn() -> T>,
}

/// Why encoding stopped: serde's derives and the standard collections never
/// fail, a hand-written `Serialize` may (bincode needs each sequence's length).
const UNENCODABLE: &str =
    "a value given to `weir::Encoded` could not be encoded (its `Serialize` failed)";

impl<T: Serialize> Encoded<T> {
    /// Encodes `value`. Panics if its `Serialize` fails, as a record's
    /// would fail its send.
    pub fn new(value: &T) -> Encoded<T> {
        Encoded::try_new(value).expect(UNENCODABLE)
    }

    fn try_new(value: &T) -> Result<Encoded<T>, CodecError> {
        let mut bytes = Vec::new();
        codec::encode_compact_into(value, &mut bytes)?;
        Ok(Encoded::from_bytes(&bytes))
    }
}

impl<T: DeserializeOwned> Encoded<T> {
    /// The value, decoded. Fails only on bytes that did not come from
    /// [`Encoded::new`] of the same type (a peer that lies, a damaged disk).
    pub fn decode(&self) -> Result<T, CodecError> {
        codec::decode_compact(&self.bytes)
    }
}

/// A `Vec<T>` encoded item by item as the items come, so that they need not
/// be held (nor cloned) to be encoded together: [`take`](EncodedVec::take)
/// gives the [`Encoded`] of the items so far.
pub struct EncodedVec<T> {
    /// [`COUNT_ROOM`] bytes for the items' count (written when taken), then
    /// the items' encodings one after the other.
    bytes: Vec<u8>,
    items: usize,
    /// The first item that could not be encoded: the whole fails when taken.
    failed: Option<CodecError>,
    of: PhantomData<fn() -> T>,
}

/// Room for a compact `u64`: a tag byte and 8 bytes.
const COUNT_ROOM: usize = 9;

impl<T: Serialize> Default for EncodedVec<T> {
    fn default() -> Self {
        EncodedVec {
            bytes: vec![0; COUNT_ROOM],
            items: 0,
            failed: None,
            of: PhantomData,
        }
    }
}

impl<T: Serialize> EncodedVec<T> {
    /// An empty sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `item` after the others.
    pub fn push(&mut self, item: &T) {
        self.push_twin(item);
    }

    /// Encodes `item`, a twin of `T` that borrows what `T` owns, after the
    /// others: an item pushed without being built (nor cloned) first. The
    /// twin must encode exactly as `T` does, field for field and variant for
    /// variant (test it: the bytes are read back as `T`s).
    pub fn push_twin<U: Serialize + ?Sized>(&mut self, item: &U) {
        let before = self.bytes.len();
        match codec::encode_compact_into(item, &mut self.bytes) {
            Ok(()) => self.items += 1,
            Err(e) => {
                self.bytes.truncate(before);
                self.failed.get_or_insert(e);
            }
        }
    }

    /// Items pushed since the last take.
    pub fn len(&self) -> usize {
        self.items
    }

    /// Whether it holds no item and no failure to report.
    pub fn is_empty(&self) -> bool {
        self.items == 0 && self.failed.is_none()
    }

    /// Forgets the items pushed.
    pub fn clear(&mut self) {
        self.bytes.truncate(COUNT_ROOM);
        self.items = 0;
        self.failed = None;
    }

    /// The items pushed, as `Encoded::new(&vec_of_them)` would give them;
    /// empties this one (keeping its buffer). Panics if an item's
    /// `Serialize` failed.
    pub fn take(&mut self) -> Encoded<Vec<T>> {
        if let Some(e) = self.failed.take() {
            panic!("{UNENCODABLE}: {e}");
        }
        // A sequence is encoded as its length, then its items: the length
        // goes just before the first item, in the room left for it.
        let mut count = Vec::with_capacity(COUNT_ROOM);
        codec::encode_compact_into(&(self.items as u64), &mut count).expect("a u64 encodes");
        let start = COUNT_ROOM - count.len();
        self.bytes[start..COUNT_ROOM].copy_from_slice(&count);
        let encoded = Encoded::from_bytes(&self.bytes[start..]);
        self.clear();
        encoded
    }
}

impl<T> Encoded<T> {
    /// Bytes that hold a `T`, as [`Encoded::new`] would have made them.
    fn from_bytes(bytes: &[u8]) -> Encoded<T> {
        Encoded {
            bytes: bytes.into(),
            of: PhantomData,
        }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The value decoded as `V`: a twin of `T` that borrows from these bytes
    /// where `T` owns (`&[u8]` for a `Vec<u8>`, `&str` for a `String`), for
    /// a reader that copies only some of it. `V` must encode as `T` does,
    /// field for field and variant for variant (test it: a twin that drifts
    /// decodes wrong, or fails to).
    pub fn decode_borrowed<'a, V: Deserialize<'a>>(&'a self) -> Result<V, CodecError> {
        codec::decode_compact(&self.bytes)
    }
}

impl<T> Clone for Encoded<T> {
    fn clone(&self) -> Self {
        Encoded {
            bytes: Arc::clone(&self.bytes),
            of: PhantomData,
        }
    }
}

impl<T> PartialEq for Encoded<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Encoded<T> {}

impl<T> fmt::Debug for Encoded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Encoded<{}>({} bytes)",
            std::any::type_name::<T>(),
            self.bytes.len()
        )
    }
}

impl<T> Serialize for Encoded<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(NAME, &AsBytes(&self.bytes))
    }
}

/// Bytes serialized whole (not as a sequence of `u8`s).
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Encoded<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(NAME, EncodedVisitor(PhantomData))
    }
}

struct EncodedVisitor<T>(PhantomData<fn() -> T>);

impl<'de, T: Serialize + DeserializeOwned> Visitor<'de> for EncodedVisitor<T> {
    type Value = Encoded<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bytes of an encoded value")
    }

    /// From the wire: the bytes, as they are.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_byte_buf(self)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        Ok(Encoded::from_bytes(bytes))
    }

    /// From the shape tracer, which offers the value itself, so that its
    /// shape is found (see [`crate::shape`]); and from formats that
    /// describe themselves.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let value: T = seq
            .next_element()?
            .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
        Encoded::try_new(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::trace;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Command {
        key: String,
        value: Vec<u8>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Accept {
        slot: u64,
        value: Encoded<Vec<Command>>,
    }

    proptest! {
        #[test]
        fn a_value_crosses_the_wire_and_decodes_as_it_was(
            slot: u64,
            commands in prop::collection::vec((".{0,8}", prop::collection::vec(any::<u8>(), 0..8)), 0..8),
        ) {
            let commands: Vec<Command> = commands
                .into_iter()
                .map(|(key, value)| Command { key, value })
                .collect();
            let accept = Accept { slot, value: Encoded::new(&commands) };
            let mut wire = Vec::new();
            codec::encode_batch(std::slice::from_ref(&accept), &mut wire).unwrap();
            let back: Vec<Accept> = codec::decode_batch(&wire).unwrap();
            prop_assert_eq!(&back, &[accept]);
            prop_assert_eq!(back[0].value.decode().unwrap(), commands);
        }
    }

    proptest! {
        #[test]
        fn a_vec_encoded_item_by_item_is_the_vec_encoded_whole(
            rounds in prop::collection::vec(prop::collection::vec(".{0,8}", 0..8), 1..4),
        ) {
            let mut items = EncodedVec::new();
            for round in rounds {
                for item in &round {
                    items.push(item);
                }
                prop_assert_eq!(items.len(), round.len());
                let taken = items.take();
                prop_assert_eq!(&taken, &Encoded::new(&round));
                prop_assert_eq!(taken.decode().unwrap(), round);
                prop_assert!(items.is_empty(), "taking empties it");
            }
        }
    }

    #[test]
    fn a_count_that_takes_more_than_a_byte_comes_before_the_items_all_the_same() {
        let mut items = EncodedVec::new();
        for n in [250, 251, 70_000] {
            let all: Vec<u32> = (0..n).collect();
            all.iter().for_each(|item| items.push(item));
            let taken = items.take();
            assert_eq!(taken, Encoded::new(&all), "{n} items");
            assert_eq!(taken.decode().unwrap(), all);
        }
    }

    #[test]
    fn a_twin_that_borrows_decodes_without_copying_what_it_borrows() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct CommandRef<'a> {
            key: &'a str,
            // A `Vec<u8>` is a sequence of bytes, each one byte: as `&[u8]` is.
            value: &'a [u8],
        }
        let commands = vec![Command {
            key: "k".repeat(300),
            value: b"value".to_vec(),
        }];
        let encoded = Encoded::new(&commands);
        let twins: Vec<CommandRef> = encoded.decode_borrowed().unwrap();
        assert_eq!(twins[0].key, commands[0].key);
        assert_eq!(twins[0].value, commands[0].value);
        let within = encoded.as_bytes().as_ptr_range();
        assert!(
            within.contains(&twins[0].key.as_ptr()),
            "borrowed, not copied"
        );
    }

    #[test]
    fn integers_take_the_bytes_their_values_need() {
        // The count, 1, 300 (a tag byte and two), then a string's length and
        // its bytes: 9 bytes, against 35 with fixed widths.
        let value = (vec![1u64, 300], "abc".to_string());
        assert_eq!(Encoded::new(&value).as_bytes().len(), 9);
        assert_eq!(codec::encode_value(&value).unwrap().len(), 35);
    }

    #[test]
    fn bytes_that_claim_more_than_arrived_are_refused_before_allocating() {
        let accept = Accept {
            slot: 1,
            value: Encoded::new(&vec![]),
        };
        let mut wire = Vec::new();
        codec::encode_batch(&[accept], &mut wire).unwrap();
        // The batch's count, the slot, then the value's length (eight bytes
        // each) and its bytes (an empty vector's count, one byte): the
        // length made huge, and nothing after it.
        let length = 16..24;
        assert_eq!(wire[length.clone()], 1u64.to_le_bytes(), "{wire:?}");
        wire[length.clone()].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        wire.truncate(length.end);
        assert!(codec::decode_batch::<Accept>(&wire).is_err());
    }

    mod old {
        #[derive(serde::Serialize, serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Command {
            pub key: String,
            pub value: Vec<u8>,
        }
    }

    mod new {
        #[derive(serde::Serialize, serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Command {
            pub key: String,
            pub value: Vec<u8>,
            pub ttl: u32,
        }
    }

    #[test]
    fn the_shape_is_the_type_inside_and_tells_its_changes_apart() {
        let old = trace::<Encoded<Vec<old::Command>>>().unwrap();
        assert_eq!(
            old.to_string(),
            "encoded<[Command]>; struct Command { key: string, value: [u8] }"
        );
        let inline = trace::<Vec<old::Command>>().unwrap();
        assert_ne!(old, inline, "encoded is not the same bytes as inline");
        let new = trace::<Encoded<Vec<new::Command>>>().unwrap();
        assert_eq!(
            old.first_difference(&new, ("here", "there")).as_deref(),
            Some("Command: no such field here, field `ttl` there")
        );
        // A build from before `Encoded`'s compact integers: refused too.
        let crate::shape::Shape::Encoded(inner) = old.root.clone() else {
            panic!("{old}")
        };
        let fixed_width = crate::shape::WireShape {
            root: crate::shape::Shape::FixedWidthEncoded(inner),
            types: old.types.clone(),
        };
        assert_ne!(fixed_width.encode(), old.encode());
        assert_eq!(
            old.first_difference(&fixed_width, ("here", "there")).as_deref(),
            Some("the record: encoded<[Command]> here, encoded with fixed-width integers<[Command]> there")
        );
    }
}
