//! What leaves a node: each peer's queue of encoded frames, and writing those
//! queues out (the typed outboxes that fill them are in `outbox`).
//!
//! A peer that is not tolerated and does not read blocks the node
//! (backpressure: memory stays bounded). A tolerated one slows the node too
//! while it takes bytes, but never stalls it: once its queue holds
//! [`MAX_QUEUED`] bytes and its socket has taken nothing for [`MAX_STALL`] (or
//! a quarter of the peer timeout), it is *stuck*, and records to it (as while it is down) are
//! dropped and counted until it has taken its whole queue.

use super::peers::Peer;
use super::{Node, LOOPBACK};
use crate::error::{Error, Result};
use crate::frame::{append_close, append_frame, append_keepalive, append_stopping, fill_header};
use crate::transport::PeerWriter;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use weir_core::codec::BatchEncoder;

/// A peer's queued frames are written out once they reach this size, whatever
/// the tick: a tick's frame of a few thousand records goes to the socket as
/// soon as it is encoded. Fed steadily, a fast receiver keeps reading; fed in
/// bursts, it drains each burst and sleeps, and the sender pays a wake-up
/// (in system time) for every write after. A 200 M-record pipe took 0.70 s
/// writing at 16 KiB, 1.0 s at 512 KiB and 1.35 s at 64 KiB, sealed; in clear
/// 0.50 s against 0.82 s at 512 KiB (docs/BENCHMARKS.md, run 8).
const WRITE_AT: usize = 16 * 1024;

/// A queue partly written is compacted once this much of it is on the socket
/// (not after every write: the rest moves each time).
const COMPACT_AT: usize = 512 * 1024;

/// Otherwise they are written when the node goes idle, or after this many busy
/// ticks: a node that never waits still sends what it queued.
pub(super) const MAX_HELD_TICKS: u32 = 4;

/// A queue larger than this, once written out, is given back. Smaller ones
/// are kept: a queue given back every tick is a fresh mapping, and page faults,
/// every tick (a batch of 4096 100-byte records is 400 KB).
const MAX_KEPT: usize = 4 << 20;

/// Bytes a tolerated peer's queue holds before the node waits for it.
pub const MAX_QUEUED: usize = 4 << 20;

/// The longest a tolerated peer with a full queue may take nothing before it
/// counts as stuck (a quarter of the peer timeout, if that is shorter).
const MAX_STALL: Duration = Duration::from_millis(500);

/// How long finishing waits for tolerated peers to take their last frames.
const FINAL_WRITE_GRACE: Duration = Duration::from_secs(5);

