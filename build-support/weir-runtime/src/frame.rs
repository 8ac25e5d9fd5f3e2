//! Bytes on the wire: the handshake that opens a connection, then frames.
//!
//! Frame: `[payload length: u32 LE][channel: u32 LE][payload]`. A channel id with
//! [`CLOSE_BIT`] set and an empty payload says "no more records on this channel
//! from me". Payloads are batches encoded by `weir_core::codec`.
//!
//! A frame on [`KEEPALIVE`] with an empty payload carries nothing: it tells a peer
//! that watches for silence (a tolerant link) that this side is alive. A frame
//! on [`STOPPING`] with an empty payload says this side was told to stop.
//!
//! Handshake message: `"WEIR"`, protocol version (u16 LE), kind (u8: 0 = hello,
//! 1 = refusal, 2 = Noise, 3 = ready), then
//! - hello: flow hash (u64 LE), member index (u32 LE), incarnation (u64 LE),
//!   role name (u8 length + UTF-8);
//! - refusal: the reason (u16 length + UTF-8);
//! - Noise: a Noise handshake message (u16 length + bytes), whose payload is
//!   itself a hello or a refusal (see `secure`);
//! - ready: nothing; the dialer's first sealed record, taking the link.
//!
//! With a deployment key, frames travel inside sealed records (`secure`).

use crate::wire::WireChannel;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// The first bytes of every handshake message.
pub const MAGIC: [u8; 4] = *b"WEIR";
/// The handshake's version: a peer of another version is refused, naming both.
pub const PROTOCOL_VERSION: u16 = 6;
/// A frame header's bytes: payload length, then channel.
pub const HEADER_LEN: usize = 8;
/// Set in a frame's channel id to close that channel.
pub const CLOSE_BIT: u32 = 1 << 31;
/// The channel of keepalive frames (no flow has this many nodes).
pub const KEEPALIVE: u32 = CLOSE_BIT - 1;
/// The channel of the frame that says "I was told to stop".
pub const STOPPING: u32 = CLOSE_BIT - 2;
/// Frames larger than this are refused (the connection is closed, the length is
/// never allocated).
pub const DEFAULT_MAX_FRAME: u32 = 64 << 20;

/// Appends one frame of `channel` to `buf` (which may hold other frames), its
/// payload written by `payload`. On error `buf` is left as it was.
pub fn append_frame(
    buf: &mut Vec<u8>,
    channel: u32,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    let written = payload(buf).and_then(|()| fill_header(&mut buf[start..], channel));
    if written.is_err() {
        buf.truncate(start);
    }
    written
}

/// Writes the header of a frame of `channel` built in place: `frame` is
/// [`HEADER_LEN`] bytes for it, then the payload.
pub fn fill_header(frame: &mut [u8], channel: u32) -> Result<(), String> {
    let len = u32::try_from(frame.len() - HEADER_LEN)
        .map_err(|_| "batch larger than 4 GiB".to_string())?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..HEADER_LEN].copy_from_slice(&channel.to_le_bytes());
    Ok(())
}

/// Appends a frame that closes `channel`.
pub fn append_close(buf: &mut Vec<u8>, channel: u32) {
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&(channel | CLOSE_BIT).to_le_bytes());
}

/// Appends a keepalive frame.
pub fn append_keepalive(buf: &mut Vec<u8>) {
    append_signal(buf, KEEPALIVE);
}

/// Appends the frame that says this side is stopping.
pub fn append_stopping(buf: &mut Vec<u8>) {
    append_signal(buf, STOPPING);
}

/// An empty frame on a control channel.
fn append_signal(buf: &mut Vec<u8>, channel: u32) {
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&channel.to_le_bytes());
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The payload's length in bytes.
    pub len: u32,
    /// The channel id, with [`CLOSE_BIT`] on a close.
    pub channel: u32,
}

impl Header {
    /// The header in `bytes` (checked against the frame size limit by the reader).
    pub fn parse(bytes: [u8; HEADER_LEN]) -> Self {
        Header {
            len: u32::from_le_bytes(bytes[..4].try_into().unwrap()),
            channel: u32::from_le_bytes(bytes[4..].try_into().unwrap()),
        }
    }
}

