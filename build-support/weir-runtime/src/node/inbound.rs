//! Frames arriving from peers (and from this instance itself), and the typed
//! inboxes generated code reads them through, decoded a tick at a time.
//!
//! The node reads its sockets itself, into each peer's [`ReadBuffer`](crate::frame::ReadBuffer), and
//! parses the frames there: a channel's frames for the tick are ranges of
//! those buffers, decoded in place by the channel's inbox. No reader task, no
//! queue, no copy or allocation per frame. A buffer's bytes move only once
//! every frame handed out of it has been decoded (from the next tick on).

use super::peers::ReadEnd;
use super::{Node, LOOPBACK};
use crate::error::{Error, Result};
use crate::frame::{FrameError, Header, CLOSE_BIT, HEADER_LEN, KEEPALIVE, READ_CHUNK, STOPPING};
use crate::secure::IntegrityError;
use crate::witness::Witness;
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::task::{Context, Poll};
use tokio::time::Instant;
use weir_core::{ClusterId, Membership};

use super::peers::Peer;

/// The most read from one peer in a tick: bounded work and memory per tick
/// (the tick holds what it read, and its records decoded), and the socket's
/// own buffer holds the rest. Taken in reads of at most [`READ_CHUNK`].
const MAX_READ_BUDGET: usize = 256 * 1024;

/// A frame waiting for its channel's inbox this tick.
pub(super) enum InFrame {
    /// Where its payload is in the peer's read buffer.
    Peer(usize, Range<usize>),
    /// Sent by this instance to itself.
    Local(Vec<u8>),
}

pub(super) struct InboundChannel {
    pub(super) id: u32,
    /// Frames received this tick.
    pub(super) frames: Vec<InFrame>,
    /// Senders that have not closed the channel yet.
    pub(super) open: usize,
}

