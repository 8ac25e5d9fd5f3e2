//! The peers of a node and their links: links coming up (at start, late, or
//! again after a restart), links lost, and the membership events that follow.
//!
//! A peer that is not tolerated must be up before the first tick, and losing
//! it fails the instance. A tolerated peer may come up at any time; losing it
//! ends its part of every channel (records to it are dropped and counted) and
//! the node goes on.

use super::{Node, LOOPBACK};
use crate::error::{Error, Result};
use crate::frame::ReadBuffer;
use crate::spec::{RoleKind, RoleSpec};
use crate::transport::{LinkEvent, LinkId, PeerPlan, PeerReader, PeerWriter};
use crate::wire::ChannelMap;
use crate::witness::Witness;
use tokio::time::Instant;
use weir_core::{ClusterId, Membership};

pub(super) struct Peer {
    pub(super) name: String,
    pub(super) address: String,
    pub(super) role: String,
    pub(super) index: u32,
    /// Whether the peer's role is a cluster (membership events name it).
    in_cluster: bool,
    pub(super) tolerated: bool,
    /// The current link; its events are the only ones taken.
    link: LinkId,
    /// Where frames go while the link is up.
    pub(super) writer: Option<PeerWriter>,
    /// Where the peer's frames come from, until the link ends.
    pub(super) reader: Option<PeerReader>,
    /// What has been read from `reader`: frames are decoded in place.
    pub(super) frames: ReadBuffer,
    /// Frames of `frames` handed to inbound channels and not decoded yet: the
    /// buffer keeps its bytes where they are until this is 0.
    pub(super) held: usize,
    /// How the link's reading ended, seen while reading; handled once the
    /// frames before it are taken.
    pub(super) read_end: Option<ReadEnd>,
    /// When the peer last sent anything (keepalives count).
    pub(super) last_heard: Instant,
    /// Frames queued for this peer, written out in one syscall once they pass
    /// `WRITE_AT` bytes, when the node goes idle, or after `MAX_HELD_TICKS`
    /// busy ticks.
    pub(super) pending: Vec<u8>,
    /// How much of `pending` the socket has taken.
    pub(super) written: usize,
    /// Inbound channels this peer has not closed yet.
    pub(super) open_towards_us: Vec<u32>,
    /// Every inbound channel from the peer's role.
    pub(super) inbound_from: Vec<u32>,
    /// Whether our sending side is shut.
    pub(super) shut: bool,
    /// Records addressed to the peer while it was down or its queue was full.
    pub(super) dropped: u64,
    /// Whether its queue is full (logged once per episode).
    pub(super) full: bool,
    /// A write that failed while the node was waiting, handled after the wait.
    pub(super) broken: Option<std::io::Error>,
    /// Whether it said it was told to stop (on its current link).
    pub(super) stopping: bool,
    /// Its build's channel numbers as ours (on its current link).
    pub(super) channels: ChannelMap,
    ever_up: bool,
}

impl Peer {
    pub(super) fn new(plan: &PeerPlan, spec: &RoleSpec) -> Peer {
        let inbound_from: Vec<u32> = spec
            .channels
            .iter()
            .filter(|c| c.to == spec.role && c.from == plan.id.role)
            .map(|c| c.id)
            .collect();
        Peer {
            name: plan.name.clone(),
            address: plan.address.clone(),
            role: plan.id.role.clone(),
            index: plan.id.index,
            in_cluster: spec.role_decl(&plan.id.role).map(|r| r.kind) == Some(RoleKind::Cluster),
            tolerated: plan.tolerated,
            link: 0,
            writer: None,
            reader: None,
            frames: ReadBuffer::default(),
            held: 0,
            read_end: None,
            last_heard: Instant::now(),
            pending: Vec::new(),
            written: 0,
            open_towards_us: inbound_from.clone(),
            inbound_from,
            shut: false,
            dropped: 0,
            full: false,
            broken: None,
            stopping: false,
            channels: ChannelMap::default(),
            ever_up: false,
        }
    }

    pub(super) fn describe(&self) -> String {
        format!("{} ({})", self.name, self.address)
    }

    pub(super) fn sending_failed(&self, e: &std::io::Error) -> Error {
        Error::new(format!(
            "lost peer {}: sending failed: {e}",
            self.describe()
        ))
    }
}

/// How reading a link ended.
pub(super) enum ReadEnd {
    /// The peer closed its side.
    Closed,
    Failed(std::io::Error),
}

/// A membership stream's events, waiting for its next tick.
pub(super) struct MembershipFeed {
    role: &'static str,
    events: Vec<(ClusterId, Membership)>,
}

/// A `membership()` source: `(member, Joined | Left)` as links with the
/// members of one cluster come and go.
pub struct MembershipSource {
    feed: usize,
    done: bool,
}