/// How much room a read into a [`ReadBuffer`] gets at least, and the most it
/// reads at once. Reads the size a `BufReader` makes: a `recvfrom` of 256 KiB
/// holds the socket so long that the sender's segments queue behind it, and
/// the sender's system time per 100-byte record was 18 ns against 12 ns with
/// reads of 64 KiB (docs/BENCHMARKS.md, runs 12 and 13).
pub const READ_CHUNK: usize = 64 * 1024;

/// A read buffer larger than this, once empty, is given back.
const MAX_KEPT: usize = 4 << 20;

/// The bytes read from one link, and the frames in them, parsed in place.
///
/// Frames are handed out as ranges of the buffer, so a payload is decoded where
/// the socket put it: no copy, no allocation per frame. The buffer grows only
/// as bytes arrive ([`READ_CHUNK`] at a time), so a frame that claims a huge
/// length costs nothing until its bytes are there; a length over the maximum
/// is refused from the header alone.
#[derive(Debug, Default)]
pub struct ReadBuffer {
    buf: Vec<u8>,
    /// Bytes at the front that belong to frames already handed out.
    parsed: usize,
    /// Bytes at the front that belong to frames released: no range into them
    /// is live, so they may be dropped (the rest moved to the front).
    released: usize,
}

impl ReadBuffer {
    /// Reads what `reader` has now into the buffer, at most `max` bytes (at
    /// least one): `Ready(Ok(0))` at its end.
    pub fn poll_read_from<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        reader: &mut R,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.make_room(READ_CHUNK);
        self.buf.reserve(READ_CHUNK);
        let len = self.buf.len();
        // Not all the spare room: what a read takes, the tick holds (its
        // bytes, and its records decoded), so a reader that fell behind does
        // not take megabytes in one tick; and never more than READ_CHUNK.
        let room = self.buf.spare_capacity_mut();
        let take = room.len().min(max.clamp(1, READ_CHUNK));
        let mut spare = ReadBuf::uninit(&mut room[..take]);
        match Pin::new(reader).poll_read(cx, &mut spare) {
            Poll::Ready(Ok(())) => {
                let n = spare.filled().len();
                // SAFETY: `poll_read` initialised (filled) the first `n` bytes of
                // the spare capacity, right after the `len` bytes in use.
                unsafe { self.buf.set_len(len + n) };
                Poll::Ready(Ok(n))
            }
            other => other.map(|r| r.map(|()| 0)),
        }
    }

    /// Appends bytes that arrived by other means (an in-memory link, a test).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame: its channel and where its payload is. `None`
    /// until all of it has arrived.
    pub fn next_frame(
        &mut self,
        max_frame: u32,
    ) -> Result<Option<(u32, Range<usize>)>, FrameError> {
        let rest = &self.buf[self.parsed..];
        let Some(header) = rest.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let Header { len, channel } = Header::parse(header.try_into().expect("a header"));
        if len > max_frame {
            return Err(FrameError::TooLong {
                len,
                channel,
                max_frame,
            });
        }
        let end = HEADER_LEN + len as usize;
        if rest.len() < end {
            return Ok(None);
        }
        let start = self.parsed + HEADER_LEN;
        self.parsed += end;
        Ok(Some((channel, start..self.parsed)))
    }

    /// A payload [`next_frame`](Self::next_frame) handed out.
    pub fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Forgets the frames handed out: their ranges are invalid afterwards. The
    /// bytes of the next frame move to the front only when the room behind
    /// them runs short, so a steady stream costs no copy per tick.
    pub fn release(&mut self) {
        self.released = self.parsed;
        if self.parsed == self.buf.len() {
            self.buf.clear();
            (self.parsed, self.released) = (0, 0);
            if self.buf.capacity() > MAX_KEPT {
                // One huge frame should not pin its memory for the rest of the run.
                self.buf = Vec::new();
            }
        } else {
            // Room for the rest of the next frame, made now, while its start
            // is at most one tick's reads: made when the room runs out, most
            // of a large frame could move (a 400 KB batch arrives over ticks).
            self.make_room(self.still_to_come() + READ_CHUNK);
        }
    }

    /// Drops the released bytes if fewer than `wanted` bytes of room are
    /// left behind what is in the buffer.
    fn make_room(&mut self, wanted: usize) {
        if self.released > 0 && self.buf.capacity() - self.buf.len() < wanted {
            self.compact();
        }
    }

    /// Bytes of the frame begun at `parsed` that have not arrived, as its
    /// header says (none until the header is here). Only ever a hint, for
    /// when to move bytes and how much to read: room is still made as bytes
    /// arrive.
    pub fn still_to_come(&self) -> usize {
        let begun = &self.buf[self.parsed..];
        match begun.get(..HEADER_LEN) {
            Some(header) => {
                let len = Header::parse(header.try_into().expect("a header")).len as usize;
                (HEADER_LEN + len).saturating_sub(begun.len())
            }
            None => 0,
        }
    }

    /// Drops the released bytes, moving the rest to the front. Only what was
    /// released goes: frames handed out since stay valid only if none were
    /// (`parsed == released`), so their bytes move only then.
    fn compact(&mut self) {
        if self.parsed != self.released {
            return;
        }
        self.buf.copy_within(self.released.., 0);
        self.buf.truncate(self.buf.len() - self.released);
        (self.parsed, self.released) = (0, 0);
    }

    /// Bytes that arrived but are not part of a frame handed out yet.
    pub fn unparsed(&self) -> usize {
        self.buf.len() - self.parsed
    }

    /// At the link's end: an error if it ended inside a frame.
    pub fn check_end(&self) -> Result<(), FrameError> {
        let rest = &self.buf[self.parsed..];
        match rest.len() {
            0 => Ok(()),
            n if n < HEADER_LEN => Err(FrameError::InHeader(io::ErrorKind::UnexpectedEof.into())),
            n => {
                let Header { len, channel } =
                    Header::parse(rest[..HEADER_LEN].try_into().expect("a header"));
                Err(FrameError::Truncated {
                    channel,
                    read: n - HEADER_LEN,
                    len,
                })
            }
        }
    }
}

