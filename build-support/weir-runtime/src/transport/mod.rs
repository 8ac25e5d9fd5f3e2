//! Links between instances, behind an interface.
//!
//! A [`Transport`] turns a [`LinkPlan`] (who I am, whom I talk to, where they
//! listen) into [`Links`]: a stream of [`LinkEvent`]s. Each link announces
//! itself with [`LinkEvent::Up`], which hands the node the link's two byte
//! streams: the node writes the peer's frames to one and reads (and parses, in
//! place) the peer's frames from the other itself, with no task or queue in
//! between. A tolerated peer may come up late, go down and come up again (a new
//! link), so the node learns of links as they come, never from a fixed list. The
//! [`Node`](crate::Node) and the generated code see nothing else, so an
//! in-process simulated network can stand in for [`Tcp`] without changing them.

mod handshake;
mod tcp;

use crate::auth::KeyRing;
use crate::error::Result;
use crate::spec::{ChannelDecl, InstanceId};
use crate::wire::ChannelMap;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use tcp::Tcp;

/// A peer to link with.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    /// Its role and index.
    pub id: InstanceId,
    /// `worker/1` or `leader`, for messages.
    pub name: String,
    /// Where it listens, from the topology.
    pub address: String,
    /// Whether we open the connection (else the peer does). Exactly one side of
    /// each pair dials: the one whose (role, index) sorts first.
    pub dial: bool,
    /// Whether this instance goes on without the peer: it need not be up at
    /// start, its loss ends only its part of the flow, and it may rejoin.
    pub tolerated: bool,
}

/// Everything a transport needs to link one instance with its peers.
#[derive(Debug, Clone)]
pub struct LinkPlan {
    /// This instance's role and index.
    pub me: InstanceId,
    /// This instance's name in messages: `leader`, `worker/1`.
    pub me_name: String,
    /// Which run of this instance this is: later runs have larger numbers, so
    /// peers refuse connections left over from an earlier one.
    pub incarnation: u64,
    /// Where to listen for peers (`--listen`, else its topology address).
    pub listen: String,
    /// Every instance it exchanges records with.
    pub peers: Vec<PeerPlan>,
    /// The flow's name, which a hello carries.
    pub flow: &'static str,
    /// Every channel of the flow: a hello lists those between the two roles.
    pub channels: &'static [ChannelDecl],
    /// How long to keep trying to reach (or wait for) every peer that is not
    /// tolerated.
    pub connect_timeout: Duration,
    /// How long a tolerated peer may stay silent before its link is dropped
    /// (the node watches; keepalives go out four times as often).
    pub peer_timeout: Duration,
    /// The largest frame payload a peer may send (`--max-frame`).
    pub max_frame: u32,
    /// The deployment key (and, during a rotation, the one before it) that
    /// protects every link; `None` runs without protection (only when asked
    /// for explicitly).
    pub keys: Option<KeyRing>,
}

/// What a peer's hello told us, once accepted.
#[derive(Debug)]
pub struct Met {
    /// Which run of the peer it is.
    pub incarnation: u64,
    /// The peer's channel numbers as ours.
    pub channels: ChannelMap,
}

/// A link's number: each new connection with a peer gets the next one, so the
/// node can tell a stale link's events from the current one's.
pub type LinkId = u32;

/// Something that happened to the links. `peer` indexes [`LinkPlan::peers`].
pub enum LinkEvent {
    /// A link with the peer is up: the node writes the peer's frames to
    /// `writer` and reads the peer's from `reader`. A link the peer had before
    /// (if any) is over.
    Up {
        /// The peer, by its index in the plan.
        peer: usize,
        /// This link's number.
        link: LinkId,
        /// Where the peer's frames go.
        writer: PeerWriter,
        /// Where its frames come from.
        reader: PeerReader,
        /// Which run of the peer it is.
        incarnation: u64,
        /// The peer's channel numbers as ours (its build may number them
        /// otherwise).
        channels: ChannelMap,
    },
    /// This instance cannot go on (a peer that proved it belongs to the
    /// deployment runs another build, say).
    Fatal {
        /// What to report as the instance exits.
        reason: String,
    },
}

/// Links to the peers of a [`LinkPlan`], as they come and go. The transport
/// returns them once every peer that is not tolerated is up (its `Up` event
/// is queued); tolerated peers link whenever they can.
pub struct Links {
    /// What happens to the links, in order.
    pub events: mpsc::UnboundedReceiver<LinkEvent>,
    /// Where the node says it dropped a link (it ended, broke, or the peer went
    /// silent): if the transport dials that peer, it dials again.
    pub dropped: mpsc::UnboundedSender<(usize, LinkId)>,
}

/// The sending side of a link.
pub type PeerWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// The receiving side of a link.
pub type PeerReader = Box<dyn AsyncRead + Send + Unpin>;

/// Establishes links.
pub trait Transport {
    /// Links with the plan's peers: returns once every peer that is not
    /// tolerated is up.
    fn connect(&self, plan: &LinkPlan) -> impl Future<Output = Result<Links>>;
}