impl MembershipSource {
    /// The events since the last tick.
    pub fn chunk(&mut self, node: &mut Node) -> std::vec::IntoIter<(ClusterId, Membership)> {
        let role = node.feeds[self.feed].role;
        self.done |= node.is_stopping() || !node.links_with(role);
        std::mem::take(&mut node.feeds[self.feed].events).into_iter()
    }

    /// Whether no more events can matter: the node is stopping, or no channel
    /// with the cluster is open any more.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Node {
    /// The membership of cluster `role` as this instance sees it. Members
    /// already linked are reported `Joined` in the first tick.
    pub fn membership(
        &mut self,
        role: &'static str,
    ) -> (MembershipSource, Witness<(ClusterId, Membership)>) {
        let events = self
            .peers
            .iter()
            .filter(|p| p.role == role && p.writer.is_some())
            .map(|p| (ClusterId(p.index), Membership::Joined))
            .collect();
        self.feeds.push(MembershipFeed { role, events });
        self.tick_requested = true;
        (
            MembershipSource {
                feed: self.feeds.len() - 1,
                done: false,
            },
            Witness::new(),
        )
    }

    /// Whether a channel between this instance and `role` is still open.
    fn links_with(&self, role: &str) -> bool {
        let inbound = self
            .peers
            .iter()
            .any(|p| p.role == role && !p.open_towards_us.is_empty());
        let outbound = self.outbound_open.iter().any(|(_, dests)| {
            dests
                .iter()
                .any(|&d| d != LOOPBACK && self.peers[d].role == role)
        });
        inbound || outbound
    }

    pub(super) fn announce(&mut self, peer: usize, event: Membership) {
        let p = &self.peers[peer];
        if !p.in_cluster {
            return;
        }
        let id = ClusterId(p.index);
        for feed in self.feeds.iter_mut().filter(|f| f.role == p.role) {
            feed.events.push((id, event));
        }
        self.tick_requested = true;
    }

