//! The one place that decides how values travel: bincode 2's format through
//! serde, with fixed-width little-endian integers (faster to encode than
//! varints for the numeric batches that dominate network edges). Values are
//! encoded by `serializer`, which writes what bincode writes, for less;
//! bincode decodes them, but for [`Encoded`](crate::Encoded) values, which
//! `deserializer` reads.
//!
//! A network frame's payload is one *batch*: a sequence of records, encoded as a
//! length followed by the records. Swapping the codec means changing this module only.
//!
//! Decoding never trusts a claimed length for allocation: see `bounded`.

mod bounded;
mod deserializer;
mod plain;
#[cfg(test)]
mod samples;
mod serializer;

use bincode::config::{Config, Configuration, Fixint, LittleEndian, NoLimit};
use bounded::Bounded;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;

fn config() -> Configuration<LittleEndian, Fixint, NoLimit> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// How [`Encoded`](crate::Encoded) values are written: each integer in as
/// few bytes as its value needs (below 251, one). Such a value is encoded
/// once, then sent to every peer that needs it and kept in their logs:
/// there its bytes cost more than packing its integers does. Our own
/// serializer and deserializer read and write them; tests hold both to
/// bincode with this configuration.
#[cfg(test)]
fn compact_config() -> Configuration<LittleEndian, bincode::config::Varint, NoLimit> {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
}

/// Appends `value`, with fixed-width integers, to `out`; on error `out` may
/// hold part of it.
#[inline]
fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    value.serialize(&mut serializer::Writer::<false> { out })
}

/// A value that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// Appends the encoding of `records` (as one sequence) to `buf`.
///
/// `buf` is reused by callers across batches, so the send path does not allocate
/// per record (nor, once warm, per batch).
pub fn encode_batch<T: Serialize>(records: &[T], buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let before = buf.len();
    encode_into(records, buf).inspect_err(|_| buf.truncate(before))
}

/// A batch encoded record by record as its records come, so that the records
/// themselves are never held: what [`encode_batch`] would write for them all.
/// A sender pushes a tick's records, appends the batch to a frame, and clears
/// it (its buffer is kept for the next tick).
#[derive(Debug)]
pub struct BatchEncoder {
    /// `prefix` bytes left for the caller, the batch's length (written when
    /// the batch is taken), then the records' encodings one after the other.
    bytes: Vec<u8>,
    prefix: usize,
    records: usize,
    /// The first record that could not be encoded: the batch fails as a whole
    /// (later records are still encoded: no check per record).
    failed: Option<CodecError>,
}

/// The bytes of a batch's length.
const COUNT_LEN: usize = 8;

impl Default for BatchEncoder {
    fn default() -> BatchEncoder {
        BatchEncoder::with_prefix(0)
    }
}

impl BatchEncoder {
    /// An empty batch.
    pub fn new() -> BatchEncoder {
        BatchEncoder::default()
    }

    /// A batch whose buffer starts with `prefix` bytes for the caller (a
    /// frame's header): see [`framed`](BatchEncoder::framed).
    pub fn with_prefix(prefix: usize) -> BatchEncoder {
        BatchEncoder {
            bytes: vec![0; prefix + COUNT_LEN],
            prefix,
            records: 0,
            failed: None,
        }
    }

    /// Encodes `record` at the end of the batch.
    #[inline]
    pub fn push<T: Serialize + ?Sized>(&mut self, record: &T) {
        debug_assert!(
            self.bytes.len() >= self.prefix + COUNT_LEN,
            "cleared after `framed`"
        );
        let before = self.bytes.len();
        match encode_into(record, &mut self.bytes) {
            Ok(()) => self.records += 1,
            Err(e) => {
                self.bytes.truncate(before);
                self.failed.get_or_insert(e);
            }
        }
    }

    /// Records pushed since the last [`clear`](BatchEncoder::clear).
    pub fn len(&self) -> usize {
        self.records
    }

    /// Whether it holds no record and no failure to report.
    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.failed.is_none()
    }

    /// The bytes of the records pushed so far.
    pub fn records_len(&self) -> usize {
        self.bytes.len() - self.prefix - COUNT_LEN
    }

    /// Appends the batch to `buf` as [`encode_batch`] would have written it,
    /// or the error of the first record that could not be encoded.
    pub fn append_to(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        buf.extend_from_slice(&self.count());
        buf.extend_from_slice(&self.bytes[self.prefix + COUNT_LEN..]);
        Ok(())
    }

    /// The batch in the encoder's own buffer, after the `prefix` bytes left
    /// for the caller: for a sender that sends this buffer rather than a copy
    /// of it (swapping in an empty one), then [`clear`](BatchEncoder::clear)s.
    pub fn framed(&mut self) -> Result<&mut Vec<u8>, CodecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let count = self.count();
        self.bytes[self.prefix..self.prefix + COUNT_LEN].copy_from_slice(&count);
        Ok(&mut self.bytes)
    }

    /// A sequence's length, as the configuration writes it: a u64, little-endian.
    fn count(&self) -> [u8; COUNT_LEN] {
        (self.records as u64).to_le_bytes()
    }

    /// Starts the next batch (in the buffer it has, which may be another
    /// after [`framed`](BatchEncoder::framed)).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.bytes.resize(self.prefix + COUNT_LEN, 0);
        self.records = 0;
        self.failed = None;
    }
}

