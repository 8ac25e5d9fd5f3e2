//! How a file is laid out: frames, each its body's length (u32,
//! little-endian), the CRC-32 of that length, the CRC-32 of the body, then
//! the body. The length's own checksum tells a damaged length from a frame
//! cut short, so damage never passes for a torn tail.
//!
//! A log holds one frame per commit (a batch of that tick's records, in the
//! wire codec's encoding), so a tick's writes survive whole or not at all.

/// Bytes before a frame's body.
pub(crate) const HEADER: usize = 12;

/// Appends `body`, framed, to `out`.
pub(crate) fn push(body: &[u8], out: &mut Vec<u8>) {
    let len = (body.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// `body` framed: a file that holds one value whole (a cell, a shape).
pub(crate) fn whole(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    push(body, &mut out);
    out
}

/// The body of a file that holds one whole frame and nothing else, if it does.
pub(crate) fn only(bytes: &[u8]) -> Option<&[u8]> {
    match read(bytes, 0) {
        Read::Frame(body, after) if after == bytes.len() => Some(body),
        _ => None,
    }
}

/// What is at an offset of a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read<'a> {
    /// A frame's body, and the offset after the frame.
    Frame(&'a [u8], usize),
    /// The end of the file.
    End,
    /// A frame cut short by the end of the file.
    CutShort,
    /// A whole frame whose body fails its checksum; the offset after it.
    BadChecksum(usize),
    /// A length that fails its checksum.
    BadLength,
}

/// The frame at `at` in `bytes`.
pub(crate) fn read(bytes: &[u8], at: usize) -> Read<'_> {
    let rest = &bytes[at..];
    if rest.is_empty() {
        return Read::End;
    }
    if rest.len() < HEADER {
        return Read::CutShort;
    }
    let word = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(&rest[0..4]) != word(4) {
        return Read::BadLength;
    }
    let (len, crc) = (word(0) as usize, word(8));
    let Some(body) = rest.get(HEADER..HEADER + len) else {
        return Read::CutShort;
    };
    let after = at + HEADER + len;
    if crc32fast::hash(body) != crc {
        return Read::BadChecksum(after);
    }
    Read::Frame(body, after)
}