/// Reads what every link has now, without waiting (wakers are registered for
/// those that have nothing). Whether anything arrived, or a link ended.
pub(super) fn read_available(peers: &mut [Peer], cx: &mut Context<'_>) -> bool {
    let mut arrived = false;
    for peer in peers.iter_mut() {
        let Some(reader) = peer.reader.as_mut() else {
            continue;
        };
        if peer.read_end.is_some() {
            continue;
        }
        // A chunk a tick, so a reader that keeps up takes its bytes as soon
        // as the tick before is done with (broadcast's members, read 256 KiB
        // a tick, fell behind by megabytes, and their leader paid for it:
        // docs/BENCHMARKS.md, run 13). But the rest of a frame begun at once,
        // up to MAX_READ_BUDGET: none of it is any use until all of it is
        // here (pipe_struct's 400 KB batches, a replica's state in parts).
        let budget = peer
            .frames
            .still_to_come()
            .clamp(READ_CHUNK, MAX_READ_BUDGET);
        let mut read = 0;
        while read < budget {
            match peer.frames.poll_read_from(reader, cx, budget - read) {
                Poll::Ready(Ok(0)) => {
                    peer.read_end = Some(ReadEnd::Closed);
                    arrived = true;
                    break;
                }
                Poll::Ready(Ok(n)) => read += n,
                Poll::Ready(Err(e)) => {
                    peer.read_end = Some(ReadEnd::Failed(e));
                    arrived = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if read > 0 {
            peer.last_heard = Instant::now();
            arrived = true;
        }
    }
    arrived
}

/// How long a stopping node waits, once all its senders are stopping too,
/// for them to go quiet before it counts its inbound streams as ended.
const SETTLE_QUIET: std::time::Duration = std::time::Duration::from_millis(200);

impl Node {
    /// Reads what has arrived on every link, without waiting, and takes in
    /// its frames; whether anything arrived (bytes, or a link's end).
    pub(super) async fn read_arrived(&mut self) -> Result<bool> {
        std::future::poll_fn(|cx| Poll::Ready(read_available(&mut self.peers, cx))).await;
        self.parse_arrived()
    }

    /// Lets every peer's buffer drop the frames decoded last tick.
    pub(super) fn release_frames(&mut self) {
        for peer in self.peers.iter_mut().filter(|p| p.held == 0) {
            peer.frames.release();
        }
    }

    /// Takes in the complete frames read so far, then the end of any link
    /// that ended after them; whether there was any. Protocol violations fail
    /// at once; the loss of a peer that is not tolerated is kept in `failure`
    /// for the next tick.
    fn parse_arrived(&mut self) -> Result<bool> {
        let mut took = false;
        for peer in 0..self.peers.len() {
            if self.peers[peer].reader.is_none() {
                continue;
            }
            loop {
                let p = &mut self.peers[peer];
                match p.frames.next_frame(self.max_frame) {
                    Ok(Some((KEEPALIVE, range))) if range.is_empty() => {}
                    Ok(Some((STOPPING, range))) if range.is_empty() => {
                        // Leaving: it only drains from here. Those that watch
                        // its cluster learn now, not when it is gone (a
                        // leader's followers need not wait out its silence).
                        if !std::mem::replace(&mut p.stopping, true) {
                            self.announce(peer, Membership::Left);
                        }
                    }
                    Ok(Some((channel, range))) => {
                        took = true;
                        self.take_frame(peer, channel, range)?;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // Nothing after a malformed frame can be trusted.
                        took = true;
                        p.reader = None;
                        p.read_end = None;
                        self.lost(peer, e.to_string(), false);
                        break;
                    }
                }
            }
            let p = &mut self.peers[peer];
            let Some(end) = p.read_end.take() else {
                continue;
            };
            took = true;
            p.reader = None;
            match end {
                ReadEnd::Failed(e) => {
                    if IntegrityError::is(&e) && !p.tolerated {
                        // The loss of this link ends the instance; say first what was found.
                        tracing::warn!(
                            "{}: closing the link with peer {}: {e}",
                            self.me_name(),
                            self.peers[peer].describe()
                        );
                    }
                    let reason = e.to_string();
                    let vanished = FrameError::Io(e).is_disconnect();
                    self.lost(peer, reason, vanished);
                }
                ReadEnd::Closed => match p.frames.check_end() {
                    Err(e) => self.lost(peer, e.to_string(), true),
                    Ok(()) if !p.open_towards_us.is_empty() => {
                        let reason = format!(
                            "its connection closed before its streams ended (channels {:?} still open)",
                            p.open_towards_us
                        );
                        self.lost(peer, reason, true);
                    }
                    // A clean end: it sends nothing more. A tolerated peer
                    // that stopped is gone as surely as one that died, and
                    // its membership says so now, not at the next send.
                    Ok(()) if p.tolerated => {
                        self.lost(peer, "it stopped".to_string(), true);
                    }
                    Ok(()) => {}
                },
            }
        }
        Ok(took)
    }

    /// Takes in one frame from peer `peer` (of its current link), its payload
    /// at `payload` in the peer's read buffer.
    fn take_frame(&mut self, peer: usize, channel: u32, payload: Range<usize>) -> Result<()> {
        let closing = channel & CLOSE_BIT != 0;
        let p = &mut self.peers[peer];
        // Its build's number for the channel, as ours.
        let Some(id) = p.channels.ours(channel & !CLOSE_BIT) else {
            return Err(Error::new(format!(
                "peer {} sent a frame on channel {}, which its hello did not list",
                p.describe(),
                channel & !CLOSE_BIT
            )));
        };
        let Some(pos) = p.open_towards_us.iter().position(|&c| c == id) else {
            let settled = self.settled && p.inbound_from.contains(&id);
            if settled || (p.tolerated && p.inbound_from.contains(&id)) {
                // A rejoined sender's part of a channel that had already closed here.
                return Ok(());
            }
            return Err(Error::new(format!(
                "peer {} sent a frame on channel {id}, which it has no open stream on to {}",
                p.describe(),
                self.spec.role
            )));
        };
        let channel = self
            .inbound
            .iter_mut()
            .find(|c| c.id == id)
            .expect("open channels are inbound");
        if closing {
            if !payload.is_empty() {
                return Err(Error::new(format!(
                    "peer {} sent a malformed close of channel {id}",
                    p.describe()
                )));
            }
            p.open_towards_us.swap_remove(pos);
            channel.open -= 1;
        } else {
            p.held += 1;
            channel.frames.push(InFrame::Peer(peer, payload));
        }
        Ok(())
    }

    /// Takes in the frames this instance sent to itself (between members of one
    /// cluster), at the next tick, as if they had arrived.
    pub(super) fn deliver_locally(&mut self) {
        let frames = std::mem::take(&mut self.loopback);
        let mut rest = &frames[..];
        while rest.len() >= HEADER_LEN {
            let header = Header::parse(rest[..HEADER_LEN].try_into().expect("a header"));
            let end = HEADER_LEN + header.len as usize;
            let id = header.channel & !CLOSE_BIT;
            if let Some(inbound) = self.inbound.iter_mut().find(|c| c.id == id) {
                if header.channel & CLOSE_BIT != 0 {
                    // Already 0 if the node settled its channels while stopping.
                    inbound.open = inbound.open.saturating_sub(1);
                } else {
                    inbound
                        .frames
                        .push(InFrame::Local(rest[HEADER_LEN..end].to_vec()));
                }
            }
            rest = &rest[end..];
        }
        self.tick_requested = true;
    }

    /// While stopping, once every peer still sending here has said it is
    /// stopping too and nothing has arrived for [`SETTLE_QUIET`]: every
    /// inbound stream counts as ended. A flow whose roles feed each other in a
    /// cycle then ends at once when all of them are stopped, rather than
    /// after the drain grace, each waiting for the others to close first.
    /// Whatever arrives after it is dropped.
    pub(super) fn settle_time(&self) -> Option<tokio::time::Instant> {
        if self.stopping.is_none() || self.settled || !self.inbound_open() {
            return None;
        }
        let all_stopping = self
            .peers
            .iter()
            .all(|p| p.open_towards_us.is_empty() || p.stopping);
        all_stopping.then(|| self.last_arrival + SETTLE_QUIET)
    }

    pub(super) fn settle(&mut self) {
        self.settled = true;
        for channel in &mut self.inbound {
            channel.open = 0;
        }
        for peer in &mut self.peers {
            peer.open_towards_us.clear();
        }
        self.tick_requested = true;
    }

    pub(super) fn inbound_open(&self) -> bool {
        self.inbound.iter().any(|c| c.open > 0)
    }

    fn inbound_closed(&self, id: u32) -> bool {
        self.inbound
            .iter()
            .find(|c| c.id == id)
            .is_none_or(|c| c.open == 0)
    }

    /// A typed receiver for channel `id`.
    pub fn inbox<T: DeserializeOwned + 'static>(&mut self, id: u32) -> (Inbox<T>, Witness<T>) {
        (
            Inbox {
                channel: id,
                records: Vec::new(),
            },
            Witness::new(),
        )
    }

    /// A typed receiver for channel `id` from a cluster: records come tagged with
    /// the member that sent them.
    pub fn inbox_tagged<T: DeserializeOwned + 'static>(
        &mut self,
        id: u32,
    ) -> (TaggedInbox<T>, Witness<(ClusterId, T)>) {
        (
            TaggedInbox {
                channel: id,
                records: Vec::new(),
                batch: Vec::new(),
            },
            Witness::new(),
        )
    }
}

/// Decodes the frames that arrived on `channel` for this tick, batch by batch,
/// in place, appending each to `out`; `each` then gets the sender's index in
/// its role.
fn receive_batches<T: DeserializeOwned + 'static>(
    node: &mut Node,
    channel: u32,
    out: &mut Vec<T>,
    mut each: impl FnMut(u32, &mut Vec<T>),
) -> Result<()> {
    let Node {
        inbound,
        peers,
        me,
        stats,
        ..
    } = node;
    let Some(inbound) = inbound.iter_mut().find(|c| c.id == channel) else {
        return Ok(());
    };
    for frame in inbound.frames.drain(..) {
        let (sender, payload) = match &frame {
            InFrame::Peer(peer, range) => {
                let p = &mut peers[*peer];
                p.held -= 1;
                (Some(&*p), p.frames.payload(range.clone()))
            }
            InFrame::Local(bytes) => (None, &bytes[..]),
        };
        let before = out.len();
        weir_core::codec::decode_batch_into_fast(payload, out).map_err(|e| {
            let sender = match sender {
                Some(p) => format!("peer {}", p.describe()),
                None => "this instance".to_string(),
            };
            Error::new(format!(
                "frame from {sender} on channel {channel} does not decode as a batch of `{}`: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        let from = match &frame {
            InFrame::Peer(peer, _) => *peer,
            InFrame::Local(_) => LOOPBACK,
        };
        stats.received(
            channel,
            from,
            out.len() - before,
            HEADER_LEN + payload.len(),
        );
        each(sender.map_or(me.index, |p| p.index), out);
    }
    Ok(())
}

/// Receives one channel's batches, decoded into a buffer reused across ticks.
pub struct Inbox<T> {
    channel: u32,
    records: Vec<T>,
}

impl<T: DeserializeOwned + 'static> Inbox<T> {
    /// Decodes the frames that arrived for this tick.
    pub fn receive(&mut self, node: &mut Node) -> Result<()> {
        receive_batches(node, self.channel, &mut self.records, |_, _| {})
    }

    /// This tick's records.
    pub fn drain(&mut self) -> std::vec::Drain<'_, T> {
        self.records.drain(..)
    }

    /// Whether every sender has closed the channel.
    pub fn is_closed(&self, node: &Node) -> bool {
        node.inbound_closed(self.channel)
    }
}

/// An [`Inbox`] for records from a cluster, tagged with the sending member.
pub struct TaggedInbox<T> {
    channel: u32,
    records: Vec<(ClusterId, T)>,
    /// One batch, before tagging.
    batch: Vec<T>,
}

impl<T: DeserializeOwned + 'static> TaggedInbox<T> {
    /// Decodes the frames that arrived for this tick.
    pub fn receive(&mut self, node: &mut Node) -> Result<()> {
        receive_batches(node, self.channel, &mut self.batch, |sender, batch| {
            let id = ClusterId(sender);
            self.records.extend(batch.drain(..).map(|r| (id, r)));
        })
    }

    /// This tick's records.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (ClusterId, T)> {
        self.records.drain(..)
    }

    /// Whether every sender has closed the channel.
    pub fn is_closed(&self, node: &Node) -> bool {
        node.inbound_closed(self.channel)
    }
}
