//! Why a deployment failed: every module's error, depending on none of them.

use std::fmt;

/// Why a deployment failed, naming the instance where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployError {
    message: String,
}

impl DeployError {
    /// An error saying `message`: for a deploy script's own failures (a
    /// client that got the wrong answer, say), reported like the others.
    pub fn new(message: impl Into<String>) -> Self {
        DeployError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeployError {}
