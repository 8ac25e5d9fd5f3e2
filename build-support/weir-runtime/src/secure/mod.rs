//! Protected links: a Noise handshake keyed by the deployment key, then sealed
//! records (`record`).
//!
//! The protocol is `Noise_NNpsk0_25519_AESGCM_SHA256` (ring's AES-GCM and
//! SHA-256; docs/RELIABILITY.md says why): both sides make a
//! fresh X25519 key pair per connection (forward secrecy: a key file stolen
//! later opens no recorded link), and the deployment key is mixed in as the
//! pre-shared key before anything is sent, so a side without it can neither
//! open the other's first message nor make one that opens. The hellos (flow
//! hash, role, index, incarnation) travel as the handshake's encrypted payloads.
//!
//! 1. The dialer sends `e` with its hello, sealed under the key.
//! 2. The acceptor opens it (trying its previous key too, during a rotation),
//!    and answers `e, ee` with its hello or an authenticated refusal.
//! 3. The dialer checks the answer and sends its first record: `Ready`, or a
//!    refusal. Only that record, which needs the dialer's ephemeral key, shows
//!    the acceptor a live dialer and not a replayed first message.
//!
//! Without a key (`--insecure-no-auth`) the hellos travel in clear and so does
//! everything after them.

mod record;

use record::RecordKey;
pub use record::{IntegrityError, SealedReader, SealedWriter, RECORD_HEADER};

use crate::auth::{Key, KeyRing};
use crate::frame::{Handshake, HandshakeError};
use snow::HandshakeState;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The Noise protocol every protected link speaks.
pub const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_AESGCM_SHA256";
/// Bound into the handshake hash: a Noise handshake of another protocol (or
/// another version of this one) with the same key never completes.
const PROLOGUE: &[u8] = b"weir link v5";

/// The longest Noise message (the Noise maximum): a hello is a few hundred bytes.
const MAX_HANDSHAKE_MESSAGE: usize = u16::MAX as usize;

/// A sealed link's halves over TCP.
pub type Sealed = (SealedReader<OwnedReadHalf>, SealedWriter<OwnedWriteHalf>);

/// A fresh handshake under `key`'s pre-shared key.
fn handshake(key: &Key, initiator: bool) -> HandshakeState {
    let psk = key.psk();
    let builder = snow::Builder::new(NOISE_PARAMS.parse().expect("a valid Noise protocol name"))
        .prologue(PROLOGUE)
        .and_then(|b| b.psk(0, &psk))
        .expect("NNpsk0 takes a prologue and a psk at 0");
    let state = if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    };
    state.expect("the resolver has every primitive of NOISE_PARAMS")
}

/// The keys of a finished handshake, for one end: one seals what it sends,
/// the other opens what it receives.
pub struct Session {
    sending: [u8; 32],
    receiving: [u8; 32],
}

impl Session {
    fn new(mut state: HandshakeState) -> Session {
        assert!(
            state.is_handshake_finished(),
            "keys are split once the handshake is finished"
        );
        // Noise's split: the first key is the initiator's (the dialer's) to send with.
        let (dialer_sends, acceptor_sends) = state.dangerously_get_raw_split();
        let (sending, receiving) = if state.is_initiator() {
            (dialer_sends, acceptor_sends)
        } else {
            (acceptor_sends, dialer_sends)
        };
        Session { sending, receiving }
    }

    /// Opens the records `inner` delivers.
    pub fn reader<R>(&self, inner: R) -> SealedReader<R> {
        SealedReader::new(inner, RecordKey::new(&self.receiving))
    }

    /// Seals what is written into records for `inner`.
    pub fn writer<W>(&self, inner: W) -> SealedWriter<W> {
        SealedWriter::new(inner, RecordKey::new(&self.sending))
    }
}

/// Both ends of a handshake under `key`, run in memory: the dialer's session
/// and the acceptor's (for tests, fuzzing and benchmarks of the record layer).
pub fn sessions_in_memory(key: &Key) -> (Session, Session) {
    let (dialer, acceptor) = handshake_in_memory(key);
    (Session::new(dialer), Session::new(acceptor))
}