/// Why no frame could be read.
#[derive(Debug)]
pub enum FrameError {
    /// Reading failed between frames.
    Io(io::Error),
    /// Reading failed inside a header.
    InHeader(io::Error),
    /// A header claims more than `--max-frame` allows.
    TooLong {
        /// The claimed payload length.
        len: u32,
        /// The frame's channel.
        channel: u32,
        /// The limit.
        max_frame: u32,
    },
    /// The connection ended inside a payload.
    Truncated {
        /// The frame's channel.
        channel: u32,
        /// The payload bytes that came.
        read: usize,
        /// The payload length the header claimed.
        len: u32,
    },
}

impl FrameError {
    /// Whether the connection ended under the reader (what a dead peer looks
    /// like), rather than carrying something unacceptable.
    pub fn is_disconnect(&self) -> bool {
        match self {
            FrameError::InHeader(_) | FrameError::Truncated { .. } => true,
            FrameError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            FrameError::TooLong { .. } => false,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        FrameError::Io(err)
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::InHeader(e) => {
                write!(f, "connection ended inside a frame header ({e})")
            }
            FrameError::TooLong {
                len,
                channel,
                max_frame,
            } => write!(
                f,
                "frame of {len} bytes on channel {channel} exceeds the maximum of {max_frame} bytes"
            ),
            FrameError::Truncated { channel, read, len } => write!(
                f,
                "connection ended inside a frame on channel {channel} ({read} of {len} bytes)"
            ),
        }
    }
}

