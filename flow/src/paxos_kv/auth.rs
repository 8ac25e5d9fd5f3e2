//! Redis `AUTH`: with a password (the file `PAXOS_KV_PASSWORD_FILE` names,
//! given to the proposers), a client must send `AUTH password` (or `AUTH
//! default password`) before anything else, as `redis-cli -a` and
//! `redis-benchmark -a` do; until then every command is answered `-NOAUTH`.

use super::resp::Reply;
use weir::ClusterId;

/// What an unauthenticated client is told, as Redis tells it.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The password clients must give.
#[derive(Clone)]
pub struct Password(Vec<u8>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn new(password: &[u8]) -> Password {
        Password(password.to_vec())
    }

    /// The password in the file `PAXOS_KV_PASSWORD_FILE` names (without
    /// trailing whitespace), or none when it is not set. A file that cannot
    /// be read ends the proposer: serving without the password asked for
    /// would let anyone in.
    pub fn from_env(me: ClusterId) -> Option<Password> {
        let path = std::env::var_os("PAXOS_KV_PASSWORD_FILE")?;
        match std::fs::read(&path) {
            Ok(bytes) if !bytes.trim_ascii().is_empty() => {
                Some(Password(bytes.trim_ascii_end().to_vec()))
            }
            outcome => {
                let why = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "the file is empty".to_string(),
                };
                eprintln!(
                    "error: proposer/{me}: PAXOS_KV_PASSWORD_FILE={}: {why}",
                    std::path::Path::new(&path).display()
                );
                std::process::exit(2);
            }
        }
    }

    /// Whether `given` is the password; the time taken depends on the
    /// lengths only, not on where they differ.
    fn matches(&self, given: &[u8]) -> bool {
        self.0.len() == given.len()
            && self.0.iter().zip(given).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }
}

/// Answers `AUTH args...`: the reply, and whether the client is now in.
pub fn answer(password: Option<&Password>, args: &[Vec<u8>]) -> (Reply, bool) {
    let given = match args {
        [password] => password,
        [user, password] if user == b"default" => password,
        [_, _] => return (Reply::Error(WRONGPASS.into()), false),
        _ => {
            return (
                Reply::Error("ERR wrong number of arguments for 'auth' command".into()),
                false,
            )
        }
    };
    match password {
        None => (
            Reply::Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into()),
            false,
        ),
        Some(password) if password.matches(given) => (Reply::Ok, true),
        Some(_) => (Reply::Error(WRONGPASS.into()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Vec<u8>> {
        text.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_password_lets_in_and_nothing_else_does() {
        let password = Password::new(b"s3cret");
        assert_eq!(answer(Some(&password), &args("s3cret")), (Reply::Ok, true));
        assert_eq!(
            answer(Some(&password), &args("default s3cret")),
            (Reply::Ok, true)
        );
        for wrong in ["s3cre", "s3cret!", "S3cret", "admin s3cret"] {
            let (reply, ok) = answer(Some(&password), &args(wrong));
            assert!(
                !ok && reply == Reply::Error(WRONGPASS.into()),
                "{wrong}: {reply:?}"
            );
        }
        let (reply, ok) = answer(None, &args("anything"));
        assert!(
            !ok && matches!(reply, Reply::Error(e) if e.contains("without any password configured"))
        );
    }
}
