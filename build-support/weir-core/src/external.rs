//! External clients: programs that are not Weir instances (a `redis-cli`, a
//! browser, a load generator) talking to a flow over TCP in their own protocol.
//!
//! A flow declares an endpoint at a location with a [`ClientCodec`]; each
//! instance there listens on the address the topology gives it, and the flow
//! sees `(ConnectionId, ClientEvent)` records and answers with
//! `(ConnectionId, reply)` records.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One client connection to one instance, unique for the instance's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What happened on a client connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientEvent<R> {
    /// A client connected; its replies may be sent from now on.
    Opened,
    /// One decoded request, in the order the client sent them.
    Request(R),
    /// The connection ended: the client closed it, sent bad input, or stopped
    /// reading its replies. Replies to it are dropped from now on.
    Closed,
}

/// Why a client's bytes cannot be decoded: the connection is closed, and the
/// message is logged with the client's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client protocol: how bytes from a client become requests, and replies
/// become bytes. One value per endpoint; each connection decodes with a clone
/// of it (on a task of its own), and replies are encoded with another.
pub trait ClientCodec: Clone + Send + 'static {
    /// A decoded request: the flow gets `(ConnectionId, ClientEvent::Request(request))`.
    type Request: Send + 'static;
    /// A reply: the flow sends `(ConnectionId, reply)` back.
    type Reply;

    /// Decodes the request at the front of `bytes`: the request and how many
    /// bytes it used, `None` if it is not all there yet, or why it is bad.
    fn decode(&mut self, bytes: &[u8]) -> Result<Option<(Self::Request, usize)>, BadInput>;

    /// Appends the bytes of `reply` to `out`.
    fn encode(&mut self, reply: Self::Reply, out: &mut Vec<u8>);
}