/// Writes as much of `bytes` as `writer` takes now: how much it took, and the
/// error it stopped at, if any (otherwise it took all, or its socket is full
/// and a waker is registered).
fn write_now(
    writer: &mut PeerWriter,
    cx: &mut Context<'_>,
    bytes: &[u8],
) -> (usize, Option<std::io::Error>) {
    let mut taken = 0;
    while taken < bytes.len() {
        match Pin::new(&mut *writer).poll_write(cx, &bytes[taken..]) {
            Poll::Ready(Ok(0)) => return (taken, Some(std::io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => taken += n,
            Poll::Ready(Err(e)) => return (taken, Some(e)),
            Poll::Pending => break,
        }
    }
    (taken, None)
}

/// Writes as much of `peer`'s queue as its socket takes now. `Ready(true)`:
/// all of it; `Ready(false)`: the socket is full (a waker is registered).
fn poll_write_queue(peer: &mut Peer, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
    let Some(writer) = peer.writer.as_mut() else {
        return Poll::Ready(Ok(true));
    };
    let (taken, failed) = write_now(writer, cx, &peer.pending[peer.written..]);
    peer.written += taken;
    match failed {
        Some(e) => Poll::Ready(Err(e)),
        None => Poll::Ready(Ok(peer.written == peer.pending.len())),
    }
}

/// Records that writing to tolerated `peer` failed: its queue is abandoned, and
/// the node turns it into a lost peer after the write-out (`take_broken`).
fn broke(peer: &mut Peer, e: std::io::Error) {
    peer.broken = Some(e);
    peer.written = peer.pending.len();
}

/// A peer went away while both were stopping: nothing more goes to it, and
/// this is no failure (see `Node::stopping_together`).
fn gone_while_stopping(peer: &mut Peer, e: &std::io::Error) {
    tracing::info!(
        "peer {} went away while both were stopping ({e}); {} bytes not sent to it",
        peer.describe(),
        peer.pending.len() - peer.written
    );
    peer.writer = None;
    peer.pending.clear();
    peer.written = 0;
}

/// Forgets what the socket has taken of `peer`'s queue.
fn tidy(peer: &mut Peer) {
    if peer.written == peer.pending.len() {
        peer.pending.clear();
        peer.written = 0;
        peer.full = false;
        if peer.pending.capacity() > MAX_KEPT {
            // One huge batch should not pin its memory for the rest of the run.
            peer.pending = Vec::new();
        }
    } else if peer.written >= COMPACT_AT {
        peer.pending.drain(..peer.written);
        peer.written = 0;
    }
}

/// Writes what tolerated peers' sockets take now, without waiting. Ready once
/// one of them took something or failed; for the idle wait and `finish`.
pub(super) fn poll_tolerated_writes(peers: &mut [Peer], cx: &mut Context<'_>) -> Poll<()> {
    let mut progressed = false;
    for peer in peers.iter_mut().filter(|p| p.tolerated) {
        let before = peer.written;
        if before == peer.pending.len() {
            continue;
        }
        match poll_write_queue(peer, cx) {
            Poll::Ready(Err(e)) => {
                broke(peer, e);
                progressed = true;
            }
            _ => progressed |= peer.written > before,
        }
        tidy(peer);
    }
    if progressed {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

impl Node {
    /// The buffer frames for `dest` are queued in.
    fn queue_of(&mut self, dest: usize) -> &mut Vec<u8> {
        match dest {
            LOOPBACK => &mut self.loopback,
            peer => &mut self.peers[peer].pending,
        }
    }

    /// Whether a frame of `records` records can be queued for `dest` now; if
    /// not (the peer is down, or tolerated and not reading), they are counted
    /// as dropped.
    fn accepts(&mut self, channel: u32, dest: usize, records: usize) -> bool {
        if dest == LOOPBACK {
            return true;
        }
        let p = &mut self.peers[dest];
        if p.writer.is_some() && !p.full && !p.channels.lacks(channel) {
            return true;
        }
        p.dropped += records as u64;
        self.stats.dropped(channel, dest, records);
        false
    }

    /// Queues this tick's `batch` of `channel` as one frame for every
    /// destination in `dests` that takes it, and clears it. Its payload is
    /// encoded once: into the first such destination's queue (the batch's own
    /// buffer becomes that queue when nothing is queued there, else it is
    /// copied after what is), then written or copied to the others
    /// ([`Self::queue_copy`]).
    pub(super) async fn send_frame(
        &mut self,
        dests: &[usize],
        channel: u32,
        batch: &mut BatchEncoder,
    ) -> Result<()> {
        let records = batch.len();
        let Some(at) = dests
            .iter()
            .position(|&d| self.accepts(channel, d, records))
        else {
            batch.clear();
            return Ok(());
        };
        let first = dests[at];
        let failed =
            |e: String| Error::new(format!("cannot encode a batch for channel {channel}: {e}"));
        let queue = self.queue_of(first);
        let start = queue.len();
        if start == 0 {
            let frame = batch.framed().map_err(|e| failed(e.to_string()))?;
            fill_header(frame, channel).map_err(failed)?;
            std::mem::swap(queue, frame);
        } else {
            append_frame(queue, channel, |buf| {
                batch.append_to(buf).map_err(|e| e.to_string())
            })
            .map_err(failed)?;
        }
        batch.clear();
        let bytes = self.queue_of(first).len() - start;
        self.stats.sent(channel, first, records, bytes);
        if at + 1 < dests.len() {
            let source = std::mem::take(self.queue_of(first));
            for &dest in &dests[at + 1..] {
                if self.accepts(channel, dest, records) {
                    self.queue_copy(dest, &source[start..])?;
                    self.stats.sent(channel, dest, records, bytes);
                }
            }
            *self.queue_of(first) = source;
        }
        self.queued(dests).await
    }

    /// Queues `frame`, encoded for another destination, for `dest` too. A
    /// frame that would be written out at once anyway, meeting an empty
    /// queue, goes to the socket straight from the encoded bytes: only what
    /// the socket does not take now is copied. (Copying a broadcast's 32 KiB
    /// frames from one queue to the next cost its leader a fifth of its time:
    /// docs/BENCHMARKS.md, run 24.)
    fn queue_copy(&mut self, dest: usize, frame: &[u8]) -> Result<()> {
        let direct = dest != LOOPBACK && frame.len() >= WRITE_AT && {
            let p = &self.peers[dest];
            p.pending.is_empty() && p.writer.is_some()
        };
        let mut taken = 0;
        if direct {
            // Write-ahead of send, as in `write_out`.
            self.commit_durable()?;
            let writer = self.peers[dest].writer.as_mut().expect("checked above");
            let mut cx = Context::from_waker(std::task::Waker::noop());
            // Full, closed or failed: the queue's write-out waits or reports,
            // with what is left.
            (taken, _) = write_now(writer, &mut cx, frame);
        }
        self.queue_of(dest).extend_from_slice(&frame[taken..]);
        Ok(())
    }

    /// After frames were queued for `dests`: takes in the ones sent to this
    /// instance, and writes out the queues that are full.
    async fn queued(&mut self, dests: &[usize]) -> Result<()> {
        for &dest in dests {
            if dest == LOOPBACK {
                self.deliver_locally();
                continue;
            }
            let p = &self.peers[dest];
            if p.pending.len() - p.written >= WRITE_AT {
                self.write_out(Some(dest)).await?;
            }
            let p = &self.peers[dest];
            if p.tolerated && !p.full && p.pending.len() - p.written >= MAX_QUEUED {
                self.wait_for(dest).await;
            }
        }
        Ok(())
    }

    /// Waits while tolerated peer `dest` takes its full queue, down to half;
    /// if its socket takes nothing for a quarter of the peer timeout, marks it
    /// stuck instead (records to it are dropped until it has taken the rest).
    async fn wait_for(&mut self, dest: usize) {
        let since = Instant::now();
        self.wait_for_peer(dest).await;
        self.stats.blocked += since.elapsed();
    }

    async fn wait_for_peer(&mut self, dest: usize) {
        if let Err(e) = self.commit_durable() {
            self.failure.get_or_insert(e);
            return;
        }
        let stall = (self.peer_timeout / 4).min(MAX_STALL);
        let me = self.me_name();
        loop {
            let peer = &mut self.peers[dest];
            let progressed = tokio::time::timeout(
                stall,
                std::future::poll_fn(|cx| {
                    let before = peer.written;
                    match poll_write_queue(peer, cx) {
                        Poll::Ready(Err(e)) => {
                            broke(peer, e);
                            Poll::Ready(())
                        }
                        _ if peer.written > before => Poll::Ready(()),
                        _ => Poll::Pending,
                    }
                }),
            )
            .await
            .is_ok();
            tidy(peer);
            if !progressed {
                peer.full = true;
                tracing::warn!(
                    "{me}: peer {} took nothing for {stall:?} with {} KiB queued for it: dropping records to it until it has taken them ({} dropped so far)",
                    peer.describe(),
                    (peer.pending.len() - peer.written) >> 10,
                    peer.dropped
                );
                break;
            }
            if peer.broken.is_some() || peer.pending.len() - peer.written < MAX_QUEUED / 2 {
                break;
            }
        }
        self.take_broken();
    }

    pub(super) async fn write_all_pending(&mut self) -> Result<()> {
        self.write_out(None).await
    }

    /// Writes out the queues of `only` (or of every peer), to all of them at
    /// once: a peer whose socket is full does not hold up the others. Waits for
    /// the peers that are not tolerated; a tolerated one keeps what its socket
    /// did not take.
    async fn write_out(&mut self, only: Option<usize>) -> Result<()> {
        // Write-ahead of send: what the tick changed of the durable state is
        // on disk before any of its records leaves.
        self.commit_durable()?;
        if only.is_none() {
            self.held_ticks = 0;
        }
        let stopping_together = self.stopping_together();
        let peers = match only {
            Some(dest) => &mut self.peers[dest..=dest],
            None => &mut self.peers[..],
        };
        if peers.iter().all(|p| p.written == p.pending.len()) {
            return Ok(());
        }
        let mut blocked_since = None;
        std::future::poll_fn(|cx| {
            let mut waiting = false;
            for peer in peers.iter_mut() {
                match poll_write_queue(peer, cx) {
                    Poll::Ready(Ok(true)) => {}
                    Poll::Ready(Ok(false)) => waiting |= !peer.tolerated,
                    Poll::Ready(Err(e)) if peer.tolerated => broke(peer, e),
                    Poll::Ready(Err(e)) if stopping_together(peer) => gone_while_stopping(peer, &e),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(peer.sending_failed(&e))),
                    Poll::Pending => unreachable!("poll_write_queue is always ready"),
                }
            }
            if waiting {
                blocked_since.get_or_insert_with(Instant::now);
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
        .await?;
        if let Some(since) = blocked_since {
            self.stats.blocked += since.elapsed();
        }
        for peer in peers {
            tidy(peer);
        }
        self.take_broken();
        Ok(())
    }

    /// Whether a tolerated peer's queue waits for its socket.
    pub(super) fn tolerated_backlog(&self) -> bool {
        self.peers
            .iter()
            .any(|p| p.tolerated && p.writer.is_some() && p.written < p.pending.len())
    }

    /// Turns writes that failed into lost peers.
    pub(super) fn take_broken(&mut self) {
        for peer in 0..self.peers.len() {
            if let Some(e) = self.peers[peer].broken.take() {
                self.lost(peer, format!("sending failed: {e}"), true);
            }
        }
    }

    /// Queues a keepalive for every tolerated peer that is up.
    pub(super) fn queue_keepalives(&mut self) {
        for peer in self.peers.iter_mut() {
            if peer.tolerated && peer.writer.is_some() && !peer.full {
                append_keepalive(&mut peer.pending);
            }
        }
    }

    /// Tells every linked peer that this instance is stopping.
    pub(super) fn queue_stopping(&mut self) {
        for peer in self.peers.iter_mut() {
            if peer.writer.is_some() && !peer.full {
                append_stopping(&mut peer.pending);
            }
        }
    }

    /// A peer has just linked: tells it which of our channels towards it are
    /// already closed, since it starts afresh. (Its link then stays open for
    /// keepalives until `finish`.)
    pub(super) fn resume_sending(&mut self, peer: usize) {
        let spec = self.spec;
        let role = &self.peers[peer].role;
        let closed: Vec<u32> = spec
            .channels
            .iter()
            .filter(|c| c.from == spec.role && c.to == *role)
            .filter(|c| !self.outbound_open.iter().any(|(id, _)| *id == c.id))
            .filter(|c| !self.peers[peer].channels.lacks(c.id))
            .map(|c| c.id)
            .collect();
        for id in closed {
            append_close(&mut self.peers[peer].pending, id);
        }
    }

    pub(super) async fn close_channel(&mut self, id: u32) -> Result<()> {
        let Some(pos) = self.outbound_open.iter().position(|(c, _)| *c == id) else {
            return Ok(());
        };
        let (_, dests) = self.outbound_open.swap_remove(pos);
        for &dest in &dests {
            let linked = dest == LOOPBACK
                || (self.peers[dest].writer.is_some() && !self.peers[dest].channels.lacks(id));
            if linked {
                append_close(self.queue_of(dest), id);
            }
        }
        self.queued(&dests).await?;
        for &dest in &dests {
            // Nothing more will go to a peer once all our channels to it are
            // closed. A tolerated peer's link stays open for keepalives.
            let tolerated = dest != LOOPBACK && self.peers[dest].tolerated;
            if !tolerated && !self.outbound_open.iter().any(|(_, d)| d.contains(&dest)) {
                self.shut(dest).await?;
            }
        }
        Ok(())
    }

    /// Writes out what is queued for `dest`, then shuts our sending side.
    async fn shut(&mut self, dest: usize) -> Result<()> {
        if dest == LOOPBACK
            || self.peers[dest].writer.is_none()
            || std::mem::replace(&mut self.peers[dest].shut, true)
        {
            return Ok(());
        }
        self.write_out(Some(dest)).await?;
        let stopping_together = self.stopping_together();
        let peer = &mut self.peers[dest];
        let Some(writer) = peer.writer.as_mut() else {
            return Ok(()); // lost while writing out
        };
        if peer.tolerated {
            let _ = tokio::time::timeout(FINAL_WRITE_GRACE, writer.shutdown()).await;
            return Ok(());
        }
        match writer.shutdown().await {
            Err(e) if stopping_together(peer) => gone_while_stopping(peer, &e),
            Err(e) => return Err(peer.sending_failed(&e)),
            Ok(()) => {}
        }
        Ok(())
    }

    /// Whether, for this stopping node, a peer that goes away is an ordinary
    /// end rather than a failure: this node was asked to stop (so, as a rule,
    /// was the deployment), or the peer said it is stopping too. Either way it
    /// takes nothing more, and may be gone before our last frames (a peer
    /// whose senders all said they stop leaves once they go quiet).
    fn stopping_together(&self) -> impl Fn(&Peer) -> bool {
        let stopping = self.stopping.is_some();
        let asked = self.stop.load(std::sync::atomic::Ordering::Relaxed);
        move |peer| stopping && (asked || peer.stopping)
    }

    /// Ends the run: closes what is still open, and waits until every frame has
    /// been handed to the operating system (tolerated peers get a grace period).
    pub async fn finish(mut self) -> Result<()> {
        let cause = if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            "asked to stop (SIGTERM, SIGINT or the end of stdin)"
        } else {
            "its inputs ended"
        };
        tracing::info!("{}: stopping: {cause}", self.me_name());
        for task in &self.source_tasks {
            task.abort();
        }
        while let Some(&(id, _)) = self.outbound_open.first() {
            self.close_channel(id).await?;
        }
        let deadline = tokio::time::Instant::now() + FINAL_WRITE_GRACE;
        while self.tolerated_backlog() && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(
                deadline,
                std::future::poll_fn(|cx| poll_tolerated_writes(&mut self.peers, cx)),
            )
            .await;
            self.take_broken();
        }
        for dest in 0..self.peers.len() {
            self.shut(dest).await?;
        }
        Ok(())
    }
}