/// What the sides of a new connection say before its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Who the sender is.
    Hello {
        /// The flow's name.
        flow: String,
        /// The sender's role.
        role: String,
        /// Its member index (0 for a process).
        index: u32,
        /// Which run of this instance is speaking: it grows across restarts, so
        /// a connection left over from an earlier run can be told apart.
        incarnation: u64,
        /// The channels between the sender's role and the receiver's: what
        /// two builds must agree on to link (see `crate::wire`).
        channels: Vec<WireChannel>,
    },
    /// Why the connection is refused; the sender closes it next.
    Refusal {
        /// Said to the other side, and logged there.
        reason: String,
    },
    /// A message of the Noise handshake that protects the link.
    Noise {
        /// The Noise message's bytes.
        message: Vec<u8>,
    },
    /// The dialer takes the link: frames follow.
    Ready,
}

/// The longest role name a hello carries.
const MAX_ROLE: usize = u8::MAX as usize;

impl Handshake {
    /// The message's bytes, length-prefixed fields as the module doc says.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        buf.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        match self {
            Handshake::Hello {
                flow,
                role,
                index,
                incarnation,
                channels,
            } => {
                buf.push(0);
                buf.extend_from_slice(&index.to_le_bytes());
                buf.extend_from_slice(&incarnation.to_le_bytes());
                for name in [role, flow] {
                    let name = &name.as_bytes()[..name.len().min(MAX_ROLE)];
                    buf.push(name.len() as u8);
                    buf.extend_from_slice(name);
                }
                let channels = weir_core::codec::encode_value(channels)
                    .expect("a channel list always encodes");
                push_short_bytes(&mut buf, &channels);
            }
            Handshake::Refusal { reason } => {
                buf.push(1);
                push_short_bytes(&mut buf, reason.as_bytes());
            }
            Handshake::Noise { message } => {
                buf.push(2);
                push_short_bytes(&mut buf, message);
            }
            Handshake::Ready => buf.push(3),
        }
        buf
    }

    /// What kind of message this is, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Handshake::Hello { .. } => "a hello",
            Handshake::Refusal { .. } => "a refusal",
            Handshake::Noise { .. } => "a Noise handshake message",
            Handshake::Ready => "a ready message",
        }
    }

    /// Reads one handshake message. Bounded: at most 64 KiB for a hello's
    /// channel list, a refusal's reason or a Noise message, and a few hundred
    /// bytes besides, are ever read or allocated.
    pub async fn read(reader: &mut (impl AsyncRead + Unpin)) -> Result<Self, HandshakeError> {
        let mut fixed = [0u8; 7];
        reader.read_exact(&mut fixed).await?;
        if fixed[..4] != MAGIC {
            return Err(HandshakeError::NotWeir);
        }
        let version = u16::from_le_bytes([fixed[4], fixed[5]]);
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::Version(version));
        }
        match fixed[6] {
            0 => {
                let mut rest = [0u8; 12];
                reader.read_exact(&mut rest).await?;
                let index = u32::from_le_bytes(rest[..4].try_into().unwrap());
                let incarnation = u64::from_le_bytes(rest[4..12].try_into().unwrap());
                let role = read_name(reader, "role name is not UTF-8").await?;
                let flow = read_name(reader, "flow name is not UTF-8").await?;
                let channels = weir_core::codec::decode_value(&read_short_bytes(reader).await?)
                    .map_err(|_| HandshakeError::Malformed("its channel list does not decode"))?;
                Ok(Handshake::Hello {
                    flow,
                    role,
                    index,
                    incarnation,
                    channels,
                })
            }
            1 => Ok(Handshake::Refusal {
                reason: String::from_utf8_lossy(&read_short_bytes(reader).await?).into_owned(),
            }),
            2 => Ok(Handshake::Noise {
                message: read_short_bytes(reader).await?,
            }),
            3 => Ok(Handshake::Ready),
            _ => Err(HandshakeError::Malformed("unknown handshake kind")),
        }
    }

    /// Decodes one handshake message that is all of `bytes` (a Noise payload).
    pub fn decode(bytes: &[u8]) -> Result<Self, HandshakeError> {
        let mut rest = bytes;
        let message = {
            // Reading a slice never waits: one poll finishes it.
            let read = std::pin::pin!(Handshake::read(&mut rest));
            let Poll::Ready(message) =
                read.poll(&mut Context::from_waker(std::task::Waker::noop()))
            else {
                unreachable!("reading from a slice is always ready")
            };
            message?
        };
        match message {
            _ if !rest.is_empty() => Err(HandshakeError::Malformed("bytes after the message")),
            message => Ok(message),
        }
    }
}

