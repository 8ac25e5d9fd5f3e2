//! The typed outboxes generated code fills: each encodes a channel's records
//! as they are pushed and hands the tick's batch to the node as one frame per
//! destination (see `outbound` for the queues and their writing out).

use super::Node;
use crate::error::{Error, Result};
use crate::frame::HEADER_LEN;
use crate::witness::Witness;
use serde::Serialize;
use std::marker::PhantomData;
use weir_core::codec::BatchEncoder;
use weir_core::ClusterId;

impl Node {
    fn dests(&self, id: u32) -> Vec<usize> {
        self.outbound_open
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }

    /// A typed sender for channel `id`.
    pub fn outbox<T: Serialize>(&mut self, id: u32, _records: &Witness<T>) -> Outbox<T> {
        let dests = self.dests(id);
        Outbox {
            channel: id,
            batch: BatchEncoder::with_prefix(HEADER_LEN),
            dests,
            closed: false,
            records: PhantomData,
        }
    }

    /// A sender for channel `id` whose records are `(ClusterId, T)`: each `T` goes
    /// to the member named.
    pub fn outbox_to_members<T: Serialize>(
        &mut self,
        id: u32,
        _records: &Witness<(ClusterId, T)>,
    ) -> MemberOutbox<T> {
        MemberOutbox::new(id, self.dests(id), self.channel_role(id))
    }

    /// A sender for channel `id` that hands records to the members in turn.
    pub fn outbox_round_robin<T: Serialize>(
        &mut self,
        id: u32,
        _records: &Witness<T>,
    ) -> RoundRobinOutbox<T> {
        RoundRobinOutbox {
            inner: MemberOutbox::new(id, self.dests(id), self.channel_role(id)),
            next: 0,
        }
    }

    fn channel_role(&self, id: u32) -> &'static str {
        self.spec
            .channels
            .iter()
            .find(|c| c.id == id)
            .map_or("?", |c| c.to)
    }
}

/// Sends each record to one member of a cluster: one frame per member per tick.
pub struct MemberOutbox<T> {
    channel: u32,
    /// This tick's records per member, in member order, encoded as they come.
    batches: Vec<BatchEncoder>,
    dests: Vec<usize>,
    role: &'static str,
    /// A record named a member the cluster does not have.
    unknown_member: Option<ClusterId>,
    closed: bool,
    records: PhantomData<fn(T)>,
}

impl<T: Serialize> MemberOutbox<T> {
    fn new(channel: u32, dests: Vec<usize>, role: &'static str) -> Self {
        MemberOutbox {
            channel,
            batches: dests
                .iter()
                .map(|_| BatchEncoder::with_prefix(HEADER_LEN))
                .collect(),
            dests,
            role,
            unknown_member: None,
            closed: false,
            records: PhantomData,
        }
    }

    /// Encodes `record` into the batch of `member`.
    pub fn push(&mut self, (member, record): (ClusterId, T)) {
        match self.batches.get_mut(member.index()) {
            Some(batch) => batch.push(&record),
            None => self.unknown_member = Some(member),
        }
    }

    /// Sends this tick's records, one frame per member that has some, then closes
    /// the channel if `upstream_done`.
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        if let Some(member) = self.unknown_member {
            return Err(Error::new(format!(
                "a record on channel {} is for member {member} of cluster `{}`, which has {} members",
                self.channel,
                self.role,
                self.dests.len()
            )));
        }
        for (batch, &dest) in self.batches.iter_mut().zip(&self.dests) {
            if !batch.is_empty() {
                node.send_frame(&[dest], self.channel, batch).await?;
            }
        }
        if upstream_done && !self.closed {
            self.closed = true;
            node.close_channel(self.channel).await?;
        }
        Ok(())
    }
}

/// Hands records to the members of a cluster in turn.
pub struct RoundRobinOutbox<T> {
    inner: MemberOutbox<T>,
    next: usize,
}

impl<T: Serialize> RoundRobinOutbox<T> {
    /// Encodes `record` into the batch of the member whose turn it is.
    pub fn push(&mut self, record: T) {
        let members = self.inner.batches.len();
        if members == 0 {
            self.inner.unknown_member = Some(ClusterId(0));
            return;
        }
        self.inner.batches[self.next].push(&record);
        self.next = (self.next + 1) % members;
    }

    /// As [`MemberOutbox::flush`].
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        self.inner.flush(node, upstream_done).await
    }
}

/// Collects one channel's records for a tick and sends them as one frame.
///
/// Records are encoded as they are pushed, not held: one pass over them, and
/// a tick's batch takes the memory of its encoding only.
pub struct Outbox<T> {
    channel: u32,
    batch: BatchEncoder,
    dests: Vec<usize>,
    closed: bool,
    records: PhantomData<fn(T)>,
}

impl<T: Serialize> Outbox<T> {
    /// Encodes `record` into this tick's batch.
    #[inline]
    pub fn push(&mut self, record: T) {
        self.batch.push(&record);
    }

    /// Sends this tick's records as one frame to every destination (encoded once),
    /// then closes the channel if `upstream_done`.
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        if !self.batch.is_empty() {
            node.send_frame(&self.dests, self.channel, &mut self.batch)
                .await?;
        }
        if upstream_done && !self.closed {
            self.closed = true;
            node.close_channel(self.channel).await?;
        }
        Ok(())
    }
}
