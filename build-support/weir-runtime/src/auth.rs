//! Proving that both ends of a link belong to the same deployment.
//!
//! Every deployment has one secret [`Key`]. When a connection opens, each side
//! sends a fresh random nonce in its hello; then each proves it holds the key with
//! an HMAC-SHA256 tag over both hellos (the transcript), labelled with its side so
//! that one side's tag is never valid for the other. Tags are compared in constant
//! time. A peer without the key never gets a frame into the dataflow.
//!
//! This authenticates peers when they connect. It does not encrypt or sign the
//! frames that follow: an attacker who can alter traffic on the path can still
//! read or change it (see docs/RELIABILITY.md).

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;

pub const NONCE_LEN: usize = 32;
pub const TAG_LEN: usize = 32;
pub type Nonce = [u8; NONCE_LEN];
pub type Tag = [u8; TAG_LEN];

/// Secrets shorter than this are refused: they could be guessed.
pub const MIN_KEY_LEN: usize = 16;

/// Which end of a connection computes a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The instance that opened the connection.
    Dialer,
    /// The instance that accepted it.
    Acceptor,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Dialer => b"weir handshake v2: dialer",
            Side::Acceptor => b"weir handshake v2: acceptor",
        }
    }
}

/// A deployment's shared secret.
#[derive(Clone)]
pub struct Key {
    secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// A key from secret bytes (at least [`MIN_KEY_LEN`] of them).
    pub fn from_secret(secret: &[u8]) -> Result<Key> {
        if secret.len() < MIN_KEY_LEN {
            return Err(Error::new(format!(
                "the key is {} bytes long; at least {MIN_KEY_LEN} are needed",
                secret.len()
            )));
        }
        Ok(Key {
            secret: secret.to_vec(),
        })
    }

    /// Reads a key file: its bytes are the secret, without trailing whitespace
    /// (so `openssl rand -hex 32 > weir.key` makes a good one). Warns when the file
    /// can be read by other users.
    pub fn load(path: &Path) -> Result<Key> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(format!("cannot read the key file {}: {e}", path.display())))?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let key = Key::from_secret(&bytes[..end])
            .map_err(|e| Error::new(format!("key file {}: {e}", path.display())))?;
        if let Some(mode) = shared_mode(path) {
            eprintln!(
                "warning: key file {} can be read by other users (mode {mode:04o}); `chmod 600` it",
                path.display()
            );
        }
        Ok(key)
    }

    /// Writes a new random key to `path`, readable by its owner only. Fails if
    /// the file exists: a key is never overwritten.
    pub fn generate(path: &Path) -> Result<Key> {
        let mut secret = [0u8; 32];
        fill_random(&mut secret)?;
        let text: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(path)
            .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()));
        written.map_err(|e| {
            Error::new(format!("cannot write the key file {}: {e}", path.display()))
        })?;
        Key::from_secret(text.as_bytes())
    }

    /// The tag `side` sends to prove it holds this key, over `transcript`.
    pub fn tag(&self, side: Side, transcript: &[u8]) -> Tag {
        self.mac(side, transcript).finalize().into_bytes().into()
    }

    /// Whether `tag` is `side`'s tag over `transcript` (in constant time).
    pub fn verify(&self, side: Side, transcript: &[u8], tag: &Tag) -> bool {
        self.mac(side, transcript).verify_slice(tag).is_ok()
    }

    fn mac(&self, side: Side, transcript: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(side.label());
        mac.update(transcript);
        mac
    }
}

/// A fresh random nonce for a hello.
pub fn nonce() -> Result<Nonce> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    Ok(nonce)
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::new(format!("the system's random source failed: {e}")))
}

/// The file's permission bits, if group or others may read it.
fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> Key {
        Key::from_secret(secret.as_bytes()).unwrap()
    }

    #[test]
    fn a_tag_verifies_only_with_the_same_key_side_and_transcript() {
        let k = key("0123456789abcdef0123");
        let tag = k.tag(Side::Dialer, b"hellos");
        assert!(k.verify(Side::Dialer, b"hellos", &tag));
        assert!(!k.verify(Side::Acceptor, b"hellos", &tag), "sides differ");
        assert!(
            !k.verify(Side::Dialer, b"hellot", &tag),
            "transcript differs"
        );
        assert!(!key("another key of 16+ bytes").verify(Side::Dialer, b"hellos", &tag));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Key::from_secret(b"short").is_err());
    }

    #[test]
    fn generated_keys_are_private_load_back_and_are_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("weir-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weir.key");
        let _ = std::fs::remove_file(&path);
        let made = Key::generate(&path).unwrap();
        let loaded = Key::load(&path).unwrap();
        assert!(loaded.verify(Side::Acceptor, b"t", &made.tag(Side::Acceptor, b"t")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Key::generate(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