    /// Takes link events until every peer that is not tolerated is up.
    pub async fn await_required_peers(&mut self) -> Result<()> {
        while self
            .peers
            .iter()
            .any(|p| !p.tolerated && p.writer.is_none())
        {
            let Some(event) = self.events.recv().await else {
                return Err(Error::new("the links ended before every peer was up"));
            };
            self.handle(event);
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Takes in one event from the transport.
    pub(super) fn handle(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Up { peer, .. } if self.peers[peer].held > 0 => {
                // The old link's frames are still to be decoded, in place.
                self.later.push(event);
            }
            LinkEvent::Up {
                peer,
                link,
                writer,
                reader,
                incarnation,
                channels,
            } => self.link_up(peer, link, (writer, reader), incarnation, channels),
            LinkEvent::Fatal { reason } => self.failure = Some(Error::new(reason)),
        }
    }

    /// Takes in the links that came up while their peer's old frames waited.
    pub(super) fn take_later(&mut self) {
        for event in std::mem::take(&mut self.later) {
            self.handle(event);
        }
    }

    fn link_up(
        &mut self,
        peer: usize,
        link: LinkId,
        (writer, reader): (PeerWriter, PeerReader),
        incarnation: u64,
        channels: ChannelMap,
    ) {
        if self.peers[peer].writer.is_some() {
            self.link_down(peer, "a new connection from it replaced this one".into());
        }
        let me = self.me_name();
        let p = &mut self.peers[peer];
        p.link = link;
        p.channels = channels;
        p.writer = Some(writer);
        p.reader = Some(reader);
        p.frames = ReadBuffer::default();
        p.read_end = None;
        p.last_heard = Instant::now();
        p.shut = false;
        p.full = false;
        p.stopping = false;
        if std::mem::replace(&mut p.ever_up, true) {
            tracing::warn!(
                "{me}: peer {} is back (incarnation {incarnation}): its records flow again",
                p.describe()
            );
        } else {
            tracing::info!(
                "{me}: peer {} connected (incarnation {incarnation})",
                p.describe()
            );
        }
        // Channels its build lacks: it sends nothing there, so its part of
        // them is over, and nothing goes to it there.
        let lacking = p.channels.lacking().to_vec();
        if !lacking.is_empty() {
            tracing::warn!(
                "{me}: peer {} runs a build without channels {lacking:?} (tolerant here): nothing goes to it on them, and nothing comes",
                p.describe()
            );
        }
        for id in &lacking {
            if let Some(pos) = p.open_towards_us.iter().position(|c| c == id) {
                p.open_towards_us.swap_remove(pos);
                if let Some(channel) = self.inbound.iter_mut().find(|c| c.id == *id) {
                    channel.open = channel.open.saturating_sub(1);
                }
            }
        }
        // A rejoining sender starts its streams afresh: its part of every
        // channel that is still open at this instance opens again.
        for &id in &p.inbound_from {
            if p.open_towards_us.contains(&id) || p.channels.lacks(id) {
                continue;
            }
            if let Some(channel) = self.inbound.iter_mut().find(|c| c.id == id && c.open > 0) {
                channel.open += 1;
                p.open_towards_us.push(id);
            }
        }
        self.resume_sending(peer);
        self.announce(peer, Membership::Joined);
        self.update_health();
    }

    /// Tells `--health` (if asked for), and a deployment that watches, whether
    /// this running instance is linked with an instance of every role it
    /// exchanges records with.
    pub(super) fn update_health(&mut self) {
        let Some(was) = self.linked else {
            return; // not running yet
        };
        let unlinked: Vec<&str> = self
            .spec
            .linked_roles()
            .into_iter()
            .filter(|role| self.peers.iter().any(|p| p.role == *role))
            .filter(|role| {
                !self
                    .peers
                    .iter()
                    .any(|p| p.role == *role && p.writer.is_some())
            })
            .collect();
        let state = if unlinked.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "linked with no instance of role {}",
                unlinked.join(", ")
            ))
        };
        let now = state.is_ok();
        if now != was && std::env::var_os(crate::READY_ENV).is_some() {
            match &state {
                Ok(()) => eprintln!("{}", crate::LINKED_LINE),
                Err(why) => eprintln!("{} {why}", crate::UNLINKED_LINE),
            }
        }
        self.linked = Some(now);
        if let Some(health) = &self.health {
            health.set(state);
        }
    }

    /// The loss of peer `peer`: a failure of this instance unless the peer is
    /// tolerated.
    pub(super) fn lost(&mut self, peer: usize, reason: String, vanished: bool) {
        let p = &self.peers[peer];
        if p.tolerated {
            self.link_down(peer, reason);
            return;
        }
        let message = if vanished {
            format!("lost peer {}: {reason}", p.describe())
        } else {
            format!("link with peer {} failed: {reason}", p.describe())
        };
        // The first failure is the one to report.
        self.failure.get_or_insert(Error::new(message));
    }

    /// Drops a tolerated peer's link: nothing more is sent to it or taken from
    /// it until it links again.
    fn link_down(&mut self, peer: usize, reason: String) {
        let me = self.me_name();
        let p = &mut self.peers[peer];
        // Frames already handed out stay where they are until decoded.
        p.reader = None;
        p.read_end = None;
        if p.writer.take().is_none() {
            return;
        }
        let unsent = p.pending.len() - p.written;
        p.pending.clear();
        p.written = 0;
        let open: Vec<u32> = p.open_towards_us.clone();
        let ended = if open.is_empty() {
            String::new()
        } else {
            format!("; its part of channels {open:?} ended")
        };
        // Both sides stopping, nothing left to take from it: an ordinary end.
        let expected = self.stopping.is_some() && p.stopping && open.is_empty();
        if !expected {
            tracing::warn!(
            "{me}: lost peer {}: {reason}{ended}; going on without it ({unsent} bytes unsent, {} records dropped so far; more are dropped until it rejoins)",
                p.describe(),
                p.dropped
            );
        }
        let _ = self.dropped.send((peer, p.link));
        // A peer that said it was stopping was announced gone then.
        if !p.stopping {
            self.announce(peer, Membership::Left);
        }
        self.update_health();
    }
}

/// What quoted code sees of a cluster: its members, and its own id at a member.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub(super) self_id: Option<ClusterId>,
    pub(super) incarnation: u64,
    pub(super) members: Vec<ClusterId>,
    pub(super) role: String,
    pub(super) storage: weir_durable::Storage,
    /// The instance running the code, for messages.
    pub(super) me: String,
}

impl ClusterView {
    /// The id of the member running this code.
    pub fn self_id(&self) -> ClusterId {
        match self.self_id {
            Some(id) => id,
            None => panic!("`self_id()` of cluster `{}` used outside it", self.role),
        }
    }

    /// Which run of this member this is: larger after every restart.
    pub fn incarnation(&self) -> u64 {
        self.self_id();
        self.incarnation
    }

    /// Every member, in index order (from the topology, whether up or not).
    pub fn members(&self) -> &[ClusterId] {
        &self.members
    }

    /// This member's durable state. Started without a state directory, it
    /// keeps it in memory, and says so once: a restart forgets it.
    pub fn durable(&self) -> weir_durable::Storage {
        self.self_id();
        let storage = self.storage.clone();
        if storage.is_volatile() && storage.opened().is_empty() {
            eprintln!(
                "warning: {}: role `{}` keeps durable state, but no --state-dir (WEIR_STATE_DIR) was given: it is kept in memory only, and a restart forgets it",
                self.me, self.role
            );
        }
        storage
    }
}
