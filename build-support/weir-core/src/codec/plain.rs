//! Batches of *plain* records: fixed-width integers and floats, whose encoding
//! (little-endian, fixed width) is their bytes. Such a batch decodes as one
//! bounds check and a copy, not a serde call per record: a receiver of `u64`s
//! spent most of its time in user space taking them apart one by one
//! (docs/BENCHMARKS.md, run 14).

use super::CodecError;
use std::any::Any;

/// Decodes a batch of `T` into `out` if `T` is plain; `None` if it is not
/// (the caller decodes it through serde). On error `out` is left as it was.
#[allow(clippy::ptr_arg)] // a `Vec`: it is told apart by its type, and extended
pub(super) fn decode_batch_into<T: 'static>(
    bytes: &[u8],
    out: &mut Vec<T>,
) -> Option<Result<(), CodecError>> {
    let out: &mut dyn Any = out;
    macro_rules! plain {
        ($($t:ty),*) => {$(
            if let Some(out) = out.downcast_mut::<Vec<$t>>() {
                return Some(decode_into(bytes, out, <$t>::from_le_bytes));
            }
        )*};
    }
    plain!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
    None
}

/// A batch is its record count (a `u64`) and then exactly that many records
/// of `N` bytes: the count is checked against the bytes that arrived before
/// anything is reserved.
fn decode_into<const N: usize, T>(
    bytes: &[u8],
    out: &mut Vec<T>,
    from_le_bytes: fn([u8; N]) -> T,
) -> Result<(), CodecError> {
    let Some((count, records)) = bytes.split_first_chunk::<8>() else {
        return Err(CodecError(format!(
            "a batch of {} bytes is shorter than its record count",
            bytes.len()
        )));
    };
    let count = u64::from_le_bytes(*count);
    if count.checked_mul(N as u64) != Some(records.len() as u64) {
        return Err(CodecError(format!(
            "a batch claiming {count} records of {N} bytes has {} bytes of records",
            records.len()
        )));
    }
    out.extend(
        records
            .chunks_exact(N)
            .map(|record| from_le_bytes(record.try_into().expect("chunks of N bytes"))),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{encode_batch, CodecError};
    use proptest::prelude::*;

    /// What serde decodes the batch into, whatever the type.
    fn through_serde<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
        super::super::decode_batch(bytes)
    }

    fn through_plain<T: 'static>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
        let mut out = Vec::new();
        super::decode_batch_into(bytes, &mut out).expect("a plain type")?;
        Ok(out)
    }

    #[test]
    fn only_fixed_width_numbers_are_plain() {
        let mut out: Vec<bool> = Vec::new();
        assert!(super::decode_batch_into(&[0; 8], &mut out).is_none());
        let mut out: Vec<(u32, u32)> = Vec::new();
        assert!(super::decode_batch_into(&[0; 8], &mut out).is_none());
        let mut out: Vec<usize> = Vec::new();
        assert!(super::decode_batch_into(&[0; 8], &mut out).is_none());
    }

    proptest! {
        /// A plain batch decodes to what serde decodes it to: the same
        /// records, and an error for the same bytes.
        #[test]
        fn plain_batches_decode_as_serde_does(
            values in proptest::collection::vec(any::<u64>(), 0..40),
            floats in proptest::collection::vec(any::<f32>(), 0..40),
            cut in 0usize..64,
            extra in proptest::collection::vec(any::<u8>(), 0..9),
        ) {
            let mut bytes = Vec::new();
            encode_batch(&values, &mut bytes).unwrap();
            prop_assert_eq!(through_plain::<u64>(&bytes).unwrap(), values.clone());
            // Read as other widths, damaged, or with bytes after it.
            let mut damaged = vec![bytes[..bytes.len().saturating_sub(cut)].to_vec()];
            damaged.push([&bytes[..], &extra[..]].concat());
            for bytes in damaged {
                prop_assert_eq!(through_plain::<u64>(&bytes).ok(), through_serde::<u64>(&bytes).ok());
                prop_assert_eq!(through_plain::<u32>(&bytes).ok(), through_serde::<u32>(&bytes).ok());
                prop_assert_eq!(through_plain::<i16>(&bytes).ok(), through_serde::<i16>(&bytes).ok());
                prop_assert_eq!(through_plain::<u8>(&bytes).ok(), through_serde::<u8>(&bytes).ok());
                prop_assert_eq!(through_plain::<u128>(&bytes).ok(), through_serde::<u128>(&bytes).ok());
            }
            let mut bytes = Vec::new();
            encode_batch(&floats, &mut bytes).unwrap();
            let decoded = through_plain::<f32>(&bytes).unwrap();
            prop_assert_eq!(
                decoded.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                floats.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_huge_claimed_count_reserves_nothing() {
        let mut bytes = (u64::MAX / 4).to_le_bytes().to_vec();
        bytes.extend([0; 16]);
        let mut out: Vec<u64> = Vec::new();
        let e = super::decode_batch_into(&bytes, &mut out)
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("has 16 bytes of records"), "{e}");
        assert_eq!(out.capacity(), 0);
    }
}
