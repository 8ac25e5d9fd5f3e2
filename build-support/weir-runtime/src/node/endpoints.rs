//! External endpoints as the node holds them before the flow's sources take
//! them: sockets bound at start, and clients a harness hands over in-process.
//! (`external` serves them; it builds on the node, never the other way.)

use crate::error::{Error, Result};
use crate::transport::{PeerReader, PeerWriter};

/// A client connection made in-process by a harness (no socket): its name
/// for log lines, what it sends, and where its replies go.
pub struct InProcessClient {
    /// Its name in log lines, as a socket's address would be.
    pub peer: String,
    /// What the client sends.
    pub reader: PeerReader,
    /// Where its replies go.
    pub writer: PeerWriter,
}

/// A non-blocking socket listening at `address` for the clients of endpoint
/// `what`.
pub(crate) fn bind_endpoint(what: &str, address: &str) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            Error::new(format!(
                "cannot listen for the clients of {what} on {address}: {e}"
            ))
        })
}