/// Reads a name (at most 255 bytes) after its u8 length.
async fn read_name(
    reader: &mut (impl AsyncRead + Unpin),
    not_utf8: &'static str,
) -> Result<String, HandshakeError> {
    let mut len = [0u8; 1];
    reader.read_exact(&mut len).await?;
    let mut name = vec![0u8; len[0] as usize];
    reader.read_exact(&mut name).await?;
    String::from_utf8(name).map_err(|_| HandshakeError::Malformed(not_utf8))
}

/// Appends `bytes` (at most 64 KiB of them) after their u16 length.
fn push_short_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(u16::MAX as usize)];
    buf.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    buf.extend_from_slice(bytes);
}

async fn read_short_bytes(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await?;
    let mut bytes = vec![0u8; u16::from_le_bytes(len) as usize];
    reader.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Why a handshake could not be read.
#[derive(Debug)]
pub enum HandshakeError {
    /// Reading failed.
    Io(io::Error),
    /// The bytes do not start with [`MAGIC`]: not a Weir instance.
    NotWeir,
    /// A Weir instance of another protocol version: the peer's.
    Version(u16),
    /// A Weir message that does not parse: what is wrong with it.
    Malformed(&'static str),
}

impl From<io::Error> for HandshakeError {
    fn from(err: io::Error) -> Self {
        HandshakeError::Io(err)
    }
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "connection closed during the handshake")
            }
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::NotWeir => write!(f, "not a Weir peer (bad magic bytes)"),
            HandshakeError::Version(v) => {
                write!(
                    f,
                    "peer speaks Weir protocol version {v}, this binary speaks {PROTOCOL_VERSION}"
                )
            }
            HandshakeError::Malformed(what) => write!(f, "malformed handshake: {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handshakes_round_trip() {
        for msg in [
            Handshake::Hello {
                flow: "relay".into(),
                role: "worker".into(),
                index: 3,
                incarnation: 1 << 40,
                channels: vec![crate::wire::WireChannel {
                    id: 4,
                    from: "leader".into(),
                    to: "worker".into(),
                    delivery: "to every member".into(),
                    tolerant: true,
                    made_by: "broadcast_bincode at flow/src/relay.rs:9:10".into(),
                    record: "u64".into(),
                    shape: vec![1, 2, 3],
                }],
            },
            Handshake::Refusal {
                reason: "no".into(),
            },
            Handshake::Noise {
                message: vec![9; 48],
            },
            Handshake::Ready,
        ] {
            let bytes = msg.encode();
            assert_eq!(Handshake::read(&mut &bytes[..]).await.unwrap(), msg);
            assert_eq!(Handshake::decode(&bytes).unwrap(), msg);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Handshake::decode(&longer).is_err(), "bytes after {msg:?}");
        }
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_errors_not_panics() {
        assert!(matches!(
            Handshake::read(&mut &b"HTTP/1.1 200"[..]).await,
            Err(HandshakeError::NotWeir)
        ));
        let hello = Handshake::Hello {
            flow: "f".into(),
            role: "leader".into(),
            index: 0,
            incarnation: 5,
            channels: Vec::new(),
        }
        .encode();
        for cut in 0..hello.len() {
            assert!(
                Handshake::read(&mut &hello[..cut]).await.is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn frames_carry_their_length_and_append() {
        let mut buf = b"xy".to_vec();
        append_frame(&mut buf, 7, |b| {
            b.extend_from_slice(b"abc");
            Ok(())
        })
        .unwrap();
        let header = Header::parse(buf[2..10].try_into().unwrap());
        assert_eq!(header, Header { len: 3, channel: 7 });
        assert_eq!(&buf[10..], b"abc");
        append_close(&mut buf, 7);
        let close = Header::parse(buf[13..].try_into().unwrap());
        assert_eq!(
            close,
            Header {
                len: 0,
                channel: 7 | CLOSE_BIT
            }
        );
    }

    #[test]
    fn frames_are_parsed_in_place_as_their_bytes_arrive() {
        let mut wire = Vec::new();
        append_frame(&mut wire, 3, |b| {
            b.extend_from_slice(b"hello");
            Ok(())
        })
        .unwrap();
        append_close(&mut wire, 3);
        let mut frames = ReadBuffer::default();
        frames.extend(&wire[..6]);
        assert_eq!(frames.next_frame(1024).unwrap(), None, "half a header");
        frames.extend(&wire[6..11]);
        assert_eq!(frames.next_frame(1024).unwrap(), None, "half a payload");
        assert!(matches!(
            frames.check_end(),
            Err(FrameError::Truncated {
                channel: 3,
                read: 3,
                len: 5
            })
        ));
        frames.extend(&wire[11..]);
        let (channel, payload) = frames.next_frame(1024).unwrap().unwrap();
        assert_eq!((channel, frames.payload(payload)), (3, &b"hello"[..]));
        let (close, empty) = frames.next_frame(1024).unwrap().unwrap();
        assert_eq!((close, empty.len()), (3 | CLOSE_BIT, 0));
        assert_eq!(frames.next_frame(1024).unwrap(), None);
        assert!(frames.check_end().is_ok());
        frames.release();
        assert_eq!(frames.unparsed(), 0);
    }

    /// Frames small and large (a large one arrives over many reads),
    /// read as a node reads them: reads of up to 64 KiB, the frames of a tick
    /// released at the next. Every payload arrives whole and unchanged,
    /// however the buffer moved its bytes in between.
    #[test]
    fn frames_of_every_size_arrive_whole_across_reads_and_releases() {
        let sizes = [5, 400_000, 12, 70_000, 0, 65_536, 300_001, 8, 131_072, 3];
        let payload = |i: usize, len: usize| -> Vec<u8> {
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        };
        let mut wire = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            append_frame(&mut wire, i as u32, |b| {
                b.extend_from_slice(&payload(i, len));
                Ok(())
            })
            .unwrap();
        }
        let mut frames = ReadBuffer::default();
        let mut input = &wire[..];
        let mut arrived = Vec::new();
        let mut tick = 0usize;
        while !input.is_empty() || frames.unparsed() > 0 {
            frames.release();
            // Reads of uneven sizes, as a socket gives them.
            let max = [65_536, 1_000, 40_000, 9][tick % 4];
            let mut cx = Context::from_waker(std::task::Waker::noop());
            match frames.poll_read_from(&mut input, &mut cx, max) {
                Poll::Ready(Ok(_)) => {}
                other => panic!("an in-memory read: {other:?}"),
            }
            while let Some((channel, range)) = frames.next_frame(u32::MAX >> 1).unwrap() {
                let i = channel as usize;
                assert!(
                    frames.payload(range) == payload(i, sizes[i]),
                    "frame {i} changed"
                );
                arrived.push(i);
            }
            tick += 1;
            assert!(tick < 10_000, "no progress");
        }
        assert_eq!(arrived, (0..sizes.len()).collect::<Vec<_>>());
    }

    #[test]
    fn a_length_over_the_maximum_is_refused_from_the_header() {
        let mut frames = ReadBuffer::default();
        frames.extend(&(u32::MAX >> 1).to_le_bytes());
        frames.extend(&7u32.to_le_bytes());
        assert!(matches!(
            frames.next_frame(1024),
            Err(FrameError::TooLong { channel: 7, .. })
        ));
    }

    #[test]
    fn a_failed_payload_leaves_the_buffer_as_it_was() {
        let mut buf = b"xy".to_vec();
        let failed = append_frame(&mut buf, 7, |b| {
            b.extend_from_slice(b"half");
            Err("no".to_string())
        });
        assert_eq!(failed, Err("no".to_string()));
        assert_eq!(buf, b"xy");
    }
}
