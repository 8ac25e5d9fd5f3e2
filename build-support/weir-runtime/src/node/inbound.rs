//! Frames arriving from peers (and from this instance itself), and the typed
//! inboxes generated code reads them through, decoded a tick at a time.

use super::{Node, LOOPBACK};
use crate::error::{Error, Result};
use crate::frame::{Header, CLOSE_BIT, HEADER_LEN};
use crate::ops::Witness;
use serde::de::DeserializeOwned;
use weir_core::ClusterId;

pub(super) struct InboundChannel {
    pub(super) id: u32,
    /// Frames received this tick: (peer, payload).
    pub(super) frames: Vec<(usize, Vec<u8>)>,
    /// Senders that have not closed the channel yet.
    pub(super) open: usize,
}

impl Node {
    /// Takes in one frame from peer `peer` (of its current link).
    pub(super) fn take_frame(&mut self, peer: usize, channel: u32, payload: Vec<u8>) -> Result<()> {
        let closing = channel & CLOSE_BIT != 0;
        let id = channel & !CLOSE_BIT;
        let p = &mut self.peers[peer];
        let Some(pos) = p.open_towards_us.iter().position(|&c| c == id) else {
            if p.tolerated && p.inbound_from.contains(&id) {
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
            channel.frames.push((peer, payload));
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
                    inbound.open -= 1;
                } else {
                    inbound
                        .frames
                        .push((LOOPBACK, rest[HEADER_LEN..end].to_vec()));
                }
            }
            rest = &rest[end..];
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
    pub fn inbox<T: DeserializeOwned>(&mut self, id: u32) -> (Inbox<T>, Witness<T>) {
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
    pub fn inbox_tagged<T: DeserializeOwned>(
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
/// appending each to `out`; `each` then gets the sender's index in its role.
fn receive_batches<T: DeserializeOwned>(
    node: &mut Node,
    channel: u32,
    out: &mut Vec<T>,
    mut each: impl FnMut(u32, &mut Vec<T>),
) -> Result<()> {
    let Some(inbound) = node.inbound.iter_mut().find(|c| c.id == channel) else {
        return Ok(());
    };
    for (peer, payload) in inbound.frames.drain(..) {
        let sender = node.peers.get(peer);
        weir_core::codec::decode_batch_into(&payload, out).map_err(|e| {
            let sender = match sender {
                Some(p) => format!("peer {}", p.describe()),
                None => "this instance".to_string(),
            };
            Error::new(format!(
                "frame from {sender} on channel {channel} does not decode as a batch of `{}`: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        each(sender.map_or(node.me.index, |p| p.index), out);
    }
    Ok(())
}

/// Receives one channel's batches, decoded into a buffer reused across ticks.
pub struct Inbox<T> {
    channel: u32,
    records: Vec<T>,
}

impl<T: DeserializeOwned> Inbox<T> {
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

impl<T: DeserializeOwned> TaggedInbox<T> {
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