/// Both ends of a finished handshake under `key`, run in memory.
fn handshake_in_memory(key: &Key) -> (HandshakeState, HandshakeState) {
    let (mut dialer, mut acceptor) = (handshake(key, true), handshake(key, false));
    let (mut message, mut payload) = (
        vec![0u8; MAX_HANDSHAKE_MESSAGE],
        vec![0u8; MAX_HANDSHAKE_MESSAGE],
    );
    let mut pass = |from: &mut HandshakeState, to: &mut HandshakeState| {
        let len = from
            .write_message(b"", &mut message)
            .expect("an empty payload fits");
        to.read_message(&message[..len], &mut payload)
            .expect("same key, same protocol");
    };
    pass(&mut dialer, &mut acceptor);
    pass(&mut acceptor, &mut dialer);
    (dialer, acceptor)
}

/// Both directions of a finished handshake: sealed halves of `stream`.
fn seal(state: HandshakeState, stream: TcpStream) -> Sealed {
    let session = Session::new(state);
    let (read, write) = stream.into_split();
    (session.reader(read), session.writer(write))
}

/// Writes one Noise message of `state` carrying `payload`, in its envelope.
async fn send_noise(
    state: &mut HandshakeState,
    payload: &Handshake,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut message = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let len = state
        .write_message(&payload.encode(), &mut message)
        .map_err(|e| std::io::Error::other(format!("Noise handshake: {e}")))?;
    message.truncate(len);
    stream
        .write_all(&Handshake::Noise { message }.encode())
        .await
}

/// Opens a Noise message's payload: a handshake message of its own.
fn open_payload(
    state: &mut HandshakeState,
    message: &[u8],
) -> Option<Result<Handshake, HandshakeError>> {
    let mut payload = vec![0u8; message.len()];
    let len = state.read_message(message, &mut payload).ok()?;
    Some(Handshake::decode(&payload[..len]))
}

/// Why dialing did not give a link.
#[derive(Debug)]
pub enum DialError {
    /// The acceptor refused in clear, before it knew who we are: our first
    /// message did not open under any key it holds, or it runs without one.
    RefusedInClear(String),
    /// The connection ended or broke, or said something that is not this
    /// handshake (an attacker on the path can cause this, so it is retried).
    Broken(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::RefusedInClear(reason) => write!(f, "refused the connection: {reason}"),
            DialError::Broken(reason) => f.write_str(reason),
        }
    }
}

/// The dialer's side after the acceptor answered: its answer, checked by the
/// caller, who then confirms or refuses the link.
pub struct Dialed {
    /// What the acceptor said: its hello, or why it refuses the link. Both
    /// came sealed: only a holder of the key could have said them.
    pub answer: Handshake,
    sealed: Sealed,
}

impl Dialed {
    /// Takes the link: tells the acceptor (the first record), and returns it.
    pub async fn confirm(mut self) -> std::io::Result<Sealed> {
        self.sealed.1.write_all(&Handshake::Ready.encode()).await?;
        Ok(self.sealed)
    }

    /// Turns the link down, telling the acceptor why (best effort).
    pub async fn refuse(mut self, reason: String) {
        let _ = self
            .sealed
            .1
            .write_all(&Handshake::Refusal { reason }.encode())
            .await;
    }
}

/// Dials over `stream`: says `hello` under `key`, and returns the acceptor's
/// answer with the link, not yet confirmed.
pub async fn dial(
    mut stream: TcpStream,
    key: &Key,
    hello: &Handshake,
) -> Result<Dialed, DialError> {
    let broken = |e: &dyn std::fmt::Display| DialError::Broken(e.to_string());
    let mut state = handshake(key, true);
    send_noise(&mut state, hello, &mut stream)
        .await
        .map_err(|e| broken(&e))?;
    let message = match Handshake::read(&mut stream).await.map_err(|e| broken(&e))? {
        Handshake::Noise { message } => message,
        Handshake::Refusal { reason } => return Err(DialError::RefusedInClear(reason)),
        other => {
            return Err(DialError::Broken(format!(
                "answered {} instead of a Noise handshake message",
                other.kind()
            )))
        }
    };
    let answer =
        match open_payload(&mut state, &message) {
            None => return Err(DialError::Broken(
                "its answer does not open under this deployment's key: it was changed on the way"
                    .into(),
            )),
            Some(Err(e)) => return Err(DialError::Broken(format!("its sealed answer: {e}"))),
            Some(Ok(answer)) => answer,
        };
    Ok(Dialed {
        answer,
        sealed: seal(state, stream),
    })
}