/// Decodes one batch written by [`encode_batch`]. Every byte must be used: trailing
/// bytes mean the peer and we disagree on the record type.
///
/// Never trusts the encoded length for allocation: serde grows the vector as
/// records actually decode.
pub fn decode_batch<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
    decode_value(bytes)
}

/// Decodes one batch written by [`encode_batch`], appending its records to `out`
/// (a buffer the caller reuses: no allocation per batch once warm). On error,
/// `out` is left as it was.
pub fn decode_batch_into<T: DeserializeOwned>(
    bytes: &[u8],
    out: &mut Vec<T>,
) -> Result<(), CodecError> {
    let before = out.len();
    let decoded =
        bincode::serde::seed_decode_from_slice(Bounded(AppendTo(&mut *out)), bytes, config());
    let failure = match decoded {
        Ok(((), used)) if used == bytes.len() => return Ok(()),
        Ok(((), used)) => trailing(bytes.len(), used),
        Err(e) => CodecError(e.to_string()),
    };
    out.truncate(before);
    Err(failure)
}

/// [`decode_batch_into`] for a receiver that knows its record type: a batch
/// of fixed-width numbers is copied in whole rather than decoded record by
/// record (see `plain`).
pub fn decode_batch_into_fast<T: DeserializeOwned + 'static>(
    bytes: &[u8],
    out: &mut Vec<T>,
) -> Result<(), CodecError> {
    match plain::decode_batch_into(bytes, out) {
        Some(decoded) => decoded,
        None => decode_batch_into(bytes, out),
    }
}

/// Decodes a sequence by pushing its elements onto a vector.
struct AppendTo<'v, T>(&'v mut Vec<T>);

impl<'de, T: serde::Deserialize<'de>> serde::de::DeserializeSeed<'de> for AppendTo<'_, T> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for AppendTo<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a batch of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Pushed onto a local (moved out and back): its length and capacity stay
        // in registers for the loop, not stored through `self.0` per record.
        let mut records = std::mem::take(self.0);
        // The claimed length is the peer's word: reserve only a bounded part of it.
        records.reserve(seq.size_hint().unwrap_or(0).min(4096));
        let decoded = loop {
            match seq.next_element() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        *self.0 = records;
        decoded
    }
}

fn trailing(len: usize, used: usize) -> CodecError {
    CodecError(format!(
        "{} trailing bytes after the value ({used} bytes used)",
        len - used
    ))
}

/// Encodes a single value (used for captured values spliced into generated code).
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a single value written by [`encode_value`], rejecting trailing bytes.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_whole(bytes, config())
}

/// Appends `value` to `buf` with compact integers (an [`Encoded`](crate::Encoded)'s bytes).
pub(crate) fn encode_compact_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    value.serialize(&mut serializer::Writer::<true> { out: buf })
}

/// Decodes a value written by [`encode_compact_into`], rejecting trailing
/// bytes; what it borrows, it borrows from `bytes`.
pub(crate) fn decode_compact<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let mut reader = deserializer::Reader { bytes };
    let value = T::deserialize(&mut reader)?;
    if !reader.bytes.is_empty() {
        return Err(trailing(bytes.len(), bytes.len() - reader.bytes.len()));
    }
    Ok(value)
}

