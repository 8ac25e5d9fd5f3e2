//! External clients: an endpoint where programs that are not Weir instances
//! connect in their own protocol (RESP, HTTP, lines of text, ...).
//!
//! ```
//! use weir::*;
//! # #[derive(Clone)] struct Lines;
//! # impl ClientCodec for Lines {
//! #     type Request = String; type Reply = String;
//! #     fn decode(&mut self, b: &[u8]) -> Result<Option<(String, usize)>, BadInput> {
//! #         Ok(b.iter().position(|&c| c == b'\n')
//! #             .map(|n| (String::from_utf8_lossy(&b[..n]).into_owned(), n + 1)))
//! #     }
//! #     fn encode(&mut self, r: String, out: &mut Vec<u8>) { out.extend(r.bytes()); out.push(b'\n'); }
//! # }
//! pub fn echo(flow: &FlowBuilder) {
//!     let server = flow.process("server");
//!     let (requests, replies) = flow.source_external(&server, "clients", q!(Lines));
//!     requests
//!         .filter_map(q!(|(conn, event)| match event {
//!             ClientEvent::Request(line) => Some((conn, line.to_uppercase())),
//!             _ => None,
//!         }))
//!         .send_external(replies);
//! }
//! # let flow = FlowBuilder::new();
//! # echo(&flow);
//! # assert!(flow.finish().errors.is_empty());
//! ```
//!
//! Each instance of the location listens on its address under `clients` in
//! the topology (`[server] addresses = [..] clients = ["127.0.0.1:6000"]`).
//! Requests of one connection arrive in order, between its `Opened` and
//! `Closed`; replies go out in the order they are sent. Bad input closes that
//! client's connection (logged), and never the flow.

use crate::builder::FlowBuilder;
use crate::ir::{NodeId, Operator};
use crate::level::Unbounded;
use crate::location::Location;
use crate::order::NoOrder;
use crate::quote::IntoQuoted;
use crate::stream::{Collection, Stream};
use std::marker::PhantomData;
use std::panic::Location as Caller;
pub use weir_core::{BadInput, ClientCodec, ClientEvent, ConnectionId};

/// Where the replies of an external endpoint go: pass it to
/// [`Stream::send_external`] once.
#[must_use = "answer the endpoint's clients with `.send_external(replies)`"]
pub struct ExternalReplies<'a, R, L> {
    source: NodeId,
    location: L,
    _marker: Marker<'a, R>,
}

type Marker<'a, R> = PhantomData<(fn(R), &'a FlowBuilder)>;

impl FlowBuilder {
    /// An endpoint for external clients at `location`, called `name` in the
    /// topology, speaking the protocol of `codec` (a `q!(..)` of a
    /// [`ClientCodec`]). Returns what the clients send, and where replies go.
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn source_external<'a, L, C>(
        &'a self,
        location: &L,
        name: &str,
        codec: impl IntoQuoted<C>,
    ) -> (
        Stream<'a, (ConnectionId, ClientEvent<C::Request>), L, Unbounded, NoOrder>,
        ExternalReplies<'a, C::Reply, L>,
    )
    where
        L: Location<'a>,
        C: ClientCodec,
    {
        let at = Caller::caller();
        let codec = self.quoted(codec, at);
        self.check_endpoint_name(location.id(), name, at);
        let op = Operator::SourceExternal {
            name: name.to_string(),
        };
        let requests: Stream<'a, _, L, Unbounded, NoOrder> =
            self.source(location, op, vec![codec], at);
        let replies = ExternalReplies {
            source: requests.node(),
            location: location.clone(),
            _marker: PhantomData,
        };
        (requests, replies)
    }
}

impl<'a, R, L: Location<'a>, B, O> Stream<'a, (ConnectionId, R), L, B, O> {
    /// Sends each reply to the client connection it names, encoded with the
    /// endpoint's codec. Replies to a connection that has closed are dropped.
    #[track_caller]
    pub fn send_external(self, replies: ExternalReplies<'a, R, L>) {
        let at = Caller::caller();
        let flow = self.flow();
        if replies.location.id() != self.location().id() {
            flow.error(
                at,
                format!(
                    "`send_external` at `{}` to an endpoint at `{}`: replies leave from the location the clients connect to",
                    flow.location_name(self.location().id()),
                    flow.location_name(replies.location.id())
                ),
            );
        }
        let op = Operator::SendExternal {
            source: replies.source,
        };
        let _: Stream<'a, (), L, B, O> = self.derive(op, &[], Vec::new(), at);
    }
}
