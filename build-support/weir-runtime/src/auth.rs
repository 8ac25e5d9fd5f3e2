//! The deployment key, and the keys an instance accepts while it is rotated.
//!
//! Every deployment has one secret [`Key`]. It never travels: links use it as
//! the pre-shared key of their Noise handshake (`secure`), which fails unless
//! both ends hold the same key. During a rotation an instance holds two
//! ([`KeyRing`]): the next key and the one it replaces.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Secrets shorter than this are refused: they could be guessed.
pub const MIN_KEY_LEN: usize = 16;

/// The length of the pre-shared key a [`Key`] gives the Noise handshake.
pub const PSK_LEN: usize = 32;

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

    /// The 32-byte pre-shared key for link handshakes: the secret is any
    /// length of at least [`MIN_KEY_LEN`], so it is put through HMAC-SHA256
    /// under a label that names its use.
    pub fn psk(&self) -> [u8; PSK_LEN] {
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(b"weir link psk v1");
        mac.finalize().into_bytes().into()
    }
}

/// The keys an instance holds: the deployment key, and during a rotation the
/// key it replaces (`--previous-key-file`), still accepted from peers that
/// have not been given the new one yet.
#[derive(Debug, Clone)]
pub struct KeyRing {
    /// The deployment key: this instance's links use it.
    pub current: Key,
    /// The key being replaced, accepted from peers that still use it.
    pub previous: Option<Key>,
}

impl KeyRing {
    /// The keys a connecting peer may hold, the current one first.
    pub fn accepted(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The keys to try, in order, when dialing a peer. The previous key first:
    /// while a rotation is under way every instance still accepts it (those not
    /// yet given the new key accept nothing else); only once a peer has
    /// finished its rotation does the current key take over.
    pub fn to_dial(&self) -> impl Iterator<Item = &Key> {
        self.previous.iter().chain(std::iter::once(&self.current))
    }
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
    fn equal_secrets_give_equal_psks_and_others_differ() {
        assert_eq!(
            key("0123456789abcdef0123").psk(),
            key("0123456789abcdef0123").psk()
        );
        assert_ne!(
            key("0123456789abcdef0123").psk(),
            key("another key of 16+ bytes").psk()
        );
    }

    #[test]
    fn during_a_rotation_the_previous_key_is_dialed_first_and_both_accepted() {
        let ring = KeyRing {
            current: key("the next key, 16+ bytes"),
            previous: Some(key("the old key, 16+ bytes")),
        };
        let psks = |keys: Vec<&Key>| keys.iter().map(|k| k.psk()).collect::<Vec<_>>();
        assert_eq!(
            psks(ring.to_dial().collect()),
            psks(vec![ring.previous.as_ref().unwrap(), &ring.current])
        );
        assert_eq!(
            psks(ring.accepted().collect()),
            psks(vec![&ring.current, ring.previous.as_ref().unwrap()])
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Key::from_secret(b"short").is_err());
    }

    #[test]
    fn generated_keys_are_private_load_back_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.key");
        let made = Key::generate(&path).unwrap();
        let loaded = Key::load(&path).unwrap();
        assert_eq!(loaded.psk(), made.psk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Key::generate(&path).is_err());
    }
}
