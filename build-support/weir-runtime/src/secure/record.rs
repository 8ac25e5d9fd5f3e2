//! Sealed records: the byte stream of a link after its handshake.
//!
//! Record: `[sealed length: u16 BE][ciphertext and 16-byte tag]`, at most
//! 65535 sealed bytes (the Noise maximum). Each direction numbers its records
//! from 0 and that number is the AEAD nonce; it never travels, so a record that
//! was changed, dropped, replayed or moved fails to open, and so does every
//! record after it. A reader that meets one fails for good: nothing of that
//! record, or after it, is handed out. A stream that ends inside a record is a
//! lost connection (`UnexpectedEof`), and the partial record is not handed out.
//!
//! The records are Noise transport messages exactly (AES-256-GCM, the nonce
//! 32 zero bits then the record's number, big-endian; no associated data:
//! a test checks them against snow's own), sealed and opened in place with
//! ring, with the keys snow's handshake split: no copy of a record is made
//! beyond the one into the reader's caller's buffer.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes before each record: its sealed length.
pub const RECORD_HEADER: usize = 2;
/// The authentication tag at the end of each record.
pub const TAG_LEN: usize = 16;
/// The longest sealed record.
pub const MAX_SEALED: usize = u16::MAX as usize;
/// The most plaintext one record carries.
pub const MAX_PLAINTEXT: usize = MAX_SEALED - TAG_LEN;

/// Plaintext sealed per write: large enough that a tick's frames go out in
/// one system call, small enough to keep the sealed copy in cache.
const SEAL_BATCH: usize = 256 * 1024;
/// Sealed bytes read from the socket at once (several records).
const READ_SPACE: usize = 256 * 1024;

/// Why a record did not open: the link is not what its peer sent.
#[derive(Debug, Clone)]
pub struct IntegrityError {
    what: String,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "integrity check failed: {}", self.what)
    }
}

impl std::error::Error for IntegrityError {}

/// One direction's key.
pub(super) struct RecordKey(LessSafeKey);

impl RecordKey {
    pub(super) fn new(key: &[u8; 32]) -> RecordKey {
        RecordKey(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"),
        ))
    }

    /// The nonce of record `n`, as Noise forms it for AES-GCM.
    fn nonce(n: u64) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        Nonce::assume_unique_for_key(nonce)
    }
}

/// Noise leaves the last number unused; a link never gets near it.
const LAST_RECORD: u64 = u64::MAX - 1;

impl IntegrityError {
    fn new(what: impl Into<String>) -> IntegrityError {
        IntegrityError { what: what.into() }
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// Whether `err` is a failed integrity check (and not, say, a reset).
    pub fn is(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<IntegrityError>())
    }
}

/// The receiving half of a sealed link: opens each record as it arrives.
pub struct SealedReader<R> {
    inner: R,
    key: RecordKey,
    /// The number (nonce) of the next record.
    next: u64,
    /// Sealed bytes read, `start..end` not opened yet.
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    /// Opened bytes the caller had no room for yet, at `plain` in `raw`.
    plain: std::ops::Range<usize>,
    failed: Option<IntegrityError>,
}

impl<R> SealedReader<R> {
    pub(super) fn new(inner: R, key: RecordKey) -> Self {
        SealedReader {
            inner,
            key,
            next: 0,
            raw: vec![0; READ_SPACE].into_boxed_slice(),
            start: 0,
            end: 0,
            plain: 0..0,
            failed: None,
        }
    }

    /// The sealed length of the next record, once all of it has arrived.
    fn complete_record(&self) -> Option<usize> {
        let have = &self.raw[self.start..self.end];
        let len = u16::from_be_bytes(have.get(..RECORD_HEADER)?.try_into().unwrap()) as usize;
        (have.len() >= RECORD_HEADER + len).then_some(len)
    }

