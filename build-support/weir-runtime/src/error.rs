//! The one error type of a role program: a message meant for the person running it.

use std::fmt;

/// Why a role program stopped. The message names the problem and where it is
/// (file and line, peer and address, channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

/// A result whose error is the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error that says `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
