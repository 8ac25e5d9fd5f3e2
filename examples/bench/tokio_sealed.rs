//! The tokio counterpart's protected connections, written as one would by
//! hand with `snow`: the suite of Weir's links (`NOISE_PARAMS`, the
//! deployment key's PSK), each handshake message and
//! record after a u16 length. A write seals up to one record's worth and is
//! sent out on the next write or flush (as tokio-rustls does); a read opens
//! whole records.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use weir_runtime::secure::NOISE_PARAMS;

const MAX_RECORD: usize = 65535;
const TAG: usize = 16;

pub struct Sealed {
    tcp: TcpStream,
    noise: snow::TransportState,
    /// Sealed bytes not yet written, from `sent`.
    out: Vec<u8>,
    sent: usize,
    /// Sealed bytes read (opened up to `raw_at`), and opened bytes not yet
    /// handed out (from `at`).
    raw: Vec<u8>,
    raw_at: usize,
    plain: Vec<u8>,
    at: usize,
}

async fn send_message(tcp: &mut TcpStream, message: &[u8]) {
    tcp.write_u16(message.len() as u16).await.unwrap();
    tcp.write_all(message).await.unwrap();
}

async fn read_message(tcp: &mut TcpStream) -> Vec<u8> {
    let len = tcp.read_u16().await.unwrap() as usize;
    let mut message = vec![0; len];
    tcp.read_exact(&mut message).await.unwrap();
    message
}

/// Runs the handshake over `tcp` with the key in `key_file`.
pub async fn handshake(mut tcp: TcpStream, key_file: &Path, dialer: bool) -> Sealed {
    let psk = weir_runtime::auth::Key::load(key_file).unwrap().psk();
    let builder = snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .psk(0, &psk)
        .unwrap();
    let (mut message, mut payload) = (vec![0u8; MAX_RECORD], vec![0u8; MAX_RECORD]);
    let noise = if dialer {
        let mut state = builder.build_initiator().unwrap();
        let n = state.write_message(&[], &mut message).unwrap();
        send_message(&mut tcp, &message[..n]).await;
        state
            .read_message(&read_message(&mut tcp).await, &mut payload)
            .unwrap();
        state.into_transport_mode().unwrap()
    } else {
        let mut state = builder.build_responder().unwrap();
        state
            .read_message(&read_message(&mut tcp).await, &mut payload)
            .unwrap();
        let n = state.write_message(&[], &mut message).unwrap();
        send_message(&mut tcp, &message[..n]).await;
        state.into_transport_mode().unwrap()
    };
    Sealed {
        tcp,
        noise,
        out: Vec::new(),
        sent: 0,
        raw: Vec::new(),
        raw_at: 0,
        plain: Vec::new(),
        at: 0,
    }
}

impl Sealed {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.sent..]))?;
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Sealed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        let n = buf.len().min(MAX_RECORD - TAG);
        this.out.resize(2 + n + TAG, 0);
        this.out[..2].copy_from_slice(&((n + TAG) as u16).to_be_bytes());
        this.noise
            .write_message(&buf[..n], &mut this.out[2..])
            .unwrap();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

impl AsyncRead for Sealed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.at);
                buf.put_slice(&this.plain[this.at..this.at + n]);
                this.at += n;
                return Poll::Ready(Ok(()));
            }
            let sealed = &this.raw[this.raw_at..];
            if sealed.len() >= 2 {
                let len = u16::from_be_bytes([sealed[0], sealed[1]]) as usize;
                if sealed.len() >= 2 + len {
                    this.plain.resize(len, 0);
                    let n = this
                        .noise
                        .read_message(&sealed[2..2 + len], &mut this.plain)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    this.plain.truncate(n);
                    this.at = 0;
                    this.raw_at += 2 + len;
                    continue;
                }
            }
            // Read more, after what is left of a record.
            this.raw.drain(..this.raw_at);
            this.raw_at = 0;
            let have = this.raw.len();
            this.raw.resize(have + 64 * 1024, 0);
            let mut read = ReadBuf::new(&mut this.raw[have..]);
            let polled = Pin::new(&mut this.tcp).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.raw.truncate(have + n);
            ready!(polled)?;
            if n == 0 {
                return Poll::Ready(Ok(())); // the end
            }
        }
    }
}