    /// Opens the next record (`len` sealed bytes, all arrived) where it is:
    /// where its plaintext now is in `raw`.
    fn open(&mut self, len: usize) -> Result<std::ops::Range<usize>, IntegrityError> {
        let at = self.start + RECORD_HEADER;
        let opened = if len < TAG_LEN {
            Err(format!(
                "record {} is {len} bytes long, shorter than its tag",
                self.next
            ))
        } else if self.next > LAST_RECORD {
            Err("the link used up its record numbers".to_string())
        } else {
            self.key
                .0
                .open_in_place(RecordKey::nonce(self.next), Aad::empty(), &mut self.raw[at..at + len])
                .map(|plain| plain.len())
                .map_err(|_| {
                    format!(
                        "record {} does not open: it was changed, replayed, reordered, or one before it was dropped, on the way",
                        self.next
                    )
                })
        };
        match opened {
            Ok(plain_len) => {
                self.next += 1;
                self.start = at + len;
                Ok(at..at + plain_len)
            }
            Err(what) => {
                let e = IntegrityError::new(what);
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Opens every complete record that fits in `buf`, and copies it there;
    /// of the first that does not fit, what does (the rest waits in `plain`).
    fn open_arrived(&mut self, buf: &mut ReadBuf<'_>) -> Result<(), IntegrityError> {
        while buf.remaining() > 0 {
            let Some(len) = self.complete_record() else {
                break;
            };
            let plain = self.open(len)?;
            let n = buf.remaining().min(plain.len());
            buf.put_slice(&self.raw[plain.start..plain.start + n]);
            self.plain = plain.start + n..plain.end;
        }
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SealedReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(e.clone().into_io()));
        }
        if !this.plain.is_empty() {
            let n = buf.remaining().min(this.plain.len());
            buf.put_slice(&this.raw[this.plain.start..this.plain.start + n]);
            this.plain.start += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        loop {
            this.open_arrived(buf).map_err(IntegrityError::into_io)?;
            if buf.filled().len() > before || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // The next record has not all arrived: read more.
            if this.start > 0 {
                this.raw.copy_within(this.start..this.end, 0);
                this.end -= this.start;
                this.start = 0;
            }
            let mut space = ReadBuf::new(&mut this.raw[this.end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut space))?;
            let n = space.filled().len();
            if n == 0 {
                if this.end == this.start {
                    return Poll::Ready(Ok(())); // the end, between records
                }
                // A peer killed mid-write ends its stream anywhere, and no one
                // can tell that from a stream cut short on the way: a loss,
                // like any end, and nothing of the partial record is handed out.
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the connection ended inside record {} ({} bytes of it arrived): the peer stopped mid-write, or the stream was cut short on the way",
                        this.next,
                        this.end - this.start
                    ),
                )));
            }
            this.end += n;
        }
    }
}

/// The sending half of a sealed link: seals what it is given into records.
///
/// It writes through: `poll_write` reports bytes taken only once their records
/// are on the socket, so a caller that never flushes (the node) never leaves
/// any behind. When the socket fills after some were sealed, it returns
/// `Pending` and reports them on the next call, which must offer the same
/// bytes again (as every caller that retries after `Pending` does).
pub struct SealedWriter<W> {
    inner: W,
    key: RecordKey,
    next: u64,
    /// Sealed records, `sent..` not on the socket yet.
    out: Vec<u8>,
    sent: usize,
    /// Plaintext bytes sealed into `out` and not reported yet.
    taken: usize,
}

impl<W> SealedWriter<W> {
    pub(super) fn new(inner: W, key: RecordKey) -> Self {
        SealedWriter {
            inner,
            key,
            next: 0,
            out: Vec::new(),
            sent: 0,
            taken: 0,
        }
    }

    /// Seals `plain` into records at the end of `out`.
    fn seal(&mut self, plain: &[u8]) -> io::Result<()> {
        for chunk in plain.chunks(MAX_PLAINTEXT) {
            if self.next > LAST_RECORD {
                return Err(io::Error::other("the link used up its record numbers"));
            }
            let sealed_len = chunk.len() + TAG_LEN;
            self.out
                .extend_from_slice(&(sealed_len as u16).to_be_bytes());
            let at = self.out.len();
            self.out.extend_from_slice(chunk);
            let tag = self
                .key
                .0
                .seal_in_place_separate_tag(
                    RecordKey::nonce(self.next),
                    Aad::empty(),
                    &mut self.out[at..],
                )
                .map_err(|_| io::Error::other("sealing a record failed"))?;
            self.out.extend_from_slice(tag.as_ref());
            self.next += 1;
        }
        Ok(())
    }
}

impl<W> SealedWriter<W> {
    /// The stream it writes to; records not written out yet (see `flush`) are
    /// lost.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite + Unpin> SealedWriter<W> {
    /// Writes the sealed records out, until all are on the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for SealedWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            ready!(this.poll_send(cx))?;
            if this.taken > 0 {
                debug_assert!(
                    buf.len() >= this.taken,
                    "the bytes sealed before were offered again"
                );
                return Poll::Ready(Ok(std::mem::take(&mut this.taken)));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let n = buf.len().min(SEAL_BATCH);
            this.seal(&buf[..n])?;
            this.taken = n;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