fn decode_whole<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    config: impl Config,
) -> Result<T, CodecError> {
    let (value, used) =
        bincode::serde::seed_decode_from_slice(Bounded(PhantomData::<T>), bytes, config)
            .map_err(|e| CodecError(e.to_string()))?;
    if used != bytes.len() {
        return Err(trailing(bytes.len(), used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_and_appends() {
        let mut buf = vec![0xAA];
        encode_batch(&[1u64, 2, 3], &mut buf).unwrap();
        assert_eq!(buf[0], 0xAA, "encoding appends, it does not overwrite");
        assert_eq!(decode_batch::<u64>(&buf[1..]).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn a_batch_encoded_record_by_record_is_the_batch_encoded_at_once() {
        #[derive(Serialize)]
        struct Record {
            name: String,
            values: Vec<(u8, i64)>,
            kind: Option<bool>,
        }
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                name: "r".repeat(i),
                values: (0..i).map(|j| (j as u8, -(j as i64))).collect(),
                kind: (i % 2 == 0).then_some(i % 3 == 0),
            })
            .collect();
        let mut batch = BatchEncoder::new();
        for n in [0, 1, 5] {
            batch.clear();
            records[..n].iter().for_each(|r| batch.push(r));
            assert_eq!(batch.len(), n);
            let (mut at_once, mut by_record) = (vec![0xAA], vec![0xAA]);
            encode_batch(&records[..n], &mut at_once).unwrap();
            batch.append_to(&mut by_record).unwrap();
            assert_eq!(by_record, at_once, "{n} records");
        }
        // Taken in its own buffer, after a caller's prefix, and swapped out:
        // the next batch starts afresh in whatever buffer it is given.
        let mut framed = BatchEncoder::with_prefix(3);
        let mut spare = Vec::new();
        for n in [5, 1, 0] {
            records[..n].iter().for_each(|r| framed.push(r));
            let mut expected = vec![0; 3];
            encode_batch(&records[..n], &mut expected).unwrap();
            let taken = framed.framed().unwrap();
            assert_eq!(*taken, expected, "{n} records, framed");
            std::mem::swap(taken, &mut spare);
            spare.clear();
            framed.clear();
        }
    }

    #[test]
    fn a_record_that_cannot_be_encoded_fails_its_batch_until_cleared() {
        // bincode needs a sequence's length up front; this one does not give it.
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                s.serialize_seq(None)?.end()
            }
        }
        let mut batch = BatchEncoder::new();
        batch.push(&1u64);
        batch.push(&Unsized);
        batch.push(&2u64);
        assert!(!batch.is_empty());
        let mut buf = vec![9];
        assert!(batch.append_to(&mut buf).is_err());
        assert_eq!(buf, [9], "a failed batch appends nothing");
        batch.clear();
        batch.push(&3u64);
        batch.append_to(&mut buf).unwrap();
        assert_eq!(decode_batch::<u64>(&buf[1..]).unwrap(), [3]);
    }

    #[test]
    fn truncated_and_mistyped_batches_are_errors() {
        let mut buf = Vec::new();
        encode_batch(&[7u64, 8], &mut buf).unwrap();
        assert!(decode_batch::<u64>(&buf[..buf.len() - 1]).is_err());
        // Two u64 read as u32s leave trailing bytes.
        assert!(decode_batch::<u32>(&buf).is_err());
    }

    #[test]
    fn batches_append_to_a_buffer_and_failures_leave_it_alone() {
        let mut buf = Vec::new();
        encode_batch(&[7u64, 8], &mut buf).unwrap();
        let mut out = vec![1u64];
        decode_batch_into(&buf, &mut out).unwrap();
        assert_eq!(out, [1, 7, 8]);
        assert!(decode_batch_into(&buf[..buf.len() - 3], &mut out).is_err());
        let mut too_long = buf.clone();
        too_long.push(0);
        assert!(decode_batch_into(&too_long, &mut out).is_err());
        assert_eq!(out, [1, 7, 8]);
    }

    #[test]
    fn huge_claimed_length_does_not_allocate_it() {
        // A sequence claiming u64::MAX / 2 records, followed by nothing.
        let bytes = (u64::MAX / 2).to_le_bytes();
        assert!(decode_batch::<u8>(&bytes).is_err());
    }

    /// Every shape serde has goes through the adapter that bounds allocation:
    /// the decoded values must equal what was encoded.
    #[test]
    fn every_serde_shape_round_trips() {
        use super::samples::{record, Numbers, Record};
        let value = (record(70_000), Numbers::of(u128::MAX, true));
        let bytes = encode_value(&value).unwrap();
        assert_eq!(decode_value::<(Record, Numbers)>(&bytes).unwrap(), value);
        let mut batch = Vec::new();
        encode_batch(&[Some("x".to_string()), None], &mut batch).unwrap();
        assert_eq!(
            decode_batch::<Option<String>>(&batch).unwrap(),
            [Some("x".to_string()), None]
        );
    }

    #[test]
    fn a_string_claiming_more_than_arrived_is_an_error() {
        // One string claiming 2^60 bytes, with three bytes behind it.
        let mut bytes = 1u64.to_le_bytes().to_vec();
        bytes.extend((1u64 << 60).to_le_bytes());
        bytes.extend(b"abc");
        assert!(decode_batch::<String>(&bytes).is_err());
    }
}