/// Why the acceptor could not open a dialer's first message.
#[derive(Debug)]
pub enum OpenError {
    /// No key this instance holds opens it: the dialer holds another key.
    NoKey,
    /// It opened, but what it carries is not a handshake message.
    Malformed(HandshakeError),
}

/// A dialer's first message, opened: its hello, waiting for an answer.
pub struct Opened {
    /// What the dialer said (a hello, unless it is broken).
    pub hello: Handshake,
    state: HandshakeState,
}

impl Opened {
    /// Opens `message` (the dialer's first Noise message) with each key of
    /// `keys` in turn.
    pub fn open(keys: &KeyRing, message: &[u8]) -> Result<Opened, OpenError> {
        for key in keys.accepted() {
            let mut state = handshake(key, false);
            match open_payload(&mut state, message) {
                None => continue,
                Some(Err(e)) => return Err(OpenError::Malformed(e)),
                Some(Ok(hello)) => return Ok(Opened { hello, state }),
            }
        }
        Err(OpenError::NoKey)
    }

    /// Answers with our `hello`, then waits for the dialer to take the link
    /// (its first record). Returns the link, or why there is none.
    pub async fn welcome(
        mut self,
        hello: &Handshake,
        mut stream: TcpStream,
    ) -> Result<Sealed, String> {
        send_noise(&mut self.state, hello, &mut stream)
            .await
            .map_err(|e| e.to_string())?;
        let (mut reader, writer) = seal(self.state, stream);
        match Handshake::read(&mut reader).await {
            Ok(Handshake::Ready) => Ok((reader, writer)),
            Ok(Handshake::Refusal { reason }) => Err(format!("it turned the link down: {reason}")),
            Ok(other) => Err(format!(
                "it sent {} where its first record belongs",
                other.kind()
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Answers with a refusal only a holder of the key can read or forge.
    pub async fn refuse(mut self, reason: String, mut stream: TcpStream) {
        let _ = send_noise(&mut self.state, &Handshake::Refusal { reason }, &mut stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Records are Noise transport messages exactly: snow's own transport
    /// opens what a sealed writer wrote, and a sealed reader opens what snow
    /// wrote, in both directions of one link.
    #[tokio::test]
    async fn records_are_noise_transport_messages() {
        let key = Key::from_secret(b"a deployment key of 16+ bytes").unwrap();
        let (dialer, acceptor) = handshake_in_memory(&key);
        let ours = Session::new(dialer);
        let mut snow_side = acceptor.into_transport_mode().unwrap();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 255) as u8).collect();

        let mut writer = ours.writer(Vec::new());
        writer.write_all(&plain).await.unwrap();
        writer.flush().await.unwrap();
        let wire = writer.into_inner();
        let (mut opened, mut at, mut out) = (Vec::new(), 0, vec![0u8; 65535]);
        while at < wire.len() {
            let len = u16::from_be_bytes([wire[at], wire[at + 1]]) as usize;
            let n = snow_side
                .read_message(&wire[at + 2..at + 2 + len], &mut out)
                .expect("snow opens a sealed writer's record");
            opened.extend_from_slice(&out[..n]);
            at += 2 + len;
        }
        assert_eq!(opened, plain);

        let mut wire = Vec::new();
        for chunk in plain.chunks(9_000) {
            let n = snow_side.write_message(chunk, &mut out).unwrap();
            wire.extend_from_slice(&(n as u16).to_be_bytes());
            wire.extend_from_slice(&out[..n]);
        }
        let mut read = Vec::new();
        ours.reader(&wire[..]).read_to_end(&mut read).await.unwrap();
        assert_eq!(read, plain);
    }
}
